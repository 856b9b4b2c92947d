//! Object stores, chosen by URL scheme in one place.

use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::{ObjectStore, local::LocalFileSystem, path::Path};

use crate::{Error, Result};

/// Where a lake lives: the store, the URL DataFusion knows the store by, and the lake's root in it.
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub store_url: ObjectStoreUrl,
    pub root: Path,
    /// What goes before an object's path to name it for a person (`/` for a local folder).
    pub display_prefix: String,
}

/// Opens a lake given as a plain folder or a `file://` URL.
pub fn open(lake: &str) -> Result<Location> {
    let folder = match lake.split_once("://") {
        None => std::path::PathBuf::from(lake),
        Some(("file", rest)) => std::path::PathBuf::from(rest),
        Some((scheme, _)) => {
            return Err(Error::usage(
                format!("unsupported lake URL scheme '{scheme}://' ({lake})"),
                "use a local folder or a file:// URL",
            ));
        }
    };
    let not_found = || Error::LakeNotFound {
        lake: lake.to_string(),
    };
    let folder = std::fs::canonicalize(&folder).map_err(|_| not_found())?;
    if !folder.is_dir() {
        return Err(not_found());
    }
    let root = Path::from_absolute_path(&folder).map_err(|e| Error::Storage {
        lake: lake.to_string(),
        source: e.into(),
    })?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new()),
        store_url: ObjectStoreUrl::local_filesystem(),
        root,
        display_prefix: "/".to_string(),
    })
}
