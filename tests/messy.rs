//! Messy lakes (issue 3): every bad case sits next to good partitions; the message names what is
//! wrong and where, the exit code says what kind of problem, and the good days stay exact.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, Date32Array, Decimal128Array, FixedSizeBinaryArray, Int32Array,
    Int64Array, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field};

use crate::util::*;

const BAD_DAY: &str = "2024-06-05";

fn lake(w: &Workdir) -> Vec<Row> {
    let rows = random_rows(21, day("2024-06-01"), 10, 200);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    rows
}

fn dau(w: &Workdir, extra: &[&str]) -> Run {
    let mut args = vec![
        "query",
        "dau",
        "--lake",
        "lake",
        "--from",
        "2024-06-01",
        "--to",
        "2024-06-10",
        "-f",
        "csv",
    ];
    args.extend_from_slice(extra);
    w.run(&args)
}

fn expected(rows: &[Row]) -> BTreeMap<chrono::NaiveDate, Option<u64>> {
    oracle_window(rows, 1, day("2024-06-01"), day("2024-06-10"), &[])
}

/// A good file's bytes, for truncating and corrupting.
fn good_file(w: &Workdir) -> Vec<u8> {
    std::fs::read(w.join(&format!("lake/date={BAD_DAY}/part-0.parquet"))).unwrap()
}

/// Each kind of unreadable file, beside good ones, in either engine: named with the reason, no
/// number printed, and with --skip-bad-files left out with a warning. A link to a file that is
/// gone is one of them (the file system's listing would leave it out, and the day undercounted,
/// silently).
#[test]
fn unreadable_files_are_named_and_can_be_skipped() {
    let w = Workdir::new();
    let rows = lake(&w);
    let good = good_file(&w);
    // (No bytes: a link to a file that is not there.)
    let cases: [(&str, &str, Option<Vec<u8>>, &str); 6] = [
        (
            "zero-byte",
            "part-9.parquet",
            Some(Vec::new()),
            "the file is empty (0 bytes)",
        ),
        (
            "truncated",
            "part-9.parquet",
            Some(good[..good.len() / 2].to_vec()),
            "not a readable Parquet file",
        ),
        (
            "not parquet",
            "part-9.parquet",
            Some(b"userId,date\n1,2024-06-05\n".to_vec()),
            "not a readable Parquet file",
        ),
        (
            "corrupt pages",
            "part-9.parquet",
            Some(corrupt_pages(&good)),
            "a data page cannot be decoded",
        ),
        (
            "dangling link",
            "part-9.parquet",
            None,
            "a link to /nowhere/part-9.parquet, which does not exist",
        ),
        (
            "dangling link with an odd name",
            "part 9 #ü%.parquet",
            None,
            "a link to /nowhere/part-9.parquet, which does not exist",
        ),
    ];
    for (case, name, bytes, reason) in cases {
        let bad = w.join(&format!("lake/date={BAD_DAY}/{name}"));
        match bytes {
            Some(bytes) => std::fs::write(&bad, &bytes).unwrap(),
            None => std::os::unix::fs::symlink("/nowhere/part-9.parquet", &bad).unwrap(),
        }
        let shown = format!("[DIR]/lake/date={BAD_DAY}/{name}");
        for engine in ["bitmap", "sql"] {
            let run = dau(&w, &["--engine", engine]);
            assert_eq!(run.code, 4, "{case} {engine}: {}", run.stderr);
            assert_eq!(run.stdout, "", "{case} {engine}: no number is printed");
            let stderr = w.redact(&run.stderr);
            assert!(
                stderr.contains(&format!("bad data file ({shown}): {reason}")),
                "{case} {engine}: {stderr}"
            );
            assert!(stderr.contains("--skip-bad-files"), "{case}: {stderr}");
            assert!(
                !stderr.contains("Parquet error: Parquet error"),
                "{case} {engine}: the reason is said once: {stderr}"
            );

            // Skipped: the bad file held no real rows, so every day is still exact.
            let run = dau(&w, &["--skip-bad-files", "--engine", engine]);
            assert_eq!(run.series(), expected(&rows), "{case} {engine}");
            let stderr = w.redact(&run.stderr);
            assert!(
                stderr.contains(&format!("so {BAD_DAY} may be undercounted")),
                "{case} {engine}: {stderr}"
            );
            assert!(stderr.contains(&shown), "{case} {engine}: {stderr}");
        }
        std::fs::remove_file(&bad).unwrap();
    }
}

#[test]
fn a_day_whose_every_file_is_bad_is_null_when_skipped() {
    let w = Workdir::new();
    let rows = lake(&w);
    for part in ["part-0.parquet", "part-1.parquet"] {
        std::fs::write(w.join(&format!("lake/date={BAD_DAY}/{part}")), "garbage").unwrap();
    }
    let run = dau(&w, &["--skip-bad-files"]);
    let mut want = expected(&rows);
    want.insert(day(BAD_DAY), None);
    assert_eq!(run.series(), want);
    assert!(
        run.stderr.contains("skipped 2 bad file(s)"),
        "{}",
        run.stderr
    );
}

