//! Reading every file's Parquet footer before a query runs, and what it tells: rows, schema, NULL
//! user ids and the range of an in-file date column (from the footer's statistics). Unreadable
//! files, a missing user column, ids of the wrong type and dates that disagree with the partition
//! are found here, named, before any number is computed.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, UInt64Array};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options, max, min};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::cache::cache_manager::CachedFileMetadataEntry;
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::arrow::{ProjectionMask, parquet_to_arrow_schema};
use datafusion::parquet::file::metadata::{FileMetaData, PageIndexPolicy, ParquetMetaData};
use futures::{StreamExt, stream};
use object_store::{GetOptions, GetRange, ObjectMeta, ObjectStoreExt};

use super::Lake;
use super::table::Columns;
use super::uuid::{self, is_uuid};
use crate::dates::{from_date32, to_date32};
use crate::output::value_type;
use crate::{Error, Result};

/// How many bytes at a file's end are read first, to get its footer in one request.
const FOOTER_HINT: usize = 64 * 1024;

/// How many footers are read at once from this machine's disk (more from a bucket).
const CONCURRENT_READS: usize = 16;

/// What one data file holds, as its footer says.
#[derive(Debug, Clone)]
pub struct FileFacts {
    pub rows: u64,
    pub schema: SchemaRef,
    /// Rows whose user id is NULL, when the footer has the counts.
    pub null_users: Option<u64>,
    /// The smallest and largest day of the in-file date column, when there is one with statistics.
    pub date_range: Option<(NaiveDate, NaiveDate)>,
    /// Whether the file has a date column its statistics do not give the days of, which is read
    /// then (an integer column whose statistics are no YYYYMMDD days holds no dates).
    pub unread_dates: bool,
}

/// One data file of one day, and what reading its footer gave.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub day: NaiveDate,
    pub meta: ObjectMeta,
    /// The file as a person can find it.
    pub name: String,
    pub facts: std::result::Result<FileFacts, String>,
}

/// How an id column's type is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Integer,
    String,
}

/// How ids of this type read, if they can be ids: integers of any width, or text; either kind
/// also as a dictionary array (a pandas categorical, or any writer that kept its dictionary).
pub fn id_kind(t: &DataType) -> Option<IdKind> {
    match t {
        DataType::Dictionary(_, values) => id_kind(values),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Some(IdKind::Integer),
        // Whole decimals, as Spark's JDBC reads a database's NUMBER(19) or BIGINT UNSIGNED ids,
        // and as Snowflake unloads its NUMBER(38,0) (its INTEGER): integers by value.
        t if whole_decimal(t) => Some(IdKind::Integer),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(IdKind::String),
        // Text without the UTF-8 annotation, as Impala and older Hive write strings (Spark's
        // `binaryAsString`): read as text, which it must be.
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Some(IdKind::String),
        // UUIDs: read as their text.
        t if is_uuid(t) => Some(IdKind::String),
        // A column of NULLs only (pandas and pyarrow type an all-None column so): events with no
        // user id, as NULL integers are; it adds no kind of id to the lake's.
        DataType::Null => Some(IdKind::Integer),
        _ => None,
    }
}

/// A decimal with no digits after the point: integers (of up to 76 digits).
pub fn whole_decimal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Decimal32(_, 0)
            | DataType::Decimal64(_, 0)
            | DataType::Decimal128(_, 0)
            | DataType::Decimal256(_, 0)
    )
}

/// A file's user column: the one named `user`, else the one named so but for case, as Spark reads
/// Parquet (Hive, Trino and Athena write names in lower case); none when several are.
pub fn user_field<'a>(schema: &'a Schema, user: &str) -> Option<&'a Field> {
    if let Ok(field) = schema.field_with_name(user) {
        return Some(field);
    }
    let mut near = (schema.fields().iter()).filter(|f| f.name().eq_ignore_ascii_case(user));
    match (near.next(), near.next()) {
        (Some(field), None) => Some(field),
        _ => None,
    }
}

/// The type of the values of a dictionary array's type (as a writer may keep its ids), else `t`.
pub fn stored(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, values) => values,
        t => t,
    }
}

/// Text without the UTF-8 annotation: bytes, as Impala and older Hive write strings.
pub fn unannotated_text(t: &DataType) -> bool {
    matches!(
        stored(t),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    )
}

