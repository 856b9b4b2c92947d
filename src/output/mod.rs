//! Output formats: a result stream written as a table, CSV, JSON, NDJSON or Parquet to any writer.
//!
//! Column names and types are stable: `date` is a DATE (YYYY-MM-DD in text), counts are 64-bit
//! integers, and strings are written as plain UTF-8 (never Arrow's view types) so that pandas,
//! polars and DuckDB load every file as it is.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::ValueEnum;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::{csv, json};
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people
    Table,
    /// CSV with a header; NULL is an empty field
    Csv,
    /// One JSON array of objects
    Json,
    /// One JSON object per line
    Ndjson,
    /// Parquet (needs --output)
    Parquet,
}

impl Format {
    /// Its name, as `--format` takes it.
    pub fn name(self) -> String {
        (self.to_possible_value()).map_or_else(String::new, |v| v.get_name().to_string())
    }

    /// `--format` as given, else from the `--output` file's extension (a table for `.txt` or
    /// none); an extension of another format (`out.xlsx`, `out.tsv`) is refused rather than
    /// filled with a table.
    pub fn resolve(format: Option<Format>, output: Option<&Path>) -> Result<Format> {
        if let Some(path) = output.map(Path::to_string_lossy)
            && crate::lake::storage::is_bucket(&path)
        {
            return Err(Error::usage(
                format!("cannot write {path}: query and sql results go to local files"),
                "write a local file, or deliver metrics to a bucket with `dau export METRIC… \
                 --output gs://BUCKET/daily.csv`",
            ));
        }
        if let Some(path) = output.filter(|p| p.is_dir()) {
            return Err(Error::usage(
                format!("cannot write into {}: it is a folder", path.display()),
                "name a file in it, such as --output DIR/dau.csv",
            ));
        }
        let format = match (format, output) {
            // A file named for another format is not written in this one (a CSV in x.parquet).
            (Some(format), Some(path)) => match Format::of_file(path) {
                Ok(named) if named != format && named != Format::Table => {
                    return Err(Error::usage(
                        format!(
                            "--format {}, but {} is named for {}",
                            format.name(),
                            path.display(),
                            named.name(),
                        ),
                        "leave --format out (the file's extension sets it), or name the file for \
                         its format",
                    ));
                }
                _ => format,
            },
            (Some(format), None) => format,
            (None, Some(path)) => Format::of_file(path)?,
            (None, None) => Format::Table,
        };
        if format == Format::Parquet && output.is_none() {
            return Err(Error::usage(
                "parquet output needs a file",
                "add --output FILE.parquet, or pick --format csv for stdout",
            ));
        }
        Ok(format)
    }

    /// The format a file's extension names: a table for `.txt` or none, ndjson for `.jsonl`; an
    /// extension of another format is refused.
    fn of_file(path: &Path) -> Result<Format> {
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let Some(e) = extension.filter(|e| e != "txt") else {
            return Ok(Format::Table);
        };
        match Format::from_str(&e, true) {
            _ if e == "jsonl" => Ok(Format::Ndjson),
            Ok(format) if format != Format::Table => Ok(format),
            _ => {
                let hint = match e.as_str() {
                    "xlsx" => {
                        "`dau export METRIC… --output FILE.xlsx` writes a workbook; or pick --format"
                    }
                    "db" | "sqlite" | "sqlite3" => {
                        "`dau export METRIC… --output FILE.db` writes into an SQLite database; or \
                         pick --format"
                    }
                    _ => {
                        "name it .csv, .json, .ndjson, .parquet or .txt (a table), or pick --format"
                    }
                };
                Err(Error::usage(
                    format!("cannot tell what to write into {} (.{e})", path.display()),
                    hint,
                ))
            }
        }
    }
}

