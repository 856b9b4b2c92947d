#!/usr/bin/env bash
# Benchmark: `dau query` beside DuckDB, Polars, DataFusion (Python) and chDB, all reading the same
# generated Parquet lakes, as whole cold processes. Every engine must give the same rows for every
# question before anything is timed. Results: bench/out/results.md (also printed).
#
# Usage: bash bench/run.sh   (or `just bench`)
# Settings (environment):
#   BENCH_LAKES="S M"      lakes: tiny (20k users, 40 days, a smoke test), S (~25M events, 60 days),
#                          M (~250M events, 365 days), S-text (S with text ids: "u123"), S-files
#                          (S in 200 small files a day, as Kafka Connect writes), L (~1B
#                          events, 365 days, 7.3 GB: for the memory target; peers may run out of
#                          memory); generated once into bench/out/
#   BENCH_RUNS=5           timed runs per command (after 1 warmup run)
#   BENCH_TIMEOUT=600      seconds before a peer's run is abandoned ("> cap"; left out of the check)
#   BENCH_SLOW=60          a peer slower than this many seconds is timed by its one checked run only
#   BENCH_PEERS="duckdb polars datafusion chdb"   peers to run
#   BENCH_QUESTIONS="dau-all-days dau-one-day month-distinct mau-rolling opens-per-user"
#                          (also mau-join: mau-rolling with the peers written as the 30-day range
#                          join most SQL users write; slow, so not run unless asked for)
#   BENCH_DAU_ENGINES=""   extra dau rows with --engine X (e.g. "sql bitmap"), when dau has --engine
#   BENCH_CHECK_ONLY=1     check that all engines agree, without timing (each runs once)
#   BENCH_NO_BUILD=1       use the existing release binary instead of `cargo build --release`
#   BENCH_DAU=PATH         the dau binary to time (implies no build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"

runs="${BENCH_RUNS:-5}"
cap="${BENCH_TIMEOUT:-600}"
slow="${BENCH_SLOW:-60}"
lakes="${BENCH_LAKES:-S M}"
peers="${BENCH_PEERS:-duckdb polars datafusion chdb}"
questions="${BENCH_QUESTIONS:-dau-all-days dau-one-day month-distinct mau-rolling opens-per-user}"
dau_engines="${BENCH_DAU_ENGINES:-}"
check_only=0
case "${BENCH_CHECK_ONLY:-0}" in 0 | "") ;; *) check_only=1 ;; esac

say() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# 1. dau itself
if [ -n "${BENCH_DAU:-}" ]; then
  dau="$BENCH_DAU"
else
  case "${BENCH_NO_BUILD:-0}" in 0 | "") cargo build --release ;; esac
  dau="$PWD/target/release/dau"
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then dau="$CARGO_TARGET_DIR/release/dau"; fi
fi
[ -x "$dau" ] || die "no dau binary at $dau (build it, or set BENCH_DAU)"

# Tools: hyperfine for timing, GNU time for peak memory, timeout for the cap.
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt)"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Peers: pinned versions from PyPI in a venv, installed only when one of them is missing.
venv="$PWD/$out/venv"
py="$venv/bin/python"
[ -x "$py" ] || python3 -m venv "$venv"
if ! "$py" -c 'import duckdb, polars, datafusion, chdb, pyarrow' 2>/dev/null; then
  say "installing the peers into $venv"
  "$venv/bin/pip" install -q -r bench/requirements.txt
fi

# What this dau can do: an old build has no rollups and no --engine.
has_rollups=0
if "$dau" rollup --help >/dev/null 2>&1; then has_rollups=1; fi
has_engine=0
if "$dau" --help 2>/dev/null | grep -q -- '--engine'; then has_engine=1; fi
if [ "$has_rollups" = 0 ]; then say "this dau has no rollups: no 'dau (warm rollups)' rows"; fi
if [ -n "$dau_engines" ] && [ "$has_engine" = 0 ]; then
  say "this dau has no --engine: BENCH_DAU_ENGINES=$dau_engines is ignored"
  dau_engines=""
fi

day() { date -u -d "$1" +%F; }

# The lakes: name -> users days start id-type files-per-day.
lake_shape() {
  case "$1" in
    tiny) echo "20000 40 2024-06-01 int64 4" ;;
    S) echo "1150000 60 2024-06-01 int64 4" ;;
    S-text) echo "1150000 60 2024-06-01 string 4" ;;
    S-files) echo "1150000 60 2024-06-01 int64 200" ;;
    M) echo "3790000 365 2023-01-01 int64 4" ;;
    L) echo "15200000 365 2023-01-01 int64 4" ;;
    *) die "unknown lake '$1' in BENCH_LAKES (tiny, S, S-text, S-files, M, L)" ;;
  esac
}

