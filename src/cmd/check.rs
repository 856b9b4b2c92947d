//! `dau check`: a lake doctor. It reads every file of the range in full and reports what would
//! make a number wrong: missing days, empty partitions, unreadable files, schema drift, NULL user
//! ids, in-file dates that disagree with their partition, copies of one file (in one day or in
//! several), days split over several folders, folders that name no day, and stray files.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use futures::{StreamExt, stream};
use serde::Serialize;

use crate::config::Config;
use crate::dates::{day_arg, days, today};
use crate::lake::inspect::{
    FileReport, FileScan, IdTypes, date_column_warning, empty_days, inspect, scan_file,
};
use crate::lake::{Lake, SUCCESS};
use crate::output::{say, value_type};
use crate::{Error, Result};

/// How many of the files a Spark sink's log does not list the report for people shows.
const UNLISTED_SHOWN: usize = 20;

/// The fewest rows of files whose same bytes are taken for copies: smaller files can match by
/// chance (one user's one open, in two days or two files of a day).
const COPY_ROWS: u64 = 16;

/// How many files are read in full at once.
const CONCURRENT_SCANS: usize = 4;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when the lake is clean, 4 when check found a problem.\n\n\
    Examples:\n  dau check --lake ./lake\n  dau check --lake ./lake --from -7d --format json"
)]
pub struct CheckArgs {
    /// First day to check: YYYY-MM-DD, today, yesterday or -Nd [default: the lake's first day]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    pub from: Option<String>,

    /// Last day to check [default: the lake's last day]
    #[arg(long, value_name = "DAY", allow_hyphen_values = true)]
    pub to: Option<String>,

    /// Output format
    #[arg(long, short, value_enum, ignore_case = true, default_value_t = CheckFormat::Table)]
    pub format: CheckFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// For people
    Table,
    /// One JSON object, documented in the README
    Json,
}