/// Writes a result stream to `output` (atomically: a temp file, synced, renamed into place; its
/// folder made when missing) or to stdout. A device or a pipe (`/dev/null`, `/dev/stdout`,
/// `>(gzip > out.gz)`) is written into as it is, since a file renamed into its place would
/// replace it; through a symbolic link, the file it points to is replaced and the link stays.
/// Returns the number of rows written.
pub async fn write(
    stream: SendableRecordBatchStream,
    format: Format,
    output: Option<&Path>,
) -> Result<u64> {
    let Some(path) = output else {
        let out = BufWriter::new(std::io::stdout());
        return write_to(stream, format, out, Path::new("stdout")).await;
    };
    match destination(path)? {
        Destination::Stdout => {
            write_to(stream, format, BufWriter::new(std::io::stdout()), path).await
        }
        Destination::Stderr => {
            write_to(stream, format, BufWriter::new(std::io::stderr()), path).await
        }
        Destination::Device => {
            let out = std::fs::OpenOptions::new().write(true).open(path);
            let out = out.map_err(|e| Error::io("cannot open the output", path, e))?;
            write_to(stream, format, BufWriter::new(out), path).await
        }
        Destination::File(target, file) => {
            let rows = write_to(stream, format, BufWriter::new(file), path).await?;
            target
                .commit()
                .map_err(|e| Error::io("cannot write the output file", path, e))?;
            Ok(rows)
        }
    }
}

/// Fails now when [`write`] could not write to `path` (a folder, a folder that cannot be made,
/// no permission), so that a long query is not run for nothing. Makes the folder when missing.
pub fn writable(path: &Path) -> Result<()> {
    destination(path).map(drop)
}

/// Where [`write`] puts rows for `path`.
enum Destination {
    /// This process's own stdout or stderr (`-o /dev/stdout >> log`): written through, as a
    /// shell's redirection left it. Opened anew or replaced, the file behind it would lose what
    /// it held.
    Stdout,
    Stderr,
    /// A device or a pipe, written into as it is (opened only to write: a pipe opened and closed
    /// would end its reader's input).
    Device,
    /// A file, written under a temporary name (made now) and renamed into place.
    File(Replacement, std::fs::File),
}

/// Where [`write`] puts rows for `path`, or why it cannot: a folder, or a folder or file that
/// cannot be made.
fn destination(path: &Path) -> Result<Destination> {
    let metadata = std::fs::metadata(path);
    match descriptor(path) {
        Some(1) => return Ok(Destination::Stdout),
        Some(2) => return Ok(Destination::Stderr),
        Some(_) if metadata.as_ref().is_ok_and(|m| m.is_file()) => {
            return Err(Error::usage(
                format!(
                    "cannot write into {}: a file this process has open",
                    path.display()
                ),
                "write to stdout (no --output) and redirect it",
            ));
        }
        _ => {}
    }
    match &metadata {
        Ok(m) if m.is_dir() => {
            return Err(Error::usage(
                format!("cannot write into {}: it is a folder", path.display()),
                format!(
                    "name a file in it, such as {}",
                    path.join("out.csv").display()
                ),
            ));
        }
        Ok(m) if !m.is_file() => return Ok(Destination::Device),
        _ => {}
    }
    let target = Replacement::new(path);
    make_folder_of(&target.temp, "cannot make the output folder")?;
    let file = std::fs::File::create(&target.temp)
        .map_err(|e| Error::io("cannot create the output file", path, e))?;
    Ok(Destination::File(target, file))
}

/// The descriptor of this process that `path` names, through any links: `/dev/stdout` (1),
/// `/dev/stderr` (2), `/dev/fd/N` or `/proc/self/fd/N`.
fn descriptor(path: &Path) -> Option<u32> {
    link_chain(path)
        .iter()
        .find_map(|path| match path.to_str()? {
            "/dev/stdout" => Some(1),
            "/dev/stderr" => Some(2),
            named => (named.strip_prefix("/dev/fd/"))
                .or_else(|| named.strip_prefix("/proc/self/fd/"))?
                .parse()
                .ok(),
        })
}

