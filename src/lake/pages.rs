//! The user column read page by page, without arrow arrays. A dictionary-encoded column chunk is
//! counted per dictionary entry, so each distinct id of a row group goes to the day's sort once,
//! however many events it has; a plain or delta-encoded page (as Parquet v2 writers make them:
//! DELTA_BINARY_PACKED integers, DELTA_LENGTH_BYTE_ARRAY and DELTA_BYTE_ARRAY text) is taken id
//! by id. Text ids are looked up
//! in the lake's dictionary as they are read (a dictionary page's entries once), and go on as
//! their indices. Whatever this does not read (other encodings, nested columns, narrow or
//! unsigned 64-bit types, text that is not UTF-8, a page that does not decode, text ids the
//! dictionary has no room for) it declines, and the arrow reader reads it or says what is wrong
//! with it.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use datafusion::parquet::basic::{Encoding, Type as Physical};
use datafusion::parquet::column::page::{Page, PageReader};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ColumnChunkMetaData;
use datafusion::parquet::file::reader::{ChunkReader, Length};
use datafusion::parquet::file::serialized_reader::SerializedPageReader;

use super::dictionary::Dictionary;
use super::inspect::{IdKind, id_kind, stored};

/// One row group's ids, as stored: distinct ids with how many events each has (`counted` and
/// `counts`, from a dictionary), and ids of one event each (`once`). Text ids come as their
/// indices in the lake's dictionary, unless it could not hold them all (`full`).
#[derive(Debug, Default)]
pub struct Chunk {
    pub counted: Vec<u64>,
    pub counts: Vec<u32>,
    pub once: Vec<u64>,
    pub full: bool,
    /// Rows whose id is NULL.
    pub nulls: u64,
}

/// A user column whose pages can be read here: a top-level INT32, INT64 or text column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its index among the file's leaf columns.
    pub leaf: usize,
    width: Width,
    /// It may hold NULLs: its pages start with definition levels.
    optional: bool,
}

/// How an id is stored, and how it becomes one of the lake's ids (Int64, as in the SQL), or an
/// index in the lake's dictionary of text ids.
#[derive(Debug, Clone, Copy)]
enum Width {
    Signed32,
    Unsigned32,
    /// Int64, or UInt64 in a lake of unsigned ids: either is its 64 bits.
    Bits64,
    Text,
}

impl Column {
    /// The user column of a file, when it is one this module reads as the lake's ids (`ids`, see
    /// [`IdTypes::read_as`](super::inspect::IdTypes::read_as)): integers; text in a lake of text
    /// ids; unsigned 64-bit integers in a lake of those only (in a lake of signed ids, the arrow
    /// reader checks that each fits).
    pub fn find(metadata: &ArrowReaderMetadata, user: &str, ids: &DataType) -> Option<Column> {
        let field = metadata.schema().field_with_name(user).ok()?;
        let leaves = metadata.metadata().file_metadata().schema_descr();
        let leaf =
            (0..leaves.num_columns()).find(|i| leaves.column(*i).path().parts() == [user])?;
        let descr = leaves.column(leaf);
        if descr.max_rep_level() != 0 || descr.max_def_level() > 1 {
            return None;
        }
        let string = id_kind(field.data_type()) == Some(IdKind::String);
        // A dictionary array (as the writer kept it) is stored as its values are.
        let stored = stored(field.data_type());
        let text = ids == &DataType::Utf8;
        let width = match (descr.physical_type(), stored) {
            (Physical::BYTE_ARRAY, _) if text && string => Width::Text,
            _ if text => return None,
            (Physical::INT32, DataType::Int32) => Width::Signed32,
            (Physical::INT32, DataType::UInt32) => Width::Unsigned32,
            (Physical::INT64, DataType::Int64) => Width::Bits64,
            (Physical::INT64, DataType::UInt64) if ids == &DataType::UInt64 => Width::Bits64,
            _ => return None,
        };
        Some(Column {
            leaf,
            width,
            optional: descr.max_def_level() == 1,
        })
    }
}

