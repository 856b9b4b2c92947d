//! The one error type: every message a user reads, and the exit code that goes with it.
//!
//! Messages follow `dau: <what> (<where>): <hint>`; `main` adds the `dau: ` prefix.

use std::path::PathBuf;

use chrono::NaiveDate;
use datafusion::error::DataFusionError;

use crate::config::MemoryLimit;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or argument that cannot be used as given.
    #[error("{what}: {hint}")]
    Usage { what: String, hint: String },

    /// `dau.toml` that cannot be read or parsed.
    #[error("bad config ({}): {what}", path.display())]
    Config { path: PathBuf, what: String },

    /// The lake location does not exist or is not a folder.
    #[error(
        "lake not found ({lake}): check --lake, DAU_LAKE or [lake] url in dau.toml, \
         or run `dau gen --out DIR` to make a sample lake"
    )]
    LakeNotFound { lake: String },

    /// Listing or reading the lake's storage failed (after retries).
    #[error("cannot {what} ({lake}): {detail}{hint}")]
    Storage {
        /// What the requests were for: "read the lake", "keep the schedule state".
        what: &'static str,
        lake: String,
        detail: String,
        hint: String,
    },

    /// No folder of a known partition layout below the lake root.
    #[error(
        "no date partitions found ({lake}): expected folders like date=YYYY-MM-DD (or another key, \
         such as dt= or ds=), dt=YYYYMMDD, year=YYYY/month=MM/day=DD, YYYY-MM-DD or \
         YYYY/MM/DD{found}"
    )]
    NoLayout { lake: String, found: String },

    /// Folders of days in two layouts beside each other: which hold the lake's days is unknown.
    #[error(
        "partitions in two layouts ({lake}): {layout}, and beside them {others}: either would \
         leave the other's days out; move the folders that are not the lake's elsewhere (or give \
         the folder of each lake)"
    )]
    MixedLayouts {
        lake: String,
        layout: String,
        others: String,
    },

    /// The asked range holds no partition.
    #[error(
        "no partitions between {from} and {to} ({lake}): the lake has days {first} to {last}{}",
        if first < from && to < last {
            ", but none of these: were they written? (`dau check` lists the days the lake lacks)"
        } else {
            "; choose days inside them"
        }
    )]
    NoPartitions {
        lake: String,
        from: NaiveDate,
        to: NaiveDate,
        first: NaiveDate,
        last: NaiveDate,
    },

    /// No day of the range has a data file to read: each partition is empty (a writer not done
    /// yet leaves it so) or, under --skip-bad-files, holds only bad files.
    #[error("no data file to read in the partitions from {from} to {to} ({lake}): {why}")]
    NoFiles {
        lake: String,
        from: NaiveDate,
        to: NaiveDate,
        why: String,
    },

    /// A data file a query cannot use: unreadable, or without a usable user column.
    #[error(
        "bad data file ({file}): {reason}{}; fix or remove it, or pass --skip-bad-files to answer \
         without it (run `dau check` for the whole list)",
        if *others > 0 { format!(" (and {others} more bad file(s))") } else { String::new() }
    )]
    BadFile {
        file: String,
        reason: String,
        others: usize,
    },

    /// A file's date column disagrees with its partition folder.
    #[error(
        "dates in the file disagree with its partition ({file}): the folder says {day}, the date \
         column holds {lo} to {hi}; fix the file or move it to the right partition"
    )]
    DateMismatch {
        file: String,
        day: NaiveDate,
        lo: NaiveDate,
        hi: NaiveDate,
    },

    /// The user column is not in the files.
    #[error(
        "no column '{column}' ({file}): columns found: {found}; set the user column with \
         --user-column, DAU_USER_COLUMN or [lake] user_column in dau.toml"
    )]
    MissingColumn {
        column: String,
        file: String,
        found: String,
    },

    /// `dau check` found problems (it has printed them).
    #[error("check found {problems} problem(s) ({lake}); see the report above")]
    CheckFailed { lake: String, problems: usize },

    /// A query needed more memory than `--memory-limit` allows and could not spill.
    #[error(
        "the query needs more memory than --memory-limit {limit} allows ({detail}): raise the \
         limit (e.g. --memory-limit 8G or DAU_MEMORY_LIMIT), or ask for fewer days"
    )]
    MemoryLimit { limit: String, detail: String },

    /// A statement in `dau sql` would write.
    #[error(
        "dau sql is read-only (INSERT, UPDATE, DELETE and COPY are refused, and the lake's table \
         events stays): save results with --output FILE (\\o FILE in the REPL); session views \
         and tables (CREATE VIEW, CREATE TABLE … AS) are fine"
    )]
    ReadOnly,

    /// An export destination (a database) could not be written; nothing of this export is in it.
    #[error("cannot export to {dest}: {detail}; nothing of this export was written")]
    Sink { dest: String, detail: String },

    /// A file's user ids are text where the table, typed by the newest day, has integers.
    #[error(
        "user ids are text in this file, integers in the newest day's files ({file}): `dau sql` \
         types the table by the newest day; `dau query`, which reads every file first, counts \
         such a lake"
    )]
    MixedIds { file: String },

    /// Spark's file sink log beside the partitions cannot be read, or lists a file that is not
    /// there.
    #[error("cannot use the Spark file sink log ({log}): {what}")]
    SparkLog { log: String, what: String },

    /// `dau schedule --once`: jobs failed for good (each logged with its error); the first
    /// one's exit code is the run's.
    #[error("job(s) failed: {jobs}; their errors are logged above")]
    JobsFailed { jobs: String, code: u8 },

    /// One statement of several failed: which, and why.
    #[error("{at}: {error}")]
    InStatement { at: String, error: Box<Error> },

    /// DataFusion failed while planning or running a query.
    #[error("query failed: {0}")]
    Query(DataFusionError),

    /// Reading or writing a local file failed.
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A DataFusion error, or one of ours that a table provider passed through DataFusion.
impl From<DataFusionError> for Error {
    fn from(error: DataFusionError) -> Self {
        match error {
            DataFusionError::External(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(inner) => Error::Query(DataFusionError::External(inner)),
            },
            DataFusionError::Context(_, inner)
                if matches!(*inner, DataFusionError::External(_)) =>
            {
                Error::from(*inner)
            }
            other => Error::Query(other),
        }
    }
}

