-- wau(d) / mau(d): the number of distinct users with at least one event in the {window} days
-- ending on d (d-{lookback} .. d), for every day d from {from} to {to}: rolling windows, as PostHog.
-- The windows read the days before {from}. A value whose window holds a day with no partition
-- (days.observed = false) is NULL. Days before the lake's first partition (days.in_lake = false)
-- count as observed and empty, whatever {from} is; a window of only such days is NULL.
WITH user_days AS (
    SELECT DISTINCT {user} AS uid, date
    FROM events
    WHERE date BETWEEN {start} AND {end} AND {user} IS NOT NULL
),
windows AS (
    -- each row day d, each day w of its window
    SELECT d.date AS end_date, w.date AS day, w.observed, w.in_lake
    FROM days d
    JOIN days w ON w.date BETWEEN d.date - INTERVAL '{lookback} days' AND d.date
    WHERE d.date BETWEEN {from} AND {to}
),
complete AS (
    SELECT end_date, BOOL_AND(observed) AND BOOL_OR(in_lake) AS complete
    FROM windows GROUP BY end_date
),
counts AS (
    SELECT w.end_date, COUNT(DISTINCT u.uid) AS users
    FROM windows w
    JOIN user_days u ON u.date = w.day
    GROUP BY w.end_date
)
SELECT c.end_date AS date,
       CASE WHEN c.complete THEN COALESCE(n.users, 0) END AS {name}
FROM complete c
LEFT JOIN counts n ON n.end_date = c.end_date
ORDER BY date
