//! The command line: global flags and the subcommands (each subcommand's flags live in its own file).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd::{
    check::CheckArgs, completions::CompletionsArgs, demo::DemoArgs, export::ExportArgs,
    generate::GenArgs, query::QueryArgs, rollup::RollupArgs, schedule::ScheduleArgs, sql::SqlArgs,
};

/// Exact daily, weekly and monthly active users from a date-partitioned Parquet lake.
#[derive(Debug, Parser)]
#[command(name = "dau", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line, as clap parses it, or its error and exit. A bad value that came from a
    /// `DAU_*` variable (clap names only the flag) is said to come from there.
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let args: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // A flag on the command line leaves its variable unread: clap reads a global flag's
        // variable at the top level, where the flag given to the subcommand is not, and a stale
        // `DAU_TIMEOUT=abc` refused `--timeout 5`.
        let mut command = Cli::command();
        let overridden: Vec<clap::Id> = (command.get_arguments())
            .filter(|a| a.get_env().is_some() && given(a, &args))
            .map(|a| a.get_id().clone())
            .collect();
        for id in overridden {
            command = command.mut_arg(id, |a| a.env(None::<&str>));
        }
        let parsed = command.try_get_matches_from(&args);
        parsed
            .and_then(|matches| Cli::from_arg_matches(&matches))
            .unwrap_or_else(|e| refuse(&e, from_environment(&e, &args)))
    }
}

/// Ends the process on clap's `error` in the form of every other error, `dau: <what>`, its usage
/// line and tips kept; `variable` is the one that gave the refused value. Help and version are
/// printed as clap prints them.
fn refuse(error: &clap::Error, variable: Option<String>) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit()
    }
    let text = error.render().to_string();
    eprint!("dau: {}", text.strip_prefix("error: ").unwrap_or(&text));
    if let Some(variable) = variable {
        eprintln!("note: the value is {variable}'s, from the environment");
    }
    std::process::exit(error.exit_code())
}

/// The variable that gave the value `error` refuses, when the flag it names is not in `args`.
fn from_environment(error: &clap::Error, args: &[String]) -> Option<String> {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        error.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(flag)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    // `--engine <ENGINE>`, `--anonymous[=<BOOL>]`: the flag's long name.
    let long = flag.split([' ', '[']).next()?.strip_prefix("--")?;
    let command = Cli::command();
    let mut commands = vec![&command];
    commands.extend(command.get_subcommands());
    let arg = commands
        .iter()
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long) && a.get_env().is_some())?;
    let variable = arg.get_env()?.to_string_lossy().into_owned();
    (!given(arg, args) && std::env::var_os(&variable).is_some()).then_some(variable)
}

/// Whether the flag `arg` is on the command line `args`.
fn given(arg: &clap::Arg, args: &[String]) -> bool {
    args.iter().skip(1).any(|a| {
        a.strip_prefix("--")
            .is_some_and(|a| a.split('=').next() == arg.get_long())
            || arg
                .get_short()
                .is_some_and(|s| a.starts_with('-') && !a.starts_with("--") && a.contains(s))
    })
}

