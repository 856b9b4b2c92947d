//! `dau schedule`: jobs fire on their cron, export, record their state, catch up missed days once,
//! and stop on SIGTERM.

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, NaiveDate, Utc};

use crate::util::*;

/// A lake of the 15 days before today (UTC), and the dau.toml of one job.
fn setup(w: &Workdir, cron: &str) -> Vec<Row> {
    let today = Utc::now().date_naive();
    let start = today - Days::new(15);
    let rows = random_rows(5, start, 15, 200);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let toml = format!(
        "[lake]\nurl = \"lake\"\n\n[[jobs]]\nname = \"nightly\"\nmetrics = [\"dau\", \"opens\"]\n\
         cron = \"{cron}\"\ntimezone = \"UTC\"\nrange = \"yesterday\"\noutput = \"daily.csv\"\n"
    );
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    rows
}

/// Writes a state file whose last successful firing is the midnight (UTC) of `day`; returns it.
fn last_success(w: &Workdir, day: NaiveDate) -> String {
    let last = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let state = format!("{{\"nightly\": \"{}\"}}", last.to_rfc3339());
    std::fs::write(w.join("state.json"), &state).unwrap();
    state
}

/// Runs what is due, as from a crontab (`dau schedule --once`), which must succeed.
fn once(w: &Workdir) -> Run {
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// The state file: each job's last successful firing.
fn state(w: &Workdir) -> BTreeMap<String, String> {
    serde_json::from_str(&std::fs::read_to_string(w.join("state.json")).unwrap()).unwrap()
}

/// Points the schedule's alerts at a receiver of the test's, with no retries; its bodies.
fn alert_without_retries(w: &Workdir) -> Alerts {
    let (url, alerts) = receiver();
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let toml = format!("{toml}\n[schedule]\nwebhooks = [\"{url}\"]\nretries = 0\n");
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    alerts
}

/// Starts the schedule as a server, its stderr kept.
fn serve(w: &Workdir) -> std::process::Child {
    (w.command(&["schedule", "--state", "state.json"]))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The exported CSV: date → dau.
fn exported(w: &Workdir) -> BTreeMap<NaiveDate, u64> {
    let text = std::fs::read_to_string(w.join("daily.csv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (day(f[0]), f[1].parse().unwrap())
        })
        .collect()
}

fn dau_of(rows: &[Row], days: &[NaiveDate]) -> BTreeMap<NaiveDate, u64> {
    let sets = active(rows);
    days.iter()
        .map(|d| (*d, sets.get(d).map_or(0, |s| s.len() as u64)))
        .collect()
}

#[test]
fn a_job_fires_exports_records_its_state_and_stops_on_sigterm() {
    let w = Workdir::new();
    let rows = setup(&w, "* * * * * *");
    let mut child = serve(&w);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.join("daily.csv").exists() {
        assert!(Instant::now() < deadline, "the job never fired");
        assert!(child.try_wait().unwrap().is_none(), "the schedule ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A second schedule on the same state would run every job again: it is refused.
    let second = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    let running = format!(
        "another dau schedule (process {}) is running with the state file state.json",
        child.id()
    );
    assert!(second.stderr.contains(&running), "{}", second.stderr);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "SIGTERM did not stop the schedule"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let yesterday = Utc::now().date_naive() - Days::new(1);
    assert_eq!(exported(&w), dau_of(&rows, &[yesterday]), "{stderr}");
    assert!(
        stderr.contains(&format!("job nightly date {yesterday}: ok")),
        "{stderr}"
    );
    assert!(stderr.contains("dau schedule: stopping"), "{stderr}");
    let state = state(&w);
    assert!(state.contains_key("nightly"), "{state:?}");
    // Once it has stopped, the state is free again.
    once(&w);
}

/// A job that failed for good tries its day again at its next firing, not at each of the
/// server's passes: another job firing every second made the failed one start over (its wait
/// for data, its retries) every second, holding the others back.
#[test]
fn a_failed_job_waits_for_its_next_firing_while_another_fires() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    let closed = free_port();
    let toml = format!(
        "[lake]\nurl = \"lake\"\n\n[schedule]\nretries = 0\n\n\
         [[jobs]]\nname = \"nightly\"\nmetrics = [\"dau\"]\ncron = \"0 0 * * *\"\n\
         timezone = \"UTC\"\noutput = \"postgres://dau@127.0.0.1:{closed}/db?sslmode=disable\"\n\n\
         [[jobs]]\nname = \"ticker\"\nmetrics = [\"dau\"]\ncron = \"* * * * * *\"\n\
         timezone = \"UTC\"\noutput = \"tick.csv\"\n"
    );
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    last_success(&w, Utc::now().date_naive() - Days::new(1));
    let child = serve(&w);
    std::thread::sleep(Duration::from_secs(5));
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(w.join("tick.csv").exists(), "{stderr}");
    let tries = (stderr.lines())
        .filter(|l| l.contains("job nightly date") && l.contains("failed after"))
        .count();
    assert_eq!(tries, 1, "{stderr}");
}

/// `--once` stopped by SIGTERM after a job failed for good ends with that job's exit status (it
/// ended 0, and cron saw a success).
#[test]
fn a_failure_before_sigterm_is_the_status_of_once() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    let yesterday = Utc::now().date_naive() - Days::new(1);
    std::fs::remove_dir_all(w.join(&format!("lake/date={yesterday}"))).unwrap();
    // `nightly` fails at once; `patient` then waits an hour for the same day.
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let job = toml.split("[[jobs]]").nth(1).unwrap();
    let patient = job
        .replace("nightly", "patient")
        .replace("daily", "patient");
    let toml =
        format!("{toml}\n[[jobs]]{patient}wait_for_data = \"1h\"\n\n[schedule]\nretries = 0\n");
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let before = (yesterday - Days::new(1)).and_hms_opt(0, 0, 0).unwrap();
    let before = before.and_utc().to_rfc3339();
    let state = format!("{{\"nightly\": \"{before}\", \"patient\": \"{before}\"}}");
    std::fs::write(w.join("state.json"), state).unwrap();
    let log = std::fs::File::create(w.join("log")).unwrap();
    let mut child = w
        .command(&["schedule", "--state", "state.json", "--once"])
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(w.join("log"))
        .unwrap()
        .contains("job patient date")
    {
        assert!(Instant::now() < deadline, "patient never waited");
        assert!(child.try_wait().unwrap().is_none(), "the schedule ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(w.join("log")).unwrap();
    assert!(log.contains("job nightly date"), "{log}");
    assert_eq!(status.code(), Some(4), "{log}");
}

#[test]
fn days_missed_while_down_are_caught_up_once() {
    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let today = Utc::now().date_naive();
    // The last success was the midnight four days ago: the firings of the three midnights since
    // and today's have not run.
    last_success(&w, today - Days::new(4));
    let run = once(&w);
    let missed: Vec<NaiveDate> = (1..=4).rev().map(|k| today - Days::new(k)).collect();
    assert_eq!(exported(&w), dau_of(&rows, &missed), "{}", run.stderr);
    assert_eq!(run.stderr.matches(": ok, ").count(), 4, "{}", run.stderr);

    // Up to date: a second start runs nothing.
    let before = std::fs::read(w.join("daily.csv")).unwrap();
    let run = once(&w);
    assert!(!run.stderr.contains(": ok, "), "{}", run.stderr);
    assert_eq!(std::fs::read(w.join("daily.csv")).unwrap(), before);
}

/// A catch-up keeps its progress day by day: a day that fails stops it there, and the days
/// delivered before it are not run again (the state moved only once every day had run, so a
/// catch-up cut short, by a failure or a deadline's kill, began again from its start each time).
#[test]
fn a_catch_up_keeps_each_day_it_delivered() {
    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let _alerts = alert_without_retries(&w);
    let today = Utc::now().date_naive();
    last_success(&w, today - Days::new(4));
    let gap = today - Days::new(2);
    std::fs::remove_dir_all(w.join("lake").join(format!("date={gap}"))).unwrap();
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let delivered = [today - Days::new(4), today - Days::new(3)];
    assert_eq!(exported(&w), dau_of(&rows, &delivered), "{}", run.stderr);
    // The firing that exported the last of them: the midnight after it.
    let fired = gap.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let kept = chrono::DateTime::parse_from_rfc3339(&state(&w)["nightly"]).unwrap();
    assert_eq!(kept, fired, "{}", run.stderr);
}

/// A catch-up from before the lake's first day (a server down longer than the lake keeps its
/// days) skips those days with a warning and delivers the lake's: it failed on the first of them
/// every night, for good, and delivered nothing more.
#[test]
fn a_catch_up_from_before_the_lake_skips_the_days_it_lacks() {
    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let today = Utc::now().date_naive();
    last_success(&w, today - Days::new(19));
    let run = once(&w);
    let first = today - Days::new(15);
    for k in 16..=18 {
        let skipped = format!(
            "date {}: skipped, before the lake's first day, {first}",
            today - Days::new(k)
        );
        assert!(run.stderr.contains(&skipped), "{}", run.stderr);
    }
    let lake: Vec<NaiveDate> = (1..=15).rev().map(|k| today - Days::new(k)).collect();
    assert_eq!(exported(&w), dau_of(&rows, &lake), "{}", run.stderr);
}

/// With `redo_days`, a firing exports its day and then the days before it again: events that
/// landed late in an earlier day reach its exported number. Days before the lake's first one are
/// not exported.
#[test]
fn a_firing_redoes_the_days_before_it_for_late_events() {
    let w = Workdir::new();
    let mut rows = setup(&w, "0 0 * * *");
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    std::fs::write(w.join("dau.toml"), format!("{toml}redo_days = 2\n")).unwrap();
    let today = Utc::now().date_naive();
    let days =
        |from: u64| -> Vec<NaiveDate> { (1..=from).rev().map(|k| today - Days::new(k)).collect() };
    last_success(&w, today - Days::new(1));
    let run = once(&w);
    assert_eq!(exported(&w), dau_of(&rows, &days(3)), "{}", run.stderr);

    // Late events of three days ago, in a file of their own: tonight's firing counts them.
    let late = today - Days::new(3);
    let users: Vec<u64> = (5_000..5_040).collect();
    let folder = w.join("lake").join(format!("date={late}"));
    write_file(
        &folder.join("late.parquet"),
        &LakeSpec::default(),
        &users,
        late,
    );
    rows.extend(users.iter().map(|u| (late, *u)));
    std::fs::remove_file(w.join("daily.csv")).unwrap();
    last_success(&w, today - Days::new(2));
    let run = once(&w);
    let want = dau_of(&rows, &days(4));
    assert_eq!(exported(&w), want, "{}", run.stderr);
    assert!(want[&late] >= 40, "the late users count");

    // A lake that starts on the day exported: nothing before it is exported.
    let first = today - Days::new(15);
    last_success(&w, first + Days::new(1));
    std::fs::remove_file(w.join("daily.csv")).unwrap();
    let run = once(&w);
    let since: Vec<NaiveDate> = (0..15).map(|k| first + Days::new(k)).collect();
    assert_eq!(exported(&w), dau_of(&rows, &since), "{}", run.stderr);

    // A bad file in a day to redo: the firing's own day is delivered all the same, and the state
    // moves on (it failed, and every firing after redid and failed again, for ever).
    let (yesterday, bad) = (today - Days::new(1), today - Days::new(3));
    let junk = w.join("lake").join(format!("date={bad}/junk.parquet"));
    std::fs::write(&junk, "not parquet").unwrap();
    let before = last_success(&w, yesterday);
    let run = once(&w);
    assert!(
        run.stderr.contains(&format!(
            "job nightly delivered {yesterday}, but could not export the 2 day(s) before it \
             again (redo_days): bad data file"
        )),
        "{}",
        run.stderr
    );
    assert_ne!(
        std::fs::read_to_string(w.join("state.json")).unwrap(),
        before
    );
    std::fs::remove_file(junk).unwrap();

    // A day being written again (its folder there, its files not yet), then lost: the rows
    // delivered for it are kept, not made NULL by a redo.
    let lost = today - Days::new(2);
    let folder = w.join("lake").join(format!("date={lost}"));
    std::fs::rename(&folder, w.join("away")).unwrap();
    for gone in [false, true] {
        if !gone {
            std::fs::create_dir(&folder).unwrap();
        }
        last_success(&w, yesterday);
        let run = once(&w);
        assert!(
            run.stderr.contains(&format!(
                "{bad} to {lost} are not exported again (redo_days): the lake has nothing to \
                 count for {lost}"
            )),
            "{}",
            run.stderr
        );
        assert_eq!(exported(&w), dau_of(&rows, &since), "{}", run.stderr);
        std::fs::remove_dir_all(&folder).unwrap_or_default();
    }
}

/// A calendar job's redo that reaches back into the month before delivers the late events of
/// that month's last days: the month not over yet (NULL until it is) does not hold it back.
#[test]
fn a_calendar_redo_delivers_late_events_of_the_month_before() {
    let w = Workdir::new();
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let this_month = yesterday.with_day(1).unwrap();
    let last_month = (this_month - Days::new(1)).with_day(1).unwrap();
    let days = (yesterday - last_month).num_days() as u64 + 1;
    let mut rows = random_rows(9, last_month, days, 300);
    write_lake(&w.join("lake"), &LakeSpec::default(), &rows, &[]);
    let toml = format!(
        "[lake]\nurl = \"lake\"\n\n[[jobs]]\nname = \"nightly\"\nmetrics = [\"mau\"]\n\
         calendar = true\ncron = \"0 0 * * *\"\ntimezone = \"UTC\"\nrange = \"yesterday\"\n\
         output = \"monthly.csv\"\nredo_days = {}\n",
        yesterday.day() + 1
    );
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    // Late users of the month's last day, landed after it was delivered.
    let late = this_month - Days::new(1);
    let users: Vec<u64> = (9_000..9_025).collect();
    let file = w.join("lake").join(format!("date={late}/late.parquet"));
    write_file(&file, &LakeSpec::default(), &users, late);
    rows.extend(users.iter().map(|u| (late, *u)));

    last_success(&w, yesterday);
    let run = once(&w);
    let month: HashSet<u64> = (rows.iter())
        .filter(|(d, _)| (last_month..this_month).contains(d))
        .map(|(_, u)| *u)
        .collect();
    let text = std::fs::read_to_string(w.join("monthly.csv")).unwrap_or_default();
    let row = format!("{last_month},{}", month.len());
    assert!(
        text.lines().any(|l| l == row),
        "{row} in\n{text}\n{}",
        run.stderr
    );
}

/// `dau schedule --once` run from cron: the first start only records the job's state (nothing
/// before it is due), and the next start runs the firings since.
#[test]
fn a_first_start_records_the_state_that_the_next_start_catches_up_from() {
    let w = Workdir::new();
    let rows = setup(&w, "* * * * * *");
    let run = once(&w);
    assert!(
        run.stderr.contains("job nightly: first start"),
        "{}",
        run.stderr
    );
    assert!(!w.join("daily.csv").exists(), "{}", run.stderr);
    let state = state(&w);
    assert!(state.contains_key("nightly"), "{state:?}");

    // A second later the cron has fired (every second), and the next start runs it, once.
    std::thread::sleep(Duration::from_millis(1100));
    let run = once(&w);
    assert!(!run.stderr.contains("first start"), "{}", run.stderr);
    let yesterday = Utc::now().date_naive() - Days::new(1);
    assert_eq!(run.stderr.matches(": ok, ").count(), 1, "{}", run.stderr);
    assert_eq!(exported(&w), dau_of(&rows, &[yesterday]), "{}", run.stderr);
}

/// Two jobs of one name would share a state and a URL: refused before anything runs.
#[test]
fn job_names_are_unique() {
    let w = Workdir::new();
    setup(&w, "* * * * * *");
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let second = toml.split_once("[[jobs]]").unwrap().1;
    std::fs::write(w.join("dau.toml"), format!("{toml}\n[[jobs]]{second}")).unwrap();
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("dau: two [[jobs]] are named 'nightly': give each its own name"),
        "{}",
        run.stderr
    );
    assert!(!w.join("state.json").exists());
    assert!(!w.join("daily.csv").exists());
}

/// A destination dau cannot write is refused at start, not at the first firing.
#[test]
fn a_job_output_is_checked_at_start() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let toml = toml.replace("daily.csv", "daily.txt");
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "dau: job 'nightly': output: cannot tell where to export 'daily.txt': give a file"
        ),
        "{}",
        run.stderr
    );
    assert!(!w.join("state.json").exists());

    // So are its settings.
    for (setting, said) in [
        (
            "wait_for_data = \"soon\"",
            "bad wait_for_data 'soon': give a time such as \"90m\" or \"3h\" (s, m or h)",
        ),
        (
            "max_change = \"0.5\"",
            "bad max_change '0.5': give a change of dau such as \"50%\"",
        ),
    ] {
        let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
        let toml = toml.replace("daily.txt", "daily.csv");
        std::fs::write(w.join("dau.toml"), format!("{toml}{setting}\n")).unwrap();
        let run = w.run(&["schedule", "--state", "state.json", "--once"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        let want = format!("dau: job 'nightly': {said}\n");
        assert_eq!(run.stderr, want);
        std::fs::write(w.join("dau.toml"), toml).unwrap();
    }

    // Metrics no export could deliver, and no lake at all: each firing failed, exit 0.
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let metrics = "metrics = [\"dau\", \"opens\"]";
    for (changed, said) in [
        (
            toml.replace(metrics, "metrics = []"),
            "job 'nightly': metrics = [] names no metric",
        ),
        (
            toml.replace(metrics, "metrics = [\"dau\", \"user-days\"]"),
            "job 'nightly': user-days exports on its own",
        ),
        (toml.replace("url = \"lake\"\n", ""), "no lake given"),
        // A cron that parses and never fires: the job sat idle without a word.
        (
            toml.replace("0 0 * * *", "0 0 31 2 *"),
            "job 'nightly': cron '0 0 31 2 *' never fires",
        ),
        // Calendar periods of metrics that have none: each firing was retried, then failed.
        (
            format!("{toml}calendar = true\n"),
            "job 'nightly': calendar = true does not apply to dau",
        ),
        // Names that neither the state nor POST /jobs/NAME/run could tell.
        (
            toml.replace("name = \"nightly\"", "name = \"a/b\""),
            "job 'a/b': a job's name may be neither empty nor hold a /",
        ),
        (
            toml.replace("name = \"nightly\"", "name = \"\""),
            "job '': a job's name may be neither empty nor hold a /",
        ),
        // Where failures are told, said at start rather than on the night.
        (
            format!("{toml}\n[schedule]\nwebhooks = [\"notaurl\"]\n"),
            "bad webhook 'notaurl' ([schedule] webhooks): give the webhook's http:// or https:// URL",
        ),
        // An output inside the lake: refused at each firing, now at start.
        (
            toml.replace("\"daily.csv\"", "\"lake/daily.csv\""),
            "job 'nightly': output lake/daily.csv is inside the lake",
        ),
    ] {
        std::fs::write(w.join("dau.toml"), changed).unwrap();
        let run = w.run(&["schedule", "--state", "state.json", "--once"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.starts_with(&format!("dau: {said}")),
            "{}",
            run.stderr
        );
        assert!(!w.join("state.json").exists());
    }
    std::fs::write(w.join("dau.toml"), toml).unwrap();

    // A listen address that is none: a setting to fix (exit 2), not a port taken (exit 3).
    let run = w.run(&[
        "schedule",
        "--state",
        "state.json",
        "--once",
        "--listen",
        "nowhere",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "dau: bad listen address 'nowhere' (--listen, DAU_LISTEN or [schedule] listen)"
        ),
        "{}",
        run.stderr
    );
    // A state in a bucket named as a folder (it was put as an object named like the folder).
    let run = w.run(&["schedule", "--state", "gs://lake/state/", "--once"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "dau: --state gs://lake/state/ names a folder: name the state object in it, such as \
             gs://lake/state/dau-state.json"
        ),
        "{}",
        run.stderr
    );
    // A bucket with no object named (it went to the network to fail there, exit 3).
    let run = w.run(&["schedule", "--state", "gs://lake", "--once"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "dau: --state gs://lake names a folder: name the state object in it, such as \
             gs://lake/dau-state.json"
        ),
        "{}",
        run.stderr
    );
    // A local state that is a folder, or empty: a setting's error before any job runs (they
    // failed when the state was saved, exit 3).
    std::fs::create_dir(w.join("states")).unwrap();
    for state in ["states", ""] {
        let run = w.run(&["schedule", "--state", state, "--once"]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        let said = format!("dau: --state '{state}' names no file: name the state file");
        assert!(run.stderr.starts_with(&said), "{}", run.stderr);
    }
}

#[test]
fn a_failing_job_is_retried_and_its_state_not_advanced() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    // Yesterday's partition is corrupt: every attempt fails, naming the file.
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let part = w.join(&format!("lake/date={yesterday}/part-0.parquet"));
    std::fs::write(&part, b"not parquet").unwrap();
    last_success(&w, yesterday - Days::new(1));
    // From cron, the run's exit status is the failure's (4: a bad file), and it says which job.
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.ends_with(&format!(
            "dau: job(s) failed: nightly ({yesterday}); their errors are logged above\n"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("attempt 3 of 3 failed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("bad data file"), "{}", run.stderr);
    // The state moved past the day before (delivered), not past the failing day.
    let fired = yesterday.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let kept = chrono::DateTime::parse_from_rfc3339(&state(&w)["nightly"]).unwrap();
    assert_eq!(kept, fired, "{}", run.stderr);
}

/// Waits for the schedule's server at `base` to answer `/healthz`.
fn serving(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while curl(&[&format!("{base}/healthz")]).0 != 200 {
        assert!(Instant::now() < deadline, "the server never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `curl` a URL: (HTTP status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

#[test]
fn jobs_run_over_http_with_the_token_and_metrics_are_prometheus_text() {
    let w = Workdir::new();
    let mut rows = setup(&w, "0 0 1 1 *");
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    std::fs::write(w.join("dau.toml"), format!("{toml}max_change = \"50%\"\n")).unwrap();
    // The day run over HTTP has three users, far fewer than a week before.
    let day = Utc::now().date_naive() - Days::new(3);
    let folder = w.join("lake").join(format!("date={day}"));
    for file in ["part-0.parquet", "part-1.parquet"] {
        std::fs::remove_file(folder.join(file)).unwrap();
    }
    write_file(
        &folder.join("part-0.parquet"),
        &LakeSpec::default(),
        &[7, 8, 9],
        day,
    );
    rows.retain(|(d, _)| *d != day);
    rows.extend([(day, 7), (day, 8), (day, 9)]);
    let yesterday = Utc::now().date_naive() - Days::new(1);
    for folder in std::fs::read_dir(w.join("lake")).unwrap() {
        let marker = folder.unwrap().path().join("_SUCCESS");
        match marker.ends_with(format!("date={yesterday}/_SUCCESS")) {
            true => std::fs::remove_file(marker).unwrap(),
            false => std::fs::write(marker, "").unwrap(),
        }
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = w
        .command(&["schedule"])
        // As a container gets them: DAU_LISTEN and DAU_STATE stand for --listen and --state.
        .env("DAU_LISTEN", format!("127.0.0.1:{port}"))
        .env("DAU_STATE", "state.json")
        .env("DAU_SCHEDULE_TOKEN", "s3cret")
        .env("DAU_DONE_MARKER", "_SUCCESS")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    serving(&base);
    let run = format!("{base}/jobs/nightly/run?date={day}");
    assert_eq!(curl(&["-X", "POST", &run]).0, 401);
    assert_eq!(
        curl(&["-X", "POST", "-H", "Authorization: Bearer nope", &run]).0,
        401
    );
    let other = format!("{base}/jobs/other/run");
    assert_eq!(
        curl(&["-X", "POST", "-H", "Authorization: Bearer s3cret", &other]).0,
        404
    );
    let (status, body) = curl(&["-X", "POST", "-H", "Authorization: Bearer s3cret", &run]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(exported(&w), dau_of(&rows, &[day]));
    // It holds the state file DAU_STATE named.
    let second = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(second.stderr.contains("is running with the state file"));

    let (status, text) = curl(&[&format!("{base}/metrics")]);
    assert_eq!(status, 200);
    let mut values = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().expect("a number");
        values.insert(series.to_string(), value);
    }
    assert_eq!(values["dau_job_runs_total{job=\"nightly\"}"], 1.0, "{text}");
    assert_eq!(
        values["dau_job_failures_total{job=\"nightly\"}"], 0.0,
        "{text}"
    );
    assert_eq!(
        values["dau_job_rows_exported_total{job=\"nightly\"}"], 1.0,
        "{text}"
    );
    assert_eq!(
        values["dau_job_unusual_days_total{job=\"nightly\"}"], 1.0,
        "{text}"
    );
    // Yesterday has no _SUCCESS yet: the day before is the newest finished one.
    let newest = (Utc::now().date_naive() - Days::new(2))
        .and_hms_opt(0, 0, 0)
        .unwrap();
    assert_eq!(
        values["dau_lake_last_partition_timestamp_seconds"],
        newest.and_utc().timestamp() as f64,
        "{text}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_failing_streak_alerts_once_and_recovery_once() {
    let w = Workdir::new();
    setup(&w, "* * * * * *");
    let alerts = alert_without_retries(&w);
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let part = w.join(&format!("lake/date={yesterday}/part-0.parquet"));
    let good = std::fs::read(&part).unwrap();
    std::fs::write(&part, b"not parquet").unwrap();

    let mut child = serve(&w);
    // Several firings fail (one a second); the webhook hears of it once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while alerts.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no alert came");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    // Fixed: the next firing works, and the webhook hears that too.
    std::fs::write(&part, good).unwrap();
    while alerts.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "no recovery alert came");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let failures = stderr.matches("attempt 1 of 1 failed").count();
    assert!(failures >= 2, "several firings failed: {stderr}");
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let first: serde_json::Value = serde_json::from_str(&alerts[0]).unwrap();
    let text = first["text"].as_str().unwrap();
    // Naming the host, as `hostname` does.
    let host = std::process::Command::new("hostname")
        .output()
        .unwrap()
        .stdout;
    let host = String::from_utf8(host).unwrap();
    assert!(
        text.starts_with(&format!(
            "dau on {}: failed: job nightly could not export {yesterday}",
            host.trim()
        )),
        "{text}"
    );
    assert!(text.contains("bad data file"), "{text}");
    let second: serde_json::Value = serde_json::from_str(&alerts[1]).unwrap();
    let text = second["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("recovered: job nightly exported {yesterday}")),
        "{text}"
    );
}

/// An alert that the webhook refused (down for a moment: its three tries in a second and a
/// half) is sent again at the next failure of the streak: the streak was taken as told, and a
/// failure lasting days went unheard.
#[test]
fn an_alert_the_webhook_missed_is_sent_at_the_next_failure() {
    let w = Workdir::new();
    setup(&w, "* * * * * *");
    let (url, alerts) = receiver_down_for(3);
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let toml = format!("{toml}\n[schedule]\nwebhooks = [\"{url}\"]\nretries = 0\n");
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let part = w.join(&format!("lake/date={yesterday}/part-0.parquet"));
    std::fs::write(&part, b"not parquet").unwrap();
    let mut child = serve(&w);
    let deadline = Instant::now() + Duration::from_secs(60);
    while alerts.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("could not deliver an alert to http://127.0.0.1/…"),
        "{stderr}"
    );
    assert!(!stderr.contains("/hook"), "{stderr}");
    // Once through, the streak is told: no second alert.
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?} {stderr}");
    assert!(
        alerts[0].contains(&format!("failed: job nightly could not export {yesterday}")),
        "{alerts:?}"
    );
}

/// A schedule that cannot keep its state stops (exit 3), and tells the webhooks so: it stopped
/// with a line in its log only, and no night after was delivered.
#[test]
fn a_state_that_cannot_be_written_is_alerted() {
    let w = Workdir::new();
    setup(&w, "* * * * * *");
    let alerts = alert_without_retries(&w);
    let mut child = serve(&w);
    // Started: its state is written; then the file becomes a folder, which no write replaces.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.join("state.json").is_file() {
        assert!(Instant::now() < deadline, "no state written");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(w.join("state.json")).unwrap();
    std::fs::create_dir_all(w.join("state.json/in-the-way")).unwrap();
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the schedule did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?} {stderr}");
    assert!(
        alerts[0].contains("failed: dau schedule stopped: cannot write the schedule state"),
        "{alerts:?}"
    );
}

/// From cron (`--once` each night), a failing streak is alerted once and its end too: the streak
/// is kept in the state, where it lived in memory only (every failing night was alerted, and
/// the recovery never was).
#[test]
fn a_failing_streak_over_runs_from_cron_alerts_once_and_recovery_once() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    let alerts = alert_without_retries(&w);
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let part = w.join(&format!("lake/date={yesterday}/part-0.parquet"));
    let good = std::fs::read(&part).unwrap();
    std::fs::write(&part, b"not parquet").unwrap();
    last_success(&w, yesterday);
    for night in 0..2 {
        let run = w.run(&["schedule", "--state", "state.json", "--once"]);
        assert_eq!(run.code, 4, "night {night}: {}", run.stderr);
        assert!(state(&w).contains_key("nightly/failing"), "{:?}", state(&w));
    }
    assert_eq!(
        alerts.lock().unwrap().len(),
        1,
        "{:?}",
        alerts.lock().unwrap()
    );
    std::fs::write(&part, good).unwrap();
    once(&w);
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(
        alerts[1].contains(&format!("recovered: job nightly exported {yesterday}")),
        "{alerts:?}"
    );
    assert!(
        !state(&w).contains_key("nightly/failing"),
        "{:?}",
        state(&w)
    );
}

/// A run killed after a recovery, in the next day's retry backoff, leaves no alerted streak in
/// the state: the next run alerts that day's failure (the state kept the old streak, and every
/// failure after it went unheard, the webhook's last word "recovered").
#[test]
fn a_run_killed_after_a_recovery_alerts_the_next_failure() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    let (url, alerts) = receiver();
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let toml = format!("{toml}\n[schedule]\nwebhooks = [\"{url}\"]\n");
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let today = Utc::now().date_naive();
    let part = w.join(&format!(
        "lake/date={}/part-0.parquet",
        today - Days::new(1)
    ));
    std::fs::write(&part, b"not parquet").unwrap();
    let before = (today - Days::new(2))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let state_text = format!(
        "{{\"nightly\": \"{0}\", \"nightly/failing\": \"{0}\"}}",
        before.to_rfc3339()
    );
    std::fs::write(w.join("state.json"), state_text).unwrap();

    // The day before yesterday is delivered (recovered); yesterday's first attempt fails, and
    // the run is killed while it waits to try again.
    let mut child = (w.command(&["schedule", "--state", "state.json", "--once"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let moved = |w: &Workdir| {
        let text = std::fs::read_to_string(w.join("state.json")).unwrap_or_default();
        let state: BTreeMap<String, String> = serde_json::from_str(&text).unwrap_or_default();
        state
            .get("nightly")
            .is_some_and(|t| !t.starts_with(&before.format("%FT%T").to_string()))
    };
    while !moved(&w) {
        assert!(Instant::now() < deadline, "nothing delivered");
        assert!(child.try_wait().unwrap().is_none(), "the run ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !state(&w).contains_key("nightly/failing"),
        "{:?}",
        state(&w)
    );

    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts[0].contains("recovered: job nightly"), "{alerts:?}");
    assert!(alerts[1].contains("failed: job nightly"), "{alerts:?}");
}

#[test]
fn json_logs_have_a_line_per_run() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    // mau over a 15-day lake: each export warns that its windows reach before the lake.
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let toml = toml.replace(r#"["dau", "opens"]"#, r#"["dau", "mau"]"#);
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let today = Utc::now().date_naive();
    last_success(&w, today - Days::new(2));
    let run = w
        .command(&["schedule", "--state", "state.json", "--once"])
        .env("DAU_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let run: Run = run.into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Every line is JSON, warnings too, for a log collector.
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let warned = lines.iter().filter(|v| v["level"] == "WARN");
    assert!(
        warned.clone().count() > 0 && warned.clone().all(|v| v["fields"]["job"] == "nightly"),
        "{}",
        run.stderr
    );
    let runs: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["fields"]["outcome"].is_string())
        .collect();
    let days: Vec<String> = runs
        .iter()
        .map(|v| {
            assert_eq!(v["fields"]["job"], "nightly", "{v}");
            assert_eq!(v["fields"]["outcome"], "ok", "{v}");
            assert_eq!(v["fields"]["rows"], 1, "{v}");
            v["fields"]["day"].as_str().unwrap().to_string()
        })
        .collect();
    let want: Vec<String> = [2, 1]
        .iter()
        .map(|k| (today - Days::new(*k)).to_string())
        .collect();
    assert_eq!(days, want, "{}", run.stderr);
}

#[test]
fn a_missing_partition_alerts_as_a_stale_lake() {
    // Yesterday's folder is not there, or (a writer not done) holds only `_SUCCESS`.
    for (empty, error) in [
        (false, "no partitions between"),
        (true, "no data file to read in the partitions"),
    ] {
        let w = Workdir::new();
        setup(&w, "0 0 * * *");
        let alerts = alert_without_retries(&w);
        let yesterday = Utc::now().date_naive() - Days::new(1);
        let folder = w.join(&format!("lake/date={yesterday}"));
        match empty {
            true => unfinished_partition(&folder),
            false => std::fs::remove_dir_all(&folder).unwrap(),
        }
        last_success(&w, yesterday - Days::new(1));
        // DAU_WEBHOOKS (a Secret in a pod) is told besides dau.toml's.
        let (url, by_env) = receiver();
        let run = w
            .command(&["schedule", "--state", "state.json", "--once"])
            .env("DAU_WEBHOOKS", url)
            .output()
            .unwrap();
        let run: Run = run.into();
        // A stale lake is a data problem: exit 4, from cron.
        assert_eq!(run.code, 4, "{}", run.stderr);
        let alerts = alerts.lock().unwrap().clone();
        assert_eq!(alerts.len(), 1, "{alerts:?} {}", run.stderr);
        assert_eq!(*by_env.lock().unwrap(), alerts);
        let alert: serde_json::Value = serde_json::from_str(&alerts[0]).unwrap();
        let text = alert["text"].as_str().unwrap();
        assert!(
            text.contains(&format!("could not export {yesterday} (stale lake?)")),
            "{text}"
        );
        assert!(text.contains(error), "{text}");
    }
}

/// With `wait_for_data`, a firing whose day is not all there yet (here: no `_SUCCESS` under
/// `done_marker`) looks again until it is, then exports the oracle's numbers, with no alert and
/// no failure; a day that never lands fails as a stale lake once the wait is over.
#[test]
fn a_firing_waits_for_its_day_to_land() {
    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let alerts = alert_without_retries(&w);
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    let toml = toml
        .replace("[lake]\n", "[lake]\ndone_marker = \"_SUCCESS\"\n")
        .replace(
            "output = \"daily.csv\"\n",
            "output = \"daily.csv\"\nwait_for_data = \"30s\"\n",
        );
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let marker = w.join(&format!("lake/date={yesterday}/_SUCCESS"));
    std::fs::remove_file(&marker).unwrap();
    last_success(&w, yesterday);

    let mut child = w
        .command(&["schedule", "--state", "state.json", "--once"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It looks every 2.5 s: past the first look, it is still waiting, having written nothing.
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    assert!(!w.join("daily.csv").exists());
    std::fs::write(&marker, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "it did not see the day land");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("job nightly date {yesterday}: no data yet")),
        "{stderr}"
    );
    assert!(!stderr.contains("failed"), "{stderr}");
    assert_eq!(exported(&w), dau_of(&rows, &[yesterday]), "{stderr}");
    assert!(alerts.lock().unwrap().is_empty());
    assert!(state(&w)["nightly"] > format!("{yesterday}"), "{stderr}");

    // A day that never lands: after the wait (here 2 s), the stale-lake alert.
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    std::fs::write(w.join("dau.toml"), toml.replace("\"30s\"", "\"2s\"")).unwrap();
    std::fs::remove_file(&marker).unwrap();
    last_success(&w, yesterday);
    let started = Instant::now();
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{}",
        run.stderr
    );
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?} {}", run.stderr);
    assert!(alerts[0].contains("(stale lake?)"), "{}", alerts[0]);
    assert!(
        alerts[0].contains("without _SUCCESS (--done-marker)"),
        "{}",
        alerts[0]
    );
}

/// With `max_change`, a firing whose day's dau differs from the same weekday's a week before by
/// more than that is alerted of (its numbers are still delivered); a usual day is not.
#[test]
fn a_day_whose_dau_changed_too_much_from_a_week_before_is_alerted() {
    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    std::fs::write(w.join("dau.toml"), format!("{toml}max_change = \"50%\"\n")).unwrap();
    let alerts = alert_without_retries(&w);
    let today = Utc::now().date_naive();
    let (yesterday, week_before) = (today - Days::new(1), today - Days::new(8));
    let folder = |d: NaiveDate| w.join("lake").join(format!("date={d}"));
    let users_then = dau_of(&rows, &[week_before])[&week_before];

    // Yesterday has the users of a week before: as usual.
    std::fs::remove_dir_all(folder(yesterday)).unwrap();
    std::fs::create_dir(folder(yesterday)).unwrap();
    for entry in std::fs::read_dir(folder(week_before)).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, folder(yesterday).join(from.file_name().unwrap())).unwrap();
    }
    last_success(&w, yesterday);
    let run = once(&w);
    assert_eq!(exported(&w)[&yesterday], users_then, "{}", run.stderr);
    assert!(alerts.lock().unwrap().is_empty(), "{:?}", alerts.lock());

    // Then only three of them: delivered, and alerted of.
    std::fs::remove_dir_all(folder(yesterday)).unwrap();
    std::fs::create_dir(folder(yesterday)).unwrap();
    let three = [1_000, 1_001, 1_002];
    write_file(
        &folder(yesterday).join("part-0.parquet"),
        &LakeSpec::default(),
        &three,
        yesterday,
    );
    last_success(&w, yesterday);
    let run = once(&w);
    assert_eq!(exported(&w)[&yesterday], 3, "{}", run.stderr);
    let lower = format!("{:.1}", (users_then - 3) as f64 / users_then as f64 * 100.0);
    let lower = lower.trim_end_matches(".0");
    let text = format!(
        "unusual: job nightly: dau 3 on {yesterday} is {lower}% lower than {users_then} on \
         {week_before}, the same weekday a week before (max_change 50%): is the day whole?"
    );
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert: serde_json::Value = serde_json::from_str(&alerts[0]).unwrap();
    assert!(alert["text"].as_str().unwrap().ends_with(&text), "{alert}");
    assert!(run.stderr.contains("outcome=\"unusual\""), "{}", run.stderr);
}

/// A firing that comes due while another job runs (here: waits for a day that never lands) runs
/// as soon as that job is done, not at its next cron time: it waited a day.
#[test]
fn a_firing_due_while_another_job_waits_runs_after_it() {
    use chrono::Timelike;

    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let toml = std::fs::read_to_string(w.join("dau.toml")).unwrap();
    // `nightly` waits 3 s for today's partition (never written), then fails; `later` fires 2 s
    // after the start, during that wait, and exports yesterday.
    let at = Utc::now() + chrono::Duration::seconds(2);
    let toml = toml.replace(
        "range = \"yesterday\"\noutput = \"daily.csv\"\n",
        "range = \"today\"\noutput = \"daily.csv\"\nwait_for_data = \"3s\"\n",
    ) + &format!(
        "\n[[jobs]]\nname = \"later\"\nmetrics = [\"dau\"]\ncron = \"{} {} {} * * *\"\n\
         timezone = \"UTC\"\nrange = \"yesterday\"\noutput = \"later.csv\"\n\n[schedule]\n\
         retries = 0\n",
        at.second(),
        at.minute(),
        at.hour()
    );
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let yesterday = Utc::now().date_naive() - Days::new(1);
    let midnight = yesterday.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let state = format!(
        "{{\"nightly\": \"{}\", \"later\": \"{}\"}}",
        midnight.to_rfc3339(),
        Utc::now().to_rfc3339()
    );
    std::fs::write(w.join("state.json"), state).unwrap();
    let mut child = serve(&w);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !w.join("later.csv").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(w.join("later.csv").exists(), "later never ran: {stderr}");
    assert!(stderr.contains("job nightly"), "{stderr}");
    let text = std::fs::read_to_string(w.join("later.csv")).unwrap();
    let dau = dau_of(&rows, &[yesterday])[&yesterday];
    assert_eq!(text, format!("date,dau\n{yesterday},{dau}\n"), "{stderr}");
}

/// `/metrics` answers within Prometheus' 10 s scrape timeout while the lake's storage does not
/// answer at all (it took two minutes: timeout × retries); the freshness gauge is left out.
#[test]
fn metrics_answer_while_the_lake_storage_hangs() {
    let w = Workdir::new();
    // Takes connections (the kernel's backlog) and never answers them.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", hanging.local_addr().unwrap());
    let toml = "[lake]\nurl = \"s3://lake/events\"\n\n[[jobs]]\nname = \"nightly\"\n\
                metrics = [\"dau\"]\ncron = \"0 0 1 1 *\"\noutput = \"daily.csv\"\n";
    std::fs::write(w.join("dau.toml"), toml).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = w
        .command(&["schedule", "--state", "state.json", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("DAU_ENDPOINT", &endpoint)
        .env("DAU_ANONYMOUS", "true")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    serving(&base);
    let asked = Instant::now();
    let (status, body) = curl(&["--max-time", "30", &format!("{base}/metrics")]);
    let took = asked.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    assert!(took < Duration::from_secs(9), "{took:?}");
    assert!(
        body.contains("dau_job_runs_total{job=\"nightly\"} 0"),
        "{body}"
    );
    assert!(!body.contains("dau_lake_last_partition"), "{body}");
    drop(hanging);
}

/// A second schedule on a symbolic link to a held state file is refused like one on the file
/// (its lock was the link's own), and a state later than now is warned of (the job sat idle,
/// silently, until then).
/// A state file saved with a byte order mark is read; an empty one is refused as a bad state (not
/// "bad config"), saying what it holds and how to start afresh.
#[test]
fn a_state_file_is_read_past_a_byte_order_mark_and_an_empty_one_is_explained() {
    let w = Workdir::new();
    let rows = setup(&w, "0 0 * * *");
    let today = Utc::now().date_naive();
    let state = last_success(&w, today - Days::new(2));
    std::fs::write(w.join("state.json"), format!("\u{feff}{state}")).unwrap();
    once(&w);
    let days = [today - Days::new(2), today - Days::new(1)];
    assert_eq!(exported(&w), dau_of(&rows, &days));
    std::fs::write(w.join("state.json"), "").unwrap();
    let run = w.run(&["schedule", "--state", "state.json", "--once"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("dau: bad schedule state (state.json): EOF while parsing"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("remove it to start the jobs afresh"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_link_to_a_held_state_is_refused_and_a_future_state_is_warned_of() {
    let w = Workdir::new();
    setup(&w, "0 0 * * *");
    std::fs::write(
        w.join("state.json"),
        "{\"nightly\": \"2999-01-01T00:00:00Z\"}",
    )
    .unwrap();
    let run = once(&w);
    assert!(
        run.stderr.contains(
            "job nightly: the state says it last fired at 2999-01-01 00:00:00 UTC, after now"
        ),
        "{}",
        run.stderr
    );
    std::os::unix::fs::symlink("state.json", w.join("link.json")).unwrap();
    let mut child = w
        .command(&["schedule", "--state", "state.json"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = child.id().to_string();
    let lock = w.join("state.json.lock");
    while !std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .contains(&pid)
    {
        assert!(
            Instant::now() < deadline,
            "the schedule never held its state"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = w.run(&["schedule", "--state", "link.json", "--once"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("another dau schedule (process"),
        "{}",
        second.stderr
    );
}
