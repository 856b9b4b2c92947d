#!/usr/bin/env bash
# What the tests start: PostgreSQL from Debian; GCS and S3 servers, the Parquet writers and the
# DuckDB oracle of tests/writers.py, and Spark (tests/spark_sink.py, on the machine's Java 17),
# from PyPI in one virtualenv, whose folder it prints.
# Idempotent: installs only what is missing. Called by .ci/run and by the tests themselves.
set -euo pipefail
# PostgreSQL's server programs, for the export tests (each test starts a private server), and
# openssl, which makes the certificates of the one that takes TLS only.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v openssl >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq postgresql openssl; } >&2
fi
# Java, for Spark.
if ! command -v java >/dev/null; then
  { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; } >&2
fi
venv="${DAU_TEST_VENV:-$HOME/.cache/dau/test-venv}"
if [ ! -x "$venv/bin/gcp-storage-emulator" ] || [ ! -x "$venv/bin/moto_server" ] ||
  ! "$venv/bin/python" -c 'import pyarrow, duckdb, polars, pyspark' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'gcp-storage-emulator==2026.7.19' 'moto[server]==5.2.5' \
    'pyarrow==26.0.1' 'duckdb==2.0.1' 'polars==2.1.0' 'pyspark==4.3.0' >&2
fi
echo "$venv"
