//! The metrics: each one a SQL file in `sql/` (the reference definition), run over the lake.
//!
//! A query registers two tables: `events` (the lake's days that the rows read) and `days` (every day
//! those rows read, with `observed` false where the lake has no partition), then runs the metric's SQL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Datelike, Days, Months, NaiveDate};
use clap::ValueEnum;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Date32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::MemTable;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::path::Path as ObjectPath;

use crate::config::Config;
use crate::dates::{check_order, days, to_date32};
use crate::lake::Lake;
use crate::lake::inspect::{
    FileReport, IdTypes, inspect, null_users_per_day, null_warning, scan_file, unread_days, usable,
};
use crate::lake::table::{Columns, EventsTable};
use crate::{Error, Result};

/// A metric `dau query` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Metric {
    /// Distinct users per day
    Dau,
    /// Distinct users in the 7 days ending on each day (--calendar: per ISO week)
    Wau,
    /// Distinct users in the 30 days ending on each day (--calendar: per calendar month)
    Mau,
    /// Opens (events), active users and opens per user (mean, p50, p90, max) per day
    Opens,
    /// dau / mau per day
    Stickiness,
    /// One row per user and active day with that day's opens
    UserDays,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Dau => "dau",
            Metric::Wau => "wau",
            Metric::Mau => "mau",
            Metric::Opens => "opens",
            Metric::Stickiness => "stickiness",
            Metric::UserDays => "user-days",
        }
    }

    /// The name of the metric's column: `calendar_wau` and `calendar_mau` for ISO weeks and
    /// calendar months, so that a file of rolling windows never takes them for its own (nor the
    /// other way round).
    pub fn column(self, calendar: bool) -> &'static str {
        match (calendar, self) {
            (true, Metric::Wau) => "calendar_wau",
            (true, Metric::Mau) => "calendar_mau",
            (_, metric) => metric.name(),
        }
    }

    /// The metric whose export writes `column` (`opens` writes `active_users` and
    /// `opens_per_user_p50` too), as `dau export` names it, or nothing for a column not of dau's.
    pub fn exporting(column: &str) -> Option<String> {
        if column == "active_users" || column.starts_with("opens_per_user_") {
            return Some("opens".into());
        }
        Metric::value_variants().iter().find_map(|m| match column {
            c if c == m.name() => Some(c.to_string()),
            c if c == m.column(true) => Some(format!("{} --calendar", m.name())),
            _ => None,
        })
    }

    /// The reference SQL, a template filled in by [`Query::sql`].
    pub fn sql(self, calendar: bool) -> &'static str {
        match (self, calendar) {
            (Metric::Dau, _) => include_str!("../../sql/dau.sql"),
            (Metric::Wau | Metric::Mau, false) => include_str!("../../sql/active_rolling.sql"),
            (Metric::Wau | Metric::Mau, true) => include_str!("../../sql/active_calendar.sql"),
            (Metric::Opens, _) => include_str!("../../sql/opens.sql"),
            (Metric::Stickiness, _) => include_str!("../../sql/stickiness.sql"),
            (Metric::UserDays, _) => include_str!("../../sql/user_days.sql"),
        }
    }

    /// How many days each row's value reads, ending on its day.
    pub fn window(self) -> u64 {
        match self {
            Metric::Wau => 7,
            Metric::Mau | Metric::Stickiness => 30,
            Metric::Dau | Metric::Opens | Metric::UserDays => 1,
        }
    }

    /// The metrics whose results this one's SQL reads as tables.
    fn parts(self) -> &'static [Metric] {
        match self {
            Metric::Stickiness => &[Metric::Dau, Metric::Mau],
            _ => &[],
        }
    }
}

/// One metric over a resolved range of days.
#[derive(Debug, Clone)]
pub struct Query {
    pub metric: Metric,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// ISO weeks / calendar months instead of rolling windows (wau and mau only).
    pub calendar: bool,
}

impl Query {
    pub fn new(metric: Metric, from: NaiveDate, to: NaiveDate, calendar: bool) -> Result<Query> {
        check_order(from, to)?;
        if calendar && !matches!(metric, Metric::Wau | Metric::Mau) {
            return Err(Error::usage(
                format!("--calendar does not apply to {}", metric.name()),
                "use it with wau (ISO weeks) or mau (calendar months)",
            ));
        }
        Ok(Query {
            metric,
            from,
            to,
            calendar,
        })
    }

