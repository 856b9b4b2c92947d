//! Partition layouts: which folder names carry a day, and how to find the days below a lake root.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;

use chrono::{Datelike, NaiveDate};
use futures::future::try_join_all;
use object_store::path::{Path, PathPart};
use object_store::{ObjectMeta, ObjectStore};

/// Hive keys that hold a whole day (`YYYY-MM-DD` or `YYYYMMDD`), in the order they are preferred
/// (then `year=` of a nested lake, then any other key whose values are days, such as `ds`).
const DAY_KEYS: [&str; 3] = ["date", "dt", "day"];
/// How many single-folder levels (such as `topics/<topic>/`) discovery walks through.
const MAX_PREFIX_DEPTH: usize = 3;

/// How a day is spelled in the lake's folder names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One folder per day, `key=YYYY-MM-DD` with key `date`, `dt`, `day` or another whose values
    /// are days (`ds`), in any of the `spelling`s.
    Hive { key: String, spelling: Spelling },
    /// One folder per day named by the day alone, `YYYY-MM-DD` or `YYYYMMDD`.
    Bare { spelling: Spelling },
    /// `year=YYYY/month=MM/day=DD`; not `keyed`: `YYYY/MM/DD` (as Kinesis Firehose, Kafka
    /// Connect's time-based partitioner and many exports write).
    Nested { keyed: bool },
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layout::Hive { key, spelling } => write!(f, "{key}={spelling}"),
            Layout::Bare { spelling } => write!(f, "{spelling}"),
            Layout::Nested { keyed: true } => write!(f, "year=YYYY/month=MM/day=DD"),
            Layout::Nested { keyed: false } => write!(f, "YYYY/MM/DD"),
        }
    }
}

/// How the lake's partition values spell their days: as every one is spelled, else `Dashed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// `YYYY-MM-DD`.
    Dashed,
    /// `YYYYMMDD`, as many Hive and Spark jobs write `dt`.
    Compact,
    /// A timestamp, as Spark, pandas (pyarrow), Polars and DuckDB write a partition column of
    /// timestamps: `2024-06-01 00:00:00`, escaped (`%3A`, `%20`), with or without fractions of a
    /// second and a zone. A day's, or (at other times) one of its hours'.
    Timestamp,
    /// `YYYY-MM-DD-HH`: one of the day's hours.
    Hour,
}

impl std::fmt::Display for Spelling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Spelling::Dashed => "YYYY-MM-DD",
            Spelling::Compact => "YYYYMMDD",
            Spelling::Timestamp => "YYYY-MM-DD HH:MM:SS",
            Spelling::Hour => "YYYY-MM-DD-HH",
        })
    }
}

impl Layout {
    /// The day named by the last partition folders of this layout among `folders` (a file's
    /// folders, outermost first), in either spelling of a hive day.
    pub fn day_of(&self, folders: &[String]) -> Option<NaiveDate> {
        match self {
            Layout::Hive { key, .. } => folders.iter().rev().find_map(|f| {
                let (_, value) = key_value(f).filter(|(k, _)| k == key)?;
                parse_hive_day(value)
            }),
            Layout::Bare { .. } => folders.iter().rev().find_map(|f| parse_hive_day(f)),
            Layout::Nested { keyed } => folders.windows(3).rev().find_map(|w| {
                let value = |i: usize, key: &str| nested_value(&w[i], key, *keyed);
                let year = value(0, "year").filter(|y| *keyed || bare_year(y))?;
                parse_nested_day(year, value(1, "month")?, value(2, "day")?)
            }),
        }
    }
}

/// The days found below a root: each day's partition folders (usually one).
#[derive(Debug, Default)]
pub struct Discovered {
    pub layout: Option<Layout>,
    /// The folder the partitions hang from: the root, or a prefix below it such as `topics/app_opens`.
    pub base: Path,
    pub days: BTreeMap<NaiveDate, Vec<Path>>,
    /// Folders that look like partitions but do not name a real day (`date=latest`, `date=2024-13-45`).
    pub skipped: Vec<String>,
    /// Sub-folders seen at the level where discovery gave up, for the error message.
    pub seen: Vec<String>,
    /// Files and folders beside the partitions that are neither partitions nor hidden.
    pub strays: Vec<String>,
    /// Of those, folders that name days in another layout (see [`super::Error::MixedLayouts`]).
    pub others: Vec<String>,
    /// A log folder beside the partitions that says which of their files are data.
    pub table: Option<TableLog>,
    /// For a lake named with a pattern (`events/app=*`), the folders it matched, each a lake.
    pub matched: Vec<String>,
    /// For such a lake, the days some of its lakes lack (with those lakes) while others have
    /// them: left out of `days`, so missing rather than counted without a lake.
    pub incomplete: BTreeMap<NaiveDate, Vec<String>>,
}

/// A file or folder name that is not data: `_SUCCESS`, `_temporary`, `.crc`, `.DS_Store`, and
/// the empty `NAME_$folder$` objects that Hadoop's s3n and Amazon EMR's file system leave beside
/// each folder they make in a bucket (`date=2024-06-01_$folder$`).
pub fn is_hidden(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.') || name.ends_with("_$folder$")
}

/// The value of a nested layout's folder `name` for `key` (`year`, `month` or `day`): `key=value`,
/// or, not `keyed`, the name itself.
fn nested_value<'a>(name: &'a str, key: &str, keyed: bool) -> Option<&'a str> {
    match keyed {
        true => key_value(name).and_then(|(k, v)| (k == key).then_some(v)),
        false => Some(name),
    }
}

/// The key of `key=value` folders whose values are days (`ds`, `event_date`, `partition_date`):
/// of several, the one with the most days, then the first by name.
fn other_day_key(folders: &[String]) -> Option<&str> {
    let mut days: BTreeMap<&str, usize> = BTreeMap::new();
    for (key, value) in folders.iter().filter_map(|f| key_value(f)) {
        if may_name_day(value) {
            *days.entry(key).or_default() += 1;
        }
    }
    let most = days.values().copied().max()?;
    days.into_iter()
        .find(|(_, n)| *n == most)
        .map(|(key, _)| key)
}

/// Whether a hive value names a day, or may (a timestamp with a zone is an hour in a lake of
/// hours, see `hive_days`: pyarrow's hours of a zone half an hour off UTC, such as
/// `hour=2024-04-04 18:30:00Z`, are never at midnight).
fn may_name_day(value: &str) -> bool {
    parse_hive_day(value).is_some() || timestamp(value).is_some()
}

