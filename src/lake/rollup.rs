//! Rollups: each day's users (see [`scan`](super::scan)) kept on disk between runs, one file per
//! day, so that a query over days already rolled up reads no data at all.
//!
//! A rollup is keyed by the day's file listing (every name, size, modification time and etag) and
//! the columns it was read with: a file added, replaced or deleted in a day makes that day's
//! rollup stale, and only that day is read again. Files are written beside their final name and
//! renamed, so a concurrent run never reads a half-written one. The dictionary is flushed to disk
//! before any rollup that uses it; rollups themselves are not flushed one by one (a cache is not
//! worth a disk flush per day), so each carries checksums, and one that a crash left with zeros
//! or old blocks in it is not used.
//!
//! Beside them, the windows already counted (`windows`: rolling ones, ISO weeks, calendar months):
//! each count with a stamp of every day it covers, used while each of those days' rollups is the
//! one it was counted from.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use object_store::ObjectMeta;
use roaring::RoaringBitmap;

use super::Lake;
use super::dictionary::Dictionary;
use super::scan::DayUsers;
use super::table::Columns;

/// First bytes of every rollup file; a new layout gets a new number.
const MAGIC: &[u8] = b"dau rollup 2\n";

/// First bytes of the file of counted windows.
const WINDOWS_MAGIC: &[u8] = b"dau windows 1\n";

/// Windows already counted, by length and last day: the [`stamp`] of each day the window
/// covered (first to last) and its distinct users. A count is used only while every stamp is.
pub type Windows = BTreeMap<(u64, NaiveDate), (Vec<u64>, u64)>;

/// A day's current rollup in eight bytes (its key's hash), for the windows counted from it; never
/// 0, which stands for a day the lake does not have.
pub fn stamp(key: &str) -> u64 {
    fnv1a(key.as_bytes()) | 1
}

/// The rollups of one lake and user column.
#[derive(Debug, Clone)]
pub struct Rollups {
    pub dir: PathBuf,
    /// Says what the folder is for, in the folder (`lake.txt`).
    about: String,
}

impl Rollups {
    /// The folder for `lake`'s rollups below `base`: one per lake and user column.
    pub fn new(base: &Path, lake: &Lake, columns: &Columns<'_>) -> Rollups {
        let about = format!(
            "lake: {}\nuser column: {}\ndate column: {}\n",
            lake.describe(&lake.root),
            columns.user,
            columns.date
        );
        Rollups {
            dir: base.join(format!("{:016x}", fnv1a(about.as_bytes()))),
            about,
        }
    }

    /// What a day's rollup must have been made from to be current: the columns, the dictionary
    /// and the listing.
    pub fn key(&self, files: &[ObjectMeta], generation: u64) -> String {
        let mut key = format!("{}ids: {generation:016x}\n", self.about);
        for f in files {
            key.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                f.location,
                f.size,
                f.last_modified.to_rfc3339(),
                f.e_tag.as_deref().unwrap_or("")
            ));
        }
        key
    }

    fn path(&self, day: NaiveDate) -> PathBuf {
        self.dir.join(format!("{day}.rollup"))
    }

    /// The day's rollup when there is one made from exactly `key`; anything else (none, stale,
    /// unreadable) is None, and the day is read from the lake. Without `users`, only the counts
    /// before the bitmap are read (enough for dau and opens).
    pub fn load(&self, day: NaiveDate, key: &str, users: bool) -> Option<DayUsers> {
        use std::io::Read;
        let mut file = std::fs::File::open(self.path(day)).ok()?;
        let mut bytes = Vec::new();
        if !users {
            (&mut file).take(HEAD).read_to_end(&mut bytes).ok()?;
            if let Some(day) = decode(&bytes, key, false) {
                return Some(day);
            }
        }
        file.read_to_end(&mut bytes).ok()?;
        decode(&bytes, key, users)
    }

    fn dictionary_path(&self) -> PathBuf {
        self.dir.join("ids")
    }

    /// The generation of the lake's dictionary, when it has one.
    pub fn generation(&self) -> Option<u64> {
        Dictionary::generation_in(&self.dictionary_path())
    }

    /// Takes the lake's rollups for writing, until the returned lock is dropped (another run
    /// waits, and says so), and clears away what crashed runs left half-written.
    pub fn lock(&self) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(&self.dir)?;
        let about = self.dir.join("lake.txt");
        if !about.exists() {
            write_atomic(&about, self.about.as_bytes(), Flush::Yes)?;
        }
        let lock = std::fs::File::create(self.dir.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "dau: waiting for another dau run to finish writing rollups in {}",
                    self.dir.display()
                );
                lock.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        remove_stale(&self.dir);
        Ok(lock)
    }

    /// The lake's dictionary (a new one when there is none); read under the lock.
    pub fn dictionary(&self) -> Dictionary {
        Dictionary::load(&self.dictionary_path()).unwrap_or_default()
    }

    /// Writes the dictionary when it learnt ids, before any rollup that uses them (under the lock).
    pub fn save_dictionary(&self, dictionary: &Dictionary) -> std::io::Result<()> {
        if dictionary.changed() || !self.dictionary_path().exists() {
            write_atomic(&self.dictionary_path(), &dictionary.encode(), Flush::Yes)?;
        }
        Ok(())
    }

    /// Writes the day's rollup atomically, not flushed (under the lock).
    pub fn save(&self, day: NaiveDate, key: &str, users: &DayUsers) -> std::io::Result<()> {
        write_atomic(&self.path(day), &encode(key, users), Flush::No)
    }

    /// Counted windows: what dau rollup and earlier queries counted (none when unreadable).
    pub fn windows(&self) -> Windows {
        let bytes = std::fs::read(self.dir.join("windows")).unwrap_or_default();
        decode_windows(&bytes).unwrap_or_default()
    }

    /// Adds `counted` to the counted windows (takes the lock).
    pub fn save_windows(&self, counted: Windows) -> std::io::Result<()> {
        if counted.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mut windows = self.windows();
        windows.extend(counted);
        write_atomic(
            &self.dir.join("windows"),
            &encode_windows(&windows),
            Flush::Yes,
        )
    }
}

