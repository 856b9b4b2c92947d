//! `dau export METRIC…`: the nightly delivery. Computes the metrics for a day (or a range) and
//! merges them into a destination, replacing the rows of those days, so that a rerun is harmless.

use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use clap::Args;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Date32Type, Int64Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use crate::config::Config;
use crate::dates::{check_order, day_arg, from_date32, today};
use crate::lake::Lake;
use crate::metrics::{self, Metric, Query};
use crate::sink::{Sink, without_password};
use crate::{Error, Result};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    dau export dau mau opens --date yesterday --output out/daily.csv      (the nightly job)\n  \
    dau export dau wau mau --from 2024-06-01 --to 2024-06-30 --output out/daily.parquet\n  \
    dau export user-days --date 2024-06-30 --output out/user_days.parquet\n  \
    dau export dau mau --output gs://my-bucket/metrics/daily.csv\n\n\
    The metrics become one row per date (columns: date, then each metric's columns); user-days\n\
    exports alone. Exporting a day again replaces its rows; the file is replaced atomically.")]
pub struct ExportArgs {
    /// The metrics to export
    #[arg(value_enum, ignore_case = true, required = true)]
    pub metrics: Vec<Metric>,

    /// The day to export: YYYY-MM-DD, today, yesterday or -Nd [default: yesterday]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true, conflicts_with_all = ["from", "to"])]
    pub date: Option<String>,

    /// First day of a range to export (with --to)
    #[arg(long, value_name = "DAY", allow_hyphen_values = true, requires = "to")]
    pub from: Option<String>,

    /// Last day of a range to export (with --from)
    #[arg(
        long,
        value_name = "DAY",
        allow_hyphen_values = true,
        requires = "from"
    )]
    pub to: Option<String>,

    /// wau per ISO week and mau per calendar month, instead of rolling windows
    #[arg(long)]
    pub calendar: bool,

    /// Where to: a .csv, .parquet or .xlsx file (a path, or gs://BUCKET/… or s3://BUCKET/…),
    /// an SQLite database (a .db, .sqlite or .sqlite3 file, or sqlite://PATH), or postgres://URL
    /// (either URL takes ?table=NAME; PostgreSQL also takes
    /// sslmode=disable|prefer|require|verify-ca|verify-full and sslrootcert=FILE)
    #[arg(long, short, value_name = "DEST")]
    pub output: String,

    /// Warn when the last day's dau differs from the same weekday's a week before by more than
    /// this, e.g. 50% (a day not whole is the usual cause) [default: no comparison]
    #[arg(long, value_name = "PCT", value_parser = max_change)]
    pub max_change: Option<f64>,

    /// Tell this webhook when the export fails (or, with --max-change, when the day is unusual):
    /// a Slack-compatible {"text": "dau on HOST: failed: …"}; repeatable
    #[arg(long, value_name = "URL", env = "DAU_WEBHOOKS", value_delimiter = ',', value_parser = webhook)]
    pub webhook: Vec<String>,
}

/// `--webhook`: an http(s) URL, checked now rather than on the night an alert is needed; empty
/// (`DAU_WEBHOOKS=`, from a secret not set) is none.
pub fn webhook(text: &str) -> std::result::Result<String, String> {
    let text = text.trim();
    let url = url::Url::parse(text).ok();
    match url.filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
        _ if text.is_empty() => Ok(String::new()),
        Some(_) => Ok(text.to_string()),
        None => Err("give the webhook's http:// or https:// URL".into()),
    }
}

/// A webhook as logs show it: its host only, as the rest of a Slack or Teams URL is its secret.
pub fn shown_webhook(hook: &str) -> String {
    match url::Url::parse(hook).ok().filter(|u| u.host().is_some()) {
        Some(url) => format!(
            "{}://{}/…",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ),
        None => "a webhook".to_string(),
    }
}

/// `--max-change`: a percentage.
fn max_change(text: &str) -> std::result::Result<f64, String> {
    percent(text).ok_or_else(|| format!("'{text}' is not a change of dau such as 50%"))
}

