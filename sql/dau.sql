-- dau(d): the number of distinct users with at least one event on day d,
-- for every day d from {from} to {to}. NULL user ids are not users.
-- A day with no partition in the lake (days.observed = false) is NULL, never 0, and so is a day
-- before the lake's first (days.in_lake = false).
SELECT d.date,
       CASE WHEN d.observed AND d.in_lake THEN COALESCE(a.dau, 0) END AS dau
FROM days d
LEFT JOIN (
    SELECT date, COUNT(DISTINCT {user}) AS dau
    FROM events
    WHERE date BETWEEN {from} AND {to}
    GROUP BY date
) a ON a.date = d.date
WHERE d.date BETWEEN {from} AND {to}
ORDER BY d.date
