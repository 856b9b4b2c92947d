//! An Excel workbook: a sheet per metric, a row per date (per user and date for user-days), with
//! typed cells — dates as dates (`yyyy-mm-dd`), counts and ratios as numbers. The rows of other
//! days are read back from the workbook (calamine) and kept; the new workbook replaces the old
//! atomically.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::path::Path;

use calamine::{Data, DataType, Reader, Xlsx};
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType as Arrow, Date32Type, Float64Type, Int64Type, UInt64Type,
};
use datafusion::prelude::SessionContext;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::output;
use crate::{Error, Result};

/// Rows a worksheet holds below its header.
const MAX_ROWS: usize = 1_048_575;

/// One cell as a workbook holds it.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Date(NaiveDate),
    Number(f64),
    Text(String),
    Empty,
}

struct Sheet {
    name: String,
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// Merges the metric tables `m0…` of `ctx` (one sheet each, named by `names`) into `path`.
/// Returns the rows of its sheet afterwards, or of several sheets how many dates they hold.
pub async fn write(
    ctx: &SessionContext,
    path: &Path,
    names: &[&str],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<u64> {
    let mut sheets = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let table = ctx.table(format!("m{i}").as_str()).await?;
        let header = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = table.collect().await?;
        sheets.push(Sheet {
            name: name.to_string(),
            header,
            rows: batches.iter().flat_map(rows_of).collect(),
        });
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || save(&path, sheets, (from, to)))
        .await
        .expect("the workbook writer panicked")
}

fn rows_of(batch: &RecordBatch) -> Vec<Vec<Cell>> {
    (0..batch.num_rows())
        .map(|row| batch.columns().iter().map(|c| cell(c, row)).collect())
        .collect()
}

fn cell(column: &ArrayRef, row: usize) -> Cell {
    if column.is_null(row) {
        return Cell::Empty;
    }
    match column.data_type() {
        Arrow::Date32 => column
            .as_primitive::<Date32Type>()
            .value_as_date(row)
            .map_or(Cell::Empty, Cell::Date),
        // Excel numbers are doubles: a 64-bit id beyond 2^53 is kept exact as text.
        Arrow::Int64 if column.as_primitive::<Int64Type>().value(row).unsigned_abs() > 1 << 53 => {
            Cell::Text(column.as_primitive::<Int64Type>().value(row).to_string())
        }
        Arrow::UInt64 if column.as_primitive::<UInt64Type>().value(row) > 1 << 53 => {
            Cell::Text(column.as_primitive::<UInt64Type>().value(row).to_string())
        }
        t if t.is_numeric() => {
            let value = datafusion::arrow::compute::cast(&column.slice(row, 1), &Arrow::Float64);
            match value {
                Ok(v) => Cell::Number(v.as_primitive::<Float64Type>().value(0)),
                Err(_) => Cell::Empty,
            }
        }
        _ => Cell::Text(
            datafusion::arrow::util::display::array_value_to_string(column, row)
                .unwrap_or_default(),
        ),
    }
}

fn failed(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Sink {
        dest: path.display().to_string(),
        detail: detail.to_string(),
    }
}

fn save(path: &Path, mut sheets: Vec<Sheet>, (from, to): (NaiveDate, NaiveDate)) -> Result<u64> {
    if super::holds_rows(path) {
        keep_other_days(path, &mut sheets, (from, to))?;
    }
    if let Some(sheet) = sheets.iter().find(|s| s.rows.len() > MAX_ROWS) {
        return Err(Error::usage(
            format!(
                "{} would have {} rows in sheet '{}', and a worksheet holds {MAX_ROWS}",
                path.display(),
                sheet.rows.len(),
                sheet.name
            ),
            "export to a .parquet or .csv file, or fewer days",
        ));
    }
    for sheet in &mut sheets {
        sheet.rows.sort_by(|a, b| compare(a, b));
    }
    let target = output::Replacement::new(path);
    workbook(&sheets)
        .and_then(|mut book| book.save(&target.temp))
        .map_err(|e| failed(path, e))?;
    target
        .commit()
        .map_err(|e| Error::io("cannot write the workbook", path, e))?;
    // A sheet's rows (user-days: a row per user and date); of several sheets, the dates they
    // hold, as a file of a row per date has them.
    if let [sheet] = sheets.as_slice() {
        return Ok(sheet.rows.len() as u64);
    }
    let dates: std::collections::BTreeSet<NaiveDate> = (sheets.iter())
        .flat_map(|s| &s.rows)
        .flat_map(|row| {
            row.iter().find_map(|c| match c {
                Cell::Date(d) => Some(*d),
                _ => None,
            })
        })
        .collect();
    Ok(dates.len() as u64)
}

/// Adds to each sheet the workbook's rows of days this export does not replace. The workbook
/// must have this export's sheets and columns.
fn keep_other_days(
    path: &Path,
    sheets: &mut [Sheet],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<()> {
    let mut book: Xlsx<_> = calamine::open_workbook(path).map_err(|e| {
        Error::usage(
            format!(
                "cannot merge this export into {}: it is not a workbook dau can read ({e})",
                path.display()
            ),
            "move it away, or export to another file",
        )
    })?;
    let found = book.sheet_names();
    let wanted: Vec<String> = sheets.iter().map(|s| s.name.clone()).collect();
    // In any order: sheets someone dragged around, or metrics listed in another order, are the
    // same sheets (written back in this export's order).
    let sorted = |names: &[String]| {
        let mut names = names.to_vec();
        names.sort();
        names
    };
    if sorted(&found) != sorted(&wanted) {
        return Err(Error::usage(
            format!(
                "{} has the sheets {}, and this export writes {}",
                path.display(),
                found.join(","),
                wanted.join(",")
            ),
            super::periods_hint(&found, &wanted, "workbook").unwrap_or_else(|| {
                "export these metrics to another workbook, or move this one away".into()
            }),
        ));
    }
    for sheet in sheets {
        let range = book
            .worksheet_range(&sheet.name)
            .map_err(|e| failed(path, e))?;
        let mut rows = range.rows();
        let header: Vec<String> = rows
            .next()
            .unwrap_or_default()
            .iter()
            .map(|c| c.to_string())
            .collect();
        let place = format!("{} sheet {}", path.display(), sheet.name);
        let schema_names = sheet.header.clone();
        if header != schema_names {
            return Err(Error::usage(
                format!(
                    "{place} has the columns {}, and this export writes {}",
                    header.join(","),
                    schema_names.join(",")
                ),
                "export these metrics to another workbook, or move this one away",
            ));
        }
        let date = sheet
            .header
            .iter()
            .position(|h| h == "date")
            .expect("a date column");
        let replaced: BTreeSet<NaiveDate> = sheet
            .rows
            .iter()
            .filter_map(|r| match &r[date] {
                Cell::Date(d) => Some(*d),
                _ => None,
            })
            .collect();
        // A formula saved without its value (openpyxl and pandas save them so; Excel saves the
        // value too) reads as an empty cell: a delivered number was written back empty, and a
        // total row of formulas was dropped.
        let formulas = (book.worksheet_formula(&sheet.name)).map_err(|e| failed(path, e))?;
        let (top, left) = range.start().unwrap_or((0, 0));
        for (row, line) in rows.zip(2..) {
            let unsaved = (row.iter().enumerate())
                .filter(|(_, value)| **value == Data::Empty)
                .find_map(|(column, _)| {
                    let at = (top + line - 1, left + column as u32);
                    formulas.get_value(at).filter(|f| !f.is_empty())
                });
            if let Some(formula) = unsaved {
                return Err(Error::usage(
                    format!(
                        "{place} row {line} has the formula ={formula} with no value saved: \
                         this export would write that cell back empty"
                    ),
                    "open and save the workbook in Excel or LibreOffice (they save the values), \
                     or write the value instead, or export to another workbook",
                ));
            }
            let mut cells: Vec<Cell> = row.iter().map(read).collect();
            // A date typed as text is that date; a row of no day (a total, a note) is not
            // dropped in silence.
            let day = match cells.get(date) {
                Some(Cell::Date(d)) => *d,
                Some(Cell::Text(t)) if let Ok(d) = t.parse() => d,
                _ if cells.iter().all(|c| *c == Cell::Empty) => continue,
                other => {
                    let found = match other {
                        Some(Cell::Number(n)) => n.to_string(),
                        Some(Cell::Text(t)) => format!("'{t}'"),
                        _ => "nothing".to_string(),
                    };
                    return Err(Error::usage(
                        format!(
                            "{place} row {line} has {found} in the column date: its rows are \
                             days, and this export would drop that row"
                        ),
                        "move that row to another workbook (or give it a date), or export to \
                         another workbook",
                    ));
                }
            };
            cells[date] = Cell::Date(day);
            if !(from..=to).contains(&day) && !replaced.contains(&day) {
                sheet.rows.push(cells);
            }
        }
    }
    Ok(())
}

/// A cell read back from a workbook.
fn read(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::Int(n) => Cell::Number(*n as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::String(s) => Cell::Text(s.clone()),
        other => match other.as_date() {
            Some(d) => Cell::Date(d),
            None => Cell::Text(other.to_string()),
        },
    }
}

/// By the first column that tells rows apart: the date, then the rest in order.
fn compare(a: &[Cell], b: &[Cell]) -> Ordering {
    let date_first = |row: &[Cell]| -> Vec<Cell> {
        let mut row = row.to_vec();
        if let Some(i) = row.iter().position(|c| matches!(c, Cell::Date(_))) {
            let date = row.remove(i);
            row.insert(0, date);
        }
        row
    };
    let (a, b) = (date_first(a), date_first(b));
    for (x, y) in a.iter().zip(&b) {
        // Cells of two kinds (ids as numbers and as text, where a number would not be exact;
        // an empty id) by kind: a total order, which sorting needs (it panicked without one).
        let kind = |c: &Cell| match c {
            Cell::Empty => 0,
            Cell::Number(_) => 1,
            Cell::Text(_) => 2,
            Cell::Date(_) => 3,
        };
        let order = match (x, y) {
            (Cell::Date(x), Cell::Date(y)) => x.cmp(y),
            (Cell::Number(x), Cell::Number(y)) => x.total_cmp(y),
            (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
            (x, y) => kind(x).cmp(&kind(y)),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

fn workbook(sheets: &[Sheet]) -> std::result::Result<Workbook, XlsxError> {
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let day = Format::new().set_num_format("yyyy-mm-dd");
    for sheet in sheets {
        let page = book.add_worksheet();
        page.set_name(&sheet.name)?;
        for (c, name) in sheet.header.iter().enumerate() {
            page.write_string_with_format(0, c as u16, name, &bold)?;
        }
        for (r, row) in sheet.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, value) in row.iter().enumerate() {
                let c = c as u16;
                match value {
                    Cell::Date(d) => page.write_datetime_with_format(r, c, d, &day)?,
                    Cell::Number(n) => page.write_number(r, c, *n)?,
                    Cell::Text(t) => page.write_string(r, c, t)?,
                    Cell::Empty => page,
                };
            }
        }
        page.set_freeze_panes(1, 0)?;
        page.autofit();
    }
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows are in a total order, as sorting needs, whatever kinds of cells a column mixes (ids
    /// as numbers and as text, an empty id): a number and a text were equal, so that 1 = "x" =
    /// 2 but 1 < 2, and the sort of a workbook of such ids panicked.
    #[test]
    fn rows_of_mixed_cells_are_in_a_total_order() {
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let cells = [
            Cell::Empty,
            Cell::Number(-1.0),
            Cell::Number(2.0),
            Cell::Text("9007199254740993".into()),
            Cell::Text("a".into()),
            Cell::Date(day),
        ];
        let rows: Vec<Vec<Cell>> = (cells.iter())
            .map(|c| vec![Cell::Date(day), c.clone()])
            .collect();
        for a in &rows {
            for b in &rows {
                assert_eq!(compare(a, b), compare(b, a).reverse());
                for c in &rows {
                    if compare(a, b) != Ordering::Greater && compare(b, c) != Ordering::Greater {
                        assert_ne!(compare(a, c), Ordering::Greater);
                    }
                }
            }
        }
    }

    /// More rows than a worksheet holds: refused before anything is written (rust_xlsxwriter
    /// would fail only after building the whole workbook, as a write error).
    #[test]
    fn a_sheet_too_long_for_excel_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user_days.xlsx");
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        for (rows, fits) in [(MAX_ROWS, true), (MAX_ROWS + 1, false)] {
            let sheet = Sheet {
                name: "user-days".into(),
                header: vec!["date".into()],
                rows: vec![Vec::new(); rows],
            };
            let saved = save(&path, vec![sheet], (day, day));
            match fits {
                true => assert_eq!(saved.unwrap(), rows as u64),
                false => {
                    let error = saved.unwrap_err();
                    assert_eq!(error.exit_code(), 2, "{error}");
                    assert!(error.to_string().contains("1048576 rows"), "{error}");
                }
            }
            std::fs::remove_file(&path).ok();
        }
    }
}