/// Whether `folder`, which names a day, holds folders that name days too (`ingest_date=…/date=…`,
/// or a single `snapshot=20240601/` above a lake): then its day is not the lake's day. Folders
/// of its hours (`hour=2024-06-01 13:00:00`, as pandas writes `partition_cols=["ds", "hour"]`)
/// are not days.
async fn holds_days(store: Store<'_>, folder: &Path) -> object_store::Result<bool> {
    let inner = child_folders(store, folder).await?;
    Ok(inner
        .iter()
        .any(|f| folder_day(f).is_some() && folder_time(f).is_none()))
}

/// A folder name that could be a year of a `YYYY/MM/DD` lake: four digits.
fn bare_year(name: &str) -> bool {
    name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit())
}

/// `key=value` → (key, value).
fn key_value(name: &str) -> Option<(&str, &str)> {
    name.split_once('=')
}

/// The day a folder named `key=DAY`, or `DAY` alone, names.
pub fn folder_day(name: &str) -> Option<NaiveDate> {
    parse_hive_day(key_value(name).map_or(name, |(_, value)| value))
}

/// Parses a hive day value, `YYYY-MM-DD` or `YYYYMMDD` exactly, or a timestamp of the day.
pub fn parse_hive_day(value: &str) -> Option<NaiveDate> {
    hive_day(value).map(|(day, _)| day)
}

/// The day a hive value names, and how it spells it.
fn hive_day(value: &str) -> Option<(NaiveDate, Spelling)> {
    hive_value(value).map(|(day, spelling, _)| (day, spelling))
}

/// The day a hive value names, how it spells it, and the time of day it names, if it names one.
fn hive_value(value: &str) -> Option<(NaiveDate, Spelling, Option<chrono::NaiveTime>)> {
    hive_value_of(value, false)
}

/// [`hive_value`], in a lake whose timestamps with a zone are hours (`zoned_hours`): each is of
/// the day it is written in, as one without a zone is.
fn hive_value_of(
    value: &str,
    zoned_hours: bool,
) -> Option<(NaiveDate, Spelling, Option<chrono::NaiveTime>)> {
    let (format, spelling) = match value.len() {
        10 => ("%Y-%m-%d", Spelling::Dashed),
        8 if value.bytes().all(|b| b.is_ascii_digit()) => ("%Y%m%d", Spelling::Compact),
        13 => return dashed_hour(value).map(|(day, at)| (day, Spelling::Hour, Some(at))),
        11.. => {
            let (day, at, zoned) = timestamp(value)?;
            let named = !zoned || zoned_hours || at == chrono::NaiveTime::MIN;
            return named.then_some((day, Spelling::Timestamp, Some(at)));
        }
        _ => return None,
    };
    Some((
        NaiveDate::parse_from_str(value, format).ok()?,
        spelling,
        None,
    ))
}

/// The day and time of a timestamp value, `YYYY-MM-DD HH:MM:SS` (or `T`), percent-escaped or not,
/// with or without fractions of a second and a zone (`Z`, `+0200`, `-04:00`), and whether it has
/// a zone. Without a zone, the writer's own clock says the day (Spark writes its session's time
/// zone's): any time of day is that day's (an hour's folder, such as pandas writes for
/// `ts.dt.floor("h")`). With a zone, only midnight names a day (see [`hive_value_of`]): another
/// time is an instant whose day depends on a time zone it does not give (pyarrow writes a New
/// York midnight as `04:00:00Z`), unless the lake's folders are at more than two times of day:
/// hours.
fn timestamp(value: &str) -> Option<(NaiveDate, chrono::NaiveTime, bool)> {
    let value = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()?;
    let (day, time) = (value.get(..10)?, value.get(10..)?);
    let time = time.strip_prefix([' ', 'T'])?;
    let (time, zoned) = match time.strip_suffix('Z') {
        Some(time) => (time, true),
        None => match time.rfind(['+', '-']) {
            Some(at) if zone(&time[at + 1..]) => (&time[..at], true),
            _ => (time, false),
        },
    };
    let at = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveTime::parse_from_str(time, "%H:%M"))
        .ok()?;
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    Some((day, at, zoned))
}

/// A day's hour `YYYY-MM-DD-HH`, as Kafka Connect's time-based partitioner writes
/// `'dt'=YYYY-MM-dd-HH`.
fn dashed_hour(value: &str) -> Option<(NaiveDate, chrono::NaiveTime)> {
    let (day, hour) = value.split_at_checked(10)?;
    let hour = hour.strip_prefix('-')?;
    if hour.len() != 2 || !hour.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let at = chrono::NaiveTime::from_hms_opt(hour.parse().ok()?, 0, 0)?;
    Some((NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?, at))
}

/// The time of day a partition folder `key=TIMESTAMP` or `key=YYYY-MM-DD-HH` names (its hour),
/// if it names one.
pub fn folder_time(name: &str) -> Option<chrono::NaiveTime> {
    // (A folder at an hour with a zone is one only in a lake of zoned hours.)
    hive_value_of(key_value(name).map_or(name, |(_, value)| value), true)?.2
}

/// Whether `offset` is a zone offset's hours and minutes: `HH`, `HHMM` or `HH:MM`.
fn zone(offset: &str) -> bool {
    let digits: String = offset.chars().filter(|c| *c != ':').collect();
    matches!(digits.len(), 2 | 4)
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (offset.len() == digits.len() || offset.as_bytes().get(2) == Some(&b':'))
}

/// Parses `year=`, `month=`, `day=` numbers into a real day.
pub fn parse_nested_day(year: &str, month: &str, day: &str) -> Option<NaiveDate> {
    let number = |s: &str, max_len: usize| -> Option<u32> {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    NaiveDate::from_ymd_opt(number(year, 4)? as i32, number(month, 2)?, number(day, 2)?)
}

/// The store a lake is in, and whether that is this machine's file system (rooted at `/`).
#[derive(Clone, Copy)]
pub struct Store<'a> {
    pub objects: &'a dyn ObjectStore,
    pub local: bool,
}

/// A log folder beside the partitions that says which of their files are data: the folders keep
/// files the log does not have (left by failed writes; for table formats, also replaced by
/// compaction, deletes and updates) until they are cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableLog {
    /// A table format's log, which dau does not read: its folder's name, the format's (with its
    /// article), and what the folder is beside.
    Unread(&'static str, &'static str, &'static str),
    /// Spark's file sink log (see [`super::spark_log`]), which dau reads.
    Spark,
}

/// The log folders of table formats dau does not read, beside the partitions.
const UNREAD_LOGS: [(&str, &str); 2] = [
    ("_delta_log", "a Delta Lake"),
    (".hoodie", "an Apache Hudi"),
];