/// The kinds of user ids some files hold, which decide the one type that every id reads as, in
/// both engines ([`IdTypes::read_as`]). A day's rollup keeps its day's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdTypes {
    pub text: bool,
    /// Signed integers, of any width.
    pub signed: bool,
    /// Unsigned 64-bit integers (ClickHouse's `UInt64`, hashes).
    pub unsigned64: bool,
}

impl IdTypes {
    /// The kinds of ids of these types.
    pub fn of<'a>(types: impl IntoIterator<Item = &'a DataType>) -> IdTypes {
        let mut kinds = IdTypes::default();
        for t in types {
            match stored(t) {
                t if id_kind(t) == Some(IdKind::String) => kinds.text = true,
                DataType::UInt64 => kinds.unsigned64 = true,
                // (A whole decimal is a signed number.)
                t => kinds.signed |= t.is_signed_integer() || whole_decimal(t),
            }
        }
        kinds
    }

    /// The kinds of ids of these files.
    pub fn of_files<'a>(
        reports: impl IntoIterator<Item = &'a FileReport>,
        columns: &Columns<'_>,
    ) -> IdTypes {
        IdTypes::of(reports.into_iter().filter_map(|r| r.id_type(columns)))
    }

    /// Both kinds of ids.
    pub fn and(self, other: IdTypes) -> IdTypes {
        IdTypes {
            text: self.text || other.text,
            signed: self.signed || other.signed,
            unsigned64: self.unsigned64 || other.unsigned64,
        }
    }

    /// The type every id reads as: text when any is text (so that `1` and `"1"` are one user);
    /// UInt64 when some are unsigned 64-bit and none is signed; else Int64, which an unsigned id
    /// of 2^63 or more does not fit (see [`lake_ids`]).
    pub fn read_as(self) -> DataType {
        match (self.text, self.unsigned64 && !self.signed) {
            (true, _) => DataType::Utf8,
            (false, true) => DataType::UInt64,
            (false, false) => DataType::Int64,
        }
    }

    /// The kinds as bits, for a rollup.
    pub fn bits(self) -> u64 {
        u64::from(self.text) | u64::from(self.signed) << 1 | u64::from(self.unsigned64) << 2
    }

    pub fn from_bits(bits: u64) -> Option<IdTypes> {
        (bits < 8).then_some(IdTypes {
            text: bits & 1 != 0,
            signed: bits & 2 != 0,
            unsigned64: bits & 4 != 0,
        })
    }
}

/// A batch's user ids as the lake's id type `ids` (see [`IdTypes::read_as`]; UUIDs as their
/// text); an id that type cannot hold fails, with why.
pub fn lake_ids(column: &dyn Array, ids: &DataType) -> std::result::Result<ArrayRef, String> {
    if let (Some(uuids), DataType::Utf8) = (column.as_fixed_size_binary_opt(), ids) {
        return Ok(Arc::new(uuid::texts(uuids)));
    }
    let exact = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(column, ids, &exact).map_err(|e| {
        let sign = match (column.data_type(), ids) {
            (DataType::UInt64, DataType::Int64) => {
                "unsigned ids of 2^63 or more, which the signed ids of other files cannot hold"
            }
            (t, DataType::UInt64) if t.is_signed_integer() => {
                "negative ids, which the unsigned 64-bit ids of other files cannot hold"
            }
            (t, DataType::Int64) if whole_decimal(t) => {
                return format!(
                    "its user ids are decimals, counted as 64-bit integers, and some are beyond \
                     them (2^63 or more, or below -2^63) ({e}); write them as UINT64 (when none \
                     is negative) or as text"
                );
            }

            (t, DataType::Utf8) if unannotated_text(t) => {
                return format!(
                    "its user ids are bytes without the UTF-8 annotation, read as text, and some \
                     are not UTF-8 ({e})"
                );
            }
            _ => return format!("a data page cannot be decoded: {e}"),
        };
        format!(
            "{sign} ({e}): dau cannot tell whether 18446744073709551615 and -1 are one user; \
             write every file's ids as one integer type"
        )
    })
}

