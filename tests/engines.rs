//! The two engines: per-day user bitmaps (the default where they apply) and the reference SQL give
//! the same rows, both equal to the brute-force oracle; rollups (and the windows counted from
//! them) are reused while a day's files are unchanged, and a file added, replaced or deleted
//! rebuilds exactly its day (and the windows that hold it are counted again).

use std::collections::BTreeMap;
use std::time::SystemTime;

use chrono::{Datelike, Days, NaiveDate};

use crate::util::*;

/// Every metric the bitmaps answer, as `dau query` arguments.
const METRICS: [&[&str]; 7] = [
    &["dau"],
    &["wau"],
    &["mau"],
    &["stickiness"],
    &["opens"],
    &["wau", "--calendar"],
    &["mau", "--calendar"],
];

fn query(w: &Workdir, metric: &[&str], engine: &str) -> Run {
    let mut args = vec!["query"];
    args.extend_from_slice(metric);
    args.extend_from_slice(&[
        "--lake",
        "lake",
        "--from",
        "2024-06-03",
        "--to",
        "2024-07-02",
        "--format",
        "csv",
        "--engine",
        engine,
    ]);
    w.run(&args)
}

/// Every metric through both engines: identical output and warnings; dau, wau and mau equal to
/// the oracle.
fn same_rows(w: &Workdir, rows: &[Row], gone: &[NaiveDate]) {
    let (from, to) = (day("2024-06-03"), day("2024-07-02"));
    for metric in METRICS {
        let sql = query(w, metric, "sql");
        let auto = query(w, metric, "auto");
        assert_eq!(sql.code, 0, "{metric:?}: {}", sql.stderr);
        assert_eq!(auto.stdout, sql.stdout, "{metric:?}");
        assert_eq!(auto.stderr, sql.stderr, "{metric:?}");
        let bitmap = query(w, metric, "bitmap");
        assert_eq!(bitmap.code, 0, "{metric:?}: {}", bitmap.stderr);
        assert_eq!(bitmap.stdout, sql.stdout, "{metric:?}");
        let window = match metric {
            ["dau"] => 1,
            ["wau"] => 7,
            ["mau"] => 30,
            _ => continue,
        };
        let kept: Vec<Row> = rows
            .iter()
            .filter(|(d, _)| !gone.contains(d))
            .copied()
            .collect();
        let expected = oracle_window(&kept, window, from, to, gone);
        assert_eq!(sql.series(), expected, "{metric:?}");
    }
}

/// Every layout and id type, ids in dictionaries or delta-encoded (as Parquet v2 writers write
/// them): bitmaps and SQL give the oracle's rows, cold and from rollups.
#[test]
fn both_engines_give_the_oracle_rows_on_every_layout_and_id_type() {
    let specs = [
        ("date", "int64", false),
        ("nested", "int64", false),
        ("dt", "int32", false),
        ("dt-compact", "string", false),
        ("date", "string", false),
        ("date", "int64", true),
        ("date", "string", true),
        ("date", "dictionary-string", false),
        ("date", "dictionary-int64", true),
        ("date", "uint64", false),
        ("day", "uint64", true),
        ("date", "binary", false),
        ("dt", "binary", true),
        ("plain", "int64", false),
        ("plain-nested", "string", false),
    ];
    for (layout, ids, delta) in specs {
        let w = Workdir::new();
        let spec = LakeSpec {
            layout,
            ids,
            files_per_day: 3,
            delta,
            ..LakeSpec::default()
        };
        let rows = random_rows(5, day("2024-05-01"), 70, 250);
        write_lake(&w.join("lake"), &spec, &rows, &[]);
        // A day with no partition in the asked range, one in the look-back: NULL rows, warnings.
        let gone = [day("2024-05-20"), day("2024-06-12")];
        for d in gone {
            let folder = w.join("lake").join(partition(&spec, d));
            std::fs::remove_dir_all(folder).unwrap();
        }
        same_rows(&w, &rows, &gone);
        // Now from rollups (the runs above made them): still the same rows.
        assert!(rollup_files(&w).len() > 60);
        same_rows(&w, &rows, &gone);
    }
}