    /// The queries of each of `metrics` over the same days.
    pub fn each(
        metrics: &[Metric],
        from: NaiveDate,
        to: NaiveDate,
        calendar: bool,
    ) -> Result<Vec<Query>> {
        (metrics.iter())
            .map(|m| Query::new(*m, from, to, calendar))
            .collect()
    }

    /// The first and last day that `queries` read together (see [`Query::span`]).
    pub fn spans(queries: &[Query]) -> Option<(NaiveDate, NaiveDate)> {
        (queries.iter().map(Query::span)).reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// The name of the metric's column (and of its workbook sheet).
    pub fn name(&self) -> &'static str {
        self.metric.column(self.calendar)
    }

    /// The first and last day the rows read: the asked range, widened back by the rolling window,
    /// or out to whole weeks or months with --calendar.
    pub fn span(&self) -> (NaiveDate, NaiveDate) {
        match (self.calendar, self.metric) {
            (true, Metric::Wau) => {
                let monday =
                    |d: NaiveDate| d - Days::new(d.weekday().num_days_from_monday().into());
                (monday(self.from), monday(self.to) + Days::new(6))
            }
            (true, _) => {
                let first = |d: NaiveDate| d.with_day(1).expect("day 1 exists");
                (
                    first(self.from),
                    first(self.to) + Months::new(1) - Days::new(1),
                )
            }
            (false, metric) => (self.from - Days::new(metric.window() - 1), self.to),
        }
    }

    /// The windows whose distinct users the rows count, each as (its days, its last day): the
    /// rolling window ending on each asked day, or each ISO week or calendar month of the span
    /// (a month is the window of its days ending on its last). None for dau, opens and user-days.
    pub fn windows(&self) -> Vec<(u64, NaiveDate)> {
        if !self.calendar {
            let length = self.metric.window();
            return match length {
                1 => Vec::new(),
                _ => days(self.from, self.to).map(|d| (length, d)).collect(),
            };
        }
        let (mut first, end) = self.span();
        let mut windows = Vec::new();
        while first <= end {
            let next = match self.metric {
                Metric::Wau => first + Days::new(7),
                _ => first + Months::new(1),
            };
            windows.push(((next - first).num_days() as u64, next - Days::new(1)));
            first = next;
        }
        windows
    }

    /// The metric's SQL with this query's days and the user column filled in.
    fn sql(&self, metric: Metric, user_column: &str) -> String {
        let (start, end) = self.span();
        let day = |d: NaiveDate| format!("DATE '{d}'");
        let window = metric.window();
        let period = match metric {
            Metric::Wau => "week",
            _ => "month",
        };
        metric
            .sql(self.calendar)
            .replace("{from}", &day(self.from))
            .replace("{to}", &day(self.to))
            .replace("{start}", &day(start))
            .replace("{end}", &day(end))
            .replace("{user}", &quote_ident(user_column))
            .replace("{window}", &window.to_string())
            .replace("{lookback}", &(window.saturating_sub(1)).to_string())
            .replace("{period}", period)
            .replace("{name}", metric.column(self.calendar))
    }

    /// Days the rows read that have no partition, from the lake's first day on. (Days before it
    /// are empty in the windows that reach them, and rows of only such days are NULL, whatever
    /// the asked range: the same day has the same number, however it is asked.)
    pub fn missing_days(&self, lake: &Lake) -> Vec<NaiveDate> {
        let (start, end) = self.span();
        days(start.max(lake.first_day()), end)
            .filter(|d| !lake.days.contains_key(d))
            .collect()
    }

