"""Lakes partitioned by a column of timestamps, for tests/writers.rs.

Usage: python timestamp_partitions.py IN OUT
Reads IN, a CSV of userId,date rows, and writes the rows with `date` as a timestamp at midnight,
partitioned by it, once by each writer as it spells such partitions:
  OUT/pyarrow   pyarrow (as pandas' to_parquet(partition_cols=…)): date=2024-06-01%2000%3A00%3A00.000000000
  OUT/pyarrow-utc  the same with a zone: …%3A00.000000Z
  OUT/polars    Polars' write_parquet(partition_by=…)
  OUT/duckdb    DuckDB's COPY … (PARTITION_BY …): date=2024-06-01%2000%3A00%3A00
  OUT/spark     Spark's partitionBy: date=2024-06-01 00%3A00%3A00
and, with each row at an hour of its day (pandas' ts.dt.floor("h")), partitioned by the hour:
  OUT/pyarrow-hours  hour=2024-06-01%2013%3A00%3A00.000000000
  OUT/pyarrow-utc-hours  the same with a zone: …%3A00.000000Z
  OUT/pyarrow-utc-half-hours  hours of a zone half an hour off UTC (India's): …%2013%3A30%3A00.000000Z
  OUT/spark-hours    hour=2024-06-01 13%3A00%3A00
"""

import csv
import datetime
import sys

import duckdb
import polars
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

source, out = sys.argv[1], sys.argv[2]
with open(source) as f:
    rows = [(int(r["userId"]), datetime.date.fromisoformat(r["date"])) for r in csv.DictReader(f)]
users = pa.array([u for u, _ in rows], pa.int64())
midnights = [datetime.datetime.combine(d, datetime.time()) for _, d in rows]
hours = [m + datetime.timedelta(hours=(u * 7 + i) % 24) for i, ((u, _), m) in enumerate(zip(rows, midnights))]

naive = pa.table({"userId": users, "date": pa.array(midnights, pa.timestamp("ns"))})
pq.write_to_dataset(naive, f"{out}/pyarrow", partition_cols=["date"])
utc = pa.table({"userId": users, "date": pa.array(midnights, pa.timestamp("us", tz="UTC"))})
pq.write_to_dataset(utc, f"{out}/pyarrow-utc", partition_cols=["date"])
polars.from_arrow(naive).write_parquet(f"{out}/polars", partition_by=["date"])
hourly = pa.table({"userId": users, "hour": pa.array(hours, pa.timestamp("ns"))})
pq.write_to_dataset(hourly, f"{out}/pyarrow-hours", partition_cols=["hour"])
utc_hours = pa.table({"userId": users, "hour": pa.array(hours, pa.timestamp("us", tz="UTC"))})
pq.write_to_dataset(utc_hours, f"{out}/pyarrow-utc-hours", partition_cols=["hour"])
halves = pa.array([h + datetime.timedelta(minutes=30) for h in hours], pa.timestamp("us", tz="UTC"))
utc_halves = pa.table({"userId": users, "hour": halves})
pq.write_to_dataset(utc_halves, f"{out}/pyarrow-utc-half-hours", partition_cols=["hour"])

con = duckdb.connect()
con.register("naive", naive)
con.execute(f"COPY naive TO '{out}/duckdb' (FORMAT parquet, PARTITION_BY (date))")

spark = (
    SparkSession.builder.master("local[1]")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", "1")
    .config("spark.sql.session.timeZone", "UTC")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
frame = spark.createDataFrame(
    [(u, m) for u, m in zip(users.to_pylist(), midnights)], "userId LONG, date TIMESTAMP_NTZ"
)
frame.write.partitionBy("date").parquet(f"{out}/spark")
frame = spark.createDataFrame(
    [(u, h) for u, h in zip(users.to_pylist(), hours)], "userId LONG, hour TIMESTAMP_NTZ"
)
frame.write.partitionBy("hour").parquet(f"{out}/spark-hours")
spark.stop()