fn encode_windows(windows: &Windows) -> Vec<u8> {
    let mut out = WINDOWS_MAGIC.to_vec();
    for ((length, last), (stamps, users)) in windows {
        let day = i64::from(last.num_days_from_ce()) as u64;
        for n in [*length, day, *users].iter().chain(stamps) {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    out
}

fn decode_windows(bytes: &[u8]) -> Option<Windows> {
    let mut r = Reader(bytes.strip_prefix(WINDOWS_MAGIC)?);
    let mut windows = Windows::new();
    while !r.0.is_empty() {
        let (length, day, users) = (r.number()?, r.number()?, r.number()?);
        let last = NaiveDate::from_num_days_from_ce_opt(i32::try_from(day as i64).ok()?)?;
        let stamps = (0..length).map(|_| r.number()).collect::<Option<_>>()?;
        windows.insert((length, last), (stamps, users));
    }
    Some(windows)
}

/// Whether a file is flushed to disk before it is renamed into place.
#[derive(PartialEq)]
enum Flush {
    Yes,
    No,
}

/// Writes `bytes` beside `path` and renames it there.
fn write_atomic(path: &Path, bytes: &[u8], flush: Flush) -> std::io::Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("rollup");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        if flush == Flush::Yes {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A file being written lives at most this long beside its final name; one older than this was
/// left by a run that crashed.
const STALE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes what runs that crashed left half-written in `dir` (best effort).
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified());
        if modified.is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn encode(key: &str, day: &DayUsers) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let put = |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&n.to_le_bytes());
    put(&mut out, key.len() as u64);
    out.extend_from_slice(key.as_bytes());
    put(&mut out, day.opens);
    put(&mut out, day.nulls);
    put(&mut out, day.histogram.len() as u64);
    for (opens, users) in &day.histogram {
        put(&mut out, *opens);
        put(&mut out, *users);
    }
    let sum = checksum(&out);
    put(&mut out, sum);
    let users = out.len();
    day.users
        .serialize_into(&mut out)
        .expect("writing to memory");
    let sum = checksum(&out[users..]);
    put(&mut out, sum);
    out
}

/// Bytes read first when only a rollup's counts are wanted: its key and histogram fit.
const HEAD: u64 = 16 * 1024;