/// Makes the folder that `path` goes in, when it is missing (`what` says what failed).
pub fn make_folder_of(path: &Path, what: &'static str) -> Result<()> {
    match path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        Some(folder) => std::fs::create_dir_all(folder).map_err(|e| Error::io(what, folder, e)),
        None => Ok(()),
    }
}

/// A file written under a temporary name beside `path`, then synced and renamed into its place,
/// so that a crash or an error leaves the old file or the new one, never part of one. Through a
/// symbolic link, the file it points to is replaced and the link stays. Dropped before
/// [`Replacement::commit`], the temporary file is removed.
pub struct Replacement {
    pub temp: PathBuf,
    path: PathBuf,
}

impl Replacement {
    pub fn new(path: &Path) -> Replacement {
        let path = through_links(path);
        Replacement {
            temp: temp_beside(&path),
            path,
        }
    }

    /// Puts the temporary file, on disk first, in the place of the old one, with the old one's
    /// permissions (a report made readable to its group only stays so).
    pub fn commit(self) -> std::io::Result<()> {
        if let Ok(old) = std::fs::metadata(&self.path) {
            std::fs::set_permissions(&self.temp, old.permissions())?;
        }
        std::fs::File::open(&self.temp)?.sync_all()?;
        std::fs::rename(&self.temp, &self.path)
    }
}

impl Drop for Replacement {
    fn drop(&mut self) {
        // Nothing is left there once committed.
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// The file that `path` names through any symbolic links, there or not yet, as a shell's `>`
/// follows them.
pub fn through_links(path: &Path) -> PathBuf {
    link_chain(path).pop().expect("the path itself")
}

/// `path`, then each path its symbolic links lead to in turn (at most 40 of them).
fn link_chain(path: &Path) -> Vec<PathBuf> {
    let mut chain = vec![path.to_path_buf()];
    while chain.len() <= 40 {
        let last = chain.last().expect("the path itself");
        let Ok(to) = std::fs::read_link(last) else {
            break;
        };
        chain.push(last.parent().unwrap_or(Path::new("")).join(to));
    }
    chain
}

/// Removes what killed runs left half-written in `dir` (best effort): hidden temporary files
/// ([`temp_beside`]) for names that start with `name`, an hour old or more (a file being
/// written lives beside its final name for less).
pub fn remove_stale(dir: &Path, name: &str) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(3600);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if !(file.starts_with(&prefix) && file.ends_with(".tmp")) {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified());
        if modified.is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= STALE)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A hidden name beside `path`, of this process, for a file that will be renamed to `path`.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Prints a line of text for people on stdout; a closed pipe is reported as such.
pub fn say(text: &str) -> Result<()> {
    writeln!(std::io::stdout(), "{text}")
        .map_err(|e| Error::io("cannot write the output", "stdout", e))
}

async fn write_to<W: Write + Send>(
    mut stream: SendableRecordBatchStream,
    format: Format,
    out: W,
    path: &Path,
) -> Result<u64> {
    let io = |e: std::io::Error| Error::io("cannot write the output", path, e);
    let failed = Arc::new(Mutex::new(None));
    let out = Watched {
        inner: out,
        failed: failed.clone(),
    };
    let schema = plain_schema(&stream.schema());
    // Two columns of one name (`SELECT *` of a join) make a JSON object keep one of them, and a
    // Parquet file other readers refuse: named, for an AS to tell them apart.
    let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
    if format != Format::Table
        && let Some(twice) = names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].contains(n))
    {
        return Err(Error::usage(
            format!("two columns are named {}", twice.1),
            "name them apart with AS (SELECT d.date AS day, o.date AS opens_day, …)",
        ));
    }
    // CSV has no lists nor structs: said before the header goes out.
    if let (Format::Csv, Some(nested)) = (
        format,
        schema.fields().iter().find(|f| f.data_type().is_nested()),
    ) {
        return Err(Error::usage(
            format!(
                "column {} is a {}, which CSV cannot hold",
                nested.name(),
                nested.data_type()
            ),
            "use --format json, ndjson or parquet, or select its parts",
        ));
    }
    let written: Result<u64, DataFusionError> = async {
        let mut sink = Sink::new(format, schema.clone(), out)?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            rows += sink.write(&plain_batch(&batch?, &schema)?)? as u64;
            if sink.is_full() {
                // A table shows what a person reads; the rest of the query is not run.
                break;
            }
        }
        sink.finish()?;
        Ok(rows)
    }
    .await;
    // A closed pipe, a full disk: the writer's own error, not the text Arrow made of it (exit 3,
    // not a query's error or an unreadable old file's).
    if let Some((kind, why)) = failed.lock().expect("write error").take() {
        return Err(io(std::io::Error::new(kind, why)));
    }
    written.map_err(|e| match e {
        DataFusionError::ArrowError(e, _) => match *e {
            ArrowError::IoError(_, source) => io(source),
            other => Error::Query(other.into()),
        },
        DataFusionError::IoError(source) => io(source),
        other => Error::from(other),
    })
}

