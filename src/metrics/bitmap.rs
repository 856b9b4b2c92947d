//! The fast path: every metric but user-days as set algebra over each day's users, A(d).
//! dau(d) = |A(d)|; wau/mau(d) = |A(d-6) ∪ … ∪ A(d)| / |A(d-29) ∪ … ∪ A(d)|; a calendar period is
//! the union of its days; opens come from each day's histogram of opens per user. The SQL in
//! `sql/` stays the definition: these rows are the same rows, NULLs and warnings included.
//!
//! Each day's users come from its rollup when one is current, else from the fast scan (after the
//! same footer checks as the SQL path), and are then rolled up for the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Days as DayCount, NaiveDate};
use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryPool, MemoryReservation,
};
use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;
use roaring::RoaringBitmap;

use super::{Metric, Query, output_schema};
use crate::cli::Engine;
use crate::config::{Config, MemoryLimit};
use crate::dates::{days, to_date32};
use crate::lake::dictionary::{Dictionary, Lineage, State};
use crate::lake::inspect::{FileReport, IdTypes, inspect, null_warning, unread_days, usable};
use crate::lake::rollup::{Rollups, Windows, stamp};
use crate::lake::scan::{DayUsers, scan_day};
use crate::lake::{BUCKET_REQUESTS, Lake, cores, per_core, spawn};
use crate::{Error, Result};

/// Days read at once from a bucket.
const BUCKET_DAYS: usize = 16;

/// Each read day's users, and what the user should know about them.
#[derive(Debug, Default)]
pub struct Gathered {
    pub days: BTreeMap<NaiveDate, DayUsers>,
    /// Days that have files, none of them readable (skipped with --skip-bad-files): unknown.
    pub unread_days: BTreeSet<NaiveDate>,
    pub warnings: Vec<String>,
    /// Days read from the lake and rolled up now.
    pub built: Vec<NaiveDate>,
    /// Days whose current rollup was used.
    pub reused: usize,
    /// The key of each day whose rollup is current (used, or written now), with the dictionary
    /// state it was made with.
    pub keys: BTreeMap<NaiveDate, (String, State)>,
    /// The lineage those rollups were read in.
    lineage: Option<Lineage>,
    /// Where those rollups are.
    rollups: Option<Rollups>,
    /// Why rollups could not be written, if they could not.
    pub unsaved: Option<String>,
}

