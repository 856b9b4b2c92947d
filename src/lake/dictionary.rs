//! The lake's user dictionary: every id seen gets a small index (0, 1, 2, … in order of first
//! sight), and the per-day bitmaps hold indices. Integer ids are often sparse (hashes, 40-bit or
//! snowflake ids), where a bitmap of raw ids is mostly overhead, and text ids (UUIDs, names) are
//! no numbers at all; indices are dense, so a day is a compact bitmap and a union is a few
//! word-wise ORs. The mapping is one-to-one: ids are compared whole, so nothing collides.
//!
//! A dictionary holds integer ids or text ids ([`Names`]), never both: in a lake where any file
//! has text ids, every id is text (`1` is `"1"`, as in the SQL).
//!
//! Kept beside the rollups (`ids`), it only ever grows, and is replaced whole (written beside and
//! renamed), so an index once given never changes. A dictionary made anew gets a new generation
//! number, which every rollup's key names: rollups made with another dictionary are never used.
//!
//! Each save that adds ids seals them as a new [`State`]: how many ids, and a fingerprint of them
//! all, chained from the one before. The file lists every state it went through (its
//! [`Lineage`]), and a rollup records the state it was made with: it is used only while the
//! dictionary's lineage holds that state. An older copy of the dictionary put back (from a backup,
//! or by a store that let two runs each replace it) lacks the later states, so the rollups made
//! with them are read again instead of being joined with indices the copy gives to other users.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use super::rollup::checksum;

/// How many ids a dictionary holds: an index is 32 bits.
const CAPACITY: u64 = 1 << 32;

/// First bytes of a dictionary file: of integer ids (each 8 bytes, little-endian), or of text
/// ids (each its length in 4 bytes, little-endian, then its bytes). Both are as long.
const MAGIC: &[u8] = b"dau ids 2\n";
const MAGIC_NAMES: &[u8] = b"dau txt 1\n";

/// A dictionary as it was saved: how many ids it held, and a fingerprint of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub len: u64,
    pub print: u64,
}

/// A dictionary's generation and every state it was saved in, fewest ids first.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    pub generation: u64,
    pub states: Vec<State>,
}

impl State {
    /// The state every dictionary starts in: no ids, and its generation as the fingerprint.
    fn empty(generation: u64) -> State {
        State {
            len: 0,
            print: generation,
        }
    }
}

impl Lineage {
    /// Whether rollups made with the dictionary in `state` may be used with this one.
    pub fn holds(&self, state: State) -> bool {
        let at = self.states.binary_search_by_key(&state.len, |s| s.len);
        at.is_ok_and(|at| self.states[at] == state)
    }

    /// Whether this is `earlier` grown: the same generation and every state it had.
    pub fn extends(&self, earlier: &Lineage) -> bool {
        self.generation == earlier.generation && self.states.starts_with(&earlier.states)
    }

    /// The state the dictionary is in now.
    pub fn last(&self) -> State {
        *self
            .states
            .last()
            .expect("a lineage starts with its empty state")
    }
}

/// The fingerprint of a state whose ids are those of the one before (`print`) and `added` (their
/// bytes as the file holds them).
fn chain(print: u64, added: &[u8]) -> u64 {
    (print ^ checksum(added))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}

#[derive(Debug)]
pub struct Dictionary {
    /// Names this dictionary and the states it was saved in; rollups made with it carry them.
    pub lineage: Lineage,
    /// Every integer id, in order of first sight: an id's index is its position.
    ids: Vec<u64>,
    /// Every text id instead, in a dictionary of text ids.
    names: Option<Names>,
    /// How many ids the file holds.
    saved: usize,
    /// How many ids it can hold ([`CAPACITY`]; fewer in tests).
    capacity: u64,
    /// Every id with its index, for lookups: in tables of falling size, each at most a quarter
    /// of the one before. New ids come as a table of their own, merged into the last while it is
    /// more than a quarter of the one before it: an id is merged a few times in all, never once
    /// per day read, and most lookups end in the first table. Tables never change once made:
    /// readers look up in the ones they took, without holding the dictionary's lock.
    levels: Vec<Arc<Table>>,
}

impl Default for Dictionary {
    /// An empty dictionary of integer ids with a new generation.
    fn default() -> Dictionary {
        Dictionary::new(false)
    }
}

impl Dictionary {
    /// An empty dictionary, of text ids (`names`) or integer ids, with a new generation.
    pub fn new(names: bool) -> Dictionary {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = format!("{now:?} {}", std::process::id());
        let generation = super::rollup::fnv1a(seed.as_bytes());
        let lineage = Lineage {
            generation,
            states: vec![State::empty(generation)],
        };
        Dictionary::with(lineage, Vec::new(), names.then(Names::default))
    }

    fn with(lineage: Lineage, ids: Vec<u64>, names: Option<Names>) -> Dictionary {
        let sorted = sorted(&ids);
        let mut dictionary = Dictionary {
            lineage,
            saved: names.as_ref().map_or(ids.len(), Names::len),
            ids,
            names,
            capacity: CAPACITY,
            levels: Vec::new(),
        };
        dictionary.push(Table::new(sorted));
        dictionary
    }

    /// Whether its ids are text.
    pub fn has_names(&self) -> bool {
        self.names.is_some()
    }

    /// How many ids it holds.
    fn len(&self) -> usize {
        self.names.as_ref().map_or(self.ids.len(), Names::len)
    }