/// A writer that remembers its first error (a closed pipe, a full disk), which Arrow's writers
/// report only as text.
struct Watched<W> {
    inner: W,
    failed: Arc<Mutex<Option<(std::io::ErrorKind, String)>>>,
}

impl<W: Write> Watched<W> {
    fn watch<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            let mut failed = self.failed.lock().expect("write error");
            failed.get_or_insert_with(|| (e.kind(), e.to_string()));
        }
        result
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

/// Rows a table shows at most: a table is for people, and is built whole in memory (a year of
/// user-days of a big lake would take gigabytes). The other formats write every row.
const TABLE_ROWS: usize = 10_000;

/// A format's writer, fed batch by batch.
enum Sink<W: Write + Send> {
    /// The rows to show (at most [`TABLE_ROWS`]), and whether more were left out.
    Table(Vec<RecordBatch>, SchemaRef, W, bool),
    Csv(csv::Writer<W>),
    Json(json::ArrayWriter<W>),
    Ndjson(json::LineDelimitedWriter<W>),
    Parquet(ArrowWriter<W>),
}

impl<W: Write + Send> Sink<W> {
    fn new(format: Format, schema: SchemaRef, out: W) -> Result<Self, ArrowError> {
        Ok(match format {
            Format::Table => Sink::Table(Vec::new(), schema, out, false),
            Format::Csv => {
                let mut writer = csv::WriterBuilder::new().with_header(true).build(out);
                // The header even when there are no rows.
                writer.write(&RecordBatch::new_empty(schema))?;
                Sink::Csv(writer)
            }
            Format::Json => Sink::Json(
                json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, json::writer::JsonArray>(out),
            ),
            Format::Ndjson => Sink::Ndjson(
                json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, json::writer::LineDelimited>(out),
            ),
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                Sink::Parquet(ArrowWriter::try_new(out, schema, Some(props))?)
            }
        })
    }

    /// Writes the batch, or as much of it as a table shows; returns the rows taken.
    fn write(&mut self, batch: &RecordBatch) -> Result<usize, ArrowError> {
        match self {
            Sink::Table(batches, _, _, more) => {
                let shown: usize = batches.iter().map(RecordBatch::num_rows).sum();
                let room = TABLE_ROWS - shown;
                *more = batch.num_rows() > room;
                batches.push(batch.slice(0, batch.num_rows().min(room)));
                return Ok(batch.num_rows().min(room));
            }
            Sink::Csv(w) => w.write(batch)?,
            Sink::Json(w) => w.write(batch)?,
            Sink::Ndjson(w) => w.write(batch)?,
            Sink::Parquet(w) => w.write(batch)?,
        }
        Ok(batch.num_rows())
    }

    /// True once a table holds all the rows it shows.
    fn is_full(&self) -> bool {
        matches!(self, Sink::Table(_, _, _, true))
    }

    fn finish(self) -> Result<(), ArrowError> {
        let mut out = match self {
            Sink::Table(batches, schema, mut out, more) => {
                writeln!(out, "{}", table(&schema, &batches)?)?;
                if more {
                    writeln!(
                        out,
                        "(the first {TABLE_ROWS} rows; --format csv, json, ndjson or parquet \
                         gives them all, as \\format csv or \\o FILE.csv do in the dau sql REPL)"
                    )?;
                }
                out
            }
            Sink::Csv(w) => w.into_inner(),
            Sink::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                writeln!(out)?;
                out
            }
            Sink::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Sink::Parquet(w) => w
                .into_inner()
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?,
        };
        out.flush()?;
        Ok(())
    }
}