/// Computes `query` from per-day users when they apply: None when they do not (user-days, text
/// ids, `--engine sql`) and the SQL must run.
pub async fn run(
    lake: &Arc<Lake>,
    config: &Config,
    query: &Query,
) -> Result<Option<(RecordBatch, Vec<String>)>> {
    if config.engine == Engine::Sql {
        return Ok(None);
    }
    if query.metric == Metric::UserDays {
        return not_applicable(config, "user-days lists every user: it has no bitmap form");
    }
    lake.days_between(query.from, query.to)?;
    let (start, end) = query.span();
    let read: Vec<NaiveDate> = lake.days.range(start..=end).map(|(d, _)| *d).collect();
    // dau and opens need each day's counts only, and so do windows counted before; the others
    // need the users of their days.
    let windows = query.windows();
    let rollups = Rollups::of(lake, config)?;
    let counted = match rollups.as_ref().filter(|_| !windows.is_empty()) {
        Some(rollups) => Some(rollups.windows().await),
        None => None,
    };
    let sets = !windows.is_empty() && counted.as_ref().is_none_or(Windows::is_empty);
    // The rows' schema is the SQL's: planned meanwhile, on a core the reading leaves idle at first.
    let events = Arc::new(Schema::new(vec![
        Field::new(&config.user_column, DataType::Int64, true),
        Field::new("date", DataType::Date32, false),
    ]));
    let (planned, user) = (query.clone(), config.user_column.clone());
    let schema = spawn(async move { output_schema(&planned, &user, events).await });
    let mut gathered = match gather(lake, config, rollups.as_ref(), &read, sets).await? {
        Ok(gathered) => gathered,
        Err(why) => return not_applicable(config, &why),
    };
    // (Days with nothing to read have no rollup, so a first gather finds them all.)
    lake.require_data(query.from, query.to, &gathered.unread_days)?;
    let mut known: Vec<Option<u64>> = vec![None; windows.len()];
    if let Some(counted) = &counted {
        known = known_windows(lake, &gathered, counted, &windows);
        // The others need the users of their days.
        let needed: BTreeSet<NaiveDate> = windows
            .iter()
            .zip(&known)
            .filter(|(_, known)| known.is_none())
            .flat_map(|(window, _)| days(first_day(window), window.1))
            .collect();
        if !sets && !gathered.load_users(&needed).await {
            // A rollup changed meanwhile: every day and every window as they are now.
            gathered = match gather(lake, config, rollups.as_ref(), &read, true).await? {
                Ok(gathered) => gathered,
                Err(why) => return not_applicable(config, &why),
            };
            known.fill(None);
        }
    }
    let mut missing: BTreeSet<NaiveDate> = query.missing_days(lake).into_iter().collect();
    missing.extend(gathered.unread_days.iter().copied());
    let mut warnings = query.warnings(lake);
    warnings.extend(std::mem::take(&mut gathered.warnings));
    warnings.extend(gathered.unsaved.clone());
    let nulls = gathered.days.iter().map(|(d, u)| (*d, u.nulls)).collect();
    warnings.extend(null_warning(&nulls, &config.user_column));
    let mut span = Span::new(query, &gathered.days, &missing, lake.first_day());
    if known.contains(&None) {
        // Counted now (right where the windows' days have their users) and kept for next time.
        let counts = span.window_counts(query, &windows, &known);
        let stamps = window_stamps(lake, &gathered, &windows);
        let mut fresh = Windows::new();
        for (((window, stamps), users), known) in
            windows.iter().zip(stamps).zip(counts).zip(known.iter_mut())
        {
            if known.is_none() {
                *known = Some(users);
                if let Some(stamps) = stamps {
                    fresh.insert(*window, (stamps, users));
                }
            }
        }
        if let Some(rollups) = gathered
            .rollups
            .as_ref()
            .filter(|_| gathered.unsaved.is_none())
            && let Err(e) = rollups.save_windows(fresh).await
        {
            warnings.push(unsaved(Some(rollups), &e));
        }
    }
    span.windows = known.into_iter().flatten().collect();
    let schema = schema.await?;
    let columns = span.columns(query);
    let arrays = schema
        .fields()
        .iter()
        .map(|f| {
            columns
                .iter()
                .find(|(name, _)| name == f.name())
                .map(|(_, array)| array.clone())
                .ok_or_else(|| internal(format!("no bitmap column for {}", f.name())))
        })
        .collect::<Result<Vec<_>>>()?;
    let batch = RecordBatch::try_new(schema, arrays).map_err(|e| internal(e.to_string()))?;
    Ok(Some((batch, warnings)))
}

fn internal(what: String) -> Error {
    Error::Query(datafusion::error::DataFusionError::Internal(what))
}

/// The SQL runs instead, unless `--engine bitmap` asked for bitmaps: then the user is told why not.
fn not_applicable<T>(config: &Config, why: &str) -> Result<Option<T>> {
    match config.engine {
        Engine::Bitmap => Err(Error::usage(
            format!("--engine bitmap cannot answer this: {why}"),
            "use --engine auto (the default) or --engine sql",
        )),
        _ => Ok(None),
    }
}