impl FileFacts {
    /// The file's column names, comma-separated, for a message that the user column `user` is
    /// not among them; several named as it but for case are pointed out.
    pub fn columns_instead_of(&self, user: &str) -> String {
        let fields = self.schema.fields().iter();
        let names: Vec<&str> = fields.map(|f| f.name().as_str()).collect();
        let near: Vec<&str> = (names.iter().copied())
            .filter(|n| n.eq_ignore_ascii_case(user))
            .collect();
        match near.len() {
            0 | 1 => names.join(", "),
            _ => format!(
                "{} ({} differ from '{user}' in case only: name one exactly)",
                names.join(", "),
                near.join(", ")
            ),
        }
    }
}

impl FileReport {
    /// Why this file cannot be part of a query: unreadable, no user column, or ids of no id type.
    pub fn problem(&self, columns: &Columns<'_>) -> Option<String> {
        let facts = match &self.facts {
            Err(reason) => return Some(reason.clone()),
            Ok(facts) => facts,
        };
        match user_field(&facts.schema, columns.user) {
            None => Some(format!(
                "no column '{}'; columns found: {}",
                columns.user,
                facts.columns_instead_of(columns.user)
            )),
            Some(field) if id_kind(field.data_type()).is_none() => {
                let user = columns.user;
                let hint = match field.data_type() {
                    // pandas writes an integer column that has a missing value as floats.
                    t if t.is_floating() => format!(
                        " (pandas writes integers with missing values as floats: write the \
                         column as Int64, e.g. df['{user}'].astype('Int64'))"
                    ),
                    t if t.is_numeric() => " (a decimal with digits after the point: write \
                         whole ids as DECIMAL(p, 0), an integer type, or text)"
                        .to_string(),
                    _ => String::new(),
                };
                Some(format!(
                    "column '{user}' has type {}: a user id must be an integer or a string{hint}",
                    field.data_type()
                ))
            }
            Some(_) => None,
        }
    }

    /// How this file's user ids read, when it has a user column of an id type.
    pub fn id_kind(&self, columns: &Columns<'_>) -> Option<IdKind> {
        id_kind(self.id_type(columns)?)
    }

    /// The type of this file's user column, when it has one.
    pub fn id_type(&self, columns: &Columns<'_>) -> Option<&DataType> {
        let facts = self.facts.as_ref().ok()?;
        Some(user_field(&facts.schema, columns.user)?.data_type())
    }

    /// The name of this file's user column (see [`user_field`]): `user`, or `user` but for case.
    pub fn user_column<'a>(&'a self, user: &'a str) -> &'a str {
        let facts = self.facts.as_ref().ok();
        let field = facts.and_then(|facts| user_field(&facts.schema, user));
        field.map_or(user, |f| f.name().as_str())
    }

    /// The in-file dates when they are not all this file's partition day.
    pub fn date_disagreement(&self) -> Option<(NaiveDate, NaiveDate)> {
        let (lo, hi) = self.facts.as_ref().ok()?.date_range?;
        (lo != self.day || hi != self.day).then_some((lo, hi))
    }
}

/// Lists the data files of `days` and reads every footer.
pub async fn inspect(
    lake: &Lake,
    days: &[NaiveDate],
    columns: &Columns<'_>,
) -> Result<Vec<FileReport>> {
    let listed = lake.files(days).await?;
    let files: Vec<(NaiveDate, ObjectMeta)> = days
        .iter()
        .zip(listed)
        .flat_map(|(day, metas)| metas.into_iter().map(move |m| (*day, m)))
        .collect();
    let _watch = lake.watch("reading footers", Some(files.len()));
    stream::iter(files)
        .map(|(day, meta)| async move {
            // A footer read before comes from the lake's cache, as long as the file is unchanged.
            let facts = read_footer(lake, &meta, columns).await?;
            let mut report = FileReport {
                day,
                name: lake.describe(&meta.location),
                meta,
                facts,
            };
            // Text without the UTF-8 annotation is text only when every id is UTF-8: the SQL's
            // reader would take it unchecked.
            if report.id_type(columns).is_some_and(unannotated_text)
                && let Err(reason) = scan_file(lake, &report, columns, &DataType::Utf8).await?
            {
                report.facts = Err(reason);
            }
            // A date column without statistics (its writer kept none) is read: its dates must
            // agree with the partition all the same.
            if let Ok(facts) = &report.facts
                && facts.unread_dates
                && let Some(ids) = report.id_type(columns).cloned()
            {
                match scan_file(lake, &report, columns, &ids).await? {
                    Ok(scan) => {
                        let facts = report.facts.as_mut().expect("read");
                        facts.date_range = scan.date_range;
                        facts.null_users = facts.null_users.or(Some(scan.null_users));
                    }
                    Err(reason) => report.facts = Err(reason),
                }
            }
            Ok(report)
        })
        .buffered(lake.reads_at_once(CONCURRENT_READS))
        .collect::<Vec<Result<FileReport>>>()
        .await
        .into_iter()
        .collect()
}

