//! Export destinations, written idempotently: exporting a day again replaces that day's rows, and
//! a failed export leaves what was there.

mod bucket;
mod file;
mod pgpass;
mod postgres;
mod sqlite;
mod xlsx;

use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, SchemaRef};
use datafusion::prelude::SessionContext;

use crate::config::from_home;
use crate::lake::storage::{self, StorageOptions};
use crate::metrics::Metric;
use crate::output::{self, Format};
use crate::{Error, Result};

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A CSV, Parquet or xlsx file holding every exported day, sorted by date.
    File { path: PathBuf, kind: FileKind },
    /// Such a file in a bucket (`gs://…` or `s3://…`).
    Bucket { url: String, kind: FileKind },
    /// A table in an SQLite database (created with the table when absent).
    Sqlite {
        path: PathBuf,
        table: Option<String>,
    },
    /// A table in a PostgreSQL database: the connection URL without the parameters dau reads
    /// itself (`table`, and `sslmode` and `sslrootcert` as `tls`).
    Postgres {
        url: String,
        table: Option<String>,
        tls: postgres::Tls,
    },
}

/// What a file holds, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// CSV or Parquet: a row per date (per user and date for user-days).
    Table(Format),
    /// An Excel workbook with a sheet per metric.
    Workbook,
}

impl Sink {
    /// `out/daily.csv`, `out/daily.parquet`, `out/daily.xlsx`, any of them as
    /// `gs://BUCKET/PATH` or `s3://BUCKET/PATH`, `out/dau.db` (`.sqlite`, `.sqlite3`) or
    /// `sqlite://out/dau.db` (or `sqlite:///abs/dau.db`, optionally with `?table=NAME`), or
    /// `postgres://…`.
    /// The file, folder or bucket URL it writes, if any (a PostgreSQL table is in no lake).
    pub fn place(&self) -> Option<String> {
        match self {
            Sink::File { path, .. } | Sink::Sqlite { path, .. } => {
                Some(path.to_string_lossy().into_owned())
            }
            Sink::Bucket { url, .. } => Some(url.clone()),
            Sink::Postgres { .. } => None,
        }
    }

    /// Whether it is an Excel workbook (a sheet per metric).
    pub fn is_workbook(&self) -> bool {
        matches!(
            self,
            Sink::File {
                kind: FileKind::Workbook,
                ..
            } | Sink::Bucket {
                kind: FileKind::Workbook,
                ..
            }
        )
    }

    pub fn parse(dest: &str) -> Result<Sink> {
        if let Some(rest) = dest.strip_prefix("sqlite://") {
            let (path, table) = take_parameter(rest, "table");
            // An empty path would be a temporary database, gone when the export ends.
            let bad = if path.is_empty() {
                Some("no database file")
            } else if path.contains('?') {
                Some("a parameter other than table")
            } else {
                None
            };
            if let Some(what) = bad {
                return Err(Error::usage(
                    format!("{what} in '{dest}'"),
                    "write sqlite://PATH/TO/FILE.db, optionally with ?table=NAME",
                ));
            }
            return Ok(Sink::Sqlite {
                path: PathBuf::from(from_home(&path)),
                table: table_name(dest, table, false)?,
            });
        }
        if dest.starts_with("postgres://") || dest.starts_with("postgresql://") {
            let shown = without_password(dest);
            let (url, table) = take_parameter(dest, "table");
            let (url, tls) = postgres::Tls::take(&shown, &url)?;
            postgres::check_url(&shown, &url)?;
            return Ok(Sink::Postgres {
                url,
                table: table_name(&shown, table, true)?,
                tls,
            });
        }
        // A destination written where no shell makes `~/` the home folder (dau.toml, a quoted
        // flag): there, as `sqlite://~/…` above.
        let path = PathBuf::from(from_home(dest));
        if path.is_dir() {
            return Err(Error::usage(
                format!("cannot export into {dest}: it is a folder"),
                format!(
                    "name a file in it, such as {}",
                    path.join("daily.csv").display()
                ),
            ));
        }
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let kind = match extension.as_deref() {
            Some("xlsx") => FileKind::Workbook,
            Some("csv") => FileKind::Table(Format::Csv),
            Some("parquet") => FileKind::Table(Format::Parquet),
            Some("db" | "sqlite" | "sqlite3") if !storage::is_bucket(dest) => {
                return Ok(Sink::Sqlite { path, table: None });
            }
            _ => {
                return Err(Error::usage(
                    format!("cannot tell where to export '{dest}'"),
                    "give a file ending in .csv, .parquet or .xlsx (in a folder, gs://BUCKET/… or \
                     s3://BUCKET/…), an SQLite database (.db, .sqlite or sqlite://PATH, a local \
                     file) or postgres://…",
                ));
            }
        };
        Ok(match storage::is_bucket(dest) {
            true => Sink::Bucket {
                url: dest.to_string(),
                kind,
            },
            false => Sink::File { path, kind },
        })
    }

