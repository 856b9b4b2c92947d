//! The `events` table: a DataFusion table over chosen days of a lake, with `date` typed DATE.
//!
//! The partition's day is the table's `date`; a `date` column inside the files (as BigQuery exports
//! carry) is left out, so `date` has one meaning. Filters on `date` prune whole days before any
//! file is listed, so a query reads only the partitions it asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, Date32Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, ScalarValue, project_schema};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use object_store::ObjectMeta;
use object_store::path::Path as ObjectPath;

use super::Lake;
use super::inspect::{
    FileReport, IdKind, IdTypes, inspect, null_users_per_day, null_warning, usable, user_field,
};
use super::uuid::UserIds;
use crate::config::Config;
use crate::dates::to_date32;
use crate::output::value_type;
use crate::{Error, Result};

/// The table's day column.
pub const DATE: &str = "date";

fn date_field() -> FieldRef {
    Arc::new(Field::new(DATE, DataType::Date32, false))
}

/// The table's columns from folder names: `date`, and for a lake named with a pattern, which of
/// its lakes (`app`).
fn partition_fields(lake: &Lake) -> Vec<FieldRef> {
    let lakes = lake.lakes_column();
    let lakes = lakes.map(|name| Arc::new(Field::new(name, DataType::Utf8, false)));
    std::iter::once(date_field()).chain(lakes).collect()
}

/// The user id column and the in-file date column, by name.
pub struct Columns<'a> {
    pub user: &'a str,
    pub date: &'a str,
}

pub struct EventsTable {
    lake: Arc<Lake>,
    /// The covered days, ascending.
    days: Vec<NaiveDate>,
    files: Files,
    file_schema: SchemaRef,
    schema: SchemaRef,
    /// The user id column, and the type every file's ids read as ([`IdTypes::read_as`]).
    user: String,
    id_type: DataType,
}

/// Where a scan finds each day's files.
enum Files {
    /// Read and checked before the table was made (`dau query`): each day's files, maybe none.
    Checked(BTreeMap<NaiveDate, Vec<ObjectMeta>>),
    /// Listed, read and checked when a scan first needs the day (`dau sql` over years of days).
    OnDemand(Box<OnDemand>),
}

struct OnDemand {
    config: Config,
    /// Warnings already shown, so that each shows once a session.
    warned: Mutex<BTreeSet<String>>,
    /// The files the scans of the current statement read, by location, to find the culprit
    /// when reading fails.
    last_scan: Mutex<BTreeMap<ObjectPath, FileReport>>,
}

impl std::fmt::Debug for EventsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EventsTable({}, {} days)",
            self.lake.name,
            self.days.len()
        )
    }
}

impl EventsTable {
    /// The lake whose events this is.
    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// A table over `days`, reading the files of `reports` (footers already read and found good).
    pub fn new(
        lake: Arc<Lake>,
        days: &[NaiveDate],
        reports: &[&FileReport],
        columns: &Columns<'_>,
    ) -> Result<EventsTable> {
        let mut files: BTreeMap<NaiveDate, Vec<ObjectMeta>> =
            days.iter().map(|d| (*d, Vec::new())).collect();
        for r in reports {
            files.entry(r.day).or_default().push(r.meta.clone());
        }
        EventsTable::typed(lake, days, reports, columns, Files::Checked(files))
    }

