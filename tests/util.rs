//! Test helpers: a work folder, the `dau` binary run in it, lakes written straight with arrow, and
//! brute-force oracles (HashSets over the same rows) that share no code with dau.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::OnceLock;

use chrono::{Datelike, Days, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, BinaryArray, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;

pub fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// One app open: a day and a user.
pub type Row = (NaiveDate, u64);

/// A temporary folder to run `dau` in.
pub struct Workdir {
    dir: tempfile::TempDir,
}

/// What one run of `dau` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl Run {
    /// The CSV output as rows of fields, header first.
    pub fn csv(&self) -> Vec<Vec<String>> {
        assert_eq!(self.code, 0, "dau failed: {}", self.stderr);
        self.stdout
            .lines()
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect()
    }

    /// The CSV output's rows after the header, each cut to its first `n` fields.
    pub fn first_fields(&self, n: usize) -> Vec<Vec<String>> {
        self.csv()[1..].iter().map(|r| r[..n].to_vec()).collect()
    }

    /// The CSV output's second column keyed by its first (`date`), NULL (empty) as None.
    pub fn series(&self) -> BTreeMap<NaiveDate, Option<u64>> {
        self.csv()[1..]
            .iter()
            .map(|r| {
                (
                    day(&r[0]),
                    if r[1].is_empty() {
                        None
                    } else {
                        Some(r[1].parse().unwrap())
                    },
                )
            })
            .collect()
    }
}

