//! `dau gen` and `dau demo`.

use std::collections::HashSet;

use crate::util::*;

#[test]
fn the_same_seed_gives_the_same_lake() {
    let w = Workdir::new();
    for out in ["a", "b"] {
        let run = w.run(&[
            "gen", "--out", out, "--users", "500", "--days", "5", "--seed", "9",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let (a, b) = (read_lake_rows(&w.join("a")), read_lake_rows(&w.join("b")));
    let sorted = |mut rows: Vec<Row>| {
        rows.sort();
        rows
    };
    assert_eq!(sorted(a.clone()), sorted(b));
    let run = w.run(&[
        "gen", "--out", "c", "--users", "500", "--days", "5", "--seed", "10",
    ]);
    assert_eq!(run.code, 0);
    assert_ne!(sorted(a.clone()), sorted(read_lake_rows(&w.join("c"))));

    // Realistic shape: several opens per active day, ids not sorted, sparse ids.
    assert!(
        a.windows(2).any(|p| p[0].1 > p[1].1),
        "rows are not sorted by user"
    );
    let users: HashSet<u64> = a.iter().map(|r| r.1).collect();
    assert!(
        a.len() > users.len(),
        "some users open the app more than once"
    );
    assert!(users.iter().max().unwrap() > &(1 << 32), "ids are sparse");
}

#[test]
fn gen_refuses_a_folder_that_is_not_empty() {
    let w = Workdir::new();
    std::fs::create_dir(w.join("full")).unwrap();
    std::fs::write(w.join("full/keep.txt"), "mine").unwrap();
    let run = w.run(&["gen", "--out", "full"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(w.join("full/keep.txt")).unwrap(),
        "mine"
    );
    // A file is said to be one (it was exit 3, "cannot create a partition folder"), and a day
    // that does not exist is said so (chrono's "input is out of range").
    let run = w.run(&["gen", "--out", "full/keep.txt"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("dau: --out full/keep.txt is a file: choose a new folder"),
        "{}",
        run.stderr
    );
    let run = w.run(&["gen", "--out", "new", "--start", "2024-02-30"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("give a day that exists, as YYYY-MM-DD"),
        "{}",
        run.stderr
    );
    assert!(!w.join("new").exists());
}

/// `--prefix` stays below `--out` (`../victim` replaced another lake's files, exit 0), a
/// `file://` URL is the folder it names (it made a folder `file:` here), the last day has a
/// four-digit year (a panic past it), and the users said are those in the lake.
#[test]
fn gen_writes_where_it_says_and_says_what_it_wrote() {
    let w = Workdir::new();
    let make =
        |args: &[&str]| w.run(&[&["gen", "--users", "50", "--days", "3"][..], args].concat());
    let run = make(&["--out", "victim"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = read_lake_rows(&w.join("victim"));
    for prefix in ["../victim", "/abs", "a//b", "_hidden", "a/.b"] {
        let run = make(&["--out", "new", "--prefix", prefix, "--seed", "7"]);
        assert_eq!(run.code, 2, "{prefix}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("--prefix {prefix}: '")),
            "{}",
            run.stderr
        );
    }
    assert_eq!(read_lake_rows(&w.join("victim")), before);
    assert!(!w.join("new").exists());

    let url = format!("file://{}", w.join("by-url").display());
    let run = make(&["--out", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read_lake_rows(&w.join("by-url")), before);
    assert!(!w.join("file:").exists());

    let run = make(&["--out", "late", "--start", "9999-12-30"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--start 9999-12-30 and --days 3 go past 9999-12-31"),
        "{}",
        run.stderr
    );

    // Of 50 users drawn, those who opened the app: as many as the files hold.
    let users: HashSet<u64> = before.iter().map(|r| r.1).collect();
    let run = make(&["--out", "again"]);
    let said = format!(
        "wrote {} events of {} users (of 50 drawn) over 3 days",
        before.len(),
        users.len()
    );
    assert!(run.stderr.contains(&said), "{said} in {}", run.stderr);
}

/// Demos started together (a newcomer's two terminals) each make or take the one sample lake:
/// all answer alike, no half-made copy is left, and the lake is the one `dau gen` makes.
#[test]
fn demos_at_once_share_one_whole_lake() {
    let w = Workdir::new();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let mut demo = w.command(&["demo", "--dir", "demo"]);
            demo.stdout(std::process::Stdio::piped());
            demo.stderr(std::process::Stdio::piped());
            demo.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<_> = runs
        .into_iter()
        .map(|run| run.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(output.stdout, outputs[0].stdout);
    }
    let later = w.run(&["demo", "--dir", "demo"]);
    assert!(
        later.stderr.contains("using the sample lake"),
        "{}",
        later.stderr
    );
    assert_eq!(later.stdout.as_bytes(), &outputs[0].stdout[..]);
    let names: Vec<String> = std::fs::read_dir(w.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["demo"]);
    let same = [
        "gen",
        "--out",
        "same",
        "--users",
        "20000",
        "--days",
        "60",
        "--start",
        "2024-05-01",
    ];
    assert_eq!(w.run(&same).code, 0);
    assert_eq!(
        read_lake_rows(&w.join("demo")),
        read_lake_rows(&w.join("same"))
    );
}

/// A lake `dau gen` made of another shape is not the demo's (the demo called it a lake of 20000
/// users, and showed its numbers).
#[test]
fn the_demo_takes_no_other_lake_made_by_dau() {
    let w = Workdir::new();
    let made = w.run(&["gen", "--out", "other", "--users", "500", "--days", "3"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let run = w.run(&["demo", "--dir", "other"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "dau: other holds another lake made by dau (500 users over 3 days from 2024-06-01, seed \
         42, 1 file(s) a day, Date layout, Int64 ids): choose another folder\n"
    );
    // An older dau's marker is empty: its lake is the sample one only if it has its days (it
    // was taken for a lake of 20000 users over 60 days, and most of its rows were NULL).
    std::fs::write(w.join("other/.dau-gen-complete"), "").unwrap();
    let run = w.run(&["demo", "--dir", "other"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "dau: other holds another lake made by dau: choose another folder\n"
    );
    let run = w.run(&["demo", "--dir", "demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(w.join("demo/.dau-gen-complete"), "").unwrap();
    let again = w.run(&["demo", "--dir", "demo"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        !again.stderr.contains("made a sample lake"),
        "{}",
        again.stderr
    );
    assert_eq!(again.stdout, run.stdout);
}

/// A sample lake damaged since it was made: the demo says to remove it (its hints offered
/// --skip-bad-files, which the demo does not take, and `dau check`, which does not read it).
#[test]
fn a_damaged_demo_lake_is_said_to_be_removed() {
    let w = Workdir::new();
    let run = w.run(&["demo", "--dir", "demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(w.join("demo/date=2024-06-20/part-00000.parquet"), "").unwrap();
    let run = w.run(&["demo", "--dir", "demo"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let demo = "demo";
    assert!(
        run.stderr.contains(&format!(
            "the sample lake in {demo} is damaged (bad data file"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("remove {demo} and run dau demo again")),
        "{}",
        run.stderr
    );
}

#[test]
fn demo_makes_its_lake_once_and_shows_the_metrics() {
    let w = Workdir::new();
    let first = w.run(&["demo", "--dir", "demo"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first.stderr.contains("made a sample lake"),
        "{}",
        first.stderr
    );
    for needle in ["stickiness", "opens_per_user_p90", "dau query dau --lake"] {
        assert!(
            first.stdout.contains(needle),
            "{needle} in\n{}",
            first.stdout
        );
    }
    // A lake given is not the one shown, and is said not to be (it was ignored in silence).
    let second = w.run(&["demo", "--dir", "demo", "--lake", "mine"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains("using the sample lake"),
        "{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains("shows its own sample lake, not mine"),
        "{}",
        second.stderr
    );
    assert_eq!(first.stdout, second.stdout);
    // The numbers it shows are the lake's: check the last day's dau against the files.
    let rows = read_lake_rows(&w.join("demo"));
    let last = rows.iter().map(|r| r.0).max().unwrap();
    let dau = rows
        .iter()
        .filter(|r| r.0 == last)
        .map(|r| r.1)
        .collect::<HashSet<_>>()
        .len();
    let line = first
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("│ {last}")))
        .unwrap();
    assert!(
        line.contains(&format!(" {dau} ")),
        "{line} should show dau {dau}"
    );
}

/// A cache folder that cannot be written (here a file stands where it would be): the demo makes
/// its lake in the temporary folder instead, and says where.
#[test]
fn demo_without_a_writable_cache_uses_the_temporary_folder() {
    let w = Workdir::new();
    std::fs::write(w.join("not-a-folder"), "").unwrap();
    std::fs::create_dir(w.join("tmp")).unwrap();
    let run: Run = w
        .command(&["demo"])
        .env("XDG_CACHE_HOME", w.join("not-a-folder"))
        .env("TMPDIR", w.join("tmp"))
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lake = w.join("tmp/dau-demo-lake-v1");
    assert!(
        run.stderr.contains(&format!(
            "made a sample lake of 20000 users over 60 days (2024-05-01 to 2024-06-29) in {}",
            lake.display()
        )),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("opens_per_user_p90"), "{}", run.stdout);
    assert_eq!(
        std::fs::read_dir(w.join("tmp")).unwrap().count(),
        1,
        "no half-made lake left"
    );
}

#[test]
fn demo_leaves_a_folder_of_other_files_alone() {
    let w = Workdir::new();
    std::fs::create_dir(w.join("mine")).unwrap();
    std::fs::write(w.join("mine/notes.txt"), "keep").unwrap();
    let run = w.run(&["demo", "--dir", "mine"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("holds no lake made by dau"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(w.join("mine/notes.txt")).unwrap(),
        "keep"
    );
}
