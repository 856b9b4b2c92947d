//! Spark's file sink log (`_spark_metadata/` beside the partitions): which files are data.
//!
//! Spark Structured Streaming's file sink writes each micro-batch's files into the partitions,
//! then commits the batch by writing the list of its files to the log, as batch `N` (every
//! tenth batch, by default, as `N.compact`, which repeats every file of the batches before it).
//! Files of a batch that failed, or is still being written, are in the partitions but not in the
//! log; Spark's own reader leaves them out, and so does dau. A batch is a `v1` line, then one
//! JSON object a line: `{"path": "file:///…/date=2024-06-01/part-….parquet", "action": "add", …}`.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt, stream};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, path::Path};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::Layout;

/// The log's folder, beside the partitions.
pub const FOLDER: &str = "_spark_metadata";

/// The files the log lists, by day.
#[derive(Debug)]
pub struct SparkLog {
    /// The log's folder.
    pub folder: Path,
    /// The newest batch committed (None: none yet, so no file is data).
    pub batch: Option<u64>,
    /// The folder the partitions hang from.
    base: Path,
    /// The paths of the listed files, as written, by the day their folders name.
    days: HashMap<NaiveDate, Vec<String>>,
}

/// A path's (or URI's) segments, percent-decoded.
fn segments(path: &str) -> Vec<String> {
    path.split('/').map(decoded).collect()
}