    /// Writes the rows registered in `ctx` as `new` (their `key` columns identify a row; a
    /// workbook takes each metric's table `m0…`, named by `metrics`), replacing whatever the
    /// destination held for the dates from `from` to `to` and for the dates `new` has. Returns
    /// how many rows the destination holds afterwards. A bucket is reached as `storage` says.
    pub async fn write(
        &self,
        ctx: &SessionContext,
        schema: SchemaRef,
        key: &[&str],
        days: (NaiveDate, NaiveDate),
        metrics: &[&str],
        storage: &StorageOptions,
    ) -> Result<u64> {
        let merge = async |path: &Path, kind| match kind {
            FileKind::Workbook => xlsx::write(ctx, path, metrics, days).await,
            FileKind::Table(format) => {
                file::write(ctx, path, format, schema.clone(), key, days).await
            }
        };
        match self {
            Sink::File { path, kind } => {
                let _turn = take_turn(path).await?;
                merge(path, *kind).await
            }
            Sink::Bucket { url, kind } => {
                bucket::write(url, storage, async |path| merge(path, *kind).await).await
            }
            Sink::Sqlite { path, table } => {
                let table = table.as_deref().unwrap_or(default_table(key));
                sqlite::write(ctx, path, table, schema, key, days).await
            }
            Sink::Postgres { url, table, tls } => {
                let table = table.as_deref().unwrap_or(default_table(key));
                postgres::write(ctx, url, tls, table, schema, key, days).await
            }
        }
    }
}

/// Waits for this export's turn at `path`'s folder (made when missing), which lasts until the
/// returned handle is dropped. An export reads the file, merges its days in and replaces it, so
/// two at once (a backfill run day by day in parallel) would each keep only their own days. A
/// folder that cannot be locked (some network and FUSE file systems) is written without a turn,
/// and said so.
async fn take_turn(path: &Path) -> Result<Option<std::fs::File>> {
    // The folder of the file itself: one file reached through a link from another folder is
    // one place.
    let path = &output::through_links(path);
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_path_buf(),
        _ => PathBuf::from("."),
    };
    output::make_folder_of(path, "cannot make the output folder")?;
    let handle = std::fs::File::open(&folder)
        .map_err(|e| Error::io("cannot open the output folder", &folder, e))?;
    let locked = tokio::task::spawn_blocking(move || handle.lock().map(|()| handle))
        .await
        .expect("waiting for the folder's lock panicked");
    Ok(match locked {
        Ok(handle) => {
            // What exports killed while writing this file left (they take turns: not this one).
            let name = path
                .file_name()
                .map(|n| format!("{}.", n.to_string_lossy()));
            output::remove_stale(&folder, &name.unwrap_or_default());
            Some(handle)
        }
        Err(e) => {
            eprintln!(
                "dau: warning: cannot lock the output folder {} ({e}): exports into it at the same \
                 time could each keep only their own days",
                folder.display()
            );
            None
        }
    })
}

/// Whether the file at `path` may hold rows to keep: it is there, and not empty (one made
/// beforehand with `touch` is a new output).
fn holds_rows(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// A destination as the user may read it back: a URL without its password.
pub fn without_password(dest: &str) -> String {
    match url::Url::parse(dest) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => dest.to_string(),
    }
}

/// `daily_metrics`, or `user_days` for the table keyed by user too.
fn default_table(key: &[&str]) -> &'static str {
    if key.len() > 1 {
        "user_days"
    } else {
        "daily_metrics"
    }
}

/// Takes the parameter `name` out of a URL's query (`rest` is the part that holds it), returning
/// the URL without it and its last value, decoded; the other parameters stay as they were.
fn take_parameter(rest: &str, name: &str) -> (String, Option<String>) {
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut value = None;
    let mut others = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match url::form_urlencoded::parse(pair.as_bytes()).next() {
            Some((key, found)) if key == name => value = Some(found.into_owned()),
            _ => others.push(pair),
        }
    }
    let url = match others.as_slice() {
        [] => base.to_string(),
        others => format!("{base}?{}", others.join("&")),
    };
    (url, value)
}

/// A `?table=` name, which dau puts into SQL: letters, digits and `_` only, or (where a database
/// has schemas) `SCHEMA.TABLE`, each part so.
fn table_name(dest: &str, table: Option<String>, schemas: bool) -> Result<Option<String>> {
    let Some(name) = table else {
        return Ok(None);
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.iter().all(|p| is_identifier(p)) && parts.len() <= if schemas { 2 } else { 1 } {
        return Ok(Some(name));
    }
    let hint = if schemas {
        "a table name is TABLE or SCHEMA.TABLE, each of letters, digits and _"
    } else {
        "a table name has letters, digits and _ only"
    };
    Err(Error::usage(format!("bad table name in '{dest}'"), hint))
}

/// A name as SQL quotes it.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table's name as SQL quotes it: `"TABLE"`, or `"SCHEMA"."TABLE"`.
/// How long an export waits for another session's lock on a SQLite database or PostgreSQL table.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn quote_table(table: &str) -> String {
    let parts: Vec<String> = table.split('.').map(quote).collect();
    parts.join(".")
}

