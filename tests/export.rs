//! `dau export`: the metrics of a day merged into a file, one row per date, idempotently and
//! atomically; every number against the oracle.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, NaiveDate};
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Date32Type, Int64Type, UInt64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::*;

const START: &str = "2024-06-01";

/// A 20-day lake of random rows.
fn lake(w: &Workdir) -> Vec<Row> {
    let rows = random_rows(11, day(START), 20, 300);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    rows
}

fn export(w: &Workdir, args: &[&str]) -> Run {
    w.run(&[&["export", "--lake", "lake"], args].concat())
}

/// Runs an export of `args` that must be refused (exit 2) saying `says`.
fn refused(w: &Workdir, args: &[&str], says: &str) {
    let run = export(w, args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(says), "{}", run.stderr);
}

/// [`refused`], leaving `file` as it was, byte for byte.
fn refused_keeping(w: &Workdir, args: &[&str], file: &std::path::Path, says: &str) {
    let before = std::fs::read(file).unwrap();
    refused(w, args, says);
    assert_eq!(
        std::fs::read(file).unwrap(),
        before,
        "{} changed",
        file.display()
    );
}

/// A CSV file's rows by their first column, each as its fields.
fn csv_rows(text: &str) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(String::from).collect();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let by_date: BTreeMap<String, Vec<String>> =
        rows.iter().map(|r| (r[0].clone(), r.clone())).collect();
    assert_eq!(by_date.len(), rows.len(), "one row per date: {text}");
    (header, by_date)
}

/// dau, mau and opens of `d`, from the oracle.
fn oracle(rows: &[Row], d: NaiveDate) -> (u64, u64, u64) {
    let dau = oracle_window(rows, 1, d, d, &[])[&d].unwrap();
    let mau = oracle_window(rows, 30, d, d, &[])[&d].unwrap();
    let opens = rows.iter().filter(|r| r.0 == d).count() as u64;
    (dau, mau, opens)
}