    /// The dictionary in a file's bytes; None when they are not one, or are not the ids its
    /// lineage says (cut short, or changed).
    pub fn decode(bytes: &[u8]) -> Option<Dictionary> {
        let lineage = Dictionary::lineage_in(bytes)?;
        let rest = &bytes[Self::HEAD as usize + 16 * lineage.states.len()..];
        let names = match bytes.starts_with(MAGIC_NAMES) {
            true => Some(Names::decode(rest)?),
            false => None,
        };
        // (Names::decode refuses too many names itself.)
        if names.is_none() && (rest.len() / 8) as u64 > CAPACITY {
            return None;
        }
        // Each state's fingerprint, chained from the empty one over the ids it added.
        let offset = |state: &State| {
            let len = usize::try_from(state.len).ok()?;
            match &names {
                Some(names) => names.file_offset(len),
                None => len.checked_mul(8),
            }
        };
        if lineage.states[0] != State::empty(lineage.generation) {
            return None;
        }
        for pair in lineage.states.windows(2) {
            let added = rest.get(offset(&pair[0])?..offset(&pair[1])?)?;
            if chain(pair[0].print, added) != pair[1].print {
                return None;
            }
        }
        if offset(&lineage.last())? != rest.len() {
            return None;
        }
        if names.is_some() {
            return Some(Dictionary::with(lineage, Vec::new(), names));
        }
        let ids = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Some(Dictionary::with(lineage, ids, None))
    }

    /// Bytes enough to tell how long a dictionary file's head (its lineage) is.
    pub const HEAD: u64 = MAGIC.len() as u64 + 16;

    /// How many bytes of the file starting with `head` its lineage takes.
    pub fn head_len(head: &[u8]) -> Option<u64> {
        let head = head.get(..Self::HEAD as usize)?;
        let head = head
            .strip_prefix(MAGIC)
            .or_else(|| head.strip_prefix(MAGIC_NAMES))?;
        let states = u64::from_le_bytes(head[8..].try_into().ok()?);
        Self::HEAD.checked_add(states.checked_mul(16)?)
    }

    /// The lineage of the dictionary whose file starts with `head`; None when `head` is not the
    /// start of one, or is shorter than its lineage.
    pub fn lineage_in(head: &[u8]) -> Option<Lineage> {
        let end = usize::try_from(Dictionary::head_len(head)?).ok()?;
        let mut words = head
            .get(MAGIC.len()..end)?
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let generation = words.next()?;
        words.next()?;
        let mut states = Vec::new();
        while let (Some(len), Some(print)) = (words.next(), words.next()) {
            if states.last().is_some_and(|s: &State| s.len >= len) {
                return None;
            }
            states.push(State { len, print });
        }
        (!states.is_empty()).then_some(Lineage { generation, states })
    }

    /// True when ids were added since the dictionary was loaded (or made).
    pub fn changed(&self) -> bool {
        self.len() > self.saved
    }

    /// The file's bytes, the ids added since the last save sealed as a new state (the one the
    /// rollups made now record).
    pub fn seal(&mut self) -> Vec<u8> {
        let (last, len) = (self.lineage.last(), self.len());
        let grew = len as u64 > last.len;
        let states = self.lineage.states.len() + usize::from(grew);
        let start = Self::HEAD as usize + 16 * states;
        let body = self.names.as_ref().map_or(8 * len, Names::file_len);
        let mut out = Vec::with_capacity(start + body);
        out.extend_from_slice(if self.has_names() { MAGIC_NAMES } else { MAGIC });
        out.extend_from_slice(&self.lineage.generation.to_le_bytes());
        out.extend_from_slice(&(states as u64).to_le_bytes());
        out.resize(start, 0);
        match &self.names {
            Some(names) => names.write_to(&mut out),
            None => {
                for id in &self.ids {
                    out.extend_from_slice(&id.to_le_bytes());
                }
            }
        }
        if grew {
            let added = match &self.names {
                Some(names) => names
                    .file_offset(last.len as usize)
                    .expect("an earlier state"),
                None => 8 * last.len as usize,
            };
            let print = chain(last.print, &out[start + added..]);
            self.lineage.states.push(State {
                len: len as u64,
                print,
            });
        }
        let mut at = Self::HEAD as usize;
        for state in &self.lineage.states {
            out[at..at + 8].copy_from_slice(&state.len.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&state.print.to_le_bytes());
            at += 16;
        }
        out
    }

    /// The index of each of `ids` (sorted, distinct) in a dictionary shared by the days being
    /// read: looked up in parallel, in the tables taken under a moment's read lock; only new ids
    /// take the write lock. None, with nothing added, when the new ids would not fit (more than
    /// 2^32 users).
    pub fn shared_indices(dictionary: &RwLock<Dictionary>, ids: &[u64]) -> Option<Vec<u32>> {
        let (levels, known) = {
            let dictionary = dictionary.read().expect("dictionary lock");
            (dictionary.levels.clone(), dictionary.ids.len())
        };
        let found = ids.iter().map(|id| get(&levels, *id)).collect();
        completed(ids, found, |new| {
            dictionary.write().expect("dictionary lock").add(known, new)
        })
    }

    /// The index of each of `names` (a name may repeat) in a dictionary of text ids shared by
    /// the row groups being read: looked up under its read lock; only new names take the write
    /// lock, and are hashed only once. None, with nothing added, when the new names would not fit.
    pub fn shared_name_indices(
        dictionary: &RwLock<Dictionary>,
        names: &[&[u8]],
    ) -> Option<Vec<u32>> {
        let hashed: Vec<(&[u8], u64)> = names.iter().map(|name| (*name, hash(name))).collect();
        let found = {
            let dictionary = dictionary.read().expect("dictionary lock");
            let known =
                (dictionary.names.as_ref()).expect("text ids go to a dictionary of text ids");
            known.get_all(&hashed)
        };
        completed(&hashed, found, |new| {
            dictionary.write().expect("dictionary lock").add_names(new)
        })
    }

