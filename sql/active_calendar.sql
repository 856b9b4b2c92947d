-- wau / mau with --calendar: the number of distinct users with at least one event in each
-- {period} (ISO weeks Monday to Sunday; calendar months) that overlaps {from} .. {to}.
-- Each period is counted whole, reading days outside {from} .. {to}; `date` is its first day.
-- A period that holds a day with no partition (days.observed = false) is NULL. Days before the
-- lake's first partition (days.in_lake = false) count as observed and empty; a period of only
-- such days is NULL.
WITH user_days AS (
    SELECT DISTINCT {user} AS uid, date
    FROM events
    WHERE date BETWEEN {start} AND {end} AND {user} IS NOT NULL
),
periods AS (
    SELECT CAST(date_trunc('{period}', date) AS DATE) AS period, date, observed, in_lake FROM days
),
complete AS (
    SELECT period, BOOL_AND(observed) AND BOOL_OR(in_lake) AS complete
    FROM periods GROUP BY period
),
counts AS (
    SELECT p.period, COUNT(DISTINCT u.uid) AS users
    FROM periods p
    JOIN user_days u ON u.date = p.date
    GROUP BY p.period
)
SELECT c.period AS date,
       CASE WHEN c.complete THEN COALESCE(n.users, 0) END AS {name}
FROM complete c
LEFT JOIN counts n ON n.period = c.period
ORDER BY date