/// Reads a file's footer: the outer error is storage failing (exit 3), the inner one what is wrong
/// with the file.
async fn read_footer(
    lake: &Lake,
    meta: &ObjectMeta,
    columns: &Columns<'_>,
) -> Result<std::result::Result<FileFacts, String>> {
    if meta.size == 0 {
        let target = (!lake.is_remote())
            .then(|| super::layout::dangling_link(&meta.location))
            .flatten();
        return Ok(Err(match target {
            Some(to) => format!("a link to {}, which does not exist", to.display()),
            None => "the file is empty (0 bytes)".to_string(),
        }));
    }
    Ok(footer(lake, meta)
        .await?
        .and_then(|metadata| facts(&metadata, columns)))
}

/// A file's parsed footer, from the lake's cache when it was read before (and the file is
/// unchanged). The outer error is storage failing, the inner one what is wrong with the file.
pub async fn footer(
    lake: &Lake,
    meta: &ObjectMeta,
) -> Result<std::result::Result<Arc<ParquetMetaData>, String>> {
    // A small file in a bucket is read whole, and kept by the lake's store: its footer and its
    // data then come from that one request. (A failure is the footer read's to report; once
    // the store keeps no more, footers are read as before.)
    let cached = (lake.parquet_footers.get(&meta.location)).is_some_and(|c| c.is_valid_for(meta));
    if lake.metered.would_keep(meta.size) && !cached {
        let whole = GetOptions {
            range: Some(GetRange::Bounded(0..meta.size)),
            ..GetOptions::default()
        };
        // Another object than the one listed (see `changed`).
        if let Ok(got) = lake.store.get_opts(&meta.location, whole).await
            && let Some(changed) = changed(lake, meta, &got.meta)
        {
            return Err(changed);
        }
    }
    // One request for most footers; DataFusion then finds them in the lake's cache when it runs.
    let metadata = DFParquetMetadata::new(lake.store.as_ref(), meta)
        .with_metadata_size_hint(Some(FOOTER_HINT))
        .with_file_metadata_cache(Some(lake.parquet_footers.clone()))
        // The page index is not needed to count users; a corrupt one must not fail a file that
        // reads. (DataFusion loads it later if a query can use it.)
        .with_page_index_policy(Some(PageIndexPolicy::Skip))
        .fetch_metadata()
        .await;
    match metadata {
        // (One from the cache was made readable when it was put there.)
        Ok(metadata) if cached => Ok(Ok(metadata)),
        Ok(metadata) => Ok(Ok(readable(lake, meta, metadata))),
        Err(e) => match lake.storage_failure(&e) {
            Some(failure) => Err(failure),
            // A larger file replaced since its listing, its footer read at the listed size.
            None if lake.is_remote()
                && let Ok(now) = lake.store.head(&meta.location).await
                && let Some(changed) = changed(lake, meta, &now) =>
            {
                Err(changed)
            }
            // DataFusion's own prefix would repeat the parquet crate's ("Parquet error: ").
            None => Ok(Err(format!("not a readable Parquet file: {}", e.message()))),
        },
    }
}

/// The error for a file that is `now` another object than the one listed (`meta`): of another
/// size or generation, replaced since. Its footer is not where the listing says, and it was
/// called a bad file (skipped with --skip-bad-files, its day undercounted).
fn changed(lake: &Lake, meta: &ObjectMeta, now: &ObjectMeta) -> Option<Error> {
    let other_version = matches!((&now.version, &meta.version), (Some(a), Some(b)) if a != b);
    (now.size != meta.size || other_version).then(|| {
        let source = format!(
            "it is {} bytes, and was {} bytes when listed",
            now.size, meta.size
        );
        let path = meta.location.to_string();
        lake.storage_error(&object_store::Error::Precondition {
            path,
            source: source.into(),
        })
    })
}