    /// The index of each of `names` (with their hashes): those added meanwhile (or earlier in
    /// `names`) keep theirs, the others get the next ones. None, with nothing added, when that
    /// could take more ids than the dictionary holds (counting each of `names` as new), a name
    /// is 4 GiB long, or their records would pass [`RECORDS_MAX`].
    fn add_names(&mut self, names: &[(&[u8], u64)]) -> Option<Vec<u32>> {
        let known = self.names.as_mut()?;
        let too_long = names
            .iter()
            .any(|(name, _)| u32::try_from(name.len()).is_err());
        let records = known.records.len() as u64
            + names
                .iter()
                .map(|(name, _)| 8 + name.len() as u64)
                .sum::<u64>();
        if too_long || (known.len() + names.len()) as u64 > self.capacity || records > RECORDS_MAX {
            return None;
        }
        Some(known.add_all(names))
    }

    /// The index of each of `ids` (sorted, distinct), none of them among the first `known`:
    /// those another day added since keep their index, the others get the next ones. None, with
    /// nothing added, when that could take more ids than the dictionary holds (counting every one
    /// of `ids` as new: a refusal within a day's users of 2^32, never an index given twice).
    fn add(&mut self, known: usize, ids: &[u64]) -> Option<Vec<u32>> {
        if (self.ids.len() + ids.len()) as u64 > self.capacity {
            return None;
        }
        let mut since: Vec<(u64, u32)> = self.ids[known..]
            .iter()
            .copied()
            .zip(known as u32..)
            .collect();
        since.sort_unstable();
        let mut since = since.into_iter().peekable();
        let mut added = (Vec::new(), Vec::new());
        let indices = ids
            .iter()
            .map(|id| {
                while since.next_if(|(other, _)| other < id).is_some() {}
                if let Some((_, index)) = since.next_if(|(other, _)| other == id) {
                    return index;
                }
                let index = u32::try_from(self.ids.len()).expect("within the capacity checked");
                self.ids.push(*id);
                added.0.push(*id);
                added.1.push(index);
                index
            })
            .collect();
        self.push(Table::new(added));
        Some(indices)
    }

    /// Adds a table of ids not yet in any level.
    fn push(&mut self, mut table: Table) {
        if table.keys.is_empty() {
            return;
        }
        while let Some(last) = self
            .levels
            .pop_if(|last| last.keys.len() < table.keys.len() * 4)
        {
            table = Table::new(merge(last.columns(), table.columns()));
        }
        self.levels.push(Arc::new(table));
    }
}

/// `ids` (in the order of their indices) sorted, with their indices. Each id and its index are
/// sorted as one 64-bit word when they fit (the id less the smallest, above the index: ids of up
/// to 40 bits in a dictionary of millions), which takes half the time pairs take.
fn sorted(ids: &[u64]) -> (Vec<u64>, Vec<u32>) {
    let (Some(min), Some(max)) = (ids.iter().min(), ids.iter().max()) else {
        return Default::default();
    };
    let index_bits = usize::BITS - ids.len().leading_zeros();
    if index_bits + u64::BITS - (max - min).leading_zeros() <= u64::BITS {
        let mut words: Vec<u64> = (ids.iter().zip(0u64..))
            .map(|(id, index)| (id - min) << index_bits | index)
            .collect();
        words.sort_unstable();
        let mask = (1u64 << index_bits) - 1;
        let keys = words.iter().map(|w| (w >> index_bits) + min).collect();
        let values = words.iter().map(|w| (w & mask) as u32).collect();
        return (keys, values);
    }
    let mut pairs: Vec<(u64, u32)> = ids.iter().zip(0u32..).map(|(i, n)| (*i, n)).collect();
    pairs.sort_unstable();
    pairs.into_iter().unzip()
}

/// The index of each of `keys`: those `found` (in order), and the others as `add` gives them (it
/// takes the keys not found, in order); None when `add` refuses them.
fn completed<K: Copy>(
    keys: &[K],
    mut found: Vec<Option<u32>>,
    add: impl FnOnce(&[K]) -> Option<Vec<u32>>,
) -> Option<Vec<u32>> {
    let new: Vec<K> = keys
        .iter()
        .zip(&found)
        .filter(|(_, index)| index.is_none())
        .map(|(key, _)| *key)
        .collect();
    if !new.is_empty() {
        let empty = found.iter_mut().filter(|index| index.is_none());
        for (slot, index) in empty.zip(add(&new)?) {
            *slot = Some(index);
        }
    }
    found.into_iter().collect()
}

/// Text ids in order of first sight, and a table to find them by.
///
/// The table is open-addressed (linear probing, at most half full). A slot is one word: where
/// its id's record starts, and 24 bits of its hash; the record holds the id's index beside its
/// bytes. So a lookup reads one slot and one record: two places in memory that a lake's million
/// users spread over tens of megabytes. (Slots twice the size, holding the index too, left less
/// of the table in the processor's cache.) Looking up many ids at once ([`Names::get_all`])
/// asks for both a few ids ahead, so those waits overlap.
#[derive(Debug)]
struct Names {
    /// Every id as a record, in index order: its index and its length (4 bytes each,
    /// little-endian), then its bytes. The file holds each record without its index.
    records: Vec<u8>,
    /// Where each record starts, then where the next one will: one more than ids.
    starts: Vec<usize>,
    /// A power of two of slots, at most half of them taken.
    slots: Vec<Slot>,
}

/// An id in [`Names`]' table: where its record starts (the high 40 bits) and its hash's low
/// [`TAG_BITS`] bits (its high bits chose the slot); [`EMPTY`] for none.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot(u64);

