//! Every error case: its exit code and its message (snapshots), from the same run.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::util::*;

fn lake(w: &Workdir) {
    let rows = random_rows(5, day("2024-06-01"), 10, 50);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
}

/// Runs `args`, checks the exit code and that stdout is empty, and returns stderr with paths redacted.
fn fails(w: &Workdir, args: &[&str], code: i32) -> String {
    let run = w.run(args);
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "", "no data on a failure");
    w.redact(&run.stderr)
}

#[test]
fn lake_that_does_not_exist() {
    let w = Workdir::new();
    insta::assert_snapshot!(fails(&w, &["query", "dau", "--lake", "nowhere"], 3));
}

#[test]
fn no_lake_given() {
    let w = Workdir::new();
    insta::assert_snapshot!(fails(&w, &["query", "dau"], 2));
}

#[test]
fn no_partitions_in_the_range() {
    let w = Workdir::new();
    lake(&w);
    insta::assert_snapshot!(fails(
        &w,
        &[
            "query",
            "dau",
            "--lake",
            "lake",
            "--from",
            "2023-01-01",
            "--to",
            "2023-01-31"
        ],
        4
    ));
}

#[test]
fn no_user_column() {
    let w = Workdir::new();
    let rows = vec![(day("2024-06-01"), 1)];
    write_lake(
        &w.join("lake"),
        &LakeSpec {
            user_column: "uid",
            ..LakeSpec::default()
        },
        &rows,
        &[],
    );
    insta::assert_snapshot!(fails(&w, &["query", "dau", "--lake", "lake"], 4));
}

/// Ids written as floats (as pandas writes integers with a missing value) are refused, with how
/// to write them, by both engines.
/// What a query of the lake fails with (exit 4), the same from both engines.
fn from_both_engines(w: &Workdir) -> String {
    let bitmap = fails(w, &["query", "dau", "--lake", "lake"], 4);
    let sql = fails(w, &["query", "dau", "--lake", "lake", "--engine", "sql"], 4);
    assert_eq!(bitmap, sql);
    bitmap
}

#[test]
fn float_user_ids() {
    use datafusion::arrow::array::Float64Array;
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::parquet::file::properties::WriterProperties;

    let w = Workdir::new();
    std::fs::create_dir_all(w.join("lake/date=2024-06-01")).unwrap();
    write_props(
        &w.join("lake/date=2024-06-01/part-0.parquet"),
        vec![Field::new("userId", DataType::Float64, true)],
        vec![std::sync::Arc::new(Float64Array::from(vec![
            Some(1.0),
            None,
        ]))],
        WriterProperties::default(),
    );
    insta::assert_snapshot!(from_both_engines(&w));
}

#[test]
fn bad_from() {
    let w = Workdir::new();
    lake(&w);
    insta::assert_snapshot!(fails(
        &w,
        &["query", "dau", "--lake", "lake", "--from", "June 1st"],
        2
    ));
}

/// `--from yesterday` on a lake whose last day is older (--to left to default), or a `--to`
/// before the lake: no partition, as a stale lake is (exit 4), not a backwards range (exit 2). A
/// day the lake lacks within its days is said to be so (it was told to choose days inside them).
#[test]
fn one_end_outside_the_lake() {
    let w = Workdir::new();
    lake(&w);
    let after = fails(
        &w,
        &["query", "dau", "--lake", "lake", "--from", "2024-07-01"],
        4,
    );
    let before = fails(&w, &["check", "--lake", "lake", "--to", "2024-05-01"], 4);
    std::fs::remove_dir_all(w.join("lake/date=2024-06-05")).unwrap();
    let args = [
        "export",
        "dau",
        "--lake",
        "lake",
        "--date",
        "2024-06-05",
        "-o",
        "d.csv",
    ];
    let within = fails(&w, &args, 4);
    insta::assert_snapshot!(format!("{after}{before}{within}"));
}

#[test]
fn from_after_to() {
    let w = Workdir::new();
    lake(&w);
    let args = [
        "query",
        "dau",
        "--lake",
        "lake",
        "--from",
        "2024-06-05",
        "--to",
        "2024-06-01",
    ];
    insta::assert_snapshot!(fails(&w, &args, 2));
}

#[test]
fn calendar_on_dau() {
    let w = Workdir::new();
    lake(&w);
    insta::assert_snapshot!(fails(
        &w,
        &["query", "dau", "--lake", "lake", "--calendar"],
        2
    ));
}

#[test]
fn parquet_to_stdout() {
    let w = Workdir::new();
    lake(&w);
    insta::assert_snapshot!(fails(
        &w,
        &["query", "dau", "--lake", "lake", "--format", "parquet"],
        2
    ));
}