fn decoded(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// One line of a batch after the version line (Spark's `SinkFileStatus`; other fields unread).
#[derive(Deserialize)]
struct Entry {
    path: String,
    action: String,
    #[serde(default, rename = "isDir")]
    is_dir: bool,
}

impl SparkLog {
    /// Reads the log beside the partitions below `base`. The outer error is the store's; the
    /// inner one says what is wrong with the log.
    pub async fn read(
        store: &dyn ObjectStore,
        base: &Path,
        layout: &Layout,
    ) -> object_store::Result<Result<SparkLog, String>> {
        let folder = base.clone().join(FOLDER);
        let listed = store.list_with_delimiter(Some(&folder)).await?.objects;
        let names: Vec<&str> = listed
            .iter()
            .filter_map(|o| o.location.filename())
            .collect();
        let (batch, names) = match batches_to_read(&names) {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let texts: Vec<(String, bytes::Bytes)> = stream::iter(names)
            .map(|name| {
                let location = folder.clone().join(name.as_str());
                async move {
                    let bytes = store.get(&location).await?.bytes().await?;
                    Ok::<_, object_store::Error>((name, bytes))
                }
            })
            .buffered(super::BUCKET_REQUESTS)
            .try_collect()
            .await?;
        let mut files = BTreeSet::new();
        for (name, text) in &texts {
            if let Err(e) = apply(&String::from_utf8_lossy(text), &mut files) {
                return Ok(Err(format!("batch {name}: {e}")));
            }
        }
        let mut days: HashMap<NaiveDate, Vec<String>> = HashMap::new();
        for path in files {
            let segments = segments(&path);
            if let Some(day) = layout.day_of(&segments[..segments.len() - 1]) {
                days.entry(day).or_default().push(path);
            }
        }
        Ok(Ok(SparkLog {
            folder,
            batch,
            base: base.clone(),
            days,
        }))
    }

    /// Keeps the `listed` files of `day` that the log lists; gives those it does not, and the
    /// paths of the files the log lists for the day that are not among them.
    pub fn keep(&self, day: NaiveDate, listed: &mut Vec<ObjectMeta>) -> (Vec<Path>, Vec<String>) {
        let logged = self.days.get(&day).map(Vec::as_slice).unwrap_or_default();
        let logged_segments: Vec<Vec<String>> = logged.iter().map(|p| segments(p)).collect();
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, segments) in logged_segments.iter().enumerate() {
            let name = segments.last().expect("split gives one segment at least");
            by_name.entry(name).or_default().push(i);
        }
        let mut seen = vec![false; logged.len()];
        let mut left = Vec::new();
        listed.retain(|meta| {
            // The file's folders below the base and its name, which end the logged path (the
            // lake may have been copied since Spark wrote it). Listed names are as stored; the
            // log's are a URI's, decoded once (`00%3A00` is logged as `00%253A00`).
            let below: Vec<String> = (meta.location.prefix_match(&self.base))
                .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
                .unwrap_or_default();
            let found = (below.last())
                .and_then(|name| by_name.get(name.as_str()))
                .and_then(|ids| ids.iter().find(|i| logged_segments[**i].ends_with(&below)));
            match found {
                Some(i) => seen[*i] = true,
                None => left.push(meta.location.clone()),
            }
            found.is_some()
        });
        let missing = (logged.iter().zip(seen))
            .filter(|(_, seen)| !seen)
            .map(|(path, _)| path.clone());
        (left, missing.collect())
    }
}

/// The newest batch, and the batch files to read for the files it leaves: the newest compact
/// batch (which holds every file before it) and the batches after it, each of which must be
/// there.
fn batches_to_read(names: &[&str]) -> Result<(Option<u64>, Vec<String>), String> {
    let mut plain = BTreeSet::new();
    let mut compact = None;
    for name in names {
        let (id, is_compact) = match name.strip_suffix(".compact") {
            Some(id) => (id, true),
            None => (*name, false),
        };
        // Spark's checksums and unfinished writes (`.0.crc`, `.0.….tmp`) name no batch.
        let Some(id) = (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .then(|| id.parse::<u64>().ok())
            .flatten()
        else {
            continue;
        };
        match is_compact {
            true => compact = compact.max(Some(id)),
            false => _ = plain.insert(id),
        }
    }
    let Some(newest) = plain.last().copied().max(compact) else {
        return Ok((None, Vec::new()));
    };
    let first = compact.map_or(0, |c| c + 1);
    let mut read: Vec<String> = compact
        .map(|c| format!("{c}.compact"))
        .into_iter()
        .collect();
    for id in first..=newest {
        if !plain.contains(&id) {
            let from = compact.map_or("0".to_string(), |c| format!("{c}.compact"));
            return Err(format!(
                "batch {id} is missing, between {from} and {newest} (was it deleted?)"
            ));
        }
        read.push(id.to_string());
    }
    Ok((Some(newest), read))
}

/// Adds and deletes the files of one batch's `text` in `files`.
fn apply(text: &str, files: &mut BTreeSet<String>) -> Result<(), String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("v1") => {}
        Some(version) if version.starts_with('v') => {
            return Err(format!(
                "it is log version {version}, and dau reads version v1 (of Spark 2 to 4)"
            ));
        }
        _ => return Err("it does not start with a version line (v1)".to_string()),
    }
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let entry: Entry =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 2))?;
        match entry.action.as_str() {
            _ if entry.is_dir => {}
            "add" => _ = files.insert(entry.path),
            "delete" => _ = files.remove(&entry.path),
            other => return Err(format!("line {}: unknown action {other:?}", n + 2)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    fn line(path: &str, action: &str) -> String {
        format!(
            r#"{{"path":"{path}","size":1,"isDir":false,"modificationTime":1,"action":"{action}"}}"#
        )
    }

    fn meta(path: &str) -> ObjectMeta {
        ObjectMeta {
            location: Path::parse(path).unwrap(),
            last_modified: chrono::Utc::now(),
            size: 1,
            e_tag: None,
            version: None,
        }
    }

    async fn log(store: &InMemory, batches: &[(&str, Vec<String>)]) -> Result<SparkLog, String> {
        for (name, lines) in batches {
            let text = lines.join("\n");
            let at = Path::parse(format!("lake/{FOLDER}/{name}")).unwrap();
            store.put(&at, PutPayload::from(text)).await.unwrap();
        }
        let layout = Layout::Hive {
            key: "date".to_string(),
            spelling: crate::lake::layout::Spelling::Dashed,
        };
        let base = Path::parse("lake").unwrap();
        SparkLog::read(store, &base, &layout).await.unwrap()
    }

    /// The newest compact batch and those after it make the list: files of earlier batches
    /// are in the compact one, a deleted file is left out, and a file is known by its folders
    /// and name below the lake, wherever Spark wrote it.
    #[tokio::test]
    async fn the_newest_compact_batch_and_those_after_it_list_the_files() {
        let store = InMemory::new();
        let at = |day: &str, n: u32| format!("hdfs://nn:8020/x%20y/date={day}/part-{n}.parquet");
        let batches = [
            ("0", vec!["v1".into(), line(&at("2024-06-01", 0), "add")]),
            // Left behind after compaction, and not read: its file is not in the compact one.
            ("1", vec!["v1".into(), line(&at("2024-06-01", 9), "add")]),
            (
                "1.compact",
                vec!["v1".into(), line(&at("2024-06-01", 0), "add")],
            ),
            ("2", vec!["v1".into(), line(&at("2024-06-02", 2), "add")]),
            (
                "3",
                vec![
                    "v1".into(),
                    line(&at("2024-06-01", 3), "add"),
                    line(&at("2024-06-02", 2), "delete"),
                    String::new(),
                ],
            ),
            (".3.crc", vec!["junk".into()]),
        ];
        let log = log(&store, &batches).await.unwrap();
        assert_eq!(log.batch, Some(3));
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        let mut listed: Vec<ObjectMeta> = [
            "lake/date=2024-06-01/part-0.parquet",
            "lake/date=2024-06-01/part-3.parquet",
            "lake/date=2024-06-01/part-9.parquet",
            "lake/date=2024-06-01/sub/part-0.parquet",
        ]
        .into_iter()
        .map(meta)
        .collect();
        let (left, missing) = log.keep(day("2024-06-01"), &mut listed);
        assert!(missing.is_empty(), "{missing:?}");
        let kept: Vec<&str> = listed.iter().map(|m| m.location.as_ref()).collect();
        assert_eq!(
            kept,
            [
                "lake/date=2024-06-01/part-0.parquet",
                "lake/date=2024-06-01/part-3.parquet"
            ]
        );
        let left: Vec<&str> = left.iter().map(|p| p.as_ref()).collect();
        assert_eq!(
            left,
            [
                "lake/date=2024-06-01/part-9.parquet",
                "lake/date=2024-06-01/sub/part-0.parquet"
            ]
        );
        // The deleted file is data no more; a logged file that is not there is named.
        let mut listed = vec![meta("lake/date=2024-06-02/part-2.parquet")];
        assert_eq!(log.keep(day("2024-06-02"), &mut listed).0.len(), 1);
        let mut listed = vec![meta("lake/date=2024-06-01/part-0.parquet")];
        let (left, missing) = log.keep(day("2024-06-01"), &mut listed);
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(missing, [at("2024-06-01", 3)]);
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_read_says_why() {
        let at = "file:///l/date=2024-06-01/p.parquet";
        let cases = [
            (
                vec![("0", vec!["v1".to_string()]), ("2", vec!["v1".into()])],
                "batch 1 is missing, between 0 and 2 (was it deleted?)",
            ),
            (
                vec![("4.compact", vec!["v1".into()]), ("6", vec!["v1".into()])],
                "batch 5 is missing, between 4.compact and 6 (was it deleted?)",
            ),
            (
                vec![("0", vec!["v2".into(), line(at, "add")])],
                "batch 0: it is log version v2, and dau reads version v1 (of Spark 2 to 4)",
            ),
            (
                vec![("0", vec!["{}".into()])],
                "batch 0: it does not start with a version line (v1)",
            ),
            (
                vec![("0", vec!["v1".into(), "{\"path\":1}".into()])],
                "batch 0: line 2: invalid type: integer `1`, expected a string at line 1 column 9",
            ),
            (
                vec![("0", vec!["v1".into(), line(at, "move")])],
                "batch 0: line 2: unknown action \"move\"",
            ),
        ];
        for (batches, why) in cases {
            let store = InMemory::new();
            assert_eq!(log(&store, &batches).await.unwrap_err(), why);
        }
        // A log with no batch yet lists no file.
        let store = InMemory::new();
        let log = log(&store, &[(".0.tmp", vec![])]).await.unwrap();
        assert_eq!(log.batch, None);
        let mut listed = vec![meta("lake/date=2024-06-01/p.parquet")];
        let day = NaiveDate::from_ymd_opt(2024, 6, 1).unwrap();
        let left = (
            vec![Path::parse("lake/date=2024-06-01/p.parquet").unwrap()],
            vec![],
        );
        assert_eq!(log.keep(day, &mut listed), left);
        assert!(listed.is_empty());
    }
}