/// A slot that holds no id.
const EMPTY: Slot = Slot(u64::MAX);

/// The bits of a slot that hold a few of its id's hash bits: the others say where the record is.
const TAG_BITS: u32 = 24;

/// How many bytes of records a slot can point into: 1 TiB (a billion ids of a kilobyte).
const RECORDS_MAX: u64 = (1 << (u64::BITS - TAG_BITS)) - 1;

impl Slot {
    fn new(start: usize, hash: u64) -> Slot {
        Slot((start as u64) << TAG_BITS | tag(hash))
    }

    /// Where its id's record starts; None for an empty slot.
    fn start(self) -> Option<usize> {
        (self != EMPTY).then_some((self.0 >> TAG_BITS) as usize)
    }

    fn tag(self) -> u64 {
        tag(self.0)
    }
}

/// How many slots a table of `ids` ids has: a power of two, at most half of them taken.
fn slots_for(ids: usize) -> usize {
    (2 * ids).next_power_of_two().max(16)
}

/// The hash bits a slot keeps.
fn tag(hash: u64) -> u64 {
    hash & ((1 << TAG_BITS) - 1)
}

/// How many ids ahead [`Names::get_all`] asks for a slot, and again for an id's record.
const AHEAD: usize = 16;

impl Default for Names {
    fn default() -> Names {
        Names {
            records: Vec::new(),
            starts: vec![0],
            slots: vec![EMPTY; slots_for(0)],
        }
    }
}

impl Names {
    /// The names in a file's body; None when it is cut short, names an id twice, or holds more
    /// ids than a dictionary does.
    fn decode(body: &[u8]) -> Option<Names> {
        let mut names = Names {
            records: Vec::with_capacity(body.len() + body.len() / 4),
            starts: vec![0],
            slots: Vec::new(),
        };
        let mut rest = body;
        while let Some((length, after)) = rest.split_first_chunk::<4>() {
            let name = after.get(..u32::from_le_bytes(*length) as usize)?;
            let grown = (names.records.len() + 8 + name.len()) as u64;
            if names.len() as u64 == CAPACITY || grown > RECORDS_MAX {
                return None;
            }
            names.push(name);
            rest = &after[name.len()..];
        }
        if !rest.is_empty() {
            return None;
        }
        names.rebuild(slots_for(names.len())).then_some(names)
    }

    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Where the `index`th id starts in the file's body (the end, for one more than ids).
    fn file_offset(&self, index: usize) -> Option<usize> {
        Some(self.starts.get(index)? - 4 * index)
    }

    /// How long the file's body is.
    fn file_len(&self) -> usize {
        self.file_offset(self.len())
            .expect("one more start than ids")
    }

    /// Appends the file's body: each id's length and bytes.
    fn write_to(&self, out: &mut Vec<u8>) {
        for ends in self.starts.windows(2) {
            out.extend_from_slice(&self.records[ends[0] + 4..ends[1]]);
        }
    }

    /// The index of each of `names`, if it has one. Each lookup goes in three steps, each a few
    /// names behind the one before: fetch the name's first slot; walk to its first candidate
    /// (a slot with its tag, or an empty one) and fetch that one's record; compare.
    fn get_all(&self, names: &[(&[u8], u64)]) -> Vec<Option<u32>> {
        let mut candidates = vec![0; names.len()];
        let mut found = Vec::with_capacity(names.len());
        for step in 0..names.len() + 2 * AHEAD {
            if let Some((_, hash)) = names.get(step) {
                prefetch(&self.slots[self.home(*hash)]);
            }
            if let Some(at) = step.checked_sub(AHEAD).filter(|at| *at < names.len()) {
                let (name, hash) = names[at];
                let candidate = self.candidate(hash);
                if let Some(start) = self.slots[candidate].start() {
                    // Its first and last bytes, if it is this name (as long as this name).
                    let end = (start + 8 + name.len()).min(self.records.len()) - 1;
                    prefetch(&self.records[start]);
                    prefetch(&self.records[end]);
                }
                candidates[at] = candidate;
            }
            if let Some(at) = step.checked_sub(2 * AHEAD) {
                let (name, hash) = names[at];
                found.push(self.find(hash, candidates[at], name));
            }
        }
        found
    }

    /// The index of each of `names` (with their hashes, each at most 4 GiB), giving those not
    /// here the next ones. The table grows once, to hold them all, and each name's first slot is
    /// asked for a few names ahead, so that adding a row group's new names (under the write
    /// lock, which every reader waits for) waits on memory about as little as looking them up
    /// does.
    fn add_all(&mut self, names: &[(&[u8], u64)]) -> Vec<u32> {
        let slots = slots_for(self.len() + names.len());
        if slots > self.slots.len() {
            assert!(self.rebuild(slots), "the names here are distinct");
        }
        (0..names.len())
            .map(|at| {
                if let Some((_, ahead)) = names.get(at + AHEAD) {
                    prefetch(&self.slots[self.home(*ahead)]);
                }
                let (name, hash) = names[at];
                self.get_or_push(name, hash)
            })
            .collect()
    }

    /// The index of `name` (with its hash), giving it the next one when it is not here; the
    /// table has room for it.
    fn get_or_push(&mut self, name: &[u8], hash: u64) -> u32 {
        if let Some(index) = self.find(hash, self.home(hash), name) {
            return index;
        }
        let start = self.records.len();
        let index = self.push(name);
        assert!(self.insert(start, hash), "a name not found is not here");
        index
    }

