//! Rollups: each day's users (see [`scan`](super::scan)) kept between runs, one file per day, in
//! a local folder or a bucket prefix, so that a query over days already rolled up reads no data.
//!
//! A rollup is keyed by the day's file listing (every name, size, modification time and etag) and
//! the columns it was read with: a file added, replaced or deleted in a day makes that day's
//! rollup stale, and only that day is read again. Files are written beside their final name and
//! renamed, so a concurrent run never reads a half-written one. Nothing is flushed to disk (a
//! cache is not worth waiting for the disk): every file carries checksums, and one that a crash
//! left with zeros or old blocks in it is not used. Each rollup also records the dictionary state
//! it was made with, and is used only while the dictionary's lineage holds that state (see
//! [`dictionary`](super::dictionary)): one whose dictionary a crash left older, cut short or
//! damaged (the dictionary checks its ids against its lineage) is read again.
//!
//! Beside them, the windows already counted (`windows`: rolling ones, ISO weeks, calendar months):
//! each count with a stamp of every day it covers, used while each of those days' rollups is the
//! one it was counted from.
//!
//! A bucket has no lock: its objects are replaced whole, and the dictionary only while it is the
//! version the run read (a conditional put). A run that finds it extended meanwhile reads its days
//! again with that dictionary, since its new ids' indices may be another run's (and keeps nothing
//! when that goes on happening). Rollups are read before the dictionary, so a run extends the
//! dictionary past every index they use.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::{Datelike, NaiveDate};
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    UpdateVersion,
};
use roaring::RoaringBitmap;

use super::dictionary::{Dictionary, Lineage, State};
use super::inspect::IdTypes;
use super::scan::DayUsers;
use super::{Lake, storage};
use crate::config::Config;
use crate::{Error, Result};

/// First bytes of every rollup file; a new layout gets a new number, and so does a change of
/// what a day counts or refuses (a check that a rollup made before it would skip: days are
/// checked only when they are read). 5: the in-file date column is checked without statistics
/// and as YYYYMMDD integers, and whole decimals are signed ids.
const MAGIC: &[u8] = b"dau rollup 5\n";

/// First bytes of the file of counted windows.
const WINDOWS_MAGIC: &[u8] = b"dau windows 2\n";

/// Windows already counted, by length and last day: the [`stamp`] of each day the window
/// covered (first to last) and its distinct users. A count is used only while every stamp is.
pub type Windows = BTreeMap<(u64, NaiveDate), (Vec<u64>, u64)>;

/// A day's current rollup in eight bytes (a hash of its key and the dictionary state it was made
/// with), for the windows counted from it; never 0, which stands for a day the lake does not have.
pub fn stamp(key: &str, state: State) -> u64 {
    let made = format!("{key}{:016x}{:016x}", state.len, state.print);
    fnv1a(made.as_bytes()) | 1
}

/// The rollups of one lake and user column.
#[derive(Debug, Clone)]
pub struct Rollups {
    place: Place,
    /// Says what the folder is for, in the folder (`lake.txt`).
    about: String,
}

/// Where a lake's rollups are kept.
#[derive(Debug, Clone)]
enum Place {
    /// A local folder: written under a lock, each file beside its final name and renamed.
    Dir(PathBuf),
    /// A bucket prefix: each object is replaced whole; the dictionary only while it is still the
    /// one read, so runs need no lock.
    Bucket {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        url: String,
    },
}

/// A run that writes rollups: the folder's lock, or the version of the bucket's dictionary it read.
pub struct Writing {
    _lock: Option<std::fs::File>,
    /// The stored dictionary (None: there is none, or it is unreadable).
    stored: Option<UpdateVersion>,
    /// The dictionary read is the one stored.
    found: bool,
}

/// What a run that lost the race to extend a bucket's dictionary says.
const RACED: &str = "other dau runs kept adding ids to the rollups' dictionary meanwhile, so \
                     this run's rollups are not kept (its numbers are right; a later run keeps them)";

impl std::fmt::Display for Rollups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.place {
            Place::Dir(dir) => write!(f, "{}", dir.display()),
            Place::Bucket { url, .. } => write!(f, "{url}"),
        }
    }
}

