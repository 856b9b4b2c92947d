//! One resolved `Config` from flags, `DAU_*` variables (clap reads both) and `dau.toml`, in that order.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::cli::{Engine, GlobalArgs};
use crate::lake::storage::StorageOptions;
use crate::lake::table::Columns;
use crate::{Error, Result};

pub const DEFAULT_USER_COLUMN: &str = "userId";
pub const DEFAULT_DATE_COLUMN: &str = "date";
const DEFAULT_CONFIG_FILE: &str = "dau.toml";

/// Everything below the command line reads settings from here, never from flags or the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The lake URL or path, if one was given anywhere.
    pub lake: Option<String>,
    pub user_column: String,
    pub date_column: String,
    pub timezone: Tz,
    /// Leave unreadable files out of a query (with a warning) instead of failing.
    pub skip_bad_files: bool,
    /// A file (`_SUCCESS`) that each finished partition holds; a day without it is missing.
    pub done_marker: Option<String>,
    /// Without a done marker, warn of days without `_SUCCESS` while others have it (not with
    /// `--done-marker off`).
    pub notice_unmarked: bool,
    pub memory_limit: Option<MemoryLimit>,
    /// How to reach a lake in a bucket.
    pub storage: StorageOptions,
    /// How long reading runs before a progress bar shows; None: never (`--quiet`).
    pub progress_after: Option<std::time::Duration>,
    /// How metrics are computed.
    pub engine: Engine,
    /// Where rollups (per-day user bitmaps) are kept: a folder, or a gs:// or s3:// prefix; None:
    /// nowhere (`--rollups off`).
    pub rollups: Option<String>,
    /// `[[jobs]]` for `dau schedule`, as written (checked when the schedule starts).
    pub jobs: Vec<Job>,
    /// `[schedule]`: where `dau schedule` listens, and its token.
    pub schedule: ScheduleSection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lake: None,
            user_column: DEFAULT_USER_COLUMN.to_string(),
            date_column: DEFAULT_DATE_COLUMN.to_string(),
            timezone: Tz::UTC,
            skip_bad_files: false,
            done_marker: None,
            notice_unmarked: true,
            memory_limit: None,
            storage: StorageOptions::default(),
            progress_after: Some(std::time::Duration::from_secs(1)),
            engine: Engine::Auto,
            rollups: None,
            jobs: Vec::new(),
            schedule: ScheduleSection::default(),
        }
    }
}

/// A memory limit for queries, as the user wrote it and in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    pub text: String,
    pub bytes: usize,
}

impl MemoryLimit {
    /// Parses `4G`, `512M`, `1.5G`, `64K` or a number of bytes (binary units).
    pub fn parse(text: &str) -> Option<MemoryLimit> {
        let t = text.trim();
        let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
            Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
            None => (t, String::new()),
        };
        let scale: f64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
            "" => 1.0,
            "K" => 1024.0,
            "M" => 1024.0 * 1024.0,
            "G" => 1024.0 * 1024.0 * 1024.0,
            "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        };
        let value: f64 = number.trim().parse().ok()?;
        let bytes = value * scale;
        (value.is_finite() && bytes >= 1.0 && bytes < usize::MAX as f64).then(|| MemoryLimit {
            text: t.to_string(),
            bytes: bytes as usize,
        })
    }
}

/// The file `dau.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    lake: LakeSection,
    /// Jobs for `dau schedule`.
    #[serde(default)]
    jobs: Vec<Job>,
    #[serde(default)]
    schedule: ScheduleSection,
}

/// `[schedule]` in `dau.toml`: the HTTP side of `dau schedule`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Address for `/healthz`, `/metrics` and `POST /jobs/NAME/run`, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Bearer token that `POST /jobs/NAME/run` needs (also `DAU_SCHEDULE_TOKEN`).
    pub token: Option<String>,
    /// Slack-compatible webhook URLs told when a job fails (after its retries) and recovers.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Retries of a failed export, with backoff [default: 2].
    pub retries: Option<u32>,
}