    /// A table over every day of `lake` that lists and checks a day's files only when a scan
    /// first reads that day. Its columns and id type are the newest readable day's.
    pub async fn on_demand(lake: Arc<Lake>, config: &Config) -> Result<EventsTable> {
        let columns = config.columns();
        // Days a pattern's lake lacks are no partition's, yet a statement that reads them is told
        // that they have no rows (they were left out in silence).
        let mut days: BTreeSet<NaiveDate> = lake.days.keys().copied().collect();
        days.extend(lake.incomplete(NaiveDate::MIN, NaiveDate::MAX).into_keys());
        let days: Vec<NaiveDate> = days.into_iter().collect();
        let mut sample = Vec::new();
        // A file with ids, not only NULLs (pandas' all-None column, of type null, says nothing
        // of the lake's id type: it typed the table as integers, and text ids were refused).
        let types = |r: &FileReport| {
            let facts = r.facts.as_ref().ok();
            let user = facts.and_then(|f| user_field(&f.schema, columns.user));
            r.problem(&columns).is_none() && user.is_some_and(|u| u.data_type() != &DataType::Null)
        };
        for day in days.iter().rev() {
            sample = inspect(&lake, &[*day], &columns).await?;
            // A file whose dates are another day's fails the statements that read its day when
            // they do, not the session (nor `\d events`): it does not type the table.
            sample.retain(|r| r.date_disagreement().is_none());
            if sample.iter().any(types) {
                break;
            }
        }
        // So does a bad file (one of them made every statement fail, even `\d events`): the
        // good files type the table. With none, `usable` says what is wrong with them all.
        if sample.iter().any(|r| r.problem(&columns).is_none()) {
            sample.retain(|r| r.problem(&columns).is_none());
        }
        let mut warnings = Vec::new();
        let good = usable(&sample, &columns, config.skip_bad_files, &mut warnings)?;
        let files = Files::OnDemand(Box::new(OnDemand {
            config: config.clone(),
            warned: Mutex::default(),
            last_scan: Mutex::default(),
        }));
        EventsTable::typed(lake, &days, &good, &columns, files)
    }

    /// The type its user ids read as ([`IdTypes::read_as`]).
    pub fn id_type(&self) -> &DataType {
        &self.id_type
    }

    /// The files the scans since [`EventsTable::forget_scans`] read (none for a table checked up
    /// front: its maker has them).
    pub fn last_scan(&self) -> Vec<FileReport> {
        match &self.files {
            Files::Checked(_) => Vec::new(),
            Files::OnDemand(on) => (on.last_scan.lock().expect("last scan"))
                .values()
                .cloned()
                .collect(),
        }
    }

    /// Starts a statement: the files its scans read are counted from now.
    pub fn forget_scans(&self) {
        if let Files::OnDemand(on) = &self.files {
            on.last_scan.lock().expect("last scan").clear();
        }
    }

    fn typed(
        lake: Arc<Lake>,
        days: &[NaiveDate],
        reports: &[&FileReport],
        columns: &Columns<'_>,
        files: Files,
    ) -> Result<EventsTable> {
        let schemas: Vec<&Schema> = reports
            .iter()
            .rev()
            .filter_map(|r| r.facts.as_ref().ok())
            .map(|f| f.schema.as_ref())
            .collect();
        if schemas.is_empty() {
            let first = days.first().copied().unwrap_or_default();
            return Err(lake.no_files(first, days.last().copied().unwrap_or_default()));
        }
        let id_type = IdTypes::of_files(reports.iter().copied(), columns).read_as();
        let file_schema = Arc::new(file_schema(&schemas, columns, &id_type, &lake));
        let mut fields = file_schema.fields().to_vec();
        fields.extend(partition_fields(&lake));
        Ok(EventsTable {
            lake,
            days: days.to_vec(),
            files,
            file_schema,
            schema: Arc::new(Schema::new(fields)),
            user: columns.user.to_string(),
            id_type,
        })
    }

