//! `dau sql`: SQL over the lake's `events` table, one-shot (`-c`, `-f`, stdin) or in a REPL.
//!
//! The lake is read-only from SQL: statements that write (INSERT, UPDATE, DELETE, COPY) are refused;
//! session views and in-memory tables are fine.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Instant;

use clap::{Args, ValueEnum};
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::{ViewTable, source_as_provider};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, Statement as PlanStatement};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Spanned;
use futures::StreamExt;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::config::Config;
use crate::lake::Lake;
use crate::lake::inspect::undecodable;
use crate::lake::table::EventsTable;
use crate::metrics::{Metric, functions, session, unreadable_files};
use crate::output::{self, Format, say};
use crate::{Error, Result};
use datafusion::catalog::TableProvider;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    dau sql --lake ./lake                      (a REPL; end statements with ;)\n  \
    dau sql -c \"SELECT date, COUNT(DISTINCT userId) AS dau FROM events GROUP BY date ORDER BY date\"\n  \
    dau sql -f report.sql --format csv\n  \
    echo \"SELECT COUNT(*) FROM events;\" | dau sql")]
pub struct SqlArgs {
    /// Run these SQL statements and exit (they may start with a `--` comment)
    #[arg(long, short, value_name = "SQL", allow_hyphen_values = true)]
    pub command: Option<String>,

    /// Run the SQL statements in this file and exit (as in psql; the output format is --format)
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Output format [default: from the --output extension, else table]
    #[arg(long, value_enum, ignore_case = true)]
    pub format: Option<Format>,

    /// Write the result to this file instead of stdout (of the last statement: those before it
    /// may only set things up, such as SET or CREATE VIEW)
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub async fn run(config: &Config, args: &SqlArgs) -> Result<()> {
    // `-f csv`, as `dau query` takes it, is a file here: say so rather than read a file `csv`.
    let stdin_file = args.file.as_deref().is_some_and(|f| f == Path::new("-"));
    if let Some(file) = args.file.as_deref()
        && (args.command.is_some() || !(file.exists() || stdin_file))
    {
        let name = file.to_string_lossy();
        let what = match args.command {
            Some(_) => "both -c and -f give SQL".to_string(),
            None => format!("no SQL file {name}"),
        };
        let hint = match Format::from_str(&name, true) {
            Ok(_) => format!(
                "-f is --file in dau sql, as in psql; for the output format write --format {name}"
            ),
            Err(_) => "give the SQL with -c, or a file of SQL statements with -f".to_string(),
        };
        return Err(Error::usage(what, hint));
    }
    // (Said before the lake is opened: a lake out of reach was the error instead.)
    if let Some(path) = args.file.as_deref().filter(|p| p.is_dir()) {
        return Err(Error::usage(
            format!("-f {} is a folder", path.display()),
            "give a file of SQL statements",
        ));
    }
    let format = Format::resolve(args.format, args.output.as_deref())?;
    let lake = config.lake()?.to_string();
    let mut session = Session::open(config, &lake, format, args.output.clone()).await?;
    // Before any statement runs; nothing is made inside the lake (writable makes the folder).
    if let Some(path) = &args.output {
        session
            .lake
            .refuse_inside(&path.to_string_lossy(), "--output")?;
        output::writable(path)?;
    }
    let text = match (&args.command, &args.file) {
        // A backslash command, as `psql -c '\d events'` runs it.
        (Some(command), _) if command.trim_start().starts_with('\\') => {
            return session.meta(command.trim()).await.map(drop);
        }
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) if !stdin_file => std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read the SQL file", path, e))?,
        (None, None) if std::io::stdin().is_terminal() => return session.repl().await,
        // Piped in, or `-f -` as psql takes it.
        (None, _) => {
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .map_err(|e| Error::io("cannot read SQL from stdin", "stdin", e))?;
            sql
        }
    };
    // A byte-order mark, as Windows editors start a UTF-8 file with, is not SQL.
    session
        .execute(text.trim_start_matches('\u{feff}'), true)
        .await
}

