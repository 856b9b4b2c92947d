//! The lake's user dictionary: every integer id seen gets a small index (0, 1, 2, … in order of
//! first sight), and the per-day bitmaps hold indices. Ids are often sparse (hashes, 40-bit or
//! snowflake ids), where a bitmap of raw ids is mostly overhead; indices are dense, so a day is a
//! compact bitmap and a union is a few word-wise ORs. The mapping is one-to-one: nothing collides.
//!
//! Kept beside the rollups (`ids`), it only ever grows, and is replaced whole (written beside and
//! renamed), so an index once given never changes. A dictionary made anew gets a new generation
//! number, which every rollup's key names: rollups made with another dictionary are never used.

use std::path::Path;
use std::sync::RwLock;

/// First bytes of a dictionary file.
const MAGIC: &[u8] = b"dau ids 1\n";

#[derive(Debug)]
pub struct Dictionary {
    /// Names this dictionary; rollups made with it carry it.
    pub generation: u64,
    /// Every id, in order of first sight: an id's index is its position.
    ids: Vec<u64>,
    /// How many of `ids` the file holds.
    saved: usize,
    /// `(id, index)` sorted by id, to look a day's sorted ids up in one pass.
    sorted: Vec<(u64, u32)>,
    /// Ids given an index since `sorted` was built, sorted by id.
    recent: Vec<(u64, u32)>,
}

impl Default for Dictionary {
    /// An empty dictionary with a new generation.
    fn default() -> Dictionary {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = format!("{now:?} {}", std::process::id());
        Dictionary::with(super::rollup::fnv1a(seed.as_bytes()), Vec::new())
    }
}

impl Dictionary {
    fn with(generation: u64, ids: Vec<u64>) -> Dictionary {
        let mut sorted: Vec<(u64, u32)> = ids.iter().zip(0u32..).map(|(i, n)| (*i, n)).collect();
        sorted.sort_unstable();
        Dictionary {
            generation,
            saved: ids.len(),
            ids,
            sorted,
            recent: Vec::new(),
        }
    }

    /// The dictionary in `path`; None when there is none or it is not one.
    pub fn load(path: &Path) -> Option<Dictionary> {
        let bytes = std::fs::read(path).ok()?;
        let rest = bytes.strip_prefix(MAGIC)?;
        let (generation, rest) = rest.split_first_chunk::<8>()?;
        if rest.len() % 8 != 0 || rest.len() / 8 > u32::MAX as usize {
            return None;
        }
        let ids = rest
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        Some(Dictionary::with(u64::from_le_bytes(*generation), ids))
    }

    /// The generation of the dictionary in `path`, reading only its first bytes.
    pub fn generation_in(path: &Path) -> Option<u64> {
        use std::io::Read;
        let mut head = [0u8; MAGIC.len() + 8];
        std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
        let generation = head.strip_prefix(MAGIC)?;
        Some(u64::from_le_bytes(generation.try_into().ok()?))
    }

