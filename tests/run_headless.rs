//! `fleetdeck run` as a script would call it: no terminal, JSON out, exit status in.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    let journal =
        std::env::temp_dir().join(format!("fleetdeck-run-{}.jsonl", uuid::Uuid::new_v4()));
    Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .arg("run")
        // The demo's prod account, which these tests know device by device.
        .args(["--demo", "--demo-speed", "300", "--ctx", "prod"])
        .args(args)
        .env("FLEETDECK_JOURNAL", &journal)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("fleetdeck runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_mixed_reboot_reports_every_device_and_succeeds() {
    let out = run(&[
        "--action", "reboot", "--filter", "seattle", "--yes", "--output", "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = json(&out);
    let devices = summary["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 6);
    assert_eq!(summary["succeeded"], 6);
    assert_eq!(
        devices
            .iter()
            .filter(|d| d["service"] == "panorama")
            .count(),
        4
    );
    for d in devices {
        assert!(
            ["COMPLETED", "SUCCEEDED"].contains(&d["state"].as_str().unwrap()),
            "{d}"
        );
        assert!(d["resource_id"].is_string(), "{d}");
    }
}

#[test]
fn an_unlock_reads_lock_states_first_and_skips_unlocked_devices() {
    // Portland has two locked Snow devices and one unlocked, unreachable one: sent an unlock,
    // that one would time out and fail the run.
    let out = run(&[
        "--action", "unlock", "--filter", "portland", "--yes", "--output", "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("skipped: smd-d1brbtjfkhaoo9a48 — already unlocked"),
        "{stderr}"
    );
    let summary = json(&out);
    let mut ids: Vec<&str> = summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["smd-hrdslj0if9xa9j60j", "smd-nt46eykkq6z8tzvky"]);
    assert_eq!(summary["succeeded"], 2);
}

#[test]
fn a_failed_device_makes_the_exit_status_non_zero() {
    let out = run(&[
        "--action",
        "ota",
        "--devices",
        "sea-lobby-cam-01,pdx-yard-cam-01",
        "--allow-major",
        // Preflight would leave the offline appliance out: sent anyway, it fails.
        "--include-skipped",
        "--yes",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let summary = json(&out);
    assert_eq!(summary["failed"], 1);
    let states: Vec<(&str, &str)> = summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["state"].as_str().unwrap()))
        .collect();
    // The appliance on 4.3.93 takes the major update to the prefilled 5.0.21; the offline one fails.
    assert_eq!(
        states,
        vec![
            ("sea-lobby-cam-01", "COMPLETED"),
            ("pdx-yard-cam-01", "FAILED")
        ]
    );
    // The service says nothing of why; the summary names the likely reason.
    let offline = &summary["devices"][1];
    assert_eq!(
        offline["error"], "likely: the appliance is offline",
        "{offline}"
    );
    assert_eq!(summary["outcome"], "PARTIAL");
}

#[test]
fn without_yes_and_without_a_terminal_it_refuses() {
    let out = run(&["--action", "reboot", "--all"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin is not a terminal"), "{err}");
    assert!(out.stdout.is_empty(), "nothing was reported as done");
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    let out = run(&[
        "--action",
        "unlock",
        "--all",
        "--description",
        "open; now",
        "--yes",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ';'"));
    let out = run(&["--action", "reboot", "--devices", "no-such-device", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-device"));
    let out = run(&["--action", "reboot", "--all", "--yes", "--read-only"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--read-only"));
}
