"""Lakes written by other Parquet writers, for tests/writers.rs.

Usage: python writers.py OUT
Writes OUT/<name>/date=YYYY-MM-DD/part-N.parquet for every lake below, each file by pyarrow,
DuckDB or Polars with its own codec, page version, encoding and statistics, and OUT/<name>.csv:
what DuckDB (not dau) counts per day: date, opens, active users, most opens of a user, NULL ids.
Deterministic: the same files and counts on every run.
"""

import datetime
import os
import random
import sys
import uuid

import duckdb
import polars
import pyarrow as pa
import pyarrow.parquet as pq

DAYS = [datetime.date(2024, 3, 1), datetime.date(2024, 3, 2)]
ROWS = 30_000

# name: (id kind, [(writer, options) per file of a day])
LAKES = {
    "pyarrow-int64-dictionary-overflowing": ("int64", [
        ("pyarrow", dict(compression="snappy", dictionary_pagesize_limit=4096, data_page_size=2048)),
        ("pyarrow", dict(compression="zstd", data_page_version="2.0", row_group_size=7000)),
    ]),
    "pyarrow-int32-delta-v2": ("int32", [
        ("pyarrow", dict(compression="zstd", data_page_version="2.0", use_dictionary=False,
                         column_encoding={"userId": "DELTA_BINARY_PACKED"})),
        ("pyarrow", dict(compression="gzip", use_dictionary=False, write_statistics=False)),
    ]),
    "pyarrow-int64-byte-stream-split": ("int64", [
        ("pyarrow", dict(compression="lz4", use_dictionary=False,
                         column_encoding={"userId": "BYTE_STREAM_SPLIT"}, write_statistics=False)),
        ("pyarrow", dict(compression="brotli", data_page_version="2.0", write_page_index=True)),
    ]),
    "pyarrow-widths": ("widths", [
        ("pyarrow", dict(compression="snappy")),
        ("pyarrow", dict(compression="none", data_page_version="2.0", use_dictionary=False)),
    ]),
    "pyarrow-text-delta": ("string", [
        ("pyarrow", dict(compression="lz4", data_page_version="2.0", use_dictionary=False,
                         column_encoding={"userId": "DELTA_LENGTH_BYTE_ARRAY"})),
        ("pyarrow", dict(compression="brotli", use_dictionary=False, write_statistics=False,
                         column_encoding={"userId": "DELTA_BYTE_ARRAY"})),
    ]),
    "pyarrow-text-dictionary-overflowing": ("large_string", [
        ("pyarrow", dict(compression="zstd", dictionary_pagesize_limit=2048, data_page_size=1024,
                         write_page_index=True)),
        ("pyarrow", dict(compression="none", data_page_version="2.0", row_group_size=5000)),
    ]),
    "pyarrow-categorical": ("categorical", [
        ("pyarrow", dict(compression="snappy")),
        ("pyarrow", dict(compression="gzip", data_page_version="2.0")),
    ]),
    "duckdb-int64": ("int64", [
        ("duckdb", "COMPRESSION zstd, PARQUET_VERSION V2, ROW_GROUP_SIZE 8192"),
        ("duckdb", "COMPRESSION snappy, PARQUET_VERSION V1"),
    ]),
    "duckdb-text": ("string", [
        ("duckdb", "COMPRESSION snappy, PARQUET_VERSION V2"),
        ("duckdb", "COMPRESSION uncompressed, PARQUET_VERSION V1, ROW_GROUP_SIZE 4096"),
    ]),
    "polars-int64": ("int64", [
        ("polars", dict(compression="lz4", row_group_size=9000)),
        ("polars", dict(compression="zstd", statistics=False)),
    ]),
    "polars-text": ("string", [
        ("polars", dict(compression="snappy", data_page_size=4096)),
        ("polars", dict(compression="uncompressed", row_group_size=10000)),
    ]),
    # ClickHouse's UInt64 and hashed ids: half of them 2^63 or more.
    "pyarrow-uint64": ("uint64", [
        ("pyarrow", dict(compression="snappy")),
        ("pyarrow", dict(compression="zstd", data_page_version="2.0", use_dictionary=False,
                         column_encoding={"userId": "DELTA_BINARY_PACKED"})),
    ]),
    # Strings without the UTF-8 annotation, as Impala and older Hive write them.
    "pyarrow-binary": ("binary", [
        ("pyarrow", dict(compression="snappy")),
        ("pyarrow", dict(compression="none", use_dictionary=False, write_statistics=False)),
    ]),
    # Whole decimals, as Spark's JDBC reads NUMBER(19) ids and Snowflake unloads NUMBER(38,0):
    # 16 bytes (pyarrow's DECIMAL(38,0)) and INT64 (DuckDB's DECIMAL(18,0)).
    "decimal": ("decimal", [
        ("pyarrow", dict(compression="snappy")),
        ("duckdb", "COMPRESSION zstd, PARQUET_VERSION V2"),
    ]),
    # DuckDB's UUID type: 16 bytes with Parquet's UUID annotation.
    "duckdb-uuid": ("uuid", [
        ("duckdb", "COMPRESSION zstd, PARQUET_VERSION V2"),
        ("duckdb", "COMPRESSION snappy, PARQUET_VERSION V1, ROW_GROUP_SIZE 4096"),
    ]),
}