/// Ids typed as a dictionary array (as pandas writes a categorical column) are their values: a
/// lake whose days switch between them and plain ids gives the oracle's rows from both engines.
#[test]
fn ids_kept_as_a_dictionary_are_their_values() {
    for (plain, keyed) in [
        ("string", "dictionary-string"),
        ("int64", "dictionary-int64"),
    ] {
        let w = Workdir::new();
        let rows = random_rows(9, day("2024-05-01"), 70, 300);
        let spec = LakeSpec {
            ids: plain,
            ..LakeSpec::default()
        };
        write_lake(&w.join("lake"), &spec, &rows, &[]);
        let keyed = LakeSpec {
            ids: keyed,
            files_per_day: 1,
            ..LakeSpec::default()
        };
        let mut days: BTreeMap<NaiveDate, Vec<u64>> = BTreeMap::new();
        for (d, u) in &rows {
            days.entry(*d).or_default().push(*u);
        }
        for (d, users) in days.iter().step_by(2) {
            let folder = w.join("lake").join(partition(&keyed, *d));
            std::fs::remove_dir_all(&folder).unwrap();
            std::fs::create_dir_all(&folder).unwrap();
            write_file(&folder.join("part-0.parquet"), &keyed, users, *d);
        }
        same_rows(&w, &rows, &[]);
    }
}

/// NULL ids in a file whose writer kept no statistics (so its footer does not count them) are
/// counted all the same: both engines warn with the exact number of every day.
#[test]
fn null_ids_are_counted_in_files_without_statistics() {
    use std::sync::Arc;

    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};

    let w = Workdir::new();
    // Each day's ids in a file with statistics, and in one without.
    let days = [
        (
            "2024-06-01",
            vec![Some(1), None],
            vec![None, Some(2), None, None],
        ),
        ("2024-06-02", vec![Some(1), Some(3)], vec![Some(3)]),
        (
            "2024-06-03",
            vec![None],
            vec![None, None, Some(4), Some(1), None],
        ),
    ];
    let field = || vec![Field::new("userId", DataType::Int64, true)];
    let bare = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    for (date, counted, uncounted) in &days {
        let folder = w.join(&format!("lake/date={date}"));
        std::fs::create_dir_all(&folder).unwrap();
        let ids = |ids: &Vec<Option<i64>>| vec![Arc::new(Int64Array::from(ids.clone())) as _];
        write_batch(&folder.join("a.parquet"), field(), ids(counted));
        write_props(
            &folder.join("b.parquet"),
            field(),
            ids(uncounted),
            bare.clone(),
        );
    }
    let want = "dau: warning: ignored 8 row(s) with a NULL userId (never counted as a user): \
                2024-06-01: 4, 2024-06-03: 4";
    for engine in ["sql", "bitmap"] {
        let run = w.run(&[
            "query", "dau", "--lake", "lake", "--format", "csv", "--engine", engine,
        ]);
        assert_eq!(run.code, 0, "{engine}: {}", run.stderr);
        assert!(
            run.stderr.lines().any(|l| l == want),
            "{engine}: {}",
            run.stderr
        );
        let rows = "date,dau\n2024-06-01,2\n2024-06-02,2\n2024-06-03,2\n";
        assert_eq!(run.stdout, rows, "{engine}");
    }
}