/// A SQL session on a lake: the DataFusion context with `events` registered, and the REPL's settings.
struct Session<'a> {
    config: &'a Config,
    ctx: SessionContext,
    lake: Arc<Lake>,
    /// The `events` table, which reads a day's files when a statement first needs them.
    events: Arc<EventsTable>,
    format: Format,
    output: Option<PathBuf>,
    /// The format in force before `\o FILE` set its own, for `\o` to go back to.
    screen_format: Option<Format>,
    timing: bool,
}

impl<'a> Session<'a> {
    async fn open(
        config: &'a Config,
        lake: &str,
        format: Format,
        output: Option<PathBuf>,
    ) -> Result<Session<'a>> {
        let lake = Arc::new(Lake::open(lake, config, None).await?);
        let ctx = session(config, Some(&lake))?;
        let events = register_lake(&ctx, config, &lake).await?;
        Ok(Session {
            config,
            ctx,
            lake,
            events,
            format,
            output,
            screen_format: None,
            timing: false,
        })
    }

    /// Runs every statement in `sql`, writing each result that has columns. A `script` (not the
    /// REPL) with --output must have a result to write there.
    async fn execute(&self, sql: &str, script: bool) -> Result<()> {
        // A script that does not parse runs no statement, not even those before the error.
        let statements = DFParser::parse_sql(sql).map_err(|e| match several(sql) {
            true => Error::InStatement {
                at: "the SQL does not parse, so no statement was run".into(),
                error: Box::new(e.into()),
            },
            false => e.into(),
        })?;
        let total = statements.len();
        for (n, statement) in statements.into_iter().enumerate() {
            // Of several statements, the one that failed is named, with its line.
            let line = match &statement {
                DfStatement::Statement(s) => Some(s.span().start.line).filter(|l| *l > 0),
                _ => None,
            };
            self.run(statement, script, n + 1 == total)
                .await
                .map_err(|error| match total {
                    1 => error,
                    _ => Error::InStatement {
                        at: format!(
                            "statement {} of {total}{}",
                            n + 1,
                            line.map_or(String::new(), |line| format!(" (line {line})"))
                        ),
                        error: Box::new(error),
                    },
                })?;
        }
        Ok(())
    }

    /// Runs one statement, writing its result when it has columns. A script's statements before
    /// its `last` set things up (SET, CREATE VIEW) for the last one, whose rows --output holds.
    async fn run(&self, statement: DfStatement, script: bool, last: bool) -> Result<()> {
        self.events.forget_scans();
        let read_only = SQLOptions::new().with_allow_dml(false);
        let started = Instant::now();
        let plan = self
            .ctx
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| name_hint(table_function_hint(e)))?;
        // (Dropping or replacing `events` would leave the session with no lake until `\lake`.)
        let events = |name: &TableReference| {
            name.table() == "events" && name.schema().is_none_or(|s| s == "public")
        };
        let replaces_events = match &plan {
            LogicalPlan::Ddl(DdlStatement::DropTable(drop)) => events(&drop.name),
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(made)) => events(&made.name),
            LogicalPlan::Ddl(DdlStatement::CreateView(made)) => events(&made.name),
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(made)) => events(&made.name),
            _ => false,
        };
        if read_only.verify_plan(&plan).is_err() || replaces_events {
            return Err(Error::ReadOnly);
        }
        // The runtime's settings (its spill folder: into the lake, it left folders there) are
        // dau's.
        if let LogicalPlan::Statement(PlanStatement::SetVariable(set)) = &plan
            && set
                .variable
                .to_ascii_lowercase()
                .starts_with("datafusion.runtime.")
        {
            return Err(Error::usage(
                format!("SET {} is dau's to set", set.variable),
                "--memory-limit (DAU_MEMORY_LIMIT) sets the memory; spills go to the system's \
                 temporary folder (TMPDIR)",
            ));
        }
        let df = self.ctx.execute_logical_plan(plan).await?;
        // (Its effects are this session's only: SET, CREATE VIEW.)
        let columns = !df.schema().fields().is_empty();
        match self.output.as_ref().filter(|_| script) {
            Some(path) if last && !columns => {
                return Err(Error::usage(
                    format!(
                        "--output has nothing to write: the statement returns no columns, so {} \
                         is left as it was",
                        path.display()
                    ),
                    "write the SELECT whose rows --output should hold, or leave --output out",
                ));
            }
            Some(path) if !last && columns => {
                return Err(Error::usage(
                    format!(
                        "--output holds the rows of the last statement only, so {} is left as \
                         it was",
                        path.display()
                    ),
                    "before it, only statements without rows (SET, CREATE VIEW); run the others \
                     without --output",
                ));
            }
            _ => {}
        }
        let rows = if !columns {
            df.collect().await?;
            0
        } else {
            let mut stream = df.execute_stream().await?;
            // The bar shows until the first rows come, and is gone before any is written (a
            // table's rows were written under its last frame).
            let watch = self.lake.watch("reading", None);
            let first = stream.next().await;
            drop(watch);
            let schema = stream.schema();
            let rows = futures::stream::iter(first).chain(stream);
            let stream = Box::pin(RecordBatchStreamAdapter::new(schema, rows));
            let written = output::write(stream, self.format, self.output.as_deref()).await;
            match written.map_err(|e| e.under_memory_limit(self.config.memory_limit.as_ref())) {
                Err(Error::Query(e)) => return Err(self.blame_a_file(Error::Query(e)).await),
                other => other?,
            }
        };
        if self.timing {
            eprintln!("{rows} row(s) in {:.3} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// The REPL: statements end with `;` and may span lines; `\q` or Ctrl-D quits; Ctrl-C clears
    /// the line; a failed statement is reported and the REPL carries on. History is kept.
    async fn repl(&mut self) -> Result<()> {
        let editor_error =
            |e: ReadlineError| Error::io("the terminal failed", "stdin", std::io::Error::other(e));
        let mut editor: Editor<SqlHelper, DefaultHistory> = Editor::new().map_err(editor_error)?;
        editor.set_helper(Some(SqlHelper {
            words: self.words().await,
        }));
        let history = dirs::data_dir().map(|d| d.join("dau").join("history"));
        if let Some(path) = &history {
            let _ = editor.load_history(path);
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        // Each line is kept as it is entered, so a session killed or hung keeps its statements.
        let remember = |editor: &mut Editor<SqlHelper, DefaultHistory>, entry: &str| {
            if editor.add_history_entry(entry).unwrap_or(false)
                && let Some(path) = &history
            {
                let _ = editor.append_history(path);
            }
        };
        eprintln!(
            "dau sql on {} ({} to {}): the table is `events`. End statements with ;  \\q quits, \\? helps.",
            self.lake.name,
            self.lake.first_day(),
            self.lake.last_day()
        );
        let interrupts = interrupts();
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
            // (On a statement's next line too, as psql takes them: `\q` quits from anywhere.)
            if line.trim_start().starts_with('\\') {
                remember(&mut editor, line.trim());
                match self.meta(line.trim()).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        eprintln!("dau: {e}");
                        continue;
                    }
                }
            }
            if line.trim().is_empty() && buffer.is_empty() {
                continue;
            }
            buffer.push_str(&line);
            buffer.push('\n');
            if complete(&buffer) {
                remember(&mut editor, buffer.trim_end());
                // Ctrl-C while a statement runs cancels it (dropping its streams), not the REPL.
                let interrupted = interrupts.notified();
                tokio::select! {
                    result = self.execute(&buffer, false) => {
                        if let Err(e) = result {
                            eprintln!("dau: {e}");
                        }
                    }
                    _ = interrupted => eprintln!("cancelled"),
                }
                buffer.clear();
                editor.set_helper(Some(SqlHelper {
                    words: self.words().await,
                }));
            }
        }
        Ok(())
    }

    /// A statement failed while reading: name the file it tripped on, if a file is to blame, or
    /// the storage that failed.
    async fn blame_a_file(&self, error: Error) -> Error {
        if let Error::Query(e) = &error
            && let Some(failure) = self.lake.storage_failure(e)
        {
            return failure;
        }
        let files = self.events.last_scan();
        let (columns, ids) = (self.config.columns(), self.events.id_type());
        let mut bad = match unreadable_files(&self.lake, &files, &columns, ids).await {
            Ok(bad) => bad,
            Err(failure) => return failure,
        };
        // A page of another column (the statement's, not the user's) failed inside Parquet:
        // it was "query failed", naming no file. Every column of the files is decoded then.
        if bad.is_empty() && error.to_string().contains("Parquet") {
            for report in &files {
                match undecodable(&self.lake, report).await {
                    Ok(Some(reason)) => bad.push((report, reason)),
                    Ok(None) => {}
                    Err(failure) => return failure,
                }
            }
        }
        match bad.first() {
            None => error,
            Some((first, reason)) => Error::BadFile {
                file: first.name.clone(),
                reason: reason.clone(),
                others: bad.len() - 1,
            },
        }
    }

    /// What Tab completes: SQL keywords, tables, columns, functions and backslash commands.
    async fn words(&self) -> Vec<String> {
        let state = self.ctx.state();
        let mut words: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        words.extend(COMMANDS.iter().map(|c| c.to_string()));
        words.extend(state.scalar_functions().keys().cloned());
        words.extend(state.aggregate_functions().keys().cloned());
        words.extend(state.window_functions().keys().cloned());
        // The metrics' table functions: dau, …, user_days.
        words.extend(state.table_functions().keys().cloned());
        for catalog in self.ctx.catalog_names() {
            let Some(catalog) = self.ctx.catalog(&catalog) else {
                continue;
            };
            for schema in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema) else {
                    continue;
                };
                words.extend(schema.table_names());
            }
        }
        if let Ok(events) = self.ctx.table_provider("events").await {
            words.extend(events.schema().fields().iter().map(|f| f.name().clone()));
        }
        words.sort();
        words.dedup();
        words
    }

    /// A backslash command. Returns false when the REPL should end.
    async fn meta(&mut self, line: &str) -> Result<bool> {
        let (command, argument) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        match (command, argument) {
            ("\\q", _) => return Ok(false),
            ("\\?", _) => say(HELP)?,
            ("\\d", "") => {
                self.show(
                    "SELECT table_name, table_type FROM information_schema.tables \
                     WHERE table_schema = 'public' ORDER BY table_name",
                )
                .await?;
                say(
                    "table functions: dau, wau, mau, opens, stickiness, user_days (\\metrics explains them)",
                )?;
            }
            ("\\d", table) => self.describe(table).await?,
            ("\\metrics", _) => {
                for metric in Metric::value_variants() {
                    let help = metric
                        .to_possible_value()
                        .and_then(|v| v.get_help().map(|h| h.to_string()));
                    say(&format!(
                        "{:<11} {}",
                        metric.name(),
                        help.unwrap_or_default()
                    ))?;
                }
                say(
                    "In SQL each is a table function: SELECT * FROM mau('2024-06-01', '2024-06-30');",
                )?;
                say(
                    "user-days is user_days(…); a third argument 'calendar' gives weeks (wau) or months (mau).",
                )?;
            }
            ("\\timing", "") => self.timing = !self.timing,
            ("\\timing", "on") => self.timing = true,
            ("\\timing", "off") => self.timing = false,
            ("\\format", "") => say(&format!("results are shown as {}", self.format.name()))?,
            ("\\format", name) => {
                self.format = Format::from_str(name, true)
                    .ok()
                    .filter(|f| *f != Format::Parquet)
                    .ok_or_else(|| {
                        Error::usage(
                            format!("unknown format '{name}'"),
                            "use table, csv, json or ndjson",
                        )
                    })?;
            }
            ("\\o", "") => self.back_to_screen(),
            ("\\o", file) => {
                // A file that cannot be written leaves results on the screen, never going on
                // into the file before.
                let before = self.output.clone();
                self.back_to_screen();
                match (self.output_to(file), before) {
                    (Err(e), Some(before)) => {
                        eprintln!("dau: {e}");
                        eprintln!(
                            "results go to the screen now, not into {}",
                            before.display()
                        );
                    }
                    (done, _) => done?,
                }
            }
            ("\\lake", url) if !url.is_empty() => {
                // The new lake is opened before the old one is let go: a lake that cannot be
                // opened leaves the session where it was.
                let lake = Arc::new(Lake::open(url, self.config, None).await?);
                self.events = register_lake(&self.ctx, self.config, &lake).await?;
                self.lake = lake;
                eprintln!(
                    "now on {} ({} to {})",
                    self.lake.name,
                    self.lake.first_day(),
                    self.lake.last_day()
                );
                // A view holds the table it was made on: its numbers are that lake's.
                for (lake, views) in self.views_of_other_lakes().await {
                    eprintln!(
                        "warning: {} still read {lake}: create them again to read this lake",
                        views.join(", ")
                    );
                }
            }
            _ => {
                return Err(Error::usage(
                    format!("unknown command {line}"),
                    "\\? lists the commands",
                ));
            }
        }
        Ok(true)
    }

    /// Results into `file` (`~/` is the home folder), in the format its extension names, as
    /// --output does (.txt: as on the screen), until `\o` sends them back to the screen.
    fn output_to(&mut self, file: &str) -> Result<()> {
        let path = PathBuf::from(crate::config::from_home(file));
        let format = Format::resolve(None, Some(&path))?;
        self.lake.refuse_inside(&path.to_string_lossy(), "\\o")?;
        output::writable(&path)?;
        if format != Format::Table {
            self.screen_format = Some(self.format);
            self.format = format;
        }
        self.output = Some(path);
        Ok(())
    }

    /// Results to the screen again, in the format they had there.
    fn back_to_screen(&mut self) {
        self.output = None;
        if let Some(format) = self.screen_format.take() {
            self.format = format;
        }
    }

    /// The views of the session that read another lake's `events` than the session's, by that
    /// lake (`schema.view` outside the default schema).
    async fn views_of_other_lakes(&self) -> BTreeMap<String, Vec<String>> {
        let mut views: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for catalog in self.ctx.catalog_names() {
            let Some(catalog) = self.ctx.catalog(&catalog) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for name in schema.table_names() {
                    let Ok(Some(table)) = schema.table(&name).await else {
                        continue;
                    };
                    let table: &dyn std::any::Any = table.as_ref();
                    let Some(view) = table.downcast_ref::<ViewTable>() else {
                        continue;
                    };
                    let shown = match schema_name.as_str() {
                        "public" => name,
                        _ => format!("{schema_name}.{name}"),
                    };
                    for lake in self.lakes_read_by(view.logical_plan()) {
                        views.entry(lake).or_default().push(shown.clone());
                    }
                }
            }
        }
        views
    }

    /// The lakes other than the session's whose `events` `plan` reads.
    fn lakes_read_by(&self, plan: &LogicalPlan) -> BTreeSet<String> {
        let mut lakes = BTreeSet::new();
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
                && let Some(events) =
                    (provider.as_ref() as &dyn std::any::Any).downcast_ref::<EventsTable>()
                && events.lake().name != self.lake.name
            {
                lakes.insert(events.lake().name.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        lakes
    }

    /// Runs a query of dau's own and shows it as a table.
    async fn show(&self, sql: &str) -> Result<()> {
        let df = self.ctx.sql(sql).await?;
        output::write(df.execute_stream().await?, Format::Table, None).await?;
        Ok(())
    }

    /// `\\d TABLE`: its columns; for `events`, also the days it covers.
    async fn describe(&self, table: &str) -> Result<()> {
        // As SQL reads names here: `Events` is not `events`.
        if !self.ctx.table_exist(TableReference::bare(table))? {
            let tables = self
                .ctx
                .catalog("datafusion")
                .and_then(|c| c.schema("public"));
            let names = tables.map(|s| s.table_names()).unwrap_or_default();
            let hint = match names.iter().find(|n| n.eq_ignore_ascii_case(table)) {
                Some(name) => format!("names are case-sensitive: \\d {name}"),
                None => "\\d lists the tables".to_string(),
            };
            return Err(Error::usage(format!("no table {table}"), hint));
        }
        let name = table.replace('\'', "''");
        self.show(&format!(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
             WHERE table_name = '{name}' ORDER BY ordinal_position"
        ))
        .await?;
        if table == "events" {
            say(&format!(
                "partitions: {} days from {} to {} ({}); a day's files are listed when a \
                 statement first reads it",
                self.lake.days.len(),
                self.lake.first_day(),
                self.lake.last_day(),
                self.lake.layout,
            ))?;
        }
        Ok(())
    }
}

/// Registers the `events` table of `lake` in `ctx` (reading only the newest day's footers now)
/// and the metric table functions, in place of any there: what can fail is done before the
/// session's table is let go.
async fn register_lake(
    ctx: &SessionContext,
    config: &Config,
    lake: &Arc<Lake>,
) -> Result<Arc<EventsTable>> {
    let events = Arc::new(EventsTable::on_demand(lake.clone(), config).await?);
    let _ = ctx.deregister_table("events")?;
    ctx.register_object_store(lake.store_url.as_ref(), lake.store.clone());
    ctx.register_table("events", events.clone())?;
    functions::register(ctx, lake.clone(), config, events.schema());
    Ok(events)
}

/// Completes the word before the cursor from a fixed list.
struct SqlHelper {
    words: Vec<String>,
}

impl Completer for SqlHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\\'))
            .map_or(0, |i| i + 1);
        let prefix = line[start..pos].to_lowercase();
        if prefix.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let matches = self
            .words
            .iter()
            .filter(|w| w.to_lowercase().starts_with(&prefix))
            .cloned()
            .collect();
        Ok((start, matches))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}