/// The users of each of `days`: from current rollups, else read from the lake (after the same
/// footer checks as the SQL) and rolled up. The inner error says why bitmaps cannot hold these
/// users (more than 2^32 of them), and the SQL must count them. Without `sets`, days
/// from rollups come with their counts only.
pub async fn gather(
    lake: &Arc<Lake>,
    config: &Config,
    rollups: Option<&Rollups>,
    days: &[NaiveDate],
    sets: bool,
) -> Result<std::result::Result<Gathered, String>> {
    let columns = config.columns();
    let listings: BTreeMap<NaiveDate, Vec<ObjectMeta>> =
        days.iter().copied().zip(lake.files(days).await?).collect();
    let mut gathered = Gathered::default();
    let lineage = match rollups {
        Some(rollups) => rollups.lineage().await,
        None => None,
    };
    if let (Some(rollups), Some(lineage)) = (rollups, &lineage) {
        let keyed: Vec<(NaiveDate, String)> = listings
            .iter()
            .map(|(day, files)| (*day, rollups.key(files, lineage.generation)))
            .collect();
        let mut states = BTreeMap::new();
        for (day, (users, state)) in load_rollups(rollups, &keyed, lineage, sets).await {
            gathered.days.insert(day, users);
            states.insert(day, state);
        }
        gathered.keys = keyed
            .into_iter()
            .filter_map(|(day, key)| Some((day, (key, *states.get(&day)?))))
            .collect();
    }
    gathered.rollups = rollups.cloned();
    gathered.lineage = lineage.clone();
    unsigned_to_read_again(&mut gathered, IdTypes::default());
    if gathered.days.len() == days.len() {
        gathered.reused = days.len();
        return Ok(Ok(gathered));
    }
    // Days to read: taken for writing rollups, with the lake's dictionary.
    let (mut writing, dictionary) = match rollups {
        Some(rollups) => match rollups.begin().await {
            Ok((writing, dictionary)) => (Some(writing), dictionary),
            Err(e) => {
                gathered.unsaved = Some(unsaved(Some(rollups), &e));
                // A folder this run cannot write: its rollups stay in use, and only the other
                // days are read (a bucket's failed because it could not be read).
                match rollups.is_local() {
                    true => (None, rollups.dictionary().await),
                    false => (None, Dictionary::default()),
                }
            }
        },
        None => (None, Dictionary::default()),
    };
    if !lineage.is_some_and(|used| dictionary.lineage.extends(&used)) {
        // The rollups used are of another dictionary (made anew meanwhile, or put back): read
        // every day.
        gathered.days.clear();
        gathered.keys.clear();
    }
    gathered.reused = gathered.days.len();
    let mut begun = dictionary.lineage.clone();
    let dictionary = Arc::new(std::sync::RwLock::new(dictionary));
    let mut todo: Vec<NaiveDate> = days
        .iter()
        .copied()
        .filter(|d| !gathered.days.contains_key(d))
        .collect();
    let budget = config.memory_limit.as_ref().map(Budget::new);
    let mut known_bad: BTreeMap<ObjectPath, String> = BTreeMap::new();
    let mut races = 0;
    while !todo.is_empty() {
        let mut reports = inspect(lake, &todo, &columns).await?;
        for report in &mut reports {
            if let Some(reason) = known_bad.get(&report.meta.location) {
                report.facts = Err(reason.clone());
            }
        }
        let mut warnings = Vec::new();
        let good = usable(&reports, &columns, config.skip_bad_files, &mut warnings)?;
        let kinds = IdTypes::of_files(good.iter().copied(), &columns);
        let again = unsigned_to_read_again(&mut gathered, kinds);
        let mut ids = gathered.id_types(kinds).read_as();
        let text = dictionary.read().expect("dictionary lock").has_names();
        if text {
            ids = DataType::Utf8;
        } else if !again.is_empty() {
            todo.extend(again);
            todo.sort();
            continue;
        } else if ids == DataType::Utf8 {
            // The lake's first text ids: every id is text from now on (`1` is `"1"`, as in the
            // SQL), in a dictionary of text ids; days read with integer ids are read again.
            let names = Dictionary::new(true);
            begun = names.lineage.clone();
            *dictionary.write().expect("dictionary lock") = names;
            if !gathered.days.is_empty() {
                (gathered.days, gathered.keys, gathered.reused) = Default::default();
                todo = days.to_vec();
                continue;
            }
        }
        let mut by_day: BTreeMap<NaiveDate, Vec<FileReport>> = BTreeMap::new();
        for report in &good {
            by_day
                .entry(report.day)
                .or_default()
                .push((*report).clone());
        }
        // Read in full: files, every one of them good (a day with none is not read at all).
        let whole = |day: &NaiveDate| {
            let files = reports.iter().filter(|r| r.day == *day).count();
            by_day.get(day).is_some_and(|good| good.len() == files)
        };
        let clean: BTreeSet<NaiveDate> = todo.iter().copied().filter(whole).collect();
        let unread = unread_days(lake, &todo, &reports, &good, &mut warnings);
        // Days read at once: a day a core; from a bucket, enough that the next days' bytes are
        // on their way while others are counted (unless memory is limited).
        let parallel = match lake.is_remote() && budget.is_none() {
            true => BUCKET_DAYS,
            false => cores(),
        };
        let watch = lake.watch("reading", Some(good.len()));
        let mut scanned = stream::iter(by_day)
            .map(|(day, files)| {
                let budget = budget.as_ref();
                let (dictionary, ids, columns) = (dictionary.clone(), ids.clone(), &columns);
                async move {
                    // A day's ids and counts while it is read, under --memory-limit.
                    let rows: u64 = files
                        .iter()
                        .filter_map(|f| f.facts.as_ref().ok())
                        .map(|f| f.rows)
                        .sum();
                    let reading = budget
                        .map(|b| b.reserve(&format!("reading {day}"), rows * SCAN_BYTES_PER_ROW))
                        .transpose()?;
                    // What its rollup says of its ids: unsigned ones only when read as such
                    // (they may not fit beside signed ones).
                    let kinds = IdTypes::of_files(&files, columns);
                    let id_types = IdTypes {
                        unsigned64: kinds.unsigned64 && ids == DataType::UInt64,
                        ..kinds
                    };
                    // A task per day, so that days are counted on every core.
                    let (lake, user) = (lake.clone(), config.user_column.clone());
                    let users = spawn(async move {
                        let names = (ids == DataType::Utf8).then(|| dictionary.clone());
                        let ids = scan_day(&lake, &files, &user, &ids, names).await?;
                        let users = ids.map(|ids| DayUsers::new(ids, &dictionary));
                        Ok::<_, Error>(users.map(|u| u.map(|u| DayUsers { id_types, ..u })))
                    })
                    .await?;
                    Ok::<_, Error>((day, users, reading))
                }
            })
            .buffer_unordered(parallel);
        let mut found_bad = false;
        let mut read = BTreeMap::new();
        while let Some(scanned) = scanned.next().await {
            let (day, users, reading) = scanned?;
            match users {
                Ok(None) => {
                    let why = format!("{} has more than 2^32 distinct user ids", lake.name);
                    return Ok(Err(why));
                }
                Ok(Some(users)) => {
                    drop(reading);
                    if let Some(budget) = &budget {
                        budget.keep(users.users.serialized_size() as u64)?;
                    }
                    read.insert(day, users);
                }
                Err((location, reason)) => {
                    if !config.skip_bad_files {
                        return Err(Error::BadFile {
                            file: lake.describe(&location),
                            reason,
                            others: 0,
                        });
                    }
                    known_bad.insert(location, reason);
                    found_bad = true;
                }
            }
        }
        drop(watch);
        if found_bad {
            // Check and read again without the files found bad, so the warning names them.
            continue;
        }
        if let (Some(rollups), Some(writing)) = (rollups, writing.as_mut()) {
            // The dictionary first, then the days that use it (a few at once, for a bucket).
            let saved = match rollups.save_dictionary(writing, &dictionary).await {
                Ok(()) => {
                    let (listings, read) = (&listings, &read);
                    let state = dictionary.read().expect("dictionary lock").lineage.last();
                    let generation = begun.generation;
                    stream::iter(clean.iter().copied())
                        .map(|day| async move {
                            let key = rollups.key(&listings[&day], generation);
                            rollups.save(day, &key, state, &read[&day]).await?;
                            Ok::<_, std::io::Error>((day, (key, state)))
                        })
                        .buffered(BUCKET_REQUESTS)
                        .try_collect::<Vec<_>>()
                        .await
                }
                Err(e) => Err(e),
            };
            match saved {
                Ok(saved) => {
                    for (day, key) in saved {
                        gathered.keys.insert(day, key);
                        gathered.built.push(day);
                    }
                }
                Err(e) if Rollups::lost_race(&e) && races < RACES => {
                    // Another run added ids to the bucket's dictionary meanwhile: these days
                    // again, with its dictionary, so that they are kept.
                    races += 1;
                    match rollups.begin().await {
                        // (A dictionary made anew by both needs no rollup read before.)
                        Ok((again, current))
                            if current.lineage.extends(&begun) || gathered.reused == 0 =>
                        {
                            begun = current.lineage.clone();
                            *writing = again;
                            *dictionary.write().expect("dictionary lock") = current;
                            continue;
                        }
                        _ => gathered.unsaved = Some(unsaved(Some(rollups), &e)),
                    }
                }
                Err(e) => gathered.unsaved = Some(unsaved(Some(rollups), &e)),
            }
        }
        gathered.days.extend(read);
        gathered.unread_days = unread;
        gathered.warnings = warnings;
        todo.clear();
    }
    Ok(Ok(gathered))
}

