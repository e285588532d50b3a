//! How `fleetdeck run` shows its progress: on a terminal, a bar per wave (final, sent, failed,
//! rate, time left) and a spinner saying what the rollout waits for; piped, as in a CI log, a
//! plain line per change and nothing that redraws. The summary stays on stdout either way.

mod pty;

use std::process::{Command, Stdio};

use pty::Tui;

fn journal() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fleetdeck-progress-{}.jsonl", uuid::Uuid::new_v4()))
}

#[test]
fn a_terminal_gets_a_bar_per_wave_and_a_spinner_while_the_rollout_waits() {
    let j = journal();
    let tui = Tui::start_with(
        &[
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
            "--waves",
            "2,rest",
            "--approve",
            "--yes",
        ],
        &[],
        j.clone(),
    );
    // Wave 1 passes and the rollout waits: a spinner says for what, with the command.
    let screen = tui.wait_for("waiting for approval (fleetdeck run --promote");
    assert!(screen.contains("wave 1/2 ["), "a bar per wave:\n{screen}");
    assert!(screen.contains("wave 2/2 ["), "a bar per wave:\n{screen}");
    assert!(
        screen.contains("2/2 final · 2 sent · 0 failed"),
        "the first wave's figures:\n{screen}"
    );
    assert!(screen.contains("0/4 final"), "the second waits:\n{screen}");
    assert!(
        screen.contains("/s · done"),
        "the rate, and nothing left:\n{screen}"
    );
    assert!(
        screen.contains("/s · ETA —"),
        "no time left reckoned yet:\n{screen}"
    );

    // The promotion comes from another shell, through the journal's mailbox.
    let records = fleetdeck::journal::read(&j).unwrap();
    let plan = fleetdeck::journal::unfinished(&records)
        .pop()
        .expect("the plan");
    let promoted = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["run", "--promote", &plan])
        .env("FLEETDECK_JOURNAL", &j)
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs");
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    let screen = tui.wait_for("outcome: SUCCEEDED");
    assert!(
        screen.contains("6/6 final") || screen.contains("4/4 final"),
        "{screen}"
    );
    assert!(
        !screen.contains("waiting for approval ("),
        "the spinner went when the wait ended:\n{screen}"
    );
    tui.expect_exit("the end of the run");
    let _ = std::fs::remove_file(&j);
}

#[test]
fn a_pipe_gets_a_plain_line_per_change_and_nothing_that_redraws() {
    let j = journal();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["run", "--demo", "--demo-speed", "300", "--ctx", "prod"])
        .args(["--action", "reboot", "--filter", "seattle", "--yes"])
        .env("FLEETDECK_JOURNAL", &j)
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for (device, end) in [
        ("sea-dock-cam-01", "COMPLETED"),
        ("sea-lab-devkit-01", "COMPLETED"),
        ("smd-ybj6e3wtfq4o4ejpe", "SUCCEEDED"),
    ] {
        for state in ["SENT", end] {
            let line = format!("{device} reboot {state}\n");
            assert!(stderr.contains(&line), "no {line:?} in:\n{stderr}");
        }
    }
    assert!(!stderr.contains('\r'), "nothing redraws a line: {stderr:?}");
    assert!(!stderr.contains("final ·"), "no bar: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no terminal escapes: {stderr:?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("outcome: SUCCEEDED"), "{stdout}");
    let _ = std::fs::remove_file(&j);
}