impl Highlighter for SqlHelper {}
impl Validator for SqlHelper {}
impl Helper for SqlHelper {}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT JOIN",
    "INNER JOIN",
    "ON",
    "USING",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "LIKE",
    "IS NULL",
    "IS NOT NULL",
    "DISTINCT",
    "COUNT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "WITH",
    "UNION ALL",
    "CREATE VIEW",
    "CREATE TABLE",
    "DROP VIEW",
    "DROP TABLE",
    "DESC",
    "ASC",
    "DATE",
    "INTERVAL",
    "CAST",
    "EXPLAIN",
    "SHOW TABLES",
];

const COMMANDS: &[&str] = &[
    "\\q",
    "\\?",
    "\\d",
    "\\metrics",
    "\\timing",
    "\\format",
    "\\o",
    "\\lake",
];

const HELP: &str = "\
SQL over the lake: the table `events` has the files' columns and `date` (a DATE), e.g.
  SELECT date, COUNT(DISTINCT userId) AS dau FROM events GROUP BY date ORDER BY date;
Every metric is a table function too: SELECT * FROM mau('2024-06-01', '2024-06-30') WHERE mau > 1000;
Statements end with ; and may span lines. The lake is read-only; CREATE VIEW / CREATE TABLE … AS
make session tables.
  \\q                quit (or Ctrl-D)
  \\?                this help
  \\d                tables and views
  \\d TABLE          a table's columns (for events: its days)
  \\metrics          the metrics `dau query` computes
  \\timing on|off    show rows and elapsed time after each statement
  \\format FORMAT    table, csv, json or ndjson (alone: the one in force)
  \\o FILE / \\o     send results to FILE (each result replaces it; its extension sets the
                    format, as --output) / back to the screen
  \\lake URL         switch to another lake";

