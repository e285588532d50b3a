//! Staged rollouts headless, against a simulator that outlives each run: a failing OTA
//! aborted by its gate after the first wave, waves that wait for each other, a breach that
//! pauses and an abort while paused (asked from another shell), an approval, a retry of the
//! rest, and a crash mid-wave resumed at that wave. The simulator's ledger is the judge.

use std::collections::HashMap;
use std::path::PathBuf;

use std::time::{Duration, Instant};

mod headless;

use headless::{command, creates, output, read_until, summary, text};

use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};

fn journal() -> PathBuf {
    headless::journal("roll")
}

/// `n` online appliances on 5.0.10, named cam-00…; those in `failing` fail every OTA. The
/// service offers 5.0.21 and 5.0.30, which fails to install everywhere.
fn fleet(n: usize, failing: &[usize]) -> String {
    let mut toml = String::from(
        "[panorama]\nimages = [\"5.0.10\", \"5.0.21\"]\nfailing_images = [\"5.0.30\"]\n",
    );
    for i in 0..n {
        toml.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.10\"\nota_fails = {}\n",
            failing.contains(&i)
        ));
    }
    toml
}

async fn sim(toml: String, quotas: QuotaMode, speed: f64) -> SimHandle {
    fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(toml),
        quotas,
        busy_conflicts: false,
        speed,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

fn states(summary: &serde_json::Value) -> HashMap<String, String> {
    summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn id_of(summary: &serde_json::Value, name: &str) -> String {
    summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .map(|d| d["device"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{name} is in the summary"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_ota_is_aborted_by_the_gate_after_the_first_wave() {
    let sim = sim(fleet(6, &[]), QuotaMode::Off, 300.0).await;
    let j = journal();
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "ota",
            "--image-version",
            "5.0.30",
            "--all",
            "--waves",
            "2,100%",
            "--max-failed",
            "50%",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "aborted by a gate: exit 3\n{stderr}"
    );
    let s = summary(&out);
    assert_eq!(s["outcome"], "ABORTED", "{s}");
    // Exactly the first wave's two jobs were sent; the other four never were.
    assert_eq!(
        creates(&sim).values().sum::<usize>(),
        2,
        "{:?}",
        sim.ledger()
    );
    let st = states(&s);
    assert_eq!(st.values().filter(|v| *v == "FAILED").count(), 2, "{st:?}");
    assert_eq!(st.values().filter(|v| *v == "SKIPPED").count(), 4, "{st:?}");
    let verdicts: Vec<&str> = s["rollout"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, vec!["breached", "aborted"], "{s}");
    assert!(
        stderr.contains("BREACHED"),
        "the gate's decision is a line: {stderr}"
    );
    // The gate's numbers: the first failure already breaks 50% (min done is 1); both may come
    // in one poll, and either way the gate decides before wave 2.
    assert!(
        stderr.contains("1 failed of 1 finished") || stderr.contains("2 failed of 2 finished"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wave_starts_only_after_the_last_one_finished() {
    let sim = sim(fleet(20, &[]), QuotaMode::Off, 300.0).await;
    let j = journal();
    let out = output(
        &sim,
        &j,
        &[
            "--action", "reboot", "--all", "--waves", "1,5,rest", "--yes", "--output", "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "SUCCEEDED", "{s}");
    let waves: Vec<Vec<String>> = s["rollout"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            w.as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    let sizes: Vec<usize> = waves.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![1, 5, 14]);
    let ledger = sim.ledger();
    let create = |device: &String| {
        ledger
            .iter()
            .find(|e| e.operation == "CreateJobForDevices" && &e.device_id == device)
            .unwrap_or_else(|| panic!("{device} was sent to"))
    };
    assert!(creates(&sim).values().all(|n| *n == 1), "{ledger:?}");
    for k in 1..waves.len() {
        // In the simulator's own time: the last job of wave k ended before the first create
        // of wave k + 1.
        let last_end = waves[k - 1]
            .iter()
            .map(|d| sim.job_end(&create(d).resource_id).unwrap())
            .fold(f64::MIN, f64::max);
        let first_send = waves[k]
            .iter()
            .map(|d| create(d).at)
            .fold(f64::MAX, f64::min);
        assert!(
            first_send >= last_end,
            "wave {} began at {first_send} before wave {k} ended at {last_end}",
            k + 1
        );
    }
    assert_eq!(stderr.matches("passed").count(), 2, "{stderr}");
    let _ = std::fs::remove_file(&j);
}

fn plan_id(seen: &str) -> String {
    let at = seen.find("--promote ").expect("the hint names the plan") + "--promote ".len();
    seen[at..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_pauses_then_an_abort_while_paused_stops_it_and_retry_sends_the_rest() {
    // cam-01 fails every OTA: wave 1 (cam-00, cam-01) has one success and one failure.
    let sim = sim(fleet(6, &[1]), QuotaMode::Off, 300.0).await;
    let j = journal();
    let mut child = command(
        &sim,
        &j,
        &[
            "--action",
            "ota",
            "--image-version",
            "5.0.21",
            "--all",
            "--waves",
            "2,rest",
            "--on-breach",
            "pause",
            "--yes",
            "--output",
            "json",
        ],
    )
    .spawn()
    .expect("fleetdeck starts");
    let mut seen = String::new();
    read_until(&mut child, "rollout paused", &mut seen);
    read_until(&mut child, "--abort", &mut seen);
    let plan = plan_id(&seen);
    // Paused: nothing more is sent while it waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(creates(&sim).values().sum::<usize>(), 2);

    // Asked from another shell, taken by the paused run.
    let asked = output(&sim, &j, &["--abort", &plan]);
    assert!(asked.status.success(), "{}", text(&asked.stderr));
    assert!(
        text(&asked.stderr).contains("abort: applied by process"),
        "{}",
        text(&asked.stderr)
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    seen.push_str(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{seen}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "ABORTED", "{s}");
    assert_eq!(creates(&sim).values().sum::<usize>(), 2);
    let verdicts: Vec<&str> = s["rollout"]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, vec!["breached", "paused", "aborted"], "{s}");

    // Retry the rest: the failed appliance and the four never sent, not the one that took
    // the update. All at once this time.
    let (good, bad) = (id_of(&s, "cam-00"), id_of(&s, "cam-01"));
    let out = output(
        &sim,
        &j,
        &[
            "--retry", &plan, "--waves", "rest", "--yes", "--output", "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "cam-01 fails again: {stderr}");
    let retried = summary(&out);
    assert_eq!(retried["devices"].as_array().unwrap().len(), 5, "{retried}");
    let per = creates(&sim);
    assert_eq!(per[&good], 1, "{per:?}");
    assert_eq!(per[&bad], 2, "{per:?}");
    assert_eq!(per.values().sum::<usize>(), 7, "{per:?}");
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_gate_waits_for_a_promotion_from_another_shell() {
    let sim = sim(fleet(3, &[]), QuotaMode::Off, 300.0).await;
    let j = journal();
    let mut child = command(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--waves",
            "1,rest",
            "--approve",
            "--yes",
        ],
    )
    .spawn()
    .expect("fleetdeck starts");
    let mut seen = String::new();
    read_until(&mut child, "waiting for approval", &mut seen);
    read_until(&mut child, "--promote", &mut seen);
    let plan = plan_id(&seen);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(creates(&sim).values().sum::<usize>(), 1, "wave 2 waits");
    let asked = output(&sim, &j, &["--promote", &plan]);
    assert!(asked.status.success(), "{}", text(&asked.stderr));
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    seen.push_str(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(
        text(&out.stdout).contains("outcome: SUCCEEDED"),
        "{}",
        text(&out.stdout)
    );
    assert!(seen.contains("promoted"), "{seen}");
    assert_eq!(creates(&sim).values().sum::<usize>(), 3);
    // With nobody running it, a promotion says so instead of waiting.
    let asked = output(&sim, &j, &["--promote", &plan]);
    assert!(!asked.status.success());
    let _ = std::fs::remove_file(&j);
}

/// Reboots every appliance staged as `staging` says, and SIGKILLs the run once the ledger
/// holds `n` jobs: a crash, with nothing written after it.
async fn kill_after(sim: &SimHandle, j: &std::path::Path, staging: &[&str], n: usize) {
    let mut args = vec!["--action", "reboot", "--all", "--yes"];
    args.extend_from_slice(staging);
    let mut child = command(sim, j, &args).spawn().expect("fleetdeck starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while creates(sim).values().sum::<usize>() < n {
        assert!(Instant::now() < deadline, "{n} creates were not sent");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ended early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_wave_resumes_at_that_wave_without_resending() {
    // AWS quotas: one create a second, so the second wave is caught half sent.
    let sim = sim(fleet(6, &[]), QuotaMode::Aws, 300.0).await;
    let j = journal();
    kill_after(&sim, &j, &["--waves", "2,rest"], 3).await;
    let sent = creates(&sim).values().sum::<usize>();
    assert!(sent < 6, "the kill came too late: {sent}");

    let out = output(&sim, &j, &["--resume", "--yes", "--output", "json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "SUCCEEDED", "{s}");
    // Every appliance exactly once, and the resume went on with wave 2: no wave 1 again.
    let per = creates(&sim);
    assert_eq!(per.len(), 6, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    assert!(!stderr.contains("wave 1/2: sending"), "{stderr}");
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snow_waves_wait_for_each_device_to_reach_out_after_its_reboot() {
    let mut toml = String::from("[panorama]\nimages = [\"5.0.21\"]\n");
    for i in 0..4 {
        toml.push_str(&format!(
            "[[snow.devices]]\nid = \"smd-rollout{i:010}\"\nsoftware = \"7.1.0\"\n"
        ));
    }
    // One device silent for days: preflight leaves it out, so the rollout is PARTIAL.
    toml.push_str(
        "[[snow.devices]]\nid = \"smd-silent00000000\"\nsoftware = \"7.1.0\"\nreachable = false\n",
    );
    let sim = sim(toml, QuotaMode::Off, 300.0).await;
    let j = journal();
    let out = output(
        &sim,
        &j,
        &[
            "--action", "reboot", "--all", "--waves", "1,rest", "--yes", "--output", "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "PARTIAL: one left out\n{stderr}"
    );
    let s = summary(&out);
    assert_eq!(s["outcome"], "PARTIAL", "{s}");
    let devices = s["devices"].as_array().unwrap();
    let healthy = devices.iter().filter(|d| d["health"] == "healthy").count();
    assert_eq!(healthy, 4, "every rebooted device reached out again: {s}");
    let silent = devices
        .iter()
        .find(|d| d["device"] == "smd-silent00000000")
        .unwrap();
    assert_eq!(silent["state"], "SKIPPED");
    assert!(
        silent["error"].as_str().unwrap().contains("not heard from"),
        "{silent}"
    );
    // Two waves: two tasks, and the silent device was never a target.
    let tasks: Vec<_> = sim
        .ledger()
        .into_iter()
        .filter(|e| e.operation == "CreateTask")
        .collect();
    assert_eq!(tasks.len(), 4, "one ledger line per target: {tasks:?}");
    let ids: std::collections::HashSet<_> = tasks.iter().map(|e| e.resource_id.clone()).collect();
    assert_eq!(ids.len(), 2, "{tasks:?}");
    assert!(tasks.iter().all(|e| e.device_id != "smd-silent00000000"));
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_while_the_canary_runs_resumes_by_waiting_for_it() {
    // Slow enough that the canary's reboot is still running when the process dies.
    let sim = sim(fleet(3, &[]), QuotaMode::Off, 30.0).await;
    let j = journal();
    kill_after(&sim, &j, &["--waves", "1,rest"], 1).await;
    let canary = sim.ledger()[0].clone();
    assert!(
        sim.job_end(&canary.resource_id).unwrap() > canary.at + 1.0,
        "the canary still runs"
    );

    let out = output(&sim, &j, &["--resume", "--yes", "--output", "json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "SUCCEEDED", "{s}");
    // The canary is followed again, not resent, and the rest waited for its end.
    let per = creates(&sim);
    assert_eq!(per.len(), 3, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    let canary_end = sim.job_end(&canary.resource_id).unwrap();
    for e in sim.ledger().iter().skip(1) {
        assert!(e.at >= canary_end, "{e:?} was sent before the canary ended");
    }
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_in_the_last_wave_with_nothing_left_to_hold_ends_the_rollout() {
    // cam-02 alone is the last wave, and its OTA fails: the gate breaks with --on-breach
    // pause, but every device has been sent and has ended, so nothing is left for a word to
    // change. The rollout ends PARTIAL rather than wait for ever, and the plan's end comes
    // after the gate's records.
    let sim = sim(fleet(3, &[2]), QuotaMode::Off, 300.0).await;
    let j = journal();
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "ota",
            "--image-version",
            "5.0.21",
            "--all",
            "--waves",
            "2,rest",
            "--on-breach",
            "pause",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "PARTIAL", "{s}");
    let records = fleetdeck::journal::read(&j).unwrap();
    let end = records
        .iter()
        .position(|r| matches!(r, fleetdeck::journal::Record::End { .. }))
        .expect("the plan ended");
    let last_gate = records
        .iter()
        .rposition(|r| matches!(r, fleetdeck::journal::Record::Gate { .. }))
        .expect("the gate decided");
    assert!(last_gate < end, "{records:?}");
    let _ = std::fs::remove_file(&j);
}
