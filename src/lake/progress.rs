//! Progress on stderr for reads that take more than about a second: files opened out of the
//! files to read, and bytes read. Every read of the lake goes through [`Metered`], which counts.
//! Nothing is drawn when stderr is not a terminal, or with `--quiet`.

use std::collections::{HashMap, HashSet};
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

/// A store that counts what is read from it, and makes reads of small files cheap:
/// - on this machine's disk (`local`), a small file is read on the calling thread: the store
///   would hand each read to a blocking thread twice (open, then read), which for a lake of many
///   small files costs more than the reads (1.3-1.5x the time of a month of 200 files a day);
/// - from a bucket, a small object read whole is kept, so that the reads after it need no
///   request of their own: its footer read (see `inspect::footer`) reads it whole, and the data
///   reads find it here, one request per file instead of two.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn ObjectStore>,
    meter: Arc<Meter>,
    local: bool,
    /// Small objects read whole from a bucket, and how many bytes they hold.
    kept: Mutex<(HashMap<Path, Kept>, u64)>,
    /// The most bytes kept.
    keep_at_most: u64,
}

/// A small object kept in memory, with its metadata.
type Kept = (ObjectMeta, Bytes);

/// The largest file read on the calling thread, or kept from a bucket (see [`Metered`]).
const SMALL_FILE: u64 = 1 << 20;
/// The most bytes of small objects kept from a bucket (beyond that, their data is read again),
/// and at most a quarter of `--memory-limit`.
const KEEP_TOTAL: u64 = 256 << 20;

impl Metered {
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        meter: Arc<Meter>,
        local: bool,
        memory_limit: Option<u64>,
    ) -> Metered {
        Metered {
            inner,
            meter,
            local,
            kept: Mutex::default(),
            keep_at_most: memory_limit.map_or(KEEP_TOTAL, |m| (m / 4).min(KEEP_TOTAL)),
        }
    }

    /// Ranges of a kept object, as the store would give them (the range clamped to its end, and
    /// its bytes); None unless it is kept and holds them all.
    fn kept_parts(&self, location: &Path, ranges: &[Range<u64>]) -> Option<Vec<GetResult>> {
        let kept = self.kept.lock().expect("kept objects");
        let (meta, bytes) = kept.0.get(location)?;
        let part = |range: &Range<u64>| {
            let range = GetRange::Bounded(range.clone()).as_range(meta.size).ok()?;
            let part = bytes.slice(range.start as usize..range.end as usize);
            Some(result(meta.clone(), range, part))
        };
        ranges.iter().map(part).collect()
    }

    /// Whether an object of `size` bytes, read whole from a bucket, would be kept now: small,
    /// and with room left.
    pub fn would_keep(&self, size: u64) -> bool {
        let kept = self.kept.lock().expect("kept objects").1;
        !self.local && size <= SMALL_FILE && kept + size <= self.keep_at_most
    }

    /// Keeps a small object that a plain request read whole from a bucket, while there is room;
    /// returns what was read (its body in memory when kept).
    async fn keep(&self, got: GetResult) -> object_store::Result<GetResult> {
        if got.range != (0..got.meta.size) || !self.would_keep(got.meta.size) {
            return Ok(got);
        }
        let (meta, range) = (got.meta.clone(), got.range.clone());
        let bytes = got.bytes().await?;
        if bytes.len() as u64 == meta.size {
            let mut kept = self.kept.lock().expect("kept objects");
            // (Read whole twice at once, it is kept, and counted, once.)
            let entry = (meta.clone(), bytes.clone());
            if kept.0.insert(meta.location.clone(), entry).is_none() {
                kept.1 += meta.size;
            }
        }
        Ok(result(meta, range, bytes))
    }
}

/// The bytes a plain request (no conditions, not a head) asks for: a bounded range, or the whole
/// object (`0..u64::MAX`); None for any other request.
fn plain_request(options: &GetOptions) -> Option<Range<u64>> {
    let plain = options.if_match.is_none()
        && options.if_none_match.is_none()
        && options.if_modified_since.is_none()
        && options.if_unmodified_since.is_none()
        && options.version.is_none()
        && !options.head;
    match &options.range {
        _ if !plain => None,
        None => Some(0..u64::MAX),
        Some(GetRange::Bounded(range)) => Some(range.clone()),
        Some(_) => None,
    }
}

/// The error for an object that gave `got` bytes of the range `asked`: it changed since it was
/// listed, as [`super::storage::hint`] then says.
fn changed(location: &Path, asked: &Range<u64>, got: u64) -> object_store::Error {
    object_store::Error::Precondition {
        path: location.to_string(),
        source: format!(
            "the object is shorter than when it was listed: {got} of the bytes {}..{} asked",
            asked.start, asked.end
        )
        .into(),
    }
}

