#!/usr/bin/env bash
# Remote benchmark: dau reading a lake in a GCS bucket whose every request waits BENCH_LATENCY
# for its first byte (a real GCS JSON-API server, gcp-storage-emulator, behind bench/lagproxy.py),
# cold (no rollups) and with warm rollups in the same bucket. dau only: the peers cannot read
# this server. It measures how many round trips a query costs, not GCS's bandwidth.
#
# Usage: bash bench/remote.sh   (or `just bench-remote`)
# Settings (environment):
#   BENCH_LATENCY=0.03     seconds each request waits (0 for none)
#   BENCH_USERS=1150000 BENCH_DAYS=30   the lake (`dau gen`, about 15M events by default)
#   BENCH_FILES=4          Parquet files a day (e.g. 100: many small files, as Kafka Connect writes)
#   BENCH_RUNS=5           timed runs per command (after 1 warmup run)
#   BENCH_DAU=PATH         the dau binary to time (default: build the release one)
set -euo pipefail
cd "$(dirname "$0")/.."
latency="${BENCH_LATENCY:-0.03}"
users="${BENCH_USERS:-1150000}"
days="${BENCH_DAYS:-30}"
files="${BENCH_FILES:-4}"
runs="${BENCH_RUNS:-5}"
if [ -n "${BENCH_DAU:-}" ]; then
  dau="$BENCH_DAU"
else
  cargo build --release
  dau="${CARGO_TARGET_DIR:-$PWD/target}/release/dau"
fi
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; }
venv="$(bash .ci/test-tools.sh)"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
server_port="$(port)"
proxy_port="$(port)"
log="$(mktemp -d)"
# (Its connection backlog raised, as for the tests.)
"$venv/bin/python" .ci/gcs_server.py start --host 127.0.0.1 --port "$server_port" --default-bucket lake --in-memory >"$log/gcs.log" 2>&1 &
server=$!
python3 bench/lagproxy.py "$proxy_port" "$server_port" "$latency" >"$log/proxy.log" 2>&1 &
proxy=$!
trap 'kill $server $proxy 2>/dev/null || true; rm -rf "$log"' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$server_port/storage/v1/b" >/dev/null && break
  sleep 0.1
done

direct=(--endpoint "http://127.0.0.1:$server_port" --anonymous)
far=(--endpoint "http://127.0.0.1:$proxy_port" --anonymous)
"$dau" -q gen --out gs://lake/events "${direct[@]}" --users "$users" --days "$days" \
  --files-per-day "$files"
first=2024-06-01
last="$(date -d "$first + $((days - 1)) days" +%F)"
middle="$(date -d "$first + $((days / 2)) days" +%F)"
month_end="$(date -d "$first + 1 month - 1 day" +%F)"
"$dau" -q --rollups gs://lake/rollups "${direct[@]}" rollup --lake gs://lake/events
echo "dau $("$dau" --version | cut -d' ' -f2): $users users, $days days of $files files in gs://lake/events, ${latency}s a request"

cold=("$dau" --rollups off "${far[@]}" query)
warm=("$dau" --rollups gs://lake/rollups "${far[@]}" query)
lake=(--lake gs://lake/events)
hyperfine -N --style basic --warmup 1 --runs "$runs" \
  -n "cold: DAU every day" "${cold[*]} dau ${lake[*]} --from $first --to $last" \
  -n "cold: DAU one day" "${cold[*]} dau ${lake[*]} --from $middle --to $middle" \
  -n "cold: distinct users of the first month" "${cold[*]} mau --calendar ${lake[*]} --from $first --to $month_end" \
  -n "warm rollups: MAU every day" "${warm[*]} mau ${lake[*]} --from $first --to $last"
