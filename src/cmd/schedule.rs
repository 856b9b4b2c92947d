//! `dau schedule`: a long-running server that runs the `[[jobs]]` of `dau.toml` when their cron
//! fires, in each job's timezone, and on start catches up the days it missed while it was down.
//!
//! The state file keeps, per job, the last firing whose export succeeded (at first, when the
//! schedule first started the job: nothing before that is due). A firing exports the day
//! before it (`range = "yesterday"`) or its own day (`"today"`); missed firings that export the
//! same day run it once. A firing whose day has not landed yet waits for it up to the job's
//! `wait_for_data`; after its day, it exports the `redo_days` before it again, for late events;
//! with `max_change`, a day whose dau differs that much from the same weekday's a week before is
//! alerted of (a day not whole is the usual cause).
//! SIGTERM or Ctrl-C stops the server between exports (or during such a wait).
//!
//! With `[schedule] listen` (or `--listen`), it also serves HTTP: `GET /healthz`, `GET /metrics`
//! (Prometheus text) and `POST /jobs/NAME/run[?date=YYYY-MM-DD]`, which needs the bearer token of
//! `[schedule] token` or `DAU_SCHEDULE_TOKEN` (401 without it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use clap::{Args, ValueEnum};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use object_store::{ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

use crate::cmd::export::{Exported, export, metrics_of, percent, unusual, webhook};
use crate::config::{Config, Job};
use crate::dates::{days, parse_day};
use crate::lake::Lake;
use crate::lake::storage::{self, StorageOptions};
use crate::metrics::{Metric, Query as MetricQuery};
use crate::output::{Replacement, make_folder_of, through_links};
use crate::sink::Sink;
use crate::{Error, Result};

/// Retries of a failed export before the firing is given up (until the next start or firing).
const RETRIES: u32 = 2;

/// The most days a firing exports again (`redo_days`).
const MAX_REDO_DAYS: u64 = 366;

#[derive(Debug, Args)]
#[command(after_help = "Example dau.toml:\n  \
    [lake]\n  url = \"gs://my-bucket/events\"\n\n  \
    [[jobs]]\n  name = \"nightly\"\n  metrics = [\"dau\", \"mau\", \"opens\"]\n  \
    cron = \"0 0 * * *\"\n  timezone = \"Asia/Seoul\"\n  range = \"yesterday\"\n  \
    output = \"postgres://dau@db/metrics?table=daily_metrics\"\n  \
    wait_for_data = \"3h\"\n  redo_days = 2\n  max_change = \"50%\"")]
pub struct ScheduleArgs {
    /// Where the last successful firing of each job is kept: a file, or gs://… or s3://… (for a
    /// container with no disk of its own) [default: in the user's data folder]
    #[arg(long, value_name = "FILE|URL", env = "DAU_STATE")]
    pub state: Option<String>,

    /// Run what is due (and what was missed), then exit instead of waiting
    #[arg(long)]
    pub once: bool,

    /// Serve /healthz, /metrics and POST /jobs/NAME/run here [default: [schedule] listen]
    #[arg(long, value_name = "ADDR", env = "DAU_LISTEN")]
    pub listen: Option<String>,