#[test]
fn folder_without_partitions() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.join("lake/a")).unwrap();
    std::fs::create_dir_all(w.join("lake/b")).unwrap();
    insta::assert_snapshot!(fails(&w, &["query", "dau", "--lake", "lake"], 4));
    // Only folders of a day key that name no day (hours of a timestamp in UTC), named.
    for hour in ["2024-06-01 04%3A00%3A00Z", "2024-06-02 04%3A00%3A00Z"] {
        std::fs::create_dir_all(w.join(&format!("hours/date={hour}"))).unwrap();
    }
    let hours = fails(&w, &["query", "dau", "--lake", "hours"], 4);
    assert!(
        hours.ends_with(
            "; found only folders that name no day: date=2024-06-01 04%3A00%3A00Z, \
             date=2024-06-02 04%3A00%3A00Z (a timestamp with a zone names a day only at \
             midnight)\n"
        ),
        "{hours}"
    );
    // Files with no folder per day (a table written without partitionBy), named.
    std::fs::create_dir_all(w.join("flat")).unwrap();
    for file in ["part-0.parquet", "part-1.parquet", "_SUCCESS"] {
        std::fs::write(w.join(&format!("flat/{file}")), "").unwrap();
    }
    let flat = fails(&w, &["query", "dau", "--lake", "flat"], 4);
    assert!(
        flat.ends_with(
            "; found files (part-0.parquet and 1 more) with no folder per day: dau counts a lake \
             partitioned by day, as Spark's partitionBy(\"date\") writes it\n"
        ),
        "{flat}"
    );
}

/// `--lake` naming a data file, or one day's partition, instead of the lake's folder.
#[test]
fn lake_that_is_a_file_or_a_partition() {
    let w = Workdir::new();
    lake(&w);
    let file = "lake/date=2024-06-01/part-0.parquet";
    insta::assert_snapshot!(fails(&w, &["query", "dau", "--lake", file], 2));
    let partition = "lake/date=2024-06-01";
    insta::assert_snapshot!(fails(&w, &["query", "dau", "--lake", partition], 4));
}