/// On/off variables take what shells and container specs write: 1, yes, true; 0, no, false, or
/// empty for off.
#[test]
fn skip_bad_files_from_the_environment_takes_1_and_0() {
    let w = Workdir::new();
    lake(&w);
    std::fs::write(
        w.join(&format!("lake/date={BAD_DAY}/part-0.parquet")),
        "garbage",
    )
    .unwrap();
    for (value, skipped) in [
        ("1", true),
        ("yes", true),
        ("0", false),
        ("", false),
        ("off", false),
    ] {
        let mut command = w.command(&["query", "dau", "--lake", "lake", "-f", "csv"]);
        let run: Run = command
            .env("DAU_SKIP_BAD_FILES", value)
            .output()
            .unwrap()
            .into();
        let want = if skipped { 0 } else { 4 };
        assert_eq!(run.code, want, "DAU_SKIP_BAD_FILES={value}: {}", run.stderr);
        assert_eq!(run.stderr.contains("skipped 1 bad file(s)"), skipped);
    }
}

// Policy: when any file has string ids, every id reads as a string, so 3 and "3" are one user.
#[test]
fn ids_that_drift_from_integers_to_strings_are_one_user_each() {
    let w = Workdir::new();
    let rows = lake(&w);
    let folder = w.join("lake/date=2024-06-11");
    std::fs::create_dir_all(&folder).unwrap();
    let ints = LakeSpec {
        ids: "int64",
        ..LakeSpec::default()
    };
    write_file(
        &folder.join("part-0.parquet"),
        &ints,
        &[1, 2, 3],
        day("2024-06-11"),
    );
    // write_file spells string ids `user-N`; these must be plain numbers to meet the integers.
    write_strings(&folder.join("part-1.parquet"), &["3", "4", "4"]);
    let run = w.run(&[
        "query",
        "dau",
        "--lake",
        "lake",
        "--from",
        "2024-06-01",
        "--to",
        "2024-06-11",
        "-f",
        "csv",
    ]);
    let mut want = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-10"), &[]);
    want.insert(day("2024-06-11"), Some(4));
    assert_eq!(run.series(), want, "{}", run.stderr);
    let run = w.run(&[
        "query",
        "user-days",
        "--lake",
        "lake",
        "--from",
        "2024-06-11",
        "--to",
        "2024-06-11",
        "-f",
        "csv",
    ]);
    assert_eq!(
        run.stdout,
        "userId,date,opens\n1,2024-06-11,1\n2,2024-06-11,1\n3,2024-06-11,2\n4,2024-06-11,2\n"
    );
}

/// Writes `ids` as the one file of `day`'s partition of the lake.
fn write_day(w: &Workdir, day: &str, ids: ArrayRef) {
    let folder = w.join(&format!("lake/date={day}"));
    std::fs::create_dir_all(&folder).unwrap();
    let field = Field::new("userId", ids.data_type().clone(), ids.null_count() > 0);
    write_batch(&folder.join("part-0.parquet"), vec![field], vec![ids]);
}

/// Ids whose files change between signed and unsigned 64-bit integers (a writer moved to
/// ClickHouse's `UInt64`) are one user per value, in both engines. An unsigned id of 2^63 or more
/// among signed ones, or a negative one among unsigned ones, could be another id's bits: the file
/// that holds it is named, never counted as a guess.
#[test]
fn ids_of_either_sign_are_one_user_per_value_unless_they_cannot_be_told_apart() {
    let w = Workdir::new();
    let file = |day: &str, ids: ArrayRef| write_day(&w, day, ids);
    let signed = |ids: &[i64]| Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef;
    let unsigned = |ids: &[u64]| Arc::new(UInt64Array::from(ids.to_vec())) as ArrayRef;
    file("2024-06-01", signed(&[1, 2, 3, 3]));
    file("2024-06-02", unsigned(&[2, 5, 2]));
    let query = |metric: &str, to: &str, engine: &str, extra: &[&str]| {
        let mut args = vec!["query", metric, "--lake", "lake", "--from", "2024-06-01"];
        args.extend(["--to", to, "--engine", engine, "-f", "csv"]);
        args.extend_from_slice(extra);
        w.run(&args)
    };
    for engine in ["bitmap", "sql"] {
        let run = query("mau", "2024-06-02", engine, &[]);
        assert_eq!(
            run.stdout, "date,mau\n2024-06-01,3\n2024-06-02,4\n",
            "{engine}: {}",
            run.stderr
        );
    }
    let run = query("user-days", "2024-06-02", "sql", &[]);
    assert_eq!(
        run.stdout,
        "userId,date,opens\n1,2024-06-01,1\n2,2024-06-01,1\n3,2024-06-01,2\n\
         2,2024-06-02,2\n5,2024-06-02,1\n"
    );

    // The largest unsigned id: counted among unsigned ids (and rolled up); beside signed ids,
    // exit 4, naming its file, from rollups too; skipped on request.
    file("2024-06-03", unsigned(&[u64::MAX, 2]));
    let mut args = vec!["query", "dau", "--lake", "lake", "--from", "2024-06-02"];
    args.extend(["--to", "2024-06-03", "--engine", "bitmap", "-f", "csv"]);
    let run = w.run(&args);
    assert_eq!(
        run.stdout, "date,dau\n2024-06-02,2\n2024-06-03,2\n",
        "{}",
        run.stderr
    );
    let blamed = "date=2024-06-03/part-0.parquet): unsigned ids of 2^63 or more, which the \
                  signed ids of other files cannot hold";
    for engine in ["bitmap", "sql"] {
        let run = query("mau", "2024-06-03", engine, &[]);
        assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{engine}: {}", run.stdout);
        assert!(run.stderr.contains(blamed), "{engine}: {}", run.stderr);
        let run = query("mau", "2024-06-03", engine, &["--skip-bad-files"]);
        assert_eq!(
            run.stdout, "date,mau\n2024-06-01,3\n2024-06-02,4\n2024-06-03,\n",
            "{engine}"
        );
    }
    let check = w.run(&["check", "--lake", "lake"]);
    assert_eq!(check.code, 4, "{}", check.stderr);
    assert!(
        check.stdout.contains("unsigned ids of 2^63 or more"),
        "{}",
        check.stdout
    );

    // `dau sql` types its table by the newest day: unsigned 64-bit, which every id so far fits.
    let sql = |w: &Workdir| {
        let statement = "SELECT COUNT(DISTINCT userId) AS n, MAX(userId) AS top FROM events";
        w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", statement])
    };
    let run = sql(&w);
    assert_eq!(
        run.stdout,
        format!("n,top\n5,{}\n", u64::MAX),
        "{}",
        run.stderr
    );
    file("2024-06-01", signed(&[1, -2]));
    let run = sql(&w);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "date=2024-06-01/part-0.parquet): negative ids, which the unsigned 64-bit ids of \
             other files cannot hold"
        ),
        "{}",
        run.stderr
    );
}

