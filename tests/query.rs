//! Metric values against brute-force oracles, over every layout, id type and lake shape.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};

use crate::util::*;

const START: &str = "2024-05-20";
const DAYS: u64 = 45;

fn lake(w: &Workdir, spec: &LakeSpec) -> Vec<Row> {
    let rows = random_rows(7, day(START), DAYS, 300);
    write_lake(&w.join("lake"), spec, &rows, &[]);
    rows
}

fn csv(w: &Workdir, args: &[&str]) -> Run {
    let mut all = vec!["query", "--lake", "lake", "--format", "csv"];
    all.extend_from_slice(args);
    w.run(&all)
}

/// dau, wau and mau from 2024-06-10 to 2024-06-30: windows reach back before --from.
fn check_active_users(w: &Workdir, rows: &[Row], extra: &[&str]) {
    let (from, to) = (day("2024-06-10"), day("2024-06-30"));
    for (metric, n) in [("dau", 1), ("wau", 7), ("mau", 30)] {
        let mut args = vec![metric, "--from", "2024-06-10", "--to", "2024-06-30"];
        args.extend_from_slice(extra);
        let run = csv(w, &args);
        assert_eq!(run.csv()[0], ["date", metric], "{metric}");
        assert_eq!(
            run.series(),
            oracle_window(rows, n, from, to, &[]),
            "{metric} {extra:?}"
        );
    }
}

#[test]
fn every_layout_gives_the_oracle_numbers() {
    for (layout, prefix, named) in [
        ("date", "", "date=YYYY-MM-DD"),
        ("dt", "", "dt=YYYY-MM-DD"),
        ("dt-compact", "", "dt=YYYYMMDD"),
        ("day", "", "day=YYYY-MM-DD"),
        ("ds", "", "ds=YYYY-MM-DD"),
        ("event_date", "topics/app_opens/", "event_date=YYYY-MM-DD"),
        // A folder above the lake that names a day is no partition of it.
        ("date", "snapshot=20240601/", "date=YYYY-MM-DD"),
        ("dt", "20240601/", "dt=YYYY-MM-DD"),
        ("nested", "", "year=YYYY/month=MM/day=DD"),
        ("plain", "", "YYYY-MM-DD"),
        ("plain-nested", "", "YYYY/MM/DD"),
        ("plain-nested", "firehose/app_opens/", "YYYY/MM/DD"),
        ("date", "topics/app_opens/", "date=YYYY-MM-DD"),
    ] {
        let w = Workdir::new();
        let rows = lake(
            &w,
            &LakeSpec {
                layout,
                prefix,
                ..LakeSpec::default()
            },
        );
        check_active_users(&w, &rows, &[]);
        let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
        let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
        assert_eq!(report["layout"], named);
    }
}

/// Writes each day's `rows` as three files, one an hour: the file of the `n`th hour of day `d` at
/// `file(d, n)`.
fn write_hours(w: &Workdir, rows: &[Row], file: impl Fn(NaiveDate, usize) -> String) {
    let mut by_day: BTreeMap<NaiveDate, Vec<u64>> = BTreeMap::new();
    for (d, u) in rows {
        by_day.entry(*d).or_default().push(*u);
    }
    for (d, users) in &by_day {
        for (hour, users) in users.chunks(users.len().div_ceil(3)).enumerate() {
            let path = w.join(&file(*d, hour));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            write_file(&path, &LakeSpec::default(), users, *d);
        }
    }
}

/// Kinesis Firehose's `YYYY/MM/DD/HH/` folders: a day is every hour below it, across a month's
/// end; a folder beside the years is a stray, and a folder in a month that names no day is
/// skipped with a warning.
#[test]
fn firehose_hour_folders_are_their_day() {
    let w = Workdir::new();
    let rows = random_rows(9, day("2024-06-27"), 6, 300);
    write_hours(&w, &rows, |d, hour| {
        format!(
            "lake/{}/{hour:02}/app-opens-1-2024.parquet",
            d.format("%Y/%m/%d")
        )
    });
    std::fs::create_dir_all(w.join("lake/2024/06/latest")).unwrap();
    std::fs::create_dir_all(w.join("lake/errors")).unwrap();
    for engine in ["bitmap", "sql"] {
        let run = csv(&w, &["dau", "--engine", engine]);
        let want = oracle_window(&rows, 1, day("2024-06-27"), day("2024-07-02"), &[]);
        assert_eq!(run.series(), want, "{engine}");
        assert!(
            run.stderr
                .contains("skipped 1 folder(s) that do not name a day: 2024/06/latest"),
            "{}",
            run.stderr
        );
    }
    let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["layout"], "YYYY/MM/DD");
    assert_eq!(report["stray_files"], serde_json::json!(["errors/"]));
    assert_eq!(report["days"][0]["files"], 3);
}