    /// Adds the record of a name as the next index (not yet in the table).
    fn push(&mut self, name: &[u8]) -> u32 {
        let index = u32::try_from(self.len()).expect("within the capacity checked");
        let length = u32::try_from(name.len()).expect("a name shorter than 4 GiB");
        self.records.extend_from_slice(&index.to_le_bytes());
        self.records.extend_from_slice(&length.to_le_bytes());
        self.records.extend_from_slice(name);
        self.starts.push(self.records.len());
        index
    }

    /// Puts every id in a table of `slots` slots (a power of two, at least twice the ids), their
    /// home slots fetched a few ids ahead; false when an id is there twice.
    fn rebuild(&mut self, slots: usize) -> bool {
        self.slots = vec![EMPTY; slots];
        let hashes: Vec<u64> = (self.starts[..self.len()].iter())
            .map(|start| hash(self.name_at(*start)))
            .collect();
        for (at, hash) in hashes.iter().enumerate() {
            if let Some(ahead) = hashes.get(at + AHEAD) {
                prefetch(&self.slots[self.home(*ahead)]);
            }
            if !self.insert(self.starts[at], *hash) {
                return false;
            }
        }
        true
    }

    /// Puts the id whose record starts at `start`, with this hash, in the first free slot from
    /// its own; false (with nothing changed) when the table has it already.
    fn insert(&mut self, start: usize, hash: u64) -> bool {
        let mut at = self.home(hash);
        while let Some(other) = self.slots[at].start() {
            if self.slots[at].tag() == tag(hash) && self.name_at(other) == self.name_at(start) {
                return false;
            }
            at = self.next(at);
        }
        self.slots[at] = Slot::new(start, hash);
        true
    }

    /// The index of the name with this hash, walking from slot `at` (its own, or one after it
    /// that no slot between holds the name).
    fn find(&self, hash: u64, mut at: usize, name: &[u8]) -> Option<u32> {
        loop {
            let slot = self.slots[at];
            let start = slot.start()?;
            if slot.tag() == tag(hash) && same(self.name_at(start), name) {
                return Some(self.index_at(start));
            }
            at = self.next(at);
        }
    }

    /// The first slot from a hash's own that may hold its name: the first with its tag, or empty.
    fn candidate(&self, hash: u64) -> usize {
        let mut at = self.home(hash);
        while self.slots[at] != EMPTY && self.slots[at].tag() != tag(hash) {
            at = self.next(at);
        }
        at
    }

    /// The slot a hash belongs in: its high bits.
    fn home(&self, hash: u64) -> usize {
        (hash >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The slot after `at`, the first after the last.
    fn next(&self, at: usize) -> usize {
        (at + 1) & (self.slots.len() - 1)
    }

    /// The index of the id whose record starts at `start`.
    fn index_at(&self, start: usize) -> u32 {
        u32::from_le_bytes(self.records[start..start + 4].try_into().expect("4 bytes"))
    }

    /// The id whose record starts at `start`.
    fn name_at(&self, start: usize) -> &[u8] {
        let length = self.records[start + 4..start + 8]
            .try_into()
            .expect("4 bytes");
        &self.records[start + 8..][..u32::from_le_bytes(length) as usize]
    }
}

/// Whether two names are the same. Names of 8 to 16 bytes (numbers, short names) are compared as
/// two words each (overlapping when shorter than 16), not by a call to `memcmp`, which costs more
/// than the comparison itself: a tenth of a cold month of text ids.
fn same(a: &[u8], b: &[u8]) -> bool {
    let word = |bytes: &[u8], at: usize| {
        u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
    };
    match a.len() {
        n if n != b.len() => false,
        n @ 8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// A text id's hash for [`Names`]' table (kept in memory only, so any good hash will do).
fn hash(name: &[u8]) -> u64 {
    foldhash::quality::FixedState::default().hash_one(name)
}

/// Asks the processor to start loading the memory at `at` into its cache, where a lookup a
/// little later will find it.
fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints at a load to come: it changes nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(at).cast());
    }
}

/// The index of `id` in `levels`, if it has one.
fn get(levels: &[Arc<Table>], id: u64) -> Option<u32> {
    levels.iter().find_map(|table| table.get(id))
}

/// Ids with their indices, sorted by id, and a directory from a range of ids to where it starts
/// (about one id per range): a lookup goes straight to its one or two candidates.
///
/// The ranges split the span of all ids but the outermost thousandth at each end, which share the
/// first and the last range: a -1 or a test account's id 7 among snowflake ids would otherwise
/// leave every range but one empty, and each lookup would walk through most ids. A range that
/// still holds many ids (ids in clusters far apart) is binary searched.
#[derive(Debug)]
struct Table {
    keys: Vec<u64>,
    values: Vec<u32>,
    /// Where the first range starts, and how far keys past it are shifted to give their range.
    min: u64,
    shift: u32,
    /// `starts[r]`: the position of the first key in range `r` or after; one more than ranges.
    starts: Vec<u32>,
}

impl Table {
    /// A table of ids (sorted) and their indices.
    fn new((keys, values): (Vec<u64>, Vec<u32>)) -> Table {
        let outliers = keys.len() / 1024;
        let min = keys.get(outliers).copied().unwrap_or(0);
        let max = keys
            .len()
            .checked_sub(1 + outliers)
            .map_or(0, |at| keys[at]);
        let ranges = keys.len().next_power_of_two();
        let shift = (0..64)
            .find(|s| (max - min) >> s < ranges as u64)
            .unwrap_or(63);
        let mut table = Table {
            keys: Vec::new(),
            values: Vec::new(),
            min,
            shift,
            starts: vec![0; ranges + 1],
        };
        for key in &keys {
            let range = table.range(*key);
            table.starts[range + 1] += 1;
        }
        for r in 1..table.starts.len() {
            table.starts[r] += table.starts[r - 1];
        }
        (table.keys, table.values) = (keys, values);
        table
    }