#[test]
fn days_merge_into_one_csv_row_each_and_a_rerun_changes_nothing() {
    let w = Workdir::new();
    let rows = lake(&w);
    let metrics = ["dau", "mau", "opens", "stickiness"];
    // A name a glob would match others with, beside a file it would match.
    let file = "out/daily [v1]?.csv";
    let out = ["--output", file];
    std::fs::create_dir_all(w.join("out")).unwrap();
    std::fs::write(w.join("out/daily [v1]x.csv"), "date,dau\n2024-01-01,1\n").unwrap();
    // Made beforehand, empty and readable to its group only: it stays so.
    std::fs::write(w.join(file), "").unwrap();
    let group_only = std::os::unix::fs::PermissionsExt::from_mode(0o640);
    std::fs::set_permissions(w.join(file), group_only).unwrap();
    let range = ["--from", "2024-06-05", "--to", "2024-06-07"];
    let run = export(&w, &[&metrics[..], &range[..], &out[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "dau export: 3 row(s) dated 2024-06-05 to 2024-06-07 into {file} (3 row(s) in all)"
        )),
        "{}",
        run.stderr
    );
    for day_arg in ["2024-06-06", "2024-06-10", "2024-06-10", "2024-06-03"] {
        let run = export(&w, &[&metrics[..], &["--date", day_arg], &out[..]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let text = std::fs::read_to_string(w.join(file)).unwrap();
    let (header, by_date) = csv_rows(&text);
    assert_eq!(
        header.join(","),
        "date,dau,mau,opens,active_users,opens_per_user_mean,opens_per_user_p50,\
         opens_per_user_p90,opens_per_user_max,stickiness"
    );
    let dates: Vec<&str> = by_date.keys().map(String::as_str).collect();
    assert_eq!(
        dates,
        [
            "2024-06-03",
            "2024-06-05",
            "2024-06-06",
            "2024-06-07",
            "2024-06-10"
        ]
    );
    assert!(text.lines().skip(1).is_sorted(), "sorted by date: {text}");
    let mode = std::fs::metadata(w.join(file)).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o640
    );
    for (date, row) in &by_date {
        let (dau, mau, opens) = oracle(&rows, day(date));
        assert_eq!(row[1], dau.to_string(), "{date}");
        assert_eq!(row[2], mau.to_string(), "{date}");
        assert_eq!(row[3], opens.to_string(), "{date}");
        assert_eq!(row[4], dau.to_string(), "{date}");
        let stickiness: f64 = row[9].parse().unwrap();
        assert!(
            (stickiness - dau as f64 / mau as f64).abs() < 1e-12,
            "{date}"
        );
    }

    // Other metrics into the same file: refused, and the file is left as it was.
    let run = export(&w, &["dau", "--date", "2024-06-06", "--output", file]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("this export writes date,dau"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(w.join(file)).unwrap(), text);

    // Days past the lake's end are warned of once, not once per metric (dau and opens say it in
    // the same words).
    let past = [
        "--from",
        "2024-06-19",
        "--to",
        "2024-06-22",
        "-o",
        "past.csv",
    ];
    let run = export(&w, &[&metrics[..], &past[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warned = "2 day(s) have no partition in lake: 2024-06-21, 2024-06-22; their rows are NULL";
    assert_eq!(run.stderr.matches(warned).count(), 1, "{}", run.stderr);
}

/// `--max-change 50%`: an exported day whose dau is that far from the same weekday's a week
/// before is warned of (and still exported, exit 0); a usual day is not.
#[test]
fn a_day_far_from_a_week_before_is_warned_of() {
    let w = Workdir::new();
    let rows = lake(&w);
    let (week_before, d) = (day("2024-06-08"), day("2024-06-15"));
    let then = oracle(&rows, week_before).0;
    let check = ["--max-change", "50%", "--output", "daily.csv"];
    // A usual day: the oracle's change stays under 50%.
    let usual = day("2024-06-14");
    let change = |now: u64, then: u64| (now as f64 - then as f64) / then as f64;
    let (now, before) = (oracle(&rows, usual).0, oracle(&rows, day("2024-06-07")).0);
    assert!(change(now, before).abs() <= 0.5, "{now} vs {before}");
    let run = export(
        &w,
        &[&["dau", "--date", "2024-06-14"][..], &check[..]].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    // Three users on 2024-06-15: exported, and warned of.
    let folder = w.join("lake/date=2024-06-15");
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::create_dir(&folder).unwrap();
    write_file(
        &folder.join("part-0.parquet"),
        &LakeSpec::default(),
        &[1, 2, 3],
        d,
    );
    let run = export(
        &w,
        &[&["dau", "--date", "2024-06-15"][..], &check[..]].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lower = format!("{:.1}", (then - 3) as f64 / then as f64 * 100.0);
    let lower = lower.trim_end_matches(".0");
    let warning = format!(
        "dau: warning: dau 3 on 2024-06-15 is {lower}% lower than {then} on 2024-06-08, the same \
         weekday a week before (max_change 50%): is the day whole?"
    );
    assert!(run.stderr.lines().any(|l| l == warning), "{}", run.stderr);
    let (_, exported) = csv_rows(&std::fs::read_to_string(w.join("daily.csv")).unwrap());
    assert_eq!(exported["2024-06-15"][1], "3");

    // A day whose week before the lake lacks is said to go unchecked (nothing was said).
    let run = export(
        &w,
        &[&["dau", "--date", "2024-06-05"][..], &check[..]].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "dau: warning: cannot compare dau of 2024-06-05 with a week before: 2024-05-29, a \
             week before, has no partition in lake: the day is delivered unchecked"
        ),
        "{}",
        run.stderr
    );

    let run = export(&w, &["dau", "--max-change", "half", "-o", "x.csv"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("'half' is not a change of dau such as 50%"),
        "{}",
        run.stderr
    );
}

/// Exports of `days` into `dest`, all at once (a backfill run day by day in parallel); each must
/// succeed.
fn all_at_once(w: &Workdir, dest: &str, days: &[String]) {
    all_at_once_into(w, &[dest], days);
}

/// [`all_at_once`], the days taking `dests` in turn (names of one place).
fn all_at_once_into(w: &Workdir, dests: &[&str], days: &[String]) {
    let runs: Vec<(std::process::Child, &String)> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let dest = dests[i % dests.len()];
            let args = [
                "export", "dau", "--lake", "lake", "--date", d, "--output", dest,
            ];
            let mut command = w.command(&args);
            command.stdout(Stdio::null()).stderr(Stdio::piped());
            (command.spawn().unwrap(), d)
        })
        .collect();
    for (run, d) in runs {
        let run = run.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{dests:?} {d}: {stderr}");
    }
}

/// A backfill run day by day in parallel keeps every day, in a file (into a folder that did not
/// exist yet), an SQLite database and a PostgreSQL table alike: exports into one place take
/// turns, since each reads, merges and replaces (or makes the table first).
#[test]
fn exports_at_once_into_one_place_keep_every_day() {
    let w = Workdir::new();
    let rows = lake(&w);
    let days: Vec<String> = (2..=9).map(|d| format!("2024-06-{d:02}")).collect();
    let want: Vec<String> = days
        .iter()
        .map(|d| format!("{d} {}", oracle(&rows, day(d)).0))
        .collect();

    all_at_once(&w, "new/daily.csv", &days);
    let text = std::fs::read_to_string(w.join("new/daily.csv")).unwrap();
    let (_, by_date) = csv_rows(&text);
    let got: Vec<String> = by_date.values().map(|r| r.join(" ")).collect();
    assert_eq!(got, want);
    // One file under two names, through a link from another folder: they take turns too (each
    // took its own folder's turn, and kept only its own days).
    std::fs::create_dir_all(w.join("linked")).unwrap();
    std::os::unix::fs::symlink("../new/daily.csv", w.join("linked/daily.csv")).unwrap();
    std::fs::remove_file(w.join("new/daily.csv")).unwrap();
    all_at_once_into(&w, &["new/daily.csv", "linked/daily.csv"], &days);
    let text = std::fs::read_to_string(w.join("new/daily.csv")).unwrap();
    let (_, by_date) = csv_rows(&text);
    let got: Vec<String> = by_date.values().map(|r| r.join(" ")).collect();
    assert_eq!(got, want);
    assert!(w.join("linked/daily.csv").is_symlink());

    all_at_once(&w, "sqlite://metrics.db", &days);
    let conn = rusqlite::Connection::open(w.join("metrics.db")).unwrap();
    let got: String = conn
        .query_row(
            "SELECT group_concat(date || ' ' || dau, ',') FROM \
             (SELECT * FROM daily_metrics ORDER BY date)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(got, want.join(","));

    let pg = Postgres::start();
    all_at_once(&w, &pg.url(), &days);
    let got =
        pg.query("SELECT string_agg(date || ' ' || dau, ',' ORDER BY date) FROM daily_metrics");
    assert_eq!(got, want.join(","));
}

/// A Parquet file's `date` and `dau` columns.
fn parquet_dau(path: &std::path::Path) -> BTreeMap<NaiveDate, u64> {
    (parquet_counts(path, &["dau"]).into_iter())
        .map(|(d, counts)| (d, counts[0]))
        .collect()
}

/// A Parquet file's integer columns `names` by its `date` column (each date once), each column
/// taken by its name.
fn parquet_counts(path: &std::path::Path, names: &[&str]) -> BTreeMap<NaiveDate, Vec<u64>> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = BTreeMap::new();
    for batch in reader {
        let batch = batch.unwrap();
        let dates = batch
            .column_by_name("date")
            .unwrap()
            .as_primitive::<Date32Type>();
        let columns: Vec<_> = (names.iter())
            .map(|name| {
                batch
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<Int64Type>()
            })
            .collect();
        for i in 0..batch.num_rows() {
            let d = dates.value_as_date(i).unwrap();
            let counts = columns.iter().map(|c| c.value(i) as u64).collect();
            assert!(out.insert(d, counts).is_none(), "{d} twice");
        }
    }
    out
}

#[test]
fn parquet_keeps_one_row_per_date() {
    let w = Workdir::new();
    let rows = lake(&w);
    let out = ["--output", "daily.parquet"];
    for args in [
        &["--from", "2024-06-01", "--to", "2024-06-04"][..],
        &["--date", "2024-06-02"],
        &["--from", "2024-06-03", "--to", "2024-06-06"],
    ] {
        let run = export(&w, &[&["dau", "wau"], args, &out[..]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let got = parquet_dau(&w.join("daily.parquet"));
    let want: BTreeMap<NaiveDate, u64> =
        oracle_window(&rows, 1, day(START), day("2024-06-06"), &[])
            .into_iter()
            .map(|(d, n)| (d, n.unwrap()))
            .collect();
    assert_eq!(got, want);
    // A file named in capitals takes every export: the merge read it with the reader's default
    // extension, and each export after the first failed (exit 1).
    for date in ["2024-06-01", "2024-06-02"] {
        for file in ["daily.Parquet", "daily.CSV"] {
            let run = export(&w, &["dau", "--date", date, "--output", file]);
            assert_eq!(run.code, 0, "{file}: {}", run.stderr);
        }
    }
    let want: Vec<(NaiveDate, u64)> = want.into_iter().take(2).collect();
    let got: Vec<(NaiveDate, u64)> = parquet_dau(&w.join("daily.Parquet")).into_iter().collect();
    assert_eq!(got, want);
    let (_, csv) = csv_rows(&std::fs::read_to_string(w.join("daily.CSV")).unwrap());
    let csv: Vec<(NaiveDate, u64)> = (csv.values())
        .map(|row| (day(&row[0]), row[1].parse().unwrap()))
        .collect();
    assert_eq!(csv, want);
}

#[test]
fn user_days_replace_their_day() {
    let w = Workdir::new();
    let rows = lake(&w);
    let out = ["--output", "user_days.csv"];
    for args in [
        &["--date", "2024-06-08"][..],
        &["--date", "2024-06-09"],
        &["--date", "2024-06-08"],
    ] {
        let run = export(&w, &[&["user-days"], args, &out[..]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let text = std::fs::read_to_string(w.join("user_days.csv")).unwrap();
    let mut got: Vec<(NaiveDate, u64, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (day(f[1]), f[0].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    let mut want: Vec<(NaiveDate, u64, u64)> = Vec::new();
    for d in [day("2024-06-08"), day("2024-06-09")] {
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.0 == d) {
            *counts.entry(r.1).or_default() += 1;
        }
        want.extend(counts.into_iter().map(|(u, n)| (d, u, n)));
    }
    got.sort_unstable();
    assert_eq!(got, want);

    let run = export(
        &w,
        &["user-days", "dau", "--date", "2024-06-08", "-o", "x.csv"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("user-days exports on its own"),
        "{}",
        run.stderr
    );
}

/// A lake big enough that exporting all its user-days takes a while.
fn big_lake(w: &Workdir) {
    let made = w.run(&["gen", "--out", "lake", "--users", "200000", "--days", "20"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
}

/// Starts exporting every user-day of the big lake into `dest`, and kills the export (SIGKILL)
/// once `writing` says it is writing.
fn kill_while_writing(w: &Workdir, dest: &str, writing: impl Fn() -> bool) {
    let all = ["--from", "2024-06-01", "--to", "2024-06-20"];
    let mut child = w
        .command(&[&["export", "--lake", "lake", "user-days"], &all[..]].concat())
        .args(["--output", dest])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writing() {
        assert!(
            Instant::now() < deadline,
            "the export never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended first"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_failed_or_killed_export_leaves_the_old_file() {
    let w = Workdir::new();
    big_lake(&w);
    let run = export(
        &w,
        &["user-days", "--date", "2024-06-05", "-o", "user_days.csv"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = std::fs::read(w.join("user_days.csv")).unwrap();

    // Killed while writing: the file is still the old one.
    kill_while_writing(&w, "user_days.csv", || {
        std::fs::read_dir(w.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    });
    assert_eq!(std::fs::read(w.join("user_days.csv")).unwrap(), before);

    // Failed (a corrupt file in the day): exit 4, the file untouched.
    let part = w.join("lake/date=2024-06-06/part-00000.parquet");
    std::fs::write(&part, b"not parquet").unwrap();
    let run = export(
        &w,
        &["user-days", "--date", "2024-06-06", "-o", "user_days.csv"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(std::fs::read(w.join("user_days.csv")).unwrap(), before);
}

/// A CSV file a spreadsheet saved (US dates, thousands separators) or someone edited (a field too
/// many) is named with the line this export cannot read back, exit 2, and left as it was; once
/// mended, the export merges into it.
#[test]
fn a_csv_file_it_cannot_read_back_is_named_with_its_line_and_kept() {
    let w = Workdir::new();
    let rows = lake(&w);
    let file = w.join("daily.csv");
    let edits = [
        (
            "date,dau\r\n6/2/2024,1\r\n6/3/2024,2\r\n",
            "line 2 has '6/2/2024' in the column date, which holds a date (YYYY-MM-DD)",
        ),
        (
            "date,dau\n2024-06-02,1\n2024-06-03,\"1,234\"\n",
            "line 3 has '1,234' in the column dau, which holds an integer",
        ),
        (
            "date,dau\n2024-06-02,1,note\n",
            "line 2 has 3 fields, not 2",
        ),
        (
            "date,dau\n2024-06-02,1\n,9\n",
            "line 3 has nothing in the column date, which holds a date (YYYY-MM-DD)",
        ),
    ];
    for (text, why) in edits {
        std::fs::write(&file, text).unwrap();
        let args = ["dau", "--date", "2024-06-04", "-o", "daily.csv"];
        let named = format!("cannot merge this export into daily.csv: {why}");
        refused_keeping(&w, &args, &file, &named);
    }
    std::fs::write(&file, "date,dau\r\n2024-06-02,1\r\n").unwrap();
    let run = export(&w, &["dau", "--date", "2024-06-04", "-o", "daily.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (_, got) = csv_rows(&std::fs::read_to_string(&file).unwrap());
    let dau = oracle(&rows, day("2024-06-04")).0.to_string();
    assert_eq!(got["2024-06-02"][1], "1");
    assert_eq!(got["2024-06-04"][1], dau);
}

/// A lake that has dropped its old days (kept for a while only): a range export reaching before
/// its first day leaves the rows the file holds for those days as they were, rather than blanking
/// numbers delivered when the lake still had them; calendar periods that straddle the first day
/// are still exported.
#[test]
fn days_before_the_lake_are_not_blanked_by_a_range_export() {
    let w = Workdir::new();
    let rows = lake(&w);
    let file = w.join("daily.csv");
    let old = "date,dau\n2024-05-29,11\n2024-05-30,12\n2024-05-31,13\n2024-06-02,1\n";
    std::fs::write(&file, old).unwrap();
    let range = ["--from", "2024-05-29", "--to", "2024-06-03"];
    let run = export(&w, &[&["dau", "-o", "daily.csv"][..], &range].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "2024-05-29 to 2024-05-31 are before the lake's first day 2024-06-01: not exported, \
             and what daily.csv holds for them is kept"
        ),
        "{}",
        run.stderr
    );
    let (_, got) = csv_rows(&std::fs::read_to_string(&file).unwrap());
    let got: BTreeMap<String, String> = got.into_iter().map(|(d, r)| (d, r[1].clone())).collect();
    let mut want: BTreeMap<String, String> = [
        ("2024-05-29", "11"),
        ("2024-05-30", "12"),
        ("2024-05-31", "13"),
    ]
    .into_iter()
    .map(|(d, n)| (d.to_string(), n.to_string()))
    .collect();
    for d in ["2024-06-01", "2024-06-02", "2024-06-03"] {
        want.insert(d.to_string(), oracle(&rows, day(d)).0.to_string());
    }
    assert_eq!(got, want);

    // ISO weeks: the week of Monday 2024-05-27 holds the lake's first days, and is exported.
    let run = export(
        &w,
        &[
            "wau",
            "--calendar",
            "--from",
            "2024-05-20",
            "--to",
            "2024-06-09",
            "-o",
            "weeks.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (_, got) = csv_rows(&std::fs::read_to_string(w.join("weeks.csv")).unwrap());
    let weeks: Vec<&String> = got.keys().collect();
    assert_eq!(weeks, ["2024-05-27", "2024-06-03"]);
    let users = |from: &str, to: &str| {
        let (from, to) = (day(from), day(to));
        let active: std::collections::HashSet<u64> = (rows.iter())
            .filter(|r| from <= r.0 && r.0 <= to)
            .map(|r| r.1)
            .collect();
        active.len().to_string()
    };
    assert_eq!(got["2024-05-27"][1], users("2024-05-27", "2024-06-02"));
    assert_eq!(got["2024-06-03"][1], users("2024-06-03", "2024-06-09"));
}

/// A CSV or Parquet export's date → (dau, mau), each column taken by its name.
fn by_name(path: &std::path::Path) -> BTreeMap<String, (u64, u64)> {
    if path.extension().is_some_and(|e| e == "csv") {
        let (header, rows) = csv_rows(&std::fs::read_to_string(path).unwrap());
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        let (dau, mau) = (at("dau"), at("mau"));
        return (rows.into_iter())
            .map(|(d, r)| (d, (r[dau].parse().unwrap(), r[mau].parse().unwrap())))
            .collect();
    }
    (parquet_counts(path, &["dau", "mau"]).into_iter())
        .map(|(d, counts)| (d.to_string(), (counts[0], counts[1])))
        .collect()
}

/// The same metrics listed in another order merge into a CSV or Parquet file by column name: each
/// day keeps its own numbers under its own names (the file takes the new order).
#[test]
fn the_same_metrics_in_another_order_merge_by_name() {
    let w = Workdir::new();
    let rows = lake(&w);
    for file in ["daily.csv", "daily.parquet"] {
        let first = ["dau", "mau", "--date", "2024-06-04", "-o", file];
        let run = export(&w, &first);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let then = ["mau", "opens", "dau", "--date", "2024-06-05", "-o", file];
        refused(&w, &then, "has the columns date,dau,mau");
        let then = ["mau", "dau", "--date", "2024-06-05", "-o", file];
        let run = export(&w, &then);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let want: BTreeMap<String, (u64, u64)> = ["2024-06-04", "2024-06-05"]
            .iter()
            .map(|d| {
                let (dau, mau, _) = oracle(&rows, day(d));
                (d.to_string(), (dau, mau))
            })
            .collect();
        assert_eq!(by_name(&w.join(file)), want, "{file}");
    }
}

/// A file of some metrics that an export of fewer would leave empty is refused, and the hint names
/// the metrics to export (it named the columns: `export opens,active_users,opens_per_user_mean,… too`).
#[test]
fn a_column_left_empty_is_named_by_its_metric() {
    let w = Workdir::new();
    lake(&w);
    let args = ["--date", "2024-06-05", "-o", "daily.csv"];
    let run = export(&w, &[&["dau", "opens", "mau"][..], &args].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    refused_keeping(
        &w,
        &[&["dau"][..], &args].concat(),
        &w.join("daily.csv"),
        "the export would leave opens,active_users,opens_per_user_mean,opens_per_user_p50,\
         opens_per_user_p90,opens_per_user_max,mau empty on the days it replaces: export opens \
         and mau too, or export into another file",
    );
}

/// Calendar periods (`--calendar`) never merge into a file or table of rolling windows, nor the
/// other way round: both were `wau` and `mau`, so a calendar export into a file of rolling ones
/// replaced its rows with the periods' numbers (and deleted the asked day's row), exit 0.
#[test]
fn rolling_and_calendar_windows_never_share_a_column() {
    let w = Workdir::new();
    let rows = lake(&w);
    let rolling = [
        "wau",
        "mau",
        "--from",
        "2024-06-01",
        "--to",
        "2024-06-12",
        "-o",
    ];
    let calendar = ["wau", "mau", "--calendar", "--date", "2024-06-05", "-o"];
    for file in ["daily.csv", "daily.parquet", "daily.xlsx", "daily.db"] {
        let run = export(&w, &[&rolling[..], &[file]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        let says = "calendar_wau and calendar_mau (--calendar) count ISO weeks and calendar months";
        refused_keeping(&w, &[&calendar[..], &[file]].concat(), &w.join(file), says);
    }
    let run = export(&w, &[&calendar[..], &["periods.csv"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    refused_keeping(
        &w,
        &[&rolling[..], &["periods.csv"]].concat(),
        &w.join("periods.csv"),
        "rolling 7- and 30-day windows",
    );
    // The calendar file: the ISO week of 2024-06-05, and its month (NULL: the lake ends on the
    // 20th), each under its own name.
    let (header, got) = csv_rows(&std::fs::read_to_string(w.join("periods.csv")).unwrap());
    assert_eq!(header, ["date", "calendar_wau", "calendar_mau"]);
    let week = oracle_window(&rows, 7, day("2024-06-09"), day("2024-06-09"), &[]);
    let week = week[&day("2024-06-09")].unwrap().to_string();
    let want: BTreeMap<String, Vec<String>> = [
        ("2024-06-01", ["2024-06-01", "", ""]),
        ("2024-06-03", ["2024-06-03", &week, ""]),
    ]
    .into_iter()
    .map(|(d, r)| (d.to_string(), r.map(String::from).to_vec()))
    .collect();
    assert_eq!(got, want);
}

/// What an export killed while writing left beside its file (a hidden temporary file) is
/// removed by a later export once it is an hour old; others' files are left alone.
#[test]
fn what_killed_exports_left_is_removed() {
    let w = Workdir::new();
    lake(&w);
    std::fs::create_dir_all(w.join("out")).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(2 * 3600);
    let made = |name: &str, modified| {
        let file = std::fs::File::create(w.join("out").join(name)).unwrap();
        file.set_modified(modified).unwrap();
    };
    made(".daily.csv.4242.tmp", old);
    made(".daily.csv.4243.tmp", std::time::SystemTime::now());
    made(".notes.txt.4242.tmp", old);
    let run = export(&w, &["dau", "--date", "2024-06-05", "-o", "out/daily.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut left: Vec<String> = std::fs::read_dir(w.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [".daily.csv.4243.tmp", ".notes.txt.4242.tmp", "daily.csv"]
    );
}

/// March 2021 starts on a Monday: its row holds the first week and the month. Exporting a later
/// day of March keeps the row whole (it replaced it with the month alone: the week's number,
/// delivered before, went empty for good).
#[test]
fn a_week_and_a_month_that_start_on_one_day_share_a_whole_row() {
    let w = Workdir::new();
    let rows = random_rows(5, day("2021-02-22"), 50, 300);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let all_days = |from: &str, to: &str| {
        let (from, to) = (day(from), day(to));
        from.iter_days().take_while(move |d| *d <= to)
    };
    let count = |from, to| oracle_periods(&rows, all_days(from, to), |_| day(from))[&day(from)];
    let (week, month) = (
        count("2021-03-01", "2021-03-07"),
        count("2021-03-01", "2021-03-31"),
    );
    let text = |n: Option<u64>| n.unwrap().to_string();
    for date in ["2021-03-03", "2021-03-31"] {
        let args = [
            "wau",
            "mau",
            "--calendar",
            "--date",
            date,
            "-o",
            "periods.csv",
        ];
        let run = export(&w, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let (_, got) = csv_rows(&std::fs::read_to_string(w.join("periods.csv")).unwrap());
        assert_eq!(
            got["2021-03-01"],
            ["2021-03-01", &text(week), &text(month)],
            "{date}"
        );
    }
    let (_, got) = csv_rows(&std::fs::read_to_string(w.join("periods.csv")).unwrap());
    let weeks = oracle_periods(&rows, all_days("2021-03-01", "2021-04-04"), |d| {
        d - Days::new(d.weekday().num_days_from_monday().into())
    });
    for (monday, users) in weeks {
        assert_eq!(got[&monday.to_string()][1], text(users), "{monday}");
    }
    // A day not in the lake yet has nothing to count (exit 4, the file kept), though its month's
    // earlier days do: it was exported as NULL with exit 0, and the month was never delivered.
    std::fs::remove_dir_all(w.join("lake/date=2021-03-31")).unwrap();
    let before = std::fs::read(w.join("periods.csv")).unwrap();
    let args = ["wau", "mau", "--calendar", "--date", "2021-03-31"];
    let run = export(&w, &[&args[..], &["-o", "periods.csv"]].concat());
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(std::fs::read(w.join("periods.csv")).unwrap(), before);

    // Once the lake has dropped March's first week, exporting a later day of March keeps the
    // row of 2021-03-01 as delivered (its week went empty), and writes that day's week.
    for gone in all_days("2021-02-22", "2021-03-09") {
        std::fs::remove_dir_all(w.join(&format!("lake/date={gone}"))).unwrap();
    }
    // So too from a day of February, which the lake has dropped as well.
    let kept = "the row of 2021-03-01 (its week and its month) is not exported";
    for args in [
        &["--date", "2021-03-17"][..],
        &["--from", "2021-02-20", "--to", "2021-03-17"],
    ] {
        let args = [&["wau", "mau", "--calendar", "-o", "periods.csv"], args].concat();
        let run = export(&w, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains(kept), "{}", run.stderr);
        let (_, got) = csv_rows(&std::fs::read_to_string(w.join("periods.csv")).unwrap());
        assert_eq!(got["2021-03-01"], ["2021-03-01", &text(week), &text(month)]);
        let third = count("2021-03-15", "2021-03-21");
        assert_eq!(got["2021-03-15"][1], text(third));
    }
    // A workbook has a sheet per metric: no row is shared, and none is said to be kept.
    let args = [
        "wau",
        "mau",
        "--calendar",
        "--date",
        "2021-03-17",
        "-o",
        "p.xlsx",
    ];
    let run = export(&w, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains(kept), "{}", run.stderr);
}

/// An output that cannot be written is a storage error (exit 3) in every format; a folder given
/// as the output is named (exit 2). Before, CSV and Parquet were exit 1 ("query failed: … No
/// files found" for a folder), xlsx and SQLite exit 3.
#[test]
fn an_output_that_cannot_be_written_is_exit_3_in_every_format() {
    let w = Workdir::new();
    lake(&w);
    std::fs::write(w.join("plain"), "a file, not a folder").unwrap();
    for file in ["x.csv", "x.parquet", "x.xlsx", "x.db"] {
        let run = export(
            &w,
            &[
                "dau",
                "--date",
                "2024-06-03",
                "-o",
                &format!("plain/{file}"),
            ],
        );
        assert_eq!(run.code, 3, "{file}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot make the output folder (plain)"),
            "{file}: {}",
            run.stderr
        );
        std::fs::create_dir(w.join(file)).unwrap();
        let says = format!("cannot export into {file}: it is a folder");
        refused(&w, &["dau", "--date", "2024-06-03", "-o", file], &says);
    }
    assert_eq!(
        std::fs::read(w.join("plain")).unwrap(),
        b"a file, not a folder"
    );
}

/// A Parquet file with a row of no date (written back by another tool) is named, exit 2, and left
/// as it was: the merge would have dropped that row in silence.
#[test]
fn a_parquet_row_of_no_date_is_named_not_dropped() {
    use std::sync::Arc;

    use datafusion::arrow::array::{Date32Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field};

    let w = Workdir::new();
    lake(&w);
    let file = w.join("daily.parquet");
    let fields = vec![
        Field::new("date", DataType::Date32, true),
        Field::new("dau", DataType::Int64, true),
    ];
    let june_2 = (day("2024-06-02") - day("1970-01-01")).num_days() as i32;
    let dates = Arc::new(Date32Array::from(vec![Some(june_2), None]));
    write_batch(
        &file,
        fields,
        vec![dates, Arc::new(Int64Array::from(vec![1, 99]))],
    );
    let args = ["dau", "--date", "2024-06-04", "-o", "daily.parquet"];
    refused_keeping(&w, &args, &file, "daily.parquet has 1 row(s) with no date");
}

/// Dates another tool wrote back as something other than days are named, exit 2, the file kept:
/// a zoned time (pandas' `tz_localize`, in Parquet or CSV) was taken as its day in UTC, and every
/// row moved a day back; a number (YYYYMMDD) was read as days since 1970; a CSV total row with
/// no date was dropped.
#[test]
fn dates_that_are_not_days_in_a_destination_are_named() {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, Int64Array, TimestampNanosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

    let w = Workdir::new();
    lake(&w);
    let csv = w.join("daily.csv");
    for (text, says) in [
        (
            "date,dau,mau\n2024-06-01 00:00:00+09:00,5,6\n",
            "daily.csv has the date '2024-06-01 00:00:00+09:00', which is not a day",
        ),
        (
            "date,dau,mau\n2024-06-01,5,6\n,10,12\n",
            "daily.csv has 1 row(s) with no date",
        ),
    ] {
        std::fs::write(&csv, text).unwrap();
        let args = ["dau", "mau", "--date", "2024-06-04", "-o", "daily.csv"];
        refused_keeping(&w, &args, &csv, says);
    }

    let parquet = w.join("daily.parquet");
    let seoul = Some("Asia/Seoul".into());
    let midnight = (day("2024-06-01") - day("1970-01-01"))
        .num_nanoseconds()
        .unwrap()
        - 9 * 3_600_000_000_000;
    let dates: [(DataType, Arc<dyn datafusion::arrow::array::Array>, &str); 2] = [
        (
            DataType::Timestamp(TimeUnit::Nanosecond, seoul.clone()),
            Arc::new(TimestampNanosecondArray::from(vec![midnight]).with_timezone_opt(seoul)),
            "the date '2024-06-01T00:00:00+09:00'",
        ),
        (
            DataType::Int32,
            Arc::new(Int32Array::from(vec![20240601])),
            "the date '20240601'",
        ),
    ];
    for (kind, date, says) in dates {
        write_batch(
            &parquet,
            vec![
                Field::new("date", kind, true),
                Field::new("dau", DataType::Int64, true),
            ],
            vec![date, Arc::new(Int64Array::from(vec![5]))],
        );
        let args = ["dau", "--date", "2024-06-04", "-o", "daily.parquet"];
        refused_keeping(&w, &args, &parquet, says);
    }
}

/// A Parquet file another tool wrote back, its dates as date64 and its counts as int32, merges and
/// keeps this export's types (its dates came out as raw int64 milliseconds for every other
/// reader); a text date that is no date (`Total`) is named, exit 2, the file kept (was exit 1).
#[test]
fn a_parquet_file_of_other_types_merges_as_this_exports_types() {
    use std::sync::Arc;

    use datafusion::arrow::array::{Date64Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    let w = Workdir::new();
    let rows = lake(&w);
    let file = w.join("daily.parquet");
    let june_2 = (day("2024-06-02") - day("1970-01-01")).num_milliseconds();
    write_batch(
        &file,
        vec![
            Field::new("date", DataType::Date64, true),
            Field::new("dau", DataType::Int32, true),
        ],
        vec![
            Arc::new(Date64Array::from(vec![june_2])),
            Arc::new(Int32Array::from(vec![762])),
        ],
    );
    let run = export(&w, &["dau", "--date", "2024-06-04", "-o", "daily.parquet"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = BTreeMap::from([
        (day("2024-06-02"), vec![762]),
        (day("2024-06-04"), vec![oracle(&rows, day("2024-06-04")).0]),
    ]);
    // (Read as Date32 and Int64: another type would panic here.)
    assert_eq!(parquet_counts(&file, &["dau"]), want);

    write_batch(
        &file,
        vec![
            Field::new("date", DataType::Utf8, true),
            Field::new("dau", DataType::Int64, true),
        ],
        vec![
            Arc::new(StringArray::from(vec!["2024-06-02", "Total"])),
            Arc::new(datafusion::arrow::array::Int64Array::from(vec![762, 999])),
        ],
    );
    let args = ["dau", "--date", "2024-06-04", "-o", "daily.parquet"];
    let says = "cannot merge this export into daily.parquet: Cannot cast string 'Total'";
    refused_keeping(&w, &args, &file, says);

    // Counts as floats (pandas, after a NaN): whole ones merge; 8.7 is named (it was cut to 8).
    for (count, merges) in [(762.0, true), (8.7, false)] {
        write_batch(
            &file,
            vec![
                Field::new("date", DataType::Date64, true),
                Field::new("dau", DataType::Float64, true),
            ],
            vec![
                Arc::new(Date64Array::from(vec![june_2])),
                Arc::new(datafusion::arrow::array::Float64Array::from(vec![count])),
            ],
        );
        match merges {
            true => assert_eq!(export(&w, &args).code, 0),
            false => refused_keeping(
                &w,
                &args,
                &file,
                "daily.parquet has dau values that are not whole",
            ),
        }
    }

    // A file of another kind under the name: named, exit 2, kept (was exit 1 "query failed", or
    // exit 3 for a workbook).
    for (name, kind) in [
        ("junk.parquet", "a Parquet file"),
        ("junk.xlsx", "a workbook"),
    ] {
        std::fs::write(w.join(name), "junk").unwrap();
        let args = ["dau", "--date", "2024-06-04", "-o", name];
        let says = format!("cannot merge this export into {name}: it is not {kind} dau can read");
        refused_keeping(&w, &args, &w.join(name), &says);
    }
}

/// The days [`export_rounds`] leaves in a destination, each once.
const EXPORTED: [&str; 5] = [
    "2024-06-02",
    "2024-06-03",
    "2024-06-04",
    "2024-06-05",
    "2024-06-12",
];

/// Exports dau, mau and opens to `dest` for a range, then one of its days again, twice, then a
/// later day, twice.
fn export_rounds(w: &Workdir, dest: &str) {
    for args in [
        &["--from", "2024-06-02", "--to", "2024-06-05"][..],
        &["--date", "2024-06-04"],
        &["--date", "2024-06-04"],
        &["--date", "2024-06-12"],
        &["--date", "2024-06-12"],
    ] {
        let run = export(
            w,
            &[&["dau", "mau", "opens"], args, &["--output", dest]].concat(),
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
}

/// `SELECT date, dau, mau, opens FROM daily_metrics`.
fn sqlite_rows(db: &std::path::Path) -> BTreeMap<NaiveDate, (u64, u64, u64)> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut statement = db
        .prepare("SELECT date, dau, mau, opens FROM daily_metrics")
        .unwrap();
    let rows = statement
        .query_map([], |r| {
            let d: String = r.get(0)?;
            Ok((day(&d), (r.get(1)?, r.get(2)?, r.get(3)?)))
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[test]
fn sqlite_rows_are_replaced_per_day_in_one_transaction() {
    let w = Workdir::new();
    let rows = lake(&w);
    let db = "sqlite://metrics.db";
    export_rounds(&w, db);
    let want: BTreeMap<NaiveDate, (u64, u64, u64)> = EXPORTED
        .into_iter()
        .map(|d| (day(d), oracle(&rows, day(d))))
        .collect();
    assert_eq!(sqlite_rows(&w.join("metrics.db")), want);

    // user-days go to their own table, a row per user and day, replaced the same way.
    for _ in 0..2 {
        let run = export(&w, &["user-days", "--date", "2024-06-04", "--output", db]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let conn = rusqlite::Connection::open(w.join("metrics.db")).unwrap();
    let (n, users): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT userId) FROM user_days WHERE date = '2024-06-04'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let dau = oracle(&rows, day("2024-06-04")).0 as i64;
    assert_eq!((n, users), (dau, dau));

    // Other columns into the same table: refused, the table untouched.
    let args = ["dau", "--date", "2024-06-06", "--output", db];
    refused(
        &w,
        &args,
        "table daily_metrics in metrics.db has the columns",
    );
    assert_eq!(sqlite_rows(&w.join("metrics.db")), want);
    let run = export(
        &w,
        &[
            "dau",
            "--date",
            "2024-06-06",
            "--output",
            "sqlite://metrics.db?table=dau_only",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    // A database in a folder not yet made: the folder is made, as for files.
    let dest = "sqlite://new/folder/m.db?table=dau_only";
    let run = export(&w, &["dau", "--date", "2024-06-06", "--output", dest]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let conn = rusqlite::Connection::open(w.join("new/folder/m.db")).unwrap();
    let dau: i64 = conn
        .query_row("SELECT dau FROM dau_only", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dau as u64, oracle(&rows, day("2024-06-06")).0);

    // A path ending in .db, .sqlite or .sqlite3 is an SQLite database too, as sqlite:// says.
    for path in ["plain.sqlite3", "PLAIN.DB"] {
        let run = export(
            &w,
            &[
                "dau",
                "mau",
                "opens",
                "--date",
                "2024-06-04",
                "--output",
                path,
            ],
        );
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        let want = BTreeMap::from([(day("2024-06-04"), oracle(&rows, day("2024-06-04")))]);
        assert_eq!(sqlite_rows(&w.join(path)), want, "{path}");
    }
    // One that is not an SQLite database (a DuckDB file) is named and left as it was.
    std::fs::write(w.join("duck.db"), b"\0\0\0\0\0\0\0\0DUCK not sqlite").unwrap();
    let run = export(&w, &["dau", "--date", "2024-06-04", "--output", "duck.db"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("duck.db"), "{}", run.stderr);
    assert!(run.stderr.contains("not a database"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(w.join("duck.db")).unwrap(),
        b"\0\0\0\0\0\0\0\0DUCK not sqlite"
    );
    // No file (a temporary database, gone at the end) or a parameter dau does not know: refused
    // before anything is computed.
    for (dest, why) in [
        ("sqlite://", "no database file in 'sqlite://'"),
        ("sqlite://?table=t", "no database file"),
        (
            "sqlite://m.db?table=t&mode=ro",
            "a parameter other than table",
        ),
        (
            "gs://bucket/m.db",
            "cannot tell where to export 'gs://bucket/m.db'",
        ),
    ] {
        let run = export(&w, &["dau", "--date", "2024-06-06", "--output", dest]);
        assert_eq!(run.code, 2, "{dest}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{dest}: {}", run.stderr);
    }
}

#[test]
fn a_killed_sqlite_export_leaves_no_half_written_rows() {
    let w = Workdir::new();
    big_lake(&w);
    let db = "sqlite://metrics.db";
    let run = export(&w, &["user-days", "--date", "2024-06-05", "--output", db]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let count = || -> i64 {
        let conn = rusqlite::Connection::open(w.join("metrics.db")).unwrap();
        conn.query_row("SELECT COUNT(*) FROM user_days", [], |r| r.get(0))
            .unwrap()
    };
    let before = count();
    assert!(before > 1000, "{before}");

    // SQLite keeps a rollback journal while the transaction is open.
    kill_while_writing(&w, db, || w.join("metrics.db-journal").exists());
    assert_eq!(count(), before, "the killed transaction left nothing");
}

/// A private PostgreSQL server from Debian's packages, in a temporary folder on a free port,
/// stopped when dropped. (As root, the server programs run as the `postgres` user.)
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl Postgres {
    fn start() -> Postgres {
        Postgres::start_with(None, "trust")
    }

    /// A server that takes TCP connections of `dau` with this password only (SCRAM).
    fn start_with_password(password: &str) -> Postgres {
        let server = Postgres::start_with(None, "scram-sha-256");
        server.query(&format!(
            "ALTER ROLE dau PASSWORD '{}'",
            password.replace('\'', "''")
        ));
        server
    }

    /// A server that takes TCP connections over TLS only, with a certificate for `localhost`
    /// signed by a CA of its own (`ca.pem` in its folder).
    fn start_tls() -> Postgres {
        Postgres::start_with(Some(("", "hostssl")), "trust")
    }

    /// With `tls`, the server offers TLS (with these settings) and takes TCP connections as the
    /// pg_hba.conf connection type says (`hostssl`: over TLS only; `host`: with or without).
    /// TCP connections authenticate as `auth` says; those over its Unix socket are trusted.
    fn start_with(tls: Option<(&str, &str)>, auth: &str) -> Postgres {
        venv(); // installs PostgreSQL when it is missing
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("PostgreSQL's server programs (apt-get install postgresql)");
        let dir = tempfile::tempdir().unwrap();
        let server = Postgres {
            port: free_port(),
            bin,
            dir,
        };
        if tls.is_some() {
            server.make_certificates();
        }
        if Postgres::as_root() {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .unwrap();
            assert!(owned.success());
        }
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "dau",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c log_connections=on",
            server.port,
            server.dir.path().display()
        );
        let mut tcp = "host";
        if let Some((settings, connection)) = tls {
            let dir = server.dir.path().display();
            options += &format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key \
                 {settings}"
            );
            tcp = connection;
        }
        let hba = format!("local all all trust\n{tcp} all all 127.0.0.1/32 {auth}\n");
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let log = server.dir.path().join("log");
        server.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        server
    }

    /// `ca.pem`, and `server.pem` (for the name `localhost` only) with its key, by openssl.
    fn make_certificates(&self) {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path())
                .output()
                .expect("openssl (apt-get install openssl)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca = [
            "-x509",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=dau test CA",
        ];
        openssl(&[&["req"], &key[..], &ca[..], &["-days", "2"]].concat());
        let request = [
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ];
        openssl(&[&["req"], &key[..], &request[..]].concat());
        let names = "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n";
        std::fs::write(self.dir.path().join("names"), names).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "names",
            "-out",
            "server.pem",
        ]);
        // The server refuses a key others can read.
        let key = self.dir.path().join("server.key");
        std::fs::set_permissions(key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }

    fn as_root() -> bool {
        let id = Command::new("id").arg("-u").output().unwrap();
        String::from_utf8_lossy(&id.stdout).trim() == "0"
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if Postgres::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let out = command.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://dau@127.0.0.1:{}/postgres", self.port)
    }

    /// One value from psql (over the server's Unix socket), as text.
    fn query(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", self.dir.path().to_str().unwrap(), "-p"])
            .args([&self.port.to_string(), "-U", "dau", "-d", "postgres"])
            .args(["-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

#[test]
fn postgres_rows_are_upserted_per_day_in_one_transaction() {
    let w = Workdir::new();
    let rows = lake(&w);
    let pg = Postgres::start();
    let dest = format!("{}?table=daily_metrics", pg.url());
    export_rounds(&w, &dest);
    let got = pg.query(
        "SELECT string_agg(date::text || ' ' || dau || ' ' || mau || ' ' || opens, ',' ORDER BY date) \
         FROM daily_metrics",
    );
    let want: Vec<String> = EXPORTED
        .into_iter()
        .map(|d| {
            let (dau, mau, opens) = oracle(&rows, day(d));
            format!("{d} {dau} {mau} {opens}")
        })
        .collect();
    assert_eq!(got, want.join(","));
    let types = pg.query(
        "SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY ordinal_position) \
         FROM information_schema.columns WHERE table_name = 'daily_metrics'",
    );
    assert!(
        types.starts_with("date date,dau bigint,mau bigint,opens bigint"),
        "{types}"
    );

    for _ in 0..2 {
        let run = export(
            &w,
            &["user-days", "--date", "2024-06-04", "--output", &pg.url()],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let dau = oracle(&rows, day("2024-06-04")).0;
    assert_eq!(
        pg.query("SELECT COUNT(*) || ' ' || COUNT(DISTINCT \"userId\") FROM user_days"),
        format!("{dau} {dau}")
    );

    // Other columns into the same table: refused, the table untouched.
    let run = export(&w, &["dau", "--date", "2024-06-06", "--output", &dest]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(pg.query("SELECT COUNT(*) FROM daily_metrics"), "5");

    // No server there: exit 3, saying where.
    let nobody = format!("postgres://dau@127.0.0.1:{}/postgres", free_port());
    let run = export(&w, &["dau", "--date", "2024-06-06", "--output", &nobody]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("cannot export to {nobody}"))
            && run.stderr.contains("Connection refused"),
        "{}",
        run.stderr
    );
    // A URL the driver cannot use: exit 2 before anything is computed, the password hidden.
    for (dest, why) in [
        ("postgres://u:secret@h/db?foo=1", "unknown option `foo`"),
        (
            "postgres://u@h/db?connect_timeout=soon",
            "`connect_timeout`",
        ),
        ("postgres://", "no host"),
    ] {
        let run = export(&w, &["dau", "--date", "2024-06-06", "--output", dest]);
        assert_eq!(run.code, 2, "{dest}: {}", run.stderr);
        assert!(run.stderr.contains("bad PostgreSQL URL"), "{}", run.stderr);
        assert!(run.stderr.contains(why), "{dest}: {}", run.stderr);
        assert!(!run.stderr.contains("secret"), "{}", run.stderr);
    }
}

/// `?table=SCHEMA.TABLE` makes and fills the table in that schema, not a same-named one on the
/// search path; a schema that does not exist is named, and a name of three parts is refused.
/// User-days of unsigned 64-bit ids (2^64 − 1 down) keep every digit in each destination: CSV,
/// Parquet (as UInt64), SQLite (as text: its integers are signed), PostgreSQL (NUMERIC(20)) and
/// xlsx (as text beyond 2^53, where Excel's numbers are doubles).
#[test]
fn unsigned_64_bit_ids_keep_every_digit_in_each_destination() {
    use calamine::{Data, Reader, Xlsx};
    let w = Workdir::new();
    let rows = random_rows(12, day(START), 3, 200);
    let spec = LakeSpec {
        ids: "uint64",
        ..LakeSpec::default()
    };
    write_lake(&w.join("lake"), &spec, &rows, &[]);
    let date = day("2024-06-02");
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (_, user) in rows.iter().filter(|r| r.0 == date) {
        *want.entry((u64::MAX - user).to_string()).or_default() += 1;
    }
    assert!(
        want.keys().all(|id| id.len() == 20),
        "ids from 2^64 − 1 down"
    );
    let pg = Postgres::start();
    let outputs = [
        "user_days.csv".to_string(),
        "user_days.parquet".into(),
        "sqlite://metrics.db".into(),
        "user_days.xlsx".into(),
        pg.url(),
    ];
    for output in &outputs {
        let run = export(&w, &["user-days", "--date", "2024-06-02", "-o", output]);
        assert_eq!(run.code, 0, "{output}: {}", run.stderr);
    }
    let csv = std::fs::read_to_string(w.join("user_days.csv")).unwrap();
    let got: BTreeMap<String, u64> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(got, want, "csv");

    let file = std::fs::File::open(w.join("user_days.parquet")).unwrap();
    let mut got = BTreeMap::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_primitive::<UInt64Type>();
        let opens = batch.column(2).as_primitive::<Int64Type>();
        got.extend(
            ids.iter()
                .zip(opens.iter())
                .map(|(id, n)| (id.unwrap().to_string(), n.unwrap() as u64)),
        );
    }
    assert_eq!(got, want, "parquet");

    let db = rusqlite::Connection::open(w.join("metrics.db")).unwrap();
    let mut statement = db
        .prepare("SELECT userId, opens, typeof(userId) FROM user_days")
        .unwrap();
    let got: BTreeMap<String, u64> = statement
        .query_map([], |r| {
            assert_eq!(r.get::<_, String>(2)?, "text");
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, want, "sqlite");
    // A table made otherwise, with a numeric column where SQLite would round them: refused,
    // its rows untouched.
    let other = rusqlite::Connection::open(w.join("other.db")).unwrap();
    other
        .execute_batch(
            "CREATE TABLE user_days (userId INTEGER, date TEXT, opens INTEGER);
             INSERT INTO user_days VALUES (1, '2024-06-02', 3);",
        )
        .unwrap();
    let run = export(
        &w,
        &[
            "user-days",
            "--date",
            "2024-06-02",
            "-o",
            "sqlite://other.db",
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("its column userId is numeric"),
        "{}",
        run.stderr
    );
    let kept: (i64, i64) = other
        .query_row("SELECT COUNT(*), SUM(userId) FROM user_days", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kept, (1, 1));

    let got = pg.query(
        "SELECT string_agg(\"userId\" || ' ' || opens, ',' ORDER BY \"userId\") FROM user_days",
    );
    let listed: Vec<String> = want.iter().map(|(id, n)| format!("{id} {n}")).collect();
    assert_eq!(got, listed.join(","), "postgres");
    let column = "SELECT data_type || ' ' || numeric_precision FROM information_schema.columns \
                  WHERE table_name = 'user_days' AND column_name = 'userId'";
    assert_eq!(pg.query(column), "numeric 20");

    let mut book: Xlsx<_> = calamine::open_workbook(w.join("user_days.xlsx")).unwrap();
    let sheet = book.worksheet_range("user-days").unwrap();
    let got: BTreeMap<String, u64> = sheet
        .rows()
        .skip(1)
        .map(|r| match (&r[0], &r[2]) {
            (Data::String(id), Data::Float(n)) => (id.clone(), *n as u64),
            other => panic!("an id as text and a count: {other:?}"),
        })
        .collect();
    assert_eq!(got, want, "xlsx");
}

/// User-days of ids that a workbook keeps as numbers (up to 2^53) beside ones it keeps as text
/// (beyond, where a number would round) are all written, each exact. (The sort of such rows had
/// no total order and could panic, exit 101: `sink::xlsx::tests::rows_of_mixed_cells_are_in_a_total_order`.)
#[test]
fn a_workbook_of_user_days_sorts_ids_of_both_kinds() {
    use calamine::{Data, Reader, Xlsx};
    let w = Workdir::new();
    // As INT64: -2^63 and 2^53 + 1 on (text in a workbook), -1, 0 and 2^53 (numbers).
    let ids = [
        1 << 63,
        u64::MAX,
        0,
        1 << 53,
        (1 << 53) + 1,
        (1 << 63) - 2,
        (1 << 63) - 1,
    ];
    let mut rows = Vec::new();
    for d in 0..10_u64 {
        for k in 0..70_u64 {
            let user = ids[((k * 5 + d) % 7) as usize];
            rows.push((day(START) + Days::new(d), user));
        }
    }
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (date, user) in &rows {
        let id = (*user as i64).to_string();
        *want.entry((id, date.to_string())).or_default() += 1;
    }
    let to = (day(START) + Days::new(9)).to_string();
    let run = export(
        &w,
        &["user-days", "--from", START, "--to", &to, "-o", "u.xlsx"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut book: Xlsx<_> = calamine::open_workbook(w.join("u.xlsx")).unwrap();
    let sheet = book.worksheet_range("user-days").unwrap();
    let got: BTreeMap<(String, String), u64> = sheet
        .rows()
        .skip(1)
        .map(|r| {
            let id = match &r[0] {
                Data::Float(n) => (*n as i64).to_string(),
                Data::String(id) => id.clone(),
                other => panic!("an id: {other:?}"),
            };
            let date = match &r[1] {
                Data::DateTime(d) => d.as_datetime().unwrap().date().to_string(),
                other => panic!("a date: {other:?}"),
            };
            let Data::Float(opens) = r[2] else {
                panic!("a count: {:?}", r[2])
            };
            ((id, date), opens as u64)
        })
        .collect();
    assert_eq!(got, want);
}

/// What the URL leaves out comes from libpq's environment, as psql (libpq itself) takes it: the
/// password from PGPASSWORD, else the password file's line for the connection (PGPASSFILE, else
/// `~/.pgpass`; not a file others may read); the host, port, user and database from PGHOST,
/// PGPORT, PGUSER and PGDATABASE.
#[test]
fn postgres_takes_what_the_url_leaves_out_from_libpq_environment() {
    let w = Workdir::new();
    let rows = lake(&w);
    let password = "pa:ss\\word";
    let pg = Postgres::start_with_password(password);
    let home = w.join("home");
    std::fs::create_dir(&home).unwrap();
    let pgpass = w.join("pgpass");
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    let lines = format!(
        "# dau's\n127.0.0.1:{}:*:dau:wrong\n127.0.0.1:{}:postgres:dau:{escaped}\n",
        pg.port + 1,
        pg.port
    );
    std::fs::write(&pgpass, lines).unwrap();
    let private = |path: &std::path::Path, mode: u32| {
        let mode = std::os::unix::fs::PermissionsExt::from_mode(mode);
        std::fs::set_permissions(path, mode).unwrap();
    };
    private(&pgpass, 0o600);
    let pgpass = pgpass.to_str().unwrap();
    let port = pg.port.to_string();
    let everything = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "dau"),
        ("PGDATABASE", "postgres"),
        ("PGPASSWORD", password),
        // No limit to libpq; a limit of 10 s to dau (it failed every export at once).
        ("PGCONNECT_TIMEOUT", "0"),
    ];
    // Each export with the URL and variables, and whether psql connects with the same.
    let attempt = |date: &str, url: &str, env: &[(&str, &str)]| {
        let dest = format!("{url}?table=daily");
        let args = [
            "export", "--lake", "lake", "dau", "--date", date, "--output", &dest,
        ];
        let mut dau = w.command(&args);
        let mut psql = Command::new(pg.bin.join("psql"));
        psql.args([url, "-At", "-c", "SELECT 1"]);
        for command in [&mut dau, &mut psql] {
            command.env("HOME", &home).envs(env.iter().copied());
        }
        let run: Run = dau.output().unwrap().into();
        assert!(!run.stderr.contains("ss\\word"), "{}", run.stderr);
        (run, psql.output().unwrap().status.success())
    };
    let url = pg.url();
    let delivered = [
        ("2024-06-02", url.as_str(), &[("PGPASSWORD", password)][..]),
        ("2024-06-03", &url, &[("PGPASSFILE", pgpass)]),
        ("2024-06-04", "postgres://", &everything),
    ];
    for (date, url, env) in delivered {
        let (run, psql) = attempt(date, url, env);
        assert_eq!(run.code, 0, "{url} {env:?}: {}", run.stderr);
        assert!(psql, "psql connects too");
    }
    // `~/.pgpass` when PGPASSFILE names none.
    std::fs::copy(pgpass, home.join(".pgpass")).unwrap();
    let (run, psql) = attempt("2024-06-05", &url, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(psql);
    std::fs::remove_file(home.join(".pgpass")).unwrap();

    private(std::path::Path::new(pgpass), 0o644);
    let refused = [
        (
            &[][..],
            "the server asks for a password, and no password was given: none is in the URL or PGPASSWORD",
        ),
        (
            &[("PGPASSWORD", "wrong")],
            "password authentication failed for user \"dau\" (the password given was PGPASSWORD's)",
        ),
        (
            &[("PGPASSFILE", pgpass)],
            "has group or world access; permissions should be u=rw (0600) or less, so it was not read",
        ),
    ];
    for (env, why) in refused {
        let (run, psql) = attempt("2024-06-06", &url, env);
        assert_eq!(run.code, 3, "{env:?}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{env:?}: {}", run.stderr);
        assert!(!psql, "psql refused too: {env:?}");
    }
    let bad = [
        ("PGPORT", "abc", "PGPORT 'abc' is not a port"),
        ("PGSSLMODE", "verify", "bad sslmode 'verify' in PGSSLMODE"),
        ("PGHOST", "", "no host (nor PGHOST"),
    ];
    for (key, value, why) in bad {
        let (run, _) = attempt("2024-06-06", "postgres://", &[(key, value)]);
        assert_eq!(run.code, 2, "{key}={value}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{key}={value}: {}", run.stderr);
    }

    let want: Vec<String> = ["2024-06-02", "2024-06-03", "2024-06-04", "2024-06-05"]
        .iter()
        .map(|d| format!("{d} {}", oracle(&rows, day(d)).0))
        .collect();
    let got = pg.query("SELECT string_agg(date || ' ' || dau, ',' ORDER BY date) FROM daily");
    assert_eq!(got, want.join(","));
    // dau names itself to the server (pg_stat_activity shows it).
    let log = std::fs::read_to_string(pg.dir.path().join("log")).unwrap();
    assert!(log.contains("application_name=dau"), "{log}");
}

#[test]
fn postgres_tables_can_be_in_a_schema() {
    let w = Workdir::new();
    let rows = lake(&w);
    let pg = Postgres::start();
    pg.query("CREATE SCHEMA analytics; CREATE TABLE daily (other integer)");
    let dest = format!("{}?table=analytics.daily", pg.url());
    for date in ["2024-06-03", "2024-06-04", "2024-06-03"] {
        let run = export(&w, &["dau", "--date", date, "--output", &dest]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let want: Vec<String> = ["2024-06-03", "2024-06-04"]
        .iter()
        .map(|d| format!("{d} {}", oracle(&rows, day(d)).0))
        .collect();
    let got =
        pg.query("SELECT string_agg(date || ' ' || dau, ',' ORDER BY date) FROM analytics.daily");
    assert_eq!(got, want.join(","));
    assert_eq!(pg.query("SELECT COUNT(*) FROM public.daily"), "0");

    let nowhere = format!("{}?table=nowhere.daily", pg.url());
    let run = export(&w, &["dau", "--date", "2024-06-03", "--output", &nowhere]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("schema \"nowhere\" does not exist"),
        "{}",
        run.stderr
    );
    let three = format!("{}?table=a.b.c", pg.url());
    let run = export(&w, &["dau", "--date", "2024-06-03", "--output", &three]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("TABLE or SCHEMA.TABLE"),
        "{}",
        run.stderr
    );
    let sqlite = export(&w, &["dau", "--output", "sqlite://m.db?table=main.daily"]);
    assert_eq!(sqlite.code, 2, "{}", sqlite.stderr);
}

/// A table made by hand before the first export, as a DBA makes it: `integer` counts, the columns
/// in another order, and columns of its own that fill themselves (an identity, a DEFAULT, a
/// generated one). Rows go in by name, cast to the table's types, and a day exported again
/// replaces its row. A column that would be left empty (another metric's, a note) is refused,
/// naming it, and the table stays as it was; so is a count too big for `integer`.
#[test]
fn tables_made_by_hand_take_the_rows_by_name_and_type() {
    let w = Workdir::new();
    let rows = lake(&w);
    let pg = Postgres::start();
    pg.query(
        "CREATE TABLE daily (id bigint GENERATED ALWAYS AS IDENTITY, mau integer, \
         date date PRIMARY KEY, dau integer, loaded_at timestamptz NOT NULL DEFAULT now(), \
         twice bigint GENERATED ALWAYS AS (dau * 2) STORED)",
    );
    let sqlite = w.join("hand.db");
    let db = rusqlite::Connection::open(&sqlite).unwrap();
    db.execute_batch(
        "CREATE TABLE daily (id INTEGER PRIMARY KEY, mau INTEGER, date TEXT UNIQUE, \
         dau INTEGER, loaded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, \
         twice INTEGER GENERATED ALWAYS AS (dau * 2))",
    )
    .unwrap();
    drop(db);
    let pg_dest = format!("{}?table=daily", pg.url());
    let sqlite_dest = format!("sqlite://{}?table=daily", sqlite.display());
    let days = ["2024-06-03", "2024-06-04", "2024-06-03"];
    for dest in [&pg_dest, &sqlite_dest] {
        for date in days {
            let run = export(&w, &["dau", "mau", "--date", date, "--output", dest]);
            assert_eq!(run.code, 0, "{dest}: {}", run.stderr);
        }
    }
    let want: Vec<String> = ["2024-06-03", "2024-06-04"]
        .iter()
        .map(|d| {
            let (dau, mau, _) = oracle(&rows, day(d));
            format!("{d} {dau} {mau} {}", dau * 2)
        })
        .collect();
    let row = "date || ' ' || dau || ' ' || mau || ' ' || twice";
    let pg_rows = |pg: &Postgres| {
        pg.query(&format!(
            "SELECT string_agg({row}, ',' ORDER BY date) FROM daily WHERE loaded_at IS NOT NULL"
        ))
    };
    let sqlite_rows = || -> String {
        let db = rusqlite::Connection::open(&sqlite).unwrap();
        db.query_row(
            &format!(
                "SELECT group_concat(r, ',') FROM (SELECT {row} AS r FROM daily \
                 WHERE loaded_at IS NOT NULL ORDER BY date)"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(pg_rows(&pg), want.join(","));
    assert_eq!(sqlite_rows(), want.join(","));

    // dau alone would leave mau empty on the day it replaces; so would a note with no default.
    for dest in [&pg_dest, &sqlite_dest] {
        let args = ["dau", "--date", "2024-06-03", "--output", dest];
        refused(
            &w,
            &args,
            "the export would leave mau empty on the days it replaces",
        );
    }
    // A note with a default that is NULL has no default either (in SQLite it was emptied in
    // silence).
    pg.query("ALTER TABLE daily ADD COLUMN note text DEFAULT NULL");
    let args = ["dau", "mau", "--date", "2024-06-03", "--output"];
    refused(
        &w,
        &[&args[..], &[&pg_dest]].concat(),
        "would leave note empty",
    );
    pg.query("ALTER TABLE daily DROP COLUMN note");
    let db = rusqlite::Connection::open(&sqlite).unwrap();
    for default in ["NULL", "((null))", "(CAST(NULL AS TEXT))"] {
        let add = format!("ALTER TABLE daily ADD COLUMN note TEXT DEFAULT {default}");
        db.execute_batch(&add).unwrap();
        let dest = [&args[..], &[&sqlite_dest]].concat();
        refused(&w, &dest, "would leave note empty");
        db.execute_batch("ALTER TABLE daily DROP COLUMN note")
            .unwrap();
    }
    drop(db);
    assert_eq!(pg_rows(&pg), want.join(","));
    assert_eq!(sqlite_rows(), want.join(","));

    // A role that may write the table but not make tables (PostgreSQL 15: only the owner may
    // create in the schema public) exports into it; a table it would have to make is named, with
    // its CREATE TABLE.
    pg.query(
        "CREATE ROLE writer LOGIN; REVOKE CREATE ON SCHEMA public FROM PUBLIC; \
         GRANT SELECT, INSERT, DELETE ON daily TO writer",
    );
    let writer = pg.url().replace("//dau@", "//writer@");
    let run = export(
        &w,
        &[
            "dau",
            "mau",
            "--date",
            "2024-06-04",
            "--output",
            &format!("{writer}?table=daily"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(pg_rows(&pg), want.join(","));
    let run = export(
        &w,
        &[
            "dau",
            "--date",
            "2024-06-04",
            "--output",
            &format!("{writer}?table=other"),
        ],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "permission denied for schema public: there is no table other, and this role may not \
             make one: make it as its owner (CREATE TABLE IF NOT EXISTS \"other\" (\"date\" DATE"
        ),
        "{}",
        run.stderr
    );
    // A table that is there but that this role may not use is said so (it was "there is no
    // table", as the role sees no columns of it).
    pg.query("CREATE TABLE hand (date date PRIMARY KEY, dau bigint)");
    let args = ["dau", "--date", "2024-06-04", "--output"];
    let run = export(
        &w,
        &[&args[..], &[&format!("{writer}?table=hand")]].concat(),
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("permission denied for table hand"),
        "{}",
        run.stderr
    );
    // The table is the one the search path finds: with a schema of the role's own first on it
    // (`"$user", public`), a second `daily` was made there and took the rows.
    pg.query("CREATE SCHEMA writer AUTHORIZATION writer");
    let args = ["dau", "mau", "--date", "2024-06-04", "--output"];
    let run = export(
        &w,
        &[&args[..], &[&format!("{writer}?table=daily")]].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let made = "SELECT count(*) FROM pg_tables WHERE schemaname = 'writer'";
    assert_eq!(pg.query(made), "0");
    assert_eq!(pg_rows(&pg), want.join(","));
    // A name that differs only in case is named (`CREATE TABLE Daily` makes `daily`).
    let run = export(
        &w,
        &[&args[..], &[&format!("{writer}?table=Daily")]].concat(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("there is no table Daily in postgres://writer@127.0.0.1:")
            && run
                .stderr
                .contains("but there is daily: names are case-sensitive: give ?table=daily"),
        "{}",
        run.stderr
    );
    assert_eq!(pg.query(made), "0");

    // Days kept as text in a table made by hand: replaced as days all the same.
    pg.query("CREATE TABLE texty (date text PRIMARY KEY, dau bigint)");
    let texty = format!("{}?table=texty", pg.url());
    for date in days {
        let run = export(&w, &["dau", "--date", date, "--output", &texty]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let dau: Vec<String> = ["2024-06-03", "2024-06-04"]
        .iter()
        .map(|d| format!("{d} {}", oracle(&rows, day(d)).0))
        .collect();
    let got = pg.query("SELECT string_agg(date || ' ' || dau, ',' ORDER BY date) FROM texty");
    assert_eq!(got, dau.join(","));
    // Days as `timestamptz` UTC midnights (as pandas writes them), on a server whose zone is
    // not UTC: a re-export replaced the day before (the server's `date::date`) instead.
    pg.query(
        "CREATE TABLE zoned (date timestamptz PRIMARY KEY, dau bigint); INSERT INTO zoned VALUES \
         ('2024-06-03 00:00+00', 1), ('2024-06-04 00:00+00', 2), ('2024-06-05 00:00+00', 3); \
         ALTER DATABASE postgres SET timezone = 'America/New_York'",
    );
    let zoned = format!("{}?table=zoned", pg.url());
    let run = export(&w, &["dau", "--date", "2024-06-04", "--output", &zoned]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = pg.query(
        "SELECT string_agg(to_char(date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' ' || dau, \
         ',' ORDER BY date) FROM zoned",
    );
    let dau = oracle(&rows, day("2024-06-04")).0;
    let want = format!("2024-06-03 00:00 1,2024-06-04 00:00 {dau},2024-06-05 00:00 3");
    assert_eq!(got, want);
    pg.query("ALTER DATABASE postgres RESET timezone");
    // In SQLite, days as pandas' to_sql writes them (`2024-06-03 00:00:00`) are replaced too,
    // by a day's export and by a range's; they were kept beside the new rows.
    let db = rusqlite::Connection::open(&sqlite).unwrap();
    db.execute_batch(
        "CREATE TABLE stamps (date TIMESTAMP, dau INTEGER); INSERT INTO stamps VALUES \
         ('2024-06-03 00:00:00', 1), ('2024-06-04 00:00:00', 2), ('2024-06-05 00:00:00', 3)",
    )
    .unwrap();
    let stamps = format!("sqlite://{}?table=stamps", sqlite.display());
    for range in [
        &["--date", "2024-06-03"][..],
        &["--from", "2024-06-04", "--to", "2024-06-05"],
    ] {
        let run = export(&w, &[&["dau", "--output", &stamps][..], range].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let got: String = db
        .query_row(
            "SELECT group_concat(r, ',') FROM (SELECT date || ' ' || dau AS r FROM stamps \
             ORDER BY date)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Written as the column keeps its days (they were `2024-06-03`, which pandas then read as
    // NaT beside its own `2024-06-03 00:00:00`).
    let want: Vec<String> = ["2024-06-03", "2024-06-04", "2024-06-05"]
        .iter()
        .map(|d| format!("{d} 00:00:00 {}", oracle(&rows, day(d)).0))
        .collect();
    assert_eq!(got, want.join(","));
    // Days as numbers (pandas' integer dates): named, the table kept (a second row was added
    // for the day, which the numbers hid from the delete).
    db.execute_batch("CREATE TABLE numbered (date INTEGER, dau INTEGER); INSERT INTO numbered VALUES (20240603, 1)")
        .unwrap();
    let numbered = format!("sqlite://{}?table=numbered", sqlite.display());
    let run = export(&w, &["dau", "--date", "2024-06-03", "--output", &numbered]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("holds 1 date(s) as numbers"),
        "{}",
        run.stderr
    );
    let kept: u64 = db
        .query_row("SELECT count(*) FROM numbered", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1);

    // A count beyond the column's type: the server refuses it, and nothing is written.
    let dau = oracle(&rows, day("2024-06-05")).0;
    assert!(dau > 99, "{dau}");
    pg.query("CREATE TABLE tiny (date date, dau numeric(2))");
    let tiny = format!("{}?table=tiny", pg.url());
    let run = export(&w, &["dau", "--date", "2024-06-05", "--output", &tiny]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("numeric field overflow"),
        "{}",
        run.stderr
    );
    assert_eq!(pg.query("SELECT COUNT(*) FROM tiny"), "0");
}

/// Text ids go into PostgreSQL as they are, whatever they hold: an empty id is an empty text (not
/// NULL), and tabs, line breaks, backslashes and `\N` are kept; each with its opens.
#[test]
fn postgres_keeps_text_ids_as_they_are() {
    let w = Workdir::new();
    let ids = [
        "",
        "a\tb",
        "line\nbreak\r",
        "back\\slash",
        "\\N",
        "ünïcödé",
        "\"q\",x",
        "",
    ];
    std::fs::create_dir_all(w.join("lake/date=2024-06-01")).unwrap();
    write_strings(&w.join("lake/date=2024-06-01/part-0.parquet"), &ids);
    let pg = Postgres::start();
    let run = export(
        &w,
        &["user-days", "--date", "2024-06-01", "--output", &pg.url()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for id in ids {
        let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
        *want.entry(hex).or_default() += 1;
    }
    let want: Vec<String> = want.iter().map(|(hex, n)| format!("[{hex}] {n}")).collect();
    let got = pg.query(
        "SELECT string_agg('[' || encode(convert_to(\"userId\", 'UTF8'), 'hex') || '] ' || opens, \
         ',' ORDER BY encode(convert_to(\"userId\", 'UTF8'), 'hex')) FROM user_days",
    );
    assert_eq!(got, want.join(","));
}

#[test]
fn postgres_over_tls_checks_the_certificate_as_sslmode_says() {
    let w = Workdir::new();
    let rows = lake(&w);
    let pg = Postgres::start_tls();
    let ca = pg.dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let url = |host: &str, tls: &str| {
        format!(
            "postgres://dau@{host}:{}/postgres?{tls}&table=daily",
            pg.port
        )
    };
    let delivered = [
        // libpq's default: TLS when the server offers it, the certificate not checked.
        ("2024-06-02", url("127.0.0.1", "connect_timeout=5")),
        (
            "2024-06-03",
            url("127.0.0.1", "sslmode=require").replace("dau@", "dau:pw@"),
        ),
        // The certificate is signed by the CA and names the host.
        (
            "2024-06-04",
            url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
        ),
        // Signed by the CA; the name it holds is not checked.
        (
            "2024-06-05",
            url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")),
        ),
    ];
    for (date, dest) in &delivered {
        let run = export(&w, &["dau", "--date", date, "--output", dest]);
        assert_eq!(run.code, 0, "{dest}: {}", run.stderr);
        let shown = dest.replace(":pw@", ":***@");
        assert!(
            run.stderr.contains(&format!("into {shown} (")),
            "{}",
            run.stderr
        );
    }
    let name_hint = "connect by a name it holds, or use sslmode=verify-ca";
    let ca_hint = "no trusted CA signed the server's certificate: add sslrootcert=FILE";
    let refused = [
        (url("127.0.0.1", "sslmode=disable"), &["no encryption"][..]),
        (
            url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={ca}"),
            ),
            &["not valid for name \"127.0.0.1\"", name_hint],
        ),
        (
            url("localhost", "sslmode=verify-full"),
            &["UnknownIssuer", ca_hint],
        ),
        (
            url("localhost", "sslrootcert=system"),
            &["UnknownIssuer", ca_hint],
        ),
    ];
    for (dest, why) in &refused {
        let run = export(&w, &["dau", "--date", "2024-06-06", "--output", dest]);
        assert_eq!(run.code, 3, "{dest}: {}", run.stderr);
        for why in *why {
            assert!(run.stderr.contains(why), "{dest}: {}", run.stderr);
        }
        assert!(run.stderr.contains("nothing of this export was written"));
    }
    let run = export(
        &w,
        &["dau", "--output", &url("localhost", "sslmode=verify")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("bad sslmode 'verify'"),
        "{}",
        run.stderr
    );

    let want: Vec<String> = delivered
        .iter()
        .map(|(date, _)| format!("{date} {}", oracle(&rows, day(date)).0))
        .collect();
    let got = pg.query("SELECT string_agg(date || ' ' || dau, ',' ORDER BY date) FROM daily");
    assert_eq!(got, want.join(","));
}

/// A server that offers TLS but whose handshake fails (here: only TLS 1.0 and 1.1, which rustls
/// does not speak): with the default `prefer`, the export goes without TLS, as libpq's does;
/// `require` fails, saying why.
#[test]
fn prefer_goes_without_tls_when_the_handshake_fails() {
    let w = Workdir::new();
    let rows = lake(&w);
    let old_tls = "-c ssl_min_protocol_version=TLSv1 -c ssl_max_protocol_version=TLSv1.1";
    let pg = Postgres::start_with(Some((old_tls, "host")), "trust");

    let run = export(&w, &["dau", "--date", "2024-06-03", "--output", &pg.url()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dau = oracle(&rows, day("2024-06-03")).0;
    assert_eq!(pg.query("SELECT dau FROM daily_metrics"), dau.to_string());
    let required = format!("{}?sslmode=require", pg.url());
    let run = export(&w, &["dau", "--date", "2024-06-04", "--output", &required]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("error performing TLS handshake"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_killed_postgres_export_leaves_no_half_written_rows() {
    let w = Workdir::new();
    big_lake(&w);
    let pg = Postgres::start();
    let run = export(
        &w,
        &["user-days", "--date", "2024-06-05", "--output", &pg.url()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = pg.query("SELECT COUNT(*) FROM user_days");

    let inserting = "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'COPY %'";
    kill_while_writing(&w, &pg.url(), || pg.query(inserting) != "0");
    // The server notices the closed connection and rolls the transaction back.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pg.query("SELECT COUNT(*) FROM pg_stat_activity WHERE state LIKE 'idle in%'") != "0" {
        assert!(Instant::now() < deadline, "the transaction stayed open");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(pg.query("SELECT COUNT(*) FROM user_days"), before);
}

/// A server that takes the connection and never answers (frozen, or a stuck proxy): the export
/// gives up after `connect_timeout`, as libpq does, instead of hanging a nightly job unalerted.
#[test]
fn a_postgres_server_that_never_answers_fails_the_export_in_time() {
    let w = Workdir::new();
    lake(&w);
    // The kernel takes connections into the backlog of a socket that never accepts them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgres://dau@127.0.0.1:{port}/db?connect_timeout=2&sslmode=disable");
    let args = [
        "export",
        "dau",
        "--lake",
        "lake",
        "--date",
        "2024-06-05",
        "-o",
        &url,
    ];
    let mut child = (w
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()))
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the export still waits for the server after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("did not answer within 2 s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
}

/// A formula saved without its value (as openpyxl and pandas save them) is named, exit 2, the
/// workbook kept: it read as an empty cell, and the delivered number was written back empty.
#[test]
fn a_formula_without_its_value_in_a_workbook_is_named() {
    let w = Workdir::new();
    lake(&w);
    let args = [
        "dau",
        "--from",
        "2024-06-02",
        "--to",
        "2024-06-03",
        "-o",
        "w.xlsx",
    ];
    let run = export(&w, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let edit = "import re, shutil, zipfile\n\
                book = zipfile.ZipFile('w.xlsx')\n\
                out = zipfile.ZipFile('e.xlsx', 'w', zipfile.ZIP_DEFLATED)\n\
                for item in book.infolist():\n    \
                    data = book.read(item.filename)\n    \
                    if item.filename == 'xl/worksheets/sheet1.xml':\n        \
                        data, n = re.subn(rb'(<c r=\"B2\"[^>]*>)<v>[^<]*</v>', rb'\\1<f>1+1</f>', data)\n        \
                        assert n == 1, data\n    \
                    out.writestr(item, data)\n\
                out.close()\n\
                shutil.move('e.xlsx', 'w.xlsx')\n";
    python(w.path(), &["-c", edit]);
    let args = ["dau", "--date", "2024-06-05", "-o", "w.xlsx"];
    let says = "w.xlsx sheet dau row 2 has the formula =1+1 with no value saved";
    refused_keeping(&w, &args, &w.join("w.xlsx"), says);
}

#[test]
fn a_workbook_has_a_sheet_per_metric_with_typed_cells() {
    use calamine::{Data, DataType, Reader, Xlsx};
    let w = Workdir::new();
    let rows = lake(&w);
    // Through a link to a workbook not made yet: the link stays, the workbook is made where
    // it points.
    std::fs::create_dir(w.join("books")).unwrap();
    std::os::unix::fs::symlink("books/daily.xlsx", w.join("daily.xlsx")).unwrap();
    export_rounds(&w, "daily.xlsx");
    let link = std::fs::symlink_metadata(w.join("daily.xlsx")).unwrap();
    assert!(link.file_type().is_symlink());
    let mut book: Xlsx<_> = calamine::open_workbook(w.join("books/daily.xlsx")).unwrap();
    let metrics = ["dau", "mau", "opens"];
    assert_eq!(book.sheet_names(), metrics);
    for (i, metric) in metrics.iter().enumerate() {
        let range = book.worksheet_range(metric).unwrap();
        let mut sheet = range.rows();
        assert_eq!(sheet.next().unwrap()[1], Data::String(metric.to_string()));
        let got: Vec<(NaiveDate, f64)> = sheet
            .map(|r| {
                assert!(matches!(r[0], Data::DateTime(_)), "a date cell: {:?}", r[0]);
                (r[0].as_date().unwrap(), r[1].get_float().unwrap())
            })
            .collect();
        let want: Vec<(NaiveDate, f64)> = EXPORTED
            .iter()
            .map(|d| {
                let (dau, mau, opens) = oracle(&rows, day(d));
                (day(d), [dau, mau, opens][i] as f64)
            })
            .collect();
        assert_eq!(got, want, "{metric}");
    }

    // The same metrics in another order: the same sheets, their rows kept, in the new order.
    let args = [
        "opens",
        "mau",
        "dau",
        "--date",
        "2024-06-13",
        "-o",
        "daily.xlsx",
    ];
    let run = export(&w, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut book: Xlsx<_> = calamine::open_workbook(w.join("books/daily.xlsx")).unwrap();
    assert_eq!(book.sheet_names(), ["opens", "mau", "dau"]);
    let range = book.worksheet_range("dau").unwrap();
    let days: Vec<NaiveDate> = (range.rows().skip(1))
        .map(|r| r[0].as_date().unwrap())
        .collect();
    let mut want: Vec<NaiveDate> = EXPORTED.iter().map(|d| day(d)).collect();
    want.push(day("2024-06-13"));
    assert_eq!(days, want);
}

/// A workbook someone added to keeps its rows of days, a date typed as text among them; a row of
/// no day (a total) is named and the workbook kept as it was, never dropped in silence.
#[test]
fn a_workbook_row_of_no_day_is_named_not_dropped() {
    use calamine::{DataType, Reader, Xlsx};
    use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
    let w = Workdir::new();
    let rows = lake(&w);
    let path = w.join("daily.xlsx");
    let write = |total: bool| {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet().set_name("dau").unwrap();
        sheet
            .write_string(0, 0, "date")
            .unwrap()
            .write_string(0, 1, "dau")
            .unwrap();
        let date = ExcelDateTime::from_ymd(2024, 6, 2).unwrap();
        let style = Format::new().set_num_format("m/d/yyyy");
        sheet
            .write_datetime_with_format(1, 0, &date, &style)
            .unwrap();
        sheet.write_number(1, 1, 5).unwrap();
        sheet
            .write_string(2, 0, "2024-06-03")
            .unwrap()
            .write_number(2, 1, 7)
            .unwrap();
        if total {
            sheet.write_string(3, 0, "Total").unwrap();
            sheet
                .write_formula(3, 1, Formula::new("=SUM(B2:B3)"))
                .unwrap();
        }
        book.save(&path).unwrap();
    };
    write(true);
    let args = ["dau", "--date", "2024-06-04", "-o", "daily.xlsx"];
    let says = "daily.xlsx sheet dau row 4 has 'Total' in the column date";
    refused_keeping(&w, &args, &path, says);

    write(false);
    let run = export(&w, &["dau", "--date", "2024-06-04", "-o", "daily.xlsx"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut book: Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let range = book.worksheet_range("dau").unwrap();
    let got: Vec<(NaiveDate, f64)> = range
        .rows()
        .skip(1)
        .map(|r| (r[0].as_date().unwrap(), r[1].get_float().unwrap()))
        .collect();
    let dau = oracle(&rows, day("2024-06-04")).0 as f64;
    let want = [
        (day("2024-06-02"), 5.0),
        (day("2024-06-03"), 7.0),
        (day("2024-06-04"), dau),
    ];
    assert_eq!(got, want);
}

/// `--webhook` (or `DAU_WEBHOOKS`) is told of a failed export, a missing day as a stale lake, and
/// of an unusual day with `--max-change`; never of an export that went well. A webhook that cannot
/// be told is a warning, and the exit status stays the export's.
#[test]
fn a_failed_or_unusual_export_tells_its_webhooks() {
    let w = Workdir::new();
    let rows = lake(&w);
    let (url, alerts) = receiver();
    let told = || std::mem::take(&mut *alerts.lock().unwrap());
    let to_hook = ["-o", "daily.csv", "--webhook", &url];
    let run = export(
        &w,
        &[&["dau", "--date", "2024-06-10"][..], &to_hook].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(told(), Vec::<String>::new());

    // A day the lake does not have yet: exit 4, and the webhooks hear of a stale lake.
    let dead = format!("http://127.0.0.1:{}/services/T0/B0/SECRET", free_port());
    let run = w
        .command(&["export", "--lake", "lake", "dau", "--date", "2024-06-25"])
        .args(["-o", "daily.csv"])
        .env("DAU_WEBHOOKS", format!("{dead},{url}"))
        .output()
        .unwrap();
    let run: Run = run.into();
    assert_eq!(run.code, 4, "{}", run.stderr);
    // Named by its host: the rest of a webhook's URL is its secret.
    let warning = "dau: warning: could not deliver an alert to http://127.0.0.1/…";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    assert!(!run.stderr.contains("SECRET"), "{}", run.stderr);
    let alerts_now = told();
    assert_eq!(alerts_now.len(), 1, "{alerts_now:?}");
    let text = "failed: dau export of 2024-06-25 into daily.csv (stale lake?): no partitions";
    assert!(alerts_now[0].contains(text), "{alerts_now:?}");

    // A bad setting: exit 2, told too (a nightly job is not watched).
    let bad = ["dau", "--date", "2024-06-10", "--timezone", "Nowhere/City"];
    let run = export(&w, &[&bad[..], &to_hook].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    let alerts_now = told();
    assert_eq!(alerts_now.len(), 1, "{alerts_now:?}");
    let text = "failed: dau export of 2024-06-10 into daily.csv: ";
    assert!(alerts_now[0].contains(text), "{alerts_now:?}");
    assert!(alerts_now[0].contains("Nowhere/City"), "{alerts_now:?}");

    // A day whose dau changed from a week before by more than --max-change.
    let (d, week_before) = (day("2024-06-15"), day("2024-06-08"));
    let (now, then) = (oracle(&rows, d).0, oracle(&rows, week_before).0);
    assert_ne!(now, then);
    let change = now.abs_diff(then) as f64 / then as f64 * 100.0;
    let limit = format!("{}%", change / 2.0);
    let args = ["dau", "--date", "2024-06-15", "--max-change", &limit];
    let run = export(&w, &[&args[..], &to_hook].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts_now = told();
    assert_eq!(alerts_now.len(), 1, "{alerts_now:?}");
    let text = format!("unusual: dau export into daily.csv: dau {now} on 2024-06-15");
    assert!(alerts_now[0].contains(&text), "{alerts_now:?}");
    assert!(alerts_now[0].contains(&format!("{then} on 2024-06-08")));

    // A webhook that is no URL is refused now, not found out on the night an alert is needed;
    // an empty DAU_WEBHOOKS (a secret not set) is none, not a webhook at ''.
    let args = ["dau", "--date", "2024-06-25", "-o", "daily.csv"];
    let run = export(&w, &[&args[..], &["--webhook", "notaurl"]].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "invalid value 'notaurl' for '--webhook <URL>': give the webhook's \
                             http:// or https:// URL"
        ),
        "{}",
        run.stderr
    );
    let mut cmd = w.command(&[&["export", "--lake", "lake"][..], &args[..]].concat());
    let run: Run = cmd.env("DAU_WEBHOOKS", "").output().unwrap().into();
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(!run.stderr.contains("could not deliver"), "{}", run.stderr);
}
