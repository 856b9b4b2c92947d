"""The benchmark's questions answered by other engines reading the same Parquet lake, printed as CSV
with the same header and values as `dau query ... --format csv`.

Usage: peers.py ENGINE QUESTION LAKE FROM TO

  ENGINE    duckdb | polars | datafusion | chdb
  QUESTION  dau          distinct users per day, FROM..TO            -> date,dau
            mau-month    distinct users of FROM..TO (one calendar month) -> date,calendar_mau (date = FROM)
            mau-rolling  distinct users of the 30 days ending on each day -> date,mau
            mau-join     the same, as a 30-day range join and COUNT(DISTINCT)  -> date,mau
            opens        events, active users and opens per user per day  -> date,opens,active_users,...

The lake holds one folder per day, date=YYYY-MM-DD/*.parquet, with an Int64 column userId; the day
comes from the folder name. Every answer is exact: no engine uses an approximate distinct count.

Two formulations are shared by the engines (each written in the engine's own language):

mau-rolling, by intervals. For one user with active days a1 < a2 < ..., the user is in the window
ending on d exactly when the latest active day a <= d is at least d-29. So active day a (with next
active day n, or none) counts the user on the days [a, min(a+30, n)), and these intervals of one
user do not overlap. mau(d) is then the number of intervals covering d: +1 at each start, -1 at
each end, summed over all days up to d. This is exact and needs one sort of the distinct (user, day)
pairs, instead of a 30-day range join followed by COUNT(DISTINCT) (DuckDB on lake S: 22 s that way,
2.7 s this way). That range join, the formulation most SQL users write (and the one the speed issue
measured peers with), is kept as the question mau-join: each day joined to the distinct
(user, day) pairs of its 30 days.
chDB builds the intervals from each user's sorted array of days, which was faster there than
window functions or ORing per-day groupBitmap states (64-bit ids make those slow).

opens, by a histogram. The per-user counts of a day are grouped by value; the nearest-rank
percentile p is the smallest count c whose cumulative number of users reaches
rank = (users*p + 99) / 100 (integer division), which is the value at that rank in the sorted
counts, as sql/opens.sql defines it.
"""

import datetime as dt
import math
import sys

WINDOW = 30  # days in a rolling mau window
OPENS_HEADER = (
    "date,opens,active_users,opens_per_user_mean,opens_per_user_p50,opens_per_user_p90,"
    "opens_per_user_max"
)
HEADERS = {
    "dau": "date,dau",
    "mau-month": "date,calendar_mau",
    "mau-rolling": "date,mau",
    "mau-join": "date,mau",
    "opens": OPENS_HEADER,
}


def fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --------------------------------------------------------------------------------------------
# DuckDB


def duckdb_rows(question, lake, start, end, lo):
    import duckdb

    con = duckdb.connect()
    files = f"read_parquet('{lake}/date=*/*.parquet', hive_partitioning = true)"
    s, e, lo = f"DATE '{start}'", f"DATE '{end}'", f"DATE '{lo}'"
    # the distinct (user, active day) pairs of the rolling windows' days
    ud = f"""ud AS (
                SELECT DISTINCT userId AS u, date AS a FROM {files}
                WHERE date BETWEEN {lo} AND {e} AND userId IS NOT NULL)"""
    if question == "dau":
        sql = f"""
            SELECT date, count(DISTINCT userId) FROM {files}
            WHERE date BETWEEN {s} AND {e} GROUP BY date ORDER BY date"""
    elif question == "mau-month":
        sql = f"""
            SELECT {s}, count(DISTINCT userId) FROM {files}
            WHERE date BETWEEN {s} AND {e}"""
    elif question == "mau-rolling":
        sql = f"""
            WITH {ud},
            iv AS (
                SELECT a, least(a + {WINDOW}, coalesce(lead(a) OVER (PARTITION BY u ORDER BY a),
                                                       a + {WINDOW})) AS b
                FROM ud),
            delta AS (
                SELECT d, sum(x) AS x
                FROM (SELECT unnest([a, b]) AS d, unnest([1, -1]) AS x FROM iv)
                GROUP BY d),
            days AS (
                SELECT CAST(range AS DATE) AS d
                FROM range({s}, {e} + INTERVAL 1 DAY, INTERVAL 1 DAY))
            SELECT days.d, CAST(sum(delta.x) AS BIGINT)
            FROM days JOIN delta ON delta.d <= days.d
            GROUP BY days.d ORDER BY days.d"""
    elif question == "mau-join":
        sql = f"""
            WITH {ud},
            days AS (
                SELECT CAST(range AS DATE) AS d
                FROM range({s}, {e} + INTERVAL 1 DAY, INTERVAL 1 DAY))
            SELECT days.d, count(DISTINCT ud.u)
            FROM days JOIN ud ON ud.a BETWEEN days.d - {WINDOW - 1} AND days.d
            GROUP BY days.d ORDER BY days.d"""
    elif question == "opens":
        sql = f"""
            WITH per_user AS (
                SELECT date, count(*) AS c FROM {files}
                WHERE date BETWEEN {s} AND {e} AND userId IS NOT NULL
                GROUP BY date, userId),
            hist AS (SELECT date, c, count(*) AS n FROM per_user GROUP BY date, c),
            cum AS (
                SELECT date, c, n,
                       sum(n) OVER (PARTITION BY date ORDER BY c
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS below,
                       sum(n) OVER (PARTITION BY date) AS users
                FROM hist)
            SELECT date, CAST(sum(c * n) AS BIGINT), CAST(sum(n) AS BIGINT),
                   CAST(sum(c * n) AS DOUBLE) / CAST(sum(n) AS DOUBLE),
                   min(CASE WHEN below >= (users * 50 + 99) // 100 THEN c END),
                   min(CASE WHEN below >= (users * 90 + 99) // 100 THEN c END),
                   max(c)
            FROM cum GROUP BY date ORDER BY date"""
    return con.sql(sql).fetchall()