/// `YYYY-MM-DD` folders with no key: one that starts as a day but names none (`2024-6-2`, a
/// trailing space) is skipped with a warning, as `date=2024-6-2` is (it was left out in silence);
/// a folder of another name is a stray, for `dau check`.
#[test]
fn a_misspelt_day_without_a_key_is_warned_of() {
    let w = Workdir::new();
    let spec = LakeSpec {
        layout: "plain",
        ..LakeSpec::default()
    };
    let rows = random_rows(74, day("2024-06-01"), 3, 90);
    write_lake(&w.join("lake"), &spec, &rows, &[]);
    for folder in ["2024-6-2", "2024-06-02 "] {
        let path = w.join(&format!("lake/{folder}/part-0.parquet"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_file(&path, &spec, &[1, 2, 3], day("2024-06-02"));
    }
    std::fs::create_dir_all(w.join("lake/errors")).unwrap();
    for engine in ["bitmap", "sql"] {
        let run = csv(&w, &["dau", "--engine", engine]);
        let want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-03"), &[]);
        assert_eq!(run.series(), want, "{engine}");
        let said = "skipped 2 folder(s) that do not name a day: 2024-06-02 , 2024-6-2";
        assert!(run.stderr.contains(said), "{engine}: {}", run.stderr);
    }
    let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["layout"], "YYYY-MM-DD");
    assert_eq!(report["stray_files"], serde_json::json!(["errors/"]));
    let skipped = serde_json::json!(["2024-06-02 ", "2024-6-2"]);
    assert_eq!(report["skipped_folders"], skipped);
}

/// `dt=YYYY-MM-DD-HH` folders, as Kafka Connect's time-based partitioner writes with
/// `path.format='dt'=YYYY-MM-dd-HH`: each is an hour of its day (not a day split over folders, so
/// no warning), in both engines; an hour that is not one (`-24`) is skipped and named.
#[test]
fn dashed_hour_folders_are_their_day() {
    let w = Workdir::new();
    let rows = random_rows(11, day("2024-06-29"), 4, 300);
    write_hours(&w, &rows, |d, hour| {
        format!("lake/dt={d}-{:02}/part-0.parquet", hour * 7)
    });
    let bad = w.join("lake/dt=2024-06-30-24");
    std::fs::create_dir_all(&bad).unwrap();
    write_file(
        &bad.join("part-0.parquet"),
        &LakeSpec::default(),
        &[1],
        day("2024-06-30"),
    );
    for engine in ["bitmap", "sql"] {
        let run = csv(&w, &["dau", "--engine", engine]);
        let want = oracle_window(&rows, 1, day("2024-06-29"), day("2024-07-02"), &[]);
        assert_eq!(run.series(), want, "{engine}");
        assert!(!run.stderr.contains("several folders"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("skipped 1 folder(s) that do not name a day: dt=2024-06-30-24"),
            "{}",
            run.stderr
        );
    }
    let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["layout"], "dt=YYYY-MM-DD-HH");
    assert_eq!(report["days"][0]["files"], 3);
}

/// With a done marker in each hour folder (`dt=YYYY-MM-DD-HH`), a day is done once all its hours
/// are: its 24 folders, or a later day's. The lake's last day, marked in each hour it has, was
/// counted whole at midnight though its last hours had no folder yet (a nightly export
/// delivered it short); a day before another lacks no hour (an hour with no events has none).
#[test]
fn hour_folders_with_markers_are_a_day_done_when_all_its_hours_are() {
    let w = Workdir::new();
    let rows = random_rows(75, day("2024-06-10"), 2, 300);
    write_hours(&w, &rows, |d, hour| {
        format!("lake/dt={d}-{:02}/part-0.parquet", hour * 7)
    });
    let folders: Vec<_> = std::fs::read_dir(w.join("lake")).unwrap().collect();
    for folder in folders {
        std::fs::write(folder.unwrap().path().join("_SUCCESS"), "").unwrap();
    }
    let (first, last) = (day("2024-06-10"), day("2024-06-11"));
    let dau = |w: &Workdir, engine: &str| {
        csv(w, &["dau", "--done-marker", "_SUCCESS", "--engine", engine])
    };
    for engine in ["bitmap", "sql"] {
        let run = dau(&w, engine);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let want = oracle_window(&rows, 1, first, last, &[last]);
        assert_eq!(run.series(), want, "{engine}");
        let said = "1 day(s) have no _SUCCESS yet in lake (--done-marker), or not all their hours \
                    (24, or a later day): 2024-06-11";
        assert!(run.stderr.contains(said), "{engine}: {}", run.stderr);
    }
    // The day's other hours land, with no events in them.
    for hour in (0..24).filter(|h| h % 7 != 0 || *h > 14) {
        let folder = w.join(&format!("lake/dt={last}-{hour:02}"));
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("_SUCCESS"), "").unwrap();
    }
    for engine in ["bitmap", "sql"] {
        let run = dau(&w, engine);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.series(), oracle_window(&rows, 1, first, last, &[]));
    }
    // Each lake of a pattern on its own: all of web's hours are not ios's (the day's folders
    // were counted together); and hours as timestamps, as pyarrow writes a column of them.
    let marked = |w: &Workdir, folder: String| {
        std::fs::create_dir_all(w.join(&folder)).unwrap();
        std::fs::write(w.join(&folder).join("_SUCCESS"), "").unwrap();
    };
    let w = Workdir::new();
    for app in ["ios", "web"] {
        write_hours(&w, &rows, |d, hour| {
            format!("lake/{app}/dt={d}-{:02}/part-0.parquet", hour * 7)
        });
        for hour in 0..24 {
            marked(&w, format!("lake/{app}/dt={first}-{hour:02}"));
        }
        marked(&w, format!("lake/{app}/dt={last}-00"));
    }
    for hour in 1..24 {
        marked(&w, format!("lake/web/dt={last}-{hour:02}"));
    }
    let w2 = Workdir::new();
    write_hours(&w2, &rows, |d, hour| {
        format!("lake/hour={d} {:02}%3A00%3A00/part-0.parquet", hour * 7)
    });
    for d in [first, last] {
        for hour in [0, 7, 14] {
            marked(&w2, format!("lake/hour={d} {hour:02}%3A00%3A00"));
        }
    }
    for (w, lake) in [(&w, "lake/{ios,web}"), (&w2, "lake")] {
        let args = ["query", "dau", "--lake", lake, "--format", "csv"];
        let run = w.run(&[&args[..], &["--done-marker", "_SUCCESS"]].concat());
        assert_eq!(run.code, 0, "{lake}: {}", run.stderr);
        assert_eq!(run.series()[&last], None, "{lake}: {}", run.stderr);
        assert!(
            run.stderr.contains("or not all their hours"),
            "{}",
            run.stderr
        );
    }
}

/// dau and mau from 2024-06-10 to 2024-06-30 from each of `engines`: the oracle's rows (NULL
/// where a window holds a `missing` day), with `warning` on stderr.
fn engines_give_the_oracle_rows(
    w: &Workdir,
    rows: &[Row],
    missing: &[NaiveDate],
    engines: &[&str],
    warning: &str,
) {
    let (from, to) = (day("2024-06-10"), day("2024-06-30"));
    for engine in engines {
        for (metric, n) in [("dau", 1), ("mau", 30)] {
            let args = [metric, "--from", "2024-06-10", "--to", "2024-06-30"];
            let run = csv(w, &[&args[..], &["--engine", engine]].concat());
            assert_eq!(run.code, 0, "{}", run.stderr);
            let want = oracle_window(rows, n, from, to, missing);
            assert_eq!(run.series(), want, "{metric} {engine}");
            assert!(run.stderr.contains(warning), "{}", run.stderr);
        }
    }
}