    /// What a user should know about the answer: missing days, windows that reach before the lake,
    /// days in several folders, folders that were skipped.
    pub fn warnings(&self, lake: &Lake) -> Vec<String> {
        let mut warnings = Vec::new();
        let (start, end) = self.span();
        // (A day that only some of a pattern's lakes lack has a warning of its own, naming them.)
        let incomplete = lake.incomplete(start, end);
        let mut missing = self.missing_days(lake);
        missing.retain(|d| !incomplete.contains_key(d));
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(10).map(|d| d.to_string()).collect();
            let more = if missing.len() > 10 {
                format!(" and {} more", missing.len() - 10)
            } else {
                String::new()
            };
            let rows = if self.metric == Metric::UserDays {
                "they have no rows"
            } else if self.metric.window() > 1 || self.calendar {
                "the rows of those days, and every row whose window holds one, are NULL"
            } else {
                "their rows are NULL"
            };
            // Days after the lake's last one are most often days not written yet.
            let after = match missing.last() > Some(&lake.last_day()) {
                true => format!(" (the lake ends at {})", lake.last_day()),
                false => String::new(),
            };
            warnings.push(format!(
                "{} day(s) have no partition in {}: {}{more}; {rows}{after}",
                missing.len(),
                lake.name,
                shown.join(", ")
            ));
        }
        warnings.extend(lake.incomplete_warning(start, end));
        warnings.extend(lake.newest_incomplete_warning(end));
        warnings.extend(lake.unmarked_warning(start, end));
        let first = lake.first_day();
        // The rows of days before the lake's first day, or with --calendar of weeks or months
        // that end before it, are NULL (the period that holds it counts from it).
        let (rows_from, before) = match self.calendar {
            true => {
                let holding = Query {
                    from: first,
                    to: first,
                    ..self.clone()
                };
                (start, holding.span().0.pred_opt())
            }
            false => (self.from, first.pred_opt()),
        };
        if self.from < first
            && let Some(before) = before.map(|b| b.min(self.to)).filter(|b| rows_from <= *b)
        {
            warnings.push(format!(
                "{rows_from} to {before} are before the lake's first day {first}: their rows are \
                 NULL"
            ));
        }
        // The windows of the rows from the lake's first day on.
        let reach = Query {
            from: self.from.max(first),
            ..self.clone()
        };
        let back = reach.span().0;
        if back < first && reach.from <= self.to {
            warnings.push(format!(
                "{} windows reach back to {back}, before the lake's first day {first}: they count \
                 only days from {first}",
                self.metric.name(),
            ));
        }
        let split: Vec<String> = (lake.split_days(start, end))
            .map(|(d, _)| d.to_string())
            .collect();
        if !split.is_empty() {
            warnings.push(format!(
                "{} day(s) have their partition in several folders, all read (`dau check` lists \
                 them): {}",
                split.len(),
                split.join(", ")
            ));
        }
        if !lake.skipped.is_empty() {
            warnings.push(format!(
                "skipped {} folder(s) that do not name a day: {}",
                lake.skipped.len(),
                lake.skipped.join(", ")
            ));
        }
        warnings
    }
}

/// `"name"`, so that SQL keeps its case (`userId`) and any character.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A DataFusion session as dau uses it: identifiers keep their case, so `userId` works unquoted;
/// SQL's clock is in the configured time zone; with a memory limit, operators that can spill to
/// disk do so, and the others fail clearly.
pub fn session(config: &Config, lake: Option<&Lake>) -> Result<SessionContext> {
    let session = SessionConfig::new()
        .with_information_schema(true)
        .set_bool("datafusion.sql_parser.enable_ident_normalization", false)
        // `current_date` is today where `today` is (--timezone).
        .set_str("datafusion.execution.time_zone", config.timezone.name());
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = &config.memory_limit {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit.bytes)));
        if let Some(folder) = spill_folder() {
            let disk =
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![folder]));
            runtime = runtime.with_disk_manager_builder(disk);
        }
    }
    if let Some(lake) = lake {
        // Parquet footers DataFusion reads are kept for the life of the lake, across queries.
        let cache = CacheManagerConfig::default()
            .with_file_metadata_cache(Some(lake.parquet_footers.clone()));
        runtime = runtime.with_cache_manager(cache);
    }
    Ok(SessionContext::new_with_config_rt(
        session,
        runtime.build_arc()?,
    ))
}

/// This process's folder for what queries spill to disk, `dau-spill-PID` in the system's
/// temporary folder (TMPDIR), made on first use (once a process: each query makes a session);
/// the folders of processes that are gone (killed while spilling: hundreds of MB each) are
/// removed first. None when it cannot be made: DataFusion's own temporary folder then.
fn spill_folder() -> Option<std::path::PathBuf> {
    SPILL_FOLDER.get_or_init(make_spill_folder).clone()
}