/// Ids stored as whole decimals (as Spark's JDBC reads a NUMBER(19) or BIGINT UNSIGNED column, and
/// as Snowflake unloads its NUMBER(38,0)) are integers by value, in each of Parquet's three ways
/// of storing them: one user with the same integer in another file, and with the same digits in
/// a lake of text ids, in both engines. A decimal beyond the signed 64-bit integers names its file;
/// a decimal with digits after the point is no id.
#[test]
fn whole_decimal_ids_are_integers_by_value() {
    let w = Workdir::new();
    let file = |day: &str, ids: ArrayRef| write_day(&w, day, ids);
    let decimal = |ids: &[i128], precision: u8, scale: i8| {
        let ids = Decimal128Array::from(ids.to_vec());
        Arc::new(ids.with_precision_and_scale(precision, scale).unwrap()) as ArrayRef
    };
    // Stored as 16 bytes, as INT64 and as INT32 (by precision); then beside integers.
    file("2024-06-01", decimal(&[1, 2, 2, -3], 38, 0));
    file("2024-06-02", decimal(&[2, 5], 18, 0));
    file("2024-06-03", decimal(&[5, 7], 9, 0));
    file("2024-06-04", Arc::new(Int64Array::from(vec![7, 8])));
    let query = |metric: &str, from: &str, to: &str, engine: &str, extra: &[&str]| {
        let mut args = vec![
            "query", metric, "--lake", "lake", "--from", from, "--to", to,
        ];
        args.extend(["--engine", engine, "-f", "csv"]);
        args.extend_from_slice(extra);
        w.run(&args)
    };
    let want = "date,mau\n2024-06-01,3\n2024-06-02,4\n2024-06-03,5\n2024-06-04,6\n";
    for engine in ["bitmap", "sql", "bitmap"] {
        let run = query("mau", "2024-06-01", "2024-06-04", engine, &[]);
        assert_eq!(run.stdout, want, "{engine}: {}", run.stderr);
    }
    let run = query("user-days", "2024-06-01", "2024-06-01", "sql", &[]);
    assert_eq!(
        run.stdout,
        "userId,date,opens\n-3,2024-06-01,1\n1,2024-06-01,1\n2,2024-06-01,2\n"
    );
    let statement = "SELECT COUNT(*) AS n FROM events WHERE userId = 2";
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", statement]);
    assert_eq!(run.stdout, "n\n3\n", "{}", run.stderr);

    // 2^63 is beyond the signed 64-bit ids that decimals are counted as, even beside unsigned
    // ones (so that its bits are never another id's): its file is named, and skipped on request.
    file("2024-06-05", decimal(&[1 << 63, 4], 20, 0));
    file("2024-06-06", Arc::new(UInt64Array::from(vec![u64::MAX, 4])));
    let blamed = "date=2024-06-05/part-0.parquet): its user ids are decimals, counted as 64-bit \
                  integers, and some are beyond them";
    for engine in ["bitmap", "sql"] {
        for from in ["2024-06-05", "2024-06-04"] {
            let run = query("dau", from, "2024-06-05", engine, &[]);
            assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
            assert!(run.stderr.contains(blamed), "{engine}: {}", run.stderr);
        }
        let run = query(
            "dau",
            "2024-06-04",
            "2024-06-05",
            engine,
            &["--skip-bad-files"],
        );
        assert_eq!(
            run.stdout, "date,dau\n2024-06-04,2\n2024-06-05,\n",
            "{engine}"
        );
    }

    // Beside text ids, a decimal is its digits: 2 and "2" are one user, "x" another.
    file("2024-06-07", Arc::new(StringArray::from(vec!["2", "x"])));
    let want = "date,mau\n2024-06-04,6\n2024-06-05,8\n2024-06-06,9\n2024-06-07,10\n";
    for engine in ["bitmap", "sql"] {
        let run = query("mau", "2024-06-04", "2024-06-07", engine, &[]);
        assert_eq!(run.stdout, want, "{engine}: {}", run.stderr);
    }

    file("2024-06-08", decimal(&[150, 275], 10, 2));
    let run = query("dau", "2024-06-08", "2024-06-08", "bitmap", &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "column 'userId' has type Decimal128(10, 2): a user id must be an integer or a \
             string (a decimal with digits after the point: write whole ids as DECIMAL(p, 0), \
             an integer type, or text)"
        ),
        "{}",
        run.stderr
    );
}