    /// The range that holds `key`.
    fn range(&self, key: u64) -> usize {
        let last = self.starts.len() - 2;
        ((key.saturating_sub(self.min) >> self.shift) as usize).min(last)
    }

    fn get(&self, id: u64) -> Option<u32> {
        let range = self.range(id);
        let (from, to) = (self.starts[range] as usize, self.starts[range + 1] as usize);
        let at = match to - from {
            0..=8 => self.keys[from..to].iter().position(|k| *k == id),
            _ => self.search(from, to, id),
        }?;
        Some(self.values[from + at])
    }

    /// Where `id` is among the keys from `from` to `to`, in a range that holds many.
    #[cold]
    fn search(&self, from: usize, to: usize, id: u64) -> Option<usize> {
        self.keys[from..to].binary_search(&id).ok()
    }

    fn columns(&self) -> (&[u64], &[u32]) {
        (&self.keys, &self.values)
    }
}

/// Two sorted tables (ids, indices) as one, built apart: no table of pairs in between (in a cold
/// run the dictionary is the largest thing held).
fn merge(a: (&[u64], &[u32]), b: (&[u64], &[u32])) -> (Vec<u64>, Vec<u32>) {
    let n = a.0.len() + b.0.len();
    let (mut keys, mut values) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut i, mut j) = (0, 0);
    while i < a.0.len() && j < b.0.len() {
        if a.0[i] <= b.0[j] {
            keys.push(a.0[i]);
            values.push(a.1[i]);
            i += 1;
        } else {
            keys.push(b.0[j]);
            values.push(b.1[j]);
            j += 1;
        }
    }
    for (k, v) in [(&a.0[i..], &a.1[i..]), (&b.0[j..], &b.1[j..])] {
        keys.extend_from_slice(k);
        values.extend_from_slice(v);
    }
    (keys, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Indices are one per id, stable, and survive a save and load.
    #[test]
    fn indices_are_one_to_one_and_stable() {
        let dict = RwLock::new(Dictionary::default());
        let mut seen = std::collections::HashMap::new();
        let mut random = random(7);
        for day in 0..50 {
            let mut ids: Vec<u64> = (0..200)
                .map(|_| (random() >> 20) % (1000 + day * 100))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for (id, index) in ids
                .iter()
                .zip(Dictionary::shared_indices(&dict, &ids).unwrap())
            {
                assert_eq!(*seen.entry(*id).or_insert(index), index, "id {id}");
            }
        }
        let distinct: std::collections::HashSet<u32> = seen.values().copied().collect();
        assert_eq!(distinct.len(), seen.len());
        let mut dict = dict.into_inner().unwrap();
        let bytes = dict.seal();
        let loaded = RwLock::new(Dictionary::decode(&bytes).unwrap());
        assert_eq!(loaded.read().unwrap().lineage, dict.lineage);
        let head_len = Dictionary::head_len(&bytes).unwrap() as usize;
        let head = &bytes[..head_len];
        assert_eq!(Dictionary::lineage_in(head), Some(dict.lineage.clone()));
        assert_eq!(Dictionary::lineage_in(&head[..head.len() - 1]), None);
        assert!(!loaded.read().unwrap().changed());
        let mut all: Vec<u64> = seen.keys().copied().collect();
        all.sort_unstable();
        let again = Dictionary::shared_indices(&loaded, &all).unwrap();
        assert!(!loaded.read().unwrap().changed());
        for (id, index) in all.iter().zip(again) {
            assert_eq!(seen[id], index);
        }
    }

    /// A stream of 64-bit numbers from `seed` (a linear congruential generator).
    fn random(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        }
    }

    /// Ids come out sorted with their own indices, packed into one word each or not: a span of
    /// 20 bits, one that just fits beside the indices, one that does not, and 64-bit ids.
    #[test]
    fn ids_sort_with_their_indices() {
        let mut random = random(3);
        let cases: Vec<Vec<u64>> = vec![
            vec![],
            vec![42],
            (0..5_000).map(|_| 1_000 + (random() >> 44)).collect(),
            vec![9, (1 << 62) + 8, 10],
            vec![9, (1 << 62) + 9, 10],
            (0..5_000).map(|_| random()).chain([0, u64::MAX]).collect(),
        ];
        for mut ids in cases {
            ids.sort_unstable();
            ids.dedup();
            // In an order of first sight that is not sorted.
            let third = ids.len() / 3;
            ids.rotate_left(third);
            let mut pairs: Vec<(u64, u32)> = ids.iter().copied().zip(0..).collect();
            pairs.sort();
            let (keys, values): (Vec<u64>, Vec<u32>) = pairs.into_iter().unzip();
            assert_eq!(sorted(&ids), (keys, values), "{} ids", ids.len());
        }
    }

