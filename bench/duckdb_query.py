"""The benchmark's questions in DuckDB, printed as CSV exactly as `dau query --format csv` prints them.

Usage: duckdb_query.py LAKE (dau|mau-month) FROM TO
"""
import sys

import duckdb

lake, question, start, end = sys.argv[1:5]
files = f"read_parquet('{lake}/date=*/*.parquet', hive_partitioning = true)"
if question == "dau":
    sql = f"""
        SELECT date, count(DISTINCT userId) AS dau FROM {files}
        WHERE date BETWEEN DATE '{start}' AND DATE '{end}'
        GROUP BY date ORDER BY date"""
    header = "date,dau"
elif question == "mau-month":
    sql = f"""
        SELECT CAST(date_trunc('month', date) AS DATE) AS month, count(DISTINCT userId) AS mau
        FROM {files}
        WHERE date BETWEEN DATE '{start}' AND DATE '{end}'
        GROUP BY 1 ORDER BY 1"""
    header = "date,mau"
else:
    sys.exit(f"unknown question {question}")
print(header)
for row in duckdb.sql(sql).fetchall():
    print(f"{row[0]},{row[1]}")
