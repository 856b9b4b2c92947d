//! `dau check`: a clean lake passes with exact per-day counts; a messy one lists every problem.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::*;

fn day_counts(rows: &[Row]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (d, _) in rows {
        *counts.entry(d.to_string()).or_default() += 1;
    }
    counts
}

/// `days[].rows` of a check report, by date.
fn rows_per_day(report: &Value) -> BTreeMap<String, u64> {
    let days = report["days"].as_array().unwrap();
    days.iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_string(),
                d["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn a_clean_lake_passes() {
    let w = Workdir::new();
    let rows = random_rows(4, day("2024-06-01"), 8, 100);
    write_lake(
        &w.join("lake"),
        &LakeSpec {
            date_column: true,
            ..LakeSpec::default()
        },
        &rows,
        &[],
    );
    let run = w.run(&["check", "--lake", "lake"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.ends_with("clean: no problems found\n"),
        "{}",
        run.stdout
    );
    let run = w.run(&["check", "--lake", "lake", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = json(&run);
    assert_eq!(report["problems"], 0);
    assert_eq!(report["layout"], "date=YYYY-MM-DD");
    let got = rows_per_day(&report);
    assert_eq!(got, day_counts(&rows));
    assert!(
        report["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["files"] == 2)
    );
}

/// Text ids stored three ways (plain, as a pandas categorical, as Polars' large strings) are one
/// type, and two one-row files of the same user on two days are no copies: clean, exit 0 (both
/// were problems, exit 4, though every number was right).
#[test]
fn what_only_looks_like_a_problem_is_none() {
    use datafusion::arrow::array::LargeStringArray;
    use datafusion::arrow::datatypes::{DataType, Field};
    use std::sync::Arc;
    let w = Workdir::new();
    let lake = w.join("lake");
    let users: Vec<u64> = (0..40).collect();
    for (d, ids) in [
        ("2024-06-01", "string"),
        ("2024-06-02", "dictionary-string"),
    ] {
        let folder = lake.join(format!("date={d}"));
        std::fs::create_dir_all(&folder).unwrap();
        let spec = LakeSpec {
            ids,
            ..LakeSpec::default()
        };
        write_file(&folder.join("part-0.parquet"), &spec, &users, day(d));
    }
    let folder = lake.join("date=2024-06-03");
    std::fs::create_dir_all(&folder).unwrap();
    let large = LargeStringArray::from_iter_values(users.iter().map(|u| format!("user-{u}")));
    let field = Field::new("userId", DataType::LargeUtf8, false);
    write_batch(
        &folder.join("part-0.parquet"),
        vec![field],
        vec![Arc::new(large)],
    );
    let one = LakeSpec {
        ids: "string",
        ..LakeSpec::default()
    };
    for d in ["2024-06-04", "2024-06-05"] {
        let folder = lake.join(format!("date={d}"));
        std::fs::create_dir_all(&folder).unwrap();
        write_file(&folder.join("part-0.parquet"), &one, &[7], day(d));
    }
    let run = w.run(&["check", "--lake", "lake", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = json(&run);
    assert_eq!(report["problems"], 0, "{}", run.stdout);
    let want: BTreeMap<String, u64> = [40, 40, 40, 1, 1]
        .into_iter()
        .zip(1..)
        .map(|(rows, d)| (format!("2024-06-{d:02}"), rows))
        .collect();
    assert_eq!(rows_per_day(&report), want);
}

#[test]
fn a_messy_lake_lists_every_problem() {
    let w = Workdir::new();
    let rows = random_rows(4, day("2024-06-01"), 8, 100);
    let spec = LakeSpec {
        date_column: true,
        ..LakeSpec::default()
    };
    write_lake(&w.join("lake"), &spec, &rows, &[]);
    let lake = w.join("lake");
    // A gap, an empty file, a link to nothing, a file with string ids, a file filed under the
    // wrong day, a day in a second folder, a folder that names no day, strays beside the
    // partitions, and copies of a file in its own day and in another.
    std::fs::remove_dir_all(lake.join("date=2024-06-04")).unwrap();
    std::fs::write(lake.join("date=2024-06-02/part-9.parquet"), "").unwrap();
    std::os::unix::fs::symlink("/nowhere/x.parquet", lake.join("date=2024-06-07/x.parquet"))
        .unwrap();
    let strings = LakeSpec {
        ids: "string",
        date_column: true,
        ..LakeSpec::default()
    };
    write_file(
        &lake.join("date=2024-06-03/part-9.parquet"),
        &strings,
        &[1, 2],
        day("2024-06-03"),
    );
    write_file(
        &lake.join("date=2024-06-05/part-9.parquet"),
        &spec,
        &[7, 8, 9],
        day("2024-06-01"),
    );
    std::fs::create_dir_all(lake.join("date=20240606")).unwrap();
    write_file(
        &lake.join("date=20240606/part-0.parquet"),
        &spec,
        &[4, 5],
        day("2024-06-06"),
    );
    let copy = |from: &str, to: &str| std::fs::copy(lake.join(from), lake.join(to)).unwrap();
    copy(
        "date=2024-06-01/part-0.parquet",
        "date=2024-06-01/part-0 (1).parquet",
    );
    copy(
        "date=2024-06-02/part-1.parquet",
        "date=2024-06-08/part-1.parquet.copy",
    );
    std::fs::create_dir_all(lake.join("date=latest")).unwrap();
    std::fs::create_dir_all(lake.join("backup")).unwrap();
    std::fs::write(lake.join("notes.txt"), "hi").unwrap();

    let run = w.run(&["check", "--lake", "lake"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    insta::assert_snapshot!("messy_check", w.redact(&run.stdout));
    assert!(
        run.stderr.contains("check found 13 problem(s)"),
        "{}",
        run.stderr
    );

    let report = json(&w.run(&["check", "--lake", "lake", "--format", "json"]));
    assert_eq!(report["problems"], 13);
    assert_eq!(report["missing_days"], serde_json::json!(["2024-06-04"]));
    // The day's second folder has no `_SUCCESS`, which every other day's has.
    assert_eq!(report["unfinished_days"], serde_json::json!(["2024-06-06"]));
    let reasons: Vec<&str> = report["bad_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "the file is empty (0 bytes)",
            "a link to /nowhere/x.parquet, which does not exist"
        ]
    );
    assert_eq!(report["schema_drift"][0]["column"], "userId");
    let types: Vec<&str> = report["schema_drift"][0]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Int64", "Utf8"]);
    assert_eq!(report["date_mismatches"][0]["rows"], 3);
    assert_eq!(report["date_mismatches"][0]["example"], "2024-06-01");
    let base = std::fs::canonicalize(&lake).unwrap().display().to_string();
    // Each group of copies: its files and their days, in order.
    let mut copies: Vec<Vec<(String, String)>> = (report["duplicate_files"].as_array().unwrap())
        .iter()
        .map(|d| {
            let files = d["files"].as_array().unwrap().iter();
            let files = files.map(|f| f.as_str().unwrap().strip_prefix(&base).unwrap().to_string());
            let dates = d["dates"].as_array().unwrap().iter();
            files
                .zip(dates.map(|d| d.as_str().unwrap().to_string()))
                .collect()
        })
        .collect();
    copies.sort();
    let copy_of = |file: &str, date: &str| (format!("/{file}"), date.to_string());
    assert_eq!(
        copies,
        [
            vec![
                copy_of("date=2024-06-01/part-0 (1).parquet", "2024-06-01"),
                copy_of("date=2024-06-01/part-0.parquet", "2024-06-01"),
            ],
            vec![
                copy_of("date=2024-06-02/part-1.parquet", "2024-06-02"),
                copy_of("date=2024-06-08/part-1.parquet.copy", "2024-06-08"),
            ],
        ]
    );
    let folders = [
        format!("{base}/date=2024-06-06"),
        format!("{base}/date=20240606"),
    ];
    assert_eq!(
        report["split_days"],
        serde_json::json!([{"date": "2024-06-06", "folders": folders}])
    );
    assert_eq!(
        report["skipped_folders"],
        serde_json::json!(["date=latest"])
    );
    assert_eq!(
        report["stray_files"],
        serde_json::json!(["backup/", "notes.txt"])
    );
    // Rows per day are the good files' rows: the oracle's, plus the extra files' own.
    let mut want = day_counts(&rows);
    want.remove("2024-06-04");
    *want.get_mut("2024-06-03").unwrap() += 2;
    *want.get_mut("2024-06-05").unwrap() += 3;
    *want.get_mut("2024-06-06").unwrap() += 2;
    let opens = day_counts(&rows);
    *want.get_mut("2024-06-01").unwrap() += opens["2024-06-01"] / 2;
    *want.get_mut("2024-06-08").unwrap() += opens["2024-06-02"] - opens["2024-06-02"] / 2;
    let got = rows_per_day(&report);
    assert_eq!(got, want);
}

#[test]
fn check_counts_null_ids_per_day_and_takes_a_range() {
    let w = Workdir::new();
    let rows = random_rows(4, day("2024-06-01"), 8, 100);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    crate::messy::write_nullable(
        &w.join("lake/date=2024-06-06/part-5.parquet"),
        &[None, Some(1), None],
        None,
    );
    let run = w.run(&[
        "check",
        "--lake",
        "lake",
        "--from",
        "2024-06-05",
        "--to",
        "2024-06-07",
        "-f",
        "json",
    ]);
    assert_eq!(run.code, 4);
    let report = json(&run);
    assert_eq!(report["days"].as_array().unwrap().len(), 3);
    assert_eq!(report["days"][1]["date"], "2024-06-06");
    assert_eq!(report["days"][1]["null_user_ids"], 2);
    assert_eq!(report["problems"], 1);
    // Outside the null day, the range is clean.
    let run = w.run(&["check", "--lake", "lake", "--from", "2024-06-07"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}