impl Workdir {
    pub fn new() -> Workdir {
        Workdir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `dau` in this folder, with no `DAU_*` (or libpq `PG*`) setting from outside, keeping its
    /// rollups here.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dau"));
        cmd.args(args).current_dir(self.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("DAU_") || key.starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd.env("DAU_ROLLUPS", self.rollups());
        cmd
    }

    /// Where `dau` run by [`Workdir::command`] keeps its rollups.
    pub fn rollups(&self) -> PathBuf {
        self.join(".rollups")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().unwrap().into()
    }

    /// Replaces this folder's path in `text`, so snapshots do not depend on it.
    pub fn redact(&self, text: &str) -> String {
        let real = std::fs::canonicalize(self.path()).unwrap();
        text.replace(&real.to_string_lossy().to_string(), "[DIR]")
            .replace(&self.path().to_string_lossy().to_string(), "[DIR]")
    }
}

/// How a test lake is written.
#[derive(Clone)]
pub struct LakeSpec {
    /// `date`, `dt`, `day`, `nested`, or `dt-compact` (`dt=YYYYMMDD`).
    pub layout: &'static str,
    /// Folders above the partitions.
    pub prefix: &'static str,
    /// `int32`, `int64`, `uint64` (ids from 2^64 − 1 down), `string` or `binary` (text without
    /// the UTF-8 annotation), or `dictionary-int64` or `dictionary-string`: those as a dictionary
    /// array.
    pub ids: &'static str,
    pub user_column: &'static str,
    pub files_per_day: usize,
    /// Also write a DATE column `date` into the files.
    pub date_column: bool,
    /// Write the user ids delta-encoded, as Parquet v2 writers do (DELTA_BINARY_PACKED integers,
    /// DELTA_BYTE_ARRAY text), not in a dictionary.
    pub delta: bool,
}

impl Default for LakeSpec {
    fn default() -> Self {
        LakeSpec {
            layout: "date",
            prefix: "",
            ids: "int64",
            user_column: "userId",
            files_per_day: 2,
            date_column: false,
            delta: false,
        }
    }
}

/// The partition folder of `d` in `spec`'s layout.
pub fn partition(spec: &LakeSpec, d: NaiveDate) -> String {
    let part = match spec.layout {
        "nested" => format!(
            "year={}/month={:02}/day={:02}",
            d.year(),
            d.month(),
            d.day()
        ),
        "dt-compact" => format!("dt={}", d.format("%Y%m%d")),
        "plain" => d.to_string(),
        "plain-nested" => d.format("%Y/%m/%d").to_string(),
        key => format!("{key}={d}"),
    };
    format!("{}{part}", spec.prefix)
}

/// Writes `rows` as a lake under `root`: one partition per day that has rows, plus the days in
/// `empty_days` as partitions with a zero-row file. Returns nothing: the rows are the truth.
pub fn write_lake(root: &Path, spec: &LakeSpec, rows: &[Row], empty_days: &[NaiveDate]) {
    let mut by_day: BTreeMap<NaiveDate, Vec<u64>> = BTreeMap::new();
    for (d, u) in rows {
        by_day.entry(*d).or_default().push(*u);
    }
    for d in empty_days {
        by_day.entry(*d).or_default();
    }
    for (d, users) in &by_day {
        let folder = root.join(partition(spec, *d));
        std::fs::create_dir_all(&folder).unwrap();
        let files = spec.files_per_day.max(1);
        for f in 0..files {
            let chunk = &users[users.len() * f / files..users.len() * (f + 1) / files];
            write_file(&folder.join(format!("part-{f}.parquet")), spec, chunk, *d);
        }
        std::fs::write(folder.join("_SUCCESS"), "").unwrap();
    }
}

/// Makes `folder` (replacing what is there) a partition whose writer is not done: only
/// `_SUCCESS`, no data file.
pub fn unfinished_partition(folder: &Path) {
    if folder.exists() {
        std::fs::remove_dir_all(folder).unwrap();
    }
    std::fs::create_dir_all(folder).unwrap();
    std::fs::write(folder.join("_SUCCESS"), "").unwrap();
}

pub fn write_file(path: &Path, spec: &LakeSpec, users: &[u64], d: NaiveDate) {
    let (id_type, ids) = ids_of(spec.ids, users);
    let mut fields = vec![Field::new(spec.user_column, id_type, false)];
    let mut columns = vec![ids];
    if spec.date_column {
        fields.push(Field::new("date", DataType::Date32, false));
        let days = (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32;
        columns.push(Arc::new(Date32Array::from_value(days, users.len())));
    }
    let mut props = WriterProperties::builder();
    if spec.delta {
        let encoding = match spec.ids {
            "string" | "dictionary-string" | "binary" => Encoding::DELTA_BYTE_ARRAY,
            _ => Encoding::DELTA_BINARY_PACKED,
        };
        let user = ColumnPath::from(spec.user_column);
        props = props
            .set_column_dictionary_enabled(user.clone(), false)
            .set_column_encoding(user, encoding);
    }
    write_props(path, fields, columns, props.build());
}

/// `users` as ids of this type (see [`LakeSpec::ids`]).
fn ids_of(ids: &str, users: &[u64]) -> (DataType, ArrayRef) {
    match ids {
        "int32" => (
            DataType::Int32,
            Arc::new(Int32Array::from_iter_values(
                users.iter().map(|u| *u as i32),
            )),
        ),
        "int64" => (
            DataType::Int64,
            Arc::new(Int64Array::from_iter_values(
                users.iter().map(|u| *u as i64),
            )),
        ),
        // Unsigned ids at the top of their range (as hashes and ClickHouse's UInt64 have).
        "uint64" => (
            DataType::UInt64,
            Arc::new(UInt64Array::from_iter_values(
                users.iter().map(|u| u64::MAX - u),
            )),
        ),
        "string" => (
            DataType::Utf8,
            Arc::new(StringArray::from_iter_values(
                users.iter().map(|u| format!("user-{u}")),
            )),
        ),
        // Text without the UTF-8 annotation, as Impala and older Hive write strings.
        "binary" => (
            DataType::Binary,
            Arc::new(BinaryArray::from_iter_values(
                users.iter().map(|u| format!("user-{u}")),
            )),
        ),
        // As a pandas categorical, or a writer that keeps its dictionary, writes them.
        "dictionary-string" | "dictionary-int64" => {
            let (values_type, values) = ids_of(&ids["dictionary-".len()..], users);
            let keys = match values_type {
                DataType::Utf8 => DataType::Int16,
                _ => DataType::Int32,
            };
            let id_type = DataType::Dictionary(Box::new(keys), Box::new(values_type));
            (id_type.clone(), cast(&values, &id_type).unwrap())
        }
        other => panic!("unknown id type {other}"),
    }
}

/// Writes one Parquet file of the given columns.
pub fn write_batch(path: &Path, fields: Vec<Field>, columns: Vec<ArrayRef>) {
    write_props(path, fields, columns, WriterProperties::default());
}

/// Writes one Parquet file of the given columns, with `props`.
pub fn write_props(
    path: &Path,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
    props: WriterProperties,
) {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Writes a file of text user ids, as they are.
pub fn write_strings(path: &Path, ids: &[&str]) {
    let array = StringArray::from_iter_values(ids.iter().copied());
    write_batch(
        path,
        vec![Field::new("userId", DataType::Utf8, false)],
        vec![Arc::new(array)],
    );
}

/// Random app opens over `days` days from `start`: `users` users of varying activity, several opens
/// on some days, unsorted. A small LCG, independent of dau's generator.
pub fn random_rows(seed: u64, start: NaiveDate, days: u64, users: u64) -> Vec<Row> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut rows = Vec::new();
    for u in 0..users {
        let id = 1_000 + u * 7919 % 1_000_003 + (u % 5) * 300_000_000;
        let activity = 5 + next() % 90; // percent
        for d in 0..days {
            if next() % 100 < activity {
                for _ in 0..1 + next() % 4 {
                    rows.push((start + Days::new(d), id));
                }
            }
        }
    }
    // Unsorted: a deterministic shuffle.
    for i in (1..rows.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        rows.swap(i, j);
    }
    rows
}

/// Per day, as `dau query opens` begins its rows: the date, the opens and the active users.
pub fn oracle_opens(rows: &[Row]) -> Vec<Vec<String>> {
    let mut opens: BTreeMap<NaiveDate, u64> = BTreeMap::new();
    for (d, _) in rows {
        *opens.entry(*d).or_default() += 1;
    }
    let users = active(rows);
    (opens.iter())
        .map(|(d, n)| vec![d.to_string(), n.to_string(), users[d].len().to_string()])
        .collect()
}

/// A(d): the users active on each day.
pub fn active(rows: &[Row]) -> BTreeMap<NaiveDate, HashSet<u64>> {
    let mut sets: BTreeMap<NaiveDate, HashSet<u64>> = BTreeMap::new();
    for (d, u) in rows {
        sets.entry(*d).or_default().insert(*u);
    }
    sets
}

/// |A(d-n+1) ∪ … ∪ A(d)| for each d in from..=to; None where a day of the window is in `missing`.
pub fn oracle_window(
    rows: &[Row],
    n: u64,
    from: NaiveDate,
    to: NaiveDate,
    missing: &[NaiveDate],
) -> BTreeMap<NaiveDate, Option<u64>> {
    let sets = active(rows);
    let mut out = BTreeMap::new();
    let mut d = from;
    while d <= to {
        let window: Vec<NaiveDate> = (0..n).map(|k| d - Days::new(k)).collect();
        let value = if window.iter().any(|w| missing.contains(w)) {
            None
        } else {
            let union: HashSet<u64> = window
                .iter()
                .filter_map(|w| sets.get(w))
                .flatten()
                .copied()
                .collect();
            Some(union.len() as u64)
        };
        out.insert(d, value);
        d = d + Days::new(1);
    }
    out
}

/// Distinct users per period, keyed by the period's first day, for periods given by `start_of`.
pub fn oracle_periods(
    rows: &[Row],
    days: impl Iterator<Item = NaiveDate>,
    start_of: impl Fn(NaiveDate) -> NaiveDate,
) -> BTreeMap<NaiveDate, Option<u64>> {
    let sets = active(rows);
    let mut periods: BTreeMap<NaiveDate, HashSet<u64>> = BTreeMap::new();
    for d in days {
        let set = periods.entry(start_of(d)).or_default();
        set.extend(sets.get(&d).into_iter().flatten());
    }
    periods
        .into_iter()
        .map(|(p, s)| (p, Some(s.len() as u64)))
        .collect()
}

/// Per day: opens, active users, and the per-user counts sorted ascending.
pub fn per_user_counts(rows: &[Row]) -> BTreeMap<NaiveDate, Vec<u64>> {
    let mut counts: HashMap<(NaiveDate, u64), u64> = HashMap::new();
    for r in rows {
        *counts.entry(*r).or_default() += 1;
    }
    let mut per_day: BTreeMap<NaiveDate, Vec<u64>> = BTreeMap::new();
    for ((d, _), n) in counts {
        per_day.entry(d).or_default().push(n);
    }
    for v in per_day.values_mut() {
        v.sort_unstable();
    }
    per_day
}

/// Nearest-rank percentile of sorted values: the value at rank ceil(p/100 · n).
pub fn nearest_rank(sorted: &[u64], p: u64) -> u64 {
    let rank = (sorted.len() as u64 * p).div_ceil(100).max(1);
    sorted[rank as usize - 1]
}

/// Every (day, user) row of a lake, read with the parquet crate: the day from the folder names
/// (`date=`, `dt=`, `day=` or `year=/month=/day=`), the user from column `userId` (integers).
pub fn read_lake_rows(root: &Path) -> Vec<Row> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let mut rows = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let keys: HashMap<&str, &str> =
                rel.split('/').filter_map(|p| p.split_once('=')).collect();
            let d = match keys.get("date").or(keys.get("dt")) {
                Some(v) if v.len() == 8 => NaiveDate::parse_from_str(v, "%Y%m%d").unwrap(),
                Some(v) => day(v),
                None if keys.contains_key("year") => NaiveDate::from_ymd_opt(
                    keys["year"].parse().unwrap(),
                    keys["month"].parse().unwrap(),
                    keys["day"].parse().unwrap(),
                )
                .unwrap(),
                None => day(keys["day"]),
            };
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let ids = batch.column_by_name("userId").unwrap();
                let ids = datafusion::arrow::compute::cast(ids, &DataType::Int64).unwrap();
                rows.extend(
                    ids.as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .map(|u| (d, *u as u64)),
                );
            }
        }
    }
    rows
}