/// A footer without the Arrow schema Arrow writers keep in it (`ARROW:schema`, their types)
/// when this Arrow cannot read that (Polars' 128-bit integers made it panic, in any column),
/// in the lake's cache too: the file's columns are then read by their Parquet types alone, by
/// dau and by DataFusion.
fn readable(
    lake: &Lake,
    meta: &ObjectMeta,
    metadata: Arc<ParquetMetaData>,
) -> Arc<ParquetMetaData> {
    const KEY: &str = "ARROW:schema";
    let file = metadata.file_metadata();
    let Some(pairs) = file.key_value_metadata() else {
        return metadata;
    };
    let read = || parquet_to_arrow_schema(file.schema_descr(), Some(pairs));
    if !pairs.iter().any(|pair| pair.key == KEY) || quietly(read).is_some() {
        return metadata;
    }
    let kept = pairs
        .iter()
        .filter(|pair| pair.key != KEY)
        .cloned()
        .collect();
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        Some(kept),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    let stripped = Arc::new(ParquetMetaData::new(file, metadata.row_groups().to_vec()));
    let cached = Arc::new(CachedParquetMetaData::new(stripped.clone()));
    (lake.parquet_footers).put(
        &meta.location,
        CachedFileMetadataEntry::new(meta.clone(), cached),
    );
    stripped
}

/// What `f` returns, or None when it panics, which is not reported (nor its message printed).
fn quietly<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.get() {
                report(info);
            }
        }));
    });
    QUIET.set(true);
    let result = std::panic::catch_unwind(f);
    QUIET.set(false);
    result.ok()
}

/// What a footer says.
fn facts(
    metadata: &datafusion::parquet::file::metadata::ParquetMetaData,
    columns: &Columns<'_>,
) -> std::result::Result<FileFacts, String> {
    let file = metadata.file_metadata();
    let parquet_schema = file.schema_descr();
    let schema = parquet_to_arrow_schema(parquet_schema, file.key_value_metadata())
        .map_err(|e| format!("a Parquet schema dau cannot read: {e}"))?;
    let schema = std::sync::Arc::new(schema);
    let row_groups = metadata.row_groups();
    let rows = file.num_rows().max(0) as u64;

    let user = user_field(&schema, columns.user).map_or(columns.user, |f| f.name().as_str());
    let null_users = StatisticsConverter::try_new(user, &schema, parquet_schema)
        .and_then(|c| c.row_group_null_counts(row_groups))
        .ok()
        .and_then(|counts: UInt64Array| {
            (counts.null_count() == 0).then(|| counts.values().iter().sum::<u64>())
        });

    let date = date_column(&schema, columns);
    let stats = date.and_then(|name| {
        let stats = StatisticsConverter::try_new(name, &schema, parquet_schema).ok()?;
        let lo = stats.row_group_mins(row_groups).ok()?;
        let hi = stats.row_group_maxes(row_groups).ok()?;
        Some((lo, hi))
    });
    let day = |values: &dyn Array, smallest: bool| -> Option<NaiveDate> {
        let days = as_days(values).ok()?;
        let days = days.as_primitive::<Date32Type>();
        if days.null_count() > 0 {
            return None;
        }
        from_date32(if smallest { min(days)? } else { max(days)? })
    };
    let date_range = stats
        .as_ref()
        .and_then(|(lo, hi)| Some((day(lo.as_ref(), true)?, day(hi.as_ref(), false)?)));
    // Statistics of integers that are no days (days since 1970, say): no date column.
    let integers = date.and_then(|name| schema.field_with_name(name).ok());
    let integers = integers.is_some_and(|f| value_type(f.data_type()).is_integer());
    let no_days = integers && stats.is_some_and(|(lo, _)| lo.null_count() == 0);
    Ok(FileFacts {
        rows,
        schema,
        null_users,
        unread_dates: date.is_some() && date_range.is_none() && !no_days,
        date_range,
    })
}

/// What reading a file's ids and in-file dates in full found.
#[derive(Debug, Clone, Default)]
pub struct FileScan {
    pub null_users: u64,
    /// Rows whose in-file date is not the partition's day, and one such date.
    pub date_mismatches: u64,
    pub mismatch_example: Option<NaiveDate>,
    /// The smallest and largest in-file date, if any.
    pub date_range: Option<(NaiveDate, NaiveDate)>,
    /// A hash of the file's bytes, to tell copies of one file.
    pub digest: u64,
}