static SPILL_FOLDER: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();

/// Removes this process's spill folder, when a query made one: called as a command ends.
pub fn remove_spill_folder() {
    if let Some(Some(folder)) = SPILL_FOLDER.get() {
        let _ = std::fs::remove_dir_all(folder);
    }
}

fn make_spill_folder() -> Option<std::path::PathBuf> {
    const PREFIX: &str = "dau-spill-";
    let temp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&temp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let pid = name
                .to_string_lossy()
                .strip_prefix(PREFIX)
                .map(str::to_string);
            let gone = pid
                .filter(|pid| pid.parse::<u32>().is_ok())
                .is_some_and(|pid| {
                    cfg!(target_os = "linux") && !std::path::Path::new("/proc").join(pid).exists()
                });
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let folder = temp.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&folder).ok().map(|()| folder)
}

pub mod bitmap;
pub mod functions;

/// A planned query: its rows, ready to stream, and what the user should be told about them.
pub(crate) struct Planned {
    pub(crate) df: DataFrame,
    pub(crate) warnings: Vec<String>,
    /// The files the rows read.
    files: Vec<FileReport>,
}

/// A running query: its rows, and what the user should be told about them.
pub struct Answer {
    pub rows: SendableRecordBatchStream,
    pub warnings: Vec<String>,
}

/// Runs `query` until its first rows are ready: from per-day user bitmaps when they apply
/// ([`bitmap`]), else with its SQL (every metric sorts, so by then every file has been
/// read). When reading fails, each file is read again on its own to find the culprit: it is named
/// in the error, or, with --skip-bad-files, left out and the query run again.
pub async fn run(lake: Arc<Lake>, config: &Config, query: &Query) -> Result<Answer> {
    let mut fell_back = None;
    match bitmap::run(&lake, config, query).await {
        Ok(Some((batch, warnings))) => {
            let schema = batch.schema();
            let rows = futures::stream::iter([Ok(batch)]);
            return Ok(Answer {
                rows: Box::pin(RecordBatchStreamAdapter::new(schema, rows)),
                warnings,
            });
        }
        Ok(None) => {}
        // A day's users do not fit in the limit as bitmaps: the SQL spills to disk instead.
        Err(Error::MemoryLimit { limit, .. }) if config.engine == crate::cli::Engine::Auto => {
            fell_back = Some(format!(
                "a day's users need more memory than --memory-limit {limit} allows to count them \
                 in memory: counted with SQL instead, which spills to disk (slower; raise the \
                 limit for speed)"
            ));
        }
        Err(e) => return Err(e),
    }
    let columns = config.columns();
    let mut known_bad: BTreeMap<ObjectPath, String> = BTreeMap::new();
    loop {
        let planned = plan(lake.clone(), config, query, &known_bad).await?;
        let schema = planned.df.schema().inner().clone();
        let watch = lake.watch("reading", Some(planned.files.len()));
        let mut rows = planned.df.execute_stream().await?;
        let first = rows.next().await;
        drop(watch);
        let first = match first {
            Some(Err(e)) => e,
            first => {
                let rows = futures::stream::iter(first).chain(rows);
                let rows = RecordBatchStreamAdapter::new(schema, rows);
                return Ok(Answer {
                    rows: Box::pin(rows),
                    warnings: fell_back.into_iter().chain(planned.warnings).collect(),
                });
            }
        };
        if let Some(failure) = lake.storage_failure(&first) {
            return Err(failure);
        }
        let error = Error::from(first).under_memory_limit(config.memory_limit.as_ref());
        let ids = IdTypes::of_files(&planned.files, &columns).read_as();
        let found = unreadable_files(&lake, &planned.files, &columns, &ids).await?;
        if found.is_empty() {
            return Err(error);
        }
        known_bad.extend(
            found
                .into_iter()
                .map(|(r, reason)| (r.meta.location.clone(), reason)),
        );
    }
}

/// Reads each file's ids in full, as `ids`, to find the ones a failed query tripped on, with the
/// reason.
pub async fn unreadable_files<'a>(
    lake: &Lake,
    files: &'a [FileReport],
    columns: &Columns<'_>,
    ids: &DataType,
) -> Result<Vec<(&'a FileReport, String)>> {
    let mut bad = Vec::new();
    for report in files {
        if let Err(reason) = scan_file(lake, report, columns, ids).await? {
            bad.push((report, reason));
        }
    }
    Ok(bad)
}

