//! One resolved `Config` from flags, `DAU_*` variables (clap reads both) and `dau.toml`, in that order.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;

use crate::cli::GlobalArgs;
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
}

/// The file `dau.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    lake: LakeSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LakeSection {
    url: Option<String>,
    user_column: Option<String>,
    date_column: Option<String>,
    timezone: Option<String>,
}

impl Config {
    pub fn resolve(args: &GlobalArgs) -> Result<Config> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                load(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => FileConfig::default(),
        };
        let lake = file.lake;
        let timezone = match args.timezone.as_ref().or(lake.timezone.as_ref()) {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                Error::usage(
                    format!(
                        "unknown timezone '{name}' (--timezone, DAU_TIMEZONE or [lake] timezone)"
                    ),
                    "use an IANA name such as UTC, Europe/Berlin or Asia/Seoul",
                )
            })?,
        };
        let name = |flag: &Option<String>, file: Option<String>, default: &str| {
            flag.clone().or(file).unwrap_or_else(|| default.to_string())
        };
        Ok(Config {
            lake: args.lake.clone().or(lake.url),
            user_column: name(&args.user_column, lake.user_column, DEFAULT_USER_COLUMN),
            date_column: name(&args.date_column, lake.date_column, DEFAULT_DATE_COLUMN),
            timezone,
        })
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

fn load(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
        path: PathBuf::from(path),
        what: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| Error::Config {
        path: PathBuf::from(path),
        what: e.message().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<FileConfig>("[lake]\nulr = 'x'\n").unwrap_err();
        assert!(err.message().contains("unknown field `ulr`"), "{err}");
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
}