/// Reads a file's user column (and in-file date column) in full, as a query would. A footer can be
/// sound while a page behind it is corrupt: this finds which file a failed query tripped on, and
/// gives `dau check` exact counts. The outer error is storage failing, the inner one the file's.
pub async fn scan_file(
    lake: &Lake,
    report: &FileReport,
    columns: &Columns<'_>,
    ids: &DataType,
) -> Result<std::result::Result<FileScan, String>> {
    let bytes = match whole_file(lake, report).await? {
        Ok(bytes) => bytes,
        Err(reason) => return Ok(Err(reason)),
    };
    let digest = foldhash::quality::FixedState::default().hash_one(&bytes[..]);
    Ok(decode(bytes, report, columns, ids).map(|scan| FileScan { digest, ..scan }))
}

/// A file's bytes, or why it cannot be read; the outer error is a bucket failing.
async fn whole_file(
    lake: &Lake,
    report: &FileReport,
) -> Result<std::result::Result<bytes::Bytes, String>> {
    let got = match lake.store.get(&report.meta.location).await {
        Ok(got) => got.bytes().await,
        Err(e) => Err(e),
    };
    match got {
        Ok(bytes) => Ok(Ok(bytes)),
        Err(e) if lake.is_remote() => Err(lake.storage_error(&e)),
        Err(e) => Ok(Err(format!("cannot be read: {e}"))),
    }
}

/// Why a file's pages (of any column, not only the user's) cannot be decoded, if they cannot:
/// for a SQL statement that failed in a column dau itself never reads.
pub async fn undecodable(lake: &Lake, report: &FileReport) -> Result<Option<String>> {
    let bytes = match whole_file(lake, report).await? {
        Ok(bytes) => bytes,
        Err(reason) => return Ok(Some(reason)),
    };
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        .and_then(|builder| builder.build());
    let failed = match reader {
        Ok(mut batches) => batches.find_map(|batch| batch.err()).map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    Ok(failed.map(|e| format!("a data page cannot be decoded: {e}")))
}

/// Decodes the user (and in-file date) columns of a whole file.
fn decode(
    bytes: bytes::Bytes,
    report: &FileReport,
    columns: &Columns<'_>,
    ids: &DataType,
) -> std::result::Result<FileScan, String> {
    let undecodable = |e: &dyn std::fmt::Display| format!("a data page cannot be decoded: {e}");
    // (Without the Arrow schema when this Arrow cannot read it: see `readable`.)
    let read = || ParquetRecordBatchReaderBuilder::try_new(bytes.clone());
    let builder = quietly(read)
        .unwrap_or_else(|| {
            let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
            ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        })
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let date_column = date_column(builder.schema(), columns);
    let user = report.user_column(columns.user);
    let wanted = |name: &str| name == user || Some(name) == date_column;
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.path().parts().first().is_some_and(|p| wanted(p)))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| undecodable(&e))?;
    let day = to_date32(report.day);
    let mut scan = FileScan::default();
    for batch in reader {
        let batch = batch.map_err(|e| undecodable(&e))?;
        if let Some(users) = batch.column_by_name(user) {
            // (Logical: a column of the type `null` has no null buffer.)
            scan.null_users += users.logical_null_count() as u64;
            if users.data_type() != ids {
                lake_ids(users, ids)?;
            }
        }
        let Some(dates) = date_column.and_then(|name| batch.column_by_name(name)) else {
            continue;
        };
        let dates = as_days(dates).map_err(|e| undecodable(&e))?;
        for value in dates.as_primitive::<Date32Type>().iter().flatten() {
            let Some(date) = from_date32(value) else {
                continue;
            };
            scan.date_range = Some(match scan.date_range {
                Some((lo, hi)) => (lo.min(date), hi.max(date)),
                None => (date, date),
            });
            if value != day {
                scan.date_mismatches += 1;
                scan.mismatch_example = scan.mismatch_example.or(Some(date));
            }
        }
    }
    Ok(scan)
}