/// Plans `query` over `lake`; every file the rows read is checked first ([`register_events`]).
pub(crate) async fn plan(
    lake: Arc<Lake>,
    config: &Config,
    query: &Query,
    known_bad: &BTreeMap<ObjectPath, String>,
) -> Result<Planned> {
    lake.days_between(query.from, query.to)?;
    let (start, end) = query.span();
    let read: Vec<NaiveDate> = lake.days.range(start..=end).map(|(d, _)| *d).collect();
    let ctx = session(config, Some(&lake))?;
    let events = register_events(&ctx, &lake, config, &read, known_bad).await?;
    lake.require_data(query.from, query.to, &events.unread_days)?;
    let mut warnings = query.warnings(&lake);
    warnings.extend(events.warnings);
    let mut missing: BTreeSet<NaiveDate> = query.missing_days(&lake).into_iter().collect();
    // A day whose every file was skipped is not zero: nothing is known of it.
    missing.extend(events.unread_days);
    let days = days_table(start, end, &missing, lake.first_day())?;
    ctx.register_table("days", Arc::new(days))?;
    for part in query.metric.parts() {
        let view = ctx
            .sql(&query.sql(*part, &config.user_column))
            .await?
            .into_view();
        ctx.register_table(part.name(), view)?;
    }
    let df = ctx
        .sql(&query.sql(query.metric, &config.user_column))
        .await?;
    Ok(Planned {
        df,
        warnings,
        files: events.files,
    })
}

/// The `events` table as registered: the files it reads, and what the user should know.
pub struct Events {
    pub files: Vec<FileReport>,
    /// Days that have files, none of them readable (skipped with --skip-bad-files).
    pub unread_days: BTreeSet<NaiveDate>,
    pub warnings: Vec<String>,
}

/// Registers `events` over `days` of `lake` in `ctx`, after reading every footer of those days:
/// an unreadable file, a missing user column or in-file dates that disagree with the partition
/// fail here, with the file named. `known_bad` names files already found unreadable.
async fn register_events(
    ctx: &SessionContext,
    lake: &Arc<Lake>,
    config: &Config,
    days: &[NaiveDate],
    known_bad: &BTreeMap<ObjectPath, String>,
) -> Result<Events> {
    let columns = config.columns();
    let mut reports = inspect(lake, days, &columns).await?;
    for report in &mut reports {
        if let Some(reason) = known_bad.get(&report.meta.location) {
            report.facts = Err(reason.clone());
        }
    }
    let mut warnings = Vec::new();
    let usable = usable(&reports, &columns, config.skip_bad_files, &mut warnings)?;
    let nulls = null_users_per_day(lake, &reports, &columns).await?;
    warnings.extend(null_warning(&nulls, columns.user));
    let unread_days = unread_days(lake, days, &reports, &usable, &mut warnings);
    ctx.register_object_store(lake.store_url.as_ref(), lake.store.clone());
    let table = EventsTable::new(lake.clone(), days, &usable, &columns)?;
    ctx.register_table("events", Arc::new(table))?;
    let files = usable.into_iter().cloned().collect();
    Ok(Events {
        files,
        unread_days,
        warnings,
    })
}

/// The schema of `query`'s rows, found by planning its SQL on empty tables (no storage is touched).
pub async fn output_schema(
    query: &Query,
    user_column: &str,
    events: SchemaRef,
) -> Result<SchemaRef> {
    let ctx = session(&Config::default(), None)?;
    ctx.register_table("events", Arc::new(MemTable::try_new(events, vec![vec![]])?))?;
    let (start, end) = query.span();
    let days = days_table(start, end, &BTreeSet::new(), start)?;
    ctx.register_table("days", Arc::new(days))?;
    for part in query.metric.parts() {
        let view = ctx.sql(&query.sql(*part, user_column)).await?.into_view();
        ctx.register_table(part.name(), view)?;
    }
    Ok(ctx
        .sql(&query.sql(query.metric, user_column))
        .await?
        .schema()
        .inner()
        .clone())
}