/// An Apache Iceberg table: its `metadata/` folder (which holds `*.metadata.json`) is beside its
/// `data/` folder, below which its partitions are.
const ICEBERG: TableLog = TableLog::Unread("metadata", "an Apache Iceberg", "its data/ folder");

/// Whether `table` is an Iceberg table's folder: its `metadata/` holds a `*.metadata.json`.
async fn is_iceberg(store: Store<'_>, table: &Path) -> object_store::Result<bool> {
    let metadata = table.clone().join("metadata");
    let listed = store.objects.list_with_delimiter(Some(&metadata)).await?;
    Ok((listed.objects.iter()).any(|o| {
        o.location
            .filename()
            .is_some_and(|n| n.ends_with(".metadata.json"))
    }))
}

/// The folder `name` (as listed) in `dir`, as named: `Path::join` would escape a `%` in it, and a
/// partition column of timestamps is written `date=2024-06-01%2000%3A00%3A00`.
fn child(dir: &Path, name: &str) -> Path {
    dir.clone()
        .join(PathPart::parse(name).unwrap_or_else(|_| PathPart::from(name)))
}

/// Child folder names of `dir` (hidden ones left out), sorted.
async fn child_folders(store: Store<'_>, dir: &Path) -> object_store::Result<Vec<String>> {
    Ok(children(store, dir).await?.0)
}

/// The names of the folders and of the files directly in `dir`, hidden ones left out, sorted;
/// and a log folder among them that says which files are data (one dau does not read first).
async fn children(
    store: Store<'_>,
    dir: &Path,
) -> object_store::Result<(Vec<String>, Vec<String>, Option<TableLog>)> {
    let (mut folders, mut files) = match store.local {
        true => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || local_children(&dir))
                .await
                .expect("listing a folder does not panic")?
        }
        false => {
            let listing = store.objects.list_with_delimiter(Some(dir)).await?;
            let names = |paths: &mut dyn Iterator<Item = &Path>| -> Vec<String> {
                paths
                    .filter_map(|p| p.filename().map(str::to_string))
                    .collect()
            };
            // (Not the folder itself: a bucket's marker object for it, `dir/`, listed as `dir`.)
            let objects = listing.objects.iter().map(|o| &o.location);
            let files = names(&mut objects.filter(|location| *location != dir));
            (names(&mut listing.common_prefixes.iter()), files)
        }
    };
    let has = |name: &str| folders.iter().any(|f| f == name);
    let table = (UNREAD_LOGS.into_iter())
        .find(|(log, _)| has(log))
        .map(|(log, format)| TableLog::Unread(log, format, "its partitions"))
        .or(has(super::spark_log::FOLDER).then_some(TableLog::Spark));
    for names in [&mut folders, &mut files] {
        names.retain(|name| !is_hidden(name));
        names.sort();
    }
    Ok((folders, files, table))
}

/// A local store's folder on this machine's file system: the store keeps the lake's folder as
/// its names are (not as a URL: a `#` or `?` in them is no fragment or query).
pub fn local_path(dir: &Path) -> std::path::PathBuf {
    std::path::Path::new("/").join(dir.as_ref())
}

/// What the local store's `list_with_delimiter` gives, from one read of the folder: it opens
/// every child folder as well (to guard against link loops, which one level cannot have): 365
/// opens for a year of days, ~3 ms of every query. Links are followed.
fn local_children(dir: &Path) -> object_store::Result<(Vec<String>, Vec<String>)> {
    let failed = |source: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(source),
    };
    let folder = local_path(dir);
    let (mut folders, mut files) = (Vec::new(), Vec::new());
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        // As the store: a folder that is not there has nothing in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((folders, files)),
        Err(e) => return Err(failed(e)),
    };
    for entry in entries {
        let entry = entry.map_err(failed)?;
        let kind = match entry.file_type().map_err(failed)? {
            kind if kind.is_symlink() => match std::fs::metadata(entry.path()) {
                Ok(target) => target.file_type(),
                // A link to nothing is left out, as the store leaves it out.
                Err(_) => continue,
            },
            kind => kind,
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        match kind.is_dir() {
            true => folders.push(name),
            false => files.push(name),
        }
    }
    Ok((folders, files))
}

/// The files below the local folder `dir`, its sub-folders' included, as the local store's
/// `list` gives them, from one read of each folder. The store's walk costs ~80 µs a day folder
/// (~30 ms of a query over a year of rollups). Names are spelled as the store spells them (as
/// they are on disk). A file whose name ends in `#` and digits, which the store leaves out as its
/// own unfinished upload, is listed, as a bucket lists it (`run#2024` was not counted, and
/// another writer's unfinished file is a bad file, named). Links are followed: a link to a file is listed as the
/// file it points to; a link to nothing is listed too, with no bytes, where the store would leave
/// it out silently (so the query names it instead of undercounting the day). None when the store
/// must list it, and then fails saying why: a name that is not UTF-8 or holds a control
/// character, a link back to a folder it is in, or a folder that cannot be read.
pub fn local_files(dir: &Path) -> Option<Vec<ObjectMeta>> {
    let mut files = Vec::new();
    walk_local(&local_path(dir), dir, &mut Vec::new(), &mut files)?;
    Some(files)
}

/// Lists `folder` (the store's `at`) into `files`; `within` holds the folders it is in, as
/// (device, inode), to tell a link loop.
fn walk_local(
    folder: &std::path::Path,
    at: &Path,
    within: &mut Vec<(u64, u64)>,
    files: &mut Vec<ObjectMeta>,
) -> Option<()> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        // As the store: a folder that is not there has nothing in it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(()),
        Err(_) => return None,
    };
    let this = std::fs::metadata(folder).ok()?;
    let this = (this.dev(), this.ino());
    if within.contains(&this) {
        return None;
    }
    within.push(this);
    for entry in entries {
        let entry = entry.ok()?;
        let name = entry.file_name();
        // (Hidden ones are not data files: `Lake::files` leaves them out, whatever their name.)
        if is_hidden(&name.to_string_lossy()) {
            continue;
        }
        let name = name.into_string().ok()?;
        let location = at.clone().join(PathPart::parse(&name).ok()?);
        let link = entry.file_type().ok()?.is_symlink();
        // Through a link, the file or folder it points to; None for a link to nothing.
        let target = match std::fs::metadata(entry.path()) {
            Ok(meta) => Some(meta),
            Err(e) if link && e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => return None,
        };
        match target {
            Some(meta) if meta.is_dir() => walk_local(&entry.path(), &location, within, files)?,
            // A link to nothing, with no bytes, so that the query names it.
            None => files.push(ObjectMeta {
                location,
                last_modified: entry.metadata().ok()?.modified().ok()?.into(),
                size: 0,
                e_tag: None,
                version: None,
            }),
            Some(meta) if meta.is_file() => {
                let modified = meta.modified().ok()?;
                let micros = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_micros();
                files.push(ObjectMeta {
                    location,
                    last_modified: modified.into(),
                    size: meta.len(),
                    // The store's tag: inode, modification time in microseconds and size, in hex.
                    e_tag: Some(format!("{:x}-{micros:x}-{:x}", meta.ino(), meta.len())),
                    version: None,
                });
            }
            // (Sockets, pipes and devices are not listed, as by the store.)
            Some(_) => {}
        }
    }
    within.pop();
    Some(())
}