/// The days from rollups whose unsigned ids may not fit beside signed ones (of other such days,
/// or `cold`, the ids of the days to read): taken out of `gathered`, to be read again as signed
/// ids, which checks that each fits (and names a file with one that does not).
fn unsigned_to_read_again(gathered: &mut Gathered, cold: IdTypes) -> Vec<NaiveDate> {
    if gathered.id_types(cold).read_as() != DataType::Int64 {
        return Vec::new();
    }
    let again: Vec<NaiveDate> = gathered
        .days
        .iter()
        .filter(|(_, d)| d.id_types.unsigned64)
        .map(|(day, _)| *day)
        .collect();
    for day in &again {
        gathered.days.remove(day);
        gathered.keys.remove(day);
    }
    gathered.reused = gathered.days.len();
    again
}

/// The current rollups among `keyed` days (each with its key): from a folder, a share of the
/// days on each core (its reads never wait, and a task per day costs more in wake-ups than a
/// warm rollup takes to read); from a bucket, many at once. Without `users`, only their counts.
async fn load_rollups(
    rollups: &Rollups,
    keyed: &[(NaiveDate, String)],
    lineage: &Lineage,
    users: bool,
) -> Vec<(NaiveDate, (DayUsers, State))> {
    let shares: Vec<Vec<(NaiveDate, String)>> = match rollups.is_local() {
        true => per_core(keyed).map(<[_]>::to_vec).collect(),
        false => keyed.iter().map(|day| vec![day.clone()]).collect(),
    };
    stream::iter(shares)
        .map(|share| {
            let (rollups, lineage) = (rollups.clone(), lineage.clone());
            spawn(async move {
                let mut loaded = Vec::new();
                for (day, key) in share {
                    if let Some(found) = rollups.load(day, &key, &lineage, users).await {
                        loaded.push((day, found));
                    }
                }
                loaded
            })
        })
        .buffer_unordered(BUCKET_REQUESTS)
        .flat_map(stream::iter)
        .collect()
        .await
}

