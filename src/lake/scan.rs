//! The fast scan: reads only the user id column of a day's files, every row group in parallel,
//! straight into that day's set of users (a compressed bitmap) and how often each user came.
//! Ids become the bitmap's members through the lake's [`Dictionary`], which compares them whole
//! (integers, or text), so nothing can collide.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{Array, AsArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema, UInt64Type};
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ParquetMetaData;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use roaring::RoaringBitmap;

use super::dictionary::Dictionary;
use super::inspect::{FileReport, IdKind, IdTypes, footer, id_kind, lake_ids, unannotated_text};
use super::pages::{self, Chunk, Column};
use super::uuid::is_uuid;
use super::{Lake, spawn};
use crate::Result;

/// Rows decoded at a time.
const BATCH_ROWS: usize = 64 * 1024;

/// Text ids decoded at a time: most row groups whole, so that their dictionary is looked up once.
const TEXT_BATCH_ROWS: usize = 1 << 20;

/// Row groups read at once within a day.
const CONCURRENT_ROW_GROUPS: usize = 8;

/// One day's users: who came, and how often.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayUsers {
    /// The day's distinct users, by their index in the lake's [`Dictionary`] (empty when loaded
    /// from a rollup for a metric that needs only the counts).
    pub users: RoaringBitmap,
    /// How many distinct users: dau.
    pub active: u64,
    /// Events with a user id.
    pub opens: u64,
    /// Rows whose user id is NULL: never a user, never an open.
    pub nulls: u64,
    /// How many users had each number of opens, ascending by opens: `(opens, users)`.
    pub histogram: Vec<(u64, u64)>,
    /// The kinds of ids the day's files hold (set by whoever read them).
    pub id_types: IdTypes,
}

/// One day's ids as read: distinct ids in order, each with its number of events. Text ids come
/// as their indices in the lake's dictionary already (`indexed`), unless it was full (`full`).
#[derive(Debug, Default)]
pub struct DayIds {
    ids: Vec<u64>,
    counts: Vec<u64>,
    nulls: u64,
    indexed: bool,
    full: bool,
}

/// The dictionary of text ids that a scan reading ids as text indexes them in.
pub type Names = Arc<RwLock<Dictionary>>;

/// A file the scan could not decode, and why.
pub type Undecodable = (ObjectPath, String);

/// Reads the user ids of one day's `files` (already checked: each has an integer or text user
/// column) as the lake's ids, of type `ids` (see [`IdTypes::read_as`]). In a lake of text ids,
/// `names` is its dictionary: ids are read as text (integers as their decimal digits, as the SQL
/// reads them) and indexed in it as each row group is read. The outer error is storage failing;
/// the inner one names a file whose data cannot be decoded.
pub async fn scan_day(
    lake: &Arc<Lake>,
    files: &[FileReport],
    user: &str,
    ids: &DataType,
    names: Option<Names>,
) -> Result<std::result::Result<DayIds, Undecodable>> {
    let mut groups = Vec::new();
    for file in files {
        let metadata = match footer(lake, &file.meta).await? {
            Ok(metadata) => metadata,
            Err(reason) => return Ok(Err((file.meta.location.clone(), reason))),
        };
        let plain = ArrowReaderMetadata::try_new(metadata.clone(), ArrowReaderOptions::new());
        let plain = match plain {
            Ok(plain) => plain,
            Err(e) => return Ok(Err((file.meta.location.clone(), e.to_string()))),
        };
        // The file's own name for the user column (`user` but for case, in some files).
        let user = file.user_column(user).to_string();
        let column = Column::find(&plain, &user, ids);
        let metadata = match names {
            Some(_) => dictionary_encoded(plain, metadata, &user),
            None => plain,
        };
        for row_group in 0..metadata.metadata().num_row_groups() {
            groups.push((
                file.clone(),
                metadata.clone(),
                column,
                row_group,
                user.clone(),
            ));
        }
    }
    let chunks = stream::iter(groups)
        .map(|(file, metadata, column, row_group, user)| {
            let (lake, names, ids) = (lake.clone(), names.clone(), ids.clone());
            async move {
                spawn(async move {
                    if let Some(column) = column {
                        let read = read_pages(
                            &lake,
                            &file,
                            &metadata,
                            column,
                            row_group,
                            names.as_deref(),
                        )
                        .await?;
                        if let Some(chunk) = read {
                            return Ok(Ok(chunk));
                        }
                    }
                    read_row_group(&lake, &file, metadata, row_group, &user, &ids, names).await
                })
                .await
            }
        })
        .buffer_unordered(CONCURRENT_ROW_GROUPS)
        .try_collect::<Vec<_>>()
        .await?;
    let chunks: std::result::Result<Vec<Chunk>, Undecodable> = chunks.into_iter().collect();
    Ok(chunks.map(|chunks| DayIds {
        indexed: names.is_some(),
        full: chunks.iter().any(|c| c.full),
        ..DayIds::from_chunks(chunks)
    }))
}