impl Rollups {
    /// The rollups `config` asks for, in a folder or bucket prefix for `lake`'s user column below
    /// `--rollups`; None when they are off.
    pub fn of(lake: &Lake, config: &Config) -> Result<Option<Rollups>> {
        let Some(base) = &config.rollups else {
            return Ok(None);
        };
        let columns = config.columns();
        let about = format!(
            "lake: {}\nuser column: {}\ndate column: {}\n",
            lake.describe_root(),
            columns.user,
            columns.date
        );
        let folder = format!("{:016x}", fnv1a(about.as_bytes()));
        // In the lake, rollups are read as its files (in a partition) or are strays beside
        // them, unless below a hidden folder, which no reader lists.
        lake.refuse_inside(base, "--rollups")?;
        let place = if storage::is_bucket(base) {
            let location = storage::open(base, &config.storage).map_err(|e| {
                Error::usage(
                    format!("cannot keep rollups in {base}: {e}"),
                    "give --rollups a folder or a bucket prefix dau can write to, or off",
                )
            })?;
            Place::Bucket {
                store: location.store,
                prefix: location.root.join(folder.as_str()),
                url: format!("{}/{folder}", base.trim_end_matches('/')),
            }
        } else {
            Place::Dir(storage::local_path(base).join(folder))
        };
        Ok(Some(Rollups { place, about }))
    }

    /// Whether they are in a local folder (else in a bucket).
    pub fn is_local(&self) -> bool {
        matches!(self.place, Place::Dir(_))
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

    /// The first `head` bytes of the file `name` (all of it without `head`); None when there is
    /// none or it cannot be read (a rollup is a cache: then the lake is read).
    async fn read(&self, name: &str, head: Option<u64>) -> Option<Vec<u8>> {
        use std::io::Read;
        match &self.place {
            // Into room made beforehand: a read that grows its buffer from nothing takes a
            // dozen system calls for a 16 KiB head (a year of warm queries, 4,000 of them).
            Place::Dir(dir) => match head {
                None => std::fs::read(dir.join(name)).ok(),
                Some(head) => {
                    let file = std::fs::File::open(dir.join(name)).ok()?;
                    // No more than the file holds: a damaged length asked for terabytes.
                    let size = file.metadata().ok()?.len();
                    let mut bytes = Vec::with_capacity(head.min(size) as usize);
                    file.take(head).read_to_end(&mut bytes).ok()?;
                    Some(bytes)
                }
            },
            Place::Bucket { store, prefix, .. } => {
                let options = GetOptions {
                    range: head.map(|n| GetRange::Bounded(0..n)),
                    ..GetOptions::default()
                };
                let got = store
                    .get_opts(&prefix.clone().join(name), options)
                    .await
                    .ok()?;
                Some(got.bytes().await.ok()?.to_vec())
            }
        }
    }

    /// The file `name` with the version it was read at; None when there is none. Its version is
    /// asked first, so the bytes are never older than the version (a write conditional on it
    /// then fails rather than overwrite what it did not see).
    async fn read_versioned(
        &self,
        name: &str,
    ) -> std::io::Result<Option<(Vec<u8>, Option<UpdateVersion>)>> {
        let Place::Bucket { store, prefix, .. } = &self.place else {
            return Ok(self.read(name, None).await.map(|b| (b, None)));
        };
        let location = prefix.clone().join(name);
        let meta = match store.head(&location).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(std::io::Error::other(e)),
        };
        let bytes = store
            .get(&location)
            .await
            .map_err(std::io::Error::other)?
            .bytes()
            .await
            .map_err(std::io::Error::other)?;
        let version = UpdateVersion {
            e_tag: meta.e_tag,
            version: meta.version,
        };
        Ok(Some((bytes.to_vec(), Some(version))))
    }