def ids(kind, file, rng):
    """One file's user ids: users coming back often or once, some NULL, ids of every sign and size."""
    out = []
    for _ in range(ROWS):
        if rng.random() < 0.03:
            out.append(None)
            continue
        user = int(rng.paretovariate(1.1)) % 4000 if rng.random() < 0.6 else rng.randrange(40_000)
        if kind in ("string", "large_string", "categorical", "binary"):
            out.append(["u", "用户-", "", "x" * 30][user % 4] + str(user))
        elif kind == "uuid":
            out.append(str(uuid.UUID(int=user * 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835 % 2**128)))
        elif kind == "decimal":
            out.append(user * 0x9E37_79B9_7F4A_7C15 % 10**18 - 5 * 10**17)
        elif kind == "uint64":
            out.append(user * 0x9E37_79B9_7F4A_7C15 % 2**64)
        elif kind in ("int32", "widths"):
            out.append(user * 53_681 - 2**30)
        else:
            out.append(user * 0x9E37_79B9_7F4A_7C15 % 2**63 - 2**62)
    return out


def column(kind, file, values):
    if kind == "int32" or (kind == "widths" and file == 0):
        return pa.array(values, pa.int32())
    if kind == "int64" or kind == "widths":
        return pa.array(values, pa.int64())
    if kind == "large_string":
        return pa.array(values, pa.large_string())
    if kind == "uint64":
        return pa.array(values, pa.uint64())
    if kind == "decimal":
        return pa.array(values, pa.decimal128(38, 0))
    if kind == "binary":
        return pa.array([v and v.encode() for v in values], pa.binary())
    if kind == "categorical":
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, pa.string())


def write(path, writer, options, table, kind):
    if writer == "pyarrow":
        pq.write_table(table, path, **options)
    elif writer == "duckdb":
        con = duckdb.connect()
        con.register("t", table)
        # UUIDs come as their text: DuckDB writes them as its UUID type.
        select = {
            "uuid": "SELECT seq, userId::UUID AS userId FROM t",
            "decimal": "SELECT seq, userId::DECIMAL(18, 0) AS userId FROM t",
        }.get(kind, "SELECT * FROM t")
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet, {options})")
    else:
        polars.from_arrow(table).write_parquet(path, **options)


def main(out):
    for name, (kind, files) in LAKES.items():
        rng = random.Random(name)
        lake = os.path.join(out, name)
        for day in DAYS:
            folder = os.path.join(lake, f"date={day}")
            os.makedirs(folder, exist_ok=True)
            for file, (writer, options) in enumerate(files):
                values = ids(kind, file, rng)
                table = pa.table({"seq": pa.array(range(ROWS), pa.int64()),
                                  "userId": column(kind, file, values)})
                write(os.path.join(folder, f"part-{file}.parquet"), writer, options, table, kind)
        per_user = f"""
            select date, userId, count(*) as n
            from read_parquet('{lake}/*/*.parquet', hive_partitioning = true, union_by_name = true)
            where userId is not null group by all"""
        counts = duckdb.sql(f"""
            with per_user as ({per_user}),
            nulls as (
                select date, count(*) - count(userId) as nulls
                from read_parquet('{lake}/*/*.parquet', hive_partitioning = true, union_by_name = true) group by all)
            select strftime(date, '%Y-%m-%d'), sum(n), count(*), max(n), any_value(nulls)
            from per_user join nulls using (date) group by date order by date""").fetchall()
        with open(os.path.join(out, f"{name}.csv"), "w") as f:
            for row in counts:
                f.write(",".join(str(v) for v in row) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