    /// The covered days that every `date`-only filter keeps.
    fn prune(&self, state: &dyn Session, filters: &[Expr]) -> DfResult<Vec<NaiveDate>> {
        let days = self.days.clone();
        let on_date: Vec<Expr> = filters
            .iter()
            .filter(|f| only_date(f))
            .map(unqualified)
            .collect::<DfResult<_>>()?;
        let schema = Arc::new(Schema::new(vec![date_field()]));
        let dates = Date32Array::from_iter_values(days.iter().map(|d| to_date32(*d)));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(dates)])?;
        let df_schema = DFSchema::try_from(schema)?;
        let mut kept = vec![true; days.len()];
        // Each filter alone, over every day: one that fails there (`1/(day - 1)` on the 1st,
        // a day another filter leaves out) prunes nothing, and the query filters the rows
        // itself (it failed, where DataFusion answers).
        for filter in on_date {
            let expr = state.create_physical_expr(filter, &df_schema)?;
            let Ok(keep) = expr
                .evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
            else {
                continue;
            };
            let keep = keep.as_boolean_opt().ok_or_else(|| {
                DataFusionError::Internal("a date filter did not give booleans".to_string())
            })?;
            for (i, kept) in kept.iter_mut().enumerate() {
                *kept &= keep.is_valid(i) && keep.value(i);
            }
        }
        Ok((days.into_iter().zip(kept))
            .filter(|(_, kept)| *kept)
            .map(|(d, _)| d)
            .collect())
    }

    /// Each of `days` with its data files: as checked up front, or listed, read and checked now.
    async fn files_of(
        &self,
        days: &[NaiveDate],
        read: &[&Field],
    ) -> Result<Vec<(NaiveDate, Vec<ObjectMeta>)>> {
        let on = match &self.files {
            Files::Checked(files) => {
                return Ok(days.iter().map(|d| (*d, files[d].clone())).collect());
            }
            Files::OnDemand(on) => on,
        };
        let columns = on.config.columns();
        let reports = inspect(&self.lake, days, &columns).await?;
        let mut warnings = Vec::new();
        let good = usable(&reports, &columns, on.config.skip_bad_files, &mut warnings)?;
        let nulls = null_users_per_day(&self.lake, &reports, &columns).await?;
        warnings.extend(null_warning(&nulls, columns.user));
        warnings.extend(self.lake.unfinished_warning(days));
        if let (Some(from), Some(to)) = (days.iter().min(), days.iter().max()) {
            warnings.extend(self.lake.unmarked_warning(*from, *to));
            // A day some of a pattern's lakes lack has no rows here (counted without them, it
            // would be wrong): said, as queries make it NULL.
            let lacking: Vec<String> = (self.lake.incomplete(*from, *to).into_iter())
                .filter(|(d, _)| days.contains(d))
                .map(|(d, lakes)| format!("{d} ({})", lakes.join(", ")))
                .collect();
            if !lacking.is_empty() {
                warnings.push(format!(
                    "{} day(s) lack the data of a lake {} names: {}; events has no rows of \
                     theirs, from any lake, rather than some",
                    lacking.len(),
                    self.lake.name,
                    lacking.join(", ")
                ));
            }
        }
        // (Their rows were left out in silence; `dau query` said so.)
        if !self.lake.skipped.is_empty() {
            warnings.push(format!(
                "skipped {} folder(s) that do not name a day: {}; events has no rows of theirs",
                self.lake.skipped.len(),
                self.lake.skipped.join(", ")
            ));
        }
        // Integers of either sign are cast to the table's (failing on an id it cannot hold).
        if self.id_type != DataType::Utf8
            && let Some(text) = good
                .iter()
                .find(|r| r.id_kind(&columns) == Some(IdKind::String))
        {
            return Err(Error::MixedIds {
                file: text.name.clone(),
            });
        }
        // A column read of another type in older files than the newest day's, which the table
        // has: their values are cast to it, and where it is narrower, rounded or cut.
        // (The partition's columns and the in-file date are no file's values.)
        let partitions = partition_fields(&self.lake);
        let no_file_values = |name: &str| {
            name == columns.user
                || name == columns.date
                || partitions.iter().any(|p| p.name() == name)
        };
        for field in read.iter().filter(|f| !no_file_values(f.name())) {
            let other = (good.iter()).filter_map(|r| {
                let found = r
                    .facts
                    .as_ref()
                    .ok()?
                    .schema
                    .field_with_name(field.name())
                    .ok()?;
                (!fits(found.data_type(), field.data_type())).then(|| (r, found.data_type()))
            });
            let other: Vec<_> = other.collect();
            if let Some((first, found)) = other.first() {
                warnings.push(format!(
                    "column {} is {found} in {} file(s) read (such as {}), and {} in events (the \
                     newest day's type): their values were cast to it, and may be rounded or cut",
                    field.name(),
                    other.len(),
                    first.name,
                    field.data_type()
                ));
            }
        }
        let mut warned = on.warned.lock().expect("warnings");
        for warning in warnings {
            if warned.insert(warning.clone()) {
                eprintln!("dau: warning: {warning}");
            }
        }
        // Every scan of the statement (a join reads events twice): a file that fails it is
        // named whichever scan read it.
        let reports = good.iter().map(|r| (r.meta.location.clone(), (*r).clone()));
        (on.last_scan.lock().expect("last scan")).extend(reports);
        Ok(days
            .iter()
            .map(|d| {
                let files = good.iter().filter(|r| r.day == *d).map(|r| r.meta.clone());
                (*d, files.collect())
            })
            .collect())
    }
}

