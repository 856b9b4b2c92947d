//! The one integration-test binary: `dau` run as a user runs it, checked against oracles.

mod util;

mod check;
mod cloud;
mod completions;
mod engines;
mod errors;
mod export;
mod formats;
mod generate;
mod messy;
mod query;
mod repl;
mod schedule;
mod sql;
mod writers;
