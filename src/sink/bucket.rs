//! A CSV, Parquet or xlsx file in a bucket (`gs://…`, `s3://…`): fetched when it is there, merged
//! as a local file is (in a temporary folder), and put back whole, only if no one replaced it in
//! the meantime. An object is replaced at once, so readers see the old file or the new one.

use std::path::Path;

use object_store::{ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

use crate::lake::storage::{self, StorageOptions};
use crate::{Error, Result};

/// Fetches the object at `url` into a temporary folder when it is there, lets `merge` write the
/// new rows into that local file as into any other, and puts the file back.
pub async fn write(
    url: &str,
    storage: &StorageOptions,
    merge: impl AsyncFnOnce(&Path) -> Result<u64>,
) -> Result<u64> {
    let place = storage::open(url, storage)?;
    let failed = |e: object_store::Error| Error::Sink {
        dest: url.to_string(),
        detail: format!("{e}{}", storage::write_hint(&e, &place.credentials)),
    };
    let store = place.store.as_ref();
    let folder =
        tempfile::tempdir().map_err(|e| Error::io("cannot make", "a temporary folder", e))?;
    let name = url.rsplit('/').next().unwrap_or("export");
    let local = folder.path().join(name);
    // The object as it is now, and its version, which the put below must still find. The version
    // comes from `head`: a GCS download need not carry the generation (the emulator's does not).
    // Should the object change between the two, the put's condition refuses it.
    let mode = match store.head(&place.root).await {
        Ok(meta) => {
            let bytes = store.get(&place.root).await.map_err(failed)?.bytes();
            let bytes = bytes.await.map_err(failed)?;
            std::fs::write(&local, &bytes).map_err(|e| Error::io("cannot write", &local, e))?;
            PutMode::Update(UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            })
        }
        Err(object_store::Error::NotFound { .. }) => PutMode::Create,
        Err(e) => return Err(failed(e)),
    };
    let rows = merge(&local).await.map_err(|e| named(e, &local, url))?;
    let bytes = std::fs::read(&local).map_err(|e| Error::io("cannot read", &local, e))?;
    match store
        .put_opts(&place.root, bytes.into(), PutOptions::from(mode))
        .await
    {
        Ok(_) => Ok(rows),
        Err(
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
        ) => Err(Error::Sink {
            dest: url.to_string(),
            detail: "it was replaced while this export ran (by another export at the same \
                         time?); run this one again"
                .to_string(),
        }),
        Err(e) => Err(failed(e)),
    }
}

/// An error about the local copy, naming the object instead.
fn named(error: Error, local: &Path, url: &str) -> Error {
    let local = local.display().to_string();
    match error {
        Error::Usage { what, hint } => Error::Usage {
            what: what.replace(&local, url),
            hint,
        },
        Error::Sink { detail, .. } => Error::Sink {
            dest: url.to_string(),
            detail: detail.replace(&local, url),
        },
        other => other,
    }
}