/// The table's file columns, from the files' schemas (newest first): every column but the in-file
/// dates, each with the type of the newest file that has it, but the user id: every file's reads
/// as `id_type`.
fn file_schema(
    schemas: &[&Schema],
    columns: &Columns<'_>,
    id_type: &DataType,
    lake: &Lake,
) -> Schema {
    let lakes = lake.lakes_column();
    let mut fields: Vec<FieldRef> = Vec::new();
    for schema in schemas {
        // (A file's user column may be named as the user column but for case.)
        let user = user_field(schema, columns.user).map(|f| f.name().as_str());
        for field in schema.fields() {
            let name = match Some(field.name().as_str()) == user {
                true => columns.user,
                false => field.name().as_str(),
            };
            if name == DATE
                || name == columns.date
                || Some(name) == lakes
                || fields.iter().any(|f| f.name() == name)
            {
                continue;
            }
            fields.push(Arc::new(match name == columns.user {
                true => Field::new(name, id_type.clone(), true),
                false => field.as_ref().clone().with_nullable(true),
            }));
        }
    }
    Schema::new(fields)
}

/// Whether a file's values of type `from` read as `to` without loss: one type stored another way
/// (a dictionary, large or view text), or a wider integer or float, or a date as a timestamp.
fn fits(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let (from, to) = (value_type(from), value_type(to));
    let width = |t: &DataType| t.primitive_width().unwrap_or(0);
    from == to
        || (from.is_signed_integer() && to.is_signed_integer() && width(&from) <= width(&to))
        || (from.is_unsigned_integer() && to.is_integer() && width(&from) < width(&to))
        || (from.is_unsigned_integer() && to.is_unsigned_integer() && width(&from) <= width(&to))
        || (from == Float32 && to == Float64)
        || (matches!(from, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32) && to == Float64)
        || (from == Date32 && matches!(to, Date64 | Timestamp(..)))
}

/// True when the filter reads no column but `date`.
fn only_date(filter: &Expr) -> bool {
    let refs = filter.column_refs();
    !refs.is_empty() && refs.iter().all(|c| c.name == DATE)
}

/// The filter with `events.date` written as plain `date`, to evaluate over the list of days.
fn unqualified(filter: &Expr) -> DfResult<Expr> {
    filter
        .clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
}

#[async_trait]
impl TableProvider for EventsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: days are pruned here, and DataFusion still applies the filter to the rows.
        Ok(filters
            .iter()
            .map(|f| {
                if only_date(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let days = self.prune(state, filters)?;
        let read: Vec<&Field> = match projection {
            Some(indices) => indices.iter().map(|i| self.schema.field(*i)).collect(),
            None => self.schema.fields().iter().map(|f| f.as_ref()).collect(),
        };
        let by_day = (self.files_of(&days, &read).await).map_err(Error::into_datafusion)?;
        let files: Vec<PartitionedFile> = by_day
            .into_iter()
            .flat_map(|(day, metas)| {
                let date = ScalarValue::Date32(Some(to_date32(day)));
                metas.into_iter().map(move |meta| {
                    let lake = self.lake.lake_of(&meta.location).map(ScalarValue::from);
                    let mut file = PartitionedFile::from(meta);
                    file.partition_values = std::iter::once(date.clone()).chain(lake).collect();
                    file
                })
            })
            .collect();
        if files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        // Spread the files over the target partitions so that both cores read.
        let mut groups = vec![Vec::new(); state.config().target_partitions().clamp(1, files.len())];
        let group_count = groups.len();
        for (i, file) in files.into_iter().enumerate() {
            groups[i % group_count].push(file);
        }
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let source = format.file_source(
            TableSchema::builder(self.file_schema.clone())
                .with_table_partition_cols(partition_fields(&self.lake))
                .build(),
        );
        let users = UserIds {
            user: self.user.clone(),
        };
        let config = FileScanConfigBuilder::new(self.lake.store_url.clone(), source)
            .with_expr_adapter(Some(Arc::new(users)))
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        format.create_physical_plan(state, config).await
    }
}
