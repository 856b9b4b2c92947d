//! Files from other Parquet writers (pyarrow, DuckDB, Polars; `tests/writers.py`), with every
//! codec, both page versions, delta, byte-stream-split and overflowing dictionary encodings, no
//! statistics, NULLs, ids of every width, whole decimals and pandas categoricals: both engines, cold and from
//! rollups, give what DuckDB counts in the same files. A Spark Structured Streaming sink
//! (`tests/spark_sink.py`) is counted as its log lists it, and lakes partitioned by a column of
//! timestamps, by day or by hour (`tests/timestamp_partitions.py`), by their days.

use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use crate::util::*;

/// A column of 128-bit integers (Polars' Int128), the user column or another, is no crash: the
/// Arrow schema in its file made Arrow panic (exit 101 for every command that read its day, and
/// --skip-bad-files did not help); its columns are now read by their Parquet types.
#[test]
fn a_column_of_128_bit_integers_is_no_crash() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.join("lake/date=2024-06-01")).unwrap();
    let script = "import polars as pl\n\
        pl.DataFrame({'userId': pl.Series([1, 2, 2, 7], dtype=pl.Int64),\n\
                      'amount': pl.Series([1, 2, 3, 4], dtype=pl.Int128)})\\\n\
          .write_parquet('lake/date=2024-06-01/p.parquet')\n";
    python(w.path(), &["-c", script]);
    four_opens_of_three_users(&w);
    let run = w.run(&["check", "--lake", "lake"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sql = "SELECT COUNT(DISTINCT userId) AS users, COUNT(amount) AS amounts FROM events";
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", sql]);
    assert_eq!(run.stdout, "users,amounts\n3,4\n", "{}", run.stderr);
}

/// A newest day whose ids are all NULL (pyarrow's type null) does not type `events`: text ids
/// before it were refused as "integers in the newest day's files".
#[test]
fn a_newest_day_of_null_ids_leaves_the_id_type_to_the_days_before() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.join("lake/date=2024-06-01")).unwrap();
    std::fs::create_dir_all(w.join("lake/date=2024-06-02")).unwrap();
    let script = "import pyarrow as pa, pyarrow.parquet as pq\n\
        pq.write_table(pa.table({'userId': ['a', 'b', 'c', 'a']}), 'lake/date=2024-06-01/a.parquet')\n\
        pq.write_table(pa.table({'userId': pa.array([None] * 3, pa.null())}),\n\
                       'lake/date=2024-06-02/a.parquet')\n";
    python(w.path(), &["-c", script]);
    let sql = "SELECT COUNT(DISTINCT userId) AS users, COUNT(*) AS opens FROM events";
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", sql]);
    assert_eq!(run.stdout, "users,opens\n3,7\n", "{}", run.stderr);
}

/// A page of another column than the user's that cannot be decoded fails the `dau sql`
/// statement that reads it naming the file (exit 4); it was "query failed", exit 1, naming none.
#[test]
fn a_corrupt_page_of_another_column_is_named_in_sql() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.join("lake/date=2024-06-01")).unwrap();
    let script = "import pyarrow as pa, pyarrow.parquet as pq\n\
        n = 2000\n\
        t = pa.table({'userId': pa.array([i % 300 for i in range(n)], pa.int64()),\n\
                      's': [f'value-{i % 97}-' + 'x' * (i % 13) for i in range(n)]})\n\
        p = 'lake/date=2024-06-01/a.parquet'\n\
        pq.write_table(t, p, compression='snappy', use_dictionary=False)\n\
        c = pq.ParquetFile(p).metadata.row_group(0).column(1)\n\
        b = bytearray(open(p, 'rb').read())\n\
        middle = c.data_page_offset + c.total_compressed_size // 2\n\
        for i in range(middle, middle + 16): b[i] ^= 0xA5\n\
        open(p, 'wb').write(b)\n";
    python(w.path(), &["-c", script]);
    let sql = "SELECT count(s) FROM events";
    let run = w.run(&["sql", "--lake", "lake", "-c", sql]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let named =
        "bad data file ([DIR]/lake/date=2024-06-01/a.parquet): a data page cannot be decoded";
    assert!(w.redact(&run.stderr).contains(named), "{}", run.stderr);
    // The user column reads: the metrics count the day.
    let run = w.run(&["query", "dau", "--lake", "lake", "-f", "csv"]);
    assert_eq!(run.stdout, "date,dau\n2024-06-01,300\n", "{}", run.stderr);
}

