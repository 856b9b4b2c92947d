//! A CSV or Parquet file holding every exported day: the old rows of other days, then the new.

use std::path::Path;

use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::kernels::cast_utils::Parser;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext, cast, col, ident};

use crate::output::{self, Format};
use crate::{Error, Result};

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
    let old = super::holds_rows(path);
    let kept = if old {
        let registered = register_old(ctx, path, format, schema.clone()).await;
        registered.map_err(|e| unreadable_rows(path, format, &schema, e))?;
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
    let written = output::write(merged.execute_stream().await?, format, Some(path)).await;
    written.map_err(|e| match old {
        true => unreadable_rows(path, format, &schema, e),
        false => e,
    })
}

/// A row of the CSV file that does not read as this export's columns (a date a spreadsheet
/// rewrote as 6/1/2024, a count with a thousands separator, a field too many) is the file's
/// problem, named with its line, not a failed query. The file is left as it was.
fn unreadable_rows(path: &Path, format: Format, schema: &Schema, error: Error) -> Error {
    let Error::Query(e) = &error else {
        return error;
    };
    // A Parquet value that is not of its column's type (`Total` among text dates), or a file
    // that is no Parquet at all.
    let parquet = match (format, e.find_root()) {
        (Format::Parquet, DataFusionError::ArrowError(arrow, _)) => match &**arrow {
            ArrowError::CastError(why) => Some(why.clone()),
            _ => None,
        },
        (Format::Parquet, DataFusionError::ParquetError(why)) => {
            Some(format!("it is not a Parquet file dau can read ({why})"))
        }
        _ => None,
    };
    if let Some(why) = parquet {
        return Error::usage(
            format!("cannot merge this export into {}: {why}", path.display()),
            "keep its columns of this export's types (dates, numbers), or move it away, or \
             export to another file",
        );
    }
    if format != Format::Csv {
        return error;
    }
    match e.find_root() {
        DataFusionError::ArrowError(arrow, _)
            if matches!(
                **arrow,
                ArrowError::ParseError(_)
                    | ArrowError::CsvError(_)
                    | ArrowError::InvalidArgumentError(_)
            ) =>
        {
            let why = first_unreadable_line(path, &output::plain_schema(schema))
                .unwrap_or_else(|| arrow.to_string());
            Error::usage(
                format!("cannot merge this export into {}: {why}", path.display()),
                "keep its dates as YYYY-MM-DD and its numbers plain (a spreadsheet that saved it \
                 may have rewritten them), or export to another file",
            )
        }
        _ => error,
    }
}

/// The first line of the CSV file at `path` whose fields do not read as `schema`'s columns, and
/// why; None when every line does.
fn first_unreadable_line(path: &Path, schema: &Schema) -> Option<String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .ok()?;
    let columns = schema.fields().len();
    // The file's columns by its header (they may stand in another order than the export's).
    let header = reader.headers().ok()?.clone();
    let fields: Vec<&Field> = (header.iter())
        .map(|name| schema.field_with_name(name).ok())
        .collect::<Option<_>>()?;
    // (Exported fields never hold a line break: a record is a line, after the header's.)
    for (record, line) in reader.records().zip(2..) {
        let record = match record {
            Ok(record) => record,
            Err(e) => return Some(e.to_string()),
        };
        if record.len() != columns {
            return Some(format!(
                "line {line} has {} fields, not {columns}",
                record.len()
            ));
        }
        for (value, field) in record.iter().zip(&fields) {
            let (reads, what) = match field.data_type() {
                DataType::Date32 => (Date32Type::parse(value).is_some(), "a date (YYYY-MM-DD)"),
                DataType::Int64 => (Int64Type::parse(value).is_some(), "an integer"),
                DataType::UInt64 => (UInt64Type::parse(value).is_some(), "an integer"),
                DataType::Float64 => (Float64Type::parse(value).is_some(), "a number"),
                _ => (true, "text"),
            };
            let found = match value.is_empty() {
                true if !field.is_nullable() => "nothing".to_string(),
                true => continue,
                false if reads => continue,
                false => format!("'{value}'"),
            };
            return Some(format!(
                "line {line} has {found} in the column {}, which holds {what}",
                field.name()
            ));
        }
    }
    None
}

