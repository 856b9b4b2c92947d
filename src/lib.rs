//! dau: exact active-user metrics over a date-partitioned Parquet lake.
//!
//! Data flows one way: config → lake (discovery, the `events` table, rollups) → metric (SQL, or
//! per-day user bitmaps) → output.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod dates;
pub mod error;
pub mod lake;
pub mod metrics;
pub mod output;
pub mod sink;

pub use error::{Error, Result};

use cli::{Cli, Command};

/// Runs one command line to completion.
pub fn run(cli: Cli) -> Result<()> {
    let config = config::Config::resolve(&cli.global);
    let done = match cli.command {
        // Needs no lake, and no dau.toml to be right.
        Command::Completions(args) => cmd::completions::run(&args),
        Command::Check(args) => block_on(cmd::check::run(&config?, &args)),
        Command::Gen(args) => cmd::generate::run(&config?, &args),
        Command::Demo(args) => block_on(cmd::demo::run(&config?, &args)),
        // A nightly export tells its webhooks of any failure, a bad setting too.
        Command::Export(args) => block_on(cmd::export::run(config, &args)),
        Command::Query(args) => block_on(cmd::query::run(&config?, &args)),
        Command::Rollup(args) => block_on(cmd::rollup::run(&config?, &args)),
        Command::Schedule(args) => block_on(cmd::schedule::run(&config?, &args)),
        Command::Sql(args) => block_on(cmd::sql::run(&config?, &args)),
    };
    // What the queries spilled is theirs alone (a killed run's folder is removed by the next).
    metrics::remove_spill_folder();
    done
}

pub(crate) fn block_on<T, F: Future<Output = Result<T>>>(f: F) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", "tokio", e))?;
    let done = runtime.block_on(f);
    // The command awaited its work; the runtime's idle threads are left to the process's exit
    // instead of being joined one by one (milliseconds at the end of every command). Files are
    // written beside their name and renamed, so nothing cut short there is ever seen.
    runtime.shutdown_background();
    done
}
