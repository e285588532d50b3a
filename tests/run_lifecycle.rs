//! `fleetdeck run` through the whole lifecycle against a simulator that outlives it: a
//! repeated target, an empty filter, a SIGINT mid-rollout and `--resume`, a rerun that would
//! overlap the stopped plan. The simulator's ledger is the judge of exactly once.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

mod headless;

use headless::{command, output, text};

use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn journal() -> PathBuf {
    headless::journal("life")
}

/// Jobs and tasks created per device, from the ledger.
fn sends(sim: &SimHandle) -> HashMap<String, usize> {
    let mut per_device = HashMap::new();
    for e in sim.ledger() {
        if matches!(e.operation, "CreateJobForDevices" | "CreateTask") {
            *per_device.entry(e.device_id.clone()).or_default() += 1;
        }
    }
    per_device
}

async fn sim(quotas: QuotaMode) -> SimHandle {
    fleetdeck::sim::start(SimConfig {
        quotas,
        // A second send would be a second job, not a 409: only the ledger decides.
        busy_conflicts: false,
        // Fast enough that reboots end within the test, slow enough to be caught mid-way.
        speed: 60.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_named_twice_gets_one_job_and_the_run_ends() {
    let sim = sim(QuotaMode::Off).await;
    let j = journal();
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--devices",
            "sea-dock-cam-01,sea-dock-cam-01,device-ptgz4jfebz9sdo78xrlgqnbqrm",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // sea-dock-cam-01 is device-ptgz…: a name and an id of one device are one target.
    assert_eq!(summary["devices"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(sends(&sim).values().sum::<usize>(), 1, "{:?}", sim.ledger());
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_blank_filter_is_refused_and_nothing_is_sent() {
    let sim = sim(QuotaMode::Off).await;
    let j = journal();
    for filter in ["", "   ", "! status:"] {
        let out = output(
            &sim,
            &j,
            &["--action", "reboot", "--filter", filter, "--yes"],
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--all"),
            "the refusal names the fix: {stderr}"
        );
    }
    assert!(sim.ledger().is_empty());
}

/// Waits until the ledger holds at least `n` sends.
async fn until_sent(sim: &SimHandle, n: usize, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.ledger().len() < n {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(e) = child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("fleetdeck ended early ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "the rollout did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_rollout_pauses_and_resume_finishes_exactly_once() {
    // AWS quotas: 1 create a second, so 14 appliances take 14 s and SIGINT lands mid-way.
    let sim = sim(QuotaMode::Aws).await;
    let j = journal();
    let mut child = command(
        &sim,
        &j,
        // Every device, those preflight would leave out too: the ledger judges all 23.
        &[
            "--action",
            "reboot",
            "--all",
            "--include-skipped",
            "--yes",
            "--output",
            "json",
        ],
    )
    .spawn()
    .expect("fleetdeck starts");
    until_sent(&sim, 3, &mut child).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "interrupted, resumable: exit 130\n{stderr}"
    );
    assert!(stderr.contains("SIGINT: stopping"), "{stderr}");
    assert!(stderr.contains("fleetdeck run --resume"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paused = summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "PAUSED")
        .count();
    let sent_before = sim.ledger().len();
    assert!(paused > 0, "the SIGINT came too late: {summary}");
    assert!(sent_before < 23, "{sent_before}");
    // Nothing is sent after the stop: the ledger does not move.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.ledger().len(), sent_before);

    // A rerun that would overlap the stopped plan is refused, naming it; nothing is sent.
    let out = output(&sim, &j, &["--action", "reboot", "--all", "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("OverlapsUnfinishedPlan"), "{stderr}");
    assert!(stderr.contains("fleetdeck run --resume"), "{stderr}");
    assert_eq!(sim.ledger().len(), sent_before);

    // Resumed headless: every device exactly once, all done (an offline appliance's job
    // fails and an unreachable Snow device's execution times out: final, if not succeeded).
    let out = output(&sim, &j, &["--resume", "--yes", "--output", "json"]);
    let stderr = text(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for d in summary["devices"].as_array().unwrap() {
        assert!(
            ["COMPLETED", "SUCCEEDED", "FAILED", "TIMED_OUT"]
                .contains(&d["state"].as_str().unwrap()),
            "{d}"
        );
    }
    let per_device = sends(&sim);
    assert_eq!(
        per_device.len(),
        23,
        "every device was sent to: {per_device:?}"
    );
    assert!(
        per_device.values().all(|n| *n == 1),
        "a device got two operations: {per_device:?}"
    );
    // Nothing is left to resume.
    let out = output(&sim, &j, &["--resume", "--yes"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("nothing to resume"), "{stderr}");
    let _ = std::fs::remove_file(&j);
}

/// What a headless unlock of every locked Snow device costs, call by call: each device read
/// once (its lock state, before choosing), one CreateTask per ten, a bounded number of
/// ListExecutions, and nothing at all to Panorama: neither the action nor the filter can
/// take an appliance, so appliances are not even listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_reads_each_device_once_and_sends_nothing_more_to_panorama() {
    let sim = fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: 30,
            snow: 45,
        },
        quotas: QuotaMode::Off,
        speed: 300.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts");
    let j = journal();
    let started = Instant::now();
    let out = output(
        &sim,
        &j,
        &[
            "--action", "unlock", "--filter", "svc:snow", "--yes", "--output", "json",
        ],
    );
    let took = started.elapsed();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stderr)));
    let sent = summary["devices"]
        .as_array()
        .expect("a devices list")
        .iter()
        .filter(|d| d["resource_id"].is_string())
        .count();
    assert!(
        sent >= 10,
        "only {sent} unlocks sent: {}",
        text(&out.stderr)
    );
    let calls = sim.calls();
    let n = |op: &str| calls.get(op).copied().unwrap_or(0);
    assert_eq!(n("snow-device-management:DescribeDevice"), 45, "{calls:?}");
    assert_eq!(
        n("snow-device-management:CreateTask"),
        sent.div_ceil(10) as u64,
        "{calls:?}"
    );
    // 30 appliances are there to be listed, and are not.
    let panorama: u64 = calls
        .iter()
        .filter(|(k, _)| k.starts_with("panorama:"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(panorama, 0, "{calls:?}");
    assert_eq!(n("snow-device-management:ListDevices"), 1, "{calls:?}");
    // At most one ListExecutions per task per 2 s poll, plus the first.
    let tasks = sent.div_ceil(10) as u64;
    let polls = took.as_secs() / 2 + 1;
    assert!(
        n("snow-device-management:ListExecutions") <= tasks * polls,
        "{} ListExecutions for {tasks} tasks in {took:?}",
        n("snow-device-management:ListExecutions")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_whose_every_operation_ended_without_its_end_is_closed_when_next_opened() {
    use fleetdeck::journal::Record;
    use fleetdeck::ops::OpState;
    let sim = sim(QuotaMode::Off).await;
    let j = journal();
    // A process stopped between its last operation's end and the plan's: every device has
    // its end, the plan none.
    let plan = "11111111-2222-4333-8444-555555555555";
    let records = [
        serde_json::json!({"record": "plan", "plan": plan, "at": 1, "action": "reboot",
            "region": "us-east-1", "endpoint": sim.endpoint,
            "devices": ["panorama:device-ptgz4jfebz9sdo78xrlgqnbqrm"]}),
        serde_json::json!({"record": "final", "plan": plan, "at": 2,
            "device": "device-ptgz4jfebz9sdo78xrlgqnbqrm", "state": "SUCCEEDED",
            "resource_id": "job-1"}),
    ];
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    std::fs::write(&j, lines.join("\n") + "\n").unwrap();
    assert_eq!(
        fleetdeck::journal::unfinished(&fleetdeck::journal::read(&j).unwrap()),
        vec![plan.to_string()]
    );
    // Opened by a run: nothing of it is left to resume, and it is closed.
    let out = output(&sim, &j, &["--resume", "--yes"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("nothing to resume"), "{stderr}");
    let after = fleetdeck::journal::read(&j).unwrap();
    assert!(
        fleetdeck::journal::unfinished(&after).is_empty(),
        "{after:?}"
    );
    assert!(matches!(after.last(), Some(Record::End { plan: p, .. }) if p == plan));
    assert!(matches!(
        after.get(1),
        Some(Record::Final {
            state: OpState::Succeeded,
            ..
        })
    ));
    assert!(sim.ledger().is_empty(), "nothing was sent");
    let _ = std::fs::remove_file(&j);
}
