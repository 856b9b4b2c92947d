//! One file per subcommand: its flags and its `run`.

pub mod check;
pub mod completions;
pub mod demo;
pub mod export;
pub mod generate;
pub mod query;
pub mod rollup;
pub mod schedule;
pub mod sql;
