//! What a command-line tool is expected to give besides its work: shell completions and a
//! manual page made from the same flags, and a log file that never touches the screen.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fleetdeck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("FLEETDECK_LOG")
        .env_remove("FLEETDECK_LOG_LEVEL")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fleetdeck-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bash_loads_the_completions_and_they_know_every_subcommand() {
    let out = fleetdeck(&["completions", "bash"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let script = text(&out.stdout);
    for word in [
        "run",
        "sim",
        "journal",
        "completions",
        "man",
        "--demo",
        "--log-level",
    ] {
        assert!(
            script.contains(word),
            "{word} missing from the bash completions"
        );
    }
    // Bash itself reads the script and registers it for the command.
    let dir = scratch();
    let file = dir.join("fleetdeck.bash");
    std::fs::write(&file, &script).unwrap();
    let registered = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p fleetdeck",
            file.display()
        ))
        .output()
        .expect("bash runs");
    assert!(registered.status.success(), "{}", text(&registered.stderr));
    assert!(
        text(&registered.stdout).contains("fleetdeck"),
        "{}",
        text(&registered.stdout)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn zsh_and_fish_completions_are_their_shells_own() {
    let zsh = fleetdeck(&["completions", "zsh"]);
    assert!(zsh.status.success());
    assert!(text(&zsh.stdout).starts_with("#compdef fleetdeck"));
    let fish = fleetdeck(&["completions", "fish"]);
    assert!(fish.status.success());
    assert!(
        text(&fish.stdout).contains("complete -c fleetdeck -n \"__fish_fleetdeck_needs_command\""),
        "{}",
        text(&fish.stdout)
    );
    // An unknown shell is refused with the ones there are.
    let bad = fleetdeck(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("possible values: bash"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn the_manual_page_has_the_flags_and_the_files() {
    let out = fleetdeck(&["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains(".TH fleetdeck 1"), "{page}");
    for flag in [r"\-\-demo", r"\-\-read\-only", r"\-\-log\-level"] {
        assert!(page.contains(flag), "{flag} missing");
    }
    assert!(page.contains(".SH FILES"), "{page}");
    assert!(page.contains("journal.jsonl") && page.contains("fleetdeck.log"));

    // One page per command, written where asked.
    let dir = scratch().join("man1");
    let out = fleetdeck(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for page in [
        "fleetdeck.1",
        "fleetdeck-run.1",
        "fleetdeck-sim.1",
        "fleetdeck-journal.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} not written");
    }
    let run = std::fs::read_to_string(dir.join("fleetdeck-run.1")).unwrap();
    assert!(run.contains(r"\-\-resume"), "{run}");
    let root = std::fs::read_to_string(dir.join("fleetdeck.1")).unwrap();
    assert!(root.contains(".SH FILES"));
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

fn demo_reboot(log_args: &[&str], dir: &std::path::Path) -> Output {
    let journal = dir.join("journal.jsonl");
    let mut args = vec![
        "run",
        "--demo",
        "--demo-speed",
        "300",
        "--ctx",
        "prod",
        "--action",
        "reboot",
        "--filter",
        "seattle",
        "--yes",
    ];
    args.extend_from_slice(log_args);
    Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(&args)
        .env("FLEETDECK_JOURNAL", journal)
        .env_remove("RUST_BACKTRACE")
        .env_remove("FLEETDECK_LOG")
        .env_remove("FLEETDECK_LOG_LEVEL")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs")
}

#[test]
fn the_log_records_the_plan_and_every_operation_and_stays_off_the_screen() {
    let dir = scratch();
    let log = dir.join("logs").join("fleetdeck.log");
    let out = demo_reboot(&["--log-file", log.to_str().unwrap()], &dir);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let written = std::fs::read_to_string(&log).expect("the log file is written");
    assert!(written.contains("fleetdeck started"), "{written}");
    assert!(written.contains("plan started"), "{written}");
    // Every device the run reports has its final state in the log, with its job or task.
    let succeeded: Vec<&str> = written
        .lines()
        .filter(|l| l.contains("operation") && l.contains("state=Succeeded"))
        .collect();
    assert_eq!(succeeded.len(), 6, "{written}");
    assert!(
        succeeded.iter().all(|l| l.contains("resource=Some(")),
        "{written}"
    );
    // Nothing of it on the screen.
    for said in [text(&out.stdout), stderr] {
        assert!(!said.contains(" INFO "), "{said}");
        assert!(!said.contains("plan started"), "{said}");
    }

    // Unnamed, the log goes beside the journal in use.
    let beside = dir.join("fleetdeck.log");
    assert!(!beside.exists());
    let out = demo_reboot(&[], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&beside).expect("the log is beside the journal");
    assert!(written.contains("plan started"), "{written}");

    // Off writes nothing at all.
    let quiet = dir.join("quiet.log");
    let out = demo_reboot(
        &["--log-file", quiet.to_str().unwrap(), "--log-level", "off"],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!quiet.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_log_that_cannot_be_opened_is_named_with_the_way_around_and_nothing_is_sent() {
    let dir = scratch();
    // A directory where the file should be: it cannot be opened for appending.
    let log = dir.join("taken");
    std::fs::create_dir_all(&log).unwrap();
    let out = demo_reboot(&["--log-file", log.to_str().unwrap()], &dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "Error: cannot open the log file {}: pass --log-file PATH, or --log-level off",
            log.display()
        )),
        "{stderr}"
    );
    assert!(!dir.join("journal.jsonl").exists(), "nothing was planned");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `fleetdeck man | head` and `fleetdeck completions bash | head`: the reader closes the
/// pipe early, and fleetdeck ends quietly instead of printing an error or a panic.
#[test]
fn a_reader_that_stops_early_gets_no_error() {
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["completions", "fish"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fleetdeck runs");
        // Closed before a byte is read: every write fails with EPIPE.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