/// The in-file date column to check against the partition: the configured one, else `date`, when
/// it may hold dates (DATE, TIMESTAMP, `YYYY-MM-DD` text, or YYYYMMDD integers). A column of
/// another type is not a date.
fn date_column<'a>(schema: &Schema, columns: &Columns<'a>) -> Option<&'a str> {
    [columns.date, super::table::DATE].into_iter().find(|name| {
        schema.field_with_name(name).is_ok_and(|f| {
            let t = value_type(f.data_type());
            t.is_integer()
                || matches!(
                    t,
                    DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Utf8
                )
        })
    })
}

/// A date column's values as days (Date32): dates, timestamps and text as Arrow casts them, and
/// integers as YYYYMMDD (20240603, as Hive tables and ETL jobs write them), NULL when they are
/// no such day.
fn as_days(values: &dyn Array) -> std::result::Result<ArrayRef, ArrowError> {
    if !value_type(values.data_type()).is_integer() {
        return cast(values, &DataType::Date32);
    }
    let numbers = cast(values, &DataType::Int64)?;
    let day = |n: i64| {
        let (year, month, day) = (n / 10_000, n / 100 % 100, n % 100);
        let day = NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
        (10_000_101..=99_991_231)
            .contains(&n)
            .then(|| to_date32(day))
    };
    let days: Date32Array = (numbers.as_primitive::<Int64Type>().iter())
        .map(|n| n.and_then(day))
        .collect();
    Ok(Arc::new(days))
}

/// NULL user ids per day: as the footers count them, and for a file whose footer does not (its
/// writer kept no statistics) as reading its user column finds, so that the warning's numbers are
/// exact. A file that cannot be read adds none: the query that reads it says what is wrong.
pub async fn null_users_per_day(
    lake: &Lake,
    reports: &[FileReport],
    columns: &Columns<'_>,
) -> Result<BTreeMap<NaiveDate, u64>> {
    let ids = IdTypes::of_files(reports, columns).read_as();
    let counts: Vec<_> = reports
        .iter()
        .map(|r| null_users(lake, r, columns, &ids))
        .collect();
    let counts: Vec<Result<u64>> = stream::iter(counts)
        .buffered(lake.reads_at_once(CONCURRENT_READS))
        .collect()
        .await;
    let mut per_day = BTreeMap::new();
    for (report, nulls) in reports.iter().zip(counts) {
        let nulls = nulls?;
        if nulls > 0 {
            *per_day.entry(report.day).or_default() += nulls;
        }
    }
    Ok(per_day)
}

/// A file's NULL user ids, from its footer or else from reading them (see [`null_users_per_day`]).
async fn null_users(
    lake: &Lake,
    report: &FileReport,
    columns: &Columns<'_>,
    ids: &DataType,
) -> Result<u64> {
    let Ok(facts) = &report.facts else {
        return Ok(0);
    };
    let field = user_field(&facts.schema, columns.user);
    Ok(match facts.null_users {
        Some(n) => n,
        None if field.is_some_and(|f| f.is_nullable()) => {
            (scan_file(lake, report, columns, ids).await?).map_or(0, |scan| scan.null_users)
        }
        None => 0,
    })
}

/// The files a query may read. A bad file is an error, unless `skip_bad` says to leave it out
/// (with a warning naming it and the days it belongs to). In-file dates that disagree with the
/// partition are always an error.
pub fn usable<'a>(
    reports: &'a [FileReport],
    columns: &Columns<'_>,
    skip_bad: bool,
    warnings: &mut Vec<String>,
) -> Result<Vec<&'a FileReport>> {
    if let Some((r, (lo, hi))) = reports
        .iter()
        .find_map(|r| Some((r, r.date_disagreement()?)))
    {
        return Err(Error::DateMismatch {
            file: r.name.clone(),
            day: r.day,
            lo,
            hi,
        });
    }
    let readable: Vec<(&FileReport, &FileFacts)> = reports
        .iter()
        .filter_map(|r| Some((r, r.facts.as_ref().ok()?)))
        .collect();
    if let Some((first, facts)) = readable.first()
        && readable
            .iter()
            .all(|(_, f)| user_field(&f.schema, columns.user).is_none())
    {
        // No readable file has the column: its name is what is wrong.
        return Err(Error::MissingColumn {
            column: columns.user.to_string(),
            file: first.name.clone(),
            found: facts.columns_instead_of(columns.user),
        });
    }
    warnings.extend(date_column_warning(reports, columns));
    let (bad, good): (Vec<_>, Vec<_>) = reports.iter().partition(|r| r.problem(columns).is_some());
    if let Some(first) = bad.first() {
        if !skip_bad {
            return Err(Error::BadFile {
                file: first.name.clone(),
                reason: first.problem(columns).unwrap_or_default(),
                others: bad.len() - 1,
            });
        }
        let days: BTreeSet<NaiveDate> = bad.iter().map(|r| r.day).collect();
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        let files: Vec<String> = bad
            .iter()
            .map(|r| format!("{} ({})", r.name, r.problem(columns).unwrap_or_default()))
            .collect();
        warnings.push(format!(
            "skipped {} bad file(s) (--skip-bad-files), so {} may be undercounted (a day with no \
             readable file is NULL): {}",
            bad.len(),
            days.join(", "),
            files.join("; ")
        ));
    }
    Ok(good)
}