/// Where the local file `location` points, when it is a link to nothing.
pub fn dangling_link(location: &Path) -> Option<std::path::PathBuf> {
    let path = local_path(location);
    let link = std::fs::symlink_metadata(&path).ok()?;
    let dangling = link.file_type().is_symlink() && std::fs::metadata(&path).is_err();
    dangling.then(|| std::fs::read_link(&path).ok()).flatten()
}

/// Finds the layout and every day below `root`, walking through single-folder prefixes. With
/// `near` (first and last day wanted), a nested lake lists only the months that overlap those
/// days, and its first and last month (so the lake's extent is still known): a few requests
/// instead of one per month of its history.
pub async fn discover(
    store: Store<'_>,
    root: &Path,
    near: Option<(NaiveDate, NaiveDate)>,
) -> object_store::Result<Discovered> {
    // A lake named as an Iceberg table's `data/` folder.
    let parts: Vec<PathPart<'_>> = root.parts().collect();
    if let Some((last, table)) = parts.split_last()
        && last.as_ref() == "data"
        && is_iceberg(store, &Path::from_iter(table.iter().cloned())).await?
    {
        return Ok(Discovered {
            base: root.clone(),
            table: Some(ICEBERG),
            ..Discovered::default()
        });
    }
    let mut base = root.clone();
    for _ in 0..=MAX_PREFIX_DEPTH {
        let (folders, files, table) = children(store, &base).await?;
        let has = |name: &str| folders.iter().any(|f| f == name);
        if has("data") && has("metadata") && is_iceberg(store, &base).await? {
            return Ok(Discovered {
                base,
                table: Some(ICEBERG),
                ..Discovered::default()
            });
        }
        let has_key = |key: &str| {
            folders
                .iter()
                .any(|f| key_value(f).is_some_and(|(k, _)| k == key))
        };
        // Of the usual keys, the one with the most folders that name days (`date=latest` alone
        // beside `ds=` days is no lake of `date=`), else `year`.
        let days_of = |key: &str| {
            (folders.iter())
                .filter(|f| {
                    key_value(f).is_some_and(|(k, v)| k == key && parse_hive_day(v).is_some())
                })
                .count()
        };
        let most = DAY_KEYS.into_iter().map(days_of).max().unwrap_or(0);
        let mut key = (DAY_KEYS.into_iter())
            .find(|k| most > 0 && days_of(k) == most)
            .or(has_key("year").then_some("year"));
        if key.is_none()
            && let Some(other) = other_day_key(&folders)
        {
            let first = (folders.iter())
                .find(|f| key_value(f).is_some_and(|(k, v)| k == other && may_name_day(v)));
            let first = first.expect("a day");
            key = (!holds_days(store, &child(&base, first)).await?).then_some(other);
        }
        // Days named by folders without keys: `YYYY-MM-DD/`, or `YYYY/MM/DD/`.
        let bare = match key {
            Some(_) => None,
            None if let Some(first) = folders.iter().find(|f| parse_hive_day(f).is_some()) => {
                let holds = holds_days(store, &child(&base, first)).await?;
                (!holds).then(|| hive_days(&base, None, &folders))
            }
            None if folders.iter().any(|f| bare_year(f)) => {
                Some(nested_days(store, &base, &folders, near, false).await?)
                    .filter(|found| !found.days.is_empty())
            }
            None => None,
        };
        if let Some(mut found) = bare {
            found.table = table;
            let nested = matches!(found.layout, Some(Layout::Nested { .. }));
            found.others = (folders.iter())
                .filter(|f| match nested {
                    true => folder_day(f).is_some(),
                    false => {
                        key_value(f).is_some_and(|(_, v)| parse_hive_day(v).is_some())
                            || bare_year(f)
                    }
                })
                .cloned()
                .collect();
            found.strays = (folders.iter())
                .filter(|f| parse_hive_day(f).is_none() && !bare_year(f))
                .filter(|f| !found.skipped.contains(f))
                .map(|f| format!("{f}/"))
                .chain(files)
                .collect();
            return Ok(found);
        }
        // Else a usual key whose folders name no day (`date=latest`): said so.
        let Some(key) = key.or(DAY_KEYS.into_iter().find(|k| has_key(k))) else {
            match folders.as_slice() {
                [only] if files.is_empty() => {
                    base = child(&base, only);
                    continue;
                }
                _ => {
                    return Ok(Discovered {
                        base,
                        seen: folders,
                        strays: files,
                        ..Discovered::default()
                    });
                }
            }
        };
        let mut found = if key == "year" {
            nested_days(store, &base, &folders, near, true).await?
        } else {
            hive_days(&base, Some(key), &folders)
        };
        found.table = table;
        // Days of another layout beside these: `dt=…` beside `date=…` (a writer that changed
        // its layout), `year=…` beside `day=…`, or `YYYY-MM-DD` beside any.
        found.others = (folders.iter())
            .filter(|f| match key_value(f) {
                Some((k, _)) if k == key => false,
                Some(("year", _)) => true,
                Some((_, v)) => DAY_KEYS.contains(&key) && parse_hive_day(v).is_some(),
                None => parse_hive_day(f).is_some() || bare_year(f),
            })
            .cloned()
            .collect();
        found.strays = folders
            .iter()
            .filter(|f| key_value(f).is_none_or(|(k, _)| k != key))
            .map(|f| format!("{f}/"))
            .chain(files)
            .collect();
        return Ok(found);
    }
    Ok(Discovered {
        base,
        ..Discovered::default()
    })
}

