-- stickiness(d) = dau(d) / mau(d), for every day d from {from} to {to}: the share of the month's
-- users who came on day d. `dau` and `mau` are the results of dau.sql and active_rolling.sql over
-- the same days. NULL where either is NULL (a missing day) or mau is 0.
SELECT d.date,
       d.dau,
       m.mau,
       CAST(d.dau AS DOUBLE) / NULLIF(m.mau, 0) AS stickiness
FROM dau d
JOIN mau m ON m.date = d.date
ORDER BY d.date