/// A file's reader metadata with its text user column read as a dictionary array: each row
/// group's distinct ids once, with a key per row (as written, when the pages are dictionary
/// encoded, as they mostly are), so that each id is looked up once per row group.
fn dictionary_encoded(
    plain: ArrowReaderMetadata,
    metadata: Arc<ParquetMetaData>,
    user: &str,
) -> ArrowReaderMetadata {
    let fields = plain.schema().fields().iter().map(|field| {
        // (UUIDs are read as they are, and made text when indexed.)
        let text =
            id_kind(field.data_type()) == Some(IdKind::String) && !is_uuid(field.data_type());
        match field.name() == user && text {
            true => {
                // Text without the UTF-8 annotation is read as bytes (checked when indexed).
                let values = match unannotated_text(field.data_type()) {
                    true => DataType::Binary,
                    false => DataType::Utf8,
                };
                let keyed = DataType::Dictionary(Box::new(DataType::Int32), Box::new(values));
                Arc::new(Field::new(user, keyed, field.is_nullable()))
            }
            false => field.clone(),
        }
    });
    let schema = Arc::new(Schema::new(fields.collect::<Vec<_>>()));
    let options = ArrowReaderOptions::new().with_schema(schema);
    ArrowReaderMetadata::try_new(metadata, options).unwrap_or(plain)
}

/// Reads the user column of one row group page by page (text ids as their indices in `names`);
/// None when [`pages`] declines it.
async fn read_pages(
    lake: &Lake,
    file: &FileReport,
    metadata: &ArrowReaderMetadata,
    column: Column,
    row_group: usize,
    names: Option<&RwLock<Dictionary>>,
) -> Result<Option<Chunk>> {
    let row_group = metadata.metadata().row_group(row_group);
    let meta = row_group.column(column.leaf);
    let (start, length) = meta.byte_range();
    match lake
        .store
        .get_range(&file.meta.location, start..start + length)
        .await
    {
        Ok(bytes) => {
            let rows = row_group.num_rows().max(0) as usize;
            Ok(pages::read(bytes, meta, rows, column, names))
        }
        // The arrow reader tries again, and says what is wrong.
        Err(e) => match lake.storage_failure(&e) {
            Some(failure) => Err(failure),
            None => Ok(None),
        },
    }
}

/// Decodes the user column of one row group with the arrow reader, as the lake's `ids` (text
/// indexed in `names`, when given).
async fn read_row_group(
    lake: &Lake,
    file: &FileReport,
    metadata: ArrowReaderMetadata,
    row_group: usize,
    user: &str,
    ids: &DataType,
    names: Option<Names>,
) -> Result<std::result::Result<Chunk, Undecodable>> {
    let failed = |why: String| Ok(Err((file.meta.location.clone(), why)));
    let undecodable =
        |e: &dyn std::fmt::Display| failed(format!("a data page cannot be decoded: {e}"));
    let rows = metadata.metadata().row_group(row_group).num_rows().max(0) as usize;
    let reader = Reader {
        store: lake.store.clone(),
        path: file.meta.location.clone(),
        metadata: metadata.metadata().clone(),
    };
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata);
    let leaves: Vec<usize> = builder
        .parquet_schema()
        .columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.path().parts().first().is_some_and(|p| p == user))
        .map(|(i, _)| i)
        .collect();
    let mask = ProjectionMask::leaves(builder.parquet_schema(), leaves);
    let mut batches = match builder
        .with_projection(mask)
        .with_row_groups(vec![row_group])
        .with_batch_size(match names {
            Some(_) => TEXT_BATCH_ROWS,
            None => BATCH_ROWS,
        })
        .build()
    {
        Ok(batches) => batches,
        Err(e) => return undecodable(&e),
    };
    let mut chunk = Chunk {
        once: Vec::with_capacity(if names.is_some() { 0 } else { rows }),
        ..Chunk::default()
    };
    while let Some(batch) = batches.next().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                if let Some(failure) = lake.storage_failure(&e) {
                    return Err(failure);
                }
                return undecodable(&e);
            }
        };
        let column = batch.column(0);
        if let Some(names) = &names {
            if let Err(why) = index_names(column, names, &mut chunk) {
                return failed(why);
            }
            continue;
        }
        let column = match lake_ids(column, ids) {
            Ok(column) => column,
            Err(why) => return failed(why),
        };
        // Each id is its 64 bits, signed or not (the lake's ids are of one of the two).
        let bits = match column.as_primitive_opt::<Int64Type>() {
            Some(signed) => UInt64Array::new(
                signed.values().inner().clone().into(),
                signed.nulls().cloned(),
            ),
            None => column.as_primitive::<UInt64Type>().clone(),
        };
        chunk.nulls += bits.null_count() as u64;
        if bits.null_count() == 0 {
            chunk.once.extend(bits.values());
        } else {
            chunk.once.extend(bits.iter().flatten());
        }
    }
    Ok(Ok(chunk))
}

