-- user-days: one row per user and day from {from} to {to} on which the user had at least one
-- event, with that day's number of events (opens). NULL user ids are left out.
-- Days with no partition have no rows (a warning names them).
SELECT {user}, date, COUNT(*) AS opens
FROM events
WHERE date BETWEEN {from} AND {to} AND {user} IS NOT NULL
GROUP BY {user}, date
ORDER BY date, {user}