/// The ids of one column chunk (`bytes`, as fetched from `meta.byte_range()`) of `rows` rows,
/// text ids as their indices in `names`; None when this module declines it.
pub fn read(
    bytes: Bytes,
    meta: &ColumnChunkMetaData,
    rows: usize,
    column: Column,
    names: Option<&RwLock<Dictionary>>,
) -> Option<Chunk> {
    let decode = |data: &[u8], n: usize, encoding, out: &mut Vec<u64>| match column.width {
        Width::Text => decode_text(data, n, encoding, names?, out),
        width => decode_integers(data, n, encoding, width, out),
    };
    // Events per dictionary entry are counted in 32 bits.
    u32::try_from(rows).ok()?;
    let source = Arc::new(ChunkBytes {
        start: meta.byte_range().0,
        bytes,
    });
    let mut pages = SerializedPageReader::new(source, meta, rows, None).ok()?;
    let mut chunk = Chunk::default();
    let mut dictionary: Option<Vec<u64>> = None;
    let mut seen: Vec<u32> = Vec::new();
    let mut levels = 0usize;
    while let Some(page) = pages.get_next_page().ok()? {
        let (data, present, encoding) = match page {
            Page::DictionaryPage {
                buf,
                num_values,
                encoding,
                ..
            } => {
                let plain = matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY);
                if dictionary.is_some() || !plain {
                    return None;
                }
                let mut values = Vec::new();
                decode(&buf, num_values as usize, Encoding::PLAIN, &mut values)?;
                seen = vec![0; values.len()];
                dictionary = Some(values);
                continue;
            }
            Page::DataPage {
                buf,
                num_values,
                encoding,
                def_level_encoding,
                ..
            } => {
                let n = num_values as usize;
                levels += n;
                if !column.optional {
                    (buf, n, encoding)
                } else {
                    if def_level_encoding != Encoding::RLE {
                        return None;
                    }
                    let (length, rest) = buf.split_first_chunk::<4>()?;
                    let length = u32::from_le_bytes(*length) as usize;
                    let mut present = 0usize;
                    hybrid(rest.get(..length)?, 1, n, |level, times| {
                        present += (level as usize) * times as usize;
                        Some(())
                    })?;
                    (buf.slice(4 + length..), present, encoding)
                }
            }
            Page::DataPageV2 {
                buf,
                num_values,
                num_nulls,
                encoding,
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            } => {
                levels += num_values as usize;
                let levels_length = def_levels_byte_len as usize + rep_levels_byte_len as usize;
                let present = num_values.checked_sub(num_nulls)? as usize;
                if levels_length > buf.len() {
                    return None;
                }
                (buf.slice(levels_length..), present, encoding)
            }
        };
        match encoding {
            Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY if present > 0 => {
                dictionary.as_ref()?;
                let (width, runs) = data.split_first()?;
                hybrid(runs, *width, present, |index, times| {
                    *seen.get_mut(index as usize)? += times;
                    Some(())
                })?;
            }
            Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY => {}
            _ => decode(&data, present, encoding, &mut chunk.once)?,
        }
    }
    if levels != rows {
        return None;
    }
    let present = chunk.once.len() as u64 + seen.iter().map(|n| u64::from(*n)).sum::<u64>();
    chunk.nulls = (rows as u64).checked_sub(present)?;
    if let Some(dictionary) = dictionary {
        (chunk.counted, chunk.counts) = keep_seen(dictionary, seen);
    }
    Some(chunk)
}

/// A dictionary's ids with their events, without those no row uses (a writer rarely makes any:
/// the vectors are then kept as they are).
fn keep_seen(mut ids: Vec<u64>, mut counts: Vec<u32>) -> (Vec<u64>, Vec<u32>) {
    if counts.contains(&0) {
        let mut kept = 0;
        for at in 0..counts.len() {
            if counts[at] > 0 {
                (ids[kept], counts[kept]) = (ids[at], counts[at]);
                kept += 1;
            }
        }
        ids.truncate(kept);
        counts.truncate(kept);
    }
    (ids, counts)
}

