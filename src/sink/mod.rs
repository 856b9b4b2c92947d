//! Export destinations, written idempotently: exporting a day again replaces that day's rows, and
//! a failed export leaves what was there.

mod file;
mod sqlite;

use std::path::PathBuf;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use crate::output::Format;
use crate::{Error, Result};

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A CSV or Parquet file holding every exported day, sorted by date.
    File { path: PathBuf, format: Format },
    /// A table in an SQLite database (created with the table when absent).
    Sqlite {
        path: PathBuf,
        table: Option<String>,
    },
}

impl Sink {
    /// `out/daily.csv`, `out/daily.parquet`, `sqlite://out/dau.db` (or `sqlite:///abs/dau.db`),
    /// optionally with `?table=NAME`.
    pub fn parse(dest: &str) -> Result<Sink> {
        if let Some(rest) = dest.strip_prefix("sqlite://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            let table = match query.split_once('=') {
                None if query.is_empty() => None,
                Some(("table", name)) if is_identifier(name) => Some(name.to_string()),
                _ => {
                    return Err(Error::usage(
                        format!("bad destination '{dest}'"),
                        "write it as sqlite://PATH or sqlite://PATH?table=NAME (letters, digits, _)",
                    ));
                }
            };
            return Ok(Sink::Sqlite {
                path: PathBuf::from(path),
                table,
            });
        }
        let path = PathBuf::from(dest);
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let format = match extension.as_deref() {
            Some("csv") => Format::Csv,
            Some("parquet") => Format::Parquet,
            _ => {
                return Err(Error::usage(
                    format!("cannot tell where to export '{dest}'"),
                    "give a file ending in .csv or .parquet, or sqlite://PATH",
                ));
            }
        };
        Ok(Sink::File { path, format })
    }

    /// Writes the rows registered in `ctx` as `new` (their `key` columns identify a row),
    /// replacing whatever the destination held for the dates from `from` to `to` and for the
    /// dates `new` has. Returns how many rows the destination holds afterwards.
    pub async fn write(
        &self,
        ctx: &SessionContext,
        schema: SchemaRef,
        key: &[&str],
        days: (NaiveDate, NaiveDate),
    ) -> Result<u64> {
        match self {
            Sink::File { path, format } => file::write(ctx, path, *format, schema, key, days).await,
            Sink::Sqlite { path, table } => {
                let default = if key.len() > 1 {
                    "user_days"
                } else {
                    "daily_metrics"
                };
                let table = table.as_deref().unwrap_or(default);
                sqlite::write(ctx, path, table, schema, key, days).await
            }
        }
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Refuses a destination whose columns are not this export's.
fn same_columns(place: &str, found: &[String], schema: &SchemaRef) -> Result<()> {
    let wanted: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if found == wanted.as_slice() {
        return Ok(());
    }
    Err(Error::usage(
        format!(
            "{place} has the columns {}, and this export writes {}",
            found.join(","),
            wanted.join(",")
        ),
        "export these metrics to another file or table, or move this one away",
    ))
}