/// Flags every subcommand takes. Each beats its `DAU_*` variable, which beats `dau.toml`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The lake: a folder, file://, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX with a folder per day (date=YYYY-MM-DD/…); its last folder may be a pattern (events/app=*) for several lakes counted as one
    #[arg(long, global = true, env = "DAU_LAKE", value_name = "URL")]
    pub lake: Option<String>,

    /// Config file [default: ./dau.toml when it exists]
    #[arg(long, global = true, env = "DAU_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Name of the user id column in the files [default: userId]
    #[arg(long, global = true, env = "DAU_USER_COLUMN", value_name = "NAME")]
    pub user_column: Option<String>,

    /// Name of a date column inside the files, if any; the partition's date is the one `date` [default: date]
    #[arg(long, global = true, env = "DAU_DATE_COLUMN", value_name = "NAME")]
    pub date_column: Option<String>,

    /// IANA timezone that decides what today and yesterday mean [default: UTC]
    #[arg(long, global = true, env = "DAU_TIMEZONE", value_name = "TZ")]
    pub timezone: Option<String>,

    /// Leave unreadable data files out of a query, naming them, instead of failing (=false undoes DAU_SKIP_BAD_FILES)
    #[arg(long, global = true, env = "DAU_SKIP_BAD_FILES", value_parser = on_off, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub skip_bad_files: Option<bool>,

    /// A file each finished partition holds, such as _SUCCESS: a day without it is still being written, so missing (NULL); off: no marker, and no warning of days without _SUCCESS [default: none]
    #[arg(long, global = true, env = "DAU_DONE_MARKER", value_name = "NAME")]
    pub done_marker: Option<String>,

    /// Most memory a query may use, e.g. 4G; operators that can spill to disk do [default: no limit]
    #[arg(long, global = true, env = "DAU_MEMORY_LIMIT", value_name = "SIZE")]
    pub memory_limit: Option<String>,

    /// Read a gs:// or s3:// lake without credentials (public buckets); =false undoes DAU_ANONYMOUS or [lake] anonymous
    #[arg(long, global = true, env = "DAU_ANONYMOUS", value_parser = on_off, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub anonymous: Option<bool>,

    /// Storage endpoint for gs:// or s3:// lakes: an emulator, MinIO or a private endpoint
    #[arg(long, global = true, env = "DAU_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Seconds before a storage request is abandoned (then retried) [default: 30]
    #[arg(long, global = true, env = "DAU_TIMEOUT", value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// How often a failed storage request (429, 5xx, timeout, no connection) is retried [default: 3]
    #[arg(long, global = true, env = "DAU_RETRIES", value_name = "N")]
    pub retries: Option<usize>,

    /// How metrics are computed: auto (per-day user bitmaps where they apply, else SQL), sql (the
    /// reference SQL in sql/), bitmap (bitmaps or an error saying why not) [default: auto]
    #[arg(
        long,
        global = true,
        env = "DAU_ENGINE",
        value_enum,
        ignore_case = true
    )]
    pub engine: Option<Engine>,

    /// Where rollups, the per-day user bitmaps kept between runs, are kept: a folder, a gs:// or s3:// prefix (shared by everyone who reads the lake), or `off` [default: the user's cache folder, dau/rollups]
    #[arg(long, global = true, env = "DAU_ROLLUPS", value_name = "DIR|URL|off")]
    pub rollups: Option<String>,

    /// No progress bar on stderr (it shows when reading takes more than a second)
    #[arg(long, short, global = true, env = "DAU_QUIET", value_parser = on_off)]
    pub quiet: bool,
}

/// How metrics are computed (`--engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Per-day user bitmaps where they apply (all but user-days), else the reference SQL
    #[default]
    Auto,
    /// The reference SQL in sql/
    Sql,
    /// Per-day user bitmaps, or an error saying why they do not apply
    Bitmap,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the lake for what would make a number wrong (exit 4 when it finds a problem)
    Check(CheckArgs),
    /// Print a script with which bash, zsh, fish, elvish or PowerShell completes dau's commands
    Completions(CompletionsArgs),
    /// Make a small sample lake (cached) and show its DAU, MAU and opens
    Demo(DemoArgs),
    /// Deliver metrics for a day (yesterday by default) into a file, replacing that day's rows
    Export(ExportArgs),
    /// Write a deterministic synthetic lake of app-open events
    Gen(GenArgs),
    /// Compute one metric over a range of days
    Query(QueryArgs),
    /// Build the per-day user bitmaps (rollups) ahead of time, so that queries need not read the days
    Rollup(RollupArgs),
    /// Run the [[jobs]] of dau.toml on their cron schedules, catching up missed days
    Schedule(ScheduleArgs),
    /// SQL over the lake's `events` table: a REPL, or -c / -f / stdin
    Sql(SqlArgs),
}

/// An on/off setting's value, as from `DAU_SKIP_BAD_FILES`: empty is off (unset), and anything but
/// on or off is refused rather than taken for on.
fn on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        _ => Err("give true or false (or 1/0, yes/no, on/off)".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_are_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