/// A `[[jobs]]` entry of `dau.toml`: what `dau schedule` exports, where, and when.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub name: String,
    /// Metric names, as `dau export` takes them.
    pub metrics: Vec<String>,
    /// When it fires: 5 fields (minute hour day month weekday), or 6 with seconds first.
    pub cron: String,
    /// IANA timezone of the cron and of "yesterday" [default: the config's timezone].
    pub timezone: Option<String>,
    /// The day a firing exports: `yesterday` (the default) or `today`.
    #[serde(default = "yesterday")]
    pub range: String,
    /// Where to, as `dau export --output` takes it.
    pub output: String,
    #[serde(default)]
    pub calendar: bool,
    /// How long a firing waits for its day's data to land (checking again now and then) before
    /// it fails, e.g. "3h" [default: no wait].
    pub wait_for_data: Option<String>,
    /// After its day, a firing exports this many days before it again (those the lake has), so
    /// that events that landed late reach their numbers [default: 0].
    #[serde(default)]
    pub redo_days: u64,
    /// After its day, a firing compares the day's dau with the same weekday's a week before and
    /// alerts when they differ by more than this, e.g. "50%" [default: no comparison].
    pub max_change: Option<String>,
}

fn yesterday() -> String {
    "yesterday".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LakeSection {
    url: Option<String>,
    user_column: Option<String>,
    date_column: Option<String>,
    timezone: Option<String>,
    endpoint: Option<String>,
    anonymous: Option<bool>,
    timeout: Option<f64>,
    retries: Option<usize>,
    #[serde(default, deserialize_with = "any_case")]
    engine: Option<Engine>,
    /// Folder or bucket prefix for rollups, or "off".
    rollups: Option<String>,
    /// The file each finished partition holds, such as "_SUCCESS".
    done_marker: Option<String>,
}

/// A place as written where no shell made `~/` the home folder (dau.toml, a variable in a unit
/// file, the REPL): `~/x` is in the home folder (it made a folder `~` in the working one).
pub fn from_home(place: &str) -> String {
    match (place.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest).display().to_string(),
        _ => place.to_string(),
    }
}