# --------------------------------------------------------------------------------------------
# Polars


def polars_rows(question, lake, start, end, lo):
    import polars as pl

    events = pl.scan_parquet(
        f"{lake}/date=*/*.parquet",
        hive_partitioning=True,
        hive_schema={"date": pl.Date},
    )
    s, e, lo = (dt.date.fromisoformat(x) for x in (start, end, lo))
    user = pl.col("userId")
    # the distinct (user, active day) pairs of the rolling windows' days
    ud = (
        events.filter(pl.col("date").is_between(lo, e) & user.is_not_null())
        .select(user.alias("u"), pl.col("date").alias("a"))
        .unique()
    )
    if question == "dau":
        q = (
            events.filter(pl.col("date").is_between(s, e))
            .group_by("date")
            .agg(user.drop_nulls().n_unique().alias("dau"))
            .sort("date")
        )
    elif question == "mau-month":
        q = events.filter(pl.col("date").is_between(s, e)).select(
            pl.lit(s).alias("date"), user.drop_nulls().n_unique().alias("calendar_mau")
        )
    elif question == "mau-rolling":
        window = dt.timedelta(days=WINDOW)
        iv = (
            ud.sort("u", "a")
            .with_columns(
                pl.min_horizontal(
                    pl.col("a") + window,
                    # sorted by user: the next row's day is the user's next active day
                    pl.when(pl.col("u").shift(-1) == pl.col("u"))
                    .then(pl.col("a").shift(-1))
                    .otherwise(pl.col("a") + window),
                ).alias("b")
            )
            .cache()
        )
        delta = (
            pl.concat(
                [
                    iv.group_by("a").agg(pl.len().cast(pl.Int64).alias("x")).rename({"a": "d"}),
                    iv.group_by("b").agg((-pl.len().cast(pl.Int64)).alias("x")).rename({"b": "d"}),
                ]
            )
            .group_by("d")
            .agg(pl.col("x").sum())
            .sort("d")
            .with_columns(pl.col("x").cum_sum().alias("mau"))
        )
        days = pl.LazyFrame({"date": pl.date_range(s, e, "1d", eager=True)})
        # mau on a day = the running sum at the last delta day on or before it
        q = days.join_asof(
            delta.select(pl.col("d").alias("date"), "mau"), on="date", strategy="backward"
        ).select("date", pl.col("mau").fill_null(0))
    elif question == "mau-join":
        days = pl.LazyFrame({"date": pl.date_range(s, e, "1d", eager=True)})
        q = (
            days.join_where(
                ud,
                pl.col("a") <= pl.col("date"),
                pl.col("a") > pl.col("date") - dt.timedelta(days=WINDOW),
            )
            .group_by("date")
            .agg(pl.col("u").n_unique().alias("mau"))
            .sort("date")
        )
    elif question == "opens":
        per_user = (
            events.filter(pl.col("date").is_between(s, e) & user.is_not_null())
            .group_by("date", "userId")
            .agg(pl.len().cast(pl.Int64).alias("c"))
        )
        hist = (
            per_user.group_by("date", "c")
            .agg(pl.len().cast(pl.Int64).alias("n"))
            .sort("date", "c")
            .with_columns(
                pl.col("n").cum_sum().over("date").alias("below"),
                pl.col("n").sum().over("date").alias("users"),
            )
        )

        def rank(p):
            return (pl.col("users") * p + 99) // 100

        q = (
            hist.group_by("date")
            .agg(
                (pl.col("c") * pl.col("n")).sum().alias("opens"),
                pl.col("n").sum().alias("active_users"),
                ((pl.col("c") * pl.col("n")).sum() / pl.col("n").sum()).alias("mean"),
                pl.col("c").filter(pl.col("below") >= rank(50)).min().alias("p50"),
                pl.col("c").filter(pl.col("below") >= rank(90)).min().alias("p90"),
                pl.col("c").max().alias("max"),
            )
            .sort("date")
        )
    return q.collect().rows()


