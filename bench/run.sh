#!/usr/bin/env bash
# Benchmark: times `dau query` as whole processes on a generated lake (~25M events over 60 days),
# beside DuckDB (from PyPI) on the same files and questions, and checks that both give the same rows.
# Usage: bash bench/run.sh   (or `just bench`). Results: bench/out/results.md
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
cargo build --release
dau="$PWD/target/release/dau"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then dau="$CARGO_TARGET_DIR/release/dau"; fi

users="${BENCH_USERS:-1150000}"
days=60
lake="$out/lake-${users}u-${days}d"
if [ ! -f "$lake/.dau-gen-complete" ]; then
  rm -rf "$lake"
  "$dau" gen --out "$lake" --users "$users" --days "$days" --start 2024-06-01 --files-per-day 4
fi

if [ ! -x "$out/venv/bin/python" ]; then
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install -q duckdb
fi
py="$out/venv/bin/python"

# The questions: (name, dau arguments, DuckDB question for bench/duckdb_query.py)
names=(dau-all-days dau-one-day mau-calendar-month)
dau_args=(
  "query dau --from 2024-06-01 --to 2024-07-30"
  "query dau --from 2024-07-15 --to 2024-07-15"
  "query mau --calendar --from 2024-06-01 --to 2024-06-30"
)
duck_args=(
  "dau 2024-06-01 2024-07-30"
  "dau 2024-07-15 2024-07-15"
  "mau-month 2024-06-01 2024-06-30"
)

# Same rows from both engines, or the benchmark stops.
for i in "${!names[@]}"; do
  "$dau" ${dau_args[$i]} --lake "$lake" --format csv > "$out/${names[$i]}.dau.csv"
  "$py" bench/duckdb_query.py "$lake" ${duck_args[$i]} > "$out/${names[$i]}.duckdb.csv"
  if ! diff -q "$out/${names[$i]}.dau.csv" "$out/${names[$i]}.duckdb.csv" >/dev/null; then
    echo "bench: ${names[$i]}: dau and DuckDB disagree (see $out/${names[$i]}.*.csv)" >&2
    exit 1
  fi
done
echo "bench: dau and DuckDB agree on every question"

: > "$out/results.md"
for i in "${!names[@]}"; do
  hyperfine --warmup 1 --runs "${BENCH_RUNS:-5}" --export-markdown "$out/${names[$i]}.md" \
    -n "dau ${names[$i]}" "$dau ${dau_args[$i]} --lake $lake --format csv" \
    -n "duckdb ${names[$i]}" "$py bench/duckdb_query.py $lake ${duck_args[$i]}"
  cat "$out/${names[$i]}.md" >> "$out/results.md"
  echo >> "$out/results.md"
done
echo "bench: results in $out/results.md"
cat "$out/results.md"