impl Config {
    pub fn resolve(args: &GlobalArgs) -> Result<Config> {
        let file = match &args.config {
            Some(path) => load(Path::new(&from_home(&path.to_string_lossy())))?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                load(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let jobs = file.jobs;
        let schedule = file.schedule;
        let lake = file.lake;
        let timezone = match args.timezone.as_ref().or(lake.timezone.as_ref()) {
            None => Tz::UTC,
            Some(name) => crate::dates::timezone(name).ok_or_else(|| {
                Error::usage(
                    format!(
                        "unknown timezone '{name}' (--timezone, DAU_TIMEZONE or [lake] timezone)"
                    ),
                    "use an IANA name such as UTC, Europe/Berlin or Asia/Seoul",
                )
            })?,
        };
        // A column's name: none (`DAU_USER_COLUMN=`) names no column; said as a setting's error,
        // not as every file's.
        let name = |flag: &Option<String>, file: Option<String>, default: &str, setting: &str| {
            match flag.clone().or(file) {
                Some(name) if name.trim().is_empty() => Err(Error::usage(
                    format!(
                        "the {setting} column's name is empty (--{setting}-column, DAU_{}_COLUMN or [lake] {setting}_column)",
                        setting.to_uppercase()
                    ),
                    "give the column's name, or leave it unset for the default",
                )),
                given => Ok(given.unwrap_or_else(|| default.to_string())),
            }
        };
        let memory_limit = match &args.memory_limit {
            None => None,
            Some(text) => Some(MemoryLimit::parse(text).ok_or_else(|| {
                Error::usage(
                    format!("bad --memory-limit '{text}' (or DAU_MEMORY_LIMIT)"),
                    "use a size such as 512M, 4G or 1.5G",
                )
            })?),
        };
        let defaults = StorageOptions::default();
        let timeout = match args.timeout.or(lake.timeout) {
            None => defaults.timeout,
            Some(s) => seconds(s, "--timeout, DAU_TIMEOUT or [lake] timeout")?,
        };
        // Seconds of reading before the progress bar shows: a variable only (the tests', and
        // no flag for completions and --help to offer).
        let progress_after = match (args.quiet, std::env::var("DAU_PROGRESS_AFTER").ok()) {
            (true, _) => None,
            (false, None) => Config::default().progress_after,
            (false, Some(text)) => {
                let value = text.trim().parse().map_err(|_| {
                    Error::usage(
                        format!("bad number of seconds '{text}' (DAU_PROGRESS_AFTER)"),
                        "give seconds greater than 0, e.g. 30",
                    )
                })?;
                Some(seconds(value, "DAU_PROGRESS_AFTER")?)
            }
        };
        // An empty value (`DAU_ENDPOINT=`) is none given.
        let endpoint = args
            .endpoint
            .clone()
            .or(lake.endpoint)
            .filter(|e| !e.is_empty());
        if let Some(Err(what)) = endpoint.as_deref().map(crate::lake::storage::endpoint_url) {
            return Err(Error::usage(
                format!("{what} (--endpoint, DAU_ENDPOINT or [lake] endpoint)"),
                "write the endpoint with its scheme, such as http://localhost:9000",
            ));
        }
        let storage = StorageOptions {
            endpoint,
            anonymous: args.anonymous.or(lake.anonymous).unwrap_or(false),
            timeout,
            retries: args.retries.or(lake.retries).unwrap_or(defaults.retries),
        };
        let rollups = match args.rollups.clone().or(lake.rollups) {
            Some(dir) if dir.eq_ignore_ascii_case("off") => None,
            // An empty value (`DAU_ROLLUPS=`) would put them in the working folder.
            Some(dir) if dir.is_empty() => {
                return Err(Error::usage(
                    "--rollups, DAU_ROLLUPS or [lake] rollups is empty",
                    "give a folder, a gs:// or s3:// prefix, or off",
                ));
            }
            // (`ftp://host/x` made a folder `ftp:`.)
            Some(place)
                if place.contains("://")
                    && !crate::lake::storage::is_bucket(&place)
                    && !place.starts_with("file://") =>
            {
                return Err(Error::usage(
                    format!(
                        "--rollups {place} (or DAU_ROLLUPS, [lake] rollups) is no place for rollups"
                    ),
                    "give a folder, a gs:// or s3:// prefix, or off",
                ));
            }
            Some(place) => Some(from_home(&place)),
            None => dirs::cache_dir().map(|d| d.join("dau").join("rollups").display().to_string()),
        };
        // An empty value (`DAU_DONE_MARKER=`) is none given.
        let given = |name: &Option<String>| name.clone().filter(|n| !n.is_empty());
        let done_marker = given(&args.done_marker).or(given(&lake.done_marker));
        let notice_unmarked = !done_marker
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("off"));
        let done_marker = match done_marker {
            Some(name) if name.eq_ignore_ascii_case("off") => None,
            Some(name) if name.contains('/') || name == "." || name == ".." => {
                return Err(Error::usage(
                    format!("bad --done-marker '{name}' (or DAU_DONE_MARKER, [lake] done_marker)"),
                    "give the name of the file a finished partition holds, such as _SUCCESS, or \
                     off",
                ));
            }
            name => name,
        };
        let lake_url = args.lake.clone().or(lake.url).map(|url| from_home(&url));
        if lake_url.as_deref().is_some_and(|url| url.trim().is_empty()) {
            return Err(Error::usage(
                "--lake, DAU_LAKE or [lake] url is empty",
                "give a folder, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX, or leave it unset",
            ));
        }
        Ok(Config {
            lake: lake_url,
            user_column: name(
                &args.user_column,
                lake.user_column,
                DEFAULT_USER_COLUMN,
                "user",
            )?,
            date_column: name(
                &args.date_column,
                lake.date_column,
                DEFAULT_DATE_COLUMN,
                "date",
            )?,
            timezone,
            skip_bad_files: args.skip_bad_files.unwrap_or(false),
            done_marker,
            notice_unmarked,
            memory_limit,
            storage,
            progress_after,
            engine: args.engine.or(lake.engine).unwrap_or_default(),
            rollups,
            jobs,
            schedule,
        })
    }

    /// The user id and in-file date column names.
    pub fn columns(&self) -> Columns<'_> {
        Columns {
            user: &self.user_column,
            date: &self.date_column,
        }
    }

    /// The lake, or a usage error saying the three ways to name one.
    pub fn lake(&self) -> Result<&str> {
        self.lake.as_deref().ok_or_else(|| {
            Error::usage(
                "no lake given",
                "pass --lake DIR, set DAU_LAKE, or put [lake] url in dau.toml \
                 (try `dau demo` for a sample lake)",
            )
        })
    }
}

/// `engine = "SQL"`: any case, as `--engine SQL` and `DAU_ENGINE=SQL` take it.
fn any_case<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Engine>, D::Error> {
    use clap::ValueEnum;
    let text = String::deserialize(deserializer)?;
    Engine::from_str(&text, true).map(Some).map_err(|_| {
        serde::de::Error::custom(format!("unknown engine '{text}': use auto, sql or bitmap"))
    })
}