# --------------------------------------------------------------------------------------------
# DataFusion (Python bindings)


def datafusion_rows(question, lake, start, end, lo):
    import pyarrow as pa
    from datafusion import SessionContext

    ctx = SessionContext()
    ctx.register_parquet("events", f"{lake}/", table_partition_cols=[("date", pa.date32())])
    s, e, lo = f"DATE '{start}'", f"DATE '{end}'", f"DATE '{lo}'"
    # the distinct (user, active day) pairs of the rolling windows' days
    ud = f"""ud AS (
                SELECT DISTINCT "userId" AS u, date AS a FROM events
                WHERE date BETWEEN {lo} AND {e} AND "userId" IS NOT NULL)"""
    if question == "dau":
        sql = f"""
            SELECT date, count(DISTINCT "userId") FROM events
            WHERE date BETWEEN {s} AND {e} GROUP BY date ORDER BY date"""
    elif question == "mau-month":
        sql = f"""
            SELECT {s}, count(DISTINCT "userId") FROM events
            WHERE date BETWEEN {s} AND {e}"""
    elif question == "mau-rolling":
        sql = f"""
            WITH {ud},
            iv AS (
                SELECT a, least(a + {WINDOW}, coalesce(lead(a) OVER (PARTITION BY u ORDER BY a),
                                                       a + {WINDOW})) AS b
                FROM ud),
            pairs AS (
                SELECT unnest(make_array(named_struct('d', a, 'x', 1),
                                         named_struct('d', b, 'x', -1))) AS p
                FROM iv),
            delta AS (SELECT p['d'] AS d, sum(p['x']) AS x FROM pairs GROUP BY p['d']),
            days AS (
                SELECT CAST(value AS DATE) AS d
                FROM generate_series({s}, {e}, INTERVAL '1 day'))
            SELECT days.d, CAST(sum(delta.x) AS BIGINT)
            FROM days JOIN delta ON delta.d <= days.d
            GROUP BY days.d ORDER BY days.d"""
    elif question == "mau-join":
        sql = f"""
            WITH {ud},
            days AS (
                SELECT CAST(value AS DATE) AS d
                FROM generate_series({s}, {e}, INTERVAL '1 day'))
            SELECT days.d, count(DISTINCT ud.u)
            FROM days JOIN ud
              ON ud.a BETWEEN days.d - INTERVAL '{WINDOW - 1} days' AND days.d
            GROUP BY days.d ORDER BY days.d"""
    elif question == "opens":
        sql = f"""
            WITH per_user AS (
                SELECT date, count(*) AS c FROM events
                WHERE date BETWEEN {s} AND {e} AND "userId" IS NOT NULL
                GROUP BY date, "userId"),
            hist AS (SELECT date, c, count(*) AS n FROM per_user GROUP BY date, c),
            cum AS (
                SELECT date, c, n,
                       sum(n) OVER (PARTITION BY date ORDER BY c
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS below,
                       sum(n) OVER (PARTITION BY date) AS users
                FROM hist)
            SELECT date, CAST(sum(c * n) AS BIGINT), CAST(sum(n) AS BIGINT),
                   CAST(sum(c * n) AS DOUBLE) / CAST(sum(n) AS DOUBLE),
                   min(CASE WHEN below >= (users * 50 + 99) / 100 THEN c END),
                   min(CASE WHEN below >= (users * 90 + 99) / 100 THEN c END),
                   max(c)
            FROM cum GROUP BY date ORDER BY date"""
    table = ctx.sql(sql).to_arrow_table()
    return list(zip(*(column.to_pylist() for column in table.columns)))