/// A file whose user column is all NULL, which pandas and pyarrow write as the Arrow type `null`
/// (Parquet's logical type UNKNOWN), holds events with no user id: counted as NULL ids are,
/// never a bad file (it was refused, exit 4; skipped, the day was said to be undercounted).
#[test]
fn a_user_column_of_nulls_only_is_events_without_ids() {
    let w = Workdir::new();
    std::fs::create_dir_all(w.join("lake/date=2024-06-01")).unwrap();
    let script = "import pyarrow as pa, pyarrow.parquet as pq\n\
        pq.write_table(pa.table({'userId': pa.array([1, 2, 2, 7], pa.int64())}),\n\
                       'lake/date=2024-06-01/a.parquet')\n\
        t = pa.table({'userId': pa.array([None] * 5, pa.null())})\n\
        assert t.schema.field('userId').type == pa.null()\n\
        pq.write_table(t, 'lake/date=2024-06-01/b.parquet')\n";
    python(w.path(), &["-c", script]);
    let warning = "dau: warning: ignored 5 row(s) with a NULL userId (never counted as a user): \
                   2024-06-01: 5";
    for (engine, run) in four_opens_of_three_users(&w) {
        assert!(
            run.stderr.lines().any(|l| l == warning),
            "{engine}: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("undercount"),
            "{engine}: {}",
            run.stderr
        );
    }
    // `dau check` tells of the NULL ids (exit 4), and of no drift: NULLs read as any type.
    let run = w.run(&["check", "--lake", "lake"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stdout.contains("NULL user ids: 5 row(s) on 2024-06-01"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("drift"), "{}", run.stdout);
    let sql = "SELECT COUNT(DISTINCT userId) AS users, COUNT(*) AS events FROM events";
    let run = w.run(&["sql", "--lake", "lake", "--format", "csv", "-c", sql]);
    assert_eq!(run.stdout, "users,events\n3,9\n", "{}", run.stderr);
}

/// `dau query opens` of the lake's one day, 2024-06-01, in each engine: 4 opens of 3 users (as
/// the test wrote them); each engine's run, for its warnings.
fn four_opens_of_three_users(w: &Workdir) -> Vec<(&'static str, Run)> {
    let runs = ["bitmap", "sql"].map(|engine| {
        let args = [
            "query", "opens", "--lake", "lake", "--format", "csv", "--engine", engine,
        ];
        let run = w.run(&args);
        assert_eq!(run.code, 0, "{engine}: {}", run.stderr);
        assert_eq!(run.first_fields(3), [["2024-06-01", "4", "3"]], "{engine}");
        (engine, run)
    });
    runs.into()
}

#[test]
fn files_from_other_writers_give_duckdbs_counts() {
    let w = Workdir::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/writers.py");
    python(w.path(), &[script, &w.path().to_string_lossy()]);
    let mut lakes = 0;
    for entry in std::fs::read_dir(w.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "csv") {
            continue;
        }
        lakes += 1;
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        // DuckDB's date, opens, active users, most opens of a user and NULL ids, per day.
        let duckdb: Vec<Vec<String>> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        assert_eq!(duckdb.len(), 2, "{name}: two days");
        let nulls: Vec<String> = duckdb
            .iter()
            .map(|d| format!("{}: {}", d[0], d[4]))
            .collect();
        let total: u64 = duckdb.iter().map(|d| d[4].parse::<u64>().unwrap()).sum();
        let warning = format!(
            "dau: warning: ignored {total} row(s) with a NULL userId (never counted as a user): {}",
            nulls.join(", ")
        );
        for engine in ["sql", "bitmap", "bitmap"] {
            let run = w.run(&[
                "query", "opens", "--lake", &name, "--format", "csv", "--engine", engine,
            ]);
            assert_eq!(run.code, 0, "{name} {engine}: {}", run.stderr);
            let rows = run.csv();
            assert_eq!(rows[0][1..3], ["opens", "active_users"], "{name}");
            assert_eq!(rows[0][6], "opens_per_user_max", "{name}");
            let dau: Vec<[&str; 4]> = (rows[1..].iter())
                .map(|r| [&*r[0], &*r[1], &*r[2], &*r[6]])
                .collect();
            let want: Vec<[&str; 4]> = (duckdb.iter())
                .map(|d| [&*d[0], &*d[1], &*d[2], &*d[3]])
                .collect();
            assert_eq!(dau, want, "{name} {engine}");
            assert!(
                run.stderr.lines().any(|l| l == warning),
                "{name} {engine}: {}",
                run.stderr
            );
        }
    }
    assert_eq!(lakes, 15);
}

/// A real Spark Structured Streaming file sink (`tests/spark_sink.py`): only the files its
/// `_spark_metadata/` log lists are counted, as Spark's own reader counts them. The files a failed
/// batch left (copies of logged files, as a retried task leaves them) and those of a batch still
/// being written (not in the log yet) are left out, in both engines, cold and from rollups, and
/// `dau check` lists them; a logged file that is gone is named, never silently undercounted.
#[test]
fn a_spark_streaming_sink_counts_only_the_files_its_log_lists() {
    let w = Workdir::new();
    let rows = random_rows(71, day("2024-06-01"), 3, 300);
    let input = w.join("in");
    std::fs::create_dir(&input).unwrap();
    let batches: Vec<&[Row]> = rows.chunks(rows.len().div_ceil(7)).collect();
    assert_eq!(batches.len(), 7);
    for (b, batch) in batches.iter().enumerate() {
        let path = input.join(format!("batch-{b}.json"));
        let lines: String = (batch.iter())
            .map(|(d, u)| format!("{{\"userId\":{u},\"date\":\"{d}\"}}\n"))
            .collect();
        std::fs::write(&path, lines).unwrap();
        // Spark streams the files in the order of their modification times.
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 60 * b as u64);
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(at).unwrap();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/spark_sink.py");
    let lake = w.join("lake");
    let spark = Command::new(venv().join("bin").join("python"))
        .args([script, &input.to_string_lossy(), &lake.to_string_lossy()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&spark.stderr);
    assert!(spark.status.success(), "{stderr}");
    let log = lake.join("_spark_metadata");
    // Compacted every third batch: batches 2 and 5 are compact, and 6 is the newest.
    for name in ["2.compact", "5.compact", "6"] {
        assert!(log.join(name).is_file(), "{name}");
    }
    let logged = |d: &str| -> Vec<std::path::PathBuf> {
        let folder = lake.join(format!("date={d}"));
        let mut files: Vec<_> = (std::fs::read_dir(folder).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    };
    // What a failed attempt leaves: its task's file, the same rows under a name never logged.
    // In two days; in one of them, a task that failed 21 times.
    let mut failed = Vec::new();
    let days = ["2024-06-01", "2024-06-03"]
        .into_iter()
        .chain(["2024-06-02"; 20]);
    for (n, d) in days.enumerate() {
        let copy = lake.join(format!(
            "date={d}/part-00000-0badf11e-0000-4000-8000-{n:012}.c000.snappy.parquet"
        ));
        std::fs::copy(&logged(d)[0], &copy).unwrap();
        failed.push(copy.to_string_lossy().to_string());
    }

    // The oracle: each day's opens and distinct users in the rows Spark was given.
    let oracle = oracle_opens;
    let counted = |engine: &str| -> Vec<Vec<String>> {
        let run = w.run(&[
            "query", "opens", "--lake", "lake", "--format", "csv", "--engine", engine,
        ]);
        assert_eq!(run.csv()[0][..3], ["date", "opens", "active_users"]);
        run.first_fields(3)
    };
    let all = oracle(&rows);
    for engine in ["sql", "bitmap", "bitmap"] {
        assert_eq!(
            counted(engine),
            all,
            "{engine}, with a failed batch's files"
        );
    }

    // The newest batch still being written: its files are there, its log entry not yet.
    let aside = w.join("batch-6");
    std::fs::rename(log.join("6"), &aside).unwrap();
    let committed = oracle(&rows[..rows.len() - batches[6].len()]);
    assert_ne!(committed, all);
    for engine in ["bitmap", "sql", "bitmap"] {
        assert_eq!(counted(engine), committed, "{engine}, batch 6 unfinished");
    }
    // The report for people shows 20 of them; the JSON has them all.
    let check = w.run(&["check", "--lake", "lake"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let unlisted = failed.len() + active(batches[6]).len();
    let more = format!("and {} more (--format json lists them all)", unlisted - 20);
    assert!(check.stdout.contains(&more), "{}", check.stdout);
    let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let spark = &report["spark_log"];
    assert_eq!(spark["batch"], 5);
    let unlisted: Vec<&str> = (spark["unlisted_files"].as_array().unwrap().iter())
        .map(|f| f.as_str().unwrap())
        .collect();
    let days_in_batch_6 = active(batches[6]).len();
    assert_eq!(
        unlisted.len(),
        failed.len() + days_in_batch_6,
        "{unlisted:?}"
    );
    for f in &failed {
        assert!(unlisted.contains(&f.as_str()), "{f} in {unlisted:?}");
    }
    std::fs::rename(&aside, log.join("6")).unwrap();
    assert_eq!(counted("bitmap"), all, "batch 6 committed");

    // A logged file that is gone: the day is not counted without it.
    let gone = (logged("2024-06-02").into_iter())
        .rfind(|p| !failed.contains(&p.to_string_lossy().to_string()))
        .unwrap();
    std::fs::remove_file(&gone).unwrap();
    for engine in ["bitmap", "sql"] {
        let run = w.run(&["query", "dau", "--lake", "lake", "--engine", engine]);
        assert_eq!(run.code, 4, "{engine}: {}", run.stderr);
        let name = gone.file_name().unwrap().to_string_lossy();
        assert!(
            run.stderr
                .starts_with("dau: cannot use the Spark file sink log (")
                && run.stderr.contains(&format!(
                    "/date=2024-06-02/{name}, which is not in the partition of 2024-06-02"
                )),
            "{engine}: {}",
            run.stderr
        );
    } // `dau check` lists it among its problems.
    let check = w.run(&["check", "--lake", "lake", "--format", "json"]);
    assert_eq!(check.code, 4, "{}", check.stderr);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let lost = report["spark_log"]["lost_files"].as_array().unwrap();
    assert_eq!(lost.len(), 1, "{lost:?}");
    let name = gone.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        lost[0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/date=2024-06-02/{name}"))
    );
    assert_eq!(report["problems"], 1);
}

/// A Spark sink's log names its files as URIs, so a name with `%` in it (a partition of
/// timestamps, `00%3A00%3A00` on disk) is logged with the `%` encoded again (`00%253A00%253A00`):
/// the files are the logged ones (they were called missing, exit 4), and a file beside them that
/// the log does not list is still left out.
#[test]
fn a_spark_log_names_its_files_as_uris() {
    let w = Workdir::new();
    let rows = random_rows(72, day("2024-06-01"), 2, 40);
    let spec = LakeSpec::default();
    let mut log = String::from("v1\n");
    for d in [day("2024-06-01"), day("2024-06-02")] {
        let users: Vec<u64> = rows.iter().filter(|r| r.0 == d).map(|r| r.1).collect();
        let folder = format!("date={d} 00%3A00%3A00");
        let path = w.join(&format!("lake/{folder}/part 0.parquet"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_file(&path, &spec, &users, d);
        // Not in the log: a failed task's copy.
        std::fs::copy(&path, w.join(&format!("lake/{folder}/part 1.parquet"))).unwrap();
        let uri = format!(
            "file://{}/lake/date={d}%2000%253A00%253A00/part%200.parquet",
            w.path().display()
        );
        log.push_str(&format!(
            "{{\"path\":\"{uri}\",\"size\":1,\"isDir\":false,\"modificationTime\":1,\
             \"blockReplication\":1,\"blockSize\":1,\"action\":\"add\"}}\n"
        ));
    }
    std::fs::create_dir(w.join("lake/_spark_metadata")).unwrap();
    std::fs::write(w.join("lake/_spark_metadata/0"), log).unwrap();
    for engine in ["sql", "bitmap", "bitmap"] {
        let run = w.run(&[
            "query", "opens", "--lake", "lake", "--format", "csv", "--engine", engine,
        ]);
        assert_eq!(run.code, 0, "{engine}: {}", run.stderr);
        assert_eq!(run.first_fields(3), oracle_opens(&rows), "{engine}");
    }
}

/// A lake partitioned by a column of timestamps, as pandas (pyarrow), Polars, DuckDB and Spark
/// write one (`tests/timestamp_partitions.py`: `date=2024-06-01%2000%3A00%3A00…`, each in its own
/// spelling), by day or by hour: each folder is its day's, in both engines, cold and from rollups,
/// and a day's hours are not a day split over folders, with a zone too. A folder at another
/// time than midnight with a zone beside midnights names no day (its day depends on a time zone
/// it does not give) and is skipped with a warning, never counted in silence.
#[test]
fn a_partition_column_of_timestamps_names_its_days() {
    let w = Workdir::new();
    let rows = random_rows(29, day("2024-06-01"), 3, 300);
    let lines: String = rows.iter().map(|(d, u)| format!("{u},{d}\n")).collect();
    std::fs::write(w.join("rows.csv"), format!("userId,date\n{lines}")).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/timestamp_partitions.py");
    python(w.path(), &[script, "rows.csv", "."]);
    let oracle = oracle_opens(&rows);
    assert_eq!(oracle.len(), 3);
    let counted = |lake: &str, engine: &str| -> Run {
        w.run(&[
            "query", "opens", "--lake", lake, "--format", "csv", "--engine", engine,
        ])
    };
    let lakes = [
        "pyarrow",
        "pyarrow-utc",
        "polars",
        "duckdb",
        "spark",
        "pyarrow-hours",
        // (Read as days, each day was its midnight hour alone, exit 0.)
        "pyarrow-utc-hours",
        // (Never at midnight, they were no days at all: exit 4.)
        "pyarrow-utc-half-hours",
        "spark-hours",
    ];
    for lake in lakes {
        for engine in ["sql", "bitmap", "bitmap"] {
            let run = counted(lake, engine);
            assert_eq!(run.code, 0, "{lake} {engine}: {}", run.stderr);
            assert!(!run.stderr.contains("several folders"), "{}", run.stderr);
            assert_eq!(run.first_fields(3), oracle, "{lake} {engine}");
        }
    }
    let check = w.run(&["check", "--lake", "spark-hours"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check
            .stdout
            .starts_with("lake      spark-hours (hour=YYYY-MM-DD HH:MM:SS)\n"),
        "{}",
        check.stdout
    );
    let hours = std::fs::read_dir(w.join("spark-hours")).unwrap().count();
    assert!(hours > 3 * 20, "{hours} folders");

    // An hour with a zone beside them: not a day, skipped and named.
    let day_2 = w.join("pyarrow-utc/date=2024-06-02%2000%3A00%3A00.000000Z");
    let instant = w.join("pyarrow-utc/date=2024-06-02%2013%3A00%3A00.000000Z");
    std::fs::create_dir(&instant).unwrap();
    for file in std::fs::read_dir(&day_2).unwrap() {
        let file = file.unwrap().path();
        std::fs::copy(&file, instant.join(file.file_name().unwrap())).unwrap();
    }
    for engine in ["sql", "bitmap"] {
        let run = counted("pyarrow-utc", engine);
        assert_eq!(run.first_fields(3), oracle, "{engine}");
        assert!(
            run.stderr.contains(
                "skipped 1 folder(s) that do not name a day: \
                 date=2024-06-02%2013%3A00%3A00.000000Z"
            ),
            "{engine}: {}",
            run.stderr
        );
    }
}