/// The first date (as text) that is a day with a time or a zone other than a midnight in UTC
/// or with no zone (as other tools write days), or a number. (Text that is no date at all is
/// named by the cast, with its line.)
fn first_odd_date(batches: &[RecordBatch]) -> Option<String> {
    const MIDNIGHTS: [&str; 9] = [
        "",
        " 00:00:00",
        "T00:00:00",
        " 00:00",
        "T00:00",
        "T00:00:00Z",
        "T00:00:00+00:00",
        " 00:00:00+00:00",
        " 00:00:00Z",
    ];
    let odd = |date: &str| {
        let (day, rest) = date.split_at_checked(10).unwrap_or((date, ""));
        let timed =
            NaiveDate::parse_from_str(day, "%Y-%m-%d").is_ok() && !MIDNIGHTS.contains(&rest);
        timed || date.bytes().all(|b| b.is_ascii_digit())
    };
    (batches.iter())
        .flat_map(|batch| {
            let dates = batch.column(0).as_string::<i32>();
            dates
                .iter()
                .flatten()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find(|date| odd(date))
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
    // Any extension: the reader's default (`.csv`) refused `daily.CSV` after its first export.
    let csv = || CsvReadOptions::new().has_header(true).file_extension("");
    let old = match format {
        Format::Parquet => {
            let options = ParquetReadOptions {
                file_extension: "",
                ..Default::default()
            };
            ctx.read_parquet(file.as_str(), options).await?
        }
        _ => ctx.read_csv(file.as_str(), csv()).await?,
    };
    let found: Vec<String> = old
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    super::same_columns(&path.display().to_string(), &found, &schema)?;
    // Each date as it is written (a CSV read again as text): one with a time of day or a zone
    // would be cast to its day in UTC (a row of Seoul's 2024-06-01 moved to 05-31), and a number
    // (20240601) to days since 1970.
    let written = match format {
        Format::Parquet => old.clone(),
        _ => {
            let text = found.iter().map(|n| Field::new(n, DataType::Utf8, true));
            let text = Schema::new(text.collect::<Vec<_>>());
            ctx.read_csv(file.as_str(), csv().schema(&text)).await?
        }
    };
    let written = written.select(vec![cast(col("date"), DataType::Utf8).alias("date")])?;
    if let Some(odd) = first_odd_date(&written.collect().await?) {
        return Err(Error::usage(
            format!(
                "{} has the date '{odd}', which is not a day",
                path.display()
            ),
            "its rows are days (YYYY-MM-DD): a time, a time zone or a number there would move \
             rows to other days in the merge; write its dates as days, or export to another file",
        ));
    }
    // CSV is read again with this export's types, so that old and new rows are one table. The
    // file's columns may be in another order (the metrics listed otherwise in a command): they
    // are read in theirs, and taken by name.
    let old = match format {
        Format::Parquet => old,
        _ => {
            let plain = output::plain_schema(&schema);
            let in_file = found.iter().map(|name| {
                let field = plain.field_with_name(name);
                field.expect("a column of the export").clone()
            });
            let in_file = Schema::new(in_file.collect::<Vec<_>>());
            ctx.read_csv(file.as_str(), csv().schema(&in_file)).await?
        }
    };
    // A count written back as a float (pandas, after a NaN) must be whole: 8.7 was cut to 8.
    let found_types = old.schema().clone();
    for field in schema
        .fields()
        .iter()
        .filter(|f| f.data_type().is_integer())
    {
        let written = found_types.field_with_unqualified_name(field.name())?;
        if !written.data_type().is_floating() {
            continue;
        }
        let value = ident(field.name());
        let whole = cast(cast(value.clone(), DataType::Int64), DataType::Float64);
        let broken = old
            .clone()
            .filter(whole.not_eq(cast(value, DataType::Float64)))?;
        if broken.count().await? > 0 {
            return Err(Error::usage(
                format!(
                    "{} has {} values that are not whole",
                    path.display(),
                    field.name()
                ),
                "counts are whole numbers: mend them, or export to another file",
            ));
        }
    }
    // Each column as this export types it: a Parquet file written back by another tool (dates
    // as date64 or timestamps, counts as int32) would otherwise retype the merged file.
    let typed = (schema.fields().iter())
        .map(|f| cast(ident(f.name()), f.data_type().clone()).alias(f.name()));
    let old = old.select(typed.collect::<Vec<_>>())?;
    // A row of no day (a total someone added, a date lost on the way) would be dropped by the
    // merge: it is named instead.
    let undated = old.clone().filter(col("date").is_null())?.count().await?;
    if undated > 0 {
        return Err(Error::usage(
            format!("{} has {undated} row(s) with no date", path.display()),
            "its rows are days, and the merge would drop those: remove them, or export to another \
             file",
        ));
    }
    ctx.register_table("old", old.into_view())?;
    Ok(())
}