impl Gathered {
    /// The kinds of ids of its days and of `others`.
    fn id_types(&self, others: IdTypes) -> IdTypes {
        self.days
            .values()
            .map(|d| d.id_types)
            .fold(others, IdTypes::and)
    }

    /// Reads the users of those of `days` that came with their counts only; false when a rollup
    /// changed meanwhile (then gather again).
    async fn load_users(&mut self, days: &BTreeSet<NaiveDate>) -> bool {
        let (Some(rollups), Some(lineage)) = (&self.rollups, &self.lineage) else {
            return true;
        };
        let keyed: Vec<(NaiveDate, String)> = days
            .iter()
            .filter(|d| self.days.get(d).is_some_and(|u| u.users.len() != u.active))
            .filter_map(|d| Some((*d, self.keys.get(d)?.0.clone())))
            .collect();
        let loaded = load_rollups(rollups, &keyed, lineage, true).await;
        let whole = loaded.len() == keyed.len();
        self.days
            .extend(loaded.into_iter().map(|(day, (users, _))| (day, users)));
        whole
    }
}

/// The warning for rollups that could not be written.
fn unsaved(rollups: Option<&Rollups>, error: &std::io::Error) -> String {
    let place = rollups.map(Rollups::to_string).unwrap_or_default();
    format!("{UNSAVED}{place}: {error}")
}

const UNSAVED: &str = "could not keep rollups in ";

/// Whether a warning of [`run`]'s says that rollups could not be written.
pub fn is_unsaved(warning: &str) -> bool {
    warning.starts_with(UNSAVED)
}

/// Times a run reads its days again after losing the race to extend a bucket's dictionary.
const RACES: usize = 3;

/// Most bytes reading a day takes per row: its id (8), and the counts array of a dense id range
/// (at most 8 four-byte slots per id).
const SCAN_BYTES_PER_ROW: u64 = 8 + 8 * 4;