/// `n` integer ids encoded as `encoding` (plain or delta) at the start of `data`, appended to
/// `out`; None for another encoding.
fn decode_integers(
    data: &[u8],
    n: usize,
    encoding: Encoding,
    width: Width,
    out: &mut Vec<u64>,
) -> Option<()> {
    let id = |value: u64| match width {
        Width::Signed32 => i64::from(value as i32) as u64,
        Width::Unsigned32 => u64::from(value as u32),
        Width::Bits64 | Width::Text => value,
    };
    match encoding {
        Encoding::PLAIN if matches!(width, Width::Bits64) => {
            let words = data.get(..n.checked_mul(8)?)?.chunks_exact(8);
            out.extend(words.map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))));
        }
        Encoding::PLAIN => {
            let words = data.get(..n.checked_mul(4)?)?.chunks_exact(4);
            out.extend(
                words.map(|w| id(u32::from_le_bytes(w.try_into().expect("4 bytes")).into())),
            );
        }
        Encoding::DELTA_BINARY_PACKED => out.extend(delta_packed(data, n)?.0.into_iter().map(id)),
        _ => return None,
    }
    Some(())
}

/// `n` text ids encoded as `encoding` (plain, delta lengths or delta strings) at the start of
/// `data`, appended to `out` as their indices in `names`; None for another encoding, or text that
/// is not UTF-8.
fn decode_text(
    data: &[u8],
    n: usize,
    encoding: Encoding,
    names: &RwLock<Dictionary>,
    out: &mut Vec<u64>,
) -> Option<()> {
    let rebuilt;
    // The texts, and bytes that hold them all (and what lies between).
    let (texts, all): (Vec<&[u8]>, &[u8]) = match encoding {
        Encoding::PLAIN => {
            let mut texts = Vec::with_capacity(n.min(data.len() / 4));
            let mut rest = data;
            for _ in 0..n {
                let (length, after) = rest.split_first_chunk::<4>()?;
                let text;
                (text, rest) = after.split_at_checked(u32::from_le_bytes(*length) as usize)?;
                texts.push(text);
            }
            (texts, data)
        }
        Encoding::DELTA_LENGTH_BYTE_ARRAY => delta_lengths(data, n)?,
        Encoding::DELTA_BYTE_ARRAY => {
            // Each text is a prefix of the one before, then its own suffix.
            let (prefixes, rest) = delta_packed(data, n)?;
            let (suffixes, _) = delta_lengths(rest, n)?;
            let mut bytes = Vec::new();
            let mut ranges = Vec::with_capacity(n);
            let mut last = 0..0;
            for (prefix, suffix) in prefixes.into_iter().zip(suffixes) {
                let prefix = usize::try_from(prefix).ok().filter(|p| *p <= last.len())?;
                let start = bytes.len();
                bytes.extend_from_within(last.start..last.start + prefix);
                bytes.extend_from_slice(suffix);
                last = start..bytes.len();
                ranges.push(last.clone());
            }
            rebuilt = bytes;
            let texts = ranges.into_iter().map(|range| &rebuilt[range]).collect();
            (texts, &rebuilt[..])
        }
        _ => return None,
    };
    // All ASCII is all UTF-8; else each text is checked.
    if !all.is_ascii() && texts.iter().any(|text| std::str::from_utf8(text).is_err()) {
        return None;
    }
    let indices = Dictionary::shared_name_indices(names, &texts)?;
    out.extend(indices.into_iter().map(u64::from));
    Some(())
}

/// `n` texts in the DELTA_LENGTH_BYTE_ARRAY encoding (their lengths delta-encoded, then their
/// bytes) at the start of `data`, and their bytes together.
fn delta_lengths(data: &[u8], n: usize) -> Option<(Vec<&[u8]>, &[u8])> {
    let (lengths, bytes) = delta_packed(data, n)?;
    let mut rest = bytes;
    let mut texts = Vec::with_capacity(n);
    for length in lengths {
        let text;
        (text, rest) = rest.split_at_checked(usize::try_from(length).ok()?)?;
        texts.push(text);
    }
    Some((texts, &bytes[..bytes.len() - rest.len()]))
}