/// Ctrl-C (SIGINT), heard on a thread of its own: the runtime hears signals on its worker
/// threads, and a statement can keep them all busy without yielding (a join on `a.userId <
/// b.userId`), so that Ctrl-C went unheard. Each Ctrl-C wakes whoever waits for it then. The
/// handler is in place before the first prompt: the line editor puts back, after each line, the
/// handler it found when the line began.
fn interrupts() -> Arc<tokio::sync::Notify> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupts = Arc::new(tokio::sync::Notify::new());
    let notify = interrupts.clone();
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(runtime) = runtime else {
            return;
        };
        runtime.block_on(async {
            let sigint = signal(SignalKind::interrupt());
            let _ = ready.send(());
            let Ok(mut sigint) = sigint else {
                return;
            };
            while sigint.recv().await.is_some() {
                notify.notify_waiters();
            }
        });
    });
    // (A thread that could not listen has dropped `ready`.)
    let _ = listening.recv();
    interrupts
}

/// `SELECT dau('2024-06-01', '2024-06-30')`: the metrics are table functions, which DataFusion
/// does not find among the scalar ones ("Invalid function 'dau'. Did you mean 'map'?").
fn table_function_hint(error: DataFusionError) -> DataFusionError {
    let scalar = |name: &String| match error.find_root() {
        DataFusionError::Plan(message) => {
            message.starts_with(&format!("Invalid function '{name}'"))
        }
        _ => false,
    };
    let mut names = Metric::value_variants()
        .iter()
        .map(|m| m.name().replace('-', "_"));
    match names.find(scalar) {
        Some(name) => DataFusionError::Plan(format!(
            "{name}(…) is a table function: SELECT * FROM {name}('2024-06-01', '2024-06-30')"
        )),
        None => error,
    }
}

