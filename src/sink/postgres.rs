//! A table in a PostgreSQL database: the exported days' rows deleted and inserted again in one
//! transaction, so a failed or killed export leaves the table as it was.
//!
//! The table, when absent, is made from the export's columns: `date` DATE, counts BIGINT, means
//! and ratios DOUBLE PRECISION, ids BIGINT or TEXT; the primary key is `date` (with the user id
//! for user-days). The connection is plain TCP or a Unix socket (no TLS).

use std::time::Duration;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, SchemaRef,
};
use datafusion::prelude::SessionContext;
use tokio_postgres::types::ToSql;

use super::{create_table, dates_of, quote};
use crate::{Error, Result};

/// Rows in one INSERT statement.
const ROWS_PER_INSERT: usize = 1000;

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn write(
    ctx: &SessionContext,
    url: &str,
    table: &str,
    schema: SchemaRef,
    key: &[&str],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<u64> {
    // The URL as the user may read it back: without a password.
    let shown = match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    };
    let failed = |e: tokio_postgres::Error| Error::Sink {
        dest: format!("{shown} table {table}"),
        detail: match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        },
    };
    let batches = ctx.table("new").await?.collect().await?;
    let mut config: tokio_postgres::Config = url.parse().map_err(failed)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (mut client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(failed)?;
    let connection = tokio::spawn(connection);

    let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
    let tx = client.transaction().await.map_err(failed)?;
    let create = create_table(table, &schema, &key, sql_type);
    tx.batch_execute(&create).await.map_err(failed)?;
    let found: Vec<String> = tx
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .map_err(failed)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    super::same_columns(&format!("table {table} in {shown}"), &found, &schema)?;

    let quoted = quote(table);
    tx.execute(
        &format!("DELETE FROM {quoted} WHERE date BETWEEN $1 AND $2"),
        &[&from, &to],
    )
    .await
    .map_err(failed)?;
    let dates: Vec<NaiveDate> = dates_of(&batches).into_iter().collect();
    tx.execute(
        &format!("DELETE FROM {quoted} WHERE date = ANY($1)"),
        &[&dates],
    )
    .await
    .map_err(failed)?;
    // Many rows a statement: a night of user-days is millions of rows.
    let width = schema.fields().len();
    for batch in &batches {
        let mut start = 0;
        while start < batch.num_rows() {
            let rows = (batch.num_rows() - start).min(ROWS_PER_INSERT);
            let cells: Vec<Cell> = (start..start + rows)
                .flat_map(|row| batch.columns().iter().map(move |c| cell(c, row)))
                .collect();
            let params: Vec<&(dyn ToSql + Sync)> = cells.iter().map(Cell::as_sql).collect();
            let tuples: Vec<String> = (0..rows)
                .map(|r| {
                    let places: Vec<String> =
                        (1..=width).map(|c| format!("${}", r * width + c)).collect();
                    format!("({})", places.join(", "))
                })
                .collect();
            let insert = format!("INSERT INTO {quoted} VALUES {}", tuples.join(", "));
            tx.execute(&insert, &params).await.map_err(failed)?;
            start += rows;
        }
    }
    let rows: i64 = tx
        .query_one(&format!("SELECT COUNT(*) FROM {quoted}"), &[])
        .await
        .map_err(failed)?
        .get(0);
    tx.commit().await.map_err(failed)?;
    drop(client);
    let _ = connection.await;
    Ok(rows as u64)
}

fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Date32 => "DATE",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "DOUBLE PRECISION",
        t if t.is_integer() => "BIGINT",
        _ => "TEXT",
    }
}

/// One cell, typed as its column is in the table.
enum Cell {
    Date(Option<NaiveDate>),
    Integer(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl Cell {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Date(v) => v,
            Cell::Integer(v) => v,
            Cell::Real(v) => v,
            Cell::Text(v) => v,
        }
    }
}

fn cell(column: &ArrayRef, row: usize) -> Cell {
    let valid = column.is_valid(row);
    match column.data_type() {
        DataType::Date32 => Cell::Date(
            valid
                .then(|| column.as_primitive::<Date32Type>().value_as_date(row))
                .flatten(),
        ),
        DataType::Int64 => {
            Cell::Integer(valid.then(|| column.as_primitive::<Int64Type>().value(row)))
        }
        DataType::Int32 => {
            Cell::Integer(valid.then(|| column.as_primitive::<Int32Type>().value(row).into()))
        }
        DataType::Float64 => {
            Cell::Real(valid.then(|| column.as_primitive::<Float64Type>().value(row)))
        }
        _ => Cell::Text(valid.then(|| {
            datafusion::arrow::util::display::array_value_to_string(column, row).unwrap_or_default()
        })),
    }
}
