//! `dau sql` one-shot: -c, -f and stdin, formats, exit codes; numbers against the oracle.

use std::io::Write;
use std::process::Stdio;

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field};

use crate::util::*;

fn lake(w: &Workdir) -> Vec<Row> {
    let rows = random_rows(31, day("2024-06-01"), 12, 150);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    rows
}

const DAU_SQL: &str =
    "SELECT date, COUNT(DISTINCT userId) AS dau FROM events GROUP BY date ORDER BY date";

#[test]
fn command_sql_counts_like_the_oracle() {
    let w = Workdir::new();
    let rows = lake(&w);
    let want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-12"), &[]);
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", DAU_SQL]);
    assert_eq!(run.series(), want);
    // SQL that starts with a comment is SQL, not a flag (clap refused it, exit 2).
    let commented = format!("-- active users per day\n{DAU_SQL}");
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", &commented]);
    assert_eq!(run.series(), want, "{}", run.stderr);
    // userId as typed, and a string literal compared with the DATE column.
    let run = w.run(&[
        "sql", "--lake", "lake", "--format", "csv", "-c",
        "SELECT COUNT(*) AS opens, COUNT(DISTINCT userId) AS users FROM events WHERE date = '2024-06-05'",
    ]);
    let on_day: Vec<&Row> = rows.iter().filter(|r| r.0 == day("2024-06-05")).collect();
    let users: std::collections::HashSet<u64> = on_day.iter().map(|r| r.1).collect();
    assert_eq!(
        run.stdout,
        format!("opens,users\n{},{}\n", on_day.len(), users.len())
    );
    // A backslash command, as psql -c runs it.
    let run = w.run(&["sql", "--lake", "lake", "-c", "\\d events"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("│ userId      ┆ Int64 "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("12 days from 2024-06-01 to 2024-06-12"),
        "{}",
        run.stdout
    );
    let run = w.run(&["sql", "--lake", "lake", "-c", "\\nope"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn a_file_of_statements_and_stdin() {
    let w = Workdir::new();
    let rows = lake(&w);
    let expected = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-12"), &[]);
    // `text` as the file `name`, run as CSV by `dau sql -f`.
    let script = |name: &str, text: String| -> Run {
        std::fs::write(w.join(name), text).unwrap();
        w.run(&["sql", "--lake", "lake", "--format", "csv", "-f", name])
    };
    // A folder is a setting's error (it was exit 3, as a disk's), said before the lake is read.
    for lake in ["lake", "no-such-lake"] {
        let run = w.run(&["sql", "--lake", lake, "-f", "lake"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert_eq!(
            run.stderr,
            "dau: -f lake is a folder: give a file of SQL statements\n"
        );
    }
    let run = script(
        "report.sql",
        format!(
            "-- a view, then a query on it\nCREATE VIEW daily AS {DAU_SQL};\nSELECT * FROM daily;\n"
        ),
    );
    assert_eq!(run.series(), expected);

    // As Windows editors save it: a byte-order mark and CRLF line ends.
    let first = script(
        "windows.sql",
        format!("\u{feff}-- report\r\n{DAU_SQL};\r\n"),
    );
    assert_eq!(first.series(), expected);

    // Of several statements, the one that fails is named with its line; those before it ran, and
    // none after it.
    let run = script(
        "typo.sql",
        format!("{DAU_SQL};\n\nSELECT COUNT(DISTINCT usrId) FROM events;\nSELECT 'after' AS x;\n"),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "dau: statement 2 of 3 (line 3): query failed: Schema error: No field named \"usrId\""
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, first.stdout);
    // A syntax error: no statement runs, and the error says so with its line.
    let run = script("syntax.sql", format!("{DAU_SQL};\n\nSELEC 'after' AS x;\n"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("dau: the SQL does not parse, so no statement was run: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("found: SELEC at Line: 3"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");

    // From stdin, piped in or as `-f -` (psql's spelling; it was "no SQL file -").
    for args in [&[][..], &["-f", "-"]] {
        let mut child = w
            .command(&[&["sql", "--lake", "lake", "--format", "csv"], args].concat())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{DAU_SQL};\n").as_bytes())
            .unwrap();
        let run: Run = child.wait_with_output().unwrap().into();
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert_eq!(run.series(), expected, "{args:?}");
    }
}

#[test]
fn results_go_to_a_file_in_any_format() {
    let w = Workdir::new();
    let rows = lake(&w);
    let run = w.run(&[
        "sql", "--lake", "lake", "-c", DAU_SQL, "--output", "dau.json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.join("dau.json")).unwrap()).unwrap();
    let got: Vec<(NaiveDate, u64)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (day(r["date"].as_str().unwrap()), r["dau"].as_u64().unwrap()))
        .collect();
    let want: Vec<(NaiveDate, u64)> =
        oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-12"), &[])
            .into_iter()
            .map(|(d, v)| (d, v.unwrap()))
            .collect();
    assert_eq!(got, want);
}

#[test]
fn sql_errors_and_exit_codes() {
    let w = Workdir::new();
    lake(&w);
    // One statement (a trailing comment with a `;` is no second): just the parser's error.
    let run = w.run(&["sql", "--lake", "lake", "-c", "SELEC 1; -- once;"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(
            "dau: query failed: SQL error: ParserError(\"Expected: an SQL statement, found: SELEC"
        ),
        "{}",
        run.stderr
    );
    // `\d` of a table there is not: named (an empty list of columns was printed).
    let run = w.run(&["sql", "--lake", "lake", "-c", "\\d nosuch"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(run.stderr, "dau: no table nosuch: \\d lists the tables\n");
    let run = w.run(&["sql", "--lake", "lake", "-c", "SELECT nope FROM events"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("No field named nope"), "{}", run.stderr);
    // A metric called as a scalar function: it is a table function, and the message says so.
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "-c",
        "SELECT DAU('2024-06-01', '2024-06-03')",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("dau(…) is a table function: SELECT * FROM dau('2024-06-01', '2024-06-30')"),
        "{}",
        run.stderr
    );
    // `-f csv` as `dau query` takes it: here -f is the SQL file, and the message says so.
    for args in [&["-c", "SELECT 1", "-f", "csv"][..], &["-f", "csv"]] {
        let run = w.run(&[&["sql", "--lake", "lake"][..], args].concat());
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(
                "-f is --file in dau sql, as in psql; for the output format write --format csv"
            ),
            "{}",
            run.stderr
        );
    }
    let run = w.run(&["sql", "--lake", "missing", "-c", "SELECT 1"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    std::fs::create_dir_all(w.join("empty/a")).unwrap();
    std::fs::create_dir_all(w.join("empty/b")).unwrap();
    let run = w.run(&["sql", "--lake", "empty", "-c", "SELECT 1"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "-c",
        "SELECT 1; SELECT 2",
        "--output",
        "x.csv",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // A list in CSV: said before anything is written (the header went out, then it failed).
    let list = "SELECT make_array(1, 2) AS pair";
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", list]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("column pair is a List(Int64), which CSV cannot hold"),
        "{}",
        run.stderr
    );
    // An output that cannot be written is said before the query runs: a folder, a file in a file.
    std::fs::write(w.join("plain"), "").unwrap();
    for (output, said, code) in [
        ("empty", "cannot write into empty: it is a folder", 2),
        ("plain/x.csv", "cannot make the output folder (plain)", 3),
    ] {
        let run = w.run(&["query", "dau", "--lake", "lake", "--output", output]);
        assert_eq!(run.code, code, "{}", run.stderr);
        assert!(run.stderr.contains(said), "{}", run.stderr);
    }
}

#[test]
fn the_lake_is_read_only_from_sql() {
    let w = Workdir::new();
    lake(&w);
    let target = w.join("lake/date=2024-06-01/part-0.parquet");
    let before = std::fs::read(&target).unwrap();
    for sql in [
        format!("COPY (SELECT 1 AS userId) TO '{}'", target.display()),
        "INSERT INTO events VALUES (1, DATE '2024-06-01')".to_string(),
        // (It was dropped, and every later statement had no `events`.)
        "DROP TABLE events; SELECT COUNT(*) FROM events".to_string(),
        "CREATE OR REPLACE TABLE events AS SELECT 1 AS x".to_string(),
        "CREATE OR REPLACE VIEW events AS SELECT 1 AS x".to_string(),
        format!(
            "CREATE OR REPLACE EXTERNAL TABLE events STORED AS PARQUET LOCATION '{}'",
            target.display()
        ),
    ] {
        let run = w.run(&["sql", "--lake", "lake", "-c", &sql]);
        assert_eq!(run.code, 1, "{sql}: {}", run.stderr);
        assert!(
            run.stderr.contains("dau sql is read-only"),
            "{sql}: {}",
            run.stderr
        );
    }
    assert_eq!(std::fs::read(&target).unwrap(), before);
    // Names are case-sensitive, and said so for what dau can do (DataFusion's hint was to quote
    // the name or to change a setting).
    for (sql, said) in [
        (
            "SELECT COUNT(*) FROM EVENTS",
            "no table EVENTS: names are case-sensitive, and the lake's table is events",
        ),
        (
            "SELECT userid FROM events",
            "Write the name as the lake spells it (\\d events lists the columns)",
        ),
    ] {
        let run = w.run(&["sql", "--lake", "lake", "-c", sql]);
        assert_eq!(run.code, 1, "{sql}: {}", run.stderr);
        assert!(run.stderr.contains(said), "{sql}: {}", run.stderr);
        assert!(
            !run.stderr.contains("enable_ident_normalization"),
            "{sql}: {}",
            run.stderr
        );
    }
    // Session views and tables are fine.
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "--format",
        "csv",
        "-c",
        "CREATE TABLE t AS SELECT 41 AS x; SELECT x + 1 AS y FROM t",
    ]);
    assert_eq!(run.stdout, "y\n42\n", "{}", run.stderr);
    // The runtime's settings are dau's: a spill folder in the lake left folders in it.
    let set = "SET datafusion.runtime.temp_directory = 'lake/date=2024-06-02'";
    let run = w.run(&["sql", "--lake", "lake", "-c", set]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("SET datafusion.runtime.temp_directory is dau's to set"),
        "{}",
        run.stderr
    );
}

// The metrics as table functions give the oracle's numbers, and the same rows as `dau query`.
#[test]
fn metric_table_functions() {
    let w = Workdir::new();
    let rows = lake(&w);
    let (from, to) = (day("2024-06-04"), day("2024-06-12"));
    for (metric, n) in [("dau", 1), ("wau", 7), ("mau", 30)] {
        let sql = format!("SELECT * FROM {metric}('2024-06-04', '2024-06-12')");
        let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", &sql]);
        assert_eq!(
            run.series(),
            oracle_window(&rows, n, from, to, &[]),
            "{metric}"
        );
    }
    for (function, args) in [
        (
            "opens('2024-06-02', '2024-06-09')",
            ["opens", "--from", "2024-06-02", "--to", "2024-06-09"],
        ),
        (
            "mau('2024-06-01', '2024-06-12', 'calendar')",
            ["mau", "--from", "2024-06-01", "--to", "2024-06-12"],
        ),
        (
            "stickiness('2024-06-05', '2024-06-06')",
            ["stickiness", "--from", "2024-06-05", "--to", "2024-06-06"],
        ),
        (
            "user_days('2024-06-03', '2024-06-03')",
            ["user-days", "--from", "2024-06-03", "--to", "2024-06-03"],
        ),
    ] {
        let sql = format!("SELECT * FROM {function}");
        let from_sql = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", &sql]);
        let mut query = vec!["query", "--lake", "lake", "--format", "csv"];
        query.extend_from_slice(&args);
        if function.contains("calendar") {
            query.push("--calendar");
        }
        let from_query = w.run(&query);
        assert_eq!(from_sql.code, 0, "{function}: {}", from_sql.stderr);
        assert_eq!(from_sql.stdout, from_query.stdout, "{function}");
    }
    // Filters and projections work on them like on any table.
    let run = w.run(&[
        "sql", "--lake", "lake", "--format", "csv", "-c",
        "SELECT date FROM dau('2024-06-01', '2024-06-12') WHERE dau >= 0 ORDER BY date DESC LIMIT 1",
    ]);
    assert_eq!(run.stdout, "date\n2024-06-12\n", "{}", run.stderr);
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "-c",
        "SELECT * FROM dau('June', '2024-06-12')",
    ]);
    // A usage error, as a bad --from is (it was exit 1, a failed query).
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("dau(from, to): bad first day 'June'"),
        "{}",
        run.stderr
    );
    // In SQL's words, not the flags' (it said "--from 2024-06-05 is after --to").
    let sql = "SELECT * FROM mau('2024-06-05', '2024-06-01')";
    let run = w.run(&["sql", "--lake", "lake", "-c", sql]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "mau(from, to [, 'calendar']): the first day 2024-06-05 is after the last 2024-06-01"
        ),
        "{}",
        run.stderr
    );
    // 'calendar' is said to be wau's and mau's, not as a flag (--calendar) in SQL.
    let sql = "SELECT * FROM dau('2024-06-01', '2024-06-02', 'calendar')";
    let run = w.run(&["sql", "--lake", "lake", "-c", sql]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "dau(from, to): 'calendar' is for wau (ISO weeks) and mau (calendar months) only"
        ),
        "{}",
        run.stderr
    );
}

// A filter on `date` reads that partition's data only: a corrupt page elsewhere is never decoded.
#[test]
fn a_day_filter_reads_only_that_partition() {
    let w = Workdir::new();
    let rows = lake(&w);
    let file = w.join("lake/date=2024-06-09/part-0.parquet");
    std::fs::write(&file, corrupt_pages(&std::fs::read(&file).unwrap())).unwrap();
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "--format",
        "csv",
        "-c",
        "SELECT COUNT(DISTINCT userId) AS users FROM events WHERE date = '2024-06-05'",
    ]);
    let users: std::collections::HashSet<u64> = rows
        .iter()
        .filter(|r| r.0 == day("2024-06-05"))
        .map(|r| r.1)
        .collect();
    assert_eq!(
        run.stdout,
        format!("users\n{}\n", users.len()),
        "{}",
        run.stderr
    );
    // The corrupt day itself fails, naming the file.
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "-c",
        "SELECT COUNT(DISTINCT userId) FROM events WHERE date = '2024-06-09'",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let stderr = w.redact(&run.stderr);
    let named =
        "bad data file ([DIR]/lake/date=2024-06-09/part-0.parquet): a data page cannot be decoded";
    assert!(stderr.contains(named), "{stderr}");
    // So does a statement that reads events twice, whichever of its scans reads the day (only
    // the last planned was looked at: "query failed: … snappy", exit 1).
    for (a, b) in [("2024-06-09", "2024-06-05"), ("2024-06-05", "2024-06-09")] {
        let sql = format!(
            "SELECT COUNT(*) FROM events a JOIN events b ON a.userId = b.userId \
             WHERE a.date = '{a}' AND b.date = '{b}'"
        );
        let run = w.run(&["sql", "--lake", "lake", "-c", &sql]);
        assert_eq!(run.code, 4, "{sql}: {}", run.stderr);
        assert!(w.redact(&run.stderr).contains(named), "{}", run.stderr);
        assert!(!run.stderr.contains("more bad file"), "{}", run.stderr);
    }
}

/// Filters on `date` prune days one by one: one that cannot be computed on a day another leaves
/// out prunes nothing (the query failed: "Divide by zero"). Rows in a folder that names no day
/// are said to be left out, and an in-file date column of integers (YYYYMMDD) is no cast value.
#[test]
fn days_are_pruned_filter_by_filter_and_left_out_rows_are_said() {
    let w = Workdir::new();
    let rows = lake(&w);
    let sql = |sql: &str| w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", sql]);
    let run = sql("SELECT COUNT(*) AS opens FROM events \
         WHERE date > '2024-06-01' AND 1 / (CAST(extract(day FROM date) AS INT) - 1) >= 0");
    let later = rows.iter().filter(|r| r.0 > day("2024-06-01")).count();
    assert_eq!(run.stdout, format!("opens\n{later}\n"), "{}", run.stderr);

    let odd = w.join("lake/date=__HIVE_DEFAULT_PARTITION__");
    std::fs::create_dir(&odd).unwrap();
    std::fs::copy(
        w.join("lake/date=2024-06-02/part-0.parquet"),
        odd.join("x.parquet"),
    )
    .unwrap();
    let run = sql("SELECT COUNT(*) AS opens FROM events");
    assert_eq!(
        run.stdout,
        format!("opens\n{}\n", rows.len()),
        "{}",
        run.stderr
    );
    let said = "skipped 1 folder(s) that do not name a day: date=__HIVE_DEFAULT_PARTITION__; \
                events has no rows of theirs";
    assert!(run.stderr.contains(said), "{}", run.stderr);

    let w = Workdir::new();
    let folder = w.join("lake/date=2024-06-18");
    std::fs::create_dir_all(&folder).unwrap();
    let fields = vec![
        Field::new("userId", DataType::Int64, false),
        Field::new("date", DataType::Int64, false),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 2])),
        Arc::new(Int64Array::from(vec![20240618; 3])),
    ];
    write_batch(&folder.join("a.parquet"), fields, columns);
    let run = w.run(&[
        "sql",
        "--lake",
        "lake",
        "--format",
        "csv",
        "-c",
        "SELECT date, COUNT(*) AS n FROM events GROUP BY date",
    ]);
    assert_eq!(run.stdout, "date,n\n2024-06-18,3\n", "{}", run.stderr);
    assert!(!run.stderr.contains("cast"), "{}", run.stderr);
}

/// A bad file on the newest day fails the statements that read its day, not the session: every
/// statement failed on it, and `\d events` too.
#[test]
fn a_bad_file_of_the_newest_day_fails_only_its_day() {
    let w = Workdir::new();
    let rows = lake(&w);
    std::fs::write(w.join("lake/date=2024-06-12/part-9.parquet"), "garbage").unwrap();
    let sql = |sql: &str| w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", sql]);
    let run = sql("SELECT COUNT(*) AS opens FROM events WHERE date = '2024-06-05'");
    let opens = rows.iter().filter(|r| r.0 == day("2024-06-05")).count();
    assert_eq!(run.stdout, format!("opens\n{opens}\n"), "{}", run.stderr);
    let run = sql("\\d events");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sql("SELECT COUNT(*) FROM events WHERE date = '2024-06-12'");
    assert_eq!(run.code, 4, "{}", run.stderr);
    let named = "bad data file ([DIR]/lake/date=2024-06-12/part-9.parquet)";
    assert!(w.redact(&run.stderr).contains(named), "{}", run.stderr);
}

/// A column whose older files have another type than the newest day's, which `events` takes: a
/// narrower one (DOUBLE read as BIGINT: 1.7 became 1) is warned of, naming the column and a file;
/// a wider one (INT read as BIGINT) is not.
#[test]
fn a_column_read_narrower_than_its_files_is_warned_of() {
    use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field};
    use std::sync::Arc;
    let w = Workdir::new();
    let days: [(&str, DataType, ArrayRef); 3] = [
        (
            "2024-06-01",
            DataType::Float64,
            Arc::new(Float64Array::from(vec![1.7, 2.9])),
        ),
        (
            "2024-06-02",
            DataType::Int32,
            Arc::new(Int32Array::from(vec![3, 4])),
        ),
        (
            "2024-06-03",
            DataType::Int64,
            Arc::new(Int64Array::from(vec![5, 6])),
        ),
    ];
    for (d, amount_type, amounts) in days {
        let folder = w.join(&format!("lake/date={d}"));
        std::fs::create_dir_all(&folder).unwrap();
        write_batch(
            &folder.join("part-0.parquet"),
            vec![
                Field::new("userId", DataType::Int64, false),
                Field::new("amount", amount_type, false),
            ],
            vec![Arc::new(Int64Array::from(vec![1, 2])), amounts],
        );
    }
    let sum = |filter: &str| {
        let sql = format!("SELECT SUM(amount) AS total FROM events {filter}");
        w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", &sql])
    };
    let run = sum("");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("column amount is Float64 in 1 file(s) read (such as ")
            && run
                .stderr
                .contains("date=2024-06-01/part-0.parquet), and Int64 in events"),
        "{}",
        run.stderr
    );
    let run = sum("WHERE date >= '2024-06-02'");
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "total\n18\n"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr, "");
}