/// `n` values in Parquet's DELTA_BINARY_PACKED encoding at the start of `data`, and the bytes
/// after them. Sums wrap in 64 bits (a 32-bit column's values are their low 32 bits, as its
/// writer's 32-bit sums). None when the values are not `n`, or the encoding is damaged.
fn delta_packed(data: &[u8], n: usize) -> Option<(Vec<u64>, &[u8])> {
    let (block, data) = uleb128(data)?;
    let (miniblocks, data) = uleb128(data)?;
    let (total, data) = uleb128(data)?;
    let (first, mut data) = uleb128(data)?;
    let block = usize::try_from(block).ok()?;
    let miniblocks = usize::try_from(miniblocks).ok()?;
    let per_miniblock = block.checked_div(miniblocks)?;
    let shape = block.is_multiple_of(128) && per_miniblock.is_multiple_of(32);
    if total != n as u64 || !shape || per_miniblock * miniblocks != block {
        return None;
    }
    let mut values = Vec::with_capacity(n);
    let mut last = zigzag(first);
    if n > 0 {
        values.push(last);
    }
    while values.len() < n {
        let (min_delta, rest) = uleb128(data)?;
        let (widths, rest) = rest.split_at_checked(miniblocks)?;
        data = rest;
        // Miniblocks after the last value's have a width but no bytes.
        for width in widths {
            if values.len() == n {
                break;
            }
            let width = usize::from(*width);
            if width > 64 {
                return None;
            }
            let packed;
            (packed, data) = data.split_at_checked(per_miniblock.checked_mul(width)? / 8)?;
            for i in 0..per_miniblock.min(n - values.len()) {
                let delta = unpack(packed, width, i).wrapping_add(zigzag(min_delta));
                last = last.wrapping_add(delta);
                values.push(last);
            }
        }
    }
    Some((values, data))
}

/// The `i`th value of `width` bits (at most 64) packed least significant bit first in `packed`
/// (long enough to hold it).
fn unpack(packed: &[u8], width: usize, i: usize) -> u64 {
    if width == 0 {
        return 0;
    }
    let (bit, at) = (i * width, i * width / 8);
    let word = match packed.get(at..at + 16) {
        Some(bytes) => u128::from_le_bytes(bytes.try_into().expect("16 bytes")),
        None => {
            let mut word = [0u8; 16];
            let bytes = &packed[at..];
            word[..bytes.len()].copy_from_slice(bytes);
            u128::from_le_bytes(word)
        }
    };
    ((word >> (bit % 8)) as u64) & (u64::MAX >> (64 - width))
}

/// A zigzag-encoded signed number (0, -1, 1, -2, …), as its 64 bits.
fn zigzag(n: u64) -> u64 {
    (n >> 1) ^ 0u64.wrapping_sub(n & 1)
}

/// Walks `count` values of `width` bits in Parquet's RLE / bit-packed hybrid encoding, calling
/// `each(value, times)`; None when the runs end early or `each` says no.
fn hybrid(
    mut data: &[u8],
    width: u8,
    count: usize,
    mut each: impl FnMut(u32, u32) -> Option<()>,
) -> Option<()> {
    if width > 32 {
        return None;
    }
    let width = usize::from(width);
    let mut left = count;
    while left > 0 {
        let header;
        (header, data) = uleb128(data)?;
        if header & 1 == 0 {
            // A run: one value, repeated.
            let times = usize::try_from(header >> 1).ok()?.min(left);
            let (value, rest) = data.split_at_checked(width.div_ceil(8))?;
            data = rest;
            let mut bytes = [0u8; 4];
            bytes[..value.len()].copy_from_slice(value);
            each(u32::from_le_bytes(bytes), times as u32)?;
            left -= times;
        } else {
            // Groups of eight values, bit-packed, least significant bit first.
            let groups = usize::try_from(header >> 1).ok()?;
            let (packed, rest) = data.split_at_checked(groups.checked_mul(width)?)?;
            data = rest;
            let n = (groups * 8).min(left);
            let mask = (1u64 << width) - 1;
            for i in 0..n {
                let bit = i * width;
                let at = bit / 8;
                let word = match packed.get(at..at + 8) {
                    Some(word) => u64::from_le_bytes(word.try_into().expect("8 bytes")),
                    None => {
                        let mut word = [0u8; 8];
                        let tail = packed.get(at..).unwrap_or_default();
                        word[..tail.len()].copy_from_slice(tail);
                        u64::from_le_bytes(word)
                    }
                };
                each(((word >> (bit % 8)) & mask) as u32, 1)?;
            }
            left -= n;
        }
    }
    Some(())
}

