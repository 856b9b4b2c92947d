"""Writes bench/out/results.md (to stdout) from the records bench/run.sh collected.

Usage: report.py RECORDS DAU_BINARY RUNS CAP

RECORDS is a TSV file of lines:
  lake      NAME PATH FIRST LAST ROLLUP_SECONDS ROLLUP_RSS_KB
  question  LAKE QUESTION DAU_COMMAND
  result    LAKE QUESTION ENGINE STATUS VALUE RSS_KB COMMAND
with STATUS hyperfine (VALUE: its JSON export), single (VALUE: seconds of the one checked run),
timeout (VALUE: the cap in seconds) or failed (VALUE: the exit status).
"""

import datetime as dt
import json
import os
import platform
import subprocess
import sys

QUESTIONS = {
    "dau-all-days": "distinct users per day, every day of the lake",
    "dau-one-day": "distinct users of one day near the end",
    "month-distinct": "distinct users of one whole calendar month",
    "mau-rolling": "distinct users of the 30 days ending on each day, every day of the lake",
    "mau-join": "mau-rolling, the peers written as a 30-day range join with COUNT(DISTINCT)",
    "opens-per-user": "events, active users, opens per user (mean, p50, p90, max) per day",
}


def seconds(value):
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def duration(mean, sd):
    """'84.5 ms ± 17.6' below a second, '2.74 s ± 0.05' above."""
    if mean < 1:
        text = f"{mean * 1000:.1f} ms"
        return text + (f" ± {sd * 1000:.1f}" if sd is not None else "")
    return f"{seconds(mean)} s" + (f" ± {seconds(sd)}" if sd is not None else "")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {memory} memory, {cpu}"


def versions(dau):
    import chdb
    import datafusion
    import duckdb
    import polars
    import pyarrow

    try:
        dau_version = subprocess.run(
            [dau, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        dau_version = "dau (version unknown)"
    try:
        clickhouse = chdb.query("SELECT version()", "TabSeparated").bytes().decode().strip()
    except Exception:  # noqa: BLE001 - only a label
        clickhouse = "?"
    return [
        f"{dau_version} ({dau})",
        f"DuckDB {duckdb.__version__}",
        f"Polars {polars.__version__}",
        f"DataFusion (Python) {datafusion.__version__}",
        f"chDB {chdb.__version__} (ClickHouse {clickhouse})",
        f"PyArrow {pyarrow.__version__}, Python {platform.python_version()}",
    ]


def lake_facts(path):
    import duckdb

    events, files = duckdb.sql(
        f"SELECT sum(num_rows), count(*) FROM parquet_file_metadata('{path}/date=*/*.parquet')"
    ).fetchall()[0]
    size = 0
    for root, _, names in os.walk(path):
        size += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return int(events or 0), files, size


def main():
    records, dau, runs, cap = sys.argv[1:5]
    lakes, questions, results = [], {}, {}
    with open(records) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "lake":
                lakes.append(fields[1:])
            elif fields[0] == "question":
                questions.setdefault(fields[1], []).append((fields[2], fields[3]))
            elif fields[0] == "result":
                lake, question = fields[1], fields[2]
                results.setdefault((lake, question), []).append(fields[3:])

    out = ["# dau benchmark", ""]
    out.append(f"Run {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}.  ")
    out.append(f"Machine: {machine()}.  ")
    out.append("Engines: " + "; ".join(versions(dau)) + ".")
    out.append("")
    if os.environ.get("BENCH_CHECK_ONLY", "0") not in ("", "0"):
        out.append(
            "**BENCH_CHECK_ONLY: answers checked, nothing timed; each time is one checked run.**"
        )
        out.append("")
    out.append(
        "Every engine reads the same Parquet files as a fresh process per run, and every engine's "
        "rows were checked equal to dau's before timing. Times are whole-process wall times from "
        f"hyperfine (1 warmup run, then {runs} runs: mean ± standard deviation), with the files in "
        "the OS page cache; a peer slower than "
        f"{os.environ.get('BENCH_SLOW', '60')} s is timed by its single checked run, and one "
        f"slower than {cap} s is stopped (\"> cap\"). Ratio: time / the fastest peer's time, so "
        "below 1 means faster than every peer. Peak RSS: the maximum resident memory of one run "
        "(GNU time). dau (cold): no rollups (with a dau that has them, its rollup folder is removed "
        "before every run); dau (warm rollups): after `dau rollup` built them once."
    )
    out.append("")

    for name, path, first, last, rollup_s, rollup_rss in lakes:
        events, files, size = lake_facts(path)
        out.append(f"## Lake {name}: {events:,} events, {first} to {last}")
        out.append("")
        out.append(f"`{path}`: {files} Parquet files, {size / 1e6:,.0f} MB.")
        if rollup_s:
            out.append(
                f"Building the rollups once (`dau rollup`): {seconds(float(rollup_s))} s, "
                f"peak RSS {int(rollup_rss) / 1024:,.0f} MB."
            )
        out.append("")
        for question, command in questions.get(name, []):
            rows = results.get((name, question), [])
            out.append(f"### {question}: {QUESTIONS.get(question, '')}")
            out.append("")
            out.append(f"`{command}`")
            out.append("")
            measured = []
            for engine, status, value, rss, _command in rows:
                mean = sd = None
                n = 0
                if status == "hyperfine":
                    with open(value) as f:
                        result = json.load(f)["results"][0]
                    mean, sd, n = result["mean"], result.get("stddev"), len(result["times"])
                elif status == "single":
                    mean, n = float(value), 1
                measured.append((engine, status, value, rss, mean, sd, n))
            peer_times = [
                m[4] for m in measured if not m[0].startswith("dau") and m[4] is not None
            ]
            fastest = min(peer_times) if peer_times else None
            out.append("| engine | time | ratio to fastest peer | peak RSS |")
            out.append("| --- | ---: | ---: | ---: |")
            notes = []
            for engine, status, value, rss, mean, sd, n in measured:
                if status == "timeout":
                    time = f"> {value} s (cap)"
                    ratio = f"> {float(value) / fastest:.2f}" if fastest else ""
                    notes.append(f"{engine} was stopped at the cap and is not in the check.")
                elif status == "failed":
                    time = f"failed (exit {value})"
                    ratio = ""
                    notes.append(f"{engine} failed (exit {value}) and is not in the check.")
                else:
                    time = duration(mean, sd if n > 1 else None)
                    if n == 1:
                        time += " (1 run)"
                    ratio = f"{mean / fastest:.2f}" if fastest else ""
                memory = f"{int(rss) / 1024:,.0f} MB" if rss else ""
                out.append(f"| {engine} | {time} | {ratio} | {memory} |")
            out.append("")
            for note in notes:
                out.append(f"Note: {note}")
            if notes:
                out.append("")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