/// A Delta Lake, Hudi or Iceberg table's folders keep files its log has dropped: refused, not
/// counted.
#[test]
fn table_format_with_a_log() {
    let w = Workdir::new();
    lake(&w);
    std::fs::create_dir(w.join("lake/_delta_log")).unwrap();
    std::fs::write(w.join("lake/_delta_log/00000000000000000000.json"), "{}\n").unwrap();
    insta::assert_snapshot!(fails(&w, &["query", "dau", "--lake", "lake"], 2));
    std::fs::rename(w.join("lake/_delta_log"), w.join("lake/.hoodie")).unwrap();
    let hudi = fails(&w, &["export", "dau", "--lake", "lake", "-o", "x.csv"], 2);
    assert!(
        hudi.starts_with("dau: lake is an Apache Hudi table (.hoodie/ beside its partitions)"),
        "{hudi}"
    );
    assert!(!w.join("x.csv").exists());

    // An Iceberg table, named by its folder or by its data/ folder.
    std::fs::remove_dir_all(w.join("lake/.hoodie")).unwrap();
    std::fs::create_dir_all(w.join("table/metadata")).unwrap();
    std::fs::rename(w.join("lake"), w.join("table/data")).unwrap();
    std::fs::write(w.join("table/metadata/00001-a.metadata.json"), "{}").unwrap();
    for lake in ["table", "table/data"] {
        let stderr = fails(&w, &["query", "dau", "--lake", lake], 2);
        let refused = format!(
            "dau: {lake} is an Apache Iceberg table (metadata/ beside its data/ folder): its \
             folders keep the files its log has dropped"
        );
        assert!(stderr.starts_with(&refused), "{stderr}");
    }
    // Folders so named without Iceberg's metadata are a lake as any other.
    std::fs::remove_file(w.join("table/metadata/00001-a.metadata.json")).unwrap();
    let run = w.run(&["query", "dau", "--lake", "table/data"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn bad_config_file() {
    let w = Workdir::new();
    std::fs::write(w.join("dau.toml"), "[lake]\nulr = 'lake'\n").unwrap();
    insta::assert_snapshot!(fails(&w, &["query", "dau"], 2));
    let stderr = fails(&w, &["--config", "gone.toml", "query", "dau"], 2);
    assert!(
        stderr.starts_with("dau: bad config (gone.toml): cannot read it: "),
        "{stderr}"
    );
}

/// A flag clap refuses is said in the form of every other error, `dau: …`, its usage kept, so a
/// log searched for `dau:` finds it too.
#[test]
fn a_flag_refused_by_the_parser_is_said_as_every_error() {
    let w = Workdir::new();
    let stderr = fails(&w, &["query", "dau", "--frm", "2024-06-01"], 2);
    assert!(
        stderr.starts_with("dau: unexpected argument '--frm' found\n"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: dau query"), "{stderr}");
    let mut cmd = w.command(&["query", "dau"]);
    let run: Run = cmd.env("DAU_ENGINE", "fast").output().unwrap().into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("dau: invalid value 'fast' for '--engine <ENGINE>'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .ends_with("note: the value is DAU_ENGINE's, from the environment\n"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("error:"), "{}", run.stderr);
}

#[test]
fn bad_timezone() {
    let w = Workdir::new();
    insta::assert_snapshot!(fails(
        &w,
        &["query", "dau", "--timezone", "Mars/Olympus"],
        2
    ));
}

/// An empty rollup place (`DAU_ROLLUPS=` in a unit file) is refused, not the working folder.
#[test]
fn empty_rollups_place() {
    let w = Workdir::new();
    lake(&w);
    let before: Vec<_> = std::fs::read_dir(w.path()).unwrap().collect();
    let run: Run = w
        .command(&["query", "dau", "--lake", "lake"])
        .env("DAU_ROLLUPS", "")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        "dau: --rollups, DAU_ROLLUPS or [lake] rollups is empty: give a folder, a gs:// or s3:// \
         prefix, or off\n"
    );
    let after: Vec<_> = std::fs::read_dir(w.path()).unwrap().collect();
    assert_eq!(after.len(), before.len(), "nothing is written");
}

/// Settings that cannot name a place: an empty lake (it was "lake not found ()", exit 3), and an
/// endpoint without its scheme, as MinIO's is often written (the S3 store panicked, exit 101).
#[test]
fn an_empty_lake_or_an_endpoint_without_its_scheme() {
    let w = Workdir::new();
    assert_eq!(
        fails(&w, &["query", "dau", "--lake", ""], 2),
        "dau: --lake, DAU_LAKE or [lake] url is empty: give a folder, gs://BUCKET/PREFIX or \
         s3://BUCKET/PREFIX, or leave it unset\n"
    );
    let query = [
        "query",
        "dau",
        "--lake",
        "s3://bucket/lake",
        "--retries",
        "0",
    ];
    let s3 = |flags: &[&str], variable: (&str, &str)| -> Run {
        let mut cmd = w.command(&[&query[..], flags].concat());
        cmd.env(variable.0, variable.1).output().unwrap().into()
    };
    for endpoint in [
        "localhost:9000",
        "not a url",
        "ftp://host",
        "http://localhost:9000 ",
    ] {
        let run = s3(&["--endpoint", endpoint], ("AWS_ACCESS_KEY_ID", "x"));
        assert_eq!(run.code, 2, "{endpoint}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("the endpoint '{endpoint}' is not")),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "(--endpoint, DAU_ENDPOINT or [lake] endpoint): write the \
                                 endpoint with its scheme, such as http://localhost:9000"
            ),
            "{}",
            run.stderr
        );
    }
    // Credentials in it are not taken, and every storage error showed them.
    let run = s3(
        &["--endpoint", "http://me:secret@localhost:9000"],
        ("AWS_ACCESS_KEY_ID", "x"),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the endpoint http://***@localhost holds a user or password"),
        "{}",
        run.stderr
    );
    // The AWS tools' own variable is read when the store is made: a storage error.
    let run = s3(&[], ("AWS_ENDPOINT_URL", "localhost:9000"));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the endpoint 'localhost:9000' is not an http:// or https:// URL"),
        "{}",
        run.stderr
    );
}

/// Settings that name nothing, or the lake itself: an empty user column is the setting's error
/// (every file was a bad file, exit 4); rollups `OFF` are off (they went into a folder `OFF`);
/// rollups inside the lake are refused, but in a hidden folder of it (in a partition they were
/// read as its data, and the lake could not be queried).
#[test]
fn settings_that_name_nothing_or_the_lake_itself() {
    let w = Workdir::new();
    let rows = random_rows(5, day("2024-06-01"), 10, 50);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let run: Run = (w.command(&["query", "dau", "--lake", "lake"]))
        .env("DAU_USER_COLUMN", "")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("dau: the user column's name is empty (--user-column, DAU_USER_COLUMN"),
        "{}",
        run.stderr
    );
    let dau = ["query", "dau", "--lake", "lake", "--format", "csv"];
    let run = w.run(&[&dau[..], &["--rollups", "OFF"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.series(),
        oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-10"), &[])
    );
    assert!(!w.join("OFF").exists());
    // As the disk has them: through `..` or a link to the lake, they were let in.
    std::os::unix::fs::symlink(w.join("lake"), w.join("link")).unwrap();
    let sneaky = [
        "lake/../lake",
        "link",
        "link/cache",
        "lake/x/../cache",
        "none/../lake",
    ];
    for inside in ["lake/date=2024-06-02/cache", "lake", "lake/cache"]
        .into_iter()
        .chain(sneaky)
    {
        let run = w.run(&["rollup", "--lake", "lake", "--rollups", inside]);
        assert_eq!(run.code, 2, "{inside}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("--rollups {inside} is inside the lake")),
            "{}",
            run.stderr
        );
        assert!(!w.join(inside).join("cache").exists());
    }
    // A link to a file not there yet is where a write through it lands: in a day's folder it
    // was let through, and the file written counted as the day's data.
    std::os::unix::fs::symlink(
        w.join("lake/date=2024-06-02/new.csv"),
        w.join("dangling.csv"),
    )
    .unwrap();
    for output in ["link/x.csv", "dangling.csv"] {
        let run = w.run(&[&dau[..], &["--output", output]].concat());
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("--output {output} is inside the lake")),
            "{}",
            run.stderr
        );
    }
    assert!(!w.join("lake/date=2024-06-02/new.csv").exists());
    // A database named by URL is the file it names (`sqlite://` was let into a day's folder,
    // and the day's queries then failed on it).
    let export = [
        "export",
        "dau",
        "--lake",
        "lake",
        "--date",
        "2024-06-02",
        "-o",
    ];
    for database in ["sqlite://lake/date=2024-06-02/x.db", "sqlite://link/x.db"] {
        let run = w.run(&[&export[..], &[database]].concat());
        assert_eq!(run.code, 2, "{database}: {}", run.stderr);
        assert!(run.stderr.contains("is inside the lake"), "{}", run.stderr);
    }
    assert!(!w.join("lake/date=2024-06-02/x.db").exists());
    let run = w.run(&[&dau[..], &["--rollups", "ftp://host/x"]].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--rollups ftp://host/x (or DAU_ROLLUPS, [lake] rollups) is no place"),
        "{}",
        run.stderr
    );
    assert!(!w.join("ftp:").exists());
    let run = w.run(&["rollup", "--lake", "lake", "--rollups", "lake/_dau"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = w.run(&[&dau[..], &["--rollups", "lake/_dau"]].concat());
    assert_eq!(
        run.series(),
        oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-10"), &[])
    );
    assert_eq!(w.run(&["check", "--lake", "lake"]).code, 0);
}

/// An output with no room left (a full disk; here /dev/full) is exit 3 in every format, saying
/// so (Parquet's was a failed query, exit 1; a CSV export merging into a file blamed the file's
/// lines, exit 2).
#[test]
fn an_output_with_no_room_is_exit_3() {
    let w = Workdir::new();
    let rows = random_rows(9, day("2024-06-01"), 30, 3000);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    for format in ["csv", "parquet", "ndjson", "json"] {
        let args = ["query", "user-days", "--lake", "lake", "--format", format];
        let run = w.run(&[&args[..], &["-o", "/dev/full"]].concat());
        assert_eq!(run.code, 3, "{format}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot write the output (/dev/full): No space left on device"),
            "{format}: {}",
            run.stderr
        );
    }
}

// `dau query … | head -1` must end quietly with exit 0 when the reader goes away.
#[test]
fn closed_stdout_is_not_an_error() {
    let w = Workdir::new();
    let rows = random_rows(9, day("2024-06-01"), 30, 3000);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    // A query, and the second of two SQL statements (`dau sql -f report.sql | head`).
    let sql = "SELECT 1 AS a; SELECT * FROM events";
    for (args, header) in [
        (
            &["query", "user-days", "--lake", "lake", "--format", "csv"][..],
            "userId,date,opens\n",
        ),
        (
            &["sql", "--lake", "lake", "--format", "csv", "-c", sql],
            "a\n",
        ),
    ] {
        let mut child = w
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first, header);
        // The reader is dropped here, closing the pipe while dau still has rows to write.
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
    // `dau rollup | head -1` (it panicked on its first line, exit 101): the reader is gone before
    // it writes.
    let mut child = (w.command(&["rollup", "--lake", "lake"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