    /// Every id is found, and no other, however the ids are spread: evenly over 64 bits, in a
    /// run, as a cluster with outliers at both ends (-1, 0, 7), or as two clusters far apart. A
    /// few outliers leave the other ids spread over the ranges as evenly as without them.
    #[test]
    fn lookups_find_every_id_however_the_ids_are_spread() {
        let mut random = random(11);
        let cluster = |random: &mut dyn FnMut() -> u64, base: u64, n: usize| -> Vec<u64> {
            (0..n).map(|_| base + (random() >> 24)).collect()
        };
        let spreads: Vec<(&str, Vec<u64>)> = vec![
            ("64 bits", (0..20_000).map(|_| random()).collect()),
            ("a run", (1_000..21_000).collect()),
            ("outliers", {
                let mut ids = cluster(&mut random, 1 << 60, 20_000);
                ids.extend([u64::MAX, 0, 7]);
                ids
            }),
            ("two clusters", {
                let mut ids = cluster(&mut random, 1 << 20, 10_000);
                ids.extend(cluster(&mut random, 1 << 62, 10_000));
                ids
            }),
        ];
        for (spread, mut ids) in spreads {
            ids.sort_unstable();
            ids.dedup();
            let indices: Vec<u32> = (0..ids.len() as u32).collect();
            let table = Table::new((ids.clone(), indices));
            let oracle: std::collections::HashMap<u64, u32> =
                ids.iter().copied().zip(0..).collect();
            let near = ids
                .iter()
                .flat_map(|id| [id.wrapping_sub(1), *id, id.wrapping_add(1)]);
            for id in near.chain([0, 1, u64::MAX - 1, u64::MAX]) {
                assert_eq!(table.get(id), oracle.get(&id).copied(), "{spread}: id {id}");
            }
            // The outermost thousandth at each end share the first and the last range.
            let sizes: Vec<u32> = table.starts.windows(2).map(|w| w[1] - w[0]).collect();
            let inner = sizes[1..sizes.len() - 1].iter().max();
            let ends = sizes[0].max(sizes[sizes.len() - 1]) as usize;
            if spread == "outliers" {
                assert!(inner <= Some(&8), "{spread}: {inner:?} ids in one range");
                assert!(
                    ends <= ids.len() / 1024 + 8,
                    "{spread}: {ends} ids in an end range"
                );
            }
        }
    }

    /// Each save that adds ids seals a state; a later dictionary extends the earlier one's
    /// lineage, one that went another way from the same state does not, and a file cut short or
    /// changed is not a dictionary.
    #[test]
    fn lineages_tell_grown_dictionaries_from_others() {
        let dict = RwLock::new(Dictionary::default());
        let empty = dict.read().unwrap().lineage.clone();
        Dictionary::shared_indices(&dict, &[10, 20, 30]).unwrap();
        let first = dict.write().unwrap().seal();
        let (mut a, mut b) = (
            Dictionary::decode(&first).unwrap(),
            Dictionary::decode(&first).unwrap(),
        );
        assert_eq!(a.lineage.states.len(), 2);
        assert!(a.lineage.extends(&empty) && !empty.extends(&a.lineage));
        a.add(3, &[40]).unwrap();
        b.add(3, &[41]).unwrap();
        let (a_bytes, b_bytes) = (a.seal(), b.seal());
        assert_eq!(a.seal(), a_bytes, "sealing again adds no state");
        let earlier = Lineage {
            generation: a.lineage.generation,
            states: a.lineage.states[..2].to_vec(),
        };
        assert!(a.lineage.extends(&earlier) && b.lineage.extends(&earlier));
        assert!(!a.lineage.holds(b.lineage.last()) && !b.lineage.holds(a.lineage.last()));
        assert!(a.lineage.holds(earlier.last()) && !earlier.holds(a.lineage.last()));
        assert_eq!(Dictionary::decode(&a_bytes).unwrap().lineage, a.lineage);
        assert!(
            Dictionary::decode(&a_bytes[..a_bytes.len() - 8]).is_none(),
            "cut short"
        );
        // Any byte changed (the generation, the lineage, an id): not a dictionary.
        for at in 0..b_bytes.len() {
            let mut changed = b_bytes.clone();
            changed[at] ^= 0x10;
            assert!(Dictionary::decode(&changed).is_none(), "byte {at}");
        }
    }

    /// Ids that another day added between a day's lookups and its adding keep their index.
    #[test]
    fn ids_added_meanwhile_keep_their_index() {
        let dict = RwLock::new(Dictionary::default());
        assert_eq!(
            Dictionary::shared_indices(&dict, &[10, 20, 30]),
            Some(vec![0, 1, 2])
        );
        // A day found none of 5, 25 and 40 among the first three ids; another day then added 25.
        assert_eq!(
            Dictionary::shared_indices(&dict, &[25, 30]),
            Some(vec![3, 2])
        );
        let added = dict.write().unwrap().add(3, &[5, 25, 40]);
        assert_eq!(added, Some(vec![4, 3, 5]));
        assert_eq!(
            Dictionary::shared_indices(&dict, &[5, 10, 25, 40]),
            Some(vec![4, 0, 3, 5])
        );
    }

    /// A dictionary that cannot give the new ids an index of their own refuses them all, and
    /// keeps every index it gave.
    #[test]
    fn a_full_dictionary_refuses_new_ids_and_changes_nothing() {
        let dict = RwLock::new(Dictionary {
            capacity: 4,
            ..Dictionary::default()
        });
        assert_eq!(
            Dictionary::shared_indices(&dict, &[10, 20, 30]),
            Some(vec![0, 1, 2])
        );
        assert_eq!(Dictionary::shared_indices(&dict, &[5, 40]), None);
        assert_eq!(dict.read().unwrap().ids, [10, 20, 30]);
        assert_eq!(
            Dictionary::shared_indices(&dict, &[5, 10, 30]),
            Some(vec![3, 0, 2])
        );
        assert_eq!(
            Dictionary::shared_indices(&dict, &[20, 30]),
            Some(vec![1, 2])
        );
        assert_eq!(Dictionary::shared_indices(&dict, &[1]), None);
    }

    fn names(dict: &RwLock<Dictionary>, names: &[&str]) -> Option<Vec<u32>> {
        let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        Dictionary::shared_name_indices(dict, &names)
    }

