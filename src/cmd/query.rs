//! `dau query METRIC`: one metric over a range of days, as a table or a file.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Days;
use clap::Args;

use crate::Result;
use crate::config::Config;
use crate::dates::{day_arg, today};
use crate::lake::Lake;
use crate::metrics::{self, Metric, Query};
use crate::output::{self, Format};

/// Days in the default range, ending on the lake's last day.
const DEFAULT_DAYS: u64 = 30;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    dau query dau --lake ./lake --from 2024-06-01 --to 2024-06-30\n  \
    dau query mau --calendar --from 2024-01-01 --to 2024-06-30 --format csv\n  \
    dau query user-days --from yesterday --to yesterday --output out/user_days.parquet")]
pub struct QueryArgs {
    /// The metric to compute
    #[arg(value_enum, ignore_case = true)]
    pub metric: Metric,

    /// First day: YYYY-MM-DD, today, yesterday or -Nd [default: 29 days before --to, or the lake's first day]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    pub from: Option<String>,

    /// Last day, in the same forms [default: the lake's last day]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    pub to: Option<String>,

    /// wau per ISO week (Monday to Sunday) and mau per calendar month, instead of rolling windows
    #[arg(long)]
    pub calendar: bool,

    /// Output format [default: from the --output extension, else table]
    #[arg(long, short, value_enum, ignore_case = true)]
    pub format: Option<Format>,

    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(config: &Config, args: &QueryArgs) -> Result<()> {
    let format = Format::resolve(args.format, args.output.as_deref())?;
    let today = today(config.timezone);
    let from = day_arg("--from", args.from.as_deref(), today)?;
    let to = day_arg("--to", args.to.as_deref(), today)?;
    // With both ends known, a nested lake lists only the months the query reads.
    let near = match (from, to) {
        (Some(from), Some(to)) => Some(Query::new(args.metric, from, to, args.calendar)?.span()),
        _ => None,
    };
    let lake = Arc::new(Lake::open(config.lake()?, config, near).await?);
    // Before the query runs; nothing is made inside the lake (writable makes the folder).
    if let Some(path) = &args.output {
        lake.refuse_inside(&path.to_string_lossy(), "--output")?;
        output::writable(path)?;
    }
    let (from, to) = lake.range(from, to, |to| {
        (to - Days::new(DEFAULT_DAYS - 1)).max(lake.first_day())
    })?;
    let query = Query::new(args.metric, from, to, args.calendar)?;
    let answer = metrics::run(lake, config, &query).await?;
    for warning in &answer.warnings {
        eprintln!("dau: warning: {warning}");
    }
    // Left to its default, --to is the lake's last day: when that is today (or later), say so.
    if args.to.is_none() && to == today {
        eprintln!(
            "dau: warning: the lake's last day, {to}, is today in {}: its partition may still be \
             being written, so its numbers may still grow (--to yesterday leaves it out)",
            config.timezone
        );
    } else if args.to.is_none() && to > today {
        eprintln!(
            "dau: warning: the lake's last day, {to}, is after today ({today} in {}): a writer \
             ahead of time, or a clock behind? (--to yesterday leaves the days from today out)",
            config.timezone
        );
    }
    output::write(answer.rows, format, args.output.as_deref())
        .await
        .map(|_rows| ())
        .map_err(|e| e.under_memory_limit(config.memory_limit.as_ref()))
}
