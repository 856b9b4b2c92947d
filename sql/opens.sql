-- opens(d): for every day d from {from} to {to}, the app opens (events) on d, the active users
-- (= dau(d)), and the opens per active user: mean, p50, p90 and max. p50 and p90 are nearest-rank
-- percentiles: the smallest per-user count c such that at least 50% (90%) of the day's users have
-- at most c opens. Events with a NULL user id are not counted. A day with no partition, or before the lake's
-- first, is NULL;
-- a day with a partition and no users has 0 opens and NULL per-user figures.
WITH per_user AS (
    SELECT date, {user} AS uid, COUNT(*) AS opens
    FROM events
    WHERE date BETWEEN {from} AND {to} AND {user} IS NOT NULL
    GROUP BY date, {user}
),
ranked AS (
    SELECT date, opens,
           ROW_NUMBER() OVER (PARTITION BY date ORDER BY opens) AS rank,
           COUNT(*) OVER (PARTITION BY date) AS users
    FROM per_user
),
stats AS (
    SELECT date,
           SUM(opens) AS opens,
           COUNT(*) AS active_users,
           AVG(CAST(opens AS DOUBLE)) AS mean,
           MAX(CASE WHEN rank = (users * 50 + 99) / 100 THEN opens END) AS p50,
           MAX(CASE WHEN rank = (users * 90 + 99) / 100 THEN opens END) AS p90,
           MAX(opens) AS max
    FROM ranked
    GROUP BY date
)
SELECT d.date,
       CASE WHEN d.observed AND d.in_lake THEN COALESCE(s.opens, 0) END AS opens,
       CASE WHEN d.observed AND d.in_lake THEN COALESCE(s.active_users, 0) END AS active_users,
       s.mean AS opens_per_user_mean,
       s.p50 AS opens_per_user_p50,
       s.p90 AS opens_per_user_p90,
       s.max AS opens_per_user_max
FROM days d
LEFT JOIN stats s ON s.date = d.date
WHERE d.date BETWEEN {from} AND {to}
ORDER BY d.date