fn decode(bytes: &[u8], key: &str, with_users: bool) -> Option<DayUsers> {
    let mut r = Reader(bytes.strip_prefix(MAGIC)?);
    let key_len = usize::try_from(r.number()?).ok()?;
    if r.take(key_len)? != key.as_bytes() {
        return None;
    }
    let opens = r.number()?;
    let nulls = r.number()?;
    let pairs = r.number()?;
    let mut histogram = Vec::new();
    for _ in 0..pairs {
        histogram.push((r.number()?, r.number()?));
    }
    let head = bytes.len() - r.0.len();
    if r.number()? != checksum(&bytes[..head]) {
        return None;
    }
    // The histogram is the users counted by opens: a rollup that disagrees with itself is not used.
    let active: u64 = histogram.iter().map(|(_, u)| u).sum();
    let summed: u64 = histogram.iter().map(|(o, u)| o * u).sum();
    let users = match with_users {
        true => {
            let (users, sum) = r.0.split_last_chunk::<8>()?;
            if u64::from_le_bytes(*sum) != checksum(users) {
                return None;
            }
            RoaringBitmap::deserialize_from(users).ok()?
        }
        false => RoaringBitmap::new(),
    };
    let whole = !with_users || users.len() == active;
    (whole && summed == opens).then_some(DayUsers {
        users,
        active,
        opens,
        nulls,
        histogram,
    })
}

/// A checksum of a rollup's bytes, to tell one that a crash left with zeros or old blocks in it.
/// Not a defence against tampering; four lanes of eight bytes at a time, so that checking the
/// users of a year of lake M (170 MB of rollups) costs about 10 ms.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lanes = [1u64, 2, 3, 4];
    let mut mix = |block: &[u8]| {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            *lane = (*lane ^ word).wrapping_mul(K).rotate_left(29);
        }
    };
    let mut blocks = bytes.chunks_exact(32);
    blocks.by_ref().for_each(&mut mix);
    let mut tail = [0u8; 32];
    tail[..blocks.remainder().len()].copy_from_slice(blocks.remainder());
    mix(&tail);
    lanes.iter().fold(bytes.len() as u64, |sum, lane| {
        (sum ^ lane).wrapping_mul(K).rotate_left(29)
    })
}

/// Reads a rollup's fields in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }

    fn number(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// FNV-1a, 64 bits: a stable name for a lake's folder (its text is inside, and every key is
/// compared in full, so a collision cannot mix lakes).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DayUsers {
        DayUsers {
            users: [1u32, 7, 1 << 30].into_iter().collect(),
            active: 3,
            opens: 5,
            nulls: 2,
            histogram: vec![(1, 2), (3, 1)],
        }
    }

    #[test]
    fn round_trip_with_the_same_key_only() {
        let bytes = encode("key", &sample());
        assert_eq!(decode(&bytes, "key", true), Some(sample()));
        assert_eq!(decode(&bytes, "other", true), None);
        let counts = decode(&bytes, "key", false).unwrap();
        assert_eq!((counts.active, counts.opens), (3, 5));
        assert!(counts.users.is_empty());
        // Cut anywhere, a rollup is not used.
        for end in 0..bytes.len() {
            assert_eq!(decode(&bytes[..end], "key", true), None, "cut at {end}");
        }
    }

    #[test]
    fn counted_windows_round_trip_and_a_cut_file_is_not_used() {
        let last = NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
        let windows: Windows = [
            ((7, last), (vec![3, 0, 5, 7, 9, 11, 13], 42)),
            ((30, last), ((0..30).map(|s| s * 2 + 1).collect(), 1 << 40)),
        ]
        .into_iter()
        .collect();
        let bytes = encode_windows(&windows);
        assert_eq!(decode_windows(&bytes), Some(windows));
        // Cut between windows, the ones before the cut are whole; cut inside one, none is used.
        let first = WINDOWS_MAGIC.len() + 8 * (3 + 7);
        for end in 0..bytes.len() {
            let whole = match end {
                e if e == WINDOWS_MAGIC.len() => Some(0),
                e if e == first => Some(1),
                _ => None,
            };
            assert_eq!(
                decode_windows(&bytes[..end]).map(|w| w.len()),
                whole,
                "cut at {end}"
            );
        }
    }

    /// A byte changed anywhere (as a crash can leave an unflushed file): the rollup is not used;
    /// changed in the users only, its counts still are.
    #[test]
    fn a_changed_byte_is_caught() {
        let bytes = encode("key", &sample());
        let users = bytes.len() - sample().users.serialized_size() - 8;
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            assert_eq!(decode(&changed, "key", true), None, "byte {at}");
            let counts = decode(&changed, "key", false);
            assert_eq!(counts.is_some(), at >= users, "byte {at}");
        }
        let mut zeroed = bytes.clone();
        zeroed[users..].fill(0);
        assert_eq!(decode(&zeroed, "key", true), None);
    }

    #[test]
    fn a_rollup_that_disagrees_with_itself_is_not_used() {
        let mut day = sample();
        day.opens = 6;
        assert_eq!(decode(&encode("key", &day), "key", true), None);
    }
}