    /// True when ids were added since the dictionary was loaded (or made).
    pub fn changed(&self) -> bool {
        self.ids.len() > self.saved
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 8 * (self.ids.len() + 1));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.generation.to_le_bytes());
        for id in &self.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
        out
    }

    /// The index of each of `ids` (sorted, distinct) in a dictionary shared by the days being
    /// read: looked up under the read lock, in parallel; only new ids take the write lock.
    pub fn shared_indices(dictionary: &RwLock<Dictionary>, ids: &[u64]) -> Vec<u32> {
        let mut found = {
            let dictionary = dictionary.read().expect("dictionary lock");
            let mut found = look_up(&dictionary.sorted, ids);
            for (slot, recent) in found.iter_mut().zip(look_up(&dictionary.recent, ids)) {
                *slot = slot.or(recent);
            }
            found
        };
        let new: Vec<u64> = ids
            .iter()
            .zip(&found)
            .filter(|(_, index)| index.is_none())
            .map(|(id, _)| *id)
            .collect();
        if !new.is_empty() {
            // Found or added under the write lock: another day may have added some meanwhile.
            let added = dictionary.write().expect("dictionary lock").indices(&new);
            let empty = found.iter_mut().filter(|index| index.is_none());
            for (slot, index) in empty.zip(added) {
                *slot = Some(index);
            }
        }
        found
            .into_iter()
            .map(|i| i.expect("every id found or added"))
            .collect()
    }

    /// The index of each of `ids` (sorted, distinct), giving new ids the next indices.
    pub fn indices(&mut self, ids: &[u64]) -> Vec<u32> {
        let mut found = look_up(&self.sorted, ids);
        let recent = look_up(&self.recent, ids);
        let mut added = Vec::new();
        for ((slot, in_recent), id) in found.iter_mut().zip(recent).zip(ids) {
            if slot.is_none() {
                *slot = in_recent.or_else(|| {
                    let index = u32::try_from(self.ids.len()).expect("fewer than 2^32 users");
                    self.ids.push(*id);
                    added.push((*id, index));
                    Some(index)
                });
            }
        }
        if !added.is_empty() {
            self.recent = merge(&self.recent, &added);
            // Fold the recent ids in once they are a fair share, so lookups stay one pass each.
            if self.recent.len() > self.sorted.len() / 4 {
                self.sorted = merge(&self.sorted, &self.recent);
                self.recent.clear();
            }
        }
        found
            .into_iter()
            .map(|i| i.expect("every id found or added"))
            .collect()
    }
}

/// Looks sorted `ids` up in the sorted `table`, moving forward only: entry by entry when the
/// ids are a fair share of the table, else galloping over it.
fn look_up(table: &[(u64, u32)], ids: &[u64]) -> Vec<Option<u32>> {
    let mut at = 0;
    if table.len() <= ids.len().saturating_mul(16) {
        return ids
            .iter()
            .map(|id| {
                while at < table.len() && table[at].0 < *id {
                    at += 1;
                }
                table.get(at).filter(|(t, _)| t == id).map(|(_, i)| *i)
            })
            .collect();
    }
    ids.iter()
        .map(|id| {
            let mut step = 1;
            while at + step < table.len() && table[at + step].0 < *id {
                at += step;
                step *= 2;
            }
            // table[at + step] (if any) is at least id: the first such entry is before it.
            let end = (at + step + 1).min(table.len());
            at += table[at.min(end)..end].partition_point(|(t, _)| t < id);
            table.get(at).filter(|(t, _)| t == id).map(|(_, i)| *i)
        })
        .collect()
}

/// Two sorted tables as one.
fn merge(a: &[(u64, u32)], b: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Indices are one per id, stable, and survive a save and load.
    #[test]
    fn indices_are_one_to_one_and_stable() {
        let mut dict = Dictionary::default();
        let mut seen = std::collections::HashMap::new();
        let mut state = 7u64;
        for day in 0..50 {
            let mut ids: Vec<u64> = (0..200)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 20) % (1000 + day * 100)
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            for (id, index) in ids.iter().zip(dict.indices(&ids)) {
                assert_eq!(*seen.entry(*id).or_insert(index), index, "id {id}");
            }
        }
        let distinct: std::collections::HashSet<u32> = seen.values().copied().collect();
        assert_eq!(distinct.len(), seen.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids");
        std::fs::write(&path, dict.encode()).unwrap();
        let mut loaded = Dictionary::load(&path).unwrap();
        assert_eq!(Dictionary::generation_in(&path), Some(dict.generation));
        assert!(!loaded.changed());
        let mut all: Vec<u64> = seen.keys().copied().collect();
        all.sort_unstable();
        let again = loaded.indices(&all);
        assert!(!loaded.changed());
        for (id, index) in all.iter().zip(again) {
            assert_eq!(seen[id], index);
        }
    }
}