/// A user column named as `--user-column` but for case (Hive, Trino and Athena write names in
/// lower case; Spark reads Parquet so) is the user column, in both engines, from rollups, in
/// user-days and in `dau sql`; a file with several such columns (and not the exact one) is named.
#[test]
fn a_user_column_named_so_but_for_case_is_the_user_column() {
    let w = Workdir::new();
    let file = |day: &str, name: &str, column: &str, ids: &[i64]| {
        let folder = w.join(&format!("lake/date={day}"));
        std::fs::create_dir_all(&folder).unwrap();
        let field = Field::new(column, DataType::Int64, false);
        let ids = Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef;
        write_batch(&folder.join(name), vec![field], vec![ids]);
    };
    file("2024-06-01", "hive.parquet", "userid", &[1, 2, 2]);
    file("2024-06-01", "spark.parquet", "userId", &[2, 3]);
    file("2024-06-02", "trino.parquet", "USERID", &[3, 4, 4, 4]);
    let query = |metric: &str, engine: &str, extra: &[&str]| {
        let mut args = vec![
            "query", metric, "--lake", "lake", "--engine", engine, "-f", "csv",
        ];
        args.extend_from_slice(extra);
        w.run(&args)
    };
    for engine in ["bitmap", "sql", "bitmap"] {
        let run = query("opens", engine, &[]);
        let rows: Vec<String> = (run.csv().iter()).map(|r| r[..3].join(",")).collect();
        assert_eq!(
            rows,
            [
                "date,opens,active_users",
                "2024-06-01,5,3",
                "2024-06-02,4,2"
            ],
            "{engine}: {}",
            run.stderr
        );
    }
    let run = query("user-days", "sql", &[]);
    assert_eq!(
        run.stdout,
        "userId,date,opens\n1,2024-06-01,1\n2,2024-06-01,3\n3,2024-06-01,1\n\
         3,2024-06-02,1\n4,2024-06-02,3\n"
    );
    let statement = "SELECT COUNT(DISTINCT userId) AS n FROM events WHERE userId > 1";
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", statement]);
    assert_eq!(run.stdout, "n\n3\n", "{}", run.stderr);

    // Two columns that are the user column but for case: which one is meant is not guessed.
    let folder = w.join("lake/date=2024-06-03");
    std::fs::create_dir_all(&folder).unwrap();
    let fields = vec![
        Field::new("userid", DataType::Int64, false),
        Field::new("USERID", DataType::Int64, false),
    ];
    let ids = |v: i64| Arc::new(Int64Array::from(vec![v])) as ArrayRef;
    write_batch(&folder.join("both.parquet"), fields, vec![ids(5), ids(6)]);
    for engine in ["bitmap", "sql"] {
        let run = query("dau", engine, &["--from", "2024-06-01"]);
        assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
        assert!(
            run.stderr.contains("both.parquet)")
                && run.stderr.contains(
                    "columns found: userid, USERID (userid, USERID differ from 'userId' in case \
                     only: name one exactly)"
                ),
            "{engine}: {}",
            run.stderr
        );
    }
}