/// A `dau gen` lake (dense ids, several row groups): the engines agree, and equal the oracle
/// read from the files with the parquet crate.
#[test]
fn a_generated_lake_gives_the_oracle_rows_from_both_engines() {
    let w = Workdir::new();
    let generated = w.run(&[
        "gen",
        "--out",
        "lake",
        "--users",
        "4000",
        "--days",
        "40",
        "--start",
        "2024-05-30",
        "--files-per-day",
        "2",
    ]);
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    let rows = read_lake_rows(&w.join("lake"));
    same_rows(&w, &rows, &[]);
    let opens = query(&w, &["opens"], "auto").csv();
    let per_user = per_user_counts(&rows);
    for row in &opens[1..] {
        let mut counts = per_user[&day(&row[0])].clone();
        counts.sort_unstable();
        assert_eq!(row[1], counts.iter().sum::<u64>().to_string());
        assert_eq!(row[2], counts.len().to_string());
        assert_eq!(row[4], nearest_rank(&counts, 50).to_string());
        assert_eq!(row[5], nearest_rank(&counts, 90).to_string());
        assert_eq!(row[6], counts.last().unwrap().to_string());
    }
}

/// The rollup files and their modification times.
fn rollup_files(w: &Workdir) -> BTreeMap<String, SystemTime> {
    let mut files = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(w.rollups()) else {
        return files;
    };
    for dir in dirs {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().to_string_lossy().to_string();
            if name.ends_with(".rollup") {
                files.insert(name, file.metadata().unwrap().modified().unwrap());
            }
        }
    }
    files
}

