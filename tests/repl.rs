//! The `dau sql` REPL driven through a real pseudo-terminal, as a person types.

use rexpect::session::{PtySession, spawn_command};

use crate::util::*;

fn repl(w: &Workdir) -> PtySession {
    let mut cmd = w.command(&["sql", "--lake", "lake"]);
    // History goes to the work folder, not the real home.
    cmd.env("HOME", w.path())
        .env("XDG_DATA_HOME", w.join("data"))
        .env("TERM", "xterm");
    let mut session = spawn_command(cmd, Some(20_000)).unwrap();
    session.exp_string("the table is `events`").unwrap();
    session.exp_string("dau> ").unwrap();
    session
}

#[test]
fn a_session_at_the_prompt() {
    let w = Workdir::new();
    let rows = random_rows(8, day("2024-06-01"), 5, 80);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let opens = rows.iter().filter(|r| r.0 == day("2024-06-03")).count();

    let mut s = repl(&w);
    // Tables are drawn with box characters; CSV is easier to match.
    s.send_line("\\format csv").unwrap();
    s.exp_string("dau> ").unwrap();
    // A statement over two lines.
    s.send_line("SELECT COUNT(*) AS opens FROM events").unwrap();
    s.exp_string("  -> ").unwrap();
    s.send_line("WHERE date = '2024-06-03';").unwrap();
    s.exp_string(&format!("opens\r\n{opens}\r\n")).unwrap();
    s.exp_string("dau> ").unwrap();
    // A syntax error, then the REPL carries on.
    s.send_line("SELEC 1;").unwrap();
    s.exp_string("Expected: an SQL statement").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\d events").unwrap();
    s.exp_string("userId").unwrap();
    s.exp_string("partitions: 5 days from 2024-06-01 to 2024-06-05")
        .unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\timing on").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT 41 + 1 AS answer;").unwrap();
    s.exp_string("answer\r\n42\r\n").unwrap();
    s.exp_string("1 row(s) in ").unwrap();
    s.exp_string("dau> ").unwrap();
    // Tab completes table names: `eve` becomes `events`.
    s.send("SELECT COUNT(*) AS n FROM eve").unwrap();
    s.send("\t").unwrap();
    s.send_line(";").unwrap();
    s.exp_string(&format!("n\r\n{}\r\n", rows.len())).unwrap();
    s.exp_string("dau> ").unwrap();
    // And the metrics' table functions: `sticki` becomes `stickiness`.
    s.send("SELECT COUNT(*) AS days FROM sticki").unwrap();
    s.send("\t").unwrap();
    s.send_line("('2024-06-01', '2024-06-05');").unwrap();
    s.exp_string("days\r\n5\r\n").unwrap();
    s.exp_string("dau> ").unwrap();
    // Ctrl-C cancels a long query, and the REPL takes the next one.
    s.send_line("SELECT COUNT(*) FROM events a, events b, events c, events d;")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.send_control('c').unwrap();
    s.exp_string("cancelled").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT 7 AS seven;").unwrap();
    s.exp_string("seven\r\n7\r\n").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();

    // The history is there in a second session.
    let history = std::fs::read_to_string(w.join("data/dau/history")).unwrap();
    assert!(history.contains("SELECT 41 + 1 AS answer;"), "{history}");
    let mut s = repl(&w);
    s.send_control('d').unwrap();
    s.exp_eof().unwrap();
}

