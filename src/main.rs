//! The `dau` binary: parse, run, turn the error into an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dau::cli::Cli::parse();
    match dau::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `dau query … | head`: the reader left; that is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dau: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