    /// Names are the same exactly when their bytes are, at every length and wherever they
    /// differ.
    #[test]
    fn names_are_compared_whole() {
        for length in 0..40 {
            let name: Vec<u8> = (0..length as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(same(&name, &name.clone()), "{length}");
            for at in 0..length {
                let mut other = name.clone();
                other[at] ^= 1;
                assert!(!same(&name, &other), "{length} bytes, differing at {at}");
            }
            if length > 0 {
                assert!(
                    !same(&name, &name[..length - 1]),
                    "{length} bytes, one cut off"
                );
            }
        }
    }

    /// A slot gives back where its record starts and its hash's tag, up to the last start a
    /// table can point to, and is never the empty one.
    #[test]
    fn slots_keep_where_records_start() {
        for start in [0, 1, 12_345, RECORDS_MAX as usize - 1] {
            for hash in [0, u64::MAX, 0x1234_5678_9abc_def0] {
                let slot = Slot::new(start, hash);
                assert_eq!(slot.start(), Some(start), "{start} {hash:x}");
                assert_eq!(slot.tag(), hash & 0xff_ffff, "{start} {hash:x}");
            }
        }
        assert_eq!(EMPTY.start(), None);
    }

    /// Text ids: one index per name, however often a batch names it, kept through saves and
    /// loads (over several states); the empty name is a name; a dictionary of integers is not one
    /// of text ids.
    #[test]
    fn names_are_one_to_one_and_survive_a_save() {
        let dict = RwLock::new(Dictionary::new(true));
        let mut seen = std::collections::HashMap::new();
        let mut random = random(7);
        for day in 0..30u64 {
            let mut day_names: Vec<String> = (0..100)
                .map(|_| format!("user-{}", (random() >> 20) % (300 + day * 20)))
                .collect();
            // A name may come more than once in a batch (a column that is not dictionary
            // encoded), new or not.
            day_names.push(String::new());
            day_names.push(String::new());
            let refs: Vec<&str> = day_names.iter().map(String::as_str).collect();
            for (name, index) in day_names.iter().zip(names(&dict, &refs).unwrap()) {
                assert_eq!(*seen.entry(name.clone()).or_insert(index), index, "{name}");
            }
            if day % 10 == 9 {
                let bytes = dict.write().unwrap().seal();
                *dict.write().unwrap() = Dictionary::decode(&bytes).unwrap();
            }
        }
        let distinct: std::collections::HashSet<u32> = seen.values().copied().collect();
        assert_eq!(distinct.len(), seen.len());
        let mut dict = dict.into_inner().unwrap();
        assert_eq!(dict.lineage.states.len(), 4);
        let loaded = RwLock::new(Dictionary::decode(&dict.seal()).unwrap());
        assert!(loaded.read().unwrap().has_names());
        assert_eq!(loaded.read().unwrap().lineage, dict.lineage);
        let all: Vec<&str> = seen.keys().map(String::as_str).collect();
        for (name, index) in all.iter().zip(names(&loaded, &all).unwrap()) {
            assert_eq!(seen[*name], index);
        }
        assert!(!loaded.read().unwrap().changed());
        let integers = RwLock::new(Dictionary::default());
        Dictionary::shared_indices(&integers, &[1]).unwrap();
        let bytes = integers.write().unwrap().seal();
        assert!(!Dictionary::decode(&bytes).unwrap().has_names());
    }

    /// A file whose lineage holds but that names an id twice is not a dictionary (it would give
    /// one id two indices); the same file naming another id is one.
    #[test]
    fn a_file_naming_an_id_twice_is_not_a_dictionary() {
        let dict = RwLock::new(Dictionary::new(true));
        names(&dict, &["a", "b"]).unwrap();
        let sealed = dict.write().unwrap().seal();
        let lineage = Dictionary::lineage_in(&sealed).unwrap();
        let body = sealed.len() - 10;
        let with_last = |name: u8| {
            let mut bytes = sealed.clone();
            *bytes.last_mut().unwrap() = name;
            let print = chain(lineage.states[0].print, &bytes[body..]);
            let at = Dictionary::HEAD as usize + 16 + 8;
            bytes[at..at + 8].copy_from_slice(&print.to_le_bytes());
            Dictionary::decode(&bytes)
        };
        assert!(with_last(b'b').is_some());
        assert!(with_last(b'c').unwrap().has_names());
        assert!(with_last(b'a').is_none(), "\"a\" twice");
    }

    /// A name another day added between a day's lookups and its adding keeps its index; a full
    /// dictionary refuses new names and keeps its own; a file changed anywhere or cut short is
    /// not a dictionary.
    #[test]
    fn names_added_meanwhile_keep_their_index_and_damage_is_found() {
        let dict = RwLock::new(Dictionary {
            capacity: 6,
            ..Dictionary::new(true)
        });
        assert_eq!(names(&dict, &["a", "b", "c"]), Some(vec![0, 1, 2]));
        // A day found neither "d" nor "e"; another day then added "e".
        assert_eq!(names(&dict, &["e"]), Some(vec![3]));
        let added = dict
            .write()
            .unwrap()
            .add_names(&[(b"d", hash(b"d")), (b"e", hash(b"e"))]);
        assert_eq!(added, Some(vec![4, 3]));
        assert_eq!(names(&dict, &["f", "a", "g"]), None, "full");
        assert_eq!(names(&dict, &["e", "a", "d"]), Some(vec![3, 0, 4]));
        let bytes = dict.write().unwrap().seal();
        assert!(
            Dictionary::decode(&bytes[..bytes.len() - 1]).is_none(),
            "cut short"
        );
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 0x10;
            assert!(Dictionary::decode(&changed).is_none(), "byte {at}");
        }
    }
}