/// `\lake` to a lake that is not there says so and keeps the session on its lake, and a switch
/// names the views that still read the lake before; `\o FILE`
/// writes in the format its extension names, and a file that cannot be written is said at once;
/// `\d` reads names as SQL does; a `;` in a comment does not end a statement.
#[test]
fn a_failed_lake_switch_keeps_the_lake_and_o_follows_the_extension() {
    let w = Workdir::new();
    let rows = random_rows(9, day("2024-06-01"), 3, 50);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    write_lake(&w.join("other"), &LakeSpec::default(), &rows[..5], &[]);

    let mut s = repl(&w);
    s.send_line("\\lake nowhere").unwrap();
    s.exp_string("lake not found").unwrap();
    s.exp_string("dau> ").unwrap();
    // A view made before a switch reads the lake it was made on, and is said to.
    s.send_line("CREATE VIEW busy AS SELECT * FROM events;")
        .unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\lake other").unwrap();
    s.exp_string("now on ").unwrap();
    s.exp_string("warning: busy still read ").unwrap();
    s.exp_string("create them again to read this lake").unwrap();
    s.exp_string("dau> ").unwrap();
    // Back on the lake it was made on: nothing to say (it named the lake just left).
    s.send_line("\\lake lake").unwrap();
    s.exp_string("now on ").unwrap();
    let said = s.exp_string("dau> ").unwrap();
    assert!(!said.contains("warning"), "{said}");
    s.send_line("SELECT COUNT(*) AS n FROM busy;").unwrap();
    s.exp_string(&format!("{}", rows.len())).unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\o counted.csv").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT COUNT(*) AS n FROM events;").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\o out.xlsx").unwrap();
    s.exp_string("cannot tell what to write into out.xlsx")
        .unwrap();
    s.exp_string("dau> ").unwrap();
    // A file inside a file: said now, not at the next statement.
    s.send_line("\\o counted.csv/again.csv").unwrap();
    s.exp_string("cannot make the output folder").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\d Events").unwrap();
    s.exp_string("no table Events").unwrap();
    s.exp_string("names are case-sensitive: \\d events")
        .unwrap();
    s.exp_string("dau> ").unwrap();
    // Back on the screen, results are a table again (they stayed CSV).
    s.send_line("\\o").unwrap();
    s.exp_string("dau> ").unwrap();
    // The `;` after `--` is the comment's: the statement goes on to the next line.
    s.send_line("SELECT 41 + 1 AS answer -- the answer;")
        .unwrap();
    s.exp_string("  -> ").unwrap();
    s.send_line(";").unwrap();
    // (A table's cell: right-aligned under its header; CSV would print a bare 42.)
    s.exp_string(" answer ").unwrap();
    s.exp_string("     42 ").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();
    let written = std::fs::read_to_string(w.join("counted.csv")).unwrap();
    assert_eq!(written, format!("n\n{}\n", rows.len()));
}

/// Lines typed ahead, or pasted where the terminal does not mark a paste, all run, in order (all
/// but the first were lost); each line is in the history once entered, so a session that is
/// killed keeps it; a `\o` that fails sends results back to the screen, not on into the file
/// before; `\q` quits from a statement's next line too; tiny floats are no 0.0000.
#[test]
fn lines_typed_ahead_all_run_and_the_history_keeps_them() {
    let w = Workdir::new();
    let rows = random_rows(4, day("2024-06-01"), 2, 20);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);

    let mut s = repl(&w);
    s.send_line("\\format csv").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send("SELECT 1 AS b1;\rSELECT 2 AS b2;\rSELECT 3 AS b3;\rSELECT 4 AS b4;\r")
        .unwrap();
    s.flush().unwrap();
    for i in 1..=4 {
        s.exp_string(&format!("b{i}\r\n{i}\r\n")).unwrap();
    }
    s.exp_string("dau> ").unwrap();
    s.send_line("\\o first.csv").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT 5 AS five;").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\o out.xlsx").unwrap();
    s.exp_string("results go to the screen now, not into first.csv")
        .unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT 6 AS six;").unwrap();
    s.exp_string("six\r\n6\r\n").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\format table").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("\\format").unwrap();
    s.exp_string("results are shown as table").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT CAST(0.00001234 AS DOUBLE) AS tiny;")
        .unwrap();
    s.exp_string("1.234e-5").unwrap();
    s.exp_string("dau> ").unwrap();
    s.send_line("SELECT 7 AS typed_then_killed;").unwrap();
    s.exp_string("dau> ").unwrap();
    s.process_mut()
        .kill(rexpect::process::Signal::SIGKILL)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(w.join("first.csv")).unwrap(),
        "five\n5\n"
    );
    let history = std::fs::read_to_string(w.join("data/dau/history")).unwrap();
    for line in ["SELECT 3 AS b3;", "SELECT 7 AS typed_then_killed;"] {
        assert!(history.contains(line), "{line}: {history}");
    }

    let mut s = repl(&w);
    s.send_line("SELECT 1").unwrap();
    s.exp_string("  -> ").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();
}

