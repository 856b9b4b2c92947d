//! Progress on stderr for reads that take more than about a second: files opened out of the
//! files to read, and bytes read. Every read of the lake goes through [`Metered`], which counts.
//! Nothing is drawn when stderr is not a terminal, or with `--quiet`.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload,
    PutResult,
};

/// What has been read since the last [`Meter::watch`].
#[derive(Debug, Default)]
pub struct Meter {
    bytes: AtomicU64,
    files: Mutex<HashSet<Path>>,
}

impl Meter {
    fn read(&self, location: &Path, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let mut files = self.files.lock().expect("meter");
        if !files.contains(location) {
            files.insert(location.clone());
        }
    }

    /// Starts counting afresh and, when stderr is a terminal, shows a bar labelled `what` once
    /// reading has taken `after` (never for None), until the returned guard is dropped.
    pub fn watch(
        self: &Arc<Self>,
        what: &'static str,
        files: Option<usize>,
        after: Option<Duration>,
    ) -> Watch {
        self.bytes.store(0, Ordering::Relaxed);
        self.files.lock().expect("meter").clear();
        let stop = Arc::new(AtomicBool::new(false));
        let drawer = after
            .filter(|_| std::io::stderr().is_terminal())
            .map(|after| {
                let (meter, stop) = (self.clone(), stop.clone());
                std::thread::spawn(move || meter.draw(what, files.map(|n| n as u64), after, &stop))
            });
        Watch { stop, drawer }
    }

    fn draw(&self, what: &str, files: Option<u64>, after: Duration, stop: &AtomicBool) {
        let started = Instant::now();
        while started.elapsed() < after {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Without a known number of files, a spinner and a count.
        let template = match files {
            Some(_) => format!("{what} {{wide_bar}} {{pos}}/{{len}} files, {{msg}}, {{elapsed}}"),
            None => format!("{what} {{spinner}} {{pos}} files, {{msg}}, {{elapsed}}"),
        };
        let style = ProgressStyle::with_template(&template).expect("a valid progress template");
        let bar =
            ProgressBar::with_draw_target(files, ProgressDrawTarget::stderr()).with_style(style);
        // Drawn at least once, however soon reading ends.
        loop {
            let opened = self.files.lock().expect("meter").len() as u64;
            let read = HumanBytes(self.bytes.load(Ordering::Relaxed));
            // Once every file is open, what remains is counting.
            let all_open = files.is_some_and(|n| opened >= n);
            let rest = if all_open && what == "reading" {
                ", computing"
            } else {
                ""
            };
            bar.set_message(format!("{read} read{rest}"));
            bar.set_position(files.map_or(opened, |n| opened.min(n)));
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bar.finish_and_clear();
    }
}

/// Shows progress until dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(drawer) = self.drawer.take() {
            let _ = drawer.join();
        }
    }
}

/// A store that counts what is read from it. On this machine's disk (`local`), reads of small
/// files are made on the calling thread: the store would hand each to a blocking thread twice
/// (open, then read), which for a lake of many small files costs more than the reads (1.5x the
/// time of a month of 500 files a day).
#[derive(Debug)]
pub struct Metered {
    pub inner: Arc<dyn ObjectStore>,
    pub meter: Arc<Meter>,
    pub local: bool,
}

/// The largest file read on the calling thread (see [`Metered`]).
const SMALL_FILE: u64 = 1 << 20;

impl Metered {
    /// Reads a range of the local file at `location` here, when a plain request asks for it and
    /// the file is small; None when the store should.
    fn read_here(&self, location: &Path, options: &GetOptions) -> Option<GetResult> {
        let plain = options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none()
            && options.version.is_none()
            && !options.head;
        let Some(GetRange::Bounded(range)) = options.range.clone() else {
            return None;
        };
        if !self.local || !plain {
            return None;
        }
        read_local(location, range)
    }
}

/// A range of a small local file, as the local store gives it; None for a larger file, or when
/// anything fails (the store then tries, and says what is wrong its own way).
fn read_local(location: &Path, range: Range<u64>) -> Option<GetResult> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let file = std::fs::File::open(super::layout::local_path(location)).ok()?;
    let metadata = file.metadata().ok().filter(|m| m.len() <= SMALL_FILE)?;
    let size = metadata.len();
    let range = GetRange::Bounded(range).as_range(size).ok()?;
    let mut bytes = vec![0; (range.end - range.start) as usize];
    file.read_exact_at(&mut bytes, range.start).ok()?;
    let modified = metadata.modified().ok()?;
    let micros = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    let meta = ObjectMeta {
        location: location.clone(),
        last_modified: modified.into(),
        size,
        e_tag: Some(format!("{:x}-{micros:x}-{size:x}", metadata.ino())),
        version: None,
    };
    let bytes = Bytes::from(bytes);
    Some(GetResult {
        payload: GetResultPayload::Stream(futures::stream::once(async { Ok(bytes) }).boxed()),
        meta,
        range,
        attributes: Attributes::default(),
    })
}

impl std::fmt::Display for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let got = match self.read_here(location, &options) {
            Some(got) => got,
            None => self.inner.get_opts(location, options).await?,
        };
        self.meter.read(location, got.range.end - got.range.start);
        Ok(got)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let got = self.inner.get_ranges(location, ranges).await?;
        let bytes = got.iter().map(|b| b.len() as u64).sum();
        self.meter.read(location, bytes);
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    /// A small file's range read here is what the local store gives: the same bytes, range and
    /// metadata. A larger file, a missing one and a range past the end are left to the store.
    #[tokio::test]
    async fn a_small_file_reads_here_as_the_store_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.parquet");
        let text: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&small, &text).unwrap();
        let large = dir.path().join("large.parquet");
        std::fs::write(&large, vec![7u8; SMALL_FILE as usize + 1]).unwrap();
        let at = |file: &std::path::Path| Path::from_absolute_path(file).unwrap();
        let store = LocalFileSystem::new();

        for range in [0..5000, 100..101, 4000..6000] {
            let here = read_local(&at(&small), range.clone()).unwrap();
            let options = GetOptions::new().with_range(Some(range.clone()));
            let there = store.get_opts(&at(&small), options).await.unwrap();
            assert_eq!(here.meta, there.meta, "{range:?}");
            assert_eq!(here.range, there.range, "{range:?}");
            assert_eq!(
                here.bytes().await.unwrap(),
                there.bytes().await.unwrap(),
                "{range:?}"
            );
        }
        assert!(read_local(&at(&small), 5000..5001).is_none());
        assert!(read_local(&at(&large), 0..10).is_none());
        assert!(read_local(&at(&dir.path().join("gone.parquet")), 0..10).is_none());
        assert!(read_local(&at(dir.path()), 0..10).is_none());
    }
}