/// Ids stored as bytes without the UTF-8 annotation (as Impala and older Hive write strings) are
/// text, one user with the same text in a file that has the annotation, in both engines; a file
/// whose bytes are not all UTF-8 is named (exit 4), never read unchecked.
#[test]
fn ids_stored_as_bytes_are_text_when_every_one_is_utf8() {
    let w = Workdir::new();
    let file = |day: &str, ids: ArrayRef| write_day(&w, day, ids);
    let bytes = |ids: &[&[u8]]| Arc::new(BinaryArray::from(ids.to_vec())) as ArrayRef;
    file("2024-06-01", bytes(&[b"a", b"b", b"a"]));
    file("2024-06-02", Arc::new(StringArray::from(vec!["a", "c"])));
    let query = |metric: &str, engine: &str, extra: &[&str]| {
        let mut args = vec!["query", metric, "--lake", "lake", "--from", "2024-06-01"];
        args.extend(["--engine", engine, "-f", "csv"]);
        args.extend_from_slice(extra);
        w.run(&args)
    };
    for engine in ["bitmap", "sql"] {
        let run = query("mau", engine, &[]);
        assert_eq!(
            run.stdout, "date,mau\n2024-06-01,2\n2024-06-02,3\n",
            "{engine}: {}",
            run.stderr
        );
    }
    let run = query("user-days", "sql", &[]);
    assert_eq!(
        run.stdout,
        "userId,date,opens\na,2024-06-01,2\nb,2024-06-01,1\na,2024-06-02,1\nc,2024-06-02,1\n"
    );

    file("2024-06-03", bytes(&[b"a", b"\xff"]));
    let blamed = "date=2024-06-03/part-0.parquet): its user ids are bytes without the UTF-8 \
                  annotation, read as text, and some are not UTF-8";
    for engine in ["bitmap", "sql"] {
        let run = query("mau", engine, &[]);
        assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
        assert!(run.stderr.contains(blamed), "{engine}: {}", run.stderr);
        let run = query("mau", engine, &["--skip-bad-files"]);
        assert_eq!(
            run.stdout, "date,mau\n2024-06-01,2\n2024-06-02,3\n2024-06-03,\n",
            "{engine}"
        );
    }
    let statement = "SELECT COUNT(DISTINCT userId) FROM events";
    let run = w.run(&["sql", "--lake", "lake", "-c", statement]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains(blamed), "{}", run.stderr);
}

/// 16-byte ids (Parquet's UUID, as DuckDB and ClickHouse write them) are their UUID text, one
/// user with the same UUID written as text in another file, in both engines and in `dau sql`
/// (where a filter on the text finds them).
#[test]
fn uuid_ids_are_their_text() {
    let w = Workdir::new();
    let uuid = |last: u8| {
        let mut id = [0x55u8; 16];
        id[15] = last;
        id
    };
    let uuids = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
        [Some(uuid(1)), Some(uuid(2)), Some(uuid(1)), None].into_iter(),
        16,
    )
    .unwrap();
    write_day(&w, "2024-06-01", Arc::new(uuids));
    let text = |last: u8| format!("55555555-5555-5555-5555-5555555555{last:02x}");
    let texts = StringArray::from(vec![text(2), text(3)]);
    write_day(&w, "2024-06-02", Arc::new(texts));
    for engine in ["bitmap", "sql"] {
        let args = [
            "query", "mau", "--lake", "lake", "--engine", engine, "-f", "csv",
        ];
        let run = w.run(&args);
        assert_eq!(
            run.stdout, "date,mau\n2024-06-01,2\n2024-06-02,3\n",
            "{engine}: {}",
            run.stderr
        );
    }
    let run = w.run(&["query", "user-days", "--lake", "lake", "-f", "csv"]);
    let want = format!(
        "userId,date,opens\n{},2024-06-01,2\n{},2024-06-01,1\n{},2024-06-02,1\n{},2024-06-02,1\n",
        text(1),
        text(2),
        text(2),
        text(3)
    );
    assert_eq!(run.stdout, want, "{}", run.stderr);
    let statement = format!(
        "SELECT date, COUNT(*) AS n FROM events WHERE userId = '{}' GROUP BY date",
        text(1)
    );
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", &statement]);
    assert_eq!(run.stdout, "date,n\n2024-06-01,2\n", "{}", run.stderr);
}

/// A file of nullable ids, optionally with a `date` column holding `date_days` (days since 1970).
pub fn write_nullable(path: &Path, ids: &[Option<i64>], date_days: Option<i32>) {
    let mut fields = vec![Field::new("userId", DataType::Int64, true)];
    let mut columns: Vec<datafusion::arrow::array::ArrayRef> =
        vec![Arc::new(Int64Array::from(ids.to_vec()))];
    if let Some(d) = date_days {
        fields.push(Field::new("date", DataType::Date32, false));
        columns.push(Arc::new(Date32Array::from_value(d, ids.len())));
    }
    write_batch(path, fields, columns);
}