/// Reads a file's byte ranges from the lake's store; its footer is already known.
struct Reader {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    metadata: Arc<ParquetMetaData>,
}

impl AsyncFileReader for Reader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<bytes::Bytes>> {
        async move {
            let bytes = self.store.get_range(&self.path, range).await;
            bytes.map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<bytes::Bytes>>> {
        async move {
            let bytes = self.store.get_ranges(&self.path, &ranges).await;
            bytes.map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        futures::future::ready(Ok(self.metadata.clone())).boxed()
    }
}

/// Adds a batch of ids read as text to `chunk` as their indices in `names`: a dictionary array's
/// used entries with their counts, other arrays (integers in a lake of text ids) row by row.
fn index_names(
    column: &dyn Array,
    names: &RwLock<Dictionary>,
    chunk: &mut Chunk,
) -> std::result::Result<(), String> {
    let rows = column.len() as u64;
    let (texts, counts) = match column.as_dictionary_opt::<Int32Type>() {
        Some(keyed) => {
            let texts = lake_ids(keyed.values(), &DataType::Utf8)?;
            let mut counts = vec![0u32; texts.len()];
            for key in keyed.keys().iter().flatten() {
                counts[key as usize] += 1;
            }
            (texts, Some(counts))
        }
        None => (lake_ids(column, &DataType::Utf8)?, None),
    };
    let texts = texts.as_string::<i32>();
    let used = |at: &usize| texts.is_valid(*at) && counts.as_ref().is_none_or(|c| c[*at] > 0);
    let at: Vec<usize> = (0..texts.len()).filter(used).collect();
    let bytes: Vec<&[u8]> = at.iter().map(|at| texts.value(*at).as_bytes()).collect();
    let Some(indices) = Dictionary::shared_name_indices(names, &bytes) else {
        chunk.full = true;
        return Ok(());
    };
    let indices = indices.into_iter().map(u64::from);
    let present = match counts {
        Some(counts) => {
            chunk.counted.extend(indices);
            let used = at.iter().map(|at| counts[*at]);
            chunk.counts.extend(used.clone());
            used.map(u64::from).sum()
        }
        None => {
            chunk.once.extend(indices);
            at.len() as u64
        }
    };
    chunk.nulls += rows - present;
    Ok(())
}

impl DayIds {
    /// Counts the ids: with a dense id range (at most 8 slots per id read) in an array indexed by
    /// id, otherwise by sorting. Either way the ids come out in order.
    fn from_chunks(chunks: Vec<Chunk>) -> DayIds {
        let mut day = DayIds {
            nulls: chunks.iter().map(|c| c.nulls).sum(),
            ..DayIds::default()
        };
        let read: usize = chunks.iter().map(|c| c.counted.len() + c.once.len()).sum();
        let lists = || chunks.iter().flat_map(|c| [&c.counted, &c.once]);
        let min = lists().filter_map(|ids| ids.iter().min()).min();
        let max = lists().filter_map(|ids| ids.iter().max()).max();
        let (Some(&min), Some(&max)) = (min, max) else {
            return day;
        };
        if max - min < (read as u64).saturating_mul(8).max(1 << 16) {
            let mut counts = vec![0u32; (max - min + 1) as usize];
            for chunk in &chunks {
                for (id, n) in chunk.counted.iter().zip(&chunk.counts) {
                    counts[(id - min) as usize] += n;
                }
                for id in &chunk.once {
                    counts[(id - min) as usize] += 1;
                }
            }
            for (offset, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                day.ids.push(min + offset as u64);
                day.counts.push(u64::from(*n));
            }
            return day;
        }
        // Each id is sorted with its count in the key's low bits when both fit in 64 bits, and
        // otherwise once per event.
        let span = u64::BITS - (max - min).leading_zeros();
        let most = chunks.iter().flat_map(|c| &c.counts).max().copied();
        let low = most.map_or(0, |n| u32::BITS - n.leading_zeros());
        let low = if low > 1 && span + low <= u64::BITS {
            low
        } else {
            0
        };
        // Sorted in buffers this thread keeps: fresh ones cost a page fault per 4 KiB.
        SORTING.with_borrow_mut(|(keys, scratch)| {
            keys.clear();
            for chunk in &chunks {
                let counted = chunk.counted.iter().zip(&chunk.counts);
                if low > 0 {
                    keys.extend(counted.map(|(id, n)| (id - min) << low | u64::from(*n)));
                    keys.extend(chunk.once.iter().map(|id| (id - min) << low | 1));
                } else {
                    for (id, n) in counted {
                        keys.extend(std::iter::repeat_n(id - min, *n as usize));
                    }
                    keys.extend(chunk.once.iter().map(|id| id - min));
                }
            }
            radix_sort(keys, scratch, low, span);
            // Each id once, with its count, at the front of the two buffers (the slot written
            // never passes the key read). Without branches: runs are mostly one to three keys
            // long, so a branch on where each ends would be mispredicted about every other key.
            let mask = (1u64 << low) - 1;
            let count = |key: u64| if low == 0 { 1 } else { key & mask };
            let (mut slot, mut run) = (0, count(keys[0]));
            keys[0] >>= low;
            for at in 1..keys.len() {
                let (id, n) = (keys[at] >> low, count(keys[at]));
                let same = id == keys[slot];
                scratch[slot] = run;
                slot += usize::from(!same);
                run = n + (run & 0u64.wrapping_sub(u64::from(same)));
                keys[slot] = id;
            }
            scratch[slot] = run;
            let distinct = slot + 1;
            day.ids = keys[..distinct].iter().map(|id| id + min).collect();
            day.counts = scratch[..distinct].to_vec();
        });
        day
    }
}

thread_local! {
    /// The keys being sorted and the sort's scratch space, kept from one day to the next.
    static SORTING: std::cell::RefCell<(Vec<u64>, Vec<u64>)> = Default::default();
}

/// Sorts `keys` by their bits from `low` to `low + bits` (the bits above are zero), least
/// significant digit first, in as few passes of at most 11 bits as it takes (a pass's counts then
/// stay in the fastest cache); one read counts every pass's digits.
fn radix_sort(keys: &mut Vec<u64>, scratch: &mut Vec<u64>, low: u32, bits: u32) {
    let passes = bits.div_ceil(11).max(1) as usize;
    let digit = bits.div_ceil(passes as u32);
    let (mask, size) = ((1u64 << digit) - 1, 1usize << digit);
    let mut starts = vec![0usize; size * passes];
    for key in keys.iter() {
        for pass in 0..passes {
            let shift = low + pass as u32 * digit;
            starts[pass * size + ((key >> shift) & mask) as usize] += 1;
        }
    }
    scratch.resize(keys.len(), 0);
    for (pass, starts) in starts.chunks_mut(size).enumerate() {
        let mut sum = 0;
        for start in starts.iter_mut() {
            (*start, sum) = (sum, sum + *start);
        }
        let shift = low + pass as u32 * digit;
        for key in keys.iter() {
            let slot = &mut starts[((key >> shift) & mask) as usize];
            scratch[*slot] = *key;
            *slot += 1;
        }
        std::mem::swap(keys, scratch);
    }
}

impl DayUsers {
    /// The day's users as indices of `dictionary` (which learns the ids it has not seen); None
    /// when it cannot learn them all (more than 2^32 users).
    pub fn new(day: DayIds, dictionary: &RwLock<Dictionary>) -> Option<DayUsers> {
        let mut histogram = Histogram::default();
        for n in &day.counts {
            histogram.add(*n);
        }
        // The indices as bits, then as a bitmap: cheaper than inserting them one by one.
        let indices = match day.indexed {
            true if day.full => return None,
            true => day.ids.iter().map(|i| *i as u32).collect(),
            false => Dictionary::shared_indices(dictionary, &day.ids)?,
        };
        let top = indices.iter().max().map_or(0, |i| *i as usize / 8 + 1);
        let mut bits = vec![0u8; top];
        for i in indices {
            bits[i as usize / 8] |= 1 << (i % 8);
        }
        let users = RoaringBitmap::from_lsb0_bytes(0, &bits);
        Some(DayUsers {
            active: users.len(),
            users,
            opens: day.counts.iter().sum(),
            nulls: day.nulls,
            histogram: histogram.into_pairs(),
            id_types: IdTypes::default(),
        })
    }

    /// The opens of the user at `rank` (1-based) when users are ordered by their opens.
    pub fn opens_at_rank(&self, rank: u64) -> Option<u64> {
        let mut seen = 0;
        self.histogram.iter().find_map(|(opens, users)| {
            seen += users;
            (seen >= rank).then_some(*opens)
        })
    }
}

/// Users per number of opens: small counts in an array, the rare large ones in a map.
#[derive(Default)]
struct Histogram {
    small: Vec<u64>,
    large: BTreeMap<u64, u64>,
}

impl Histogram {
    const SMALL: u64 = 4096;

    fn add(&mut self, opens: u64) {
        if opens < Self::SMALL {
            let i = opens as usize;
            if self.small.len() <= i {
                self.small.resize(i + 1, 0);
            }
            self.small[i] += 1;
        } else {
            *self.large.entry(opens).or_default() += 1;
        }
    }

    fn into_pairs(self) -> Vec<(u64, u64)> {
        let small = self.small.into_iter().enumerate();
        small
            .filter(|(_, users)| *users > 0)
            .map(|(opens, users)| (opens as u64, users))
            .chain(self.large)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of these row groups' ids: each id once per event, or (`counted`) each distinct id
    /// with its count as a dictionary gives them, but for the last id, which comes once.
    fn day_of(ids: &[Vec<u64>], counted: bool) -> DayUsers {
        let chunks = ids
            .iter()
            .map(|ids| {
                let mut chunk = Chunk {
                    once: ids.clone(),
                    nulls: 1,
                    ..Chunk::default()
                };
                if counted {
                    let last = chunk.once.split_off(ids.len() - 1);
                    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
                    for id in std::mem::replace(&mut chunk.once, last) {
                        *counts.entry(id).or_default() += 1;
                    }
                    (chunk.counted, chunk.counts) = counts.into_iter().unzip();
                }
                chunk
            })
            .collect();
        DayUsers::new(DayIds::from_chunks(chunks), &Dictionary::default().into()).unwrap()
    }

    /// The dense (array) and sparse (sorting: ids with their counts in one key, or once per
    /// event when they do not fit) counts agree with a brute-force count.
    #[test]
    fn counts_match_brute_force() {
        let dense = vec![vec![5, 3, 5, 9], vec![3, 5, 100]];
        let sparse = vec![vec![5, 3, 5, 1 << 39], vec![3, 5, 1 << 40]];
        let full = vec![vec![5, 3, 5, u64::MAX], vec![3, 5, 1 << 40]];
        for (ids, counted) in [dense, sparse, full]
            .into_iter()
            .flat_map(|ids| [(ids.clone(), false), (ids, true)])
        {
            let day = day_of(&ids, counted);
            let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
            for id in ids.iter().flatten() {
                *counts.entry(*id).or_default() += 1;
            }
            // A new dictionary numbers the ids in order.
            let users: Vec<u32> = day.users.iter().collect();
            assert_eq!(users, (0..counts.len() as u32).collect::<Vec<_>>());
            let mut histogram: BTreeMap<u64, u64> = BTreeMap::new();
            for n in counts.values() {
                *histogram.entry(*n).or_default() += 1;
            }
            assert_eq!(day.histogram, histogram.into_iter().collect::<Vec<_>>());
            assert_eq!(day.opens, 7);
            assert_eq!(day.nulls, 2);
            assert_eq!(day.opens_at_rank(1), Some(1));
            assert_eq!(day.opens_at_rank(4), Some(3));
            assert_eq!(day.opens_at_rank(5), None);
        }
    }

    #[test]
    fn radix_sort_sorts() {
        let mut state = 3u64;
        let mut keys: Vec<u64> = (0..5000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                state >> 20
            })
            .collect();
        let mut sorted = keys.clone();
        radix_sort(&mut sorted, &mut Vec::new(), 0, 44);
        keys.sort_unstable();
        assert_eq!(sorted, keys);
    }

    #[test]
    fn an_empty_day_has_no_users() {
        let day = day_of(&[vec![]], false);
        assert!(day.users.is_empty());
        assert_eq!((day.opens, day.nulls), (0, 1));
        assert_eq!(day.opens_at_rank(1), None);
    }
}