/// The results as a table for people: NULL spelled out, numbers right-aligned, fractions to 4 places.
fn table(schema: &Schema, batches: &[RecordBatch]) -> Result<Table, ArrowError> {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(schema.fields().iter().map(|f| f.name()));
    let options = FormatOptions::default().with_null("NULL");
    for batch in batches {
        let columns: Vec<Vec<String>> = batch
            .columns()
            .iter()
            .map(|column| cells(column, &options))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            table.add_row(columns.iter().map(|c| c[row].clone()));
        }
    }
    for (i, field) in schema.fields().iter().enumerate() {
        if field.data_type().is_numeric()
            && let Some(column) = table.column_mut(i)
        {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    Ok(table)
}

fn cells(column: &ArrayRef, options: &FormatOptions) -> Result<Vec<String>, ArrowError> {
    if let Some(floats) = column.as_primitive_opt::<Float64Type>() {
        return Ok(floats
            .iter()
            .map(|v| v.map_or("NULL".to_string(), float))
            .collect());
    }
    let formatter = ArrayFormatter::try_new(column.as_ref(), options)?;
    Ok((0..column.len())
        .map(|i| formatter.value(i).to_string())
        .collect())
}

/// A float on the screen: four decimals (a mean, a stickiness), unless that would show a value
/// as 0.0000 or with more than 15 digits before the point: then in scientific notation.
fn float(v: f64) -> String {
    match v.abs() {
        a if a == 0.0 || (1e-4..1e15).contains(&a) || !a.is_finite() => format!("{v:.4}"),
        _ => format!("{v:e}"),
    }
}

/// The schema with Arrow's view and large string types as plain UTF-8.
pub fn plain_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(plain_type(f.data_type())))
        .collect();
    Arc::new(Schema::new(fields))
}

/// The type of a column's values, however stored: a dictionary's values, or view and large text
/// and bytes as plain (a pandas categorical, Polars' large strings).
pub fn value_type(t: &DataType) -> DataType {
    match t {
        DataType::Dictionary(_, values) => plain_type(values),
        t => plain_type(t),
    }
}

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        other => other.clone(),
    }
}