/// The bytes of a Parquet `file` with its data pages (everything between the magic and the footer)
/// overwritten: the footer still reads, the pages do not.
pub fn corrupt_pages(file: &[u8]) -> Vec<u8> {
    let n = file.len();
    let footer = u32::from_le_bytes(file[n - 8..n - 4].try_into().unwrap()) as usize;
    let mut bad = file.to_vec();
    bad[4..n - 8 - footer].fill(0xAB);
    bad
}

/// The virtualenv holding the GCS and S3 servers, installed on first use with everything else
/// the tests start (`.ci/test-tools.sh`: PostgreSQL too).
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/test-tools.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "installing the test servers failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Runs the test virtualenv's Python with `args` in `dir`, which must succeed (a writer of test
/// lakes: pyarrow, Polars, DuckDB, Spark).
pub fn python(dir: &Path, args: &[&str]) {
    let out = Command::new(venv().join("bin").join("python"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python {args:?}: {stderr}");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a webhook receiver got: each request body, in order.
pub type Alerts = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A webhook receiver on loopback: every request body it gets, in order.
pub fn receiver() -> (String, Alerts) {
    receiver_down_for(0)
}

/// A webhook receiver that answers its first `down` requests 503 (not kept), as a webhook down
/// for a moment; then every body it gets, in order.
pub fn receiver_down_for(down: usize) -> (String, Alerts) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        let mut refused = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if refused < down {
                refused += 1;
                let _ = stream.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            }
            bodies
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).to_string());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (url, got)
}