/// The lakes in the folders of `root` that `pattern` matches (`app=*`: `*` is any text; `{a,b}`
/// either), as one lake: each day's folders are those of all of them. Each must have days, all
/// in one layout, and no Spark log (which lists its own lake's files); `Err` says which does not.
pub async fn discover_matching(
    store: Store<'_>,
    root: &Path,
    pattern: &str,
    near: Option<(NaiveDate, NaiveDate)>,
) -> object_store::Result<Result<Discovered, String>> {
    let folders = child_folders(store, root).await?;
    let matched: Vec<String> = (folders.iter())
        .filter(|f| glob(pattern, f))
        .cloned()
        .collect();
    if matched.is_empty() {
        let found = match folders.is_empty() {
            true => "it has no folders".to_string(),
            false => format!("it has {}", folders.join(", ")),
        };
        return Ok(Err(format!("no folder matches '{pattern}': {found}")));
    }
    let roots: Vec<Path> = matched.iter().map(|m| child(root, m)).collect();
    let lakes = try_join_all(roots.iter().map(|r| discover(store, r, near)));
    let mut all = Discovered {
        base: root.clone(),
        ..Discovered::default()
    };
    let mut spans = Vec::new();
    for (name, lake) in matched.iter().zip(lakes.await?) {
        match lake.table {
            Some(TableLog::Spark) => {
                return Ok(Err(format!(
                    "{name} is a Spark streaming sink, whose log lists the files of its own \
                     folder: name it alone"
                )));
            }
            Some(TableLog::Unread(..)) => return Ok(Ok(lake)),
            None => {}
        }
        let Some(layout) = lake.layout.filter(|_| !lake.days.is_empty()) else {
            return Ok(Err(format!("{name} has no date partitions")));
        };
        match &all.layout {
            Some(first) if *first != layout => {
                return Ok(Err(format!(
                    "{} is laid out as {first} and {name} as {layout}",
                    matched[0]
                )));
            }
            _ => all.layout = Some(layout),
        }
        let days: BTreeSet<NaiveDate> = lake.days.keys().copied().collect();
        spans.push((name, days));
        for (day, folders) in lake.days {
            all.days.entry(day).or_default().extend(folders);
        }
        let within = |found: Vec<String>| found.into_iter().map(move |f| format!("{name}/{f}"));
        all.skipped.extend(within(lake.skipped));
        all.strays.extend(within(lake.strays));
    }
    // A day a lake lacks after its first day (a writer behind, or failed) would be counted
    // without that lake's users: it is missing instead. (Before its first day, the lake was not.)
    for day in all.days.keys() {
        let lacking: Vec<String> = (spans.iter())
            .filter(|(_, days)| days.first().is_some_and(|first| first < day))
            .filter(|(_, days)| !days.contains(day))
            .map(|(name, _)| name.to_string())
            .collect();
        if !lacking.is_empty() {
            all.incomplete.insert(*day, lacking);
        }
    }
    all.days.retain(|day, _| !all.incomplete.contains_key(day));
    all.matched = matched;
    Ok(Ok(all))
}

/// Whether `name` is as `pattern` says, where `*` is any text (none too) and `{a,b}` either.
fn glob(pattern: &str, name: &str) -> bool {
    if let Some(open) = pattern.find('{')
        && let Some(length) = pattern[open..].find('}')
    {
        let (head, tail) = (&pattern[..open], &pattern[open + length + 1..]);
        let either = pattern[open + 1..open + length].split(',');
        return either
            .into_iter()
            .any(|one| glob(&format!("{head}{one}{tail}"), name));
    }
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The days of a lake with a folder per day: `key=day`, or without a key, the day alone (where
/// other folders are strays, not skipped partitions, unless they start with a digit).
fn hive_days(base: &Path, key: Option<&str>, folders: &[String]) -> Discovered {
    let mut found = Discovered {
        base: base.clone(),
        ..Discovered::default()
    };
    fn value_of<'a>(key: Option<&str>, name: &'a str) -> Option<&'a str> {
        match key {
            Some(key) => key_value(name).filter(|(k, _)| *k == key).map(|(_, v)| v),
            None => Some(name),
        }
    }
    // Timestamps with a zone at more than two times of day are hours (pyarrow's partitions of
    // an hour of a zoned timestamp): each is of the day it is written in. (Read as days, the
    // midnight hour alone counted for each day.) An odd one beside midnights is still no day.
    let zoned_times: BTreeSet<chrono::NaiveTime> = (folders.iter())
        .filter_map(|name| value_of(key, name))
        .filter_map(timestamp)
        .filter(|(_, _, zoned)| *zoned)
        .map(|(_, at, _)| at)
        .collect();
    let zoned_hours = zoned_times.len() > 2;
    let mut spellings = Vec::new();
    for name in folders {
        let Some(value) = value_of(key, name) else {
            continue;
        };
        match hive_value_of(value, zoned_hours) {
            Some((day, spelling, _)) => {
                spellings.push(spelling);
                let partition = child(base, name);
                found.days.entry(day).or_default().push(partition);
            }
            // Without a key, a folder that starts as a day does is a day misspelt
            // (`2024-1-2`, `2024-01-02 `): warned of as a keyed one is, not left out in silence.
            None if key.is_some() || name.starts_with(|c: char| c.is_ascii_digit()) => {
                found.skipped.push(name.clone())
            }
            None => {}
        }
    }
    let spelling = match spellings.split_first() {
        Some((first, rest)) if rest.iter().all(|s| s == first) => *first,
        _ => Spelling::Dashed,
    };
    found.layout = Some(match key {
        Some(key) => Layout::Hive {
            key: key.to_string(),
            spelling,
        },
        None => Layout::Bare { spelling },
    });
    found
}

/// Keeps the (year, month) pairs a discovery needs: those between `near`'s months, and the first and
/// last. Without `near`, all of them.
fn wanted<T>(mut items: Vec<((i32, u32), T)>, near: Option<(NaiveDate, NaiveDate)>) -> Vec<T> {
    items.sort_by_key(|(key, _)| *key);
    let Some((from, to)) = near else {
        return items.into_iter().map(|(_, t)| t).collect();
    };
    let (first, last) = match (items.first(), items.last()) {
        (Some(first), Some(last)) => (first.0, last.0),
        _ => return Vec::new(),
    };
    let range = (from.year(), from.month())..=(to.year(), to.month());
    items
        .into_iter()
        .filter(|(key, _)| *key == first || *key == last || range.contains(key))
        .map(|(_, t)| t)
        .collect()
}