fn plain_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit format and a file named for another are refused (CSV went into x.parquet);
    /// a file named for no format (.txt, none) takes any.
    #[test]
    fn a_format_and_a_file_named_for_another_are_refused() {
        let of = |format, name: &str| Format::resolve(Some(format), Some(Path::new(name)));
        let error = of(Format::Csv, "x.parquet").unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error
                .to_string()
                .contains("--format csv, but x.parquet is named for parquet"),
            "{error}"
        );
        assert!(of(Format::Json, "x.csv").is_err());
        assert_eq!(of(Format::Ndjson, "x.jsonl").unwrap(), Format::Ndjson);
        assert_eq!(of(Format::Csv, "x.txt").unwrap(), Format::Csv);
        assert_eq!(of(Format::Json, "x").unwrap(), Format::Json);
    }

    /// A file's extension names its format; one of a file only `dau export` writes says so.
    #[test]
    fn extensions_name_formats() {
        let of = |name: &str| Format::of_file(Path::new(name)).map_err(|e| e.to_string());
        assert_eq!(of("a.CSV"), Ok(Format::Csv));
        assert_eq!(of("a.jsonl"), Ok(Format::Ndjson));
        assert_eq!(of("a.txt"), Ok(Format::Table));
        assert_eq!(of("a"), Ok(Format::Table));
        for (name, says) in [
            ("a.xlsx", "--output FILE.xlsx` writes a workbook"),
            (
                "a.sqlite3",
                "--output FILE.db` writes into an SQLite database",
            ),
            ("a.tsv", "name it .csv, .json, .ndjson, .parquet or .txt"),
        ] {
            let error = of(name).unwrap_err();
            assert!(error.contains(says), "{name}: {error}");
        }
    }

    /// No value but 0 shows as 0.0000, and no huge one as a row of digits.
    #[test]
    fn floats_on_the_screen() {
        let cases = [
            (0.0, "0.0000"),
            (1.0 / 3.0, "0.3333"),
            (2.5, "2.5000"),
            (0.00001234, "1.234e-5"),
            (-0.00005, "-5e-5"),
            (1e20, "1e20"),
            (123456789012345.0, "123456789012345.0000"),
            (f64::NAN, "NaN"),
        ];
        for (v, shown) in cases {
            assert_eq!(float(v), shown, "{v}");
        }
    }

    /// A table shows at most TABLE_ROWS rows, says so, and stops reading; other formats write
    /// every row.
    #[tokio::test]
    async fn a_table_shows_its_first_rows_and_says_there_are_more() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let stream = |rows: i64| {
            let batches: Vec<_> = (0..rows)
                .step_by(4096)
                .map(|start| {
                    let column = Int64Array::from_iter_values(start..(start + 4096).min(rows));
                    Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(column)]).unwrap())
                })
                .collect();
            Box::pin(RecordBatchStreamAdapter::new(
                schema.clone(),
                futures::stream::iter(batches),
            )) as SendableRecordBatchStream
        };
        let limit = TABLE_ROWS as i64;
        for (rows, format, lines, taken) in [
            (limit, Format::Table, limit + 4, limit),
            (limit + 1, Format::Table, limit + 5, limit),
            (limit * 3, Format::Table, limit + 5, limit),
            (limit * 3, Format::Csv, limit * 3 + 1, limit * 3),
        ] {
            let mut out = Vec::new();
            let written = write_to(stream(rows), format, &mut out, Path::new("x")).await;
            let text = String::from_utf8(out).unwrap();
            assert_eq!(written.unwrap(), taken as u64, "{rows} {format:?}");
            assert_eq!(text.lines().count() as i64, lines, "{rows} {format:?}");
            let more = text.contains("(the first 10000 rows;");
            assert_eq!(more, format == Format::Table && rows > limit, "{rows}");
        }
    }

    #[test]
    fn format_from_extension() {
        let f = |p: &str| Format::resolve(None, Some(Path::new(p))).unwrap();
        assert_eq!(f("out.csv"), Format::Csv);
        assert_eq!(f("out.PARQUET"), Format::Parquet);
        assert_eq!(f("out.ndjson"), Format::Ndjson);
        assert_eq!(f("out.txt"), Format::Table);
        assert_eq!(f("out"), Format::Table);
        assert_eq!(f("out.jsonl"), Format::Ndjson);
        for other in ["out.xlsx", "out.tsv", "out.table", "gs://bucket/out.csv"] {
            let refused = Format::resolve(None, Some(Path::new(other))).unwrap_err();
            assert_eq!(refused.exit_code(), 2, "{other}");
            assert!(refused.to_string().contains(other), "{refused}");
        }
        assert_eq!(
            Format::resolve(Some(Format::Table), Some(Path::new("x.tsv"))).unwrap(),
            Format::Table
        );
        assert!(Format::resolve(Some(Format::Parquet), None).is_err());
    }
}
