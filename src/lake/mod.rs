//! The lake: where it is, how its days are laid out, and the `events` table over a set of its days.

pub mod dictionary;
pub mod gcs;
pub mod inspect;
pub mod layout;
mod pages;
pub mod progress;
pub mod rollup;
pub mod scan;
pub mod spark_log;
pub mod storage;
pub mod table;
pub mod uuid;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use chrono::NaiveDate;
use datafusion::execution::cache::cache_manager::{
    CacheManager, CacheManagerConfig, FileMetadataCache,
};
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::{ObjectMeta, ObjectStore, path::Path};

pub use layout::Layout;
use layout::TableLog;
use progress::{Meter, Metered, Watch};
use spark_log::SparkLog;
use storage::storage_error;

use crate::config::Config;
use crate::dates::check_order;
use crate::{Error, Result};

/// A discovered lake: its days and where each day's files are.
#[derive(Debug)]
pub struct Lake {
    /// The lake as the user named it, for messages.
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
    /// The same store, as what it is: it counts reads and keeps small objects.
    metered: Arc<Metered>,
    pub store_url: ObjectStoreUrl,
    /// The lake's folder in its store: for a lake named with a pattern (`events/app=*`), the
    /// folder that holds the folders it matches, each a lake, counted as one.
    pub root: Path,
    pub pattern: Option<String>,
    /// The folders the pattern matched.
    pub matched: Vec<String>,
    /// For a pattern, the days some of its lakes lack (no partition, or no data file in it) while
    /// others have them, with those lakes: missing (NULL) rather than counted without them.
    incomplete: Mutex<BTreeMap<NaiveDate, Vec<String>>>,
    pub layout: Layout,
    /// Each day that has a partition, with its partition folders.
    pub days: BTreeMap<NaiveDate, Vec<Path>>,
    /// Partition-like folders that do not name a real day, skipped.
    pub skipped: Vec<String>,
    /// Files and folders beside the partitions that are neither partitions nor hidden.
    pub strays: Vec<String>,
    /// Spark's file sink log beside the partitions, if there is one: only the files it lists
    /// are data.
    pub spark_log: Option<SparkLog>,
    /// Each listed day's files that the Spark log does not list, left out.
    unlisted: Mutex<BTreeMap<NaiveDate, Vec<Path>>>,
    /// Each listed day's files that the Spark log lists but its partition does not have.
    lost: Mutex<BTreeMap<NaiveDate, Vec<String>>>,
    /// Whether such a file is kept for [`Lake::lost`] (for `dau check`) instead of failing the
    /// listing: its day would be undercounted.
    pub list_lost: bool,
    display_prefix: String,
    /// Which credentials requests carry, for permission errors.
    credentials: String,
    /// Each day's data files once listed: a session lists a day once.
    listings: Mutex<HashMap<NaiveDate, Vec<ObjectMeta>>>,
    /// See [`Lake::done_marker`].
    done_marker: Option<String>,
    /// See [`Lake::hourly`].
    hourly: std::sync::OnceLock<bool>,
    /// See [`Lake::unmarked`].
    notice_unmarked: bool,
    /// Whether each listed day's folders hold the done marker (without one, Spark's `_SUCCESS`,
    /// to notice a lake whose writer leaves it), and whether the day has data files.
    marked: Mutex<BTreeMap<NaiveDate, Marked>>,
    /// Parquet footers once read, by path, checked against size and modification time: read
    /// before a query (see `inspect`), then found here by DataFusion, and by later queries.
    pub parquet_footers: Arc<FileMetadataCache>,
    /// What has been read, for the progress bar.
    meter: Arc<Meter>,
    /// How long reading runs before a progress bar shows; None: never.
    progress_after: Option<std::time::Duration>,
}