/// Names are case-sensitive (so that `userId` is the lake's column as typed): DataFusion's hint
/// for a name that differs in case only tells to quote it or to change a setting, neither of
/// which helps in dau; a table `EVENTS` is named as `events`.
fn name_hint(error: DataFusionError) -> DataFusionError {
    const QUOTE: &str = "You can use double quotes";
    let message = error.find_root().to_string();
    let message = message.strip_prefix("Schema error: ").unwrap_or(&message);
    if let Some(start) = message.find(QUOTE) {
        let end = message[start..]
            .find('\n')
            .map_or(message.len(), |e| start + e);
        return DataFusionError::Plan(format!(
            "{}Write the name as the lake spells it (\\d events lists the columns).{}",
            &message[..start],
            &message[end..]
        ));
    }
    let events = message
        .strip_prefix("Error during planning: table '")
        .and_then(|rest| rest.strip_suffix("' not found"))
        .and_then(|name| name.rsplit('.').next())
        .filter(|name| name.eq_ignore_ascii_case("events") && *name != "events");
    match events {
        Some(name) => DataFusionError::Plan(format!(
            "no table {name}: names are case-sensitive, and the lake's table is events"
        )),
        None => error,
    }
}

/// Whether the lines typed so far end a statement: their last token, as SQL reads them, is a
/// `;` (one inside a string or after `--` does not end it).
fn complete(sql: &str) -> bool {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // An open string or comment does not tokenize: the statement goes on.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return false;
    };
    let last = tokens.iter().rfind(|t| !matches!(t, Token::Whitespace(_)));
    last == Some(&Token::SemiColon)
}

/// Whether `sql` holds more than one statement: a `;` with more after it, as SQL's tokens read
/// (not one inside a string or a comment).
fn several(sql: &str) -> bool {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return true;
    };
    let mut ends = tokens.iter().skip_while(|t| **t != Token::SemiColon);
    ends.any(|t| !matches!(t, Token::SemiColon | Token::Whitespace(_)))
}
