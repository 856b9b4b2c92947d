//! Export destinations, written idempotently: exporting a day again replaces that day's rows.
//!
//! The destination is picked from `--output`: a `.csv` or `.parquet` file for now.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};

use crate::output::{self, Format};
use crate::{Error, Result};

/// Where an export goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A CSV or Parquet file holding every exported day, one row per date (per user for
    /// user-days), sorted.
    File { path: PathBuf, format: Format },
}

impl Sink {
    pub fn parse(dest: &str) -> Result<Sink> {
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
                    "give a file ending in .csv or .parquet",
                ));
            }
        };
        Ok(Sink::File { path, format })
    }

    /// Writes `rows` (registered in `ctx` as `new`, sorted by `order`), replacing whatever the
    /// destination held for the dates from `from` to `to` and for the dates `rows` has. Returns
    /// how many rows the destination holds afterwards.
    pub async fn write(
        &self,
        ctx: &SessionContext,
        schema: SchemaRef,
        order: &str,
        (from, to): (NaiveDate, NaiveDate),
    ) -> Result<u64> {
        let Sink::File { path, format } = self;
        let kept = if path.exists() {
            register_old(ctx, path, *format, schema).await?;
            format!(
                "SELECT * FROM old WHERE NOT (date BETWEEN DATE '{from}' AND DATE '{to}') \
                 AND date NOT IN (SELECT date FROM new) UNION ALL "
            )
        } else {
            String::new()
        };
        let merged = ctx
            .sql(&format!("{kept}SELECT * FROM new ORDER BY {order}"))
            .await?;
        let stream = merged.execute_stream().await?;
        output::write(stream, *format, Some(path)).await
    }
}

/// Registers the file's rows as `old`, after checking it has the columns of this export.
async fn register_old(
    ctx: &SessionContext,
    path: &Path,
    format: Format,
    schema: SchemaRef,
) -> Result<()> {
    let file = path.to_string_lossy();
    let old = match format {
        Format::Parquet => {
            ctx.read_parquet(file.as_ref(), ParquetReadOptions::default())
                .await?
        }
        _ => {
            ctx.read_csv(file.as_ref(), CsvReadOptions::new().has_header(true))
                .await?
        }
    };
    let names = |s: &datafusion::arrow::datatypes::Schema| -> Vec<String> {
        s.fields().iter().map(|f| f.name().clone()).collect()
    };
    let found = names(old.schema().as_arrow());
    let wanted = names(&schema);
    if found != wanted {
        return Err(Error::usage(
            format!(
                "{} has the columns {}, and this export writes {}",
                path.display(),
                found.join(","),
                wanted.join(",")
            ),
            "export these metrics to another file, or move this one away",
        ));
    }
    // CSV is read again with this export's types, so that old and new rows are one table.
    let old = match format {
        Format::Parquet => old,
        _ => {
            let plain = output::plain_schema(&schema);
            let options = CsvReadOptions::new().has_header(true).schema(&plain);
            ctx.read_csv(file.as_ref(), options).await?
        }
    };
    ctx.register_table("old", old.into_view())?;
    Ok(())
}