/// Exports as `args` say with `config`, telling the webhooks when it fails (a bad setting in
/// `config` too) or, with --max-change, when the day is unusual.
pub async fn run(config: Result<Config>, args: &ExportArgs) -> Result<()> {
    let dest = without_password(&args.output);
    let range = config.and_then(|config| Ok((days(&config, args)?, config)));
    let what = match &range {
        Ok(((from, to), _)) if from == to => format!("{to}"),
        Ok(((from, to), _)) => format!("{from} to {to}"),
        Err(_) => args.date.clone().unwrap_or_else(|| "yesterday".into()),
    };
    let delivered = match range {
        Ok((range, config)) => deliver(&config, args, range, &dest).await,
        Err(e) => Err(e),
    };
    let unusual = match delivered {
        Ok(unusual) => unusual,
        Err(error) => {
            let stale = match matches!(error, Error::NoPartitions { .. } | Error::NoFiles { .. }) {
                true => " (stale lake?)",
                false => "",
            };
            let text = format!("failed: dau export of {what} into {dest}{stale}: {error}");
            tell(&args.webhook, &text).await;
            return Err(error);
        }
    };
    if let Some(text) = unusual {
        eprintln!("dau: warning: {text}");
        tell(
            &args.webhook,
            &format!("unusual: dau export into {dest}: {text}"),
        )
        .await;
    }
    Ok(())
}

/// Tells `webhooks` of `what`, warning of those that could not be told.
async fn tell(webhooks: &[String], what: &str) {
    for hook in alert(webhooks, what).await {
        let hook = shown_webhook(&hook);
        eprintln!("dau: warning: could not deliver an alert to {hook}");
    }
}

/// The export `args` ask for, of the days from `from` to `to`, said on stderr; what is unusual
/// about its last day's dau, with --max-change.
async fn deliver(
    config: &Config,
    args: &ExportArgs,
    (from, to): (NaiveDate, NaiveDate),
    dest: &str,
) -> Result<Option<String>> {
    let done = export(
        config,
        &args.metrics,
        (from, to),
        args.calendar,
        &args.output,
    )
    .await?;
    for warning in &done.warnings {
        eprintln!("dau: warning: {warning}");
    }
    let dated = match done.dates {
        Some((first, last)) if first == last => format!(" dated {first}"),
        Some((first, last)) => format!(" dated {first} to {last}"),
        None => String::new(),
    };
    eprintln!(
        "dau export: {} row(s){dated} into {dest} ({} row(s) in all)",
        done.rows, done.total
    );
    let Some(limit) = args.max_change else {
        return Ok(None);
    };
    match unusual(config, to, limit).await {
        Ok(text) => Ok(text),
        Err(e) => {
            eprintln!("dau: warning: cannot compare dau of {to} with a week before: {e}");
            Ok(None)
        }
    }
}

/// Posts `{"text": "dau on HOST: …"}` to each of `webhooks`, retrying; returns those that could
/// not be told.
pub async fn alert(webhooks: &[String], what: &str) -> Vec<String> {
    let host = whoami::hostname().unwrap_or_else(|_| "unknown host".to_string());
    let body = serde_json::json!({ "text": format!("dau on {host}: {what}") });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let mut undelivered = Vec::new();
    for hook in webhooks.iter().filter(|hook| !hook.is_empty()) {
        let mut delivered = false;
        for attempt in 0..3u32 {
            let sent = client
                .post(hook)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                delivered = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
        }
        if !delivered {
            undelivered.push(hook.clone());
        }
    }
    undelivered
}

/// `50%` as 0.5 (more than 0%).
pub fn percent(text: &str) -> Option<f64> {
    let number: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (number.is_finite() && number > 0.0).then_some(number / 100.0)
}

/// What is unusual about `day`'s dau: its change from the same weekday's a week before (which
/// weekly habits do not change), when that is more than `limit` (a fraction). Nothing when
/// either day has no number (missing), or a week before had no user; an error when a week before
/// has no partition, so that the caller says the day went unchecked.
pub async fn unusual(config: &Config, day: NaiveDate, limit: f64) -> Result<Option<String>> {
    let before = day - Days::new(7);
    let lake = Arc::new(Lake::open(config.lake()?, config, Some((before, day))).await?);
    if !lake.days.contains_key(&day) {
        return Ok(None);
    }
    if !lake.days.contains_key(&before) {
        return Err(Error::usage(
            format!("{before}, a week before, has no partition in {}", lake.name),
            "the day is delivered unchecked",
        ));
    }
    // Each of the two days alone: the days between them are not read.
    let mut dau = Vec::new();
    for d in [before, day] {
        let query = Query::new(Metric::Dau, d, d, false)?;
        let answer = metrics::run(lake.clone(), config, &query).await?;
        let mut value = None;
        for batch in answer.rows.try_collect::<Vec<_>>().await? {
            let values = datafusion::arrow::compute::cast(batch.column(1), &DataType::Int64)
                .map_err(|e| Error::Query(e.into()))?;
            value = value.or(values.as_primitive::<Int64Type>().iter().flatten().next());
        }
        dau.push(value);
    }
    let [Some(then), Some(now)] = dau[..] else {
        return Ok(None);
    };
    if then == 0 {
        return Ok(None);
    }
    let change = (now - then) as f64 / then as f64;
    Ok((change.abs() > limit).then(|| {
        // To a tenth: 20.4% lower is not shown as the 20% of max_change.
        let shown = |fraction: f64| {
            let text = format!("{:.1}", fraction * 100.0);
            text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
        };
        let how = match change < 0.0 {
            true => format!("{}% lower", shown(-change)),
            false => format!("{}% higher", shown(change)),
        };
        format!(
            "dau {now} on {day} is {how} than {then} on {before}, the same weekday a week before \
             (max_change {}%): is the day whole?",
            shown(limit)
        )
    }))
}

