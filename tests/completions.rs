//! `dau completions SHELL`: the script, sourced in a real bash, completes subcommands, metrics and
//! flag values; it needs no lake and no good dau.toml.

use std::process::Command;

use crate::util::Workdir;

/// What bash's completion offers for the words typed so far (the last one being completed).
fn offered(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let last = words.len() - 1;
    let shell = format!(
        "source '{}'; COMP_WORDS=({line}); COMP_CWORD={last}; \
         _dau dau '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words[last],
        words[last - 1],
    );
    let out = Command::new("bash").args(["-c", &shell]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_complete_commands_metrics_and_values_in_bash() {
    let w = Workdir::new();
    // A dau.toml that cannot be read does not stop it.
    std::fs::write(w.join("dau.toml"), "[lake\n").unwrap();
    let run = w.run(&["completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let script = w.join("dau.bash");
    std::fs::write(&script, &run.stdout).unwrap();

    assert_eq!(offered(&script, &["dau", "qu"]), ["query"]);
    // Flags as --help shows them: none it hides (a setting of the tests' was offered).
    let offered_flags = offered(&script, &["dau", "query", "--pro"]);
    assert!(
        !offered_flags.iter().any(|f| f.contains("progress")),
        "{offered_flags:?}"
    );
    assert!(!run.stdout.contains("progress-after"));
    assert_eq!(offered(&script, &["dau", "s"]), ["schedule", "sql"]);
    let metrics = offered(&script, &["dau", "query", ""]);
    for metric in ["dau", "wau", "mau", "opens", "stickiness", "user-days"] {
        assert!(metrics.iter().any(|m| m == metric), "{metrics:?}");
    }
    assert_eq!(
        offered(&script, &["dau", "query", "dau", "--format", ""]),
        ["table", "csv", "json", "ndjson", "parquet"]
    );
    assert_eq!(
        offered(&script, &["dau", "query", "dau", "--engine", ""]),
        ["auto", "sql", "bitmap"]
    );

    for shell in ["zsh", "fish", "ZSH"] {
        let run = w.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("schedule"), "{shell}");
    }
    let run = w.run(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("possible values"), "{}", run.stderr);
}