# --------------------------------------------------------------------------------------------
# chDB (ClickHouse in process)


def chdb_rows(question, lake, start, end, lo):
    import chdb

    files = f"file('{lake}/date=*/*.parquet', Parquet)"
    s, e, lo = f"toDate('{start}')", f"toDate('{end}')", f"toDate('{lo}')"
    settings = "SETTINGS use_hive_partitioning = 1"
    if question == "dau":
        sql = f"""
            SELECT date, uniqExact(userId) FROM {files}
            WHERE date BETWEEN {s} AND {e} GROUP BY date ORDER BY date {settings}"""
    elif question == "mau-month":
        sql = f"""
            SELECT {s}, uniqExact(userId) FROM {files}
            WHERE date BETWEEN {s} AND {e} {settings}"""
    elif question == "mau-rolling":
        # Per user, the sorted array of active days; each day a gives the interval
        # [a, least(a + 30, next day)) as pairs (a, +1), (end, -1).
        sql = f"""
            WITH per_user AS (
                SELECT arraySort(groupUniqArray(date)) AS ds FROM {files}
                WHERE date BETWEEN {lo} AND {e} AND userId IS NOT NULL
                GROUP BY userId),
            delta AS (
                SELECT p.1 AS d, sum(p.2) AS x FROM (
                    SELECT arrayJoin(arrayFlatten(arrayMap(
                        (a, i) -> [(a, 1), (least(addDays(a, {WINDOW}),
                                                  if(i < length(ds), ds[i + 1],
                                                     addDays(a, {WINDOW}))), -1)],
                        ds, arrayEnumerate(ds)))) AS p
                    FROM per_user)
                GROUP BY d),
            days AS (
                SELECT addDays({s}, toInt32(number)) AS day
                FROM numbers(toUInt64(dateDiff('day', {s}, {e}) + 1)))
            SELECT day, toInt64(sum(x)) FROM days CROSS JOIN delta
            WHERE d <= day GROUP BY day ORDER BY day {settings}"""
    elif question == "mau-join":
        sql = f"""
            WITH ud AS (
                SELECT DISTINCT userId AS u, date AS a FROM {files}
                WHERE date BETWEEN {lo} AND {e} AND userId IS NOT NULL),
            days AS (
                SELECT addDays({s}, toInt32(number)) AS day
                FROM numbers(toUInt64(dateDiff('day', {s}, {e}) + 1)))
            SELECT day, toInt64(uniqExact(u)) FROM days CROSS JOIN ud
            WHERE a BETWEEN subtractDays(day, {WINDOW - 1}) AND day
            GROUP BY day ORDER BY day {settings}"""
    elif question == "opens":
        sql = f"""
            WITH per_user AS (
                SELECT date, count() AS c FROM {files}
                WHERE date BETWEEN {s} AND {e} AND userId IS NOT NULL
                GROUP BY date, userId),
            hist AS (SELECT date, c, count() AS n FROM per_user GROUP BY date, c),
            cum AS (
                SELECT date, c, n,
                       sum(n) OVER (PARTITION BY date ORDER BY c
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS below,
                       sum(n) OVER (PARTITION BY date) AS users
                FROM hist)
            SELECT date, toInt64(sum(c * n)), toInt64(sum(n)),
                   toFloat64(sum(c * n)) / toFloat64(sum(n)),
                   minIf(c, below >= intDiv(users * 50 + 99, 100)),
                   minIf(c, below >= intDiv(users * 90 + 99, 100)),
                   max(c)
            FROM cum GROUP BY date ORDER BY date {settings}"""
    # TabSeparated keeps the values as text; the dates are YYYY-MM-DD and floats round-trip.
    text = chdb.query(sql, "TabSeparated").bytes().decode()
    return [
        tuple(None if v == "\\N" else v for v in line.split("\t"))
        for line in text.splitlines()
        if line
    ]


ENGINES = {
    "duckdb": duckdb_rows,
    "polars": polars_rows,
    "datafusion": datafusion_rows,
    "chdb": chdb_rows,
}


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ENGINES or sys.argv[2] not in HEADERS:
        sys.exit(__doc__)
    engine, question, lake, start, end = sys.argv[1:]
    lo = (dt.date.fromisoformat(start) - dt.timedelta(days=WINDOW - 1)).isoformat()
    rows = ENGINES[engine](question, lake.rstrip("/"), start, end, lo)
    out = [HEADERS[question]]
    out.extend(",".join(fmt(v) for v in row) for row in rows)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