/// An unsigned LEB128 number at the start of `data`, and what follows it.
fn uleb128(data: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &data[i + 1..]));
        }
    }
    None
}

/// A column chunk's bytes, addressed by their offsets in the file.
struct ChunkBytes {
    start: u64,
    bytes: Bytes,
}

impl Length for ChunkBytes {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for ChunkBytes {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        let length = self.len().saturating_sub(start) as usize;
        Ok(bytes::Buf::reader(self.get_bytes(start, length)?))
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        let from = start.checked_sub(self.start).map(|s| s as usize);
        match from.filter(|from| from + length <= self.bytes.len()) {
            Some(from) => Ok(self.bytes.slice(from..from + length)),
            None => Err(ParquetError::EOF(format!(
                "{length} bytes at {start} are outside the column chunk"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int16Array, Int32Array, Int64Array};
    use datafusion::arrow::array::{RecordBatch, StringArray, UInt32Array, UInt64Array};
    use datafusion::arrow::datatypes::{
        Field, Int32Type, Int64Type, Schema, UInt32Type, UInt64Type,
    };
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::{
        EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion,
    };

    use super::*;
    use crate::lake::inspect::IdTypes;

    /// A Parquet file of one column `userId`, in memory.
    fn file(ids: ArrayRef, props: WriterProperties) -> (Bytes, ArrowReaderMetadata) {
        let nullable = ids.null_count() > 0;
        let field = Field::new("userId", ids.data_type().clone(), nullable);
        let schema = Arc::new(Schema::new(vec![field]));
        let batch = RecordBatch::try_new(schema.clone(), vec![ids]).unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let bytes = Bytes::from(bytes);
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).unwrap();
        (bytes, metadata)
    }

    /// Events per id and NULLs, summed over every row group read here; None if any was declined.
    type Read = (HashMap<u64, u64>, u64);

    /// Every row group read here (text ids as their indices in `names`), and whether ids came
    /// counted from a dictionary and plainly.
    fn read_all(
        bytes: &Bytes,
        metadata: &ArrowReaderMetadata,
        names: Option<&RwLock<Dictionary>>,
    ) -> Option<(Read, [bool; 2])> {
        let ids = match names {
            Some(_) => DataType::Utf8,
            None => IdTypes::of([metadata
                .schema()
                .field_with_name("userId")
                .ok()?
                .data_type()])
            .read_as(),
        };
        let column = Column::find(metadata, "userId", &ids)?;
        let (mut events, mut nulls, mut kinds) = (HashMap::new(), 0, [false; 2]);
        for row_group in metadata.metadata().row_groups() {
            let meta = row_group.column(column.leaf);
            let (start, length) = meta.byte_range();
            let chunk_bytes = bytes.slice(start as usize..(start + length) as usize);
            let rows = row_group.num_rows() as usize;
            let chunk = read(chunk_bytes, meta, rows, column, names)?;
            for (id, n) in chunk.counted.iter().zip(&chunk.counts) {
                *events.entry(*id).or_default() += u64::from(*n);
            }
            for id in &chunk.once {
                *events.entry(*id).or_default() += 1;
            }
            nulls += chunk.nulls;
            kinds[0] |= !chunk.counted.is_empty();
            kinds[1] |= !chunk.once.is_empty();
        }
        Some(((events, nulls), kinds))
    }

    /// Ids with repeats and NULLs, as the lake's ids (Int64 bits, as the SQL sees them).
    fn ids(n: u64, seed: u64) -> Vec<Option<i64>> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let id = (state >> 40) as i64 % 5_000 - 1_000;
                (!state.is_multiple_of(13)).then_some(id * 1_000_003)
            })
            .collect()
    }

