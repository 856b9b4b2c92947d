//! A CSV or Parquet file holding every exported day: the old rows of other days, then the new.

use std::path::Path;

use chrono::NaiveDate;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};

use crate::Result;
use crate::output::{self, Format};

/// Rewrites `path` with its rows of other days and the rows of `new` in `ctx`, sorted by `key`.
pub async fn write(
    ctx: &SessionContext,
    path: &Path,
    format: Format,
    schema: SchemaRef,
    key: &[&str],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<u64> {
    let order: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
    let order = order.join(", ");
    let kept = if path.exists() {
        register_old(ctx, path, format, schema).await?;
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
    output::write(merged.execute_stream().await?, format, Some(path)).await
}

/// Registers the file's rows as `old`, after checking it has the columns of this export.
async fn register_old(
    ctx: &SessionContext,
    path: &Path,
    format: Format,
    schema: SchemaRef,
) -> Result<()> {
    // As a file:// URL, so that `[`, `*` or `?` in its name is not taken for a glob.
    let file = std::path::absolute(path)
        .ok()
        .and_then(|p| url::Url::from_file_path(p).ok())
        .map_or_else(|| path.to_string_lossy().into_owned(), String::from);
    let old = match format {
        Format::Parquet => {
            ctx.read_parquet(file.as_str(), ParquetReadOptions::default())
                .await?
        }
        _ => {
            ctx.read_csv(file.as_str(), CsvReadOptions::new().has_header(true))
                .await?
        }
    };
    let found: Vec<String> = old
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    super::same_columns(&path.display().to_string(), &found, &schema)?;
    // CSV is read again with this export's types, so that old and new rows are one table.
    let old = match format {
        Format::Parquet => old,
        _ => {
            let plain = output::plain_schema(&schema);
            let options = CsvReadOptions::new().has_header(true).schema(&plain);
            ctx.read_csv(file.as_str(), options).await?
        }
    };
    ctx.register_table("old", old.into_view())?;
    Ok(())
}