#[test]
fn a_file_without_the_user_column_is_a_bad_file() {
    let w = Workdir::new();
    let rows = lake(&w);
    let other = LakeSpec {
        user_column: "uid",
        ..LakeSpec::default()
    };
    write_file(
        &w.join(&format!("lake/date={BAD_DAY}/part-9.parquet")),
        &other,
        &[5, 6],
        day(BAD_DAY),
    );
    let run = dau(&w, &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        w.redact(&run.stderr).contains(&format!(
            "bad data file ([DIR]/lake/date={BAD_DAY}/part-9.parquet): no column 'userId'; columns found: uid"
        )),
        "{}",
        run.stderr
    );
    let run = dau(&w, &["--skip-bad-files"]);
    assert_eq!(run.series(), expected(&rows));
    // As an environment variable: on, off, or refused (`maybe` was taken for on).
    let args = ["query", "dau", "--lake", "lake", "-f", "csv"];
    let with = |value: &str| -> Run {
        (w.command(&args).env("DAU_SKIP_BAD_FILES", value))
            .output()
            .unwrap()
            .into()
    };
    assert_eq!(with("yes").series(), expected(&rows));
    assert_eq!(with("0").code, 4);
    let run = with("maybe");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("invalid value 'maybe' for '--skip-bad-files[=<BOOL>]'"),
        "{}",
        run.stderr
    );
    // clap names the flag; the value was the variable's, and that is said too.
    let note = "note: the value is DAU_SKIP_BAD_FILES's, from the environment";
    assert!(run.stderr.contains(note), "{}", run.stderr);
    // Given on the command line as well, the flag's value is the one refused, and no note.
    let mut cmd = w.command(&[&args[..], &["--skip-bad-files=maybe"]].concat());
    let run: Run = cmd
        .env("DAU_SKIP_BAD_FILES", "yes")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
    // The flag wins over the variable: a stale bad value is not read (it refused the flag), and
    // `=false` turns the variable's on off.
    let given = |flag: &str, value: &str| -> Run {
        let mut cmd = w.command(&[&args[..], &[flag]].concat());
        cmd.env("DAU_SKIP_BAD_FILES", value)
            .output()
            .unwrap()
            .into()
    };
    assert_eq!(given("--skip-bad-files", "maybe").series(), expected(&rows));
    assert_eq!(given("--skip-bad-files=false", "yes").code, 4);
}

#[test]
fn null_user_ids_are_never_users_and_are_counted_in_a_warning() {
    let w = Workdir::new();
    let mut rows = lake(&w);
    let folder = w.join(&format!("lake/date={BAD_DAY}"));
    write_nullable(
        &folder.join("part-7.parquet"),
        &[Some(999_999), None, None, Some(999_999), None],
        None,
    );
    rows.push((day(BAD_DAY), 999_999));
    let run = dau(&w, &[]);
    assert_eq!(run.series(), expected(&rows));
    assert!(
        run.stderr.contains(&format!(
            "ignored 3 row(s) with a NULL userId (never counted as a user): {BAD_DAY}: 3"
        )),
        "{}",
        run.stderr
    );
    // Opens leave them out too: the day's opens are the oracle's rows, not the file's.
    let run = w.run(&[
        "query", "opens", "--lake", "lake", "--from", BAD_DAY, "--to", BAD_DAY, "-f", "csv",
    ]);
    let opens = rows.iter().filter(|r| r.0 == day(BAD_DAY)).count() + 1; // 999_999 opened twice
    assert_eq!(run.csv()[1][1], opens.to_string());
}

/// A date column that disagrees with its partition fails every query, whether the footer's
/// statistics say so, the writer kept none (then the column is read), or the column is
/// dictionary-encoded (a pandas categorical).
#[test]
fn a_date_column_that_disagrees_with_its_partition_fails() {
    use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
    // 2024-06-04 is day 19878 since 1970-01-01.
    let dates = Date32Array::from_value(19878, 2);
    let categorical = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Date32));
    let no_statistics = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::None)
        .build();
    let writers: [(&str, DataType, ArrayRef, WriterProperties); 5] = [
        (
            "statistics",
            DataType::Date32,
            Arc::new(dates.clone()),
            WriterProperties::default(),
        ),
        (
            "none",
            DataType::Date32,
            Arc::new(dates.clone()),
            no_statistics.clone(),
        ),
        // YYYYMMDD integers, as Hive tables and ETL jobs write days (they were never checked).
        (
            "yyyymmdd",
            DataType::Int32,
            Arc::new(Int32Array::from_value(20240604, 2)),
            WriterProperties::default(),
        ),
        (
            "yyyymmdd without statistics",
            DataType::Int64,
            Arc::new(Int64Array::from_value(20240604, 2)),
            no_statistics,
        ),
        (
            "categorical",
            categorical.clone(),
            datafusion::arrow::compute::cast(&dates, &categorical).unwrap(),
            WriterProperties::default(),
        ),
    ];
    for (writer, date_type, dates, props) in writers {
        let w = Workdir::new();
        let rows = lake(&w);
        write_props(
            &w.join(&format!("lake/date={BAD_DAY}/part-8.parquet")),
            vec![
                Field::new("userId", DataType::Int64, false),
                Field::new("date", date_type, false),
            ],
            vec![Arc::new(Int64Array::from(vec![1, 2])), dates],
            props,
        );
        let says = "part-8.parquet): the folder says 2024-06-05, the date column holds 2024-06-04 \
                    to 2024-06-04";
        for run in [
            dau(&w, &[]),
            dau(&w, &["--engine", "sql"]),
            w.run(&["sql", "--lake", "lake", "-c", "SELECT COUNT(*) FROM events"]),
        ] {
            assert_eq!(run.code, 4, "{writer}: {}", run.stderr);
            assert_eq!(run.stdout, "", "{writer}");
            assert!(run.stderr.contains(says), "{writer}: {}", run.stderr);
        }
        let run = w.run(&["check", "--lake", "lake"]);
        assert_eq!(run.code, 4, "{writer}: {}", run.stdout);
        assert!(
            run.stdout.contains("date mismatch"),
            "{writer}: {}",
            run.stdout
        );
        // A range without that partition is unaffected.
        let run = w.run(&[
            "query",
            "dau",
            "--lake",
            "lake",
            "--from",
            "2024-06-06",
            "--to",
            "2024-06-10",
            "-f",
            "csv",
        ]);
        assert_eq!(
            run.series(),
            oracle_window(&rows, 1, day("2024-06-06"), day("2024-06-10"), &[])
        );
    }

    // Such a file in the newest day, which types `dau sql`'s table: the statements that read
    // that day fail, not the session (every statement failed, `\d events` too).
    let w = Workdir::new();
    let rows = lake(&w);
    write_nullable(
        &w.join("lake/date=2024-06-10/part-8.parquet"),
        &[Some(1)],
        Some(19878),
    );
    let sql = |statement: &str| w.run(&["sql", "--lake", "lake", "-c", statement]);
    assert_eq!(sql("\\d events").code, 0);
    let run = sql("SELECT COUNT(DISTINCT userId) AS n FROM events WHERE date = '2024-06-06'");
    let want = oracle_window(&rows, 1, day("2024-06-06"), day("2024-06-06"), &[]);
    assert!(
        run.stdout
            .contains(&format!(" {} ", want[&day("2024-06-06")].unwrap())),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = sql("SELECT COUNT(*) FROM events");
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("the folder says 2024-06-10"),
        "{}",
        run.stderr
    );
}