    /// Dictionary pages, plain pages, a dictionary that overflows into plain pages, data pages
    /// v1 and v2, statistics in page headers, NULLs or none, uncompressed, snappy or zstd, many
    /// small pages and row groups: the counts read from the pages are the brute-force counts of
    /// the values written.
    #[test]
    fn pages_give_the_counts_of_the_values_written() {
        // Each setting, and which of dictionary and plain pages it writes.
        let settings = [
            ("dictionary", [true, false], WriterProperties::builder()),
            (
                "plain",
                [false, true],
                WriterProperties::builder().set_dictionary_enabled(false),
            ),
            (
                "dictionary overflowing into plain pages",
                [true, true],
                WriterProperties::builder().set_dictionary_page_size_limit(4 * 1024),
            ),
            (
                "data pages v2",
                [true, false],
                WriterProperties::builder().set_writer_version(WriterVersion::PARQUET_2_0),
            ),
            (
                "small pages and row groups",
                [true, false],
                small_pages(WriterProperties::builder()),
            ),
            (
                "statistics in page headers",
                [true, false],
                WriterProperties::builder()
                    .set_statistics_enabled(EnabledStatistics::Page)
                    .set_write_page_header_statistics(true),
            ),
        ];
        let codecs = [
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
            Compression::ZSTD(Default::default()),
        ];
        for (setting, kinds, props) in settings {
            for codec in codecs {
                for with_nulls in [false, true] {
                    for (kind, array) in columns(with_nulls) {
                        let what = format!("{kind}, {setting}, {codec}, nulls: {with_nulls}");
                        let props = props.clone().set_compression(codec).build();
                        assert_eq!(counts(&array, props, &what), kinds, "{what}");
                    }
                }
            }
        }
    }