/// `CREATE TABLE IF NOT EXISTS` with the export's columns (typed by `sql_type`) and key.
fn create_table(
    table: &str,
    schema: &SchemaRef,
    key: &[String],
    sql_type: fn(&DataType) -> &'static str,
) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let required = if key.contains(f.name()) {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{required}", quote(f.name()), sql_type(f.data_type()))
        })
        .collect();
    let key: Vec<String> = key.iter().map(|k| quote(k)).collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))",
        quote_table(table),
        columns.join(", "),
        key.join(", ")
    )
}

/// The dates of the new rows (a calendar period may start before `--from`: its rows go too).
fn dates_of(batches: &[RecordBatch]) -> BTreeSet<NaiveDate> {
    let mut dates = BTreeSet::new();
    for batch in batches {
        if let Some(column) = batch.column_by_name("date") {
            let column = column.as_primitive::<Date32Type>();
            dates.extend((0..column.len()).filter_map(|i| column.value_as_date(i)));
        }
    }
    dates
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses a file whose columns are not this export's.
fn same_columns(place: &str, found: &[String], schema: &SchemaRef) -> Result<()> {
    let found: Vec<(String, bool)> = found.iter().map(|name| (name.clone(), false)).collect();
    columns_of(place, "file", &found, schema)
}

/// Refuses a table (columns `found`, each with whether it fills itself) that lacks a column of
/// this export, or has one the export would leave empty. A column it does not write must fill
/// itself: a DEFAULT (`loaded_at timestamptz DEFAULT now()`), an identity or a generated column.
/// Any other (another metric's, a note) would lose its values on the days the export replaces.
fn table_columns(place: &str, found: &[(String, bool)], schema: &SchemaRef) -> Result<()> {
    columns_of(place, "table", found, schema)
}

/// The check of [`same_columns`] and [`table_columns`], for a `kind` of destination.
fn columns_of(place: &str, kind: &str, found: &[(String, bool)], schema: &SchemaRef) -> Result<()> {
    let wanted: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let names: Vec<String> = found.iter().map(|(name, _)| name.clone()).collect();
    let lacks = wanted.iter().any(|w| !names.contains(w));
    let unfilled: Vec<String> = (found.iter())
        .filter(|(name, fills)| !fills && !wanted.contains(name))
        .map(|(name, _)| name.clone())
        .collect();
    // What would fill them: the metrics that write them (`opens` for `active_users`), when all
    // are dau's; a DEFAULT in a table; or another destination.
    let mut ways: Vec<String> = Vec::new();
    let exporting: Option<Vec<String>> = unfilled.iter().map(|c| Metric::exporting(c)).collect();
    if let Some(exporting) = exporting {
        let mut metrics: Vec<String> = Vec::new();
        for metric in exporting {
            if !metrics.contains(&metric) {
                metrics.push(metric);
            }
        }
        ways.push(format!("export {} too", metrics.join(" and ")));
    }
    if kind == "table" {
        ways.push("give it a DEFAULT".into());
    }
    ways.push(format!("export into another {kind}"));
    let hint = match (lacks, unfilled.as_slice()) {
        (false, []) => return Ok(()),
        _ if let Some(hint) = periods_hint(&names, &wanted, kind) => hint,
        (false, unfilled) => format!(
            "the export would leave {} empty on the days it replaces: {}",
            unfilled.join(","),
            ways.join(", or ")
        ),
        (true, _) => format!("export these metrics to another {kind}, or move this one away"),
    };
    Err(Error::usage(
        format!(
            "{place} has the columns {}, and this export writes {}",
            names.join(","),
            wanted.join(",")
        ),
        hint,
    ))
}

/// The hint for a destination whose columns (or sheets) `found` hold rolling windows where the
/// export's `wanted` are calendar periods, or the other way round (`mau`, `calendar_mau`).
fn periods_hint(found: &[String], wanted: &[String], kind: &str) -> Option<String> {
    let periods_of = |a: &[String], b: &[String]| {
        (a.iter()).any(|n| {
            n.strip_prefix("calendar_")
                .is_some_and(|m| b.iter().any(|o| o == m))
        })
    };
    (periods_of(found, wanted) || periods_of(wanted, found)).then(|| {
        format!(
            "calendar_wau and calendar_mau (--calendar) count ISO weeks and calendar months, wau \
             and mau rolling 7- and 30-day windows: export them into another {kind} (a {kind} of \
             calendar periods exported by an earlier dau, as wau or mau: rename those columns \
             calendar_wau or calendar_mau)"
        )
    })
}

/// `("a", "b")`: the export's columns, named for an INSERT or a COPY, so that a table's own
/// columns (with defaults) may stand anywhere among them.
fn column_list(schema: &SchemaRef) -> String {
    let columns: Vec<String> = schema.fields().iter().map(|f| quote(f.name())).collect();
    format!("({})", columns.join(", "))
}