/// The warning for a date column named other than `date` (`--date-column`) that no readable file
/// of `reports` has as dates: a misspelt name turned the check of in-file dates off in silence.
pub fn date_column_warning(reports: &[FileReport], columns: &Columns<'_>) -> Option<String> {
    let mut schemas = reports
        .iter()
        .filter_map(|r| Some(&r.facts.as_ref().ok()?.schema));
    let named = columns.date != crate::config::DEFAULT_DATE_COLUMN;
    let found = schemas.any(|schema| date_column(schema, columns) == Some(columns.date));
    (named && !reports.is_empty() && !found).then(|| {
        format!(
            "no file read has a date column '{}' (--date-column, DAU_DATE_COLUMN or [lake] \
             date_column): in-file dates are not checked, and each row's day is its partition's",
            columns.date
        )
    })
}

/// The warning for rows whose user id is NULL, given their number per day (days with none left out).
pub fn null_warning(nulls: &BTreeMap<NaiveDate, u64>, user: &str) -> Option<String> {
    let nulls: Vec<(&NaiveDate, &u64)> = nulls.iter().filter(|(_, n)| **n > 0).collect();
    if nulls.is_empty() {
        return None;
    }
    let total: u64 = nulls.iter().map(|(_, n)| **n).sum();
    let per_day: Vec<String> = nulls.iter().map(|(d, n)| format!("{d}: {n}")).collect();
    Some(format!(
        "ignored {total} row(s) with a NULL {user} (never counted as a user): {}",
        per_day.join(", ")
    ))
}

/// Days of `days` whose partition folder holds no data file (only markers such as `_SUCCESS`, or
/// nothing yet): missing, not zero, since a writer that is not done leaves them so. A file with no
/// rows is a real zero.
pub fn empty_days(lake: &Lake, days: &[NaiveDate], reports: &[FileReport]) -> BTreeSet<NaiveDate> {
    let with_files: BTreeSet<NaiveDate> = reports.iter().map(|r| r.day).collect();
    days.iter()
        .copied()
        .filter(|d| lake.days.contains_key(d) && !with_files.contains(d))
        .collect()
}

/// Days of `days` with nothing to read, so missing: every file unusable (left out under
/// --skip-bad-files, warned of by [`usable`]), or no data file at all (warned of here).
pub fn unread_days(
    lake: &Lake,
    days: &[NaiveDate],
    reports: &[FileReport],
    good: &[&FileReport],
    warnings: &mut Vec<String>,
) -> BTreeSet<NaiveDate> {
    let read: BTreeSet<NaiveDate> = good.iter().map(|r| r.day).collect();
    let mut unread: BTreeSet<NaiveDate> = (reports.iter().map(|r| r.day))
        .filter(|d| !read.contains(d))
        .collect();
    let empty = empty_days(lake, days, reports);
    let unfinished = lake.unfinished(NaiveDate::MIN, NaiveDate::MAX);
    let (unfinished, empty): (Vec<NaiveDate>, Vec<NaiveDate>) =
        empty.into_iter().partition(|d| unfinished.contains(d));
    if !empty.is_empty() {
        let shown: Vec<String> = empty.iter().map(NaiveDate::to_string).collect();
        warnings.push(format!(
            "{} day(s) have a partition folder with no data file in {}: {}; they are missing, \
             not zero (NULL)",
            empty.len(),
            lake.name,
            shown.join(", ")
        ));
    }
    warnings.extend(lake.unfinished_warning(&unfinished));
    unread.extend(empty);
    unread.extend(unfinished);
    unread
}