fn rollup(w: &Workdir) -> Run {
    let run = w.run(&["rollup", "--lake", "lake"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// `metric` from 2024-06-01 to 2024-06-20 as CSV, with `extra` arguments.
fn metric_run(w: &Workdir, metric: &str, extra: &[&str]) -> Run {
    metric_between(w, metric, "2024-06-01", "2024-06-20", extra)
}

/// `metric` from `from` to `to` as CSV, with `extra` arguments.
fn metric_between(w: &Workdir, metric: &str, from: &str, to: &str, extra: &[&str]) -> Run {
    let args = [
        "query", metric, "--lake", "lake", "--from", from, "--to", to, "--format", "csv",
    ];
    w.run(&[&args[..], extra].concat())
}

/// The series of `metric` (dau, wau or mau) from 2024-06-01 to 2024-06-20, with `extra` arguments.
fn series(w: &Workdir, metric: &str, extra: &[&str]) -> BTreeMap<NaiveDate, Option<u64>> {
    let run = metric_run(w, metric, extra);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.series()
}

/// The oracle's dau over `rows` from 2024-06-01 to 2024-06-20 (the days `series` asks for).
fn oracle_dau(rows: &[Row]) -> BTreeMap<NaiveDate, Option<u64>> {
    oracle_window(rows, 1, day("2024-06-01"), day("2024-06-20"), &[])
}

/// wau and mau from 2024-06-01 to 2024-06-20, rolling and calendar, equal the oracle over `rows`
/// (of a lake of those days).
fn windows_match_the_oracle(w: &Workdir, rows: &[Row], what: &str) {
    let (from, to) = (day("2024-06-01"), day("2024-06-20"));
    for (metric, days) in [("wau", 7), ("mau", 30)] {
        let expected = oracle_window(rows, days, from, to, &[]);
        assert_eq!(series(w, metric, &[]), expected, "{what}: {metric}");
    }
    // ISO weeks from Monday 05-27; the week of 06-17 and June hold days with no partition.
    let monday = |d: NaiveDate| d - Days::new(d.weekday().num_days_from_monday().into());
    let days = day("2024-05-27").iter_days().take_while(|d| *d <= to);
    let mut weeks = oracle_periods(rows, days, monday);
    weeks.insert(day("2024-06-17"), None);
    assert_eq!(series(w, "wau", &["--calendar"]), weeks, "{what}: weeks");
    let june = BTreeMap::from([(day("2024-06-01"), None)]);
    assert_eq!(series(w, "mau", &["--calendar"]), june, "{what}: months");
}

/// The file of windows counted by `dau rollup` and queries, and when it was written.
fn windows_file(w: &Workdir) -> Option<SystemTime> {
    let dir = rollup_dir(w)?;
    std::fs::metadata(dir.join("windows")).ok()?.modified().ok()
}

/// The folder of the test lake's rollups, once there is one.
fn rollup_dir(w: &Workdir) -> Option<std::path::PathBuf> {
    Some(std::fs::read_dir(w.rollups()).ok()?.next()?.ok()?.path())
}

/// Text ids arriving in a lake rolled up with integer ids: every id is text from then on (`3` is
/// `"3"`, as in the SQL), every day is read again into a dictionary of text ids, and both engines
/// equal the oracle; the next run reuses those rollups.
#[test]
fn text_ids_arriving_in_a_rolled_up_lake_make_every_id_text() {
    let w = Workdir::new();
    let mut rows = random_rows(6, day("2024-05-01"), 51, 150);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    rollup(&w);
    let ids = rollup_dir(&w).unwrap().join("ids");
    assert!(std::fs::read(&ids).unwrap().starts_with(b"dau ids"));
    let text_day = day("2024-06-10");
    let file = w
        .join("lake")
        .join(partition(&LakeSpec::default(), text_day));
    write_strings(&file.join("part-text.parquet"), &["3", "7", "x", "", "x"]);
    // "3" and "7" are the users 3 and 7; "x" and "" are two users of their own.
    for user in [3, 7, 1_000_000, 1_000_001] {
        rows.push((text_day, user));
    }
    let want = |n| oracle_window(&rows, n, day("2024-06-01"), day("2024-06-20"), &[]);
    for engine in ["bitmap", "sql"] {
        let engine = ["--engine", engine];
        assert_eq!(series(&w, "dau", &engine), want(1), "{engine:?}");
        assert_eq!(series(&w, "mau", &engine), want(30), "{engine:?}");
    }
    assert!(std::fs::read(&ids).unwrap().starts_with(b"dau txt"));
    let before = rollup_files(&w);
    assert!(before.len() >= 50, "{before:?}");
    assert_eq!(series(&w, "dau", &["--engine", "bitmap"]), want(1));
    assert_eq!(series(&w, "mau", &["--engine", "bitmap"]), want(30));
    assert_eq!(rollup_files(&w), before, "rollups reused");
}

/// Text ids with NULLs and the empty id, and a file of integers beside them (`1` is `"1"`): both
/// engines give the brute-force users, windows and opens.
#[test]
fn text_ids_with_nulls_and_integers_beside_them_match_the_oracle() {
    use std::collections::HashSet;
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    let w = Workdir::new();
    // Each day's date, text ids and integer ids.
    type Day<'a> = (&'a str, Vec<Option<&'a str>>, Vec<Option<i64>>);
    let days: [Day; 2] = [
        (
            "2024-06-01",
            vec![Some("a"), None, Some("b"), Some("a"), None, Some("")],
            vec![],
        ),
        (
            "2024-06-02",
            vec![Some("a"), None, Some("c"), Some("1")],
            vec![Some(1), None, Some(2)],
        ),
    ];
    let mut seen: HashSet<String> = HashSet::new();
    let mut want = String::new();
    for (date, texts, integers) in &days {
        let folder = w.join(&format!("lake/date={date}"));
        std::fs::create_dir_all(&folder).unwrap();
        let field = |t| vec![Field::new("userId", t, true)];
        let texts_array = Arc::new(StringArray::from(texts.clone()));
        write_batch(
            &folder.join("a.parquet"),
            field(DataType::Utf8),
            vec![texts_array],
        );
        if !integers.is_empty() {
            let integers = Arc::new(Int64Array::from(integers.clone()));
            write_batch(
                &folder.join("b.parquet"),
                field(DataType::Int64),
                vec![integers],
            );
        }
        let ids: Vec<String> = (texts.iter().flatten().map(|t| t.to_string()))
            .chain(integers.iter().flatten().map(|i| i.to_string()))
            .collect();
        let users: HashSet<&String> = ids.iter().collect();
        seen.extend(ids.iter().cloned());
        want += &format!("{date},{},{},{}\n", users.len(), seen.len(), ids.len());
    }
    for engine in ["sql", "bitmap"] {
        // Each metric's lines, without the header: the date, then its value.
        let lines: Vec<Vec<String>> = ["dau", "mau", "opens"]
            .iter()
            .map(|metric| {
                let engine_args = ["--engine", engine];
                let run = metric_between(&w, metric, "2024-06-01", "2024-06-02", &engine_args);
                assert_eq!(run.code, 0, "{engine} {metric}: {}", run.stderr);
                run.stdout.lines().skip(1).map(str::to_string).collect()
            })
            .collect();
        let field = |metric: usize, day: usize, n: usize| {
            lines[metric][day].split(',').nth(n).unwrap().to_string()
        };
        let rows: String = (0..days.len())
            .map(|d| {
                let (date, dau) = (field(0, d, 0), field(0, d, 1));
                format!("{date},{dau},{},{}\n", field(1, d, 1), field(2, d, 1))
            })
            .collect();
        assert_eq!(rows, want, "{engine}: {lines:?}");
    }
}

/// `dau rollup` of one day also rolls up the days its windows reach (the 29 before it, the rest
/// of its ISO week and month), says so, and counts them; the windows then equal the oracle.
#[test]
fn rollup_of_a_day_counts_the_days_its_windows_reach() {
    let w = Workdir::new();
    let rows = random_rows(4, day("2024-05-01"), 70, 150);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let one_day = [
        "--lake",
        "lake",
        "--from",
        "2024-07-05",
        "--to",
        "2024-07-05",
    ];
    let run = w.run(&[&["rollup"][..], &one_day].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    // 30 days back to 06-06; July (and the ISO week of 07-05) to the lake's last day, 07-09.
    let first = run.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(
            "34 day(s) of lake from 2024-06-06 to 2024-07-09 (2024-07-05 to 2024-07-05, and"
        ) && first.ends_with(": 34 rolled up now, 0 already current"),
        "{}",
        run.stdout
    );
    assert_eq!(rollup_files(&w).len(), 34);
    let d = day("2024-07-05");
    for (metric, n) in [("wau", 7), ("mau", 30)] {
        let run = w.run(&[&["query", metric][..], &one_day, &["--format", "csv"]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.series(), oracle_window(&rows, n, d, d, &[]), "{metric}");
    }
    assert_eq!(rollup_files(&w).len(), 34, "the queries read no other day");
}

/// `dau rollup` of a day still being written (its folder has only `_SUCCESS`) says what it
/// rolled up (the days the windows reach), then fails as a query of that day would: exit 4.
#[test]
fn rollup_of_a_missing_day_says_what_it_rolled_up_then_fails() {
    let w = Workdir::new();
    let rows = random_rows(5, day("2024-06-01"), 10, 100);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    unfinished_partition(&w.join("lake/date=2024-06-11"));
    let asked = [
        "--lake",
        "lake",
        "--from",
        "2024-06-11",
        "--to",
        "2024-06-11",
    ];
    let run = w.run(&[&["rollup"][..], &asked].concat());
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(
            "11 day(s) of lake from 2024-06-01 to 2024-06-11 (2024-06-11 to 2024-06-11, and the \
             days their windows reach): 10 rolled up now, 0 already current, 1 not rolled up"
        ) && run.stdout.contains("\nrollups: ")
            && !run.stdout.contains("windows counted"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("2024-06-11"), "{}", run.stderr);
    assert_eq!(rollup_files(&w).len(), 10);
    let run = metric_between(&w, "mau", "2024-06-01", "2024-06-10", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (from, to) = (day("2024-06-01"), day("2024-06-10"));
    assert_eq!(run.series(), oracle_window(&rows, 30, from, to, &[]));
    assert_eq!(rollup_files(&w).len(), 10, "the query read no day again");
}

/// Adding, replacing and deleting a file in one day changes that day's result, and only that
/// day is read again: every other rollup file is left as it was.
#[test]
fn a_changed_file_rebuilds_exactly_its_day() {
    let w = Workdir::new();
    let spec = LakeSpec::default();
    let mut rows = random_rows(9, day("2024-06-01"), 20, 200);
    write_lake(&w.join("lake"), &spec, &rows, &[]);
    let first = rollup(&w);
    assert!(
        first.stdout.contains("20 rolled up now, 0 already current"),
        "{}",
        first.stdout
    );
    let again = rollup(&w);
    assert!(
        again.stdout.contains("0 rolled up now, 20 already current"),
        "{}",
        again.stdout
    );
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
    // dau rollup counted the windows too, rolling and calendar: queries use them, writing nothing.
    let counted = windows_file(&w).expect("dau rollup counts the windows");
    windows_match_the_oracle(&w, &rows, "after dau rollup");
    assert_eq!(windows_file(&w), Some(counted));

    let changed = day("2024-06-07");
    let folder = w.join("lake").join(partition(&spec, changed));
    let new_users: Vec<u64> = (0..50).map(|u| 9_000_000 + u).collect();
    let replaced_users: Vec<u64> = (0..30).map(|u| 8_000_000 + u).collect();
    for what in ["added", "replaced", "deleted"] {
        let before = rollup_files(&w);
        match what {
            "added" => write_file(&folder.join("extra.parquet"), &spec, &new_users, changed),
            "replaced" => write_file(
                &folder.join("part-0.parquet"),
                &spec,
                &replaced_users,
                changed,
            ),
            _ => std::fs::remove_file(folder.join("extra.parquet")).unwrap(),
        }
        rows = read_lake_rows(&w.join("lake"));
        // The windows that hold the changed day are counted again (the first run since the
        // change reads the day itself), the others come as counted.
        windows_match_the_oracle(&w, &rows, what);
        let series = series(&w, "dau", &[]);
        assert_eq!(series, oracle_dau(&rows), "{what}");
        let after = rollup_files(&w);
        let rebuilt: Vec<&String> = after
            .iter()
            .filter(|(name, time)| before.get(*name) != Some(*time))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(rebuilt, [&format!("{changed}.rollup")], "{what}");
        let sql = metric_run(&w, "dau", &["--engine", "sql"]);
        assert_eq!(sql.series(), series, "{what}");
        let current = rollup(&w);
        assert!(
            current
                .stdout
                .contains("0 rolled up now, 20 already current"),
            "{what}: {}",
            current.stdout
        );
    }
}

/// A run that must write rollups while another run holds their lock says that it waits, then
/// finishes with the right rows; it clears away files a crashed run left half-written.
#[test]
fn a_run_waits_for_the_rollups_lock_and_clears_what_crashed_runs_left() {
    use std::io::BufRead;
    let w = Workdir::new();
    let spec = LakeSpec::default();
    let mut rows = random_rows(5, day("2024-06-01"), 20, 100);
    write_lake(&w.join("lake"), &spec, &rows, &[]);
    rollup(&w);
    let dir = rollup_dir(&w).expect("dau rollup made the lake's folder");
    let stale = dir.join(".2024-06-03.rollup.99999.tmp");
    let fresh = dir.join(".windows.99998.tmp");
    for file in [&stale, &fresh] {
        std::fs::write(file, b"half written").unwrap();
    }
    let two_hours_ago = SystemTime::now() - std::time::Duration::from_secs(7200);
    let file = std::fs::File::options().write(true).open(&stale).unwrap();
    file.set_modified(two_hours_ago).unwrap();

    // Another run holds the lock, and a day has changed: this run must read it and roll it up.
    let lock = std::fs::File::create(dir.join("lock")).unwrap();
    lock.lock().unwrap();
    let changed = day("2024-06-09");
    let users: Vec<u64> = (0..40).map(|u| 7_000_000 + u).collect();
    let folder = w.join("lake").join(partition(&spec, changed));
    write_file(&folder.join("extra.parquet"), &spec, &users, changed);
    rows = read_lake_rows(&w.join("lake"));
    let mut run = w
        .command(&["query", "dau", "--lake", "lake", "--format", "csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(run.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("waiting for another dau run") {
        said.clear();
        let read = stderr.read_line(&mut said).unwrap();
        assert!(read > 0, "dau ended without waiting for the lock");
    }
    assert!(said.contains(&dir.display().to_string()), "{said}");
    assert!(
        stale.exists() && fresh.exists(),
        "nothing is cleared before the lock is taken"
    );
    lock.unlock().unwrap();
    let out: Run = run.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0);
    assert_eq!(out.series(), oracle_dau(&rows));
    assert!(
        !stale.exists(),
        "a two-hour-old half-written file is cleared"
    );
    assert!(
        fresh.exists(),
        "a file another run may be writing now is left alone"
    );
}

/// A rollup file that is not one (truncated, overwritten) is read around, and rewritten; a
/// dictionary whose head is damaged is not used.
#[test]
fn a_damaged_rollup_is_rebuilt() {
    let w = Workdir::new();
    let rows = random_rows(3, day("2024-06-01"), 20, 150);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    rollup(&w);
    let dir = rollup_dir(&w).expect("dau rollup made the lake's folder");
    let victim = dir.join("2024-06-10.rollup");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.join("2024-06-11.rollup"), "garbage").unwrap();
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
    let run = rollup(&w);
    assert!(
        run.stdout.contains("0 rolled up now, 20 already current"),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::read(&victim).unwrap(), bytes);
    // The dictionary's count of states, one bit flipped: it asked for 64 GiB, and every query of
    // the lake aborted.
    let mut ids = std::fs::read(dir.join("ids")).unwrap();
    ids[22] ^= 1;
    std::fs::write(dir.join("ids"), &ids).unwrap();
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
}

/// Rollups are used only with the dictionary they were made with, or one that grew from it: with
/// an older copy of the dictionary put back (from a backup, or a store that let two runs each
/// replace it), the days rolled up after that copy are read again rather than unioned with
/// indices the copy gives to other users; and a dictionary cut short is not used at all.
#[test]
fn rollups_of_a_dictionary_put_back_or_cut_short_are_not_used() {
    let w = Workdir::new();
    let rows = random_rows(12, day("2024-06-01"), 20, 300);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let first = w.run(&["query", "dau", "--lake", "lake", "--to", "2024-06-08"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let dir = rollup_dir(&w).expect("dau rollup made the lake's folder");
    let older = std::fs::read(dir.join("ids")).unwrap();
    rollup(&w);
    let ids = std::fs::read(dir.join("ids")).unwrap();
    assert!(ids.len() > older.len(), "the later days added users");
    std::fs::write(dir.join("ids"), &older).unwrap();
    // A day not rolled up yet, read with the older copy, gets indices the later days' rollups
    // give to other users (and its windows are not counted yet).
    std::fs::remove_file(dir.join("2024-06-20.rollup")).unwrap();
    std::fs::remove_file(dir.join("windows")).unwrap();
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
    windows_match_the_oracle(&w, &rows, "dictionary put back");
    let again = rollup(&w);
    assert!(
        again.stdout.contains("0 rolled up now, 20 already current"),
        "{}",
        again.stdout
    );
    // Cut short: its later users are gone, and nothing made with it can be trusted.
    std::fs::write(dir.join("ids"), &ids[..ids.len() - 8 * 40]).unwrap();
    std::fs::remove_file(dir.join("2024-06-19.rollup")).unwrap();
    std::fs::remove_file(dir.join("windows")).unwrap();
    windows_match_the_oracle(&w, &rows, "dictionary cut short");
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
}

/// Rollups in a folder this run cannot write (here its lock cannot be taken) are still used: a
/// query reads only the days not rolled up, and warns that it keeps nothing. A day whose file was
/// damaged in place (same size and time, so its rollup still stands for it) shows that the others
/// are not read again.
#[test]
fn rollups_that_cannot_be_written_are_still_used() {
    let w = Workdir::new();
    let spec = LakeSpec::default();
    let rows = random_rows(14, day("2024-06-01"), 20, 300);
    write_lake(&w.join("lake"), &spec, &rows, &[]);
    rollup(&w);
    let dir = rollup_dir(&w).expect("dau rollup made the lake's folder");
    std::fs::remove_file(dir.join("2024-06-20.rollup")).unwrap();
    std::fs::remove_file(dir.join("lock")).unwrap();
    std::fs::create_dir(dir.join("lock")).unwrap();
    let folder = w.join("lake").join(partition(&spec, day("2024-06-10")));
    for file in std::fs::read_dir(folder).unwrap() {
        let path = file.unwrap().path();
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &vec![7u8; size], 0).unwrap();
        file.set_modified(modified).unwrap();
    }
    let run = metric_run(&w, "mau", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not keep rollups"),
        "{}",
        run.stderr
    );
    let (from, to) = (day("2024-06-01"), day("2024-06-20"));
    assert_eq!(run.series(), oracle_window(&rows, 30, from, to, &[]));
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
}

/// Two runs rolling up the same lake at once both succeed, and leave sound rollups.
#[test]
fn concurrent_runs_share_rollups_safely() {
    let w = Workdir::new();
    let rows = random_rows(4, day("2024-06-01"), 20, 400);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let runs: Vec<_> = (0..3)
        .map(|_| {
            w.command(&["rollup", "--lake", "lake"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        assert!(run.wait_with_output().unwrap().status.success());
    }
    assert_eq!(series(&w, "dau", &[]), oracle_dau(&rows));
    let leftovers: Vec<_> = std::fs::read_dir(w.rollups())
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `--rollups off` keeps nothing; a folder that cannot be written is a warning for a query (the
/// numbers are still right) and an error for `dau rollup`.
#[test]
fn rollups_off_or_unwritable() {
    let w = Workdir::new();
    let rows = random_rows(6, day("2024-06-01"), 20, 100);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let off = metric_run(&w, "dau", &["--rollups", "off"]);
    assert_eq!(off.series(), oracle_dau(&rows));
    assert!(!w.rollups().exists());

    std::fs::write(w.join("blocker"), "a file, not a folder").unwrap();
    let blocked = metric_run(&w, "dau", &["--rollups", "blocker/rollups"]);
    assert_eq!(blocked.series(), oracle_dau(&rows));
    assert!(
        blocked
            .stderr
            .contains("could not keep rollups in blocker/rollups"),
        "{}",
        blocked.stderr
    );
    let run = w.run(&["rollup", "--lake", "lake", "--rollups", "blocker/rollups"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not keep rollups"),
        "{}",
        run.stderr
    );
    // Days kept and the windows not (a full disk; here a folder where their file goes): no
    // "windows counted", exit 2 (it was exit 0, and later queries counted them again).
    let run = w.run(&["rollup", "--lake", "lake", "--rollups", "kept"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let windows = std::fs::read_dir(w.join("kept")).unwrap().next().unwrap();
    let windows = windows.unwrap().path().join("windows");
    std::fs::remove_file(&windows).unwrap();
    std::fs::create_dir_all(windows.join("in the way")).unwrap();
    let run = w.run(&["rollup", "--lake", "lake", "--rollups", "kept"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("could not keep rollups"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("windows counted"), "{}", run.stdout);
}