/// What `dau check` found: the JSON output, field for field.
#[derive(Debug, Serialize)]
pub struct Report {
    pub lake: String,
    /// For a lake named with a pattern, the folders it matched, each a lake.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched: Vec<String>,
    /// For such a lake, the days (missing or empty) that some of its lakes lack, with those.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub incomplete_days: BTreeMap<NaiveDate, Vec<String>>,
    pub layout: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The type the checked files' user ids read as: Int64, UInt64 or Utf8.
    pub id_type: String,
    pub problems: usize,
    pub missing_days: Vec<NaiveDate>,
    pub empty_days: Vec<NaiveDate>,
    /// Days still being written: without the done marker (their files not read), or, with none
    /// configured, with data files but no `_SUCCESS` while other days have it.
    pub unfinished_days: Vec<NaiveDate>,
    /// `--done-marker`, if given.
    pub done_marker: Option<String>,
    /// Spark's file sink log beside the partitions, if there is one: only the files it lists
    /// are read.
    pub spark_log: Option<SparkLogReport>,
    pub days: Vec<DayReport>,
    pub bad_files: Vec<BadFile>,
    pub schema_drift: Vec<Drift>,
    pub date_mismatches: Vec<DateMismatch>,
    pub split_days: Vec<SplitDay>,
    pub duplicate_files: Vec<Duplicates>,
    pub skipped_folders: Vec<String>,
    pub stray_files: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SparkLogReport {
    pub folder: String,
    /// The newest batch committed; None when none is yet.
    pub batch: Option<u64>,
    /// Files in the checked partitions that the log does not list, so are not read: a failed
    /// batch's, or one still being written. Not a problem: Spark's reader leaves them out too.
    pub unlisted_files: Vec<String>,
    /// Files the log lists (as it writes them) that their partitions do not have: a problem each,
    /// as their days would be undercounted.
    pub lost_files: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct DayReport {
    pub date: NaiveDate,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub null_user_ids: u64,
    pub date_mismatches: u64,
}

#[derive(Debug, Serialize)]
pub struct BadFile {
    pub file: String,
    pub date: NaiveDate,
    pub reason: String,
}

/// A column whose type differs between files.
#[derive(Debug, Serialize)]
pub struct Drift {
    pub column: String,
    pub types: Vec<DriftType>,
}

#[derive(Debug, Serialize)]
pub struct DriftType {
    #[serde(rename = "type")]
    pub data_type: String,
    pub files: usize,
    pub example: String,
}

#[derive(Debug, Serialize)]
pub struct DateMismatch {
    pub file: String,
    pub date: NaiveDate,
    pub rows: u64,
    pub example: Option<NaiveDate>,
}

/// Files with the same bytes (and rows): their rows count twice, in one day's opens, or as
/// users of a day that they may not belong to.
#[derive(Debug, Serialize)]
pub struct Duplicates {
    pub files: Vec<String>,
    pub dates: Vec<NaiveDate>,
}

/// A day whose events are in several partition folders (`dt=2024-06-18` and `dt=20240618`, or
/// `month=6` and `month=06`): all are read, so the same events copied into both count twice.
#[derive(Debug, Serialize)]
pub struct SplitDay {
    pub date: NaiveDate,
    pub folders: Vec<String>,
}

pub async fn run(config: &Config, args: &CheckArgs) -> Result<()> {
    let today = today(config.timezone);
    let from = day_arg("--from", args.from.as_deref(), today)?;
    let to = day_arg("--to", args.to.as_deref(), today)?;
    let mut lake = Lake::open(config.lake()?, config, from.zip(to)).await?;
    // A file the Spark log lists that is gone is one of the problems, not the end of the check.
    lake.list_lost = true;
    let (from, to) = lake.range(from, to, |_| lake.first_day())?;
    let report = examine(&lake, config, from, to).await?;
    match args.format {
        CheckFormat::Json => {
            say(&serde_json::to_string_pretty(&report).expect("a report serializes"))?
        }
        CheckFormat::Table => say(&render(&report))?,
    }
    match report.problems {
        0 => Ok(()),
        problems => Err(Error::CheckFailed {
            lake: lake.name.clone(),
            problems,
        }),
    }
}

/// Reads every file of `from..=to` and gathers the report.
pub async fn examine(
    lake: &Lake,
    config: &Config,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Report> {
    let columns = config.columns();
    let present: Vec<NaiveDate> = lake.days.range(from..=to).map(|(d, _)| *d).collect();
    let reports = inspect(lake, &present, &columns).await?;
    if let Some(warning) = date_column_warning(&reports, &columns) {
        eprintln!("dau: warning: {warning}");
    }
    let unfinished = lake.unfinished(from, to);
    let empty_days: Vec<NaiveDate> = empty_days(lake, &present, &reports)
        .into_iter()
        .filter(|d| !unfinished.contains(d))
        .collect();
    let unfinished_days = [unfinished, lake.unmarked(from, to).0].concat();
    let ids = IdTypes::of_files(&reports, &columns).read_as();
    let watch = lake.watch("checking", Some(reports.len()));
    let scans: Vec<Option<std::result::Result<FileScan, String>>> = stream::iter(&reports)
        .map(|r| async {
            match r.problem(&columns) {
                Some(_) => Ok(None),
                None => scan_file(lake, r, &columns, &ids).await.map(Some),
            }
        })
        .buffered(CONCURRENT_SCANS)
        .collect::<Vec<Result<_>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    drop(watch);

    let mut per_day: BTreeMap<NaiveDate, DayReport> = present
        .iter()
        .map(|d| {
            (
                *d,
                DayReport {
                    date: *d,
                    ..DayReport::default()
                },
            )
        })
        .collect();
    let mut bad_files = Vec::new();
    let mut date_mismatches = Vec::new();
    let mut copies: BTreeMap<(u64, u64, u64), Vec<&FileReport>> = BTreeMap::new();
    for (r, scan) in reports.iter().zip(scans) {
        let day = per_day.get_mut(&r.day).expect("every file's day is listed");
        day.files += 1;
        day.bytes += r.meta.size;
        let problem = r
            .problem(&columns)
            .or_else(|| scan.as_ref().and_then(|s| s.as_ref().err().cloned()));
        if let Some(reason) = problem {
            bad_files.push(BadFile {
                file: r.name.clone(),
                date: r.day,
                reason,
            });
            continue;
        }
        let (Ok(facts), Some(Ok(scan))) = (&r.facts, scan) else {
            continue;
        };
        day.rows += facts.rows;
        if facts.rows >= COPY_ROWS {
            let key = (r.meta.size, facts.rows, scan.digest);
            copies.entry(key).or_default().push(r);
        }
        day.null_user_ids += scan.null_users;
        day.date_mismatches += scan.date_mismatches;
        if scan.date_mismatches > 0 {
            date_mismatches.push(DateMismatch {
                file: r.name.clone(),
                date: r.day,
                rows: scan.date_mismatches,
                example: scan.mismatch_example,
            });
        }
    }
    let missing_days: Vec<NaiveDate> = days(from, to)
        .filter(|d| !lake.days.contains_key(d))
        .collect();
    let split_days: Vec<SplitDay> = (lake.split_days(from, to))
        .map(|(date, folders)| SplitDay {
            date: *date,
            folders: folders.iter().map(|f| lake.describe(f)).collect(),
        })
        .collect();
    let duplicate_files: Vec<Duplicates> = (copies.into_values())
        .filter(|files| files.len() > 1)
        .map(|files| Duplicates {
            files: files.iter().map(|r| r.name.clone()).collect(),
            dates: files.iter().map(|r| r.day).collect(),
        })
        .collect();
    let schema_drift = drift(&reports);
    let days: Vec<DayReport> = per_day.into_values().collect();
    let null_days = days.iter().filter(|d| d.null_user_ids > 0).count();
    let spark_log = lake.spark_log.as_ref().map(|log| SparkLogReport {
        folder: lake.describe(&log.folder),
        batch: log.batch,
        unlisted_files: lake.unlisted(from, to),
        lost_files: lake.lost(from, to),
    });
    let problems = missing_days.len()
        + empty_days.len()
        + unfinished_days.len()
        + bad_files.len()
        + schema_drift.len()
        + date_mismatches.len()
        + null_days
        + split_days.len()
        + duplicate_files.len()
        + lake.skipped.len()
        + lake.strays.len()
        + spark_log.as_ref().map_or(0, |log| log.lost_files.len());
    Ok(Report {
        lake: lake.name.clone(),
        matched: lake.matched.clone(),
        incomplete_days: lake.incomplete(from, to),
        layout: lake.layout.to_string(),
        first_day: lake.first_day(),
        last_day: lake.last_day(),
        from,
        to,
        id_type: ids.to_string(),
        problems,
        missing_days,
        empty_days,
        unfinished_days,
        done_marker: lake.done_marker().map(str::to_string),
        spark_log,
        days,
        bad_files,
        schema_drift,
        date_mismatches,
        split_days,
        duplicate_files,
        skipped_folders: lake.skipped.clone(),
        stray_files: lake.strays.clone(),
    })
}

/// Columns whose type is not the same in every readable file.
fn drift(reports: &[FileReport]) -> Vec<Drift> {
    let mut types: BTreeMap<String, BTreeMap<String, (usize, String)>> = BTreeMap::new();
    for r in reports {
        let Ok(facts) = &r.facts else { continue };
        // (A column of NULLs only, of the type `null`, reads as any type.)
        let fields = facts.schema.fields().iter();
        for field in fields.filter(|f| !f.data_type().is_null()) {
            let entry = types.entry(field.name().clone()).or_default();
            // One type stored or hinted another way (a dictionary, as pandas writes a
            // categorical; a large string, as Polars writes) reads as the same values.
            let seen = entry
                .entry(value_type(field.data_type()).to_string())
                .or_insert((0, r.name.clone()));
            seen.0 += 1;
        }
    }
    types
        .into_iter()
        .filter(|(_, by_type)| by_type.len() > 1)
        .map(|(column, by_type)| Drift {
            column,
            types: by_type
                .into_iter()
                .map(|(data_type, (files, example))| DriftType {
                    data_type,
                    files,
                    example,
                })
                .collect(),
        })
        .collect()
}

/// The report for people: a line per fact, a table per day, a line per problem.
fn render(report: &Report) -> String {
    let mut out = vec![
        match report.matched.as_slice() {
            [] => format!("lake      {} ({})", report.lake, report.layout),
            matched => format!(
                "lake      {} ({}), {} lakes counted as one: {}",
                report.lake,
                report.layout,
                matched.len(),
                matched.join(", ")
            ),
        },
        format!(
            "days      {} to {} in the lake; checked {} to {}",
            report.first_day, report.last_day, report.from, report.to
        ),
        format!(
            "user ids  read as {}",
            match report.id_type.as_str() {
                "Int64" => "signed 64-bit integers",
                "UInt64" => "unsigned 64-bit integers",
                _ => "text",
            }
        ),
    ];
    if let Some(log) = &report.spark_log {
        out.push(format!(
            "files     only those in Spark's file sink log ({}, {})",
            log.folder,
            match log.batch {
                Some(batch) => format!("batches to {batch}"),
                None => "no batch yet".to_string(),
            }
        ));
        if !log.unlisted_files.is_empty() {
            out.push(format!(
                "          {} file(s) it does not list are left out, as Spark leaves them out (a \
                 failed batch's, or one still being written):",
                log.unlisted_files.len()
            ));
            // (A long-running sink can leave thousands: the JSON has them all.)
            let shown = log.unlisted_files.iter().take(UNLISTED_SHOWN);
            out.extend(shown.map(|f| format!("            {f}")));
            if log.unlisted_files.len() > UNLISTED_SHOWN {
                let more = log.unlisted_files.len() - UNLISTED_SHOWN;
                out.push(format!(
                    "            and {more} more (--format json lists them all)"
                ));
            }
        }
    }
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header([
            "date",
            "files",
            "rows",
            "bytes",
            "null ids",
            "date mismatches",
        ]);
    for d in &report.days {
        table.add_row([
            d.date.to_string(),
            d.files.to_string(),
            d.rows.to_string(),
            d.bytes.to_string(),
            d.null_user_ids.to_string(),
            d.date_mismatches.to_string(),
        ]);
    }
    for i in 1..6 {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    out.push(table.to_string());
    let mut problems = Vec::new();
    let lacking = |d: &NaiveDate| match report.incomplete_days.get(d) {
        Some(lakes) => format!(" in {}", lakes.join(", ")),
        None => String::new(),
    };
    for d in &report.missing_days {
        problems.push(format!("missing day: {d} has no partition{}", lacking(d)));
    }
    for d in &report.empty_days {
        problems.push(format!(
            "empty partition: {d} has no data file{} (queries show it as missing)",
            lacking(d)
        ));
    }
    for d in &report.unfinished_days {
        problems.push(match &report.done_marker {
            Some(marker) => format!(
                "unfinished day: {d} has no {marker} yet (--done-marker): queries show it as \
                 missing"
            ),
            None => format!(
                "unfinished day?: {d} has no {SUCCESS} while other days have it: if its writer \
                 is not done, it is undercounted (--done-marker {SUCCESS} makes such days missing)"
            ),
        });
    }
    for b in &report.bad_files {
        problems.push(format!("bad file: {} ({})", b.file, b.reason));
    }
    for d in &report.schema_drift {
        let types: Vec<String> = d
            .types
            .iter()
            .map(|t| format!("{} in {} file(s), e.g. {}", t.data_type, t.files, t.example))
            .collect();
        problems.push(format!(
            "schema drift: column {} is {}",
            d.column,
            types.join("; ")
        ));
    }
    for m in &report.date_mismatches {
        let example = m.example.map(|e| format!(", e.g. {e}")).unwrap_or_default();
        problems.push(format!(
            "date mismatch: {}: {} row(s) whose date column is not the folder's {}{example}",
            m.file, m.rows, m.date
        ));
    }
    for d in report.days.iter().filter(|d| d.null_user_ids > 0) {
        problems.push(format!(
            "NULL user ids: {} row(s) on {} (never counted as users)",
            d.null_user_ids, d.date
        ));
    }
    for d in &report.split_days {
        problems.push(format!(
            "day in {} folders (all are read): {} in {}",
            d.folders.len(),
            d.date,
            d.folders.join(", ")
        ));
    }
    for d in &report.duplicate_files {
        let dates: BTreeSet<NaiveDate> = d.dates.iter().copied().collect();
        let effect = match dates.len() {
            1 => format!("their rows count twice in the opens of {}", d.dates[0]),
            _ => {
                let dates: Vec<String> = dates.iter().map(NaiveDate::to_string).collect();
                format!(
                    "their users count as active on each of {}",
                    dates.join(", ")
                )
            }
        };
        problems.push(format!(
            "copies of one file ({effect}): {}",
            d.files.join(", ")
        ));
    }
    for f in report.spark_log.iter().flat_map(|log| &log.lost_files) {
        problems.push(format!(
            "file the Spark log lists but its partition does not have (its day is undercounted): \
             {f}"
        ));
    }
    for f in &report.skipped_folders {
        problems.push(format!("folder that names no day (skipped): {f}"));
    }
    for f in &report.stray_files {
        problems.push(format!("stray beside the partitions (not read): {f}"));
    }
    if problems.is_empty() {
        out.push("clean: no problems found".to_string());
    } else {
        out.push(format!("{} problem(s):", problems.len()));
        out.extend(problems.iter().map(|p| format!("  - {p}")));
    }
    out.join("\n")
}
