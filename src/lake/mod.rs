//! The lake: where it is, how its days are laid out, and the `events` table over a set of its days.

pub mod inspect;
pub mod layout;
pub mod storage;
pub mod table;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, path::Path};

pub use layout::Layout;

use crate::{Error, Result};

/// A discovered lake: its days and where each day's files are.
#[derive(Debug)]
pub struct Lake {
    /// The lake as the user named it, for messages.
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
    pub store_url: ObjectStoreUrl,
    pub layout: Layout,
    /// Each day that has a partition, with its partition folders.
    pub days: BTreeMap<NaiveDate, Vec<Path>>,
    /// Partition-like folders that do not name a real day, skipped.
    pub skipped: Vec<String>,
    /// Files and folders beside the partitions that are neither partitions nor hidden.
    pub strays: Vec<String>,
    display_prefix: String,
}

impl Lake {
    /// Finds the lake's layout and days. Lists folders only, never the files inside them.
    pub async fn open(name: &str) -> Result<Lake> {
        let location = storage::open(name)?;
        let storage_error = |source| Error::Storage {
            lake: name.to_string(),
            source,
        };
        let found = layout::discover(location.store.as_ref(), &location.root)
            .await
            .map_err(storage_error)?;
        let Some(layout) = found.layout.filter(|_| !found.days.is_empty()) else {
            let found = match found.seen.as_slice() {
                [] => String::new(),
                seen => format!("; found folders: {}", seen.join(", ")),
            };
            return Err(Error::NoLayout {
                lake: name.to_string(),
                found,
            });
        };
        Ok(Lake {
            name: name.to_string(),
            store: location.store,
            store_url: location.store_url,
            layout,
            days: found.days,
            skipped: found.skipped,
            strays: found.strays,
            display_prefix: location.display_prefix,
        })
    }

    /// An object's name as a person can find it: a full local path, or a full URL.
    pub fn describe(&self, location: &Path) -> String {
        format!("{}{location}", self.display_prefix)
    }

    pub fn first_day(&self) -> NaiveDate {
        *self
            .days
            .keys()
            .next()
            .expect("a lake has at least one day")
    }

    pub fn last_day(&self) -> NaiveDate {
        *self
            .days
            .keys()
            .next_back()
            .expect("a lake has at least one day")
    }

    /// The data files of one day: every file below its partition folders whose name and folders
    /// do not start with `_` or `.`.
    pub async fn files(&self, day: NaiveDate) -> Result<Vec<ObjectMeta>> {
        let mut files = Vec::new();
        for folder in self.days.get(&day).into_iter().flatten() {
            let listed: Vec<ObjectMeta> = self
                .store
                .list(Some(folder))
                .try_collect()
                .await
                .map_err(|source| Error::Storage {
                    lake: self.name.clone(),
                    source,
                })?;
            files.extend(listed.into_iter().filter(|meta| {
                meta.location
                    .prefix_match(folder)
                    .is_some_and(|mut parts| parts.all(|p| !layout::is_hidden(p.as_ref())))
            }));
        }
        files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(files)
    }
}