/// Results never go into the lake where it is read: `-o` into a partition (it replaced a day's
/// file, whose users were then gone) is refused by dau sql, dau query and dau export, while a
/// hidden folder of the lake takes them. Two columns of one name (`SELECT *` of a join) are
/// refused in a file format: JSON kept one of them, and Parquet readers refused the file.
#[test]
fn results_go_neither_into_the_lake_nor_under_one_name_twice() {
    let w = Workdir::new();
    let rows = lake(&w);
    let file = "lake/date=2024-06-01/part-0.parquet";
    let before = std::fs::read(w.join(file)).unwrap();
    let daily = "lake/date=2024-06-02/daily.csv";
    for args in [
        &[
            "sql",
            "--lake",
            "lake",
            "-c",
            "SELECT 1 AS userId",
            "-o",
            file,
        ][..],
        &["query", "dau", "--lake", "lake", "-o", file],
        &[
            "export",
            "dau",
            "--lake",
            "lake",
            "--date",
            "2024-06-02",
            "--output",
            daily,
        ],
    ] {
        let run = w.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("is inside the lake"), "{}", run.stderr);
    }
    assert_eq!(std::fs::read(w.join(file)).unwrap(), before);
    assert!(!w.join(daily).exists());
    // Nor is a folder for it made there before it is refused.
    let new = "lake/new/dau.csv";
    for args in [
        &["sql", "--lake", "lake", "-c", "SELECT 1 AS a", "-o", new][..],
        &["query", "dau", "--lake", "lake", "-o", new],
    ] {
        assert_eq!(w.run(args).code, 2, "{args:?}");
        assert!(!w.join("lake/new").exists(), "{args:?}");
    }
    let args = [
        "query",
        "dau",
        "--lake",
        "lake",
        "-o",
        "lake/_reports/dau.csv",
    ];
    assert_eq!(w.run(&args).code, 0);
    let want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-12"), &[]);
    let run = w.run(&["query", "dau", "--lake", "lake", "--format", "csv"]);
    assert_eq!(run.series(), want);

    let join = "SELECT * FROM dau('2024-06-02', '2024-06-02') d \
                JOIN dau('2024-06-01', '2024-06-01') o ON o.date = d.date - INTERVAL '1 day'";
    for format in ["ndjson", "parquet", "csv"] {
        let out = format!("joined.{format}");
        let run = w.run(&["sql", "--lake", "lake", "-c", join, "-o", &out]);
        assert_eq!(run.code, 2, "{format}: {}", run.stderr);
        assert!(
            run.stderr.contains("two columns are named date"),
            "{}",
            run.stderr
        );
        assert!(!w.join(&out).exists());
    }
    // A statement without columns has nothing for --output: the old file is not taken for its
    // result (it was left as it was, exit 0).
    std::fs::write(w.join("old.csv"), "yesterday's rows\n").unwrap();
    for sql in [
        "SET datafusion.execution.batch_size = 100",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let run = w.run(&["sql", "--lake", "lake", "-c", sql, "-o", "old.csv"]);
        assert_eq!(run.code, 2, "{sql}: {}", run.stderr);
        assert!(run.stderr.contains("nothing to write"), "{}", run.stderr);
        let kept = std::fs::read_to_string(w.join("old.csv")).unwrap();
        assert_eq!(kept, "yesterday's rows\n");
    }
    // Statements that set up the last one (a view, a setting) may come before it: --output holds
    // its rows (a view made for the query was refused: "--output takes one statement", and
    // views live in one run only). One with rows of its own before it is refused.
    let want = oracle_window(&rows, 1, day("2024-06-02"), day("2024-06-03"), &[]);
    let script = "SET datafusion.execution.batch_size = 100; \
                  CREATE VIEW d AS SELECT * FROM dau('2024-06-02', '2024-06-03'); \
                  SELECT * FROM d ORDER BY date";
    let run = w.run(&["sql", "--lake", "lake", "-c", script, "-o", "old.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = std::fs::read_to_string(w.join("old.csv")).unwrap();
    let got: Vec<String> = written.lines().skip(1).map(str::to_string).collect();
    let want: Vec<String> = (want.iter())
        .map(|(d, n)| format!("{d},{}", n.unwrap()))
        .collect();
    assert_eq!(got, want);
    let script = "SELECT 1 AS one; SELECT 2 AS two";
    let run = w.run(&["sql", "--lake", "lake", "-c", script, "-o", "old.csv"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--output holds the rows of the last statement only"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(w.join("old.csv")).unwrap(), written);
}

/// SQL's `current_date` is today in --timezone, as the table functions' `today` is (it was
/// UTC's: a script's `current_date - 1` and `yesterday` were other days for half the world).
#[test]
fn current_date_is_today_in_the_time_zone() {
    let w = Workdir::new();
    lake(&w);
    for (zone, hours) in [("Pacific/Kiritimati", 14), ("Etc/GMT+12", -12)] {
        let want = (chrono::Utc::now() + chrono::Duration::hours(hours)).date_naive();
        let sql = "SELECT current_date AS d";
        let args = [
            "sql",
            "--lake",
            "lake",
            "--timezone",
            zone,
            "--format",
            "csv",
            "-c",
            sql,
        ];
        let run = w.run(&args);
        assert_eq!(run.stdout, format!("d\n{want}\n"), "{zone}: {}", run.stderr);
    }
}