/// What a store gives for `range` of an object, from bytes in memory.
fn result(meta: ObjectMeta, range: Range<u64>, bytes: Bytes) -> GetResult {
    GetResult {
        payload: GetResultPayload::Stream(futures::stream::once(async { Ok(bytes) }).boxed()),
        meta,
        range,
        attributes: Attributes::default(),
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
    Some(result(meta, range, Bytes::from(bytes)))
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
        let plain = plain_request(&options);
        let here = match &plain {
            Some(range) if self.local => read_local(location, range.clone()),
            Some(range) => self
                .kept_parts(location, std::slice::from_ref(range))
                .and_then(|mut parts| parts.pop()),
            None => None,
        };
        let got = match here {
            Some(got) => got,
            // An empty range (a column chunk of a row group without rows) is refused by GCS and
            // S3 alike: nothing to fetch, but the object is there.
            None if plain.as_ref().is_some_and(Range::is_empty) => {
                let range = plain.clone().expect("a range");
                let head = GetOptions::new().with_head(true);
                let meta = self.inner.get_opts(location, head).await?.meta;
                result(meta, range, Bytes::new())
            }
            None => {
                let got = self.inner.get_opts(location, options).await?;
                match plain {
                    Some(_) => self.keep(got).await?,
                    None => got,
                }
            }
        };
        // Fewer bytes than asked: the object is shorter than when it was listed (a writer
        // replaced it meanwhile). Read on, the Parquet reader would panic or blame the file.
        if let Some(asked) = plain.filter(|r| r.end != u64::MAX && *r != got.range) {
            return Err(changed(location, &asked, got.range.end - got.range.start));
        }
        self.meter.read(location, got.range.end - got.range.start);
        Ok(got)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let here = match self.local {
            true => (ranges.iter())
                .map(|range| read_local(location, range.clone()))
                .collect::<Option<Vec<_>>>(),
            false => self.kept_parts(location, ranges),
        };
        let got = match here {
            Some(parts) => {
                futures::future::try_join_all(parts.into_iter().map(|p| p.bytes())).await?
            }
            None => {
                let wanted: Vec<_> = ranges.iter().filter(|r| !r.is_empty()).cloned().collect();
                let mut got = self.inner.get_ranges(location, &wanted).await?.into_iter();
                (ranges.iter())
                    .map(|r| match r.is_empty() {
                        true => Bytes::new(),
                        false => got.next().unwrap_or_default(),
                    })
                    .collect()
            }
        };
        for (asked, bytes) in ranges.iter().zip(&got) {
            if bytes.len() as u64 != asked.end - asked.start {
                return Err(changed(location, asked, bytes.len() as u64));
            }
        }
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
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    /// An object shorter than the ranges asked of it (replaced since it was listed) is an error,
    /// not short bytes: the Parquet reader panicked on them, or called the file corrupt.
    #[tokio::test]
    async fn a_shorter_object_than_asked_is_one_that_changed() {
        use object_store::memory::InMemory;
        let inner = Arc::new(InMemory::new());
        let store = Metered::new(inner.clone(), Arc::default(), false, None);
        let name = Path::from("d/p.parquet");
        inner
            .put(&name, Bytes::from_static(b"0123456789").into())
            .await
            .unwrap();
        assert_eq!(
            store.get_ranges(&name, &[2..4, 6..8]).await.unwrap().len(),
            2
        );
        inner
            .put(&name, Bytes::from_static(b"01234").into())
            .await
            .unwrap();
        for result in [
            store.get_range(&name, 2..8).await,
            store
                .get_ranges(&name, &[0..2, 3..8])
                .await
                .map(|mut b| b.remove(1)),
        ] {
            let error = result.unwrap_err();
            assert!(
                matches!(error, object_store::Error::Precondition { .. }),
                "{error}"
            );
            assert!(
                error
                    .to_string()
                    .contains("shorter than when it was listed"),
                "{error}"
            );
        }
    }

    /// From a bucket, an object read whole is kept: its ranges are then given from memory (here,
    /// after it is gone from the store), while a head or a conditional request still asks the
    /// store. A range not read whole first is not kept.
    #[tokio::test]
    async fn a_small_object_read_whole_is_kept_for_its_ranges() {
        use object_store::memory::InMemory;
        let inner = Arc::new(InMemory::new());
        let store = Metered::new(inner.clone(), Arc::default(), false, None);
        let (whole, part) = (Path::from("d/whole.parquet"), Path::from("d/part.parquet"));
        for name in [&whole, &part] {
            inner
                .put(name, Bytes::from_static(b"0123456789").into())
                .await
                .unwrap();
        }
        let whole_read = store.get_range(&whole, 0..10).await.unwrap();
        assert_eq!(whole_read, Bytes::from_static(b"0123456789"));
        assert_eq!(
            store.get_range(&part, 2..5).await.unwrap(),
            Bytes::from_static(b"234")
        );
        for name in [&whole, &part] {
            inner.delete(name).await.unwrap();
        }
        assert_eq!(
            store.get_range(&whole, 3..7).await.unwrap(),
            Bytes::from_static(b"3456")
        );
        let ranges = store.get_ranges(&whole, &[0..2, 8..10]).await.unwrap();
        assert_eq!(
            ranges,
            [Bytes::from_static(b"01"), Bytes::from_static(b"89")]
        );
        let all = store.get(&whole).await.unwrap().bytes().await.unwrap();
        assert_eq!(all, Bytes::from_static(b"0123456789"));
        assert!(store.head(&whole).await.is_err(), "a head asks the store");
        let options = GetOptions::new().with_range(Some(3..7));
        let conditional = GetOptions {
            if_match: Some("\"tag\"".into()),
            ..options
        };
        assert!(store.get_opts(&whole, conditional).await.is_err());
        assert!(
            store.get_range(&part, 2..5).await.is_err(),
            "a part was not kept"
        );

        // Under --memory-limit, at most a quarter of it is kept: not these 10 bytes under 20.
        let limited = Metered::new(inner.clone(), Arc::default(), false, Some(20));
        inner
            .put(&whole, Bytes::from_static(b"0123456789").into())
            .await
            .unwrap();
        limited.get_range(&whole, 0..10).await.unwrap();
        inner.delete(&whole).await.unwrap();
        assert!(
            limited.get_range(&whole, 3..7).await.is_err(),
            "kept beyond the limit"
        );
    }

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

        for range in [0..5000, 100..101, 4000..6000, 0..u64::MAX] {
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