/// `--memory-limit` for the bitmaps: the days being read, and the users kept.
struct Budget {
    pool: Arc<dyn MemoryPool>,
    limit: MemoryLimit,
    kept: std::sync::Mutex<MemoryReservation>,
}

impl Budget {
    fn new(limit: &MemoryLimit) -> Budget {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(limit.bytes));
        let kept = MemoryConsumer::new("users of the days read").register(&pool);
        Budget {
            pool,
            limit: limit.clone(),
            kept: std::sync::Mutex::new(kept),
        }
    }

    fn fail(&self, e: datafusion::error::DataFusionError) -> Error {
        Error::from(e).under_memory_limit(Some(&self.limit))
    }

    /// Memory for `what`, given back when the reservation is dropped.
    fn reserve(&self, what: &str, bytes: u64) -> Result<MemoryReservation> {
        let reservation = MemoryConsumer::new(what).register(&self.pool);
        reservation
            .try_grow(bytes as usize)
            .map_err(|e| self.fail(e))?;
        Ok(reservation)
    }

    /// Memory held until the query ends.
    fn keep(&self, bytes: u64) -> Result<()> {
        let kept = self.kept.lock().expect("memory budget");
        kept.try_grow(bytes as usize).map_err(|e| self.fail(e))
    }
}

/// The days a query's rows read, each with its users (empty where the lake has no day) and
/// whether it is missing (no partition, or no readable file): such a day makes its rows NULL, as
/// does a window of only days before the lake's first.
struct Span<'a> {
    start: NaiveDate,
    sets: Vec<&'a RoaringBitmap>,
    users: Vec<Option<&'a DayUsers>>,
    /// Missing days up to and including each day, for "does this window hold one".
    missing_so_far: Vec<usize>,
    /// The index of the lake's first day.
    lake_starts: i64,
    /// The distinct users of each of the query's windows (`Query::windows`), once counted.
    windows: Vec<u64>,
}

static EMPTY: std::sync::LazyLock<RoaringBitmap> = std::sync::LazyLock::new(RoaringBitmap::new);