/// Ctrl-C cancels a statement that keeps every worker busy without yielding (a join on `<`): it
/// went unheard, as the workers are what hear signals, and only Ctrl-\\ or kill ended dau.
#[test]
fn ctrl_c_cancels_a_join_that_never_yields() {
    let w = Workdir::new();
    let rows = random_rows(5, day("2024-06-01"), 45, 1000);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);

    let mut s = repl(&w);
    s.send_line("SELECT COUNT(*) FROM events a JOIN events b ON a.userId < b.userId;")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    s.send_control('c').unwrap();
    s.exp_string("cancelled").unwrap();
    s.exp_string("dau> ").unwrap();
    s.process_mut()
        .kill(rexpect::process::Signal::SIGKILL)
        .unwrap();
}

#[test]
fn a_progress_bar_shows_on_a_terminal_only() {
    let w = Workdir::new();
    let rows = random_rows(3, day("2024-06-01"), 10, 200);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let args = ["query", "dau", "--lake", "lake", "--format", "csv"];
    // Shown at once instead of after a second, so that a small lake shows it.
    let soon = ("DAU_PROGRESS_AFTER", "0.001");

    let mut cmd = w.command(&args);
    cmd.env(soon.0, soon.1).env("TERM", "xterm");
    let mut s = spawn_command(cmd, Some(20_000)).unwrap();
    s.exp_regex("reading .* [0-9]+/[0-9]+ files, [0-9.]+ [KMG]?i?B read")
        .unwrap();
    s.exp_string("2024-06-10,").unwrap();
    s.exp_eof().unwrap();

    let mut quiet = w.command(&[&args[..], &["--quiet"]].concat());
    quiet.env(soon.0, soon.1).env("TERM", "xterm");
    let mut s = spawn_command(quiet, Some(20_000)).unwrap();
    let (before, _) = s.exp_string("2024-06-10,").map(|b| (b, ())).unwrap();
    assert!(!before.contains(" files, "), "{before}");
    s.exp_eof().unwrap();

    // In the REPL the bar is gone before a table is drawn (its last frame stayed above it).
    let mut cmd = w.command(&["sql", "--lake", "lake"]);
    cmd.env(soon.0, soon.1)
        .env("TERM", "xterm")
        .env("HOME", w.path())
        .env("XDG_DATA_HOME", w.join("data"));
    let mut s = spawn_command(cmd, Some(20_000)).unwrap();
    s.exp_string("dau> ").unwrap();
    // (Long enough for the bar to be drawn while it runs.)
    s.send_line("SELECT COUNT(*) AS n FROM events, generate_series(1, 3000);")
        .unwrap();
    // (The table's first character, ┌, as the session reads bytes: one char each.)
    let before = s.exp_string("\u{e2}\u{94}\u{8c}").unwrap();
    assert!(before.contains(" files, "), "{before:?}");
    assert!(before.ends_with("\r\u{1b}[2K"), "{before:?}");
    s.exp_string("dau> ").unwrap();
    s.send_line("\\q").unwrap();
    s.exp_eof().unwrap();

    let piped = w.command(&args).env(soon.0, soon.1).output().unwrap();
    let stderr = String::from_utf8(piped.stderr).unwrap();
    assert!(piped.status.success(), "{stderr}");
    assert_eq!(stderr, "", "no progress on a pipe");
}