impl Lake {
    /// Finds the lake's layout and days. Lists folders only, never the files inside them; with
    /// `near`, a nested (`year=/month=/day=`) lake lists only the months around those days.
    pub async fn open(
        name: &str,
        config: &Config,
        near: Option<(NaiveDate, NaiveDate)>,
    ) -> Result<Lake> {
        let (folder, pattern) = split_pattern(name)?;
        let location = storage::open(folder, &config.storage)?;
        let store = layout::Store {
            objects: location.store.as_ref(),
            local: is_local(&location.store_url),
        };
        let found = match pattern {
            None => layout::discover(store, &location.root, near).await.map(Ok),
            Some(pattern) => layout::discover_matching(store, &location.root, pattern, near).await,
        };
        let found = found
            .map_err(|e| match e {
                // Listing a bucket that does not exist (S3 says so in a generic error).
                object_store::Error::NotFound { .. } => Error::LakeNotFound {
                    lake: name.to_string(),
                },
                object_store::Error::Generic { source, .. }
                    if source.to_string().contains("NoSuchBucket") =>
                {
                    Error::LakeNotFound {
                        lake: name.to_string(),
                    }
                }
                e => storage_error(name, &e, &location.credentials),
            })?
            .map_err(|why| {
                Error::usage(
                    format!("cannot count the lakes {name} names: {why}"),
                    "a pattern names folders that each hold a lake of days in one layout \
                     (events/app=* for events/app=ios/date=…, events/app=android/date=…)",
                )
            })?;
        if let Some(TableLog::Unread(log, format, beside)) = found.table {
            return Err(Error::usage(
                format!("{name} is {format} table ({log}/ beside {beside})"),
                "its folders keep the files its log has dropped (replaced by compaction, deletes \
                 or updates, or left by failed writes) until they are vacuumed, and dau, which \
                 reads Parquet folders, would count them: give dau a Parquet copy of the table",
            ));
        }
        let Some(layout) = found.layout.filter(|_| !found.days.is_empty()) else {
            let files = &found.strays;
            let mut found = match (found.seen.as_slice(), found.skipped.as_slice()) {
                ([], []) => String::new(),
                ([], skipped) => {
                    let times = skipped.iter().any(|f| f.contains(':') || f.contains("%3A"));
                    format!(
                        "; found only folders that name no day: {}{}",
                        skipped.join(", "),
                        match times {
                            true => " (a timestamp with a zone names a day only at midnight)",
                            false => "",
                        }
                    )
                }
                (seen, _) => format!("; found folders: {}", seen.join(", ")),
            };
            let last = name
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if layout::folder_day(last).is_some() {
                found.push_str("; this is one day's partition: give the folder above it");
            } else if let [first, ..] = files.as_slice() {
                let more = match files.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                };
                found.push_str(&format!(
                    "; found files ({first}{more}) with no folder per day: dau counts a lake \
                     partitioned by day, as Spark's partitionBy(\"date\") writes it"
                ));
            }
            return Err(Error::NoLayout {
                lake: name.to_string(),
                found,
            });
        };
        if let [first, rest @ ..] = found.others.as_slice() {
            return Err(Error::MixedLayouts {
                lake: name.to_string(),
                layout: format!("{} day(s) in folders {layout}", found.days.len()),
                others: match rest.len() {
                    0 => first.clone(),
                    n => format!("{first} and {n} more"),
                },
            });
        }
        let spark_log = match found.table {
            Some(TableLog::Spark) => {
                let read = SparkLog::read(location.store.as_ref(), &found.base, &layout).await;
                let log = read.map_err(|e| storage_error(name, &e, &location.credentials))?;
                Some(log.map_err(|what| Error::SparkLog {
                    log: format!(
                        "{}{}",
                        location.display_prefix,
                        found.base.clone().join(spark_log::FOLDER)
                    ),
                    what,
                })?)
            }
            _ => None,
        };
        let meter = Arc::new(Meter::default());
        let metered = Arc::new(Metered::new(
            location.store,
            meter.clone(),
            is_local(&location.store_url),
            config.memory_limit.as_ref().map(|m| m.bytes as u64),
        ));
        Ok(Lake {
            name: name.to_string(),
            store: metered.clone(),
            metered,
            store_url: location.store_url,
            root: location.root,
            pattern: pattern.map(str::to_string),
            matched: found.matched,
            incomplete: Mutex::new(found.incomplete),
            layout,
            days: found.days,
            skipped: found.skipped,
            strays: found.strays,
            spark_log,
            unlisted: Mutex::default(),
            lost: Mutex::default(),
            list_lost: false,
            display_prefix: location.display_prefix,
            credentials: location.credentials,
            listings: Mutex::default(),
            done_marker: config.done_marker.clone(),
            hourly: std::sync::OnceLock::new(),
            notice_unmarked: config.notice_unmarked,
            marked: Mutex::default(),
            parquet_footers: CacheManager::try_new(&CacheManagerConfig::default())?
                .get_file_metadata_cache(),
            meter,
            progress_after: config.progress_after,
        })
    }

    /// Shows how many of `files` have been read, and how many bytes, until dropped (see
    /// [`progress`]).
    pub fn watch(&self, what: &'static str, files: Option<usize>) -> Watch {
        self.meter.watch(what, files, self.progress_after)
    }

    /// True for a lake in a bucket, where a failed read is the network's or the server's, not the file's.
    pub fn is_remote(&self) -> bool {
        !is_local(&self.store_url)
    }

    /// Reads to keep in flight at once: `local` on this machine's disk, more from a bucket.
    pub fn reads_at_once(&self, local: usize) -> usize {
        match self.is_remote() {
            true => BUCKET_REQUESTS,
            false => local,
        }
    }

    /// A failed storage request, with what to do about it.
    pub fn storage_error(&self, error: &object_store::Error) -> Error {
        storage_error(&self.name, error, &self.credentials)
    }

    /// For a lake in a bucket: the storage failure behind a failed read, if that is what it was.
    /// (On local disk a failed read is the file's own problem, but for a file replaced or removed
    /// meanwhile.)
    pub fn storage_failure(&self, error: &(dyn std::error::Error + 'static)) -> Option<Error> {
        use object_store::Error::{NotFound, Precondition};
        let mut cause = Some(error);
        while let Some(e) = cause {
            // A folder's errors are its files' (but one changed while dau read it: listed, and
            // gone or replaced when read).
            if let Some(e) = e.downcast_ref::<object_store::Error>()
                && (self.is_remote() || matches!(e, Precondition { .. } | NotFound { .. }))
            {
                return Some(self.storage_error(e));
            }
            cause = e.source();
        }
        None
    }

    /// Refuses to write `what` (`--output`, `--rollups`) at `place`, a folder, file or bucket URL,
    /// inside the lake where readers list files: it would be read as data, or replace a day's
    /// file. A hidden folder of the lake (`_dau/`) is no reader's.
    pub fn refuse_inside(&self, place: &str, what: &str) -> Result<()> {
        refuse_inside(&self.describe(&self.root), self.is_remote(), place, what)
    }

    /// An object's name as a person can find it: a full local path, or a full URL.
    pub fn describe(&self, location: &Path) -> String {
        format!("{}{location}", self.display_prefix)
    }

    pub fn first_day(&self) -> NaiveDate {
        *self
            .days
            .keys()
            .next()
            .expect("a lake has at least one day")
    }

    pub fn last_day(&self) -> NaiveDate {
        *self
            .days
            .keys()
            .next_back()
            .expect("a lake has at least one day")
    }

    /// The newest day that is finished: with a done marker, the newest of the last `look` days
    /// that has it (None when none has), else the last day.
    pub async fn last_finished_day(&self, look: usize) -> Result<Option<NaiveDate>> {
        if self.done_marker.is_none() {
            return Ok(Some(self.last_day()));
        }
        for day in self.days.keys().rev().take(look) {
            self.files(&[*day]).await?;
            if self.unfinished(*day, *day).is_empty() {
                return Ok(Some(*day));
            }
        }
        Ok(None)
    }

    /// The days from `from` to `to` whose partition is in several folders, with those folders:
    /// folders of one of the lakes a pattern names, for one hour (of a lake by timestamps).
    pub fn split_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = (&NaiveDate, &Vec<Path>)> {
        let slot = |folder: &Path| {
            let lake = self.pattern.as_ref().and_then(|_| self.lake_folder(folder));
            (lake, folder.filename().and_then(layout::folder_time))
        };
        let days = self.days.range(from..=to);
        days.filter(move |(_, folders)| {
            let mut slots = BTreeSet::new();
            !folders.iter().all(|f| slots.insert(slot(f)))
        })
    }

    /// For a lake named with a pattern, the `events` column that says which of its lakes a row
    /// is from: the key of its folders when all are `key=value` (`app` for `app=ios`), else
    /// `lake`.
    pub fn lakes_column(&self) -> Option<&str> {
        fn key(folder: &str) -> Option<&str> {
            folder.split_once('=').map(|(key, _)| key)
        }
        let (first, rest) = self.matched.split_first()?;
        Some(match key(first) {
            Some(k) if k != table::DATE && rest.iter().all(|f| key(f) == Some(k)) => k,
            _ => "lake",
        })
    }

    /// Which of the lakes a pattern names `file` is in: its folder's value (`ios` for
    /// `app=ios`, unescaped as a hive value: `android/tv` for `app=android%2Ftv`), or name.
    pub fn lake_of(&self, file: &Path) -> Option<String> {
        let keyed = self.lakes_column()? != "lake";
        let folder = self.lake_folder(file)?;
        Some(match folder.split_once('=') {
            Some((_, value)) if keyed => {
                let value = percent_encoding::percent_decode_str(value);
                value.decode_utf8_lossy().into_owned()
            }
            _ => folder,
        })
    }

    /// The folder of the root that `path` is in: for a lake named with a pattern, its lake's.
    fn lake_folder(&self, path: &Path) -> Option<String> {
        Some(path.prefix_match(&self.root)?.next()?.as_ref().to_string())
    }

    /// Of the lakes a pattern names, those whose `folders` of a day hold none of `files` (a
    /// writer that made the day's folder and has not written it yet).
    fn lakes_without_files(&self, folders: &[Path], files: &[ObjectMeta]) -> Vec<String> {
        if self.pattern.is_none() {
            return Vec::new();
        }
        let with: BTreeSet<String> = (files.iter())
            .filter_map(|f| self.lake_folder(&f.location))
            .collect();
        let without: BTreeSet<String> = (folders.iter())
            .filter_map(|f| self.lake_folder(f))
            .filter(|l| !with.contains(l))
            .collect();
        without.into_iter().collect()
    }

    /// The days from `from` to `to` that some of the lakes a pattern names lack while others
    /// have them, with those lakes.
    pub fn incomplete(&self, from: NaiveDate, to: NaiveDate) -> BTreeMap<NaiveDate, Vec<String>> {
        let incomplete = self.incomplete.lock().expect("incomplete days");
        let days = incomplete.range(from..=to);
        days.map(|(d, lakes)| (*d, lakes.clone())).collect()
    }

    /// [`Lake::incomplete`] days as a warning lists them: `2024-06-20 (app=android)`.
    fn incomplete_days(&self, from: NaiveDate, to: NaiveDate) -> Vec<String> {
        let incomplete = self.incomplete(from, to);
        (incomplete.iter())
            .map(|(d, lakes)| format!("{d} ({})", lakes.join(", ")))
            .collect()
    }

    /// The warning for [`Lake::incomplete`] days, if any.
    pub fn incomplete_warning(&self, from: NaiveDate, to: NaiveDate) -> Option<String> {
        let days = self.incomplete_days(from, to);
        (!days.is_empty()).then(|| {
            format!(
                "{} day(s) lack the data of a lake {} names: {}; they are missing (NULL) rather \
                 than counted without it",
                days.len(),
                self.name,
                days.join(", ")
            )
        })
    }

    /// For an answer that ends at the lake's last day, the newer days left out because one of the
    /// lakes a pattern names lacks them (its writer behind), if any: the answer ends early.
    pub fn newest_incomplete_warning(&self, end: NaiveDate) -> Option<String> {
        let last = self.last_day();
        let days = self.incomplete_days(last.succ_opt()?, NaiveDate::MAX);
        (end >= last && !days.is_empty()).then(|| {
            format!(
                "the newest day(s) lack the data of a lake {} names: {}; the lake ends at {last}",
                self.name,
                days.join(", ")
            )
        })
    }

    /// The lake's folder, or folders, as a person can find them: `/data/events/app=*`.
    pub fn describe_root(&self) -> String {
        match &self.pattern {
            None => self.describe(&self.root),
            Some(pattern) => format!("{}/{pattern}", self.describe(&self.root)),
        }
    }

    /// The days a command reads: `from` and `to` as given, a missing `to` the lake's last day and
    /// a missing `from` `first(to)`. One end given outside the lake, the other left to default,
    /// is a range with no partition (exit 4: a stale lake, for `--from yesterday`), not a
    /// backwards one.
    pub fn range(
        &self,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        first: impl FnOnce(NaiveDate) -> NaiveDate,
    ) -> Result<(NaiveDate, NaiveDate)> {
        let last = to.unwrap_or_else(|| self.last_day());
        let start = from.unwrap_or_else(|| first(last));
        if let (Some(given), true) = (from.xor(to), start > last) {
            self.days_between(given, given)?;
        }
        check_order(start, last)?;
        Ok((start, last))
    }

    /// The days from `from` to `to` that have a partition; none at all is an error that says
    /// which days the lake has.
    pub fn days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>> {
        let days: Vec<NaiveDate> = self.days.range(from..=to).map(|(d, _)| *d).collect();
        if let (true, Some(warning)) = (days.is_empty(), self.incomplete_warning(from, to)) {
            return Err(Error::NoFiles {
                lake: self.name.clone(),
                from,
                to,
                why: format!("nothing to count: {warning}"),
            });
        }
        if days.is_empty() {
            return Err(Error::NoPartitions {
                lake: self.name.clone(),
                from,
                to,
                first: self.first_day(),
                last: self.last_day(),
            });
        }
        Ok(days)
    }

    /// Fails when every day from `from` to `to` is `unread` (its partition holds no data file, or
    /// only bad ones): such a range has no number to give, and a nightly export must fail rather
    /// than deliver NULL as done.
    pub fn require_data(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        unread: &BTreeSet<NaiveDate>,
    ) -> Result<()> {
        match self
            .days
            .range(from..=to)
            .all(|(day, _)| unread.contains(day))
        {
            true => Err(self.no_files(from, to)),
            false => Ok(()),
        }
    }

    /// The error for a range none of whose partitions has a data file to read.
    pub fn no_files(&self, from: NaiveDate, to: NaiveDate) -> Error {
        let why = match self.done_marker() {
            Some(marker) if !self.unfinished(from, to).is_empty() => format!(
                "nothing to count: without {marker} (--done-marker), a partition is still being \
                 written"
            ),
            _ => "nothing to count (is the day still being written?)".to_string(),
        };
        Error::NoFiles {
            lake: self.name.clone(),
            from,
            to,
            why,
        }
    }

    /// The data files of each of `days`, in order: every file below its partition folders whose
    /// name and folders do not start with `_` or `.`; none for a day whose folders lack the done
    /// marker ([`Lake::unfinished`]). A session lists a day once. On this machine's disk the
    /// folders are read directly, a share of the days on each core.
    pub async fn files(&self, days: &[NaiveDate]) -> Result<Vec<Vec<ObjectMeta>>> {
        let mut listed: HashMap<NaiveDate, Vec<ObjectMeta>> = {
            let cache = self.listings.lock().expect("listing cache");
            days.iter()
                .filter_map(|day| Some((*day, cache.get(day)?.clone())))
                .collect()
        };
        let todo: Vec<NaiveDate> = days
            .iter()
            .copied()
            .filter(|day| !listed.contains_key(day))
            .collect();
        let mut direct = HashMap::new();
        if !self.is_remote() && !todo.is_empty() {
            let shares = per_core(&todo).map(|share| {
                let share: Vec<(NaiveDate, Vec<Path>)> =
                    share.iter().map(|d| (*d, self.folders(*d))).collect();
                tokio::task::spawn_blocking(move || {
                    let listed = share.into_iter().filter_map(|(day, folders)| {
                        let files: Option<Vec<Vec<ObjectMeta>>> =
                            folders.iter().map(layout::local_files).collect();
                        Some((day, files?.concat()))
                    });
                    listed.collect::<Vec<_>>()
                })
            });
            for share in futures::future::join_all(shares).await {
                direct.extend(share.expect("listing folders does not panic"));
            }
        }
        // The rest from the store: a bucket's, or a local folder the store must list itself.
        let from_store: Vec<(NaiveDate, Vec<ObjectMeta>)> = stream::iter(todo.iter().copied())
            .filter(|day| std::future::ready(!direct.contains_key(day)))
            .map(|day| async move {
                let mut files = Vec::new();
                for folder in self.folders(day) {
                    let store = self.store.list(Some(&folder)).try_collect::<Vec<_>>();
                    files.extend(store.await.map_err(|e| self.storage_error(&e))?);
                }
                Ok::<_, Error>((day, files))
            })
            .buffered(BUCKET_REQUESTS)
            .try_collect()
            .await?;
        let mut cache = self.listings.lock().expect("listing cache");
        for (day, mut files) in direct.into_iter().chain(from_store) {
            let folders = self.folders(day);
            let marker = self.done_marker().unwrap_or(SUCCESS);
            let done = folders.iter().all(|f| self.has_marker(f, marker, &files))
                && (self.done_marker.is_none() || self.hours_done(day));
            // A done marker named like data (DONE) is no data file.
            files.retain(|meta| meta.location.filename() != self.done_marker());
            files.retain(|meta| {
                folders.iter().any(|folder| {
                    let parts = meta.location.prefix_match(folder);
                    parts.is_some_and(|parts| {
                        let mut parts = parts.peekable();
                        // (Not the folder itself: a bucket's marker object for it.)
                        parts.peek().is_some() && parts.all(|p| !layout::is_hidden(p.as_ref()))
                    })
                })
            });
            let markers = folder_markers(&files, self.is_remote());
            files.retain(|meta| !markers.contains(&meta.location));
            if let Some(log) = &self.spark_log {
                let (left, lost) = log.keep(day, &mut files);
                if let (Some(path), false) = (lost.first(), self.list_lost) {
                    return Err(Error::SparkLog {
                        log: self.describe(&log.folder),
                        what: format!(
                            "it lists {path}, which is not in the partition of {day}: restore \
                             the file (the day would be undercounted without it), or move the \
                             log away to count the partition's files as they are"
                        ),
                    });
                }
                self.unlisted
                    .lock()
                    .expect("unlisted files")
                    .insert(day, left);
                self.lost.lock().expect("lost files").insert(day, lost);
            }
            let lacking = self.lakes_without_files(&folders, &files);
            if !lacking.is_empty() {
                files.clear();
                let mut incomplete = self.incomplete.lock().expect("incomplete days");
                incomplete.insert(day, lacking);
            }
            let data = !files.is_empty();
            if self.done_marker.is_some() && !done {
                files.clear();
            }
            let mut marked = self.marked.lock().expect("marked days");
            marked.insert(day, Marked { done, data });
            files.sort_by(|a, b| a.location.cmp(&b.location));
            cache.insert(day, files.clone());
            listed.insert(day, files);
        }
        Ok(days.iter().map(|day| listed[day].clone()).collect())
    }

    /// The listed files from `from` to `to` that are left out because the Spark log does not
    /// list them: a failed batch's, or one still being written.
    pub fn unlisted(&self, from: NaiveDate, to: NaiveDate) -> Vec<String> {
        let unlisted = self.unlisted.lock().expect("unlisted files");
        let files = unlisted.range(from..=to).flat_map(|(_, files)| files);
        files.map(|f| self.describe(f)).collect()
    }

    /// The files from `from` to `to` that the Spark log lists but their partitions do not have
    /// (listed with [`Lake::list_lost`]), as the log writes them.
    pub fn lost(&self, from: NaiveDate, to: NaiveDate) -> Vec<String> {
        let lost = self.lost.lock().expect("lost files");
        lost.range(from..=to)
            .flat_map(|(_, files)| files.clone())
            .collect()
    }

    /// The file (`_SUCCESS`) a finished partition holds, if the lake's writer leaves one.
    pub fn done_marker(&self) -> Option<&str> {
        self.done_marker.as_deref()
    }

    /// Listed days from `from` to `to` whose data files are left out for lack of the done
    /// marker: still being written.
    pub fn unfinished(&self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let marked = self.marked.lock().expect("marked days");
        match self.done_marker {
            Some(_) => (marked.range(from..=to))
                .filter(|(_, m)| !m.done)
                .map(|(d, _)| *d)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Without a done marker: the listed days from `from` to `to` that have data files but no
    /// `_SUCCESS` while others have it, so may still be being written; and how many have it.
    /// (None with `--done-marker off`, for a lake whose writer no longer leaves `_SUCCESS`.)
    pub fn unmarked(&self, from: NaiveDate, to: NaiveDate) -> (Vec<NaiveDate>, usize) {
        if self.done_marker.is_some() || !self.notice_unmarked {
            return (Vec::new(), 0);
        }
        let marked = self.marked.lock().expect("marked days");
        let (done, unmarked): (Vec<_>, Vec<_>) = (marked.range(from..=to))
            .filter(|(_, m)| m.data)
            .partition(|(_, m)| m.done);
        match done.is_empty() {
            true => (Vec::new(), 0),
            false => (unmarked.iter().map(|(d, _)| **d).collect(), done.len()),
        }
    }

    /// The warning for [`Lake::unfinished`] days among `days`, if any.
    pub fn unfinished_warning(&self, days: &[NaiveDate]) -> Option<String> {
        let marker = self.done_marker()?;
        let all = self.unfinished(NaiveDate::MIN, NaiveDate::MAX);
        let unfinished: Vec<String> = (days.iter())
            .filter(|d| all.contains(d))
            .map(NaiveDate::to_string)
            .collect();
        (!unfinished.is_empty()).then(|| {
            format!(
                "{} day(s) have no {marker} yet in {} (--done-marker){}: {}; still being \
                 written, they are missing (NULL)",
                unfinished.len(),
                self.name,
                match self.hourly() {
                    true => ", or not all their hours (24, or a later day)",
                    false => "",
                },
                unfinished.join(", ")
            )
        })
    }

    /// The warning for [`Lake::unmarked`] days, if any.
    pub fn unmarked_warning(&self, from: NaiveDate, to: NaiveDate) -> Option<String> {
        let (unmarked, done) = self.unmarked(from, to);
        if unmarked.is_empty() {
            return None;
        }
        let days: Vec<String> = unmarked.iter().map(NaiveDate::to_string).collect();
        Some(format!(
            "{} day(s) have no {SUCCESS} in {} while {done} other day(s) have it: {}; if their \
             writer is not done, they are undercounted (--done-marker {SUCCESS} makes such days \
             missing, NULL; --done-marker off says the lake has no markers)",
            days.len(),
            self.name,
            days.join(", ")
        ))
    }

    /// Whether partition `folder` holds the file `marker`: in its listing from a bucket (which
    /// has every object), on this machine's disk (whose listing leaves hidden names out).
    fn has_marker(&self, folder: &Path, marker: &str, listed: &[ObjectMeta]) -> bool {
        let at = folder.clone().join(marker);
        match self.is_remote() {
            true => listed.iter().any(|meta| meta.location == at),
            false => layout::local_path(&at).is_file(),
        }
    }

    /// Whether every hour of `day` is there, in a lake of hour folders (`dt=YYYY-MM-DD-HH`, or
    /// timestamps at several times of a day): a done marker tells that an hour is written, not
    /// that no hour of its day is to come (a day whose last hours had no folder yet was delivered
    /// short). In each lake (of a pattern's), all 24 are there, or a later day is. Always, in a
    /// lake of day folders.
    fn hours_done(&self, day: NaiveDate) -> bool {
        if !self.hourly() {
            return true;
        }
        let mut hours: BTreeMap<Path, usize> = BTreeMap::new();
        for folder in self.folders(day) {
            *hours.entry(parent(&folder)).or_default() += 1;
        }
        let later = |lake: &Path| {
            (self.days.range(day..).skip(1))
                .any(|(_, folders)| folders.iter().any(|f| parent(f) == *lake))
        };
        (hours.iter()).all(|(lake, hours)| *hours >= 24 || later(lake))
    }

    /// Whether the lake's partitions are hours: `dt=YYYY-MM-DD-HH`, or timestamps of which a
    /// day has several in one lake.
    fn hourly(&self) -> bool {
        use layout::Spelling::{Hour, Timestamp};
        *self.hourly.get_or_init(|| match self.layout {
            Layout::Hive { spelling: Hour, .. } | Layout::Bare { spelling: Hour } => true,
            Layout::Hive {
                spelling: Timestamp,
                ..
            }
            | Layout::Bare {
                spelling: Timestamp,
            } => (self.days.values()).any(|folders| {
                let lakes: BTreeSet<Path> = folders.iter().map(parent).collect();
                lakes.len() < folders.len()
            }),
            _ => false,
        })
    }

    /// The partition folders of `day` (none when it has no partition).
    fn folders(&self, day: NaiveDate) -> Vec<Path> {
        self.days.get(&day).cloned().unwrap_or_default()
    }
}

/// The folder `path` is in.
fn parent(path: &Path) -> Path {
    let parts: Vec<_> = path.parts().collect();
    Path::from_iter(parts[..parts.len().saturating_sub(1)].iter().cloned())
}

/// The file Spark and Hadoop leave in a partition once it is written.
pub const SUCCESS: &str = "_SUCCESS";

/// Whether a listed day's folders hold the done marker, and whether it has data files.
#[derive(Debug, Clone, Copy)]
struct Marked {
    done: bool,
    data: bool,
}

/// The cores this process may use (2 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// `items` in one share per core, in order (fewer shares when there are fewer items).
pub fn per_core<T>(items: &[T]) -> std::slice::Chunks<'_, T> {
    items.chunks(items.len().div_ceil(cores()).max(1))
}

/// A task on the runtime that is aborted when it is dropped unawaited: work a query started
/// (its days, their row groups) stops when the query does, on an error in another day or Ctrl-C
/// in the REPL, instead of running on unseen. A panic in it goes on in the task awaiting it.
pub struct Task<T>(tokio::task::JoinHandle<T>);

/// Runs `future` on the runtime as a [`Task`].
pub fn spawn<F>(future: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Task(tokio::spawn(future))
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx).map(|done| match done {
            Ok(value) => value,
            // Never aborted while it is awaited: only a panic ends it without a value.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        })
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The empty objects among `files` that mark a folder in a bucket, as the S3 console and Hadoop's
/// S3A make them (the key `date=2024-06-01/hour=00/`, which the store lists without its `/`): those
/// that other files are below, and in a bucket (`remote`) those of a name without an extension
/// (`hour=01`, `sub`), as a data file's has one. (On disk a folder is no file.)
fn folder_markers(files: &[ObjectMeta], remote: bool) -> BTreeSet<Path> {
    let empty = files.iter().filter(|meta| meta.size == 0);
    empty
        .filter(|marker| {
            let folder = format!("{}/", marker.location);
            let name = marker.location.filename().unwrap_or_default();
            (remote && !name.contains('.'))
                || (files.iter()).any(|f| f.location.as_ref().starts_with(&folder))
        })
        .map(|marker| marker.location.clone())
        .collect()
}

/// A lake named with a pattern for its last folder (`gs://b/events/app=*`): the folder above
/// (`gs://b/events`) and the pattern (`app=*`); else the lake as named. A pattern elsewhere is
/// refused.
fn split_pattern(name: &str) -> Result<(&str, Option<&str>)> {
    let trimmed = name.trim_end_matches('/');
    let (folder, last) = trimmed.rsplit_once('/').unwrap_or((".", trimmed));
    // `*`, or braces of choices (`{ios,web}`); a folder on this disk named so is that folder.
    let pattern = |text: &str| {
        let braces = (text.split_once('{')).is_some_and(|(_, rest)| {
            rest.split_once('}')
                .is_some_and(|(choices, _)| choices.contains(','))
        });
        text.contains('*') || braces
    };
    let literal = !storage::is_bucket(name) && storage::local_path(name).is_dir();
    if literal {
        return Ok((name, None));
    }
    match (pattern(folder), pattern(last)) {
        (false, false) => Ok((name, None)),
        (false, true) => Ok((folder, Some(last))),
        (true, _) => Err(Error::usage(
            format!("the lake {name} has a pattern before its last folder"),
            "a pattern may name only the lake's last folder, whose folders each hold a lake of \
             days (events/app=*); the days below are found by themselves",
        )),
    }
}

/// [`Lake::refuse_inside`] for the lake `name` before it is opened, from its name alone: nothing
/// is listed. A lake that cannot be found is let be here: opening it says so.
pub fn refuse_inside_named(
    name: &str,
    options: &storage::StorageOptions,
    place: &str,
    what: &str,
) -> Result<()> {
    let Ok(location) = split_pattern(name).and_then(|(folder, _)| storage::open(folder, options))
    else {
        return Ok(());
    };
    let root = format!("{}{}", location.display_prefix, location.root);
    refuse_inside(&root, !is_local(&location.store_url), place, what)
}

/// [`Lake::refuse_inside`] for the lake whose folder, as a person can find it, is `root`.
fn refuse_inside(root: &str, remote: bool, place: &str, what: &str) -> Result<()> {
    let visible = |rest: &str| !rest.trim_start_matches('/').starts_with(['_', '.']);
    let inside = match storage::is_bucket(place) || remote {
        // As dau names them: `gcs://` and `s3a://` were let through, and so was anything in a
        // lake at a bucket's root (`s3://b/`).
        true => (storage::bucket_url(place))
            .and_then(|at| Some(at.strip_prefix(root.trim_end_matches('/'))?.to_string()))
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .is_some_and(|rest| visible(&rest)),
        // Compared as the disk has them: `lake/../lake/x` and a link to the lake were let
        // through, and wrote into it.
        false => (real_path(&storage::local_path(place)))
            .strip_prefix(real_path(std::path::Path::new(root)))
            .is_ok_and(|rest| visible(&rest.to_string_lossy())),
    };
    match inside {
        false => Ok(()),
        true => Err(Error::usage(
            format!("{what} {place} is inside the lake {root}, as its data"),
            format!(
                "keep it outside the lake, or in a hidden folder of it such as {}/_dau",
                root.trim_end_matches('/')
            ),
        )),
    }
}

/// Whether a store is this machine's file system (rooted at `/`), not a bucket.
fn is_local(store_url: &ObjectStoreUrl) -> bool {
    *store_url == ObjectStoreUrl::local_filesystem()
}

/// Requests kept in flight to a bucket (listings, footers, rollups): each waits tens of
/// milliseconds for its first byte, so a query over a month of days is as many round trips as
/// it has rounds of requests.
pub const BUCKET_REQUESTS: usize = 64;

/// `path` as the disk has it: links and `..` resolved as far as it exists, and the rest (to be
/// made) appended, its `..` taken lexically.
fn real_path(path: &std::path::Path) -> std::path::PathBuf {
    resolve(path, 40)
}

/// [`real_path`], following at most `hops` links that point at nothing yet.
fn resolve(path: &std::path::Path, hops: u8) -> std::path::PathBuf {
    use std::path::Component;
    let Ok(absolute) = std::path::absolute(path) else {
        return path.to_path_buf();
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let mut real = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        // A link to a file not there yet: a write through it makes its target, which may be in
        // the lake.
        if hops > 0
            && let Ok(target) = std::fs::read_link(existing)
        {
            let parent = existing.parent().unwrap_or(std::path::Path::new("/"));
            break resolve(&parent.join(target), hops - 1);
        }
        match (existing.components().next_back(), existing.parent()) {
            (Some(last), Some(parent)) => {
                rest.push(last);
                existing = parent;
            }
            _ => break existing.to_path_buf(),
        }
    };
    for part in rest.iter().rev() {
        match part {
            Component::ParentDir => {
                real.pop();
            }
            part => real.push(part),
        }
    }
    real
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_task_dropped_unawaited_stops_and_an_awaited_one_gives_its_value() {
        assert_eq!(spawn(async { 7 }).await, 7);
        // The task holds the sender while it runs: the receiver hears it dropped only when the
        // task's future is, and an unaborted task would wait forever.
        let (running, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = spawn(async move {
            let _running = running;
            std::future::pending::<()>().await
        });
        drop(task);
        let heard = tokio::time::timeout(Duration::from_secs(10), stopped).await;
        assert!(
            matches!(heard, Ok(Err(_))),
            "the task still runs: {heard:?}"
        );
    }

    #[tokio::test]
    #[should_panic(expected = "a day failed")]
    async fn a_panic_in_a_task_goes_on_in_its_awaiter() {
        spawn(async { panic!("a day failed") }).await
    }

    /// On local disk, a file listed and gone when read (the lake changed while dau read it) is
    /// a storage error, exit 3, that says so, as one replaced meanwhile is: it was taken for a bad
    /// file (exit 4, with a hint to skip it). Another failure is the file's own.
    #[tokio::test]
    async fn a_file_gone_when_read_is_a_changed_lake() {
        let dir = tempfile::tempdir().unwrap();
        let shape = crate::cmd::generate::Shape {
            users: 20,
            days: 1,
            ..Default::default()
        };
        crate::cmd::generate::ensure(dir.path(), &shape).unwrap();
        let config = Config::default();
        let lake = Lake::open(&dir.path().to_string_lossy(), &config, None).await;
        let lake = lake.unwrap();
        let path = "date=2024-06-01/part-00000.parquet".to_string();
        let gone = std::io::Error::from(std::io::ErrorKind::NotFound);
        let gone = object_store::Error::NotFound {
            path,
            source: Box::new(gone),
        };
        let error = lake.storage_failure(&gone).expect("a storage failure");
        assert_eq!(error.exit_code(), 3, "{error}");
        assert!(
            error.to_string().contains("was the lake changed"),
            "{error}"
        );
        let other = object_store::Error::NotImplemented {
            operation: "a read".into(),
            implementer: "a test".into(),
        };
        assert!(lake.storage_failure(&other).is_none());
    }
}