impl<'a> Span<'a> {
    fn new(
        query: &Query,
        read: &'a BTreeMap<NaiveDate, DayUsers>,
        missing: &BTreeSet<NaiveDate>,
        first: NaiveDate,
    ) -> Span<'a> {
        let (start, end) = query.span();
        let users: Vec<Option<&DayUsers>> = days(start, end).map(|d| read.get(&d)).collect();
        let sets = users
            .iter()
            .map(|u| u.map_or(&*EMPTY, |u| &u.users))
            .collect();
        let missing_so_far = days(start, end)
            .scan(0, |n, d| {
                *n += usize::from(missing.contains(&d));
                Some(*n)
            })
            .collect();
        Span {
            start,
            sets,
            users,
            missing_so_far,
            lake_starts: (first - start).num_days(),
            windows: Vec::new(),
        }
    }

    fn index(&self, day: NaiveDate) -> usize {
        (day - self.start).num_days() as usize
    }

    /// True when the rows of the days from `first` to `last` (indexes) are NULL: one of them is
    /// missing, or all are before the lake's first day.
    fn unknown(&self, first: usize, last: usize) -> bool {
        let before = if first == 0 {
            0
        } else {
            self.missing_so_far[first - 1]
        };
        self.missing_so_far[last] > before || (last as i64) < self.lake_starts
    }

    /// The query's columns by name, the rows of `from` .. `to` (or of each period).
    fn columns(&self, query: &Query) -> Vec<(String, ArrayRef)> {
        let asked: Vec<NaiveDate> = days(query.from, query.to).collect();
        let dates = |days: &[NaiveDate]| -> ArrayRef {
            Arc::new(Date32Array::from_iter_values(
                days.iter().map(|d| to_date32(*d)),
            ))
        };
        let int = |values: Vec<Option<u64>>| -> ArrayRef {
            Arc::new(Int64Array::from_iter(
                values.into_iter().map(|v| v.map(|v| v as i64)),
            ))
        };
        let col = |name: &str, array: ArrayRef| (name.to_string(), array);
        let windows = query.windows();
        match (query.metric, query.calendar) {
            (Metric::Dau, _) => vec![
                col("date", dates(&asked)),
                col("dau", int(self.dau(&asked))),
            ],
            (Metric::Wau | Metric::Mau, false) => vec![
                col("date", dates(&asked)),
                col(query.metric.name(), int(self.windows(&windows))),
            ],
            (Metric::Wau | Metric::Mau, true) => {
                let starts: Vec<NaiveDate> = windows.iter().map(first_day).collect();
                vec![
                    col("date", dates(&starts)),
                    col(query.name(), int(self.windows(&windows))),
                ]
            }
            (Metric::Stickiness, _) => {
                let dau = self.dau(&asked);
                let mau = self.windows(&windows);
                let ratio: Float64Array = dau
                    .iter()
                    .zip(&mau)
                    .map(|(d, m)| match (d, m) {
                        (Some(d), Some(m)) if *m > 0 => Some(*d as f64 / *m as f64),
                        _ => None,
                    })
                    .collect();
                vec![
                    col("date", dates(&asked)),
                    col("dau", int(dau)),
                    col("mau", int(mau)),
                    col("stickiness", Arc::new(ratio)),
                ]
            }
            (Metric::Opens, _) => self.opens(&asked, dates(&asked)),
            (Metric::UserDays, _) => unreachable!("user-days has no bitmap form"),
        }
    }

    fn dau(&self, asked: &[NaiveDate]) -> Vec<Option<u64>> {
        asked
            .iter()
            .map(|d| self.index(*d))
            .map(|i| (!self.unknown(i, i)).then(|| self.users[i].map_or(0, |u| u.active)))
            .collect()
    }

    /// The distinct users of each of `windows` (the query's), counted from the days' users but
    /// for those already `known`.
    fn window_counts(
        &self,
        query: &Query,
        windows: &[(u64, NaiveDate)],
        known: &[Option<u64>],
    ) -> Vec<u64> {
        if !query.calendar {
            let length = query.metric.window() as usize;
            let counts = window_counts(&self.sets, length);
            return windows
                .iter()
                .map(|window| counts[self.index(first_day(window))])
                .collect();
        }
        let union_len = |window: &(u64, NaiveDate)| {
            let mut union = RoaringBitmap::new();
            for set in &self.sets[self.index(first_day(window))..=self.index(window.1)] {
                union |= *set;
            }
            union.len()
        };
        windows
            .iter()
            .zip(known)
            .map(|(window, known)| known.unwrap_or_else(|| union_len(window)))
            .collect()
    }

    /// The counted windows' users, NULL where a window holds a missing day or no day of the lake.
    fn windows(&self, windows: &[(u64, NaiveDate)]) -> Vec<Option<u64>> {
        windows
            .iter()
            .zip(&self.windows)
            .map(|(window, users)| {
                let (first, last) = (self.index(first_day(window)), self.index(window.1));
                (!self.unknown(first, last)).then_some(*users)
            })
            .collect()
    }

    fn opens(&self, asked: &[NaiveDate], dates: ArrayRef) -> Vec<(String, ArrayRef)> {
        let mut opens = Vec::new();
        let mut active = Vec::new();
        let mut mean = Vec::new();
        let mut p50 = Vec::new();
        let mut p90 = Vec::new();
        let mut max = Vec::new();
        for day in asked {
            let i = self.index(*day);
            let observed = !self.unknown(i, i);
            let empty = DayUsers::default();
            let users = self.users[i].unwrap_or(&empty);
            let n = users.active;
            opens.push(observed.then_some(users.opens as i64));
            active.push(observed.then_some(n as i64));
            // Nearest rank, as in opens.sql: the count at rank ceil(n * p / 100).
            let at = |p: u64| users.opens_at_rank((n * p).div_ceil(100)).map(|v| v as i64);
            let some = observed && n > 0;
            mean.push(some.then(|| users.opens as f64 / n as f64));
            p50.push(if some { at(50) } else { None });
            p90.push(if some { at(90) } else { None });
            max.push(if some {
                users.histogram.last().map(|(o, _)| *o as i64)
            } else {
                None
            });
        }
        let int = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        vec![
            ("date".into(), dates),
            ("opens".into(), int(opens)),
            ("active_users".into(), int(active)),
            (
                "opens_per_user_mean".into(),
                Arc::new(Float64Array::from(mean)),
            ),
            ("opens_per_user_p50".into(), int(p50)),
            ("opens_per_user_p90".into(), int(p90)),
            ("opens_per_user_max".into(), int(max)),
        ]
    }
}

