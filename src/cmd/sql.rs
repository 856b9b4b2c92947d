//! `dau sql`: SQL over the lake's `events` table, one-shot (`-c`, `-f`, stdin) or in a REPL.
//!
//! The lake is read-only from SQL: statements that write (INSERT, UPDATE, DELETE, COPY) are refused;
//! session views and in-memory tables are fine.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::config::Config;
use crate::lake::Lake;
use crate::metrics::{register_events, session};
use crate::output::{self, Format};
use crate::{Error, Result};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    dau sql --lake ./lake                      (a REPL; end statements with ;)\n  \
    dau sql -c \"SELECT date, COUNT(DISTINCT userId) AS dau FROM events GROUP BY date ORDER BY date\"\n  \
    dau sql -f report.sql --format csv\n  \
    echo \"SELECT COUNT(*) FROM events;\" | dau sql")]
pub struct SqlArgs {
    /// Run these SQL statements and exit
    #[arg(long, short, value_name = "SQL", conflicts_with = "file")]
    pub command: Option<String>,

    /// Run the SQL statements in this file and exit
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Output format [default: from the --output extension, else table]
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Write the result to this file instead of stdout (one statement)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(config: &Config, args: &SqlArgs) -> Result<()> {
    let format = Format::resolve(args.format, args.output.as_deref())?;
    let lake = Arc::new(Lake::open(config.lake()?).await?);
    let ctx = session(config)?;
    let days: Vec<_> = lake.days.keys().copied().collect();
    let events = register_events(&ctx, &lake, config, &days, &Default::default()).await?;
    for warning in &events.warnings {
        eprintln!("dau: warning: {warning}");
    }
    let text = match (&args.command, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read the SQL file", path, e))?,
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .map_err(|e| Error::io("cannot read SQL from stdin", "stdin", e))?;
            sql
        }
        (None, None) => return repl(&ctx, &lake, format).await,
    };
    execute(&ctx, &text, format, args.output.as_deref()).await
}

/// Runs every statement in `sql`, writing each result that has columns.
pub async fn execute(
    ctx: &SessionContext,
    sql: &str,
    format: Format,
    output: Option<&Path>,
) -> Result<()> {
    let statements = DFParser::parse_sql(sql)?;
    if output.is_some() && statements.len() > 1 {
        return Err(Error::usage(
            format!(
                "--output takes one statement, and the SQL has {}",
                statements.len()
            ),
            "run the statements one by one, or send the results to stdout",
        ));
    }
    let read_only = SQLOptions::new().with_allow_dml(false);
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        if read_only.verify_plan(&plan).is_err() {
            return Err(Error::ReadOnly);
        }
        let df = ctx.execute_logical_plan(plan).await?;
        if df.schema().fields().is_empty() {
            df.collect().await?;
            continue;
        }
        output::write(df.execute_stream().await?, format, output).await?;
    }
    Ok(())
}

/// The REPL: statements end with `;` and may span lines; `\q` or Ctrl-D quits; Ctrl-C clears the
/// line; a failed statement is reported and the REPL carries on. History is kept across sessions.
async fn repl(ctx: &SessionContext, lake: &Lake, format: Format) -> Result<()> {
    let editor_error =
        |e: ReadlineError| Error::io("the terminal failed", "stdin", std::io::Error::other(e));
    let mut editor = DefaultEditor::new().map_err(editor_error)?;
    let history = dirs::data_dir().map(|d| d.join("dau").join("history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    eprintln!(
        "dau sql on {} ({} to {}): the table is `events`. End statements with ;  \\q quits, \\? helps.",
        lake.name,
        lake.first_day(),
        lake.last_day()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "dau> " } else { "  -> " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(editor_error(e)),
        };
        if buffer.is_empty() {
            match line.trim() {
                "" => continue,
                "\\q" => break,
                "\\?" => {
                    output::say(HELP)?;
                    continue;
                }
                _ => {}
            }
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if line.trim_end().ends_with(';') {
            let _ = editor.add_history_entry(buffer.trim_end());
            if let Err(e) = execute(ctx, &buffer, format, None).await {
                eprintln!("dau: {e}");
            }
            buffer.clear();
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.save_history(path);
    }
    Ok(())
}

const HELP: &str = "\
SQL over the lake: the table `events` has the files' columns and `date` (a DATE).
  SELECT date, COUNT(DISTINCT userId) AS dau FROM events GROUP BY date ORDER BY date;
Statements end with ;  \\q quits.";