// A `date` column of integers holds YYYYMMDD days (checked above, and here agreeing with its
// folder); integers of another kind (days since 1970) are no dates, and are not checked.
#[test]
fn a_date_column_of_integers_is_not_taken_for_dates() {
    let w = Workdir::new();
    let mut rows = lake(&w);
    for (name, user, date) in [("part-6", 424_242, 20240605), ("part-7", 424_243, 19_879)] {
        write_batch(
            &w.join(&format!("lake/date={BAD_DAY}/{name}.parquet")),
            vec![
                Field::new("userId", DataType::Int64, false),
                Field::new("date", DataType::Int32, false),
            ],
            vec![
                Arc::new(Int64Array::from(vec![user])) as ArrayRef,
                Arc::new(Int32Array::from(vec![date])),
            ],
        );
        rows.push((day(BAD_DAY), user as u64));
    }
    let run = dau(&w, &[]);
    assert_eq!(run.series(), expected(&rows), "{}", run.stderr);
    assert_eq!(w.run(&["check", "--lake", "lake"]).code, 0);
}

#[test]
fn folders_that_name_no_day_are_reported_and_skipped() {
    let w = Workdir::new();
    let rows = lake(&w);
    for name in [
        "date=__HIVE_DEFAULT_PARTITION__",
        "date=2024-13-45",
        "date=latest",
    ] {
        std::fs::create_dir_all(w.join(&format!("lake/{name}"))).unwrap();
        std::fs::write(w.join(&format!("lake/{name}/part-0.parquet")), "not read").unwrap();
    }
    let run = dau(&w, &[]);
    assert_eq!(run.series(), expected(&rows));
    assert!(
        run.stderr.contains("skipped 3 folder(s) that do not name a day: date=2024-13-45, date=__HIVE_DEFAULT_PARTITION__, date=latest"),
        "{}",
        run.stderr
    );
}

