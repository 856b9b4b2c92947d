//! A table in an SQLite database: the exported days' rows deleted and inserted again in one
//! transaction, so a failed export leaves the table as it was.
//!
//! The table, when absent, is made from the export's columns: `date` as TEXT (`YYYY-MM-DD`),
//! counts as INTEGER, means and ratios as REAL, ids as INTEGER or TEXT; the primary key is
//! `date` (with the user id for user-days).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, SchemaRef,
};
use datafusion::prelude::SessionContext;
use rusqlite::types::Value;

use super::{BUSY_TIMEOUT, column_list, create_table, dates_of, quote};
use crate::output;
use crate::{Error, Result};

pub async fn write(
    ctx: &SessionContext,
    path: &Path,
    table: &str,
    schema: SchemaRef,
    key: &[&str],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<u64> {
    let batches = ctx.table("new").await?.collect().await?;
    let job = Job {
        path: path.to_path_buf(),
        table: table.to_string(),
        schema,
        key: key.iter().map(|k| k.to_string()).collect(),
        days: (from, to),
    };
    tokio::task::spawn_blocking(move || job.run(&batches))
        .await
        .expect("the SQLite writer panicked")
}

struct Job {
    path: PathBuf,
    table: String,
    schema: SchemaRef,
    key: Vec<String>,
    days: (NaiveDate, NaiveDate),
}

impl Job {
    fn failed(&self, e: rusqlite::Error) -> Error {
        Error::Sink {
            dest: format!("sqlite://{}?table={}", self.path.display(), self.table),
            detail: e.to_string(),
        }
    }

    fn run(&self, batches: &[RecordBatch]) -> Result<u64> {
        // As for files: a folder not yet made is made.
        output::make_folder_of(&self.path, "cannot make the output folder")?;
        let mut db = rusqlite::Connection::open(&self.path).map_err(|e| self.failed(e))?;
        // Exports into one database at once (a backfill run in parallel) take turns: each waits
        // for the write lock, taken at the start so that it is never upgraded midway.
        db.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.failed(e))?;
        let tx = db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.failed(e))?;
        let table = quote(&self.table);
        let create = create_table(&self.table, &self.schema, &self.key, sql_type);
        tx.execute_batch(&create).map_err(|e| self.failed(e))?;
        // A column fills itself with a default, as the rowid (INTEGER PRIMARY KEY), or as a
        // generated column (hidden 2 or 3).
        let found: Vec<(String, Option<String>, bool, String)> = tx
            .prepare(
                "SELECT name, dflt_value, (pk = 1 AND upper(type) = 'INTEGER') OR hidden IN (2, 3), \
                 upper(type) FROM pragma_table_xinfo(?1)",
            )
            .and_then(|mut s| {
                s.query_map([&self.table], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(|e| self.failed(e))?;
        // Days as the table keeps them: a TIMESTAMP or DATETIME column (pandas' to_sql makes
        // one) as `2024-06-04 00:00:00`, which its readers parse beside the rows before.
        let stamps = (found.iter()).any(|(name, _, _, kind)| {
            name == "date" && (kind.contains("TIMESTAMP") || kind.contains("DATETIME"))
        });
        // A default that is NULL (`DEFAULT NULL`, `DEFAULT (CAST(NULL AS TEXT))`: a constant,
        // as SQLite's defaults are) fills nothing: such a note column was emptied on every
        // export of its day.
        let not_null = |default: &str| {
            let sql = format!("SELECT ({default}) IS NOT NULL");
            tx.query_row(&sql, [], |r| r.get(0)).unwrap_or(true)
        };
        let found: Vec<(String, bool)> = (found.into_iter())
            .map(|(name, default, own, _)| {
                let fills = own || default.as_deref().is_some_and(not_null);
                (name, fills)
            })
            .collect();
        let place = format!("table {} in {}", self.table, self.path.display());
        super::table_columns(&place, &found, &self.schema)?;
        // Days kept as numbers (20240603 from pandas' integer dates, Julian days) are not found
        // by the text a day is deleted by: the day was in the table twice.
        let numbers: u64 = tx
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE typeof(date) IN ('integer', 'real')"),
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.failed(e))?;
        if numbers > 0 {
            return Err(Error::usage(
                format!("{place} holds {numbers} date(s) as numbers (such as 20240603)"),
                "dau keeps days as text (YYYY-MM-DD), and would not replace those: make them \
                 text, or export to another table",
            ));
        }

        // From the first day up to the day after the last, as text: a table made by hand may
        // hold its days as timestamps (`2024-06-04 00:00:00`, as pandas' to_sql writes them),
        // and the primary key's index still serves.
        let replace = |from: NaiveDate, to: NaiveDate| {
            let after = to.succ_opt().expect("a day after");
            tx.execute(
                &format!("DELETE FROM {table} WHERE date >= ?1 AND date < ?2"),
                [from.to_string(), after.to_string()],
            )
            .map_err(|e| self.failed(e))
        };
        replace(self.days.0, self.days.1)?;
        // The dates the new rows have (a calendar period may start before --from) go too.
        for d in dates_of(batches) {
            replace(d, d)?;
        }
        let places = vec!["?"; self.schema.fields().len()].join(", ");
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO {table} {} VALUES ({places})",
                column_list(&self.schema)
            ))
            .map_err(|e| self.failed(e))?;
        for batch in batches {
            for row in 0..batch.num_rows() {
                let values = batch.columns().iter().map(|c| value(c, row, stamps));
                insert
                    .execute(rusqlite::params_from_iter(values))
                    .map_err(|e| self.failed(e))?;
            }
        }
        drop(insert);
        // An unsigned id of 2^63 or more goes as text, which a numeric column (of a table made
        // otherwise) would round to a REAL: refused, nothing written.
        for field in self.schema.fields() {
            if field.data_type() != &DataType::UInt64 {
                continue;
            }
            let rounded: i64 = tx
                .query_row(
                    &format!(
                        "SELECT COUNT(*) FROM {table} WHERE typeof({}) = 'real'",
                        quote(field.name())
                    ),
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| self.failed(e))?;
            if rounded > 0 {
                return Err(Error::Sink {
                    dest: format!("sqlite://{}?table={}", self.path.display(), self.table),
                    detail: format!(
                        "its column {} is numeric, where SQLite rounds an unsigned id of 2^63 or \
                         more; make it TEXT, as dau makes it in a new table",
                        field.name()
                    ),
                });
            }
        }
        let rows: i64 = tx
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        Ok(rows as u64)
    }
}

fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "REAL",
        // SQLite's integers are signed 64-bit: an unsigned id of 2^63 or more is kept as text
        // (an INTEGER column would turn its digits into a rounded REAL).
        DataType::UInt64 => "TEXT",
        t if t.is_integer() => "INTEGER",
        _ => "TEXT",
    }
}

/// One cell as SQLite stores it; a day as text, at midnight for a table of `stamps`.
fn value(column: &ArrayRef, row: usize, stamps: bool) -> Value {
    if column.is_null(row) {
        return Value::Null;
    }
    match column.data_type() {
        DataType::Date32 => match column.as_primitive::<Date32Type>().value_as_date(row) {
            Some(d) if stamps => Value::Text(format!("{d} 00:00:00")),
            Some(d) => Value::Text(d.to_string()),
            None => Value::Null,
        },
        DataType::Int64 => Value::Integer(column.as_primitive::<Int64Type>().value(row)),
        DataType::Int32 => Value::Integer(column.as_primitive::<Int32Type>().value(row).into()),
        DataType::Float64 => Value::Real(column.as_primitive::<Float64Type>().value(row)),
        _ => {
            let text = datafusion::arrow::util::display::array_value_to_string(column, row);
            Value::Text(text.unwrap_or_default())
        }
    }
}