peer_label() {
  case "$1" in
    duckdb) echo "DuckDB" ;;
    polars) echo "Polars" ;;
    datafusion) echo "DataFusion (Python)" ;;
    chdb) echo "chDB" ;;
    *) die "unknown peer '$1' in BENCH_PEERS (duckdb polars datafusion chdb)" ;;
  esac
}

records="$out/records.tsv"
: >"$records"
runs_dir="$out/runs"
rm -rf "$runs_dir"
mkdir -p "$runs_dir"

# check_run FILE_STEM CMD... : runs CMD once (capped), its CSV to FILE_STEM.csv, stderr to
# FILE_STEM.err, "seconds max_rss_kb" to FILE_STEM.time; returns the exit status (124: over the cap).
check_run() {
  local stem="$1"
  shift
  local status=0
  timeout "$cap" /usr/bin/time -f '%e %M' -o "$stem.time" "$@" >"$stem.csv" 2>"$stem.err" || status=$?
  return "$status"
}

for lake_name in $lakes; do
  read -r users days start id_type files <<<"$(lake_shape "$lake_name")"
  lake="$PWD/$out/lake-${users}u-${days}d"
  if [ "$id_type" != int64 ]; then lake="$lake-$id_type"; fi
  if [ "$files" != 4 ]; then lake="$lake-${files}files"; fi
  if [ ! -f "$lake/.dau-gen-complete" ]; then
    rm -rf "$lake"
    say "generating lake $lake_name: $users users over $days days from $start ($id_type ids, $files files a day)"
    "$dau" gen --out "$lake" --users "$users" --days "$days" --start "$start" \
      --files-per-day "$files" --id-type "$id_type"
  fi
  first=$(basename "$(find "$lake" -maxdepth 1 -name 'date=*' | sort | head -n 1)")
  last=$(basename "$(find "$lake" -maxdepth 1 -name 'date=*' | sort | tail -n 1)")
  first=${first#date=}
  last=${last#date=}
  one_day=$(day "$last - 7 days")
  # The last whole calendar month in the lake.
  month_end=$(day "$(date -u -d "$last + 1 day" +%Y-%m-01) - 1 day")
  month_start=$(date -u -d "$month_end" +%Y-%m-01)

  cold="$PWD/$out/rollups-$lake_name-cold"
  warm="$PWD/$out/rollups-$lake_name-warm"
  rollup_seconds=""
  rollup_rss=""
  if [ "$has_rollups" = 1 ]; then
    rm -rf "$warm"
    say "$lake_name: building the rollups once (dau rollup)"
    /usr/bin/time -f '%e %M' -o "$runs_dir/$lake_name.rollup.time" \
      "$dau" --rollups "$warm" rollup --lake "$lake" --from "$first" --to "$last" -q \
      >"$runs_dir/$lake_name.rollup.out" 2>"$runs_dir/$lake_name.rollup.err" ||
      die "$lake_name: dau rollup failed: $(tail -n 5 "$runs_dir/$lake_name.rollup.err")"
    read -r rollup_seconds rollup_rss <"$runs_dir/$lake_name.rollup.time"
  fi
  printf 'lake\t%s\t%s\t%s\t%s\t%s\t%s\n' "$lake_name" "$lake" "$first" "$last" \
    "$rollup_seconds" "$rollup_rss" >>"$records"

  for q in $questions; do
    case "$q" in
      dau-all-days) dau_q=(query dau --from "$first" --to "$last"); peer_q=(dau "$first" "$last") ;;
      dau-one-day) dau_q=(query dau --from "$one_day" --to "$one_day"); peer_q=(dau "$one_day" "$one_day") ;;
      month-distinct)
        if [[ "$month_start" < "$first" ]]; then
          say "$lake_name: no whole calendar month in the lake: month-distinct skipped"
          continue
        fi
        dau_q=(query mau --calendar --from "$month_start" --to "$month_end")
        peer_q=(mau-month "$month_start" "$month_end")
        ;;
      mau-rolling) dau_q=(query mau --from "$first" --to "$last"); peer_q=(mau-rolling "$first" "$last") ;;
      mau-join) dau_q=(query mau --from "$first" --to "$last"); peer_q=(mau-join "$first" "$last") ;;
      opens-per-user) dau_q=(query opens --from "$first" --to "$last"); peer_q=(opens "$first" "$last") ;;
      *) die "unknown question '$q' in BENCH_QUESTIONS" ;;
    esac
    printf 'question\t%s\t%s\tdau %s\n' "$lake_name" "$q" "${dau_q[*]}" >>"$records"

    # The commands: label, key (file name), command, prepare command (or empty).
    labels=() keys=() cmds=() prepares=()
    add() { labels+=("$1"); keys+=("$2"); cmds+=("$3"); prepares+=("$4"); }
    dau_tail="${dau_q[*]} --lake $lake --format csv -q"
    if [ "$has_rollups" = 1 ]; then
      add "dau (cold)" dau-cold "$dau --rollups $cold $dau_tail" "rm -rf $cold"
      for e in $dau_engines; do
        add "dau --engine $e (cold)" "dau-$e-cold" "$dau --rollups $cold --engine $e $dau_tail" "rm -rf $cold"
      done
      # (--engine sql never reads rollups: its cold row is its only row.)
      add "dau (warm rollups)" dau-warm "$dau --rollups $warm $dau_tail" ""
    else
      add "dau (cold)" dau-cold "$dau $dau_tail" ""
      for e in $dau_engines; do
        add "dau --engine $e (cold)" "dau-$e-cold" "$dau --engine $e $dau_tail" ""
      done
    fi
    for p in $peers; do
      add "$(peer_label "$p")" "$p" "$py $PWD/bench/peers.py $p ${peer_q[0]} $lake ${peer_q[*]:1}" ""
    done

    # 5. The check: one capped run of each command; all answers must hold the same rows.
    say "$lake_name $q: checking that every engine gives the same rows"
    compare_args=()
    statuses=()
    for i in "${!cmds[@]}"; do
      stem="$runs_dir/$lake_name.$q.${keys[$i]}"
      if [ -n "${prepares[$i]}" ]; then ${prepares[$i]}; fi
      status=0
      # shellcheck disable=SC2086 # the command is a plain word list
      check_run "$stem" ${cmds[$i]} || status=$?
      statuses+=("$status")
      case "${keys[$i]}" in
        dau*) [ "$status" = 0 ] || die "$lake_name $q: ${labels[$i]} failed (exit $status): $(tail -n 5 "$stem.err") (command: ${cmds[$i]})" ;;
      esac
      if [ "$status" = 0 ]; then
        compare_args+=("${labels[$i]}=$stem.csv")
      elif [ "$status" = 124 ]; then
        say "$lake_name $q: ${labels[$i]} took more than ${cap}s: left out of the check and the timing"
      else
        say "$lake_name $q: ${labels[$i]} failed (exit $status, see $stem.err): left out of the check and the timing"
      fi
    done
    "$py" bench/compare.py "${compare_args[@]}" ||
      die "$lake_name $q: the engines above disagree; their answers are in $runs_dir/$lake_name.$q.*.csv"

    # 6. Timing, and 7. peak memory (from the checked run).
    for i in "${!cmds[@]}"; do
      stem="$runs_dir/$lake_name.$q.${keys[$i]}"
      status="${statuses[$i]}"
      rss=""
      if [ "$status" = 0 ]; then
        read -r seconds rss <"$stem.time"
      fi
      if [ "$status" = 124 ]; then
        printf 'result\t%s\t%s\t%s\ttimeout\t%s\t\t%s\n' "$lake_name" "$q" "${labels[$i]}" "$cap" "${cmds[$i]}" >>"$records"
      elif [ "$status" != 0 ]; then
        printf 'result\t%s\t%s\t%s\tfailed\t%s\t\t%s\n' "$lake_name" "$q" "${labels[$i]}" "$status" "${cmds[$i]}" >>"$records"
      elif [ "$check_only" = 1 ] ||
        { [[ "${keys[$i]}" != dau* ]] && awk -v s="$seconds" -v t="$slow" 'BEGIN { exit !(s > t) }'; }; then
        [ "$check_only" = 1 ] || say "$lake_name $q: ${labels[$i]} took ${seconds}s: timed by that one run"
        printf 'result\t%s\t%s\t%s\tsingle\t%s\t%s\t%s\n' "$lake_name" "$q" "${labels[$i]}" "$seconds" "$rss" "${cmds[$i]}" >>"$records"
      else
        say "$lake_name $q: timing ${labels[$i]}"
        prepare=()
        if [ -n "${prepares[$i]}" ]; then prepare=(--prepare "${prepares[$i]}"); fi
        hyperfine -N --style basic --warmup 1 --runs "$runs" "${prepare[@]}" \
          --export-json "$stem.json" -n "${labels[$i]}" "${cmds[$i]}" >&2
        printf 'result\t%s\t%s\t%s\thyperfine\t%s\t%s\t%s\n' "$lake_name" "$q" "${labels[$i]}" "$stem.json" "$rss" "${cmds[$i]}" >>"$records"
      fi
    done
  done
done

# 8. The report.
"$py" bench/report.py "$records" "$dau" "$runs" "$cap" >"$out/results.md"
say "results in $out/results.md"
cat "$out/results.md"
