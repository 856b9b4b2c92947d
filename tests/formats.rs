//! Output formats: each read back and compared, with stable names and types; the table as a snapshot.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::*;

/// A small fixed lake: users 1..=3 on 06-01, 2..=3 on 06-02, nothing on 06-03 (missing), 4 on 06-04.
fn small_lake(w: &Workdir) {
    let rows: Vec<Row> = [
        ("2024-06-01", 1),
        ("2024-06-01", 2),
        ("2024-06-01", 2),
        ("2024-06-01", 3),
        ("2024-06-02", 2),
        ("2024-06-02", 3),
        ("2024-06-04", 4),
    ]
    .iter()
    .map(|(d, u)| (day(d), *u))
    .collect();
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
}

const RANGE: [&str; 4] = ["--from", "2024-06-01", "--to", "2024-06-04"];

fn query(w: &Workdir, metric: &str, extra: &[&str]) -> Run {
    let mut args = vec!["query", metric, "--lake", "lake"];
    args.extend_from_slice(&RANGE);
    args.extend_from_slice(extra);
    w.run(&args)
}

#[test]
fn table() {
    let w = Workdir::new();
    small_lake(&w);
    let run = query(&w, "dau", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("dau_table", run.stdout);
    insta::assert_snapshot!("dau_table_stderr", w.redact(&run.stderr));
    let run = query(&w, "opens", &[]);
    insta::assert_snapshot!("opens_table", run.stdout);
}

#[test]
fn csv() {
    let w = Workdir::new();
    small_lake(&w);
    let run = query(&w, "dau", &["--format", "csv"]);
    assert_eq!(
        run.stdout,
        "date,dau\n2024-06-01,3\n2024-06-02,2\n2024-06-03,\n2024-06-04,1\n"
    );
}

/// `--output` into a folder not yet made makes it, as `dau export` does; `--output` naming a
/// folder is a usage error before anything is read.
#[test]
fn output_into_a_new_folder_makes_it_and_a_folder_itself_is_refused() {
    let w = Workdir::new();
    small_lake(&w);
    let run = query(&w, "dau", &["--output", "reports/june/dau.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(w.join("reports/june/dau.csv")).unwrap();
    assert_eq!(
        text,
        "date,dau\n2024-06-01,3\n2024-06-02,2\n2024-06-03,\n2024-06-04,1\n"
    );
    let run = query(&w, "dau", &["--output", "reports"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot write into reports: it is a folder"),
        "{}",
        run.stderr
    );
}

/// `--output` onto a named pipe (what `/dev/stdout` or `>(gzip > out.gz)` can be) writes into
/// it rather than putting a file in its place; onto a symbolic link, the file it points to gets
/// the rows and the link stays.
#[test]
fn output_into_a_pipe_or_through_a_link_leaves_it_in_place() {
    use std::os::unix::fs::FileTypeExt;
    use std::process::{Command, Stdio};

    let w = Workdir::new();
    small_lake(&w);
    let want = query(&w, "dau", &["--format", "csv"]).stdout;
    let pipe = w.join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&pipe)
            .status()
            .unwrap()
            .success()
    );
    let mut reader = Command::new("cat")
        .arg(&pipe)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let run = query(&w, "dau", &["--format", "csv", "--output", "pipe"]);
    let kind = std::fs::symlink_metadata(&pipe).unwrap().file_type();
    if !kind.is_fifo() {
        reader.kill().unwrap();
    }
    assert!(
        kind.is_fifo(),
        "the pipe was replaced: {kind:?}; {}",
        run.stderr
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let read = reader.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(read.stdout).unwrap(), want);

    std::fs::write(w.join("real.csv"), "old rows\n").unwrap();
    std::os::unix::fs::symlink("real.csv", w.join("link.csv")).unwrap();
    let run = query(&w, "dau", &["--output", "link.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let link = std::fs::symlink_metadata(w.join("link.csv")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(w.join("real.csv")).unwrap(), want);

    // `-o /dev/stdout >> dau.log` (a cron line) appends to the log: the file behind stdout was
    // replaced by the rows alone before.
    let log = w.join("dau.log");
    std::fs::write(&log, "yesterday's rows\n").unwrap();
    for _ in 0..2 {
        let appending = std::fs::File::options().append(true).open(&log).unwrap();
        let status = (w.command(&["query", "dau", "--lake", "lake", "-f", "csv"]))
            .args(["-o", "/dev/stdout"])
            .stdout(appending)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged, format!("yesterday's rows\n{want}{want}"));
}

#[test]
fn json_and_ndjson() {
    let w = Workdir::new();
    small_lake(&w);
    let run = query(&w, "dau", &["--format", "json"]);
    assert_eq!(
        run.stdout,
        "[{\"date\":\"2024-06-01\",\"dau\":3},{\"date\":\"2024-06-02\",\"dau\":2},\
         {\"date\":\"2024-06-03\",\"dau\":null},{\"date\":\"2024-06-04\",\"dau\":1}]\n"
    );
    let run = query(&w, "dau", &["--format", "ndjson"]);
    assert_eq!(
        run.stdout,
        "{\"date\":\"2024-06-01\",\"dau\":3}\n{\"date\":\"2024-06-02\",\"dau\":2}\n\
         {\"date\":\"2024-06-03\",\"dau\":null}\n{\"date\":\"2024-06-04\",\"dau\":1}\n"
    );
}

#[test]
fn parquet_and_csv_files() {
    let w = Workdir::new();
    small_lake(&w);
    // The format comes from the extension.
    let run = query(&w, "wau", &["--output", "out.parquet"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);
    let file = std::fs::File::open(w.join("out.parquet")).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let schema = batches[0].schema();
    assert_eq!(schema.field(0).name(), "date");
    assert_eq!(schema.field(0).data_type(), &DataType::Date32);
    assert_eq!(schema.field(1).name(), "wau");
    assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    let dates: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| d.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    // 2024-06-01 is day 19875 since 1970-01-01.
    assert_eq!(dates, ["19875", "19876", "19877", "19878"]);
    let wau = Arc::clone(batches[0].column(1));
    let wau = wau.as_primitive::<Int64Type>();
    assert_eq!((wau.value(0), wau.value(1)), (3, 3));
    assert!(
        wau.is_null(2) && wau.is_null(3),
        "06-03 is missing: its window and the next are NULL"
    );

    let run = query(&w, "user-days", &["-o", "ud.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(w.join("ud.csv")).unwrap();
    assert_eq!(
        text,
        "userId,date,opens\n1,2024-06-01,1\n2,2024-06-01,2\n3,2024-06-01,1\n2,2024-06-02,1\n3,2024-06-02,1\n4,2024-06-04,1\n"
    );
    // No temp file is left behind.
    let names: Vec<String> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn string_ids_are_plain_utf8_in_parquet() {
    let w = Workdir::new();
    let rows = vec![(day("2024-06-01"), 5), (day("2024-06-01"), 6)];
    write_lake(
        &w.join("lake"),
        &LakeSpec {
            ids: "string",
            ..LakeSpec::default()
        },
        &rows,
        &[],
    );
    let run = w.run(&[
        "query",
        "user-days",
        "--lake",
        "lake",
        "--output",
        "ud.parquet",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = std::fs::File::open(w.join("ud.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(reader.schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(reader.schema().field(2).data_type(), &DataType::Int64);
}
