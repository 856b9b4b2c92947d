//! `dau schedule`: a long-running server that runs the `[[jobs]]` of `dau.toml` when their cron
//! fires, in each job's timezone, and on start catches up the days it missed while it was down.
//!
//! The state file keeps, per job, the last firing whose export succeeded. A firing exports the day
//! before it (`range = "yesterday"`) or its own day (`"today"`); missed firings that export the
//! same day run it once. SIGTERM or Ctrl-C stops the server between exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use clap::{Args, ValueEnum};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::cmd::export::export;
use crate::config::{Config, Job};
use crate::metrics::Metric;
use crate::{Error, Result};

/// Attempts of a failed export before the firing is given up (until the next start or firing).
const ATTEMPTS: u32 = 3;

#[derive(Debug, Args)]
#[command(after_help = "Example dau.toml:\n  \
    [lake]\n  url = \"gs://my-bucket/events\"\n\n  \
    [[jobs]]\n  name = \"nightly\"\n  metrics = [\"dau\", \"mau\", \"opens\"]\n  \
    cron = \"0 0 * * *\"\n  timezone = \"Asia/Seoul\"\n  range = \"yesterday\"\n  \
    output = \"postgres://dau@db/metrics?table=daily_metrics\"")]
pub struct ScheduleArgs {
    /// Where the last successful firing of each job is kept [default: in the user's data folder]
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Run what is due (and what was missed), then exit instead of waiting
    #[arg(long)]
    pub once: bool,
}

/// A job, checked and parsed.
struct Scheduled {
    job: Job,
    metrics: Vec<Metric>,
    cron: Cron,
    timezone: Tz,
    /// Days between a firing and the day it exports.
    back: u64,
}

pub async fn run(config: &Config, args: &ScheduleArgs) -> Result<()> {
    let jobs = config
        .jobs
        .iter()
        .map(|job| scheduled(config, job))
        .collect::<Result<Vec<_>>>()?;
    if jobs.is_empty() {
        return Err(Error::usage(
            "no [[jobs]] to schedule",
            "add [[jobs]] entries (name, metrics, cron, output) to dau.toml; see dau schedule --help",
        ));
    }
    let state_path = match &args.state {
        Some(path) => path.clone(),
        None => dirs::data_local_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("dau/schedule-state.json"),
    };
    let mut state = load(&state_path)?;
    let started = Utc::now();
    eprintln!(
        "dau schedule: {} job(s), state in {}",
        jobs.len(),
        state_path.display()
    );
    let mut stop = Box::pin(stopped());
    loop {
        let now = Utc::now();
        for job in &jobs {
            let last = state.get(&job.job.name).copied().unwrap_or(started);
            let (days, newest) = due(job, last, now);
            let mut all_ok = true;
            for day in days {
                if !run_job(config, job, day).await {
                    all_ok = false;
                    break;
                }
            }
            if let (true, Some(newest)) = (all_ok, newest) {
                state.insert(job.job.name.clone(), newest);
                save(&state_path, &state)?;
            }
        }
        if args.once {
            return Ok(());
        }
        let next = jobs
            .iter()
            .filter_map(|job| {
                job.cron
                    .find_next_occurrence(&Utc::now().with_timezone(&job.timezone), false)
                    .ok()
            })
            .map(|t| t.with_timezone(&Utc))
            .min();
        let wait = next
            .map(|t| (t - Utc::now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(60));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => {
                eprintln!("dau schedule: stopping");
                return Ok(());
            }
        }
    }
}

fn scheduled(config: &Config, job: &Job) -> Result<Scheduled> {
    let bad = |what: String, hint: &str| Error::usage(format!("job '{}': {what}", job.name), hint);
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
        Some(name) => name.parse().map_err(|_| {
            bad(
                format!("unknown timezone '{name}'"),
                "use an IANA name such as Asia/Seoul",
            )
        })?,
    };
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
    Ok(Scheduled {
        job: job.clone(),
        metrics,
        cron,
        timezone,
        back,
    })
}

/// The days of the firings after `last` up to `now` (each day once), and the newest firing.
fn due(
    job: &Scheduled,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (BTreeSet<NaiveDate>, Option<DateTime<Utc>>) {
    let mut days = BTreeSet::new();
    let mut newest = None;
    let mut t = last.with_timezone(&job.timezone);
    while let Ok(next) = job.cron.find_next_occurrence(&t, false) {
        if next.with_timezone(&Utc) > now {
            break;
        }
        days.insert(next.date_naive() - Days::new(job.back));
        newest = Some(next.with_timezone(&Utc));
        t = next;
    }
    (days, newest)
}

/// Exports one day of a job, retrying with backoff. Logs one line per attempt that ends it.
async fn run_job(config: &Config, job: &Scheduled, day: NaiveDate) -> bool {
    let name = &job.job.name;
    for attempt in 1..=ATTEMPTS {
        let started = Instant::now();
        let done = export(
            config,
            &job.metrics,
            (day, day),
            job.job.calendar,
            &job.job.output,
        )
        .await;
        let seconds = started.elapsed().as_secs_f64();
        match done {
            Ok(done) => {
                eprintln!(
                    "dau schedule: job {name} date {day}: ok, {} row(s) in {seconds:.2} s",
                    done.rows
                );
                return true;
            }
            Err(e) => {
                eprintln!(
                    "dau schedule: job {name} date {day}: attempt {attempt} of {ATTEMPTS} failed after {seconds:.2} s: {e}"
                );
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
            }
        }
    }
    false
}

/// Resolves when the process is asked to stop (SIGTERM, or Ctrl-C / SIGINT).
async fn stopped() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn load(path: &Path) -> Result<BTreeMap<String, DateTime<Utc>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            what: format!("not a dau schedule state file: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::io("cannot read the schedule state", path, e)),
    }
}

/// Writes the state atomically (a temp file renamed into place).
fn save(path: &Path, state: &BTreeMap<String, DateTime<Utc>>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot make the state folder", dir, e))?;
    }
    let temp = path.with_extension("tmp");
    let text = serde_json::to_string_pretty(state).expect("the state serializes");
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| Error::io("cannot write the schedule state", path, e))
}