    /// Log lines for people, or one JSON object per line for a log collector
    #[arg(long, value_enum, ignore_case = true, default_value_t = LogFormat::Human, env = "DAU_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Also tell this webhook when a job fails, recovers or delivers an unusual day (besides
    /// [schedule] webhooks); repeatable
    #[arg(long, value_name = "URL", env = "DAU_WEBHOOKS", value_delimiter = ',', value_parser = webhook)]
    pub webhook: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// A job, checked and parsed.
#[derive(Clone)]
struct Scheduled {
    job: Job,
    metrics: Vec<Metric>,
    cron: Cron,
    timezone: Tz,
    /// Days between a firing and the day it exports.
    back: u64,
    /// How long a firing waits for its day's data (`wait_for_data`).
    wait: Option<Duration>,
    /// The change of dau from a week before that is alerted of, as a fraction (`max_change`).
    max_change: Option<f64>,
}

pub async fn run(config: &Config, args: &ScheduleArgs) -> Result<()> {
    let mut config = config.clone();
    config
        .schedule
        .webhooks
        .extend(args.webhook.iter().cloned());
    let config = &config;
    // A lake to read, and where to tell of failures, said now rather than at each firing.
    config.lake()?;
    for hook in &config.schedule.webhooks {
        webhook(hook).map_err(|hint| {
            Error::usage(format!("bad webhook '{hook}' ([schedule] webhooks)"), hint)
        })?;
    }
    let jobs = config
        .jobs
        .iter()
        .map(|job| scheduled(config, job))
        .collect::<Result<Vec<_>>>()?;
    // An output inside a lake on this machine, said now, from the lake's name (a bucket lake's
    // is checked at each firing).
    let lake = config.lake()?;
    if !storage::is_bucket(lake) {
        for job in &jobs {
            if let Some(place) = Sink::parse(&job.job.output).ok().and_then(|s| s.place()) {
                let what = format!("job '{}': output", job.job.name);
                crate::lake::refuse_inside_named(lake, &config.storage, &place, &what)?;
            }
        }
    }
    let mut names = BTreeSet::new();
    if let Some(twice) = jobs.iter().find(|j| !names.insert(j.job.name.as_str())) {
        return Err(Error::usage(
            format!("two [[jobs]] are named '{}'", twice.job.name),
            "give each its own name: the state file and POST /jobs/NAME/run know a job by it",
        ));
    }
    if jobs.is_empty() {
        return Err(Error::usage(
            "no [[jobs]] to schedule",
            "add [[jobs]] entries (name, metrics, cron, output) to dau.toml; see dau schedule --help",
        ));
    }
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match args.log_format {
        LogFormat::Human => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
    let state_path = match &args.state {
        Some(path) => crate::config::from_home(path),
        None => dirs::data_local_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("dau/schedule-state.json")
            .display()
            .to_string(),
    };
    let mut store = StateStore::open(&state_path, &config.storage)?;
    let mut state = store.load().await?;
    let started = Utc::now();
    // A state later than now (a clock set back, a hand edit) holds a job back until then.
    for name in jobs.iter().map(|job| &job.job.name) {
        if let Some(last) = state.get(name)
            && *last > started + chrono::Duration::minutes(1)
        {
            tracing::warn!(job = %name, "job {name}: the state says it last fired at {last}, after now: it fires again only after that");
        }
    }
    let stats: Stats = Arc::default();
    // A failing streak alerted before (by the run before this one: `--once` from cron, or before
    // a restart) goes on: its failures are not alerted again, and its end is.
    for name in jobs.iter().map(|job| &job.job.name) {
        if state.contains_key(&streak(name)) {
            set_failing(&stats, name, true);
        }
    }
    if let Some(listen) = args.listen.as_ref().or(config.schedule.listen.as_ref()) {
        let token = std::env::var("DAU_SCHEDULE_TOKEN")
            .ok()
            .or(config.schedule.token.clone());
        let app = App {
            config: Arc::new(config.clone()),
            jobs: Arc::new(jobs.clone()),
            stats: stats.clone(),
            token,
        };
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            match e.kind() {
                // Not an address at all: a setting to fix, not a port taken.
                std::io::ErrorKind::InvalidInput => Error::usage(
                    format!(
                        "bad listen address '{listen}' (--listen, DAU_LISTEN or [schedule] listen)"
                    ),
                    "give HOST:PORT, such as 0.0.0.0:9090",
                ),
                _ => Error::io("cannot listen", listen, e),
            }
        })?;
        tracing::info!(%listen, "dau schedule: serving /healthz, /metrics and POST /jobs/NAME/run");
        tokio::spawn(async move { axum::serve(listener, app.router()).await });
    }
    tracing::info!(
        jobs = jobs.len(),
        state = %state_path,
        "dau schedule: started"
    );
    // A job with no state yet starts now, and says so; its state is saved at once, so that the
    // firings a later start finds missed (or the next `--once` from cron) run.
    let new: Vec<&str> = jobs
        .iter()
        .map(|job| job.job.name.as_str())
        .filter(|name| !state.contains_key(*name))
        .collect();
    for name in &new {
        tracing::info!(job = %name, "job {name}: first start, nothing due yet; its firings from now on run");
        state.insert(name.to_string(), started);
    }
    if !new.is_empty() {
        keep(config, &mut store, &state).await?;
    }
    let (stopping, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stopped().await;
        let _ = stopping.send(true);
    });
    // A job that failed for good waits for its next firing before it tries its day again: the
    // loop looks at the clock every minute, and it began the whole wait for data and retries
    // anew each time, holding the other jobs back.
    let mut held: HashMap<&str, DateTime<Utc>> = HashMap::new();
    loop {
        let now = Utc::now();
        let mut failed = Vec::new();
        for job in jobs.iter().take_while(|_| !*stop.borrow()) {
            if held
                .get(job.job.name.as_str())
                .is_some_and(|until| *until > now)
            {
                continue;
            }
            held.remove(job.job.name.as_str());
            let last = state[&job.job.name];
            // Each day's progress is kept as it is made: a catch-up cut short (a failed day, a
            // deadline's kill, SIGTERM between days) goes on from there, not from its start.
            for (day, fired) in due(job, last, now) {
                if *stop.borrow() {
                    break;
                }
                if let Err(error) = run_job(config, job, day, &stats, stop.clone()).await {
                    failed.extend(error.map(|e| (job.job.name.clone(), day, e.exit_code())));
                    let next = next_firing(&job.cron, &now.with_timezone(&job.timezone));
                    let until = next.map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc));
                    held.insert(&job.job.name, until);
                    break;
                }
                state.insert(job.job.name.clone(), fired);
                // With the day, that its streak ended (a `recovered` was sent): a run killed
                // before the pass ends left the streak alerted, and no failure after was told.
                note_streak(&mut state, &stats, &job.job.name);
                keep(config, &mut store, &state).await?;
            }
            if note_streak(&mut state, &stats, &job.job.name) {
                keep(config, &mut store, &state).await?;
            }
        }
        // From cron, a job that failed for good is the run's exit status (its error is logged),
        // even when SIGTERM came after it (that run ended 0).
        if args.once && (!*stop.borrow() || !failed.is_empty()) {
            return match failed.first() {
                None => Ok(()),
                Some((_, _, code)) => Err(Error::JobsFailed {
                    jobs: (failed.iter())
                        .map(|(name, day, _)| format!("{name} ({day})"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    code: *code,
                }),
            };
        }
        // Each job's next firing after this pass began (or after its last one, when later): a
        // firing that came due while another job ran (or waited for its data) runs now, not at
        // its next cron time, a day later. A job that failed fires next on its cron.
        let next = jobs
            .iter()
            .filter_map(|job| {
                let after = state[&job.job.name].max(now);
                next_firing(&job.cron, &after.with_timezone(&job.timezone))
            })
            .map(|t| t.with_timezone(&Utc))
            .min();
        // A minute at most: the sleep is on a clock that stops while the machine sleeps (and
        // that a clock set forward does not move), and the firings a wake-up finds due wait
        // no longer than that.
        let wait = next
            .map(|t| (t - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        if *stop.borrow() || pause(wait, &mut stop).await {
            tracing::info!("dau schedule: stopping");
            return Ok(());
        }
    }
}

/// The state's key for a job's alerted failing streak (no job's name holds a `/`), whose value
/// is when it was kept.
fn streak(name: &str) -> String {
    format!("{name}/failing")
}

/// Records in `state` whether job `name` is in an alerted failing streak; returns whether that
/// changed.
fn note_streak(state: &mut Firings, stats: &Stats, name: &str) -> bool {
    let key = streak(name);
    match (failing(stats, name), state.contains_key(&key)) {
        (true, false) => state.insert(key, Utc::now()).is_none(),
        (false, true) => state.remove(&key).is_some(),
        _ => false,
    }
}

/// Saves the state; one that cannot be saved stops the schedule, and the webhooks are told.
async fn keep(config: &Config, store: &mut StateStore, state: &Firings) -> Result<()> {
    let saved = store.save(state).await;
    if let Err(e) = &saved {
        alert(config, &format!("failed: dau schedule stopped: {e}")).await;
    }
    saved
}

fn scheduled(config: &Config, job: &Job) -> Result<Scheduled> {
    let bad = |what: String, hint: &str| Error::usage(format!("job '{}': {what}", job.name), hint);
    // The state file and POST /jobs/NAME/run know a job by its name.
    if job.name.trim().is_empty() || job.name.contains('/') {
        return Err(bad(
            "a job's name may be neither empty nor hold a /".into(),
            "name it as you would call it, such as name = \"nightly\"",
        ));
    }
    let metrics = job
        .metrics
        .iter()
        .map(|m| {
            Metric::from_str(m, true).map_err(|_| {
                bad(
                    format!("unknown metric '{m}'"),
                    "use dau, wau, mau, opens, stickiness or user-days",
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if metrics.is_empty() {
        return Err(bad(
            "metrics = [] names no metric".into(),
            "list what to deliver, such as metrics = [\"dau\", \"mau\"]",
        ));
    }
    // Export's own check, in the job's words (its hint speaks of a command).
    let metrics = metrics_of(&metrics).map_err(|e| match e {
        Error::Usage { what, .. } => bad(what, "give user-days a job of its own"),
        other => other,
    })?;
    // Said now, not at each firing (retried, then failed in the words of a flag).
    if let Some(other) =
        (metrics.iter()).find(|m| job.calendar && !matches!(m, Metric::Wau | Metric::Mau))
    {
        return Err(bad(
            format!("calendar = true does not apply to {}", other.name()),
            "calendar = true is for wau (ISO weeks) and mau (calendar months): give the other \
             metrics a job of their own",
        ));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(&job.cron)
        .map_err(|e| {
            bad(
                format!("bad cron '{}': {e}", job.cron),
                "e.g. \"0 0 * * *\" for every midnight",
            )
        })?;
    let timezone = match &job.timezone {
        None => config.timezone,
        Some(name) => crate::dates::timezone(name).ok_or_else(|| {
            bad(
                format!("unknown timezone '{name}'"),
                "use an IANA name such as Asia/Seoul",
            )
        })?,
    };
    // `0 0 31 2 *` parses, and never fires: the job would sit idle without a word.
    let now = Utc::now().with_timezone(&timezone);
    if cron.find_next_occurrence(&now, false).is_err() {
        return Err(bad(
            format!("cron '{}' never fires", job.cron),
            "e.g. \"0 0 * * *\" for every midnight",
        ));
    }
    let back = match job.range.as_str() {
        "yesterday" => 1,
        "today" => 0,
        other => {
            return Err(bad(
                format!("unknown range '{other}'"),
                "use \"yesterday\" or \"today\"",
            ));
        }
    };
    if job.redo_days > MAX_REDO_DAYS {
        return Err(bad(
            format!("redo_days = {} is more than a year", job.redo_days),
            "give the days to export again after each firing's day, e.g. 2",
        ));
    }
    // A destination dau cannot write is said now, not at the first firing.
    Sink::parse(&job.output)
        .map_err(|e| Error::usage(format!("job '{}': output", job.name), e.to_string()))?;
    let wait = setting(
        job,
        "wait_for_data",
        &job.wait_for_data,
        duration,
        "give a time such as \"90m\" or \"3h\" (s, m or h)",
    )?;
    let max_change = setting(
        job,
        "max_change",
        &job.max_change,
        percent,
        "give a change of dau such as \"50%\"",
    )?;
    Ok(Scheduled {
        job: job.clone(),
        metrics,
        cron,
        timezone,
        back,
        wait,
        max_change,
    })
}

/// A job's optional setting `name`, parsed; a usage error saying what is wrong with it.
fn setting<T>(
    job: &Job,
    name: &str,
    value: &Option<String>,
    parse: fn(&str) -> Option<T>,
    hint: &str,
) -> Result<Option<T>> {
    (value.as_deref())
        .map(|text| {
            parse(text).ok_or_else(|| {
                Error::usage(format!("job '{}': bad {name} '{text}'", job.name), hint)
            })
        })
        .transpose()
}

/// `30s`, `90m` or `3h`.
fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = match text.chars().last()? {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        _ => return None,
    };
    let number: u64 = text[..text.len() - 1].trim().parse().ok()?;
    Some(Duration::from_secs(number.checked_mul(unit)?)).filter(|d| !d.is_zero())
}

/// Whether an export failed because its day's data is not (all) there yet.
fn not_there_yet(error: &Error) -> bool {
    matches!(error, Error::NoPartitions { .. } | Error::NoFiles { .. })
}

/// How often a firing that waits for its data looks again: a twelfth of the wait, from a
/// second to five minutes.
fn poll(wait: Duration) -> Duration {
    (wait / 12).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// The days of the firings after `last` up to `now`, each once with its last firing (the state
/// to keep once the day is exported).
fn due(
    job: &Scheduled,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> BTreeMap<NaiveDate, DateTime<Utc>> {
    let mut days = BTreeMap::new();
    let mut t = last.with_timezone(&job.timezone);
    while let Some(next) = next_firing(&job.cron, &t) {
        if next.with_timezone(&Utc) > now {
            break;
        }
        days.insert(
            days_back(&job.timezone, next.date_naive(), job.back),
            next.with_timezone(&Utc),
        );
        t = next;
    }
    days
}

/// The day `back` days before `date` in `zone`, counting the days the zone had: Samoa skipped
/// 2011-12-30, so the day before its 12-31 is 12-29 (it was 12-30, which no lake kept there has,
/// and 12-29 was never exported).
fn days_back(zone: &Tz, date: NaiveDate, back: u64) -> NaiveDate {
    use chrono::TimeZone;
    let had = |day: NaiveDate| {
        (0..24).any(|hour| {
            let at = day.and_hms_opt(hour, 0, 0).expect("an hour of a day");
            zone.from_local_datetime(&at).earliest().is_some()
        })
    };
    let mut day = date;
    for _ in 0..back {
        day = day - Days::new(1);
        // (Two days at most: no zone skipped more than one.)
        for _ in 0..2 {
            if !had(day) {
                day = day - Days::new(1);
            }
        }
    }
    day
}

/// The first firing of `cron` after `t`. croner looks for a time a clock change skipped only
/// two hours on and fails past a longer gap (Pacific/Apia skipped 2011-12-30 whole): the search
/// goes on an hour later, for up to two days, where the job stopped for good in silence.
fn next_firing(cron: &Cron, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
    (0..=48).find_map(|hours| {
        let from = *t + chrono::Duration::hours(hours);
        cron.find_next_occurrence(&from, hours > 0).ok()
    })
}

/// What each job has done since the start, for `/metrics`.
type Stats = Arc<Mutex<BTreeMap<String, JobStats>>>;

#[derive(Debug, Default, Clone)]
struct JobStats {
    runs: u64,
    failures: u64,
    rows: u64,
    last_success: Option<DateTime<Utc>>,
    last_seconds: f64,
    /// Exported days whose dau was further from a week before's than `max_change`.
    unusual: u64,
    /// Failed for good since the last success (alerted once).
    failing: bool,
}

/// The longest the schedule sleeps before it looks at the wall clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Sleeps for `time`, unless the schedule is stopped meanwhile; returns whether it was.
async fn pause(time: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(time) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    }
}

/// Exports one day of a job, retrying with backoff; while its data is not there yet, for up to
/// the job's `wait_for_data`, it looks again now and then without using up a retry. When it
/// fails for good, the webhooks hear of it once per failing streak; when it works again, that
/// it recovered. Fails with the last error when it failed for good, or with none when the
/// schedule was stopped meanwhile.
async fn run_job(
    config: &Config,
    job: &Scheduled,
    day: NaiveDate,
    stats: &Stats,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::result::Result<(), Option<Error>> {
    let name = &job.job.name;
    let attempts = config.schedule.retries.unwrap_or(RETRIES) + 1;
    // Until when a day not there yet is looked for again, and how often.
    let waiting = job.wait.map(|wait| (Instant::now() + wait, poll(wait)));
    let mut error = None;
    let mut attempt = 1;
    while attempt <= attempts {
        let waiting = waiting.filter(|(until, _)| Instant::now() < *until);
        let tries = (attempt, attempts);
        match attempt_job(config, job, day, stats, tries, waiting.is_some()).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {
                if set_failing(stats, name, false) {
                    alert(config, &format!("recovered: job {name} exported {day}")).await;
                }
                check_change(config, job, day, stats).await;
                return Ok(());
            }
            Err(e) => match waiting {
                Some((until, every)) if not_there_yet(&e) => {
                    let left = until - Instant::now();
                    let again = every.min(left);
                    tracing::info!(
                        job = %name,
                        %day,
                        outcome = "waiting",
                        "job {name} date {day}: no data yet ({e}); looking again in {} s, for up \
                         to {} s more",
                        again.as_secs(),
                        left.as_secs()
                    );
                    if pause(again, &mut stop).await {
                        return Err(None);
                    }
                    continue;
                }
                _ => error = Some(e),
            },
        }
        if attempt < attempts && pause(Duration::from_secs(1 << attempt), &mut stop).await {
            return Err(None);
        }
        attempt += 1;
    }
    // The streak counts as alerted once an alert got through: one lost to a webhook down for a
    // moment is sent again at the next failure, not never.
    if !failing(stats, name)
        && let Some(error) = &error
    {
        let stale = match not_there_yet(error) {
            true => " (stale lake?)",
            false => "",
        };
        let text = format!("failed: job {name} could not export {day}{stale}: {error}");
        if alert(config, &text).await {
            set_failing(stats, name, true);
        }
    }
    Err(error)
}

/// With `max_change`, compares the dau of the day just exported with a week before's; an unusual
/// one is logged, counted and sent to the webhooks.
async fn check_change(config: &Config, job: &Scheduled, day: NaiveDate, stats: &Stats) {
    let (Some(limit), name) = (job.max_change, &job.job.name) else {
        return;
    };
    match unusual(config, day, limit).await {
        Ok(Some(text)) => {
            tracing::warn!(job = %name, %day, outcome = "unusual", "job {name} date {day}: {text}");
            stats
                .lock()
                .expect("stats")
                .entry(name.clone())
                .or_default()
                .unusual += 1;
            alert(config, &format!("unusual: job {name}: {text}")).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            job = %name,
            %day,
            "job {name} date {day}: cannot compare its dau with a week before: {e}"
        ),
    }
}

/// Marks whether a job is in a failing streak; returns whether it was.
fn set_failing(stats: &Stats, name: &str, failing: bool) -> bool {
    let mut stats = stats.lock().expect("stats");
    let job = stats.entry(name.to_string()).or_default();
    std::mem::replace(&mut job.failing, failing)
}

/// Whether the job is in a failing streak that was alerted.
fn failing(stats: &Stats, name: &str) -> bool {
    let stats = stats.lock().expect("stats");
    stats.get(name).is_some_and(|job| job.failing)
}

/// Tells the webhooks of `what`; a failed delivery is logged. Whether a webhook got it (or
/// there is none to tell).
async fn alert(config: &Config, what: &str) -> bool {
    let webhooks = &config.schedule.webhooks;
    let undelivered = crate::cmd::export::alert(webhooks, what).await;
    for hook in &undelivered {
        let hook = crate::cmd::export::shown_webhook(hook);
        tracing::error!(%hook, "dau schedule: could not deliver an alert to {hook}");
    }
    undelivered.len() < webhooks.iter().filter(|hook| !hook.is_empty()).count()
        || undelivered.is_empty()
}

/// One export of one day of a job, logged and counted (a day whose data is not there yet, while
/// `waiting` for it, is neither: the caller says so): the rows delivered, or None for a day
/// before the lake's first, skipped.
async fn attempt_job(
    config: &Config,
    job: &Scheduled,
    day: NaiveDate,
    stats: &Stats,
    (attempt, attempts): (u32, u32),
    waiting: bool,
) -> Result<Option<u64>> {
    let name = &job.job.name;
    let started = Instant::now();
    let deliver = |days| {
        export(
            config,
            &job.metrics,
            days,
            job.job.calendar,
            &job.job.output,
        )
    };
    let mut done = deliver((day, day)).await;
    // A day before the lake's first is one it keeps no more (or never had): no wait or retry
    // brings it, and a catch-up from before the lake failed on it every night, for good.
    if let Err(Error::NoPartitions { to, first, .. }) = &done
        && to < first
    {
        tracing::warn!(
            job = %name,
            %day,
            outcome = "skipped",
            "job {name} date {day}: skipped, before the lake's first day, {first}"
        );
        return Ok(None);
    }
    // The days before it again (`redo_days`), for late events. The day is delivered whatever
    // becomes of them: a redo that fails is said (and alerted), and does not hold back the days
    // after this one.
    if let Ok(delivered) = &mut done {
        let redone = match redo_span(config, job, day).await {
            Ok(Ok(days)) => deliver(days).await,
            Ok(Err(skipped)) => {
                delivered.warnings.extend(skipped);
                Ok(Exported::default())
            }
            Err(e) => Err(e),
        };
        match redone {
            Ok(again) => {
                delivered.rows += again.rows;
                delivered.total = delivered.total.max(again.total);
                delivered.warnings.extend(again.warnings);
            }
            Err(e) => {
                let what = format!(
                    "job {name} delivered {day}, but could not export the {} day(s) before it \
                     again (redo_days): {e}",
                    job.job.redo_days
                );
                tracing::error!(job = %name, %day, outcome = "redo failed", "{what}");
                alert(config, &format!("failed: {what}")).await;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if waiting && done.as_ref().is_err_and(not_there_yet) {
        return done.map(|d| Some(d.rows));
    }
    let mut stats = stats.lock().expect("stats");
    let counted = stats.entry(name.clone()).or_default();
    counted.runs += 1;
    counted.last_seconds = seconds;
    match done {
        Ok(done) => {
            for warning in &done.warnings {
                tracing::warn!(job = %name, %day, "job {name} date {day}: {warning}");
            }
            counted.rows += done.rows;
            counted.last_success = Some(Utc::now());
            tracing::info!(
                job = %name,
                %day,
                rows = done.rows,
                seconds,
                outcome = "ok",
                "job {name} date {day}: ok, {} row(s) in {seconds:.2} s",
                done.rows
            );
            Ok(Some(done.rows))
        }
        Err(e) => {
            counted.failures += 1;
            tracing::error!(
                job = %name,
                %day,
                seconds,
                outcome = "failed",
                error = %e,
                "job {name} date {day}: attempt {attempt} of {attempts} failed after {seconds:.2} s"
            );
            Err(e)
        }
    }
}

/// The days before `day` that its firing exports again (`redo_days`), from the first of them
/// that the lake has; or, when the lake has nothing to count for a day those rows read (in
/// their range, or in their windows: no partition, no data file, no done marker), why they are
/// not exported again: rows once delivered are not made NULL.
async fn redo_span(
    config: &Config,
    job: &Scheduled,
    day: NaiveDate,
) -> Result<std::result::Result<(NaiveDate, NaiveDate), Option<String>>> {
    if job.job.redo_days == 0 {
        return Ok(Err(None));
    }
    let (from, to) = (day - Days::new(job.job.redo_days), day - Days::new(1));
    let queries = |from| MetricQuery::each(&job.metrics, from, to, job.job.calendar);
    let near = MetricQuery::spans(&queries(from)?);
    let lake = Lake::open(config.lake()?, config, near).await?;
    let Some(first) = lake.days.range(from..=to).next().map(|(d, _)| *d) else {
        return Ok(Err(None));
    };
    // Days before the lake's first one are not missing: no export writes them. Days after `to`
    // are not either: a calendar period that reaches past it holds `day`, whose firing writes
    // that row anyway (a month not over yet is NULL until it is).
    let read: BTreeSet<NaiveDate> = (queries(first)?.iter())
        .flat_map(|q| {
            let (start, end) = q.span();
            days(start.max(lake.first_day()), end.min(to))
        })
        .collect();
    let listed: Vec<NaiveDate> = (read.iter().copied())
        .filter(|d| lake.days.contains_key(d))
        .collect();
    let files = lake.files(&listed).await?;
    let empty = (listed.iter().zip(&files)).filter_map(|(d, files)| files.is_empty().then_some(*d));
    let missing: BTreeSet<NaiveDate> = (read.iter().copied())
        .filter(|d| !lake.days.contains_key(d))
        .chain(empty)
        .collect();
    match missing.iter().next() {
        None => Ok(Ok((first, to))),
        Some(lacked) => Ok(Err(Some(format!(
            "{from} to {to} are not exported again (redo_days): the lake has nothing to count \
             for {lacked}{} (no partition, no data file, or no done marker), which their rows \
             read, so the rows delivered for them are kept",
            match missing.len() {
                1 => String::new(),
                n => format!(" and {} more day(s)", n - 1),
            }
        )))),
    }
}

/// The HTTP side: the jobs, what they did, and the token that may run them.
#[derive(Clone)]
struct App {
    config: Arc<Config>,
    jobs: Arc<Vec<Scheduled>>,
    stats: Stats,
    token: Option<String>,
}

impl App {
    fn router(self) -> axum::Router {
        axum::Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/metrics", get(prometheus))
            .route("/jobs/{name}/run", post(run_now))
            .with_state(self)
    }
}

/// `POST /jobs/NAME/run[?date=DAY]`: runs the job now (once, no retries) for its day or `date`.
async fn run_now(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&app.token, given) {
        (Some(token), Some(given)) if token == given => {}
        (None, _) => {
            let why = "no token is configured ([schedule] token or DAU_SCHEDULE_TOKEN)\n";
            return (StatusCode::UNAUTHORIZED, why.to_string());
        }
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                "a bearer token is needed\n".to_string(),
            );
        }
    }
    let Some(job) = app.jobs.iter().find(|j| j.job.name == name) else {
        return (StatusCode::NOT_FOUND, format!("no job '{name}'\n"));
    };
    let today = Utc::now().with_timezone(&job.timezone).date_naive();
    let day = match params.get("date") {
        None => days_back(&job.timezone, today, job.back),
        Some(text) => match parse_day(text, today) {
            Some(day) => day,
            None => return (StatusCode::BAD_REQUEST, format!("bad date '{text}'\n")),
        },
    };
    match attempt_job(&app.config, job, day, &app.stats, (1, 1), false).await {
        Ok(None) => (
            StatusCode::OK,
            format!("job {name} date {day}: skipped, before the lake's first day\n"),
        ),
        Ok(Some(rows)) => {
            check_change(&app.config, job, day, &app.stats).await;
            (
                StatusCode::OK,
                format!("job {name} date {day}: ok, {rows} row(s)\n"),
            )
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("job {name} date {day}: failed: {e}\n"),
        ),
    }
}

/// A Prometheus series: name, type, help, and its value for a job (if it has one).
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&JobStats) -> Option<f64>,
);

/// `GET /metrics`: runs, failures, rows, last success and duration per job, and the lake's last
/// partition day (its freshness), in Prometheus text format.
async fn prometheus(State(app): State<App>) -> String {
    let stats = app.stats.lock().expect("stats").clone();
    let mut out = String::new();
    let series: [Series; 6] = [
        ("dau_job_runs_total", "counter", "Exports attempted", |s| {
            Some(s.runs as f64)
        }),
        (
            "dau_job_failures_total",
            "counter",
            "Exports that failed",
            |s| Some(s.failures as f64),
        ),
        (
            "dau_job_rows_exported_total",
            "counter",
            "Rows exported",
            |s| Some(s.rows as f64),
        ),
        (
            "dau_job_last_success_timestamp_seconds",
            "gauge",
            "When the last export succeeded",
            |s| s.last_success.map(|t| t.timestamp() as f64),
        ),
        (
            "dau_job_last_duration_seconds",
            "gauge",
            "How long the last export took",
            |s| Some(s.last_seconds),
        ),
        (
            "dau_job_unusual_days_total",
            "counter",
            "Exported days whose dau was further from a week before's than max_change",
            |s| Some(s.unusual as f64),
        ),
    ];
    for (metric, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {metric} {help}.\n# TYPE {metric} {kind}");
        for job in app.jobs.iter() {
            let name = &job.job.name;
            let job_stats = stats.get(name).cloned().unwrap_or_default();
            if let Some(v) = value(&job_stats) {
                let _ = writeln!(out, "{metric}{{job=\"{}\"}} {v}", label(name));
            }
        }
    }
    // A day still being written (no done marker yet) is not fresh data. A lake that does not
    // answer soon (storage down) leaves the gauge out rather than outlast the scrape's timeout.
    let freshness = async {
        let lake = Lake::open(app.config.lake().ok()?, &app.config, None)
            .await
            .ok()?;
        lake.last_finished_day(FRESH_LOOK).await.ok().flatten()
    };
    let last = tokio::time::timeout(FRESH_WAIT, freshness)
        .await
        .ok()
        .flatten();
    if let Some(last) = last {
        let last = last.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let metric = "dau_lake_last_partition_timestamp_seconds";
        let _ = writeln!(
            out,
            "# HELP {metric} The lake's newest finished day (midnight UTC).\n# TYPE {metric} \
             gauge\n{metric} {}",
            last.timestamp()
        );
    }
    out
}

/// A Prometheus label value: `\`, `"` and line feeds escaped, or the whole scrape is refused.
fn label(value: &str) -> String {
    (value.replace('\\', "\\\\"))
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// How long `/metrics` waits for the lake's newest finished day (Prometheus gives a scrape 10 s).
const FRESH_WAIT: Duration = Duration::from_secs(5);

/// How many of the lake's newest days `/metrics` looks through for the newest finished one (with
/// a done marker); with none of them finished, the freshness gauge is left out.
const FRESH_LOOK: usize = 31;

/// Resolves when the process is asked to stop (SIGTERM, or Ctrl-C / SIGINT).
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Each job's last successful firing.
type Firings = BTreeMap<String, DateTime<Utc>>;

/// Where the state is kept: a local file, locked while a schedule runs on it, or an object in a
/// bucket, replaced only when no one else replaced it since this schedule read or wrote it.
enum StateStore {
    Local {
        path: PathBuf,
        _lock: std::fs::File,
    },
    Bucket {
        url: String,
        place: Box<storage::Location>,
        /// The version this schedule last read or wrote; None while there is no object.
        version: Option<UpdateVersion>,
    },
}

impl StateStore {
    fn open(state: &str, options: &StorageOptions) -> Result<StateStore> {
        if !storage::is_bucket(state) {
            let path = PathBuf::from(state);
            // Said as a setting's error (exit 2), not when the first state is saved.
            if state.trim().is_empty() || path.is_dir() {
                return Err(Error::usage(
                    format!("--state '{state}' names no file"),
                    "name the state file, such as /var/lib/dau/schedule-state.json",
                ));
            }
            let lock = hold(&path)?;
            return Ok(StateStore::Local { path, _lock: lock });
        }
        // An object's name: `gs://b/state/` was put as the object `state`, and `gs://b` went
        // to the network to fail there.
        let object = state
            .split_once("://")
            .is_some_and(|(_, path)| path.contains('/'));
        if state.ends_with('/') || !object {
            return Err(Error::usage(
                format!("--state {state} names a folder"),
                format!(
                    "name the state object in it, such as {}/dau-state.json",
                    state.trim_end_matches('/')
                ),
            ));
        }
        let place = storage::open(state, options).map_err(|e| match e {
            Error::Storage {
                lake, detail, hint, ..
            } => Error::Storage {
                what: STATE,
                lake,
                detail,
                hint,
            },
            other => other,
        })?;
        Ok(StateStore::Bucket {
            url: state.to_string(),
            place: Box::new(place),
            version: None,
        })
    }

    /// The state as kept; empty when there is none yet.
    async fn load(&mut self) -> Result<Firings> {
        let text = match self {
            StateStore::Local { path, .. } => match std::fs::read_to_string(&*path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Firings::new()),
                Err(e) => return Err(Error::io("cannot read the schedule state", &*path, e)),
            },
            StateStore::Bucket {
                url,
                place,
                version,
            } => {
                // The version from `head`, as for an export into a bucket: a GCS download need
                // not carry the generation. Should the object change between the two, the next
                // save is refused.
                let failed = |e: object_store::Error| bucket_failed(url, place, &e, false);
                let meta = match place.store.head(&place.root).await {
                    Ok(meta) => meta,
                    Err(object_store::Error::NotFound { .. }) => return Ok(Firings::new()),
                    Err(e) => return Err(failed(e)),
                };
                *version = Some(UpdateVersion {
                    e_tag: meta.e_tag,
                    version: meta.version,
                });
                let got = place.store.get(&place.root).await.map_err(failed)?;
                let bytes = got.bytes().await.map_err(failed)?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        // (A byte order mark, as some editors save, is no part of the JSON.)
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        serde_json::from_str(text).map_err(|e| {
            Error::usage(
                format!("bad schedule state ({}): {e}", self.name()),
                "it keeps each job's last firing, as {\"nightly\": \"2024-06-29T00:00:00Z\"}: \
                 fix it, or remove it to start the jobs afresh (the days missed before are then \
                 not caught up)",
            )
        })
    }

    /// Writes the state at once: a file is synced under another name and renamed into place; an
    /// object is put whole, and only over the version this schedule knows.
    async fn save(&mut self, state: &Firings) -> Result<()> {
        let text = serde_json::to_string_pretty(state).expect("the state serializes");
        match self {
            StateStore::Local { path, .. } => {
                let target = Replacement::new(path);
                std::fs::write(&target.temp, text)
                    .and_then(|()| target.commit())
                    .map_err(|e| Error::io("cannot write the schedule state", &*path, e))
            }
            StateStore::Bucket {
                url,
                place,
                version,
            } => {
                let mode = match version.clone() {
                    Some(known) => PutMode::Update(known),
                    None => PutMode::Create,
                };
                let put = place
                    .store
                    .put_opts(&place.root, text.into(), PutOptions::from(mode))
                    .await;
                match put {
                    Ok(done) => {
                        *version = Some(UpdateVersion {
                            e_tag: done.e_tag,
                            version: done.version,
                        });
                        Ok(())
                    }
                    Err(
                        object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. },
                    ) => Err(Error::usage(
                        format!(
                            "the schedule state {url} was written by someone else while this \
                             dau schedule ran"
                        ),
                        "run one dau schedule on a state (two would each run every job), or \
                         give each its own --state",
                    )),
                    Err(e) => Err(bucket_failed(url, place, &e, true)),
                }
            }
        }
    }

    fn name(&self) -> String {
        match self {
            StateStore::Local { path, .. } => path.display().to_string(),
            StateStore::Bucket { url, .. } => url.clone(),
        }
    }
}

const STATE: &str = "keep the schedule state";

/// A request for the state in a bucket failed (after retries), `writing` it or reading it.
fn bucket_failed(
    url: &str,
    place: &storage::Location,
    error: &object_store::Error,
    writing: bool,
) -> Error {
    let hint = match writing {
        true => storage::write_hint,
        false => storage::hint,
    };
    Error::Storage {
        what: STATE,
        lake: url.to_string(),
        detail: error.to_string(),
        hint: hint(error, &place.credentials),
    }
}

/// Makes sure no other `dau schedule` runs on this state file, for as long as the returned lock
/// is held: two would each run every job (twice the exports, twice the alerts) and each keep
/// only its own state. A lock file beside the state holds the holder's process id.
fn hold(path: &Path) -> Result<std::fs::File> {
    make_folder_of(path, "cannot make the state folder")?;
    // Beside the file itself: a link to a held state is the same state.
    let lock_path = PathBuf::from(format!("{}.lock", through_links(path).display()));
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::io("cannot open the schedule's lock file", &lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            return Err(Error::usage(
                format!(
                    "another dau schedule{holder} is running with the state file {}",
                    path.display()
                ),
                "stop it first, or give this one its own --state FILE",
            ));
        }
        // A file system without locks (some network ones) runs as before.
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(lock = %lock_path.display(), "cannot lock the schedule state ({e}): a second dau schedule on it would not be refused");
            return Ok(lock);
        }
    }
    use std::io::Write as _;
    let pid = std::process::id().to_string();
    let written = lock
        .set_len(0)
        .and_then(|()| lock.write_all(pid.as_bytes()));
    written.map_err(|e| Error::io("cannot write the schedule's lock file", &lock_path, e))?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("nightly"), "nightly");
        assert_eq!(label("a \"b\" \\ c\nd"), "a \\\"b\\\" \\\\ c\\nd");
    }

    #[test]
    fn wait_for_data_takes_seconds_minutes_or_hours() {
        assert_eq!(duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration(" 90m "), Some(Duration::from_secs(5400)));
        assert_eq!(duration("3h"), Some(Duration::from_secs(10800)));
        for bad in [
            "",
            "3",
            "h",
            "0m",
            "-1h",
            "1.5h",
            "2d",
            "99999999999999999999h",
        ] {
            assert_eq!(duration(bad), None, "{bad}");
        }
        assert_eq!(poll(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(poll(Duration::from_secs(60)), Duration::from_secs(5));
        assert_eq!(poll(Duration::from_secs(10800)), Duration::from_secs(300));
    }

    /// A job exporting yesterday's dau into daily.csv on `cron` in `zone`.
    fn nightly(cron: &str, zone: &str) -> Scheduled {
        let job = Job {
            name: "nightly".into(),
            metrics: vec!["dau".into()],
            cron: cron.into(),
            timezone: Some(zone.into()),
            range: "yesterday".into(),
            output: "daily.csv".into(),
            calendar: false,
            wait_for_data: None,
            redo_days: 0,
            max_change: None,
        };
        scheduled(&Config::default(), &job).unwrap()
    }

    /// A clock change that skips more than two hours (Samoa skipped 2011-12-30 whole) does not
    /// stop a job: croner gives up on the skipped firing, and the job's firings stopped there for
    /// good, in silence. The days go on after the gap, and the day before is the one the zone had.
    #[test]
    fn a_job_goes_on_after_a_day_its_zone_skipped() {
        let job = nightly("0 0 * * *", "Pacific/Apia");
        let at = |d: &str| format!("{d}T12:00:00Z").parse::<DateTime<Utc>>().unwrap();
        let days: Vec<String> = (due(&job, at("2011-12-26"), at("2012-01-02")).into_keys())
            .map(|d| d.to_string())
            .collect();
        // Midnights of 12-27 … 12-29 and 12-31 … 01-03 in Apia, each for the day before it that
        // Apia had: 12-30 it had not, so 12-31's is 12-29.
        let want = [
            "2011-12-26",
            "2011-12-27",
            "2011-12-28",
            "2011-12-29",
            "2011-12-31",
            "2012-01-01",
            "2012-01-02",
        ];
        assert_eq!(days, want);
    }

    /// Across both DST changes a daily job exports every day once: a firing time that does not
    /// exist (02:30 on the spring-forward night) moves to 03:00, one that happens twice (01:30 on
    /// the fall-back night) fires once.
    #[test]
    fn a_daily_job_exports_every_day_once_across_dst_changes() {
        for (cron, zone, spring, fall) in [
            ("30 2 * * *", "America/New_York", "2026-03-06", "2026-10-30"),
            ("30 1 * * *", "America/New_York", "2026-03-06", "2026-10-30"),
            // Chile's clocks change at midnight: the night of 2026-09-06 has no 00:00.
            ("0 0 * * *", "America/Santiago", "2026-09-03", "2026-04-02"),
        ] {
            let job = nightly(cron, zone);
            for first in [spring, fall] {
                let first: NaiveDate = first.parse().unwrap();
                let at_noon = |d: NaiveDate| d.and_hms_opt(12, 0, 0).unwrap().and_utc();
                let (last, now) = (at_noon(first), at_noon(first + Days::new(5)));
                let days: Vec<NaiveDate> = due(&job, last, now).into_keys().collect();
                let want: Vec<NaiveDate> = (0..5).map(|i| first + Days::new(i)).collect();
                assert_eq!(days, want, "{cron} in {zone} from {last}");
            }
        }
    }
}
