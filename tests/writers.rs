//! Files from other Parquet writers (pyarrow, DuckDB, Polars; `tests/writers.py`), with every
//! codec, both page versions, delta, byte-stream-split and overflowing dictionary encodings, no
//! statistics, NULLs, ids of every width and pandas categoricals: both engines, cold and from
//! rollups, give what DuckDB counts in the same files.

use std::process::Command;

use crate::util::*;

#[test]
fn files_from_other_writers_give_duckdbs_counts() {
    let w = Workdir::new();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/writers.py");
    let written = Command::new(venv().join("bin").join("python"))
        .args([script, &w.path().to_string_lossy()])
        .output()
        .unwrap();
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
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
    assert_eq!(lakes, 14);
}