/// A day whose partition has data but no `_SUCCESS` while the other days have it may still be
/// being written. By default it is read, with a warning; with `done_marker = "_SUCCESS"` it is
/// missing (NULL) in both engines, cold and from rollups, an export of it alone is exit 4 and
/// leaves the file as it was, and once the marker lands the day counts. `dau check` lists it.
#[test]
fn a_day_without_its_done_marker_is_unfinished() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let unfinished = day("2024-06-20");
    std::fs::remove_file(w.join("lake/date=2024-06-20/_SUCCESS")).unwrap();
    let check = |marker: serde_json::Value| {
        let run = w.run(&["check", "--lake", "lake", "--format", "json"]);
        assert_eq!(run.code, 4, "{}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(report["unfinished_days"], serde_json::json!(["2024-06-20"]));
        assert_eq!(report["empty_days"], serde_json::json!([]));
        assert_eq!(report["done_marker"], marker);
    };
    // (The window's other days have it: 20 for dau, 40 for mau.)
    let noticed = "day(s) have it: 2024-06-20; if their writer is not done, they are undercounted";
    engines_give_the_oracle_rows(&w, &rows, &[], &["bitmap", "sql"], noticed);
    check(serde_json::Value::Null);
    // `off`: the lake has no markers; the same numbers, and no warning.
    let run = csv(&w, &["mau", "--to", "2024-06-30", "--done-marker", "off"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = oracle_window(&rows, 30, day("2024-06-01"), day("2024-06-30"), &[]);
    assert_eq!(run.series(), want);
    assert!(!run.stderr.contains("_SUCCESS"), "{}", run.stderr);

    std::fs::write(w.join("dau.toml"), "[lake]\ndone_marker = \"_SUCCESS\"\n").unwrap();
    let warning = "1 day(s) have no _SUCCESS yet in lake (--done-marker): 2024-06-20; still \
                   being written, they are missing (NULL)";
    let engines = ["bitmap", "sql", "bitmap"];
    engines_give_the_oracle_rows(&w, &rows, &[unfinished], &engines, warning);
    check(serde_json::json!("_SUCCESS"));
    std::fs::write(w.join("daily.csv"), "date,dau\n2024-06-19,7\n").unwrap();
    let export = ["export", "dau", "--lake", "lake", "--date", "2024-06-20"];
    let run = w.run(&[&export[..], &["--output", "daily.csv"]].concat());
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("without _SUCCESS (--done-marker), a partition is still being written"),
        "{}",
        run.stderr
    );
    let kept = std::fs::read_to_string(w.join("daily.csv")).unwrap();
    assert_eq!(kept, "date,dau\n2024-06-19,7\n");

    // Done: the day counts, from the flag as from the file, with no warning.
    std::fs::write(w.join("lake/date=2024-06-20/_SUCCESS"), "").unwrap();
    let want = oracle_window(&rows, 30, day("2024-06-10"), day("2024-06-30"), &[]);
    for engine in ["bitmap", "sql"] {
        let args = ["mau", "--from", "2024-06-10", "--to", "2024-06-30"];
        let flags = ["--engine", engine, "--done-marker", "_SUCCESS"];
        let run = csv(&w, &[&args[..], &flags[..]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.series(), want, "{engine}");
        assert!(!run.stderr.contains("_SUCCESS"), "{}", run.stderr);
    }
    let run = csv(&w, &["dau", "--done-marker", "a/b"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("bad --done-marker 'a/b'"),
        "{}",
        run.stderr
    );
    // An empty value (`DAU_DONE_MARKER=`) is none given: dau.toml's marker still applies.
    std::fs::remove_file(w.join("lake/date=2024-06-20/_SUCCESS")).unwrap();
    let run = csv(&w, &["dau", "--to", "2024-06-20", "--done-marker", ""]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.series()[&unfinished], None, "{}", run.stderr);
}

/// A done marker named like a data file (DONE, not _SUCCESS) is the marker, never read as data:
/// every finished day failed as "bad data file (…/DONE)".
#[test]
fn a_done_marker_named_like_data_is_no_data_file() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    for folder in std::fs::read_dir(w.join("lake")).unwrap() {
        let folder = folder.unwrap().path();
        std::fs::remove_file(folder.join("_SUCCESS")).unwrap();
        std::fs::write(folder.join("DONE"), "ok").unwrap();
    }
    let want = oracle_window(&rows, 30, day("2024-06-01"), day("2024-06-30"), &[]);
    for engine in ["bitmap", "sql"] {
        let args = ["mau", "--to", "2024-06-30", "--engine", engine];
        let run = csv(&w, &[&args[..], &["--done-marker", "DONE"]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.series(), want, "{engine}");
    }
    let run = w.run(&["check", "--lake", "lake", "--done-marker", "DONE"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

/// A file whose name ends in `#` and digits is data, locally as in a bucket: the local store
/// leaves such names out as its own unfinished uploads, and `run#2024` went uncounted, silently.
#[test]
fn a_file_named_as_an_upload_part_is_data() {
    let w = Workdir::new();
    let rows = random_rows(73, day("2024-06-01"), 2, 60);
    let (kept, hashed) = rows.split_at(rows.len() / 2);
    write_lake(&w.join("lake"), &LakeSpec::default(), kept, &[]);
    for d in [day("2024-06-01"), day("2024-06-02")] {
        let users: Vec<u64> = hashed.iter().filter(|r| r.0 == d).map(|r| r.1).collect();
        let path = w.join(&format!("lake/date={d}/run#2024"));
        write_file(&path, &LakeSpec::default(), &users, d);
    }
    let want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-02"), &[]);
    assert_ne!(
        want,
        oracle_window(kept, 1, day("2024-06-01"), day("2024-06-02"), &[])
    );
    for engine in ["bitmap", "sql"] {
        let run = csv(&w, &["dau", "--to", "2024-06-02", "--engine", engine]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.series(), want, "{engine}");
    }
}

/// Left to its default, `--to` is the lake's last day: when that is today (a partition that may
/// still be being written), a warning says so; `--to yesterday` leaves it out, without one. The
/// numbers are the oracle's either way.
#[test]
fn a_default_range_ending_today_is_warned_of() {
    let w = Workdir::new();
    let today = chrono::Utc::now().date_naive();
    let rows = random_rows(3, today - Days::new(4), 5, 200);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let warning = format!("the lake's last day, {today}, is today in UTC");
    let run = csv(&w, &["dau"]);
    let to_yesterday = csv(&w, &["dau", "--to", "yesterday"]);
    if chrono::Utc::now().date_naive() != today {
        eprintln!("midnight UTC passed during the test: what today is changed, nothing to check");
        return;
    }
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = today - Days::new(4);
    assert_eq!(run.series(), oracle_window(&rows, 1, first, today, &[]));
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    let yesterday = today - Days::new(1);
    assert_eq!(
        to_yesterday.series(),
        oracle_window(&rows, 1, first, yesterday, &[])
    );
    assert!(
        !to_yesterday.stderr.contains("is today"),
        "{}",
        to_yesterday.stderr
    );

    // A lake whose last day is after today is not said to end today (it was).
    let ahead = today + Days::new(2);
    let rows = random_rows(3, ahead, 1, 50);
    write_lake(&w.join("ahead"), &LakeSpec::default(), &rows, &[]);
    let run = w.run(&["query", "dau", "--lake", "ahead", "-f", "csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the lake's last day, {ahead}, is after today ({today} in UTC)"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("is today"), "{}", run.stderr);
}

/// A day written both as `dt=YYYY-MM-DD` and as `dt=YYYYMMDD` is read from both folders, with
/// a warning naming the day; both engines give the oracle's numbers over all the rows.
#[test]
fn a_day_in_two_folders_is_read_from_both_with_a_warning() {
    let w = Workdir::new();
    let spec = LakeSpec {
        layout: "dt",
        ..LakeSpec::default()
    };
    let mut rows = lake(&w, &spec);
    let split = day("2024-06-20");
    let extra = [1_000_001, 1_000_002, 1_000_003];
    std::fs::create_dir_all(w.join("lake/dt=20240620")).unwrap();
    write_file(
        &w.join("lake/dt=20240620/part-0.parquet"),
        &spec,
        &extra,
        split,
    );
    rows.extend(extra.iter().map(|u| (split, *u)));
    let warning = "1 day(s) have their partition in several folders, all read (`dau check` lists \
                   them): 2024-06-20";
    engines_give_the_oracle_rows(&w, &rows, &[], &["bitmap", "sql"], warning);
    // A range that does not read the day says nothing of it.
    let run = csv(&w, &["dau", "--from", "2024-06-10", "--to", "2024-06-12"]);
    assert!(!run.stderr.contains("several folders"), "{}", run.stderr);
}

/// A partition folder with no data file (only `_SUCCESS`, as a writer that is not done leaves it)
/// is a missing day, not a zero, for both engines, cold and from rollups; `dau check` lists it.
#[test]
fn a_partition_with_no_data_file_is_missing_not_zero() {
    let w = Workdir::new();
    let mut rows = lake(&w, &LakeSpec::default());
    let empty = day("2024-06-20");
    unfinished_partition(&w.join("lake/date=2024-06-20"));
    rows.retain(|(d, _)| *d != empty);
    let warning = "1 day(s) have a partition folder with no data file in lake: 2024-06-20; \
                   they are missing, not zero (NULL)";
    // Cold, then with the other engine, then from the rollups the first run made.
    let engines = ["bitmap", "sql", "bitmap"];
    engines_give_the_oracle_rows(&w, &rows, &[empty], &engines, warning);
    let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
    assert_eq!(check.code, 4, "{}", check.stderr);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["empty_days"], serde_json::json!(["2024-06-20"]));

    // Asked for that day alone, there is nothing to count: exit 4, in every engine and metric,
    // and a nightly export leaves its file as it was instead of delivering NULL as done.
    let nothing = "no data file to read in the partitions from 2024-06-20 to 2024-06-20";
    for engine in ["bitmap", "sql"] {
        for metric in ["dau", "mau", "opens", "stickiness"] {
            let args = [metric, "--from", "2024-06-20", "--to", "2024-06-20"];
            let run = csv(&w, &[&args[..], &["--engine", engine]].concat());
            assert_eq!(run.code, 4, "{metric} {engine}: {}", run.stderr);
            assert_eq!(run.stdout, "", "{metric} {engine}");
            assert!(run.stderr.contains(nothing), "{}", run.stderr);
        }
        std::fs::write(w.join("daily.csv"), "date,dau\n2024-06-19,7\n").unwrap();
        let run = w.run(&[
            "export",
            "dau",
            "--lake",
            "lake",
            "--date",
            "2024-06-20",
            "--output",
            "daily.csv",
            "--engine",
            engine,
        ]);
        assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
        assert!(run.stderr.contains(nothing), "{}", run.stderr);
        let kept = std::fs::read_to_string(w.join("daily.csv")).unwrap();
        assert_eq!(kept, "date,dau\n2024-06-19,7\n");
    }
}

#[test]
fn every_id_type_gives_the_oracle_numbers() {
    for ids in ["int32", "int64", "string"] {
        let w = Workdir::new();
        let rows = lake(
            &w,
            &LakeSpec {
                ids,
                files_per_day: 3,
                ..LakeSpec::default()
            },
        );
        check_active_users(&w, &rows, &[]);
    }
}

/// A lake folder whose name has `#`, `?`, `%` and spaces is read as named (not as a URL with a
/// fragment, a query or escapes), and a `file://` (or `file:/`) URL is read as a URL: both
/// engines give the oracle numbers from each.
#[test]
fn a_lake_folder_named_with_url_characters_is_read_as_named() {
    let w = Workdir::new();
    let rows = random_rows(7, day(START), DAYS, 300);
    let folder = "x #1 50%off?";
    write_lake(&w.join(folder), &LakeSpec::default(), &rows, &[]);
    let url = format!("file://{}/x%20%231%2050%25off%3F", w.path().display());
    // As Hadoop and Spark print a path: one slash (it was a folder `file:` here, not found).
    let hadoop = format!("file:{}/x%20%231%2050%25off%3F", w.path().display());
    let want = oracle_window(&rows, 30, day("2024-06-10"), day("2024-06-30"), &[]);
    for lake in [folder, &url, &hadoop] {
        for engine in ["bitmap", "sql"] {
            let run = w.run(&[
                "query",
                "mau",
                "--lake",
                lake,
                "--from",
                "2024-06-10",
                "--to",
                "2024-06-30",
                "--format",
                "csv",
                "--engine",
                engine,
            ]);
            assert_eq!(run.code, 0, "{lake} {engine}: {}", run.stderr);
            assert_eq!(run.series(), want, "{lake} {engine}");
        }
    }
    // Rollups given as a `file://` URL are kept in the folder it names, as the lake is read
    // (they went to a folder `my%20rollups`), and one inside the lake is refused however the
    // lake's folder is written (a URL's escapes hid the lake from the check).
    let rollups = format!("file://{}/my%20rollups", w.path().display());
    let inside = format!("{url}/date=2024-06-10/cache");
    for (place, code) in [(&rollups, 0), (&inside, 2)] {
        let run = w.run(&["--rollups", place, "query", "dau", "--lake", folder]);
        assert_eq!(run.code, code, "{place}: {}", run.stderr);
    }
    assert!(w.join("my rollups").is_dir());
    assert!(!w.join("my%20rollups").exists());
    assert!(!w.join(folder).join("date=2024-06-10/cache").exists());
}

// A BigQuery-style lake: the files carry the day as a DATE column `date` too.
#[test]
fn a_date_column_in_the_files_is_the_partition_date() {
    let w = Workdir::new();
    let rows = lake(
        &w,
        &LakeSpec {
            date_column: true,
            ..LakeSpec::default()
        },
    );
    check_active_users(&w, &rows, &[]);
    // A date column named otherwise that no file has (a misspelt name) is said, in both engines
    // and by `dau check`: the check of in-file dates was off in silence. `date` itself is not.
    let said = "no file read has a date column 'evdate' (--date-column, DAU_DATE_COLUMN or [lake] \
                date_column): in-file dates are not checked";
    for engine in ["sql", "bitmap"] {
        let args = ["dau", "--rollups", "off", "--engine", engine];
        let run = csv(&w, &[&args[..], &["--date-column", "evdate"]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains(said), "{engine}: {}", run.stderr);
        let run = csv(&w, &[&args[..], &["--date-column", "date"]].concat());
        assert!(!run.stderr.contains("no file read"), "{}", run.stderr);
    }
    let run = w.run(&["check", "--lake", "lake", "--date-column", "evdate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(said), "{}", run.stderr);
}

#[test]
fn the_user_column_name_is_configurable() {
    let w = Workdir::new();
    let rows = lake(
        &w,
        &LakeSpec {
            user_column: "user_id",
            ..LakeSpec::default()
        },
    );
    check_active_users(&w, &rows, &["--user-column", "user_id"]);
    std::fs::write(
        w.join("dau.toml"),
        "[lake]\nurl = 'lake'\nuser_column = 'user_id'\n",
    )
    .unwrap();
    let run = w.run(&[
        "query",
        "dau",
        "--from",
        "2024-06-10",
        "--to",
        "2024-06-30",
        "-f",
        "csv",
    ]);
    let (from, to) = (day("2024-06-10"), day("2024-06-30"));
    assert_eq!(run.series(), oracle_window(&rows, 1, from, to, &[]));
}

#[test]
fn missing_days_are_null_and_named() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let gone = [day("2024-06-15"), day("2024-06-16")];
    for d in gone {
        std::fs::remove_dir_all(w.join(&format!("lake/date={d}"))).unwrap();
    }
    let kept: Vec<Row> = rows
        .iter()
        .filter(|(d, _)| !gone.contains(d))
        .copied()
        .collect();
    let (from, to) = (day("2024-06-10"), day("2024-06-30"));
    for (metric, n) in [("dau", 1), ("wau", 7), ("mau", 30)] {
        let run = csv(&w, &[metric, "--from", "2024-06-10", "--to", "2024-06-30"]);
        let expected = oracle_window(&kept, n, from, to, &gone);
        assert_eq!(run.series(), expected, "{metric}");
        assert!(expected.values().any(Option::is_none) && expected.values().any(Option::is_some));
        assert!(
            run.stderr.contains("2 day(s) have no partition"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("2024-06-15, 2024-06-16"),
            "{}",
            run.stderr
        );
    }
}

// A partition outside the asked range (and its look-back) is never read, even when it is corrupt.
#[test]
fn partitions_outside_the_range_are_not_read() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    std::fs::write(
        w.join("lake/date=2024-05-20/part-0.parquet"),
        "not parquet at all",
    )
    .unwrap();
    std::fs::write(
        w.join("lake/date=2024-07-03/part-1.parquet"),
        "PAR1 truncated",
    )
    .unwrap();
    // mau on 2024-06-20 reads from 2024-05-22; wau from 2024-06-14: neither reaches 05-20 or 07-03.
    check_active_users_between(&w, &rows, "2024-06-20", "2024-07-02");
}

fn check_active_users_between(w: &Workdir, rows: &[Row], from: &str, to: &str) {
    for (metric, n) in [("dau", 1), ("wau", 7), ("mau", 30)] {
        let run = csv(w, &[metric, "--from", from, "--to", to]);
        assert_eq!(
            run.series(),
            oracle_window(rows, n, day(from), day(to), &[]),
            "{metric}"
        );
    }
    // And the corrupt file is really there to be found: a range that holds it fails.
    let run = csv(w, &["dau", "--from", "2024-07-01", "--to", "2024-07-04"]);
    assert_ne!(run.code, 0, "{}", run.stdout);
}

/// Days asked for before the lake's first day are NULL rows, and change no other row: each day
/// has the number it has when the range starts at the lake (a day before the lake in the range
/// was taken for a missing one, and made every window and period that held it NULL).
#[test]
fn days_before_the_lake_change_no_other_row() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let first = day(START);
    let (early, to) = (first - Days::new(2), day("2024-06-10"));
    for engine in ["bitmap", "sql"] {
        for (metric, n) in [("dau", 1), ("wau", 7), ("mau", 30)] {
            let mut want = oracle_window(&rows, n, first, to, &[]);
            let asked = |from: NaiveDate| {
                let from = from.to_string();
                let args = [
                    metric,
                    "--from",
                    &from,
                    "--to",
                    "2024-06-10",
                    "--engine",
                    engine,
                ];
                csv(&w, &args)
            };
            assert_eq!(asked(first).series(), want, "{metric} {engine}");
            let run = asked(early);
            want.extend([(early, None), (early + Days::new(1), None)]);
            assert_eq!(run.series(), want, "{metric} {engine}");
            let said = "2024-05-18 to 2024-05-19 are before the lake's first day 2024-05-20: \
                        their rows are NULL";
            assert!(run.stderr.contains(said), "{}", run.stderr);
            let reach = format!(
                "{metric} windows reach back to {}",
                first - Days::new(n - 1)
            );
            assert_eq!(run.stderr.contains(&reach), n > 1, "{}", run.stderr);
        }
        // May's days from the lake's first on, however May is asked; April has none: NULL.
        let may = oracle_periods(&rows, first.iter_days().take(12), |d| {
            d.with_day(1).unwrap()
        });
        for from in ["2024-05-01", "2024-05-20"] {
            let args = ["mau", "--calendar", "--from", from, "--to", "2024-05-31"];
            let run = csv(&w, &[&args[..], &["--engine", engine]].concat());
            assert_eq!(run.series(), may, "{from} {engine}");
            // May's row is not NULL, and not said to be (it was: "2024-05-01 to 2024-05-19 are
            // before the lake's first day …: their rows are NULL").
            assert!(
                !run.stderr.contains("rows are NULL"),
                "{from}: {}",
                run.stderr
            );
        }
        let args = [
            "mau",
            "--calendar",
            "--from",
            "2024-04-15",
            "--to",
            "2024-05-31",
        ];
        let run = csv(&w, &[&args[..], &["--engine", engine]].concat());
        let mut want = may.clone();
        want.insert(day("2024-04-01"), None);
        assert_eq!(run.series(), want, "{engine}");
        let said = "2024-04-01 to 2024-04-30 are before the lake's first day 2024-05-20: their \
                    rows are NULL";
        assert!(run.stderr.contains(said), "{}", run.stderr);
    }
}

#[test]
fn calendar_weeks_and_months() {
    let w = Workdir::new();
    // Two whole months and more, so that both have every day.
    let rows = random_rows(11, day("2024-04-29"), 70, 200);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let all_days = |from: &str, to: &str| {
        let (from, to) = (day(from), day(to));
        from.iter_days().take_while(move |d| *d <= to)
    };
    let run = csv(
        &w,
        &[
            "mau",
            "--calendar",
            "--from",
            "2024-05-10",
            "--to",
            "2024-06-03",
        ],
    );
    let expected = oracle_periods(&rows, all_days("2024-05-01", "2024-06-30"), |d| {
        d.with_day(1).unwrap()
    });
    assert_eq!(run.series(), expected);

    let monday = |d: NaiveDate| d - Days::new(d.weekday().num_days_from_monday().into());
    let run = csv(
        &w,
        &[
            "wau",
            "--calendar",
            "--from",
            "2024-05-01",
            "--to",
            "2024-06-30",
        ],
    );
    let expected = oracle_periods(&rows, all_days("2024-04-29", "2024-06-30"), monday);
    assert_eq!(run.series(), expected);
    assert_eq!(expected.len(), 9);

    // July is cut off by the lake's end (2024-07-07): NULL, with a warning.
    let run = csv(
        &w,
        &[
            "mau",
            "--calendar",
            "--from",
            "2024-06-01",
            "--to",
            "2024-07-07",
        ],
    );
    let series = run.series();
    assert_eq!(series[&day("2024-07-01")], None);
    assert!(series[&day("2024-06-01")].is_some());
    assert!(run.stderr.contains("have no partition"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("are NULL (the lake ends at 2024-07-07)"),
        "{}",
        run.stderr
    );
}

#[test]
fn opens_and_opens_per_user() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    // A partition with a file of no rows: 0 opens, not NULL.
    let empty = day("2024-07-10");
    write_lake(&w.join("lake"), &LakeSpec::default(), &[], &[empty]);
    let run = csv(&w, &["opens", "--from", "2024-06-25", "--to", "2024-07-10"]);
    let table = run.csv();
    assert_eq!(
        table[0],
        [
            "date",
            "opens",
            "active_users",
            "opens_per_user_mean",
            "opens_per_user_p50",
            "opens_per_user_p90",
            "opens_per_user_max"
        ]
    );
    let counts = per_user_counts(&rows);
    let mut checked = 0;
    for row in &table[1..] {
        let d = day(&row[0]);
        if d == empty {
            assert_eq!(row[1..], ["0", "0", "", "", "", ""], "{d}");
            continue;
        }
        if d > day("2024-07-03") {
            assert_eq!(row[1..], ["", "", "", "", "", ""], "{d} has no partition");
            continue;
        }
        let c = &counts[&d];
        let opens: u64 = c.iter().sum();
        assert_eq!(row[1], opens.to_string(), "{d}");
        assert_eq!(row[2], c.len().to_string(), "{d}");
        let mean: f64 = row[3].parse().unwrap();
        assert!((mean - opens as f64 / c.len() as f64).abs() < 1e-9, "{d}");
        assert_eq!(row[4], nearest_rank(c, 50).to_string(), "{d}");
        assert_eq!(row[5], nearest_rank(c, 90).to_string(), "{d}");
        assert_eq!(row[6], c.last().unwrap().to_string(), "{d}");
        checked += 1;
    }
    // 2024-06-25 .. 2024-07-03 have rows; 07-04 .. 07-09 are missing (NULL), 07-10 is empty.
    assert_eq!(checked, 9);
    assert_eq!(table.len(), 1 + 16);
}

#[test]
fn stickiness_is_dau_over_mau() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let (from, to) = (day("2024-06-10"), day("2024-06-30"));
    let dau = oracle_window(&rows, 1, from, to, &[]);
    let mau = oracle_window(&rows, 30, from, to, &[]);
    let run = csv(
        &w,
        &["stickiness", "--from", "2024-06-10", "--to", "2024-06-30"],
    );
    let table = run.csv();
    assert_eq!(table[0], ["date", "dau", "mau", "stickiness"]);
    assert_eq!(table.len(), 22);
    for row in &table[1..] {
        let d = day(&row[0]);
        let (a, m) = (dau[&d].unwrap(), mau[&d].unwrap());
        assert_eq!(
            (row[1].as_str(), row[2].as_str()),
            (a.to_string().as_str(), m.to_string().as_str())
        );
        let s: f64 = row[3].parse().unwrap();
        assert!((s - a as f64 / m as f64).abs() < 1e-12, "{d}");
    }
}

#[test]
fn user_days_rows() {
    for ids in ["int64", "string"] {
        let w = Workdir::new();
        let rows = lake(
            &w,
            &LakeSpec {
                ids,
                ..LakeSpec::default()
            },
        );
        let run = csv(
            &w,
            &["user-days", "--from", "2024-06-01", "--to", "2024-06-07"],
        );
        let table = run.csv();
        assert_eq!(table[0], ["userId", "date", "opens"]);
        let got: BTreeMap<(NaiveDate, String), u64> = table[1..]
            .iter()
            .map(|r| ((day(&r[1]), r[0].clone()), r[2].parse().unwrap()))
            .collect();
        assert_eq!(got.len(), table.len() - 1, "one row per user and day");
        let mut expected: BTreeMap<(NaiveDate, String), u64> = BTreeMap::new();
        for (d, u) in rows
            .iter()
            .filter(|(d, _)| *d >= day("2024-06-01") && *d <= day("2024-06-07"))
        {
            let id = if ids == "string" {
                format!("user-{u}")
            } else {
                u.to_string()
            };
            *expected.entry((*d, id)).or_default() += 1;
        }
        assert_eq!(got, expected, "{ids}");
    }
}

#[test]
fn default_range_is_the_last_30_days_of_the_lake() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let last = day(START) + Days::new(DAYS - 1);
    let run = csv(&w, &["dau"]);
    assert_eq!(
        run.series(),
        oracle_window(&rows, 1, last - Days::new(29), last, &[])
    );
    // --from alone runs to the lake's last day.
    let run = csv(&w, &["dau", "--from", "2024-06-30"]);
    assert_eq!(
        run.series(),
        oracle_window(&rows, 1, day("2024-06-30"), last, &[])
    );
}

#[test]
fn relative_days() {
    let w = Workdir::new();
    let today = chrono::Utc::now().date_naive();
    let rows = random_rows(3, today - Days::new(10), 11, 50);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let run = csv(&w, &["dau", "--from", "-3d", "--to", "yesterday"]);
    let expected = oracle_window(&rows, 1, today - Days::new(3), today - Days::new(1), &[]);
    assert_eq!(run.series(), expected);
    assert_eq!(expected.len(), 3);
}

// Lakes from `dau gen`: the oracle reads the Parquet files back itself.
#[test]
fn generated_lakes_match_the_oracle() {
    for (layout, prefix) in [("nested", "topics/opens"), ("dt-compact", "")] {
        let w = Workdir::new();
        let run = w.run(&[
            "gen",
            "--out",
            "lake",
            "--users",
            "3000",
            "--days",
            "40",
            "--files-per-day",
            "3",
            "--layout",
            layout,
            "--prefix",
            prefix,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let rows = read_lake_rows(&w.join("lake"));
        assert!(rows.len() > 10_000, "{}", rows.len());
        let (from, to) = (day("2024-06-05"), day("2024-07-10"));
        for (metric, n) in [("dau", 1), ("wau", 7), ("mau", 30)] {
            let run = csv(&w, &[metric, "--from", "2024-06-05", "--to", "2024-07-10"]);
            assert_eq!(
                run.series(),
                oracle_window(&rows, n, from, to, &[]),
                "{layout} {metric}"
            );
        }
    }
}

// Spark and Hadoop leave markers, checksums and temp folders; Finder leaves .DS_Store.
#[test]
fn non_data_files_and_folders_are_skipped() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let part = w.join("lake/date=2024-06-20");
    std::fs::write(part.join(".part-0.parquet.crc"), "crc garbage").unwrap();
    std::fs::write(part.join(".DS_Store"), "finder garbage").unwrap();
    std::fs::create_dir_all(part.join("_temporary/0")).unwrap();
    std::fs::write(part.join("_temporary/0/part-9.parquet"), "half written").unwrap();
    std::fs::create_dir_all(w.join("lake/date=latest")).unwrap();
    std::fs::write(w.join("lake/date=latest/part-0.parquet"), "not a day").unwrap();
    std::fs::create_dir_all(w.join("lake/_dau")).unwrap();
    let run = csv(&w, &["dau", "--from", "2024-06-18", "--to", "2024-06-22"]);
    let (from, to) = (day("2024-06-18"), day("2024-06-22"));
    assert_eq!(run.series(), oracle_window(&rows, 1, from, to, &[]));
    assert!(
        run.stderr
            .contains("skipped 1 folder(s) that do not name a day: date=latest"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_file_url_names_a_lake_too() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let url = format!(
        "file://{}",
        std::fs::canonicalize(w.join("lake")).unwrap().display()
    );
    let run = w.run(&[
        "query",
        "wau",
        "--lake",
        &url,
        "--from",
        "2024-06-01",
        "--to",
        "2024-06-09",
        "-f",
        "csv",
    ]);
    assert_eq!(
        run.series(),
        oracle_window(&rows, 7, day("2024-06-01"), day("2024-06-09"), &[])
    );
}

/// Names typed in capitals (`DAU`, `--format CSV`, `DAU_ENGINE=SQL`) are taken as the lowercase ones.
#[test]
fn metric_format_and_engine_names_ignore_case() {
    let w = Workdir::new();
    let rows = lake(&w, &LakeSpec::default());
    let run: Run = w
        .command(&[
            "query",
            "DAU",
            "--lake",
            "lake",
            "--format",
            "CSV",
            "--from",
            "2024-06-10",
            "--to",
            "2024-06-12",
        ])
        .env("DAU_ENGINE", "SQL")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (from, to) = (day("2024-06-10"), day("2024-06-12"));
    assert_eq!(run.series(), oracle_window(&rows, 1, from, to, &[]));
}

/// `--lake lake/app=*`: the lakes in the folders the pattern matches (one per app, each by date)
/// counted as one, as the oracle counts their rows together: a user of both apps is one user. In
/// both engines, cold and from rollups; `events` says which lake a row is from (`app`); a day split
/// over two folders of one lake is still warned of, the same day in two lakes is not; a pattern
/// that matches nothing, or a folder without days, or lakes of two layouts, are named.
#[test]
fn a_pattern_counts_the_lakes_it_names_as_one() {
    let w = Workdir::new();
    let ios = random_rows(41, day("2024-06-01"), 39, 400);
    // Shares users with ios (the same ids), and begins later.
    let android = random_rows(42, day("2024-06-05"), 35, 300);
    write_lake(&w.join("lake/app=ios"), &LakeSpec::default(), &ios, &[]);
    let spec = LakeSpec {
        files_per_day: 1,
        ..LakeSpec::default()
    };
    // (Its value escaped, as pyarrow and Spark escape such values in folder names.)
    write_lake(&w.join("lake/app=android%2Ftv"), &spec, &android, &[]);
    let both: Vec<Row> = ios.iter().chain(&android).copied().collect();
    let june_20 = day("2024-06-20");
    assert!(active(&both)[&june_20].len() > active(&ios)[&june_20].len());
    let (from, to) = (day("2024-06-01"), day("2024-07-09"));
    for engine in ["sql", "bitmap", "bitmap"] {
        for (metric, n) in [("dau", 1), ("mau", 30)] {
            let args = ["query", metric, "--lake", "lake/app=*", "-f", "csv"];
            let run = w.run(&[&args[..], &["--engine", engine, "--from", "2024-06-01"]].concat());
            assert!(!run.stderr.contains("several folders"), "{}", run.stderr);
            assert_eq!(
                run.series(),
                oracle_window(&both, n, from, to, &[]),
                "{metric} {engine}"
            );
        }
    }
    // One lake alone after both together: its own numbers, not the pattern's rollups.
    let run = w.run(&["query", "dau", "--lake", "lake/app=ios/", "-f", "csv"]);
    let ios_days = oracle_window(&ios, 1, day("2024-06-10"), day("2024-07-09"), &[]);
    assert_eq!(run.series(), ios_days);

    // Per app, in SQL.
    let sql = "SELECT app, date, count(DISTINCT userId) FROM events GROUP BY app, date \
               ORDER BY app, date";
    let run = w.run(&["sql", "--lake", "lake/app=*", "--format", "csv", "-c", sql]);
    let mut want = vec![vec![
        "app".to_string(),
        "date".into(),
        "count(DISTINCT events.userId)".into(),
    ]];
    for (app, rows) in [("android/tv", &android), ("ios", &ios)] {
        for (d, users) in active(rows) {
            want.push(vec![
                app.to_string(),
                d.to_string(),
                users.len().to_string(),
            ]);
        }
    }
    assert_eq!(run.csv(), want);

    let check = w.run(&["check", "--lake", "lake/app=*"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check.stdout.starts_with(
            "lake      lake/app=* (date=YYYY-MM-DD), 2 lakes counted as one: app=android%2Ftv, app=ios\n"
        ),
        "{}",
        check.stdout
    );

    // A day in two folders of one lake is still a split day.
    let split = w.join("lake/app=ios/date=20240602");
    std::fs::create_dir(&split).unwrap();
    write_file(
        &split.join("late.parquet"),
        &LakeSpec::default(),
        &[7],
        day("2024-06-02"),
    );
    let run = w.run(&[
        "query",
        "dau",
        "--lake",
        "lake/app=*",
        "--from",
        "2024-06-01",
    ]);
    assert!(
        run.stderr.contains(
            "1 day(s) have their partition in several folders, all read (`dau \
             check` lists them): 2024-06-02\n"
        ),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(&split).unwrap();

    // A lake without a day the others have (its writer behind, or one that failed), or with the
    // day's folder and no file in it yet: the day is missing, never counted without that lake.
    let android_folder = |d: &str| w.join(&format!("lake/app=android%2Ftv/date={d}"));
    std::fs::remove_dir_all(android_folder("2024-07-09")).unwrap();
    std::fs::remove_file(android_folder("2024-06-20").join("part-0.parquet")).unwrap();
    let lacking = [day("2024-06-20"), day("2024-07-09")];
    for engine in ["sql", "bitmap"] {
        for (metric, n) in [("dau", 1), ("mau", 30)] {
            let args = [
                "query",
                metric,
                "--lake",
                "lake/app=*",
                "-f",
                "csv",
                "--to",
                "2024-07-09",
            ];
            let run = w.run(&[&args[..], &["--engine", engine, "--from", "2024-06-01"]].concat());
            let want = oracle_window(&both, n, from, to, &lacking);
            assert_eq!(run.series(), want, "{metric} {engine}, a lake lacking days");
            assert!(
                run.stderr.contains(
                    "dau: warning: 2 day(s) lack the data of a lake lake/app=* names: 2024-06-20 \
                     (app=android%2Ftv), 2024-07-09 (app=android%2Ftv); they are missing (NULL) \
                     rather than counted without it\n"
                ),
                "{engine}: {}",
                run.stderr
            );
            // (The pattern has those days: no "have no partition" warning of them too.)
            assert!(
                !run.stderr.contains("no partition"),
                "{engine}: {}",
                run.stderr
            );
        }
    }
    // In SQL, events has no rows of them, and says so (the day without a folder was left out
    // in silence).
    let sql = "SELECT COUNT(*) AS opens FROM events WHERE date IN ('2024-06-20', '2024-07-09')";
    let run = w.run(&["sql", "--lake", "lake/app=*", "--format", "csv", "-c", sql]);
    assert_eq!(run.stdout, "opens\n0\n", "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "2 day(s) lack the data of a lake lake/app=* names: 2024-06-20 (app=android%2Ftv), \
             2024-07-09 (app=android%2Ftv); events has no rows of theirs"
        ),
        "{}",
        run.stderr
    );
    let check = w.run(&[
        "check",
        "--lake",
        "lake/app=*",
        "--from",
        "2024-06-01",
        "--to",
        "2024-07-09",
    ]);
    assert_eq!(check.code, 4, "{}", check.stderr);
    for problem in [
        "missing day: 2024-07-09 has no partition in app=android%2Ftv\n",
        "empty partition: 2024-06-20 has no data file in app=android%2Ftv (queries show it",
    ] {
        assert!(check.stdout.contains(problem), "{}", check.stdout);
    }
    // In `dau sql`, such a day has no rows, and a warning says so (a count said 0, silently).
    let sql = "SELECT COUNT(*) AS n FROM events WHERE date = '2024-06-20'";
    let run = w.run(&["sql", "--lake", "lake/app=*", "--format", "csv", "-c", sql]);
    assert_eq!(run.stdout, "n\n0\n", "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "dau: warning: 1 day(s) lack the data of a lake lake/app=* names: 2024-06-20 \
             (app=android%2Ftv); events has no rows of theirs, from any lake, rather than some\n"
        ),
        "{}",
        run.stderr
    );
    // Asked up to the lake's last day, the newer day a lake lacks is named.
    let run = w.run(&["query", "dau", "--lake", "lake/app=*"]);
    assert!(
        run.stderr.contains(
            "dau: warning: the newest day(s) lack the data of a lake lake/app=* names: 2024-07-09 \
             (app=android%2Ftv); the lake ends at 2024-07-08\n"
        ),
        "{}",
        run.stderr
    );
    // A nightly export of the day a lake lacks fails (and is retried), delivering nothing.
    let export = [
        "export",
        "dau",
        "--lake",
        "lake/app=*",
        "--date",
        "2024-07-09",
        "-o",
        "x.csv",
    ];
    let run = w.run(&export);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "dau: no data file to read in the partitions from 2024-07-09 to 2024-07-09 \
             (lake/app=*): nothing to count: 1 day(s) lack the data of a lake"
        ),
        "{}",
        run.stderr
    );
    assert!(!w.join("x.csv").exists());
    // Naming the lakes to count: ios alone, by the pattern's alternatives.
    let run = w.run(&["query", "dau", "--lake", "lake/app={ios,web}", "-f", "csv"]);
    assert_eq!(run.series(), ios_days);

    let fails = |lake: &str, why: &str| {
        let run = w.run(&["query", "dau", "--lake", lake]);
        assert_eq!(run.code, 2, "{lake}: {}", run.stderr);
        let said = format!("dau: cannot count the lakes {lake} names: {why}: a pattern names");
        assert!(run.stderr.starts_with(&said), "{lake}: {}", run.stderr);
    };
    fails(
        "lake/app=web*",
        "no folder matches 'app=web*': it has app=android%2Ftv, app=ios",
    );
    let deeper = w.run(&["query", "dau", "--lake", "lake/app=*/date=*"]);
    assert_eq!(deeper.code, 2, "{}", deeper.stderr);
    assert!(
        deeper
            .stderr
            .starts_with("dau: the lake lake/app=*/date=* has a pattern before its last folder"),
        "{}",
        deeper.stderr
    );
    std::fs::create_dir_all(w.join("lake/app=web/tmp")).unwrap();
    fails("lake/app=*", "app=web has no date partitions");
    std::fs::remove_dir_all(w.join("lake/app=web")).unwrap();
    write_lake(&w.join("lake/app=web"), &spec, &ios[..50], &[]);
    std::fs::create_dir(w.join("lake/app=web/_spark_metadata")).unwrap();
    fails(
        "lake/app=*",
        "app=web is a Spark streaming sink, whose log lists the files of its own folder: name it alone",
    );
    std::fs::remove_dir_all(w.join("lake/app=web")).unwrap();
    let nested = LakeSpec {
        layout: "nested",
        ..LakeSpec::default()
    };
    write_lake(&w.join("lake/app=web"), &nested, &ios[..50], &[]);
    fails(
        "lake/app=*",
        "app=android%2Ftv is laid out as date=YYYY-MM-DD and app=web as year=YYYY/month=MM/day=DD",
    );
}

/// A lake whose folders hold braces or a star in their names is that folder, not a pattern: it
/// was refused as "no folder matches" (or "a pattern before its last folder") while naming it.
#[test]
fn a_lake_named_with_braces_is_its_folder() {
    let w = Workdir::new();
    let rows = random_rows(76, day("2024-06-01"), 3, 60);
    let want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-03"), &[]);
    for lake in ["br{a}", "T{1,2}/ev", "st*r"] {
        write_lake(&w.join(lake), &LakeSpec::default(), &rows, &[]);
        let run = w.run(&["query", "dau", "--lake", lake, "--format", "csv"]);
        assert_eq!(run.code, 0, "{lake}: {}", run.stderr);
        assert_eq!(run.series(), want, "{lake}");
    }
}

/// `~/` in dau.toml, a variable or a quoted flag is the home folder, as a shell would make it: it
/// made a folder `~` in the working one, and a later `rm -rf ~` to clear it away is a disaster.
#[test]
fn a_home_folder_in_dau_toml_is_the_home() {
    let w = Workdir::new();
    let rows = random_rows(77, day("2024-06-01"), 3, 60);
    write_lake(&w.join("home/lake"), &LakeSpec::default(), &rows, &[]);
    std::fs::write(
        w.join("home/dau.toml"),
        "[lake]\nurl = \"~/lake\"\nrollups = \"~/rollups\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| -> Run {
        let mut cmd = w.command(args);
        cmd.env_remove("DAU_ROLLUPS")
            .env("HOME", w.join("home"))
            .env("DAU_CONFIG", "~/dau.toml");
        cmd.output().unwrap().into()
    };
    let query = run(&["query", "dau", "--format", "csv"]);
    assert_eq!(query.code, 0, "{}", query.stderr);
    let want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-03"), &[]);
    assert_eq!(query.series(), want);
    assert!(w.join("home/rollups").is_dir());
    // Outputs too, as a job's in dau.toml or a flag in quotes give them.
    for (output, file) in [
        ("~/out/x.csv", "out/x.csv"),
        ("sqlite://~/out/d.db", "out/d.db"),
    ] {
        let export = run(&["export", "dau", "--date", "2024-06-02", "-o", output]);
        assert_eq!(export.code, 0, "{output}: {}", export.stderr);
        assert!(w.join("home").join(file).is_file(), "{output}");
    }
    assert!(!w.join("~").exists());
}

/// Folders of days in two layouts side by side are refused, naming both (the lake was read in
/// one of them, the other's days left out: wrong numbers, exit 0); a key's folders that name no
/// day do not make it the lake's key; a day's hour folders under `ds=` are its hours.
#[test]
fn days_in_two_layouts_are_refused_and_hours_under_any_key_are_the_days() {
    let rows = random_rows(12, day("2024-06-01"), 6, 200);
    let days: Vec<NaiveDate> = (0..6).map(|n| day("2024-06-01") + Days::new(n)).collect();
    let users =
        |d: NaiveDate| -> Vec<u64> { rows.iter().filter(|r| r.0 == d).map(|r| r.1).collect() };
    let write = |w: &Workdir, folder: String, d: NaiveDate| {
        std::fs::create_dir_all(w.join(&folder)).unwrap();
        write_file(
            &w.join(&format!("{folder}/part-0.parquet")),
            &LakeSpec::default(),
            &users(d),
            d,
        );
    };
    let dau = |w: &Workdir| csv(w, &["dau", "--from", "2024-06-01", "--to", "2024-06-06"]);
    for (layouts, said) in [
        (["nested", "day"], "6 day(s) in folders day=YYYY-MM-DD"),
        (["dt", "date"], "3 day(s) in folders date=YYYY-MM-DD"),
        (["plain-nested", "plain"], "3 day(s) in folders YYYY-MM-DD"),
    ] {
        let w = Workdir::new();
        for (n, d) in days.iter().enumerate() {
            // The first half in one layout, the rest in the other; `nested` has every day, and
            // `day=` one of them.
            let layout = match (layouts[0], n) {
                ("nested", _) => "nested",
                (first, 0..=2) => first,
                _ => layouts[1],
            };
            let folder = match layout {
                "nested" => d.format("lake/year=%Y/month=%m/day=%d").to_string(),
                "plain-nested" => d.format("lake/%Y/%m/%d").to_string(),
                "plain" => format!("lake/{d}"),
                key => format!("lake/{key}={d}"),
            };
            write(&w, folder, *d);
            if layouts[1] == "day" {
                write(&w, format!("lake/day={d}"), *d);
            }
        }
        let run = dau(&w);
        assert_eq!(run.code, 4, "{layouts:?}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("partitions in two layouts"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(said), "{layouts:?}: {}", run.stderr);
    }

    // `date=latest` beside `ds=` days, and `ds=DAY/hour=DAY HH:00:00/` folders: the oracle's.
    let w = Workdir::new();
    for d in &days {
        let ids = users(*d);
        let (first, rest) = ids.split_at(5);
        for (hour, ids) in [(0, first), (13, rest)] {
            let folder = format!("lake/ds={d}/hour={d}%20{hour:02}%3A00%3A00");
            std::fs::create_dir_all(w.join(&folder)).unwrap();
            let file = w.join(&format!("{folder}/part-0.parquet"));
            write_file(&file, &LakeSpec::default(), ids, *d);
        }
    }
    write(&w, "lake/date=latest".to_string(), days[5]);
    let run = dau(&w);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.series(), oracle_window(&rows, 1, days[0], days[5], &[]));
}