/// The `days` table: every day from `start` to `end`, `observed` unless it is `missing`, and
/// `in_lake` from the lake's `first` day on.
fn days_table(
    start: NaiveDate,
    end: NaiveDate,
    missing: &BTreeSet<NaiveDate>,
    first: NaiveDate,
) -> Result<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("observed", DataType::Boolean, false),
        Field::new("in_lake", DataType::Boolean, false),
    ]));
    let dates = Date32Array::from_iter_values(days(start, end).map(to_date32));
    let flag = |f: &dyn Fn(NaiveDate) -> bool| -> ArrayRef {
        Arc::new(
            days(start, end)
                .map(|d| Some(f(d)))
                .collect::<BooleanArray>(),
        )
    };
    let columns = vec![
        Arc::new(dates) as ArrayRef,
        flag(&|d| !missing.contains(&d)),
        flag(&|d| d >= first),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(datafusion::error::DataFusionError::from)?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// Every metric's SQL, filled in, plans against empty `events` and `days` tables.
    #[tokio::test]
    async fn every_metric_sql_plans_with_nothing_left_to_fill() {
        let (from, to) = (day("2024-06-01"), day("2024-06-30"));
        let events = Arc::new(Schema::new(vec![
            Field::new("userId", DataType::Int64, true),
            Field::new("date", DataType::Date32, false),
        ]));
        for metric in Metric::value_variants() {
            for calendar in [false, true] {
                // --calendar goes with wau and mau only.
                let Ok(query) = Query::new(*metric, from, to, calendar) else {
                    continue;
                };
                let sql = query.sql(*metric, "userId");
                assert!(
                    !sql.contains('{'),
                    "{metric:?}: unfilled placeholder in\n{sql}"
                );
                let schema = output_schema(&query, "userId", events.clone()).await;
                let schema =
                    schema.unwrap_or_else(|e| panic!("{metric:?} calendar={calendar}: {e}"));
                assert_eq!(
                    schema.field(0).name(),
                    if *metric == Metric::UserDays {
                        "userId"
                    } else {
                        "date"
                    }
                );
            }
        }
    }

    #[test]
    fn windows() {
        let q = |m, from, to, cal| Query::new(m, day(from), day(to), cal).unwrap().windows();
        assert_eq!(q(Metric::Dau, "2024-06-10", "2024-06-12", false), []);
        assert_eq!(
            q(Metric::Wau, "2024-06-10", "2024-06-11", false),
            [(7, day("2024-06-10")), (7, day("2024-06-11"))]
        );
        assert_eq!(
            q(Metric::Wau, "2024-06-12", "2024-06-17", true),
            [(7, day("2024-06-16")), (7, day("2024-06-23"))]
        );
        assert_eq!(
            q(Metric::Mau, "2024-01-31", "2024-03-01", true),
            [
                (31, day("2024-01-31")),
                (29, day("2024-02-29")),
                (31, day("2024-03-31"))
            ]
        );
    }

    #[test]
    fn spans() {
        let q = |m, from, to, cal| Query::new(m, day(from), day(to), cal).unwrap().span();
        assert_eq!(
            q(Metric::Dau, "2024-06-10", "2024-06-12", false),
            (day("2024-06-10"), day("2024-06-12"))
        );
        assert_eq!(
            q(Metric::Wau, "2024-06-10", "2024-06-12", false),
            (day("2024-06-04"), day("2024-06-12"))
        );
        assert_eq!(
            q(Metric::Mau, "2024-06-10", "2024-06-12", false),
            (day("2024-05-12"), day("2024-06-12"))
        );
        // 2024-06-12 is a Wednesday: its ISO week runs Monday 06-10 to Sunday 06-16.
        assert_eq!(
            q(Metric::Wau, "2024-06-12", "2024-06-12", true),
            (day("2024-06-10"), day("2024-06-16"))
        );
        assert_eq!(
            q(Metric::Mau, "2024-02-12", "2024-03-01", true),
            (day("2024-02-01"), day("2024-03-31"))
        );
    }

    #[test]
    fn bad_queries() {
        assert!(Query::new(Metric::Dau, day("2024-06-02"), day("2024-06-01"), false).is_err());
        assert!(Query::new(Metric::Dau, day("2024-06-01"), day("2024-06-02"), true).is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("userId"), "\"userId\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
