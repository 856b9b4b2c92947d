//! `dau gen`: a deterministic synthetic lake of app opens with a realistic shape.
//!
//! Users sign up over the period (40% exist on the first day), some churn within days and the rest
//! over months; each has a skewed activity level, is more active at weekends, and opens the app
//! one or more times on an active day. Ids are sparse and scrambled (a bijection of the user's
//! index), and rows are shuffled, so nothing is sorted by user. The same flags always give the same
//! rows, whatever the number of threads.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{Datelike, Days, NaiveDate};
use clap::{Args, ValueEnum};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use futures::StreamExt;
use object_store::ObjectStoreExt;

use crate::config::Config;
use crate::dates::to_date32;
use crate::lake::storage;
use crate::{Error, Result};

/// Marks a finished lake; hidden from readers by its leading dot.
const COMPLETE_MARKER: &str = ".dau-gen-complete";

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  dau gen --out ./lake --users 100000 --days 60 --files-per-day 4\n  \
                  dau gen --out gs://my-bucket/sample-lake   (made locally, then uploaded)"
)]
pub struct GenArgs {
    /// Folder to write the lake into, or a gs:// or s3:// prefix; must not exist or be empty
    #[arg(long, value_name = "DIR|URL")]
    pub out: PathBuf,

    #[command(flatten)]
    pub shape: Shape,
}

/// What lake to make.
#[derive(Debug, Clone, Args)]
pub struct Shape {
    /// Users to draw; those who never open the app in the period are not in the lake
    #[arg(long, default_value_t = 10_000)]
    pub users: u64,
    /// Number of days
    #[arg(long, default_value_t = 30)]
    pub days: u64,
    /// First day
    #[arg(long, default_value = "2024-06-01", value_parser = start_day)]
    pub start: NaiveDate,
    /// Random seed: the same seed gives the same lake
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Parquet files per day
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub files_per_day: u64,
    /// Partition folders
    #[arg(long, value_enum, ignore_case = true, default_value_t = GenLayout::Date)]
    pub layout: GenLayout,
    /// Folders above the partitions, as Kafka Connect writes (e.g. topics/app_opens)
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
    /// Type of the userId column
    #[arg(long, value_enum, ignore_case = true, default_value_t = IdType::Int64)]
    pub id_type: IdType,
    /// Also write the day as a DATE column `date` in the files, as BigQuery exports do
    #[arg(long)]
    pub with_date_column: bool,
}