    /// Writes the file `name` whole: renamed into place in a folder, in a bucket put as `mode`
    /// says. A put refused by its condition is `AlreadyExists`.
    async fn write(
        &self,
        name: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> std::io::Result<Option<UpdateVersion>> {
        match &self.place {
            Place::Dir(dir) => write_atomic(&dir.join(name), &bytes).map(|()| None),
            Place::Bucket { store, prefix, .. } => {
                let options = PutOptions::from(mode);
                match store
                    .put_opts(&prefix.clone().join(name), bytes.into(), options)
                    .await
                {
                    Ok(put) => Ok(Some(UpdateVersion {
                        e_tag: put.e_tag,
                        version: put.version,
                    })),
                    Err(
                        e @ (object_store::Error::Precondition { .. }
                        | object_store::Error::AlreadyExists { .. }),
                    ) => Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, e)),
                    Err(e) => Err(std::io::Error::other(e)),
                }
            }
        }
    }

    /// The day's rollup when there is one made from exactly `key`; anything else (none, stale,
    /// unreadable) is None, and the day is read from the lake. Without `users`, only the counts
    /// before the bitmap are read (enough for dau and opens).
    pub async fn load(
        &self,
        day: NaiveDate,
        key: &str,
        lineage: &Lineage,
        users: bool,
    ) -> Option<(DayUsers, State)> {
        let name = format!("{day}.rollup");
        if !users {
            let head = self.read(&name, Some(HEAD)).await?;
            if let Some(day) = decode(&head, key, lineage, false) {
                return Some(day);
            }
        }
        decode(&self.read(&name, None).await?, key, lineage, users)
    }

    /// The lineage of the lake's dictionary (from the head of its file), when it has one.
    pub async fn lineage(&self) -> Option<Lineage> {
        // Room for a few years of nightly states; a longer lineage is read again, whole.
        let asked = Dictionary::HEAD + 16 * 4096;
        let head = self.read(IDS, Some(asked)).await?;
        let length = Dictionary::head_len(&head)?;
        match length as usize <= head.len() {
            true => Dictionary::lineage_in(&head),
            // The whole file, shorter than the lineage it says it has: damaged.
            false if (head.len() as u64) < asked => None,
            false => Dictionary::lineage_in(&self.read(IDS, Some(length)).await?),
        }
    }

    /// Takes the lake's rollups for writing, with its dictionary (a new one when there is none).
    /// In a folder: until the returned [`Writing`] is dropped, under a lock (another run waits,
    /// and says so), and with what crashed runs left half-written cleared away.
    pub async fn begin(&self) -> std::io::Result<(Writing, Dictionary)> {
        let lock = match &self.place {
            Place::Dir(dir) => Some(self.lock(dir)?),
            Place::Bucket { .. } => None,
        };
        let (stored, dictionary) = match self.read_versioned(IDS).await? {
            Some((bytes, version)) => (version, Dictionary::decode(&bytes)),
            None => (None, None),
        };
        let writing = Writing {
            _lock: lock,
            stored,
            found: dictionary.is_some(),
        };
        Ok((writing, dictionary.unwrap_or_default()))
    }

    /// The lake's dictionary as it is, for a run that cannot write rollups in their folder (a new
    /// one when there is none): the days it reads get indices past every one the rollups it uses
    /// hold.
    pub async fn dictionary(&self) -> Dictionary {
        let bytes = self.read(IDS, None).await;
        bytes
            .and_then(|b| Dictionary::decode(&b))
            .unwrap_or_default()
    }

    /// The lock of the folder `dir` (see [`Rollups::begin`]).
    fn lock(&self, dir: &Path) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(dir)?;
        let about = dir.join("lake.txt");
        if !about.exists() {
            write_atomic(&about, self.about.as_bytes())?;
        }
        let lock = std::fs::File::create(dir.join("lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                eprintln!(
                    "dau: waiting for another dau run to finish writing rollups in {}",
                    dir.display()
                );
                lock.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        crate::output::remove_stale(dir, "");
        Ok(lock)
    }

    /// Writes the dictionary when it learnt ids, before any rollup that uses them. In a bucket,
    /// only while it is still the one [`Rollups::begin`] read: when another run extended it
    /// meanwhile, this run's indices are not its, and nothing is kept.
    pub async fn save_dictionary(
        &self,
        writing: &mut Writing,
        dictionary: &RwLock<Dictionary>,
    ) -> std::io::Result<()> {
        let bytes = {
            let mut dictionary = dictionary.write().expect("dictionary lock");
            if !dictionary.changed() && writing.found {
                return Ok(());
            }
            dictionary.seal()
        };
        let (mode, made) = match writing.stored.clone() {
            Some(version) => (PutMode::Update(version), false),
            None => (PutMode::Create, true),
        };
        let put = self.write(IDS, bytes, mode).await;
        writing.stored = match put {
            Err(e) if Self::lost_race(&e) => {
                return Err(std::io::Error::new(e.kind(), RACED));
            }
            put => put?,
        };
        writing.found = true;
        if made && !self.is_local() {
            // (A folder's is written when it is made.)
            let about = self.about.as_bytes().to_vec();
            self.write("lake.txt", about, PutMode::Overwrite).await?;
        }
        Ok(())
    }

    /// Whether a conditional write failed because another run wrote the file first (for the
    /// dictionary: extended it).
    pub fn lost_race(error: &std::io::Error) -> bool {
        error.kind() == std::io::ErrorKind::AlreadyExists
    }

    /// Writes the day's rollup whole (after the dictionary it uses).
    pub async fn save(
        &self,
        day: NaiveDate,
        key: &str,
        state: State,
        users: &DayUsers,
    ) -> std::io::Result<()> {
        let name = format!("{day}.rollup");
        let bytes = encode(key, state, users);
        self.write(&name, bytes, PutMode::Overwrite).await.map(drop)
    }

    /// Counted windows: what dau rollup and earlier queries counted (none when unreadable).
    pub async fn windows(&self) -> Windows {
        let bytes = self.read(WINDOWS, None).await.unwrap_or_default();
        decode_windows(&bytes).unwrap_or_default()
    }

    /// Adds `counted` to the counted windows: in a folder under its lock; in a bucket, put only
    /// over the file as read (tried again when another run wrote it meanwhile, and given up after
    /// a few tries: they are counted again next time).
    pub async fn save_windows(&self, counted: Windows) -> std::io::Result<()> {
        if counted.is_empty() {
            return Ok(());
        }
        let _lock = match &self.place {
            Place::Dir(dir) => Some(self.lock(dir)?),
            Place::Bucket { .. } => None,
        };
        for _ in 0..3 {
            let (windows, mode) = match self.read_versioned(WINDOWS).await? {
                Some((bytes, Some(version))) => (decode_windows(&bytes), PutMode::Update(version)),
                Some((bytes, None)) => (decode_windows(&bytes), PutMode::Overwrite),
                None => (None, PutMode::Create),
            };
            let mut windows = windows.unwrap_or_default();
            windows.extend(counted.clone());
            let bytes = encode_windows(&windows);
            match self.write(WINDOWS, bytes, mode).await {
                Err(e) if Self::lost_race(&e) => continue,
                written => return written.map(drop),
            }
        }
        Ok(())
    }
}