#[test]
fn memory_limit_too_small_fails_clearly() {
    // (See also `a_day_too_big_for_the_memory_limit_is_counted_with_sql`.)
    let w = Workdir::new();
    lake(&w);
    let run = dau(&w, &["--memory-limit", "1K"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("needs more memory than --memory-limit 1K allows"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    let run = dau(&w, &["--memory-limit", "256M"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dau(&w, &["--memory-limit", "lots"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("bad --memory-limit 'lots'"),
        "{}",
        run.stderr
    );
}

/// A day whose users do not fit in --memory-limit as bitmaps is counted with the SQL, which
/// spills, with a warning (it failed, exit 1, though the SQL engine counts it in that limit);
/// `--engine bitmap` still fails.
#[test]
fn a_day_too_big_for_the_memory_limit_is_counted_with_sql() {
    let w = Workdir::new();
    let made = ["gen", "--out", "lake", "--users", "1000000", "--days", "1"];
    assert_eq!(w.run(&made).code, 0);
    let users: std::collections::HashSet<u64> = read_lake_rows(&w.join("lake"))
        .iter()
        .map(|r| r.1)
        .collect();
    let args = [
        "query",
        "dau",
        "--lake",
        "lake",
        "--format",
        "csv",
        "--rollups",
        "off",
    ];
    let limited = [&args[..], &["--memory-limit", "32M"]].concat();
    let run = w.run(&limited);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("date,dau\n2024-06-01,{}\n", users.len())
    );
    assert!(
        run.stderr.contains("counted with SQL instead"),
        "{}",
        run.stderr
    );
    let run = w.run(&[&limited[..], &["--engine", "bitmap"]].concat());
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--memory-limit 32M"), "{}", run.stderr);
}

/// What queries killed while spilling left in the temporary folder (their `dau-spill-PID`) is
/// removed by the next SQL run with a memory limit; a running process's folder is kept; a run
/// removes its own as it ends.
#[test]
fn what_killed_queries_spilled_is_removed() {
    let w = Workdir::new();
    lake(&w);
    let temp = w.join("tmp");
    for (folder, file) in [("dau-spill-999999999", "spill.arrow"), ("dau-spill-1", "x")] {
        std::fs::create_dir_all(temp.join(folder)).unwrap();
        std::fs::write(temp.join(folder).join(file), "spilled").unwrap();
    }
    let run: Run = w
        .command(&[
            "query",
            "dau",
            "--lake",
            "lake",
            "--engine",
            "sql",
            "--memory-limit",
            "64M",
        ])
        .env("TMPDIR", &temp)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!temp.join("dau-spill-999999999").exists());
    assert!(temp.join("dau-spill-1/x").exists());
    // Nor does the run leave its own folder.
    let left: Vec<String> = std::fs::read_dir(&temp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["dau-spill-1"]);
}

/// Every file below `root` with its bytes.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(
                    path.to_string_lossy().into_owned(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn no_input_file_is_ever_changed() {
    let w = Workdir::new();
    lake(&w);
    let folder = w.join(&format!("lake/date={BAD_DAY}"));
    std::fs::write(folder.join("part-9.parquet"), corrupt_pages(&good_file(&w))).unwrap();
    std::fs::write(folder.join("part-10.parquet"), "").unwrap();
    let before = snapshot(&w.join("lake"));
    for args in [&[][..], &["--skip-bad-files"][..]] {
        for metric in ["dau", "mau", "opens", "user-days"] {
            let mut all = vec!["query", metric, "--lake", "lake"];
            all.extend_from_slice(args);
            w.run(&all);
        }
    }
    assert_eq!(w.run(&["check", "--lake", "lake"]).code, 4);
    assert_eq!(snapshot(&w.join("lake")), before);
}

// `dau sql` types ids by the newest day; text ids in an older day are named when a statement reads
// that day, never counted under the wrong type.
#[test]
fn sql_names_text_ids_in_an_older_day() {
    let w = Workdir::new();
    let rows = lake(&w);
    let file = "lake/date=2024-06-05/part-7.parquet";
    write_strings(&w.join(file), &["3", "x"]);
    let sql = |filter: &str| {
        let statement = format!("SELECT COUNT(DISTINCT userId) AS users FROM events {filter}");
        w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", &statement])
    };
    let run = sql("");
    assert_eq!(run.code, 4, "{}", run.stderr);
    let stderr = w.redact(&run.stderr);
    assert!(
        stderr.contains(&format!(
            "user ids are text in this file, integers in the newest day's files ([DIR]/{file})"
        )),
        "{stderr}"
    );
    let run = sql("WHERE date >= '2024-06-06'");
    let users: std::collections::HashSet<u64> = rows
        .iter()
        .filter(|r| r.0 >= day("2024-06-06"))
        .map(|r| r.1)
        .collect();
    assert_eq!(
        run.stdout,
        format!("users\n{}\n", users.len()),
        "{}",
        run.stderr
    );
}

/// A page whose checksum (CRC-32, as Spark's and pyarrow's writers can add) does not match its
/// bytes is a bad file, by both engines and `dau check`: an uncompressed page with 60 bytes
/// flipped decoded into other ids, and dau counted 999 users of 1000, exit 0.
#[test]
fn a_page_whose_checksum_fails_is_a_bad_file() {
    let w = Workdir::new();
    let script = r#"
import os, sys, pyarrow as pa, pyarrow.parquet as pq
for d in ["2024-06-01", "2024-06-02"]:
    os.makedirs(f"{sys.argv[1]}/date={d}")
    pq.write_table(pa.table({"userId": pa.array(range(1000), pa.int64())}),
                   f"{sys.argv[1]}/date={d}/a.parquet", write_page_checksum=True,
                   compression="none", use_dictionary=False)
path = f"{sys.argv[1]}/date=2024-06-02/a.parquet"
data = bytearray(open(path, "rb").read())
for i in range(2000, 2060):
    data[i] ^= 0x55
open(path, "wb").write(data)
"#;
    python(w.path(), &["-c", script, &w.join("lake").to_string_lossy()]);
    let says = "bad data file ([DIR]/lake/date=2024-06-02/a.parquet): a data page cannot be \
                decoded: ";
    for engine in ["bitmap", "sql"] {
        let run = w.run(&["query", "dau", "--lake", "lake", "--engine", engine]);
        assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
        let stderr = w.redact(&run.stderr);
        assert!(stderr.contains(says), "{engine}: {stderr}");
        assert!(
            stderr.contains("Page CRC checksum mismatch"),
            "{engine}: {stderr}"
        );
        // Left out, the day is unknown; the sound day counts its 1000 users (0 to 999).
        let run = w.run(&[
            "query",
            "dau",
            "--lake",
            "lake",
            "--engine",
            engine,
            "--skip-bad-files",
            "-f",
            "csv",
        ]);
        assert_eq!(
            run.stdout, "date,dau\n2024-06-01,1000\n2024-06-02,\n",
            "{engine}"
        );
    }
    let run = w.run(&["check", "--lake", "lake"]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(
        run.stdout.contains("Page CRC checksum mismatch"),
        "{}",
        run.stdout
    );
}
