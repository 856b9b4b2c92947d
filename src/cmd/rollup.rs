//! `dau rollup`: reads days of the lake into rollups (each day's users as a bitmap, see
//! `lake::rollup`) ahead of time, so that the queries after it read no data for those days.

use std::sync::Arc;

use chrono::Days;
use clap::Args;

use crate::config::Config;
use crate::dates::{day_arg, today};
use crate::lake::Lake;
use crate::lake::rollup::Rollups;
use crate::metrics::bitmap::{self, gather};
use crate::metrics::{Metric, Query};
use crate::output::say;
use crate::{Error, Result};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    dau rollup --lake ./lake\n  \
    dau rollup --lake gs://bucket/events --from -7d --to yesterday\n\n\
    Queries keep rollups current by themselves; this reads the days before anyone asks \
    (e.g. right after the nightly load). A rollup is used only while its day's files are \
    unchanged (names, sizes, modification times).")]
pub struct RollupArgs {
    /// First day: YYYY-MM-DD, today, yesterday or -Nd [default: the lake's first day]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    pub from: Option<String>,

    /// Last day, in the same forms [default: the lake's last day]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    pub to: Option<String>,
}

pub async fn run(config: &Config, args: &RollupArgs) -> Result<()> {
    if config.rollups.is_none() {
        return Err(Error::usage(
            "rollups are off (--rollups, DAU_ROLLUPS or dau.toml's rollups is off)",
            "give --rollups DIR or a bucket prefix, or leave it unset for the cache folder",
        ));
    }
    let today = today(config.timezone);
    let from = day_arg("--from", args.from.as_deref(), today)?;
    let to = day_arg("--to", args.to.as_deref(), today)?;
    // The windows ending on these days reach 29 days further back; their months and ISO weeks
    // reach from the first of the month to the Sunday after.
    let near = from
        .zip(to)
        .map(|(from, to)| (from - Days::new(30), to + Days::new(6)));
    let lake = Arc::new(Lake::open(config.lake()?, config, near).await?);
    let (from, to) = lake.range(from, to, |_| lake.first_day())?;
    lake.days_between(from, to)?;
    // Windows are counted too, rolling and calendar, so that wau, mau and stickiness need no
    // bitmaps: the days they reach are rolled up with the asked ones.
    let mut queries = Vec::new();
    for calendar in [false, true] {
        for metric in [Metric::Wau, Metric::Mau] {
            queries.push(Query::new(metric, from, to, calendar)?);
        }
    }
    let start = queries.iter().map(|q| q.span().0).min().unwrap_or(from);
    let end = queries.iter().map(|q| q.span().1).max().unwrap_or(to);
    let days = lake.days_between(start, end)?;
    let rollups = Rollups::of(&lake, config)?;
    let gathered = match gather(&lake, config, rollups.as_ref(), &days, false).await? {
        Ok(gathered) => gathered,
        Err(why) => {
            return Err(Error::usage(
                format!("cannot roll up {}: {why}", lake.name),
                "queries on this lake run their SQL (exact, and slower); there is nothing to \
                 roll up",
            ));
        }
    };
    for warning in &gathered.warnings {
        eprintln!("dau: warning: {warning}");
    }
    let unsaved = |why| {
        Error::usage(
            why,
            "give a writable folder or bucket prefix with --rollups",
        )
    };
    if let Some(why) = gathered.unsaved {
        return Err(unsaved(why));
    }
    // What was rolled up is said before the windows are counted: they fail (exit 4) when every
    // asked day is missing, and the days they reach are rolled up all the same.
    let built = &gathered.built;
    let left = days.len() - built.len() - gathered.reused;
    let (first, last) = (days[0], days[days.len() - 1]);
    let reach = match (first, last) == (from, to) {
        true => String::new(),
        false => format!(" ({from} to {to}, and the days their windows reach)"),
    };
    say(&format!(
        "{} day(s) of {} from {first} to {last}{reach}: {} rolled up now, {} already current{}",
        days.len(),
        lake.name,
        built.len(),
        gathered.reused,
        if left > 0 {
            format!(", {left} not rolled up (no data file, files skipped, or not finished)")
        } else {
            String::new()
        }
    ))?;
    if !built.is_empty() {
        let shown: Vec<String> = built.iter().take(10).map(|d| d.to_string()).collect();
        let more = match built.len() {
            n if n > 10 => format!(" and {} more", n - 10),
            _ => String::new(),
        };
        say(&format!("rolled up: {}{more}", shown.join(", ")))?;
    }
    if let Some(rollups) = &rollups {
        say(&format!("rollups: {rollups}"))?;
    }
    for query in &queries {
        let answer = bitmap::run(&lake, config, query).await?;
        let warnings = answer.map(|(_, warnings)| warnings).unwrap_or_default();
        // (A full disk: the windows were counted, and not kept.)
        if let Some(why) = warnings.into_iter().find(|w| bitmap::is_unsaved(w)) {
            return Err(unsaved(why));
        }
    }
    say(&format!(
        "windows counted: wau and mau of every day from {from} to {to}, and of the ISO weeks \
         and calendar months they fall in"
    ))
}