/// What one export did.
#[derive(Default)]
pub struct Exported {
    /// Rows written for the exported days.
    pub rows: u64,
    /// The first and last date of those rows (a calendar row's is its period's first day).
    pub dates: Option<(NaiveDate, NaiveDate)>,
    /// Rows the destination holds afterwards.
    pub total: u64,
    /// What the user should know about the numbers (days missing, windows cut by the lake's
    /// start), for the caller to show.
    pub warnings: Vec<String>,
}

/// Exports `metrics` for the days `from` to `to` into `output` (see [`ExportArgs`]).
pub async fn export(
    config: &Config,
    metrics: &[Metric],
    (from, to): (NaiveDate, NaiveDate),
    calendar: bool,
    output: &str,
) -> Result<Exported> {
    let sink = Sink::parse(output)?;
    let metrics = metrics_of(metrics)?;
    // A calendar row is dated by its period's first day, which a week and a month share when a
    // month starts on a Monday: that row is made whole, with its week too (from the month's
    // first day), or exporting a later day of the month replaced the row with the month's
    // number alone and blanked the week's.
    let both = metrics.contains(&Metric::Wau) && metrics.contains(&Metric::Mau);
    // The first day of `day`'s month, when that row is shared (a workbook has a sheet per
    // metric, but making its rows from the month's first day does no harm).
    let shared_row = |day: NaiveDate| {
        let month = day.with_day(1).expect("day 1 exists");
        (calendar && both && month.weekday() == Weekday::Mon).then_some(month)
    };
    let rows_from = shared_row(from).unwrap_or(from);
    let mut queries = Query::each(&metrics, rows_from, to, calendar)?;
    let near = Query::spans(&queries);
    let lake = Arc::new(Lake::open(config.lake()?, config, near).await?);
    // (`sqlite://lake/x.db` as the database it names.)
    if let Some(place) = sink.place() {
        lake.refuse_inside(&place, "--output")?;
    }
    // Rows from the month's first day check that day on: the asked days themselves must have
    // something to count, or a day not in the lake yet was delivered as NULL, exit 0.
    if rows_from < from {
        let days = lake.days_between(from, to)?;
        if lake.files(&days).await?.iter().all(Vec::is_empty) {
            return Err(lake.no_files(from, to));
        }
    }

    let ctx = SessionContext::new();
    let mut warnings = Vec::new();
    // Days before the lake's first one are not exported: a lake that has dropped its old days
    // (kept for a year, say) must not blank the numbers once delivered for them.
    let first = lake.first_day();
    if from < first && first <= to {
        warnings.push(format!(
            "{from} to {} are before the lake's first day {first}: not exported, and what {} \
             holds for them is kept",
            first.pred_opt().expect("a day before"),
            without_password(output)
        ));
    }
    let from = match first <= to {
        true => rows_from.max(first),
        false => rows_from,
    };
    // The rows start at the lake's first day: when the row they start in is shared and its week
    // is wholly before that day, the row is kept as the destination holds it: written, its
    // delivered week went empty (and its month counted part of its days). A workbook has a sheet
    // per metric, so no shared row.
    let kept_row =
        (shared_row(from)).filter(|month| !sink.is_workbook() && *month + Days::new(6) < from);
    if let Some(month) = kept_row {
        warnings.push(format!(
            "the row of {month} (its week and its month) is not exported, and what {} holds \
             for it is kept: that week is before the lake's first day {first} (export mau alone \
             for the month's count of the lake's days)",
            without_password(output)
        ));
    }
    if from != rows_from {
        queries = Query::each(&metrics, from, to, calendar)?;
    }
    for (i, query) in queries.iter().enumerate() {
        let answer = metrics::run(lake.clone(), config, query).await?;
        // Each once: the metrics of one export often warn of the same missing days.
        for warning in answer.warnings {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        let schema = answer.rows.schema();
        let batches: Vec<_> = answer.rows.try_collect().await?;
        ctx.register_table(
            format!("m{i}"),
            Arc::new(MemTable::try_new(schema, vec![batches])?),
        )?;
    }
    let (sql, key) = match metrics.as_slice() {
        [Metric::UserDays] => (
            "SELECT * FROM m0".to_string(),
            vec!["date", &config.user_column],
        ),
        _ => {
            let wide = wide(&ctx, queries.len()).await?;
            let sql = match kept_row {
                Some(month) => format!("SELECT * FROM ({wide}) WHERE date <> DATE '{month}'"),
                None => wide,
            };
            (sql, vec!["date"])
        }
    };
    let new = ctx.sql(&sql).await?;
    let schema = Arc::new(new.schema().as_arrow().clone());
    ctx.register_table("new", new.into_view())?;
    // How many rows, and of which dates, in one pass over them.
    let summary = ctx
        .sql("SELECT COUNT(*), MIN(date), MAX(date) FROM new")
        .await?;
    let summary = summary.collect().await?;
    let row = summary.first().filter(|batch| batch.num_rows() == 1);
    let row = row.ok_or_else(|| Error::Query(DataFusionError::Internal("no summary".into())))?;
    let exported = row.column(0).as_primitive::<Int64Type>().value(0);
    let date = |column: usize| {
        let column = row.column(column).as_primitive_opt::<Date32Type>()?;
        match column.is_valid(0) {
            true => from_date32(column.value(0)),
            false => None,
        }
    };
    let dates = date(1).zip(date(2));
    let names: Vec<&str> = queries.iter().map(Query::name).collect();
    let total = sink
        .write(&ctx, schema, &key, (from, to), &names, &config.storage)
        .await?;
    Ok(Exported {
        rows: exported as u64,
        dates,
        total,
        warnings,
    })
}

/// The metrics, each once; user-days (a row per user and day) only on its own.
pub fn metrics_of(asked: &[Metric]) -> Result<Vec<Metric>> {
    let mut metrics: Vec<Metric> = Vec::new();
    for m in asked {
        if !metrics.contains(m) {
            metrics.push(*m);
        }
    }
    if metrics.len() > 1 && metrics.contains(&Metric::UserDays) {
        return Err(Error::usage(
            "user-days exports on its own (a row per user and day, not per date)",
            "export it in a command of its own, to a file of its own",
        ));
    }
    Ok(metrics)
}

/// `--date`, or `--from`/`--to`; yesterday when neither is given.
fn days(config: &Config, args: &ExportArgs) -> Result<(NaiveDate, NaiveDate)> {
    let today = today(config.timezone);
    if let (Some(from), Some(to)) = (&args.from, &args.to) {
        let from = day_arg("--from", Some(from), today)?.expect("given");
        let to = day_arg("--to", Some(to), today)?.expect("given");
        check_order(from, to)?;
        return Ok((from, to));
    }
    let day = day_arg(
        "--date",
        Some(args.date.as_deref().unwrap_or("yesterday")),
        today,
    )?;
    let day = day.expect("given");
    Ok((day, day))
}

/// One row per date with every metric's columns (a column two metrics share, such as `dau` in
/// `dau` and `stickiness`, once): the metric tables `m0…` joined on `date`.
async fn wide(ctx: &SessionContext, count: usize) -> Result<String> {
    let mut columns = Vec::new();
    let mut seen = vec!["date".to_string()];
    for i in 0..count {
        let table = ctx.table(format!("m{i}").as_str()).await?;
        for field in table.schema().fields() {
            if !seen.contains(field.name()) {
                seen.push(field.name().clone());
                columns.push(format!("m{i}.\"{}\"", field.name()));
            }
        }
    }
    let dates: Vec<String> = (0..count).map(|i| format!("m{i}.date")).collect();
    let mut from = "m0".to_string();
    for i in 1..count {
        let earlier = &dates[..i];
        let on = match earlier {
            [one] => one.clone(),
            many => format!("COALESCE({})", many.join(", ")),
        };
        from.push_str(&format!(" FULL JOIN m{i} ON {on} = m{i}.date"));
    }
    let date = match dates.as_slice() {
        [one] => one.clone(),
        many => format!("COALESCE({})", many.join(", ")),
    };
    Ok(format!(
        "SELECT {date} AS date{} FROM {from}",
        columns.iter().map(|c| format!(", {c}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_change_is_a_percentage() {
        assert_eq!(percent("50%"), Some(0.5));
        assert_eq!(percent(" 12.5 % "), Some(0.125));
        assert_eq!(percent("300%"), Some(3.0));
        for bad in ["", "50", "0.5", "0%", "-10%", "%", "x%", "inf%", "NaN%"] {
            assert_eq!(percent(bad), None, "{bad}");
        }
    }
}