/// The first day of a window (its days, its last day).
fn first_day((length, last): &(u64, NaiveDate)) -> NaiveDate {
    *last - DayCount::new(length - 1)
}

/// Those of `windows` (days, last day) that were counted before, while every day they cover is
/// as it was then.
fn known_windows(
    lake: &Lake,
    gathered: &Gathered,
    counted: &Windows,
    windows: &[(u64, NaiveDate)],
) -> Vec<Option<u64>> {
    let stamps = window_stamps(lake, gathered, windows);
    windows
        .iter()
        .zip(stamps)
        .map(|(window, stamps)| {
            let (at, users) = counted.get(window)?;
            (Some(at) == stamps.as_ref()).then_some(*users)
        })
        .collect()
}

/// For each of `windows` (days, last day): the stamps of its days, first to last (0 for a day the
/// lake does not have); None when one of them has no current rollup (a count of that window
/// cannot be kept).
fn window_stamps(
    lake: &Lake,
    gathered: &Gathered,
    windows: &[(u64, NaiveDate)],
) -> Vec<Option<Vec<u64>>> {
    // Each day's stamp once (a key is a few hundred bytes to hash), then each window's days.
    let first = windows.iter().map(first_day).min();
    let (Some(first), Some(last)) = (first, windows.iter().map(|(_, last)| *last).max()) else {
        return Vec::new();
    };
    let stamps: Vec<Option<u64>> = days(first, last)
        .map(|day| match lake.days.contains_key(&day) {
            true => gathered
                .keys
                .get(&day)
                .map(|(key, state)| stamp(key, *state)),
            false => Some(0),
        })
        .collect();
    windows
        .iter()
        .map(|window| {
            let at = |day: NaiveDate| (day - first).num_days() as usize;
            stamps[at(first_day(window))..=at(window.1)]
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

/// `|sets[i + 1 - w] ∪ … ∪ sets[i]|` for every `i ≥ w - 1`. The days are cut into blocks of `w`;
/// a window is a suffix of one block joined with a prefix of the next, so each day costs two
/// unions and one counted union, however long the window.
fn window_counts(sets: &[&RoaringBitmap], w: usize) -> Vec<u64> {
    let mut counts = Vec::with_capacity(sets.len().saturating_sub(w - 1));
    // suffixes[k]: the union from day `block - w + k` to the end of the previous block.
    let mut suffixes: Vec<RoaringBitmap> = Vec::new();
    for block in (0..sets.len()).step_by(w) {
        let end = (block + w).min(sets.len());
        let mut prefix = RoaringBitmap::new();
        for (i, set) in sets.iter().enumerate().take(end).skip(block) {
            prefix |= *set;
            if i + 1 >= w {
                let first = i + 1 - w;
                counts.push(if first == block {
                    prefix.len()
                } else {
                    suffixes[first + w - block].union_len(&prefix)
                });
            }
        }
        let mut union = RoaringBitmap::new();
        suffixes = sets[block..end]
            .iter()
            .rev()
            .map(|set| {
                union |= *set;
                union.clone()
            })
            .collect();
        suffixes.reverse();
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of every length over days with overlapping users equal a brute-force union.
    #[test]
    fn window_counts_match_brute_force() {
        let sets: Vec<RoaringBitmap> = (0..40u32)
            .map(|d| (0..(d % 7 + 1)).map(|k| (d * 3 + k * 5) % 50).collect())
            .collect();
        let refs: Vec<&RoaringBitmap> = sets.iter().collect();
        for w in 1..=12 {
            let counts = window_counts(&refs, w);
            assert_eq!(counts.len(), sets.len() + 1 - w);
            for (k, count) in counts.iter().enumerate() {
                let mut union = BTreeSet::new();
                for set in &sets[k..k + w] {
                    union.extend(set.iter());
                }
                assert_eq!(
                    *count,
                    union.len() as u64,
                    "window {w} ending on {}",
                    k + w - 1
                );
            }
        }
    }
}