/// The days of a `year=YYYY/month=MM/day=DD` lake, or, not `keyed`, a `YYYY/MM/DD` one.
async fn nested_days(
    store: Store<'_>,
    base: &Path,
    years: &[String],
    near: Option<(NaiveDate, NaiveDate)>,
    keyed: bool,
) -> object_store::Result<Discovered> {
    let mut found = Discovered {
        layout: Some(Layout::Nested { keyed }),
        base: base.clone(),
        ..Discovered::default()
    };
    // (year, month) folders, listed concurrently year by year, then their day folders.
    // A year is keyed by its January, so that `near` keeps the years it overlaps; folders that
    // name no number are looked into only when all are.
    let number = |v: &str| v.parse::<u32>().ok().filter(|n| *n <= 9999);
    let years: Vec<((i32, u32), (String, Path))> = years
        .iter()
        .filter_map(|y| {
            let v = nested_value(y, "year", keyed).filter(|v| keyed || bare_year(v))?;
            let key = (number(v).map_or(-1, |n| n as i32), 1);
            Some((key, (v.to_string(), child(base, y))))
        })
        .filter(|(key, _)| near.is_none() || key.0 >= 0)
        .collect();
    let years = match near {
        // Whole years: a year overlaps when any of its months does.
        Some((from, to)) => wanted(
            years,
            Some((
                from.with_month(1).unwrap_or(from),
                to.with_month(1).unwrap_or(to),
            )),
        ),
        None => wanted(years, None),
    };
    let months = try_join_all(years.iter().map(|(_, path)| child_folders(store, path))).await?;
    let mut month_paths = Vec::new();
    for ((year, year_path), months) in years.iter().zip(months) {
        for m in months {
            if let Some(month) = nested_value(&m, "month", keyed) {
                let key = (
                    number(year).map_or(-1, |n| n as i32),
                    number(month).unwrap_or(0),
                );
                month_paths.push((key, (year.clone(), month.to_string(), child(year_path, &m))));
            }
        }
    }
    let month_paths = wanted(month_paths, near);
    let days = try_join_all(
        month_paths
            .iter()
            .map(|(_, _, path)| child_folders(store, path)),
    )
    .await?;
    for ((year, month, month_path), days) in month_paths.iter().zip(days) {
        for d in days {
            let Some(day) = nested_value(&d, "day", keyed) else {
                continue;
            };
            match parse_nested_day(year, month, day) {
                Some(date) => found
                    .days
                    .entry(date)
                    .or_default()
                    .push(child(month_path, &d)),
                None if keyed => found.skipped.push(format!("year={year}/month={month}/{d}")),
                None => found.skipped.push(format!("{year}/{month}/{d}")),
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {

    use std::os::unix::ffi::OsStrExt;

    use futures::TryStreamExt;

    use super::*;

    /// A folder read directly lists what the local store lists: folders and files, links
    /// followed (a broken one left out), hidden names dropped, odd names as they are.
    #[tokio::test]
    async fn local_folders_list_as_the_store_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        for folder in [
            "date=2024-06-01",
            "weird name%x",
            ".hidden",
            "_tmp",
            "x/y",
            "_delta_log",
        ] {
            std::fs::create_dir_all(root.join(folder)).unwrap();
        }
        std::fs::create_dir(elsewhere.path().join("day")).unwrap();
        for file in ["stray.txt", "date=2024-06-01/part.parquet", ".crc", "ü.txt"] {
            std::fs::write(root.join(file), b"x").unwrap();
        }
        let link = |target: &std::path::Path, name: &str| {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        };
        link(&elsewhere.path().join("day"), "date=2024-06-02");
        link(&root.join("stray.txt"), "linked.txt");
        link(&root.join("nothing"), "date=2024-06-03");
        let store = object_store::local::LocalFileSystem::new();
        let listed = |local: bool, folder: &std::path::Path| {
            let store = Store {
                objects: &store,
                local,
            };
            let path = Path::from_absolute_path(folder).unwrap();
            async move { children(store, &path).await.unwrap() }
        };
        let direct = listed(true, &root).await;
        assert_eq!(direct, listed(false, &root).await);
        assert_eq!(
            direct.0,
            ["date=2024-06-01", "date=2024-06-02", "weird name%x", "x"]
        );
        assert_eq!(direct.1, ["linked.txt", "stray.txt", "ü.txt"]);
        assert_eq!(
            direct.2,
            Some(TableLog::Unread(
                "_delta_log",
                "a Delta Lake",
                "its partitions"
            ))
        );
        // A folder that is not there has nothing in it, as in the store.
        let gone = root.join("gone");
        assert_eq!(listed(true, &gone).await, (vec![], vec![], None));
        assert_eq!(listed(false, &gone).await, (vec![], vec![], None));
    }

    /// A day folder read directly lists the files the local store lists (hidden ones aside),
    /// with the same names, sizes, times and tags, through links too; what the store cannot list
    /// is left to it.
    #[tokio::test]
    async fn local_day_files_list_as_the_store_lists_them() {
        let dir = tempfile::tempdir().unwrap();
        let day = std::fs::canonicalize(dir.path())
            .unwrap()
            .join("date=2024-06-01");
        for folder in ["hour=01", "hour=02/deeper", ".tmp", "_staging"] {
            std::fs::create_dir_all(day.join(folder)).unwrap();
        }
        let files = [
            "part-0.parquet",
            "hour=01/a.parquet",
            "hour=02/deeper/b.c000.snappy.parquet",
            "_SUCCESS",
            ".part-0.parquet.crc",
            ".tmp/c.parquet",
            "_staging/d.parquet",
        ];
        for (i, file) in files.iter().enumerate() {
            std::fs::write(day.join(file), vec![7u8; i * 10]).unwrap();
        }
        let store = object_store::local::LocalFileSystem::new();
        let stored = |folder: &std::path::Path| {
            let path = Path::from_absolute_path(folder).unwrap();
            let store = &store;
            async move {
                let mut listed: Vec<ObjectMeta> =
                    store.list(Some(&path)).try_collect().await.unwrap();
                listed.retain(|m| {
                    let parts = m.location.prefix_match(&path).unwrap();
                    parts.into_iter().all(|p| !is_hidden(p.as_ref()))
                });
                listed.sort_by(|a, b| a.location.cmp(&b.location));
                listed
            }
        };
        let direct = |folder: &std::path::Path| {
            let listed = local_files(&Path::from_absolute_path(folder).unwrap());
            listed.map(|mut listed| {
                listed.sort_by(|a, b| a.location.cmp(&b.location));
                listed
            })
        };
        let expected = stored(&day).await;
        assert_eq!(expected.len(), 3);
        assert_eq!(direct(&day), Some(expected));
        // A folder that is not there has nothing in it, as in the store.
        let gone = day.with_file_name("gone");
        assert_eq!(direct(&gone), Some(stored(&gone).await));
        assert_eq!(direct(&gone), Some(vec![]));
        // Any name the store reads is spelled as the store spells it; a file named as the store's
        // upload's part, which the store leaves out, is listed as a bucket lists it.
        for (i, odd) in ["weird name%x.parquet", "ü #?.parquet", "x#1", "x#1.parquet"]
            .iter()
            .enumerate()
        {
            let folder = day.with_file_name(format!("odd{i}"));
            std::fs::create_dir(&folder).unwrap();
            std::fs::write(folder.join(odd), b"x").unwrap();
            let listed = direct(&folder).unwrap();
            assert_eq!(listed.len(), 1, "{odd}");
            if *odd != "x#1" {
                assert_eq!(listed, stored(&folder).await, "{odd}");
            }
        }
        // A link to a folder is followed, as by the store.
        let folder_link = day.with_file_name("folder-link");
        std::fs::create_dir(&folder_link).unwrap();
        std::os::unix::fs::symlink(&day, folder_link.join("a")).unwrap();
        assert_eq!(direct(&folder_link).unwrap().len(), 3);
        assert_eq!(direct(&folder_link), Some(stored(&folder_link).await));
        // What the store cannot list is left to it, to say why: a link loop, a name that is not
        // UTF-8 or holds a control character.
        let looped = day.with_file_name("looped");
        std::fs::create_dir(&looped).unwrap();
        std::os::unix::fs::symlink(&looped, looped.join("again")).unwrap();
        assert_eq!(direct(&looped), None);
        let store_fails = |folder: &std::path::Path| {
            let path = Path::from_absolute_path(folder).unwrap();
            let listed = store.list(Some(&path)).try_collect::<Vec<_>>();
            async move { listed.await.is_err() }
        };
        assert!(store_fails(&looped).await);
        let bad_names = [
            std::ffi::OsStr::from_bytes(b"line\nbreak.parquet"),
            std::ffi::OsStr::from_bytes(b"latin1-\xe9.parquet"),
        ];
        // (Hidden, any name is passed over.)
        let hidden = day.with_file_name("hidden");
        std::fs::create_dir(&hidden).unwrap();
        std::fs::write(hidden.join(std::ffi::OsStr::from_bytes(b".\xe9")), b"x").unwrap();
        assert_eq!(direct(&hidden), Some(vec![]));
        for (i, bad) in bad_names.iter().enumerate() {
            let folder = day.with_file_name(format!("bad{i}"));
            std::fs::create_dir(&folder).unwrap();
            std::fs::write(folder.join(bad), b"x").unwrap();
            assert_eq!(direct(&folder), None, "{bad:?}");
            assert!(store_fails(&folder).await, "{bad:?}");
        }
        // A link to a file is the file, as in the store; a link to nothing is listed with no
        // bytes, where the store leaves it out.
        let linked = day.with_file_name("linked");
        std::fs::create_dir(&linked).unwrap();
        std::os::unix::fs::symlink(day.join("part-0.parquet"), linked.join("a.parquet")).unwrap();
        assert_eq!(direct(&linked), Some(stored(&linked).await));
        std::os::unix::fs::symlink(day.join("gone.parquet"), linked.join("b.parquet")).unwrap();
        let listed = direct(&linked).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(
            (listed[1].location.filename(), listed[1].size),
            (Some("b.parquet"), 0)
        );
        assert_eq!(
            dangling_link(&listed[1].location),
            Some(day.join("gone.parquet"))
        );
        assert_eq!(dangling_link(&listed[0].location), None);
        assert_eq!(stored(&linked).await.len(), 1);
        // Whatever its name.
        std::os::unix::fs::symlink(day.join("gone"), linked.join("c %ü.parquet")).unwrap();
        let listed = direct(&linked).unwrap();
        assert_eq!(listed[2].location.filename(), Some("c %ü.parquet"));
        assert_eq!(dangling_link(&listed[2].location), Some(day.join("gone")));
        assert_eq!(stored(&linked).await.len(), 1);
    }

    #[test]
    fn hive_values() {
        for spelled in ["2024-06-18", "20240618"] {
            assert_eq!(
                parse_hive_day(spelled),
                NaiveDate::from_ymd_opt(2024, 6, 18)
            );
        }
        for bad in [
            "latest",
            "2024-13-45",
            "2024-6-18",
            "2024618",
            "20241345",
            "+2024061",
            "",
            "2024-02-30",
            "__HIVE_DEFAULT_PARTITION__",
        ] {
            assert_eq!(parse_hive_day(bad), None, "{bad}");
        }
    }

    /// A partition column of timestamps names its days as each writer spells them: at any time
    /// of day without a zone (an hour's folder), only at midnight with one.
    #[test]
    fn timestamps_name_their_day() {
        use chrono::Timelike;
        let june_18 = NaiveDate::from_ymd_opt(2024, 6, 18).unwrap();
        for (spelled, writer, hour) in [
            ("2024-06-18 00%3A00%3A00", "Spark, Hive", 0),
            ("2024-06-18%2000%3A00%3A00", "DuckDB, pyarrow in seconds", 0),
            ("2024-06-18%2000%3A00%3A00.000000000", "pyarrow, Polars", 0),
            (
                "2024-06-18%2000%3A00%3A00.000000Z",
                "pyarrow with a zone",
                0,
            ),
            ("2024-06-18 00:00:00", "unescaped", 0),
            ("2024-06-18T00:00:00+02:00", "ISO with an offset", 0),
            ("2024-06-18T00:00-0400", "minutes only", 0),
            ("2024-06-18 00:00:00+05", "hours of offset", 0),
            ("2024-06-18 13%3A00%3A00", "Spark, an hour", 13),
            ("2024-06-18%2023%3A00%3A00.000000000", "pandas, an hour", 23),
            ("2024-06-18 23:59:59.5", "any time", 23),
        ] {
            assert_eq!(
                hive_day(spelled),
                Some((june_18, Spelling::Timestamp)),
                "{writer}: {spelled}"
            );
            let time = folder_time(&format!("hour={spelled}")).map(|t| t.hour());
            assert_eq!(time, Some(hour), "{spelled}");
        }
        for not_a_day in [
            "2024-06-18 04:00:00.000000Z",
            "2024-06-18 13:00:00+02:00",
            "2024-06-18 24:00:00",
            "2024-06-18 00:00:00+2",
            "2024-06-18 00:00:00 UTC",
            "2024-06-18 00%3",
            "2024-06-1800:00:00",
            "2024-02-30 00:00:00",
            "2024-06-18 ",
            "2024-06-18%ZZ00:00:00",
            "20240618 00:00:00",
        ] {
            assert_eq!(parse_hive_day(not_a_day), None, "{not_a_day}");
        }
        assert_eq!(folder_time("date=2024-06-18"), None);
    }

    /// `YYYY-MM-DD-HH` is an hour of its day; a value like it that is not one names no day.
    #[test]
    fn dashed_hours_name_their_day() {
        use chrono::Timelike;
        let june_18 = NaiveDate::from_ymd_opt(2024, 6, 18).unwrap();
        assert_eq!(hive_day("2024-06-18-00"), Some((june_18, Spelling::Hour)));
        assert_eq!(hive_day("2024-06-18-23"), Some((june_18, Spelling::Hour)));
        assert_eq!(folder_time("dt=2024-06-18-07").map(|t| t.hour()), Some(7));
        for not_a_day in [
            "2024-06-18-24",
            "2024-06-18-1",
            "2024-06-18-+1",
            "2024-06-18_13",
            "2024-02-30-13",
            "2024-06-18-1a",
        ] {
            assert_eq!(parse_hive_day(not_a_day), None, "{not_a_day}");
        }
    }

    #[test]
    fn nested_values() {
        assert_eq!(
            parse_nested_day("2024", "06", "18"),
            NaiveDate::from_ymd_opt(2024, 6, 18)
        );
        assert_eq!(
            parse_nested_day("2024", "6", "8"),
            NaiveDate::from_ymd_opt(2024, 6, 8)
        );
        for (y, m, d) in [
            ("2024", "13", "01"),
            ("2024", "02", "30"),
            ("x", "1", "1"),
            ("2024", "+1", "1"),
            ("2024", "001", "1"),
        ] {
            assert_eq!(parse_nested_day(y, m, d), None, "{y}-{m}-{d}");
        }
    }

    /// Another key than date, dt or day holds the days when its values are days; of several,
    /// the one with the most.
    #[test]
    fn other_keys_whose_values_are_days() {
        let names =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
        let cases = [
            (
                &["ds=2024-06-01", "ds=20240602", "run=2024-01-01", "hour=3"][..],
                Some("ds"),
            ),
            (&["a=2024-06-01", "b=2024-06-01"][..], Some("a")),
            (&["hour=3", "ds=latest", "2024-06-01"][..], None),
        ];
        for (folders, key) in cases {
            assert_eq!(other_day_key(&names(folders)), key, "{folders:?}");
        }
    }

    /// A file's day is its innermost partition folders', as Spark spells them.
    #[test]
    fn the_day_a_files_folders_name() {
        let folders = |path: &str| -> Vec<String> { path.split('/').map(str::to_string).collect() };
        let hive = Layout::Hive {
            key: "dt".to_string(),
            spelling: Spelling::Dashed,
        };
        let nested = Layout::Nested { keyed: true };
        let (bare, bare_nested) = (
            Layout::Bare {
                spelling: Spelling::Compact,
            },
            Layout::Nested { keyed: false },
        );
        let june = |d: u32| NaiveDate::from_ymd_opt(2024, 6, d);
        for (layout, path, day) in [
            (
                &hive,
                "s3:/b/dt=2023-01-01/dt=20240618/country=NL",
                june(18),
            ),
            (&hive, "file:/x/dt=2024-06-02", june(2)),
            (&hive, "file:/x/date=2024-06-02", None),
            (&hive, "file:/x/dt=latest", None),
            (&nested, "gs:/b/year=2024/month=6/day=3/hour=1", june(3)),
            (&nested, "gs:/b/year=2024/month=6", None),
            (&nested, "gs:/b/month=6/year=2024/day=3", None),
            (&bare, "gs:/b/2024-06-04/hour=1", june(4)),
            (&bare, "gs:/b/20240605", june(5)),
            (&bare, "gs:/b/2024-06", None),
            // An hour below the day is not taken for a day of the year 6.
            (&bare_nested, "s3:/firehose/2024/06/07/13", june(7)),
            (&bare_nested, "s3:/firehose/06/07/13", None),
        ] {
            assert_eq!(layout.day_of(&folders(path)), day, "{path}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_folder_name_parses_or_fails(name in "\\PC*") {
            if let Some((_, value)) = key_value(&name) {
                let _ = parse_hive_day(value);
            }
            let _ = parse_hive_day(&name);
        }

        #[test]
        fn any_nested_numbers_parse_or_fail(y in "\\PC{0,6}", m in "\\PC{0,3}", d in "\\PC{0,3}") {
            let _ = parse_nested_day(&y, &m, &d);
        }

        #[test]
        fn real_days_read_back(offset in 0i64..3_000_000) {
            let day = NaiveDate::from_ymd_opt(1, 1, 1).unwrap() + chrono::Duration::days(offset);
            if day.year() <= 9999 {
                let hive = day.format("%Y-%m-%d").to_string();
                proptest::prop_assert_eq!(parse_hive_day(&hive), Some(day));
                let compact = day.format("%Y%m%d").to_string();
                proptest::prop_assert_eq!(parse_hive_day(&compact), Some(day));
                let (y, m, d) = (day.format("%Y").to_string(), day.format("%m").to_string(), day.format("%d").to_string());
                proptest::prop_assert_eq!(parse_nested_day(&y, &m, &d), Some(day));
            }
        }
    }

    #[test]
    fn patterns_match_folder_names() {
        for (pattern, name, matches) in [
            ("app=*", "app=ios", true),
            ("app=*", "app=", true),
            ("app=*", "platform=ios", false),
            ("*", "anything", true),
            ("app=*-prod", "app=ios-prod", true),
            ("app=*-prod", "app=ios-prod-old", false),
            ("*=i*s", "app=ios", true),
            ("*=i*s", "app=android", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("app=ios", "app=ios", true),
            ("app=ios", "app=ios2", false),
            ("app={ios,android}", "app=android", true),
            ("app={ios,android}", "app=web", false),
            ("{a,b}=*-{x,y}", "b=1-y", true),
            ("{a,b}=*-{x,y}", "b=1-z", false),
            ("app={ios}", "app=ios", true),
        ] {
            assert_eq!(glob(pattern, name), matches, "{pattern} {name}");
        }
    }

    #[test]
    fn hidden_names() {
        for name in [
            "_SUCCESS",
            "_temporary",
            ".crc",
            ".DS_Store",
            "._x.parquet",
            "date=2024-06-01_$folder$",
        ] {
            assert!(is_hidden(name), "{name}");
        }
        assert!(!is_hidden("part-0.parquet"));
    }
}