/// `--start`: a day as YYYY-MM-DD (chrono's own error for 2024-02-30 was "input is out of range").
fn start_day(text: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| "give a day that exists, as YYYY-MM-DD, such as 2024-06-01".into())
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            users: 10_000,
            days: 30,
            start: NaiveDate::from_ymd_opt(2024, 6, 1).expect("a date"),
            seed: 42,
            files_per_day: 1,
            layout: GenLayout::Date,
            prefix: None,
            id_type: IdType::Int64,
            with_date_column: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenLayout {
    /// date=YYYY-MM-DD
    Date,
    /// dt=YYYY-MM-DD
    Dt,
    /// dt=YYYYMMDD
    DtCompact,
    /// day=YYYY-MM-DD
    Day,
    /// year=YYYY/month=MM/day=DD
    Nested,
    /// YYYY-MM-DD (folders named by the day alone)
    Plain,
    /// YYYY/MM/DD (as Kinesis Firehose and Kafka Connect's time-based partitioner write)
    PlainNested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdType {
    Int32,
    Int64,
    String,
}

pub fn run(config: &Config, args: &GenArgs) -> Result<()> {
    let text = args.out.to_string_lossy();
    let bucket = storage::is_bucket(&text);
    // `file:///data/lake`, as --lake takes it, is the folder /data/lake.
    let out = &match text.starts_with("file:") {
        true => storage::local_path(&text),
        false => args.out.clone(),
    };
    let last = args.shape.check()?;
    if !bucket && (is_occupied(out) || out.is_file()) {
        let what = if out.is_file() { "a file" } else { "not empty" };
        return Err(Error::usage(
            format!("--out {} is {what}", out.display()),
            "choose a new folder, or remove this one first",
        ));
    }
    let started = Instant::now();
    let written = if bucket {
        crate::block_on(to_bucket(config, &text, &args.shape))?
    } else {
        write(out, &args.shape)?
    };
    let s = &args.shape;
    eprintln!(
        "dau gen: wrote {} events of {} users (of {} drawn) over {} days ({} to {last}) to {} in {:.1}s",
        written.events,
        written.users,
        s.users,
        s.days,
        s.start,
        text,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the lake into a local temporary folder, then uploads its files below `url`.
async fn to_bucket(config: &Config, url: &str, shape: &Shape) -> Result<Written> {
    let location = storage::open(url, &config.storage)?;
    let store = location.store.as_ref();
    let failed = |e: object_store::Error| storage::storage_error(url, &e, &location.credentials);
    let prefix = Some(&location.root);
    if store
        .list(prefix)
        .next()
        .await
        .transpose()
        .map_err(failed)?
        .is_some()
    {
        return Err(Error::usage(
            format!("--out {url} is not empty"),
            "choose a new prefix, or remove this one first",
        ));
    }
    let temp = std::env::temp_dir().join(format!("dau-gen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    let written = write(&temp, shape);
    let mut files = Vec::new();
    if written.is_ok() {
        list_files(&temp, &mut files).map_err(|e| Error::io("cannot list", &temp, e))?;
        // Empty markers (`_SUCCESS`) mean nothing to readers, and some emulators refuse empty uploads.
        files.retain(|f| f.metadata().is_ok_and(|m| m.len() > 0));
    }
    let uploaded = futures::stream::iter(files)
        .map(|file| {
            let relative = file.strip_prefix(&temp).expect("listed below the folder");
            let mut target = location.root.clone();
            for part in relative.iter() {
                target = target.join(part.to_string_lossy().as_ref());
            }
            async move {
                let bytes = std::fs::read(&file).map_err(|e| Error::io("cannot read", &file, e))?;
                store.put(&target, bytes.into()).await.map_err(failed)?;
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let _ = std::fs::remove_dir_all(&temp);
    let written = written?;
    uploaded.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(written)
}

/// Every file below `dir`, recursively.
fn list_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether the folders in `dir` are the partitions of the days of `shape` (in its `date=` layout
/// with no prefix), and nothing else.
fn has_the_days_of(dir: &Path, shape: &Shape) -> bool {
    if shape.layout != GenLayout::Date || shape.prefix.is_some() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut folders: Vec<String> = (entries.flatten())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(['.', '_']))
        .collect();
    folders.sort();
    let days = (0..shape.days).map(|n| format!("date={}", shape.start + Days::new(n)));
    folders.into_iter().eq(days)
}

/// Makes the lake in `dir` unless a finished one is there. Returns whether it made one.
/// A folder with anything else in it is left alone.
pub fn ensure(dir: &Path, shape: &Shape) -> Result<bool> {
    // A lake of another shape (`dau gen --users 5000` into the folder given) is not this one:
    // the demo called it a lake of 20000 users. (An empty marker is an older dau's, which wrote
    // no shape: its lake is this one when its folders are this shape's days.)
    if let Ok(made) = std::fs::read_to_string(dir.join(COMPLETE_MARKER)) {
        return match made.trim() {
            "" if has_the_days_of(dir, shape) => Ok(false),
            "" => Err(Error::usage(
                format!("{} holds another lake made by dau", dir.display()),
                "choose another folder",
            )),
            made if made == shape.describe() => Ok(false),
            made => Err(Error::usage(
                format!("{} holds another lake made by dau ({made})", dir.display()),
                "choose another folder",
            )),
        };
    }
    if is_occupied(dir) {
        return Err(Error::usage(
            format!(
                "{} is not empty and holds no lake made by dau",
                dir.display()
            ),
            "choose another folder",
        ));
    }
    let temp = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&temp);
    if let Err(e) = write(&temp, shape) {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    let _ = std::fs::remove_dir(dir);
    if let Err(e) = std::fs::rename(&temp, dir) {
        let _ = std::fs::remove_dir_all(&temp);
        // Another dau made it meanwhile: theirs is the same lake.
        if dir.join(COMPLETE_MARKER).is_file() {
            return Ok(false);
        }
        return Err(Error::io("cannot move the sample lake into place", dir, e));
    }
    Ok(true)
}

fn is_occupied(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

impl Shape {
    /// What the lake holds, as its folder's marker keeps it.
    fn describe(&self) -> String {
        format!(
            "{} users over {} days from {}, seed {}, {} file(s) a day, {:?} layout, {:?} ids",
            self.users,
            self.days,
            self.start,
            self.seed,
            self.files_per_day,
            self.layout,
            self.id_type
        )
    }

    /// The last day, or why the days or the folders above them cannot be written.
    fn check(&self) -> Result<NaiveDate> {
        if self.users == 0 || self.days == 0 {
            return Err(Error::usage(
                "--users and --days must be at least 1",
                "e.g. --users 10000 --days 30",
            ));
        }
        let last = (self.start.checked_add_days(Days::new(self.days - 1)))
            .filter(|last| last.year() <= 9999)
            .ok_or_else(|| {
                Error::usage(
                    format!(
                        "--start {} and --days {} go past 9999-12-31",
                        self.start, self.days
                    ),
                    "partition folders name days of four-digit years: choose an earlier --start",
                )
            })?;
        // Folders below --out that a reader lists: not `..`, `/`, nor hidden (`_x`, `.x`).
        // (An empty one is none; one ending in `/` is the folders before it.)
        if let Some(prefix) = self.prefix.as_deref().map(|p| p.trim_end_matches('/'))
            && !prefix.is_empty()
        {
            let bad = prefix
                .split('/')
                .find(|part| part.is_empty() || part.starts_with('.') || part.starts_with('_'));
            if let Some(part) = bad {
                return Err(Error::usage(
                    format!("--prefix {prefix}: '{part}' is no folder below --out a reader lists"),
                    "give folders below --out, such as topics/app_opens (no empty, '.', '..' or \
                     hidden part, no leading /)",
                ));
            }
        }
        Ok(last)
    }
}

/// Writes every day of the lake, in parallel. Returns its events and users.
fn write(out: &Path, shape: &Shape) -> Result<Written> {
    shape.check()?;
    if shape.id_type == IdType::Int32 && shape.users >= 1 << 31 {
        return Err(Error::usage(
            "--id-type int32 holds fewer than 2^31 users",
            "use --id-type int64",
        ));
    }
    let mut users: Vec<User> = Vec::new();
    let room = usize::try_from(shape.users)
        .ok()
        .and_then(|n| users.try_reserve_exact(n).ok());
    if room.is_none() {
        return Err(Error::usage(
            format!("--users {} do not fit in memory", shape.users),
            "draw fewer users",
        ));
    }
    users.extend((0..shape.users).map(|i| User::new(shape, i)));
    let active: Vec<AtomicBool> = users.iter().map(|_| AtomicBool::new(false)).collect();
    let schema = schema(shape);
    let next_day = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut events = 0;
                    loop {
                        let d = next_day.fetch_add(1, Ordering::Relaxed) as u64;
                        if d >= shape.days {
                            return Ok(events);
                        }
                        events += write_day(out, shape, &schema, &users, &active, d)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a generator thread panicked"))
            .collect()
    });
    let events = results.into_iter().sum::<Result<u64>>()?;
    std::fs::write(out.join(COMPLETE_MARKER), shape.describe())
        .map_err(|e| Error::io("cannot write to the lake folder", out, e))?;
    let users = active.iter().filter(|a| a.load(Ordering::Relaxed)).count() as u64;
    Ok(Written { events, users })
}

/// What [`write`] wrote: events, and the users among them.
pub struct Written {
    pub events: u64,
    pub users: u64,
}

/// A user's fixed traits, drawn from the seed and the user's index.
struct User {
    id: u64,
    first_day: u64,
    last_day: u64,
    /// Chance of being active on an ordinary day.
    activity: f64,
    /// Mean number of extra opens on an active day.
    extra_opens: f64,
}

impl User {
    fn new(shape: &Shape, index: u64) -> User {
        let mut rng = Rng::new(shape.seed, index, u64::MAX);
        let first_day = if rng.unit() < 0.4 {
            0
        } else {
            (rng.unit() * shape.days as f64) as u64
        };
        let lifetime = if rng.unit() < 0.3 {
            rng.geometric(4.0)
        } else {
            rng.exponential(150.0)
        };
        let activity = 0.03 + 0.85 * rng.unit().powi(2);
        // A bijection of the index, so ids are unique, sparse and unordered.
        let bits = if shape.id_type == IdType::Int32 {
            31
        } else {
            40
        };
        let id = (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) & ((1 << bits) - 1);
        User {
            id,
            first_day,
            last_day: first_day + lifetime,
            activity,
            extra_opens: 3.0 * activity,
        }
    }
}

/// How much more (or less) active users are on each weekday, Monday first.
const WEEKLY: [f64; 7] = [0.95, 0.97, 0.98, 1.0, 1.05, 1.2, 1.12];

fn write_day(
    out: &Path,
    shape: &Shape,
    schema: &SchemaRef,
    users: &[User],
    active: &[AtomicBool],
    d: u64,
) -> Result<u64> {
    let day = shape.start + Days::new(d);
    let weekly = WEEKLY[day.weekday().num_days_from_monday() as usize];
    let mut ids = Vec::new();
    for (index, user) in users.iter().enumerate() {
        if d < user.first_day || d > user.last_day {
            continue;
        }
        let mut rng = Rng::new(shape.seed, index as u64, d);
        if rng.unit() < (user.activity * weekly).min(1.0) {
            active[index].store(true, Ordering::Relaxed);
            let opens = 1 + rng.geometric(user.extra_opens);
            ids.extend(std::iter::repeat_n(user.id, opens as usize));
        }
    }
    let mut rng = Rng::new(shape.seed, u64::MAX, d);
    for i in (1..ids.len()).rev() {
        ids.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    let folder = out.join(partition(shape, day));
    std::fs::create_dir_all(&folder)
        .map_err(|e| Error::io("cannot create a partition folder", &folder, e))?;
    let files = shape.files_per_day as usize;
    for f in 0..files {
        let chunk = &ids[ids.len() * f / files..ids.len() * (f + 1) / files];
        let path = folder.join(format!("part-{f:05}.parquet"));
        write_file(&path, shape, schema, chunk, day)?;
    }
    std::fs::write(folder.join("_SUCCESS"), b"")
        .map_err(|e| Error::io("cannot write", &folder, e))?;
    Ok(ids.len() as u64)
}

fn partition(shape: &Shape, day: NaiveDate) -> PathBuf {
    let mut path = PathBuf::from(shape.prefix.as_deref().unwrap_or(""));
    match shape.layout {
        GenLayout::Date => path.push(format!("date={day}")),
        GenLayout::Dt => path.push(format!("dt={day}")),
        GenLayout::DtCompact => path.push(format!("dt={}", day.format("%Y%m%d"))),
        GenLayout::Day => path.push(format!("day={day}")),
        GenLayout::Nested => {
            path.push(format!("year={:04}", day.year()));
            path.push(format!("month={:02}", day.month()));
            path.push(format!("day={:02}", day.day()));
        }
        GenLayout::Plain => path.push(day.to_string()),
        GenLayout::PlainNested => path.push(day.format("%Y/%m/%d").to_string()),
    }
    path
}

fn schema(shape: &Shape) -> SchemaRef {
    let id_type = match shape.id_type {
        IdType::Int32 => DataType::Int32,
        IdType::Int64 => DataType::Int64,
        IdType::String => DataType::Utf8,
    };
    let mut fields = vec![Field::new("userId", id_type, false)];
    if shape.with_date_column {
        fields.push(Field::new("date", DataType::Date32, false));
    }
    Arc::new(Schema::new(fields))
}

fn write_file(
    path: &Path,
    shape: &Shape,
    schema: &SchemaRef,
    ids: &[u64],
    day: NaiveDate,
) -> Result<()> {
    let id_column: ArrayRef = match shape.id_type {
        IdType::Int32 => Arc::new(Int32Array::from_iter_values(
            ids.iter().map(|&id| id as i32),
        )),
        IdType::Int64 => Arc::new(Int64Array::from_iter_values(
            ids.iter().map(|&id| id as i64),
        )),
        IdType::String => Arc::new(StringArray::from_iter_values(
            ids.iter().map(|id| format!("u{id}")),
        )),
    };
    let mut columns = vec![id_column];
    if shape.with_date_column {
        columns.push(Arc::new(Date32Array::from_value(to_date32(day), ids.len())));
    }
    let failed = |e: &dyn std::fmt::Display| {
        Error::io(
            "cannot write a Parquet file",
            path,
            std::io::Error::other(e.to_string()),
        )
    };
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| failed(&e))?;
    let file = File::create(path).map_err(|e| Error::io("cannot create", path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| failed(&e))?;
    writer.write(&batch).map_err(|e| failed(&e))?;
    writer.close().map_err(|e| failed(&e))?;
    Ok(())
}

/// SplitMix64: small, fast, and stable across versions (a library generator may change its stream).
struct Rng(u64);

impl Rng {
    /// A generator for one (user, day) pair of one seed.
    fn new(seed: u64, user: u64, day: u64) -> Rng {
        Rng(mix(seed ^ mix(user ^ mix(day))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Failures before a success, with the given mean.
    fn geometric(&mut self, mean: f64) -> u64 {
        let stay = mean / (1.0 + mean);
        ((1.0 - self.unit()).ln() / stay.ln()).floor() as u64
    }

    fn exponential(&mut self, mean: f64) -> u64 {
        (-(1.0 - self.unit()).ln() * mean) as u64
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        for id_type in [IdType::Int32, IdType::Int64] {
            let shape = Shape {
                id_type,
                ..Shape::default()
            };
            let ids: std::collections::HashSet<u64> =
                (0..50_000).map(|i| User::new(&shape, i).id).collect();
            assert_eq!(ids.len(), 50_000);
        }
    }

    #[test]
    fn geometric_mean_is_close() {
        let mut rng = Rng::new(1, 2, 3);
        let n = 100_000;
        let mean = (0..n).map(|_| rng.geometric(2.0)).sum::<u64>() as f64 / n as f64;
        assert!((mean - 2.0).abs() < 0.05, "{mean}");
    }
}