/// The dictionary's file name.
const IDS: &str = "ids";

/// The counted windows' file name.
const WINDOWS: &str = "windows";

fn encode_windows(windows: &Windows) -> Vec<u8> {
    let mut out = WINDOWS_MAGIC.to_vec();
    for ((length, last), (stamps, users)) in windows {
        let day = i64::from(last.num_days_from_ce()) as u64;
        for n in [*length, day, *users].iter().chain(stamps) {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

fn decode_windows(bytes: &[u8]) -> Option<Windows> {
    let mut r = Reader(verified(bytes)?.strip_prefix(WINDOWS_MAGIC)?);
    let mut windows = Windows::new();
    while !r.0.is_empty() {
        let (length, day, users) = (r.number()?, r.number()?, r.number()?);
        let last = NaiveDate::from_num_days_from_ce_opt(i32::try_from(day as i64).ok()?)?;
        let stamps = (0..length).map(|_| r.number()).collect::<Option<_>>()?;
        windows.insert((length, last), (stamps, users));
    }
    Some(windows)
}

/// Writes `bytes` beside `path` and renames it there.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = crate::output::temp_beside(path);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn encode(key: &str, state: State, day: &DayUsers) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    let put = |out: &mut Vec<u8>, n: u64| out.extend_from_slice(&n.to_le_bytes());
    put(&mut out, key.len() as u64);
    out.extend_from_slice(key.as_bytes());
    put(&mut out, state.len);
    put(&mut out, state.print);
    put(&mut out, day.opens);
    put(&mut out, day.nulls);
    put(&mut out, day.id_types.bits());
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

/// The rollup in `bytes` with the dictionary state it was made with, when it is made from `key`
/// and a state `lineage` holds.
fn decode(
    bytes: &[u8],
    key: &str,
    lineage: &Lineage,
    with_users: bool,
) -> Option<(DayUsers, State)> {
    let mut r = Reader(bytes.strip_prefix(MAGIC)?);
    let key_len = usize::try_from(r.number()?).ok()?;
    if r.take(key_len)? != key.as_bytes() {
        return None;
    }
    let state = State {
        len: r.number()?,
        print: r.number()?,
    };
    // Made with a dictionary this one did not grow from, its indices may be other users'.
    if !lineage.holds(state) {
        return None;
    }
    let opens = r.number()?;
    let nulls = r.number()?;
    let id_types = IdTypes::from_bits(r.number()?)?;
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
        true => RoaringBitmap::deserialize_from(verified(r.0)?).ok()?,
        false => RoaringBitmap::new(),
    };
    let whole = !with_users || users.len() == active;
    let day = DayUsers {
        users,
        active,
        opens,
        nulls,
        histogram,
        id_types,
    };
    (whole && summed == opens).then_some((day, state))
}

/// A checksum of a rollup's bytes, to tell one that a crash left with zeros or old blocks in it.
/// Not a defence against tampering; four lanes of eight bytes at a time, so that checking the
/// users of a year of lake M (170 MB of rollups) costs about 10 ms.
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
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

/// `bytes` without the checksum of them that ends them; None when it is not theirs.
fn verified(bytes: &[u8]) -> Option<&[u8]> {
    let (body, sum) = bytes.split_last_chunk::<8>()?;
    (u64::from_le_bytes(*sum) == checksum(body)).then_some(body)
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

    /// The state the test rollups are made with, in the lineage they are read with.
    const MADE: State = State { len: 5, print: 77 };

    fn lineage() -> Lineage {
        let empty = State { len: 0, print: 9 };
        Lineage {
            generation: 9,
            states: vec![empty, MADE],
        }
    }

    /// `encode` with the test state.
    fn made(key: &str, day: &DayUsers) -> Vec<u8> {
        encode(key, MADE, day)
    }

    /// `decode` in the test lineage (the state it gives back is the one made with).
    fn open(bytes: &[u8], key: &str, users: bool) -> Option<DayUsers> {
        let (day, state) = decode(bytes, key, &lineage(), users)?;
        assert_eq!(state, MADE);
        Some(day)
    }

    fn sample() -> DayUsers {
        DayUsers {
            users: [1u32, 7, 1 << 30].into_iter().collect(),
            active: 3,
            opens: 5,
            nulls: 2,
            histogram: vec![(1, 2), (3, 1)],
            id_types: IdTypes {
                signed: true,
                unsigned64: true,
                ..IdTypes::default()
            },
        }
    }

    #[test]
    fn round_trip_with_the_same_key_only() {
        let bytes = made("key", &sample());
        assert_eq!(open(&bytes, "key", true), Some(sample()));
        assert_eq!(open(&bytes, "other", true), None);
        let counts = open(&bytes, "key", false).unwrap();
        assert_eq!((counts.active, counts.opens), (3, 5));
        assert!(counts.users.is_empty());
        // Made with a state the dictionary's lineage does not hold, it is not used.
        for other in [State { len: 5, print: 78 }, State { len: 6, print: 77 }] {
            assert_eq!(
                decode(&encode("key", other, &sample()), "key", &lineage(), true),
                None
            );
        }
        // Cut anywhere, a rollup is not used.
        for end in 0..bytes.len() {
            assert_eq!(open(&bytes[..end], "key", true), None, "cut at {end}");
        }
    }

    #[test]
    fn counted_windows_round_trip_and_a_cut_or_changed_file_is_not_used() {
        let last = NaiveDate::from_ymd_opt(2024, 6, 30).unwrap();
        let windows: Windows = [
            ((7, last), (vec![3, 0, 5, 7, 9, 11, 13], 42)),
            ((30, last), ((0..30).map(|s| s * 2 + 1).collect(), 1 << 40)),
        ]
        .into_iter()
        .collect();
        let bytes = encode_windows(&windows);
        assert_eq!(decode_windows(&bytes), Some(windows));
        // Cut anywhere, or with any byte changed (as a crash can leave a file never flushed), the
        // file is not used: its windows are counted again.
        for end in 0..bytes.len() {
            assert_eq!(decode_windows(&bytes[..end]), None, "cut at {end}");
        }
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            assert_eq!(decode_windows(&changed), None, "changed at {at}");
        }
    }

    /// A byte changed anywhere (as a crash can leave an unflushed file): the rollup is not used;
    /// changed in the users only, its counts still are.
    #[test]
    fn a_changed_byte_is_caught() {
        let bytes = made("key", &sample());
        let users = bytes.len() - sample().users.serialized_size() - 8;
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            assert_eq!(open(&changed, "key", true), None, "byte {at}");
            let counts = open(&changed, "key", false);
            assert_eq!(counts.is_some(), at >= users, "byte {at}");
        }
        let mut zeroed = bytes.clone();
        zeroed[users..].fill(0);
        assert_eq!(open(&zeroed, "key", true), None);
    }

    #[test]
    fn a_rollup_that_disagrees_with_itself_is_not_used() {
        let mut day = sample();
        day.opens = 6;
        assert_eq!(open(&made("key", &day), "key", true), None);
    }
}
