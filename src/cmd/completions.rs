//! `dau completions SHELL`: a script with which the shell completes dau's subcommands, flags and
//! their values (metrics, formats, engines).

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::{Error, Result};

#[derive(Debug, Args)]
#[command(after_help = "Install it, for example:\n  \
    dau completions bash > ~/.local/share/bash-completion/completions/dau\n  \
    dau completions zsh > ~/.zfunc/_dau    (with fpath+=(~/.zfunc) before compinit in ~/.zshrc)\n  \
    dau completions fish > ~/.config/fish/completions/dau.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum, ignore_case = true)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "dau", &mut script);
    use std::io::Write as _;
    std::io::stdout()
        .write_all(&script)
        .map_err(|e| Error::io("cannot write the completion script", "stdout", e))
}