/// An error and its causes, joined: libraries often name the operation and leave what went wrong
/// (a refused connection, an untrusted certificate) to the cause.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Error {
    /// Hands one of ours to DataFusion, from a table provider; [`From`] takes it back.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    pub fn usage(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            what: what.into(),
            hint: hint.into(),
        }
    }

    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Exit codes from design.md: 1 runtime, 2 usage/config, 3 storage, 4 data problem.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InStatement { error, .. } => error.exit_code(),
            Error::JobsFailed { code, .. } => *code,
            Error::Usage { .. } | Error::Config { .. } => 2,
            Error::LakeNotFound { .. }
            | Error::Storage { .. }
            | Error::Sink { .. }
            | Error::Io { .. } => 3,
            Error::NoLayout { .. }
            | Error::MixedLayouts { .. }
            | Error::NoPartitions { .. }
            | Error::NoFiles { .. }
            | Error::BadFile { .. }
            | Error::DateMismatch { .. }
            | Error::CheckFailed { .. }
            | Error::MixedIds { .. }
            | Error::SparkLog { .. }
            | Error::MissingColumn { .. } => 4,
            Error::Query(_) | Error::ReadOnly | Error::MemoryLimit { .. } => 1,
        }
    }

    /// Names the memory limit when a query failed for want of memory under one.
    pub fn under_memory_limit(self, limit: Option<&MemoryLimit>) -> Self {
        match (self, limit) {
            (Error::Query(e), Some(limit))
                if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) =>
            {
                Error::MemoryLimit {
                    limit: limit.text.clone(),
                    detail: e.find_root().to_string(),
                }
            }
            (other, _) => other,
        }
    }

    /// True when stdout was closed by the reader (`dau query … | head`): not an error to report.
    pub fn is_broken_pipe(&self) -> bool {
        let io = match self {
            Error::Io { source, .. } => Some(source),
            Error::Query(DataFusionError::IoError(e)) => Some(e),
            Error::InStatement { error, .. } => return error.is_broken_pipe(),
            _ => None,
        };
        io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}