/// A positive number of seconds, from the setting `what`.
fn seconds(value: f64, what: &str) -> Result<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Error::usage(
                format!("bad number of seconds {value} ({what})"),
                "give seconds greater than 0, e.g. 30",
            )
        })
}

fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"));
    text.and_then(|t| parse(&t)).map_err(|what| Error::Config {
        path: PathBuf::from(path),
        what,
    })
}

/// Parses the text of a `dau.toml`; an error names its line.
fn parse(text: &str) -> std::result::Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', ": ");
        match e.span() {
            Some(span) => {
                let line = text[..span.start].matches('\n').count() + 1;
                format!("line {line}: {message}")
            }
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_limits() {
        let bytes = |t: &str| MemoryLimit::parse(t).map(|m| m.bytes);
        assert_eq!(bytes("4G"), Some(4 << 30));
        assert_eq!(bytes("512m"), Some(512 << 20));
        assert_eq!(bytes("1.5GiB"), Some(3 << 29));
        assert_eq!(bytes("64KB"), Some(64 << 10));
        assert_eq!(bytes("1000"), Some(1000));
        for bad in ["", "G", "4X", "-1G", "0", "NaNG", "1e400G"] {
            assert_eq!(bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_engine_in_any_case() {
        let file = parse("[lake]\nengine = 'SQL'\n").unwrap();
        assert_eq!(file.lake.engine, Some(Engine::Sql));
        let err = parse("[lake]\nengine = 'fast'\n").unwrap_err();
        assert!(
            err.contains("unknown engine 'fast': use auto, sql or bitmap"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = parse("[lake]\nulr = 'x'\n").unwrap_err();
        assert!(err.starts_with("line 2: unknown field `ulr`"), "{err}");
        let err = parse("# the lake\n[lake]\nurl = /data/lake\n").unwrap_err();
        assert!(err.starts_with("line 3: invalid string: expected"), "{err}");
    }

    proptest::proptest! {
        // The loader answers any text with a config or an error, never a panic.
        #[test]
        fn any_text_is_a_config_or_an_error(text in "\\PC*") {
            let _ = parse(&text);
        }

        #[test]
        fn toml_like_text_is_a_config_or_an_error(
            key in "(url|user_column|date_column|timezone|x)",
            value in "('[^'\n]*'|[0-9]+|\\[\\]|true)",
            section in "(lake|other|)",
        ) {
            let text = format!("[{section}]\n{key} = {value}\n");
            if parse(&text).is_ok() {
                proptest::prop_assert!(section == "lake" && key != "x");
            }
        }

        #[test]
        fn memory_limits_parse_or_fail(text in "\\PC{0,12}") {
            let _ = MemoryLimit::parse(&text);
        }
    }

    #[test]
    fn file_values_fill_in_what_flags_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dau.toml");
        std::fs::write(
            &path,
            "[lake]\nurl = '/lake'\nuser_column = 'uid'\ntimezone = 'Asia/Seoul'\n",
        )
        .unwrap();
        let args = GlobalArgs {
            config: Some(path),
            user_column: Some("user_id".into()),
            ..GlobalArgs::default()
        };
        let config = Config::resolve(&args).unwrap();
        assert_eq!(config.lake.as_deref(), Some("/lake"));
        assert_eq!(config.user_column, "user_id");
        assert_eq!(config.date_column, "date");
        assert_eq!(config.timezone, Tz::Asia__Seoul);
    }

    /// `anonymous = true` in the file is undone by `--anonymous=false` or `DAU_ANONYMOUS=false`
    /// (the two were or-ed, so the file's could not be undone).
    #[test]
    fn an_on_off_setting_of_the_file_is_undone_by_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dau.toml");
        std::fs::write(&path, "[lake]\nanonymous = true\n").unwrap();
        let anonymous = |flag: Option<bool>| {
            let args = GlobalArgs {
                config: Some(path.clone()),
                anonymous: flag,
                ..GlobalArgs::default()
            };
            Config::resolve(&args).unwrap().storage.anonymous
        };
        assert!(anonymous(None));
        assert!(anonymous(Some(true)));
        assert!(!anonymous(Some(false)));
    }
}