    /// Delta-encoded pages (integers; text by delta lengths and by delta strings), in data pages
    /// v1 and v2, with NULLs or none, in one page or many: read here, and the counts are the
    /// brute-force counts; so are ids whose differences wrap around 64 bits.
    #[test]
    fn delta_encoded_pages_give_the_counts_of_the_values_written() {
        for version in [WriterVersion::PARQUET_1_0, WriterVersion::PARQUET_2_0] {
            for small in [false, true] {
                for with_nulls in [false, true] {
                    for (kind, array) in columns(with_nulls) {
                        let encodings: &[Encoding] = match kind {
                            "Utf8" => &[
                                Encoding::DELTA_LENGTH_BYTE_ARRAY,
                                Encoding::DELTA_BYTE_ARRAY,
                            ],
                            _ => &[Encoding::DELTA_BINARY_PACKED],
                        };
                        for encoding in encodings {
                            let mut props = WriterProperties::builder()
                                .set_writer_version(version)
                                .set_dictionary_enabled(false)
                                .set_encoding(*encoding);
                            if small {
                                props = small_pages(props);
                            }
                            let what = format!(
                                "{kind}, {encoding}, {version:?}, small: {small}, nulls: {with_nulls}"
                            );
                            let kinds = counts(&array, props.build(), &what);
                            assert_eq!(kinds, [false, true], "{what}");
                        }
                    }
                }
            }
        }
        let extremes = (0..3_000i64).map(|i| match i % 3 {
            0 => i64::MIN + i,
            1 => i64::MAX - i,
            _ => i * 7,
        });
        let extremes: ArrayRef = Arc::new(Int64Array::from_iter_values(extremes));
        let delta = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::DELTA_BINARY_PACKED)
            .build();
        assert_eq!(counts(&extremes, delta.clone(), "extremes"), [false, true]);
        let extremes = (0..3_000u64).map(|i| match i % 3 {
            0 => i,
            1 => u64::MAX - i,
            _ => (1 << 63) + i * 7,
        });
        let extremes: ArrayRef = Arc::new(UInt64Array::from_iter_values(extremes));
        assert_eq!(counts(&extremes, delta, "unsigned extremes"), [false, true]);
    }

    /// Many small pages and row groups.
    fn small_pages(props: WriterPropertiesBuilder) -> WriterPropertiesBuilder {
        props
            .set_data_page_row_count_limit(700)
            .set_write_batch_size(300)
            .set_max_row_group_row_count(Some(5_000))
    }

    /// The same ids (with NULLs, or 42 in their place) as each type of user column read here.
    fn columns(with_nulls: bool) -> [(&'static str, ArrayRef); 5] {
        let values: Vec<Option<i64>> = ids(20_000, 7)
            .into_iter()
            .map(|id| id.or((!with_nulls).then_some(42)))
            .collect();
        [
            (
                "Int64",
                Arc::new(Int64Array::from_iter(values.iter().copied())),
            ),
            (
                "Int32",
                Arc::new(Int32Array::from_iter(
                    values.iter().map(|v| v.map(|v| v as i32)),
                )),
            ),
            (
                "UInt32",
                Arc::new(UInt32Array::from_iter(
                    values.iter().map(|v| v.map(|v| (v as i32) as u32)),
                )),
            ),
            (
                "UInt64",
                Arc::new(UInt64Array::from_iter(
                    values.iter().map(|v| v.map(|v| (v as u64) << 1)),
                )),
            ),
            (
                "Utf8",
                Arc::new(StringArray::from_iter(
                    values.iter().map(|v| v.map(|v| format!("id {v}"))),
                )),
            ),
        ]
    }

    /// Writes `array` with `props` and asserts that the pages read here give its ids' counts
    /// (text ids counted by text, then each text's index asked of the dictionary the read
    /// filled); returns whether ids came counted from a dictionary and plainly.
    fn counts(array: &ArrayRef, props: WriterProperties, what: &str) -> [bool; 2] {
        let mut expected: HashMap<u64, u64> = HashMap::new();
        let mut texts: HashMap<&str, u64> = HashMap::new();
        let mut nulls = 0;
        for i in 0..array.len() {
            if array.is_null(i) {
                nulls += 1;
                continue;
            }
            let id = match array.data_type() {
                DataType::Int64 => array.as_primitive::<Int64Type>().value(i) as u64,
                DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(i)) as u64,
                DataType::UInt32 => u64::from(array.as_primitive::<UInt32Type>().value(i)),
                DataType::UInt64 => array.as_primitive::<UInt64Type>().value(i),
                _ => {
                    *texts.entry(array.as_string::<i32>().value(i)).or_default() += 1;
                    continue;
                }
            };
            *expected.entry(id).or_default() += 1;
        }
        let (bytes, metadata) = file(array.clone(), props);
        let text = array.data_type() == &DataType::Utf8;
        let names = text.then(|| RwLock::new(Dictionary::new(true)));
        let read = read_all(&bytes, &metadata, names.as_ref());
        let (read, kinds) = read.unwrap_or_else(|| panic!("{what}: declined"));
        if let Some(names) = &names {
            let keys: Vec<&[u8]> = texts.keys().map(|t| t.as_bytes()).collect();
            let indices = Dictionary::shared_name_indices(names, &keys).unwrap();
            let counts = texts.values().copied();
            expected = indices.into_iter().map(u64::from).zip(counts).collect();
        }
        assert_eq!(read, (expected, nulls), "{what}");
        kinds
    }

    /// Encodings and types not read here are declined, never misread.
    #[test]
    fn what_is_not_read_here_is_declined() {
        let values = || ids(3_000, 3).into_iter().map(|v| v.unwrap_or(9));
        let split = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::BYTE_STREAM_SPLIT)
            .build();
        let (bytes, metadata) = file(Arc::new(Int64Array::from_iter_values(values())), split);
        assert!(Column::find(&metadata, "userId", &DataType::Int64).is_some());
        assert!(
            read_all(&bytes, &metadata, None).is_none(),
            "byte-stream-split pages"
        );
        // Unsigned 64-bit ids in a lake of signed ones (the arrow reader checks that each
        // fits), and 16-bit ids.
        for array in [
            Arc::new(UInt64Array::from_iter_values(values().map(|v| v as u64))) as ArrayRef,
            Arc::new(Int16Array::from_iter_values(values().map(|v| v as i16))),
        ] {
            let (_, metadata) = file(array, WriterProperties::default());
            assert!(Column::find(&metadata, "userId", &DataType::Int64).is_none());
        }
        // Integers in a lake of text ids (read as their digits by the arrow reader), text in
        // one of integers.
        let (_, metadata) = file(
            Arc::new(Int64Array::from_iter_values(values())),
            plain_uncompressed(),
        );
        assert!(Column::find(&metadata, "userId", &DataType::Utf8).is_none());
        let texts = || values().map(|v| format!("id {v}"));
        let (bytes, metadata) = file(
            Arc::new(StringArray::from_iter_values(texts())),
            plain_uncompressed(),
        );
        assert!(Column::find(&metadata, "userId", &DataType::Int64).is_none());
        // Text that is not UTF-8: one id's first byte changed (the pages are plain, uncompressed,
        // and have no checksums).
        let names = RwLock::new(Dictionary::new(true));
        assert!(read_all(&bytes, &metadata, Some(&names)).is_some());
        let mut damaged = bytes.to_vec();
        let at = damaged.windows(3).position(|w| w == b"id ").unwrap();
        damaged[at] = 0xff;
        let damaged = Bytes::from(damaged);
        assert!(
            read_all(&damaged, &metadata, Some(&names)).is_none(),
            "not UTF-8"
        );
    }

    /// Plain, uncompressed pages.
    fn plain_uncompressed() -> WriterProperties {
        WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_compression(Compression::UNCOMPRESSED)
            .build()
    }

    /// A damaged column chunk is declined or read, never a panic (the arrow reader then says
    /// what is wrong with it).
    #[test]
    fn damaged_chunks_do_not_panic() {
        let values = ids(5_000, 11);
        let texts = values.iter().map(|v| v.map(|v| format!("id {v}")));
        let integers: ArrayRef = Arc::new(Int64Array::from_iter(values.iter().copied()));
        let texts: ArrayRef = Arc::new(StringArray::from_iter(texts));
        let encoded = [
            (&integers, None),
            (&texts, None),
            (&integers, Some(Encoding::DELTA_BINARY_PACKED)),
            (&texts, Some(Encoding::DELTA_LENGTH_BYTE_ARRAY)),
            (&texts, Some(Encoding::DELTA_BYTE_ARRAY)),
        ];
        // Uncompressed, so that the damage reaches the decoding, and snappy, so that it reaches
        // the decompression.
        let codecs = [Compression::UNCOMPRESSED, Compression::SNAPPY];
        for ((array, encoding), codec) in encoded.into_iter().flat_map(|e| codecs.map(|c| (e, c))) {
            let names =
                (array.data_type() == &DataType::Utf8).then(|| RwLock::new(Dictionary::new(true)));
            let mut props = WriterProperties::builder().set_compression(codec);
            if let Some(encoding) = encoding {
                props = props.set_dictionary_enabled(false).set_encoding(encoding);
            }
            let (bytes, metadata) = file(array.clone(), props.build());
            let ids = IdTypes::of([array.data_type()]).read_as();
            let column = Column::find(&metadata, "userId", &ids).unwrap();
            let meta = metadata.metadata().row_group(0).column(column.leaf);
            let (start, length) = meta.byte_range();
            let chunk = &bytes[start as usize..(start + length) as usize];
            assert!(
                read(
                    Bytes::copy_from_slice(chunk),
                    meta,
                    5_000,
                    column,
                    names.as_ref()
                )
                .is_some()
            );
            let mut state = 5u64;
            for _ in 0..300 {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                let mut damaged = chunk.to_vec();
                let at = (state >> 33) as usize % damaged.len();
                damaged[at] ^= (state >> 8) as u8 | 1;
                if state.is_multiple_of(3) {
                    damaged.truncate(at);
                }
                let _ = read(Bytes::from(damaged), meta, 5_000, column, names.as_ref());
            }
        }
    }

    #[test]
    fn dictionary_entries_no_row_uses_are_dropped() {
        let kept = keep_seen(vec![7, 8, 9, 10], vec![0, 2, 0, 1]);
        assert_eq!(kept, (vec![8, 10], vec![2, 1]));
        assert_eq!(keep_seen(vec![7], vec![3]), (vec![7], vec![3]));
        assert_eq!(keep_seen(vec![7], vec![0]), (vec![], vec![]));
    }

    #[test]
    fn hybrid_runs_and_bit_packed_groups() {
        // A run of 5 threes, then one group of eight 3-bit values 0..8, of which 6 are asked.
        let data = [5 << 1, 3, (1 << 1) | 1, 0b10001000, 0b11000110, 0b11111010];
        let mut seen = Vec::new();
        hybrid(&data, 3, 11, |value, times| {
            seen.push((value, times));
            Some(())
        })
        .unwrap();
        let expected = [(3, 5), (0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)];
        assert_eq!(seen, expected);
        assert_eq!(
            hybrid(&data, 3, 20, |_, _| Some(())),
            None,
            "runs end early"
        );
    }
}
