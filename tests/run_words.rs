//! Words to a running rollout from another shell (`fleetdeck run --promote/--pause/--abort
//! PLAN`), each race made to happen on purpose: the owner held at its health check, at its
//! approval point and mid-wave. A word is applied exactly once, or refused with nothing
//! changed — never taken and dropped — and the run ends without a hang. Every decision
//! records its true cause: the operator who gave it, or the timeout that ran out.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

mod headless;

use fleetdeck::journal::{self, Record};
use fleetdeck::ops::rollout::{Cause, Verdict};
use fleetdeck::sim::{FaultRule, FleetSource, QuotaMode, SimConfig, SimHandle, TargetedFault};
use headless::{command, output, read_until, text};

/// `n` online appliances on 5.0.10, named cam-00…, offered 5.0.21.
fn fleet(n: usize) -> String {
    let mut toml = String::from("[panorama]\nimages = [\"5.0.10\", \"5.0.21\"]\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.10\"\n"
        ));
    }
    toml
}

async fn sim(toml: String, quotas: QuotaMode) -> SimHandle {
    fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(toml),
        quotas,
        busy_conflicts: false,
        speed: 300.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

fn creates(sim: &SimHandle) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for e in sim.ledger() {
        *per.entry(e.device_id.clone()).or_default() += 1;
    }
    per
}

fn sent(sim: &SimHandle) -> usize {
    sim.ledger().len()
}

/// The plan the journal holds (the one run under test).
fn plan_of(j: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(records) = journal::read(j)
            && let Some(Record::Plan { plan, .. }) =
                records.iter().find(|r| matches!(r, Record::Plan { .. }))
        {
            return plan.clone();
        }
        assert!(Instant::now() < deadline, "no plan in the journal");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A word from another shell, as a user types it.
async fn word(sim: &SimHandle, j: &Path, args: &[&str]) -> Output {
    let mut c = command(sim, j, args);
    tokio::task::spawn_blocking(move || c.output().expect("fleetdeck runs"))
        .await
        .unwrap()
}

async fn finish(child: Child, seen: &mut String) -> Output {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    seen.push_str(&text(&out.stderr));
    out
}

/// The gate records of the plan, in order.
fn gates(j: &Path, plan: &str) -> Vec<fleetdeck::ops::rollout::Decision> {
    journal::read(j)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Gate {
                plan: p, decision, ..
            } if p == plan => Some(decision),
            _ => None,
        })
        .collect()
}

fn by_another_shell(d: &fleetdeck::ops::rollout::Decision) -> bool {
    matches!(&d.by, Some(Cause::Operator { via, pid, .. }) if via == "another shell" && *pid != std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promote_while_the_health_is_read_is_refused_then_one_at_the_approval_point_applies_once()
{
    // A Snow device names the account in its listing, so no appliance is described to learn
    // it: the only DescribeDevice calls are the health checks.
    let toml = fleet(3) + "[[snow.devices]]\nid = \"smd-names0account0\"\nsoftware = \"7.1.0\"\n";
    let sim = sim(toml, QuotaMode::Off).await;
    // The canary's health check reads DescribeDevice: its first read is held past the call's
    // 10 s deadline, so the check is under way for that long and a promote lands in it.
    sim.add_fault(FaultRule::new(
        "panorama:DescribeDevice",
        1,
        TargetedFault::Delay(Duration::from_secs(15)),
    ))
    .unwrap();
    let j = headless::journal("words");
    let mut child = command(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--devices",
            "cam-00,cam-01,cam-02",
            "--waves",
            "1,rest",
            "--approve",
            "--yes",
        ],
    )
    .spawn()
    .expect("fleetdeck starts");
    let mut seen = String::new();
    read_until(&mut child, "checking the devices' health", &mut seen);
    let plan = plan_of(&j);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sim.faults()[0].hit {
        assert!(
            Instant::now() < deadline,
            "the health check never read the device"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let early = word(&sim, &j, &["--promote", &plan]).await;
    let said = text(&early.stderr);
    assert!(
        !early.status.success(),
        "refused: {said}\n--- the run said:\n{seen}\n--- faults: {:?}",
        sim.faults()
    );
    assert!(said.contains("refused"), "{said}");
    assert!(
        said.contains("nothing waits for a promotion yet") && said.contains("Nothing changed"),
        "{said}"
    );
    // The health check was still held when the word was refused: the journal has no gate
    // decision yet.
    assert!(gates(&j, &plan).is_empty(), "{:?}", gates(&j, &plan));

    read_until(&mut child, "waiting for approval", &mut seen);
    assert_eq!(sent(&sim), 1, "wave 2 waits for approval");
    let promoted = word(&sim, &j, &["--promote", &plan]).await;
    let said = text(&promoted.stderr);
    assert!(promoted.status.success(), "{said}");
    assert!(said.contains("promote: applied by process"), "{said}");

    let out = finish(child, &mut seen).await;
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(
        seen.contains("promote from "),
        "the run names the word: {seen}"
    );
    let per = creates(&sim);
    assert_eq!(per.len(), 3, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    // One promotion, by the other shell; the refused one changed nothing.
    let promotions: Vec<_> = gates(&j, &plan)
        .into_iter()
        .filter(|d| d.verdict == Verdict::Promoted)
        .collect();
    assert_eq!(promotions.len(), 1, "{promotions:?}");
    assert!(by_another_shell(&promotions[0]), "{promotions:?}");
    assert!(
        promotions[0].detail.contains("another shell"),
        "{promotions:?}"
    );
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_wave_a_promote_is_refused_a_pause_holds_and_promotes_go_on_exactly_once() {
    // AWS quotas: one create a second, so the first wave of eight is caught mid-way.
    let sim = sim(fleet(10), QuotaMode::Aws).await;
    let j = headless::journal("words");
    let mut child = command(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--waves",
            "8,rest",
            "--approve",
            "--yes",
        ],
    )
    .spawn()
    .expect("fleetdeck starts");
    let mut seen = String::new();
    read_until(&mut child, "wave 1/2: sending 8 devices", &mut seen);
    let plan = plan_of(&j);
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent(&sim) < 1 {
        assert!(Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let early = word(&sim, &j, &["--promote", &plan]).await;
    assert!(!early.status.success(), "{}", text(&early.stderr));
    assert!(
        text(&early.stderr).contains("promote once it waits for approval"),
        "{}",
        text(&early.stderr)
    );

    let paused = word(&sim, &j, &["--pause", &plan]).await;
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let held = sent(&sim);
    assert!(
        held < 8,
        "the pause came too late to test anything: {held} sent"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sent(&sim), held, "sent while paused");
    let again = word(&sim, &j, &["--pause", &plan]).await;
    assert!(!again.status.success(), "a second pause is refused");
    assert!(
        text(&again.stderr).contains("paused already"),
        "{}",
        text(&again.stderr)
    );

    let resumed = word(&sim, &j, &["--promote", &plan]).await;
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    read_until(&mut child, "waiting for approval", &mut seen);
    assert_eq!(sent(&sim), 8, "the first wave, and only it");
    let promoted = word(&sim, &j, &["--promote", &plan]).await;
    assert!(promoted.status.success(), "{}", text(&promoted.stderr));

    let out = finish(child, &mut seen).await;
    assert_eq!(out.status.code(), Some(0), "{seen}");
    let per = creates(&sim);
    assert_eq!(per.len(), 10, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    let verdicts: Vec<Verdict> = gates(&j, &plan)
        .into_iter()
        .filter(|d| d.verdict != Verdict::Passed)
        .map(|d| d.verdict)
        .collect();
    assert_eq!(
        verdicts,
        vec![Verdict::Paused, Verdict::Promoted, Verdict::Promoted],
        "{seen}"
    );
    assert!(
        gates(&j, &plan)
            .iter()
            .filter(|d| d.verdict != Verdict::Passed)
            .all(by_another_shell)
    );
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_by_approve_timeout_names_the_timeout_everywhere() {
    let sim = sim(fleet(3), QuotaMode::Off).await;
    let j = headless::journal("words");
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--waves",
            "1,rest",
            "--approve",
            "--approve-timeout",
            "1s",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let named = "no approval within 1s (--approve-timeout 1s)";
    assert!(stderr.contains(named), "{stderr}");
    assert!(!stderr.contains("by the operator"), "{stderr}");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = s["rollout"]["decisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["verdict"], "aborted", "{s}");
    assert_eq!(last["by"]["cause"], "timeout", "{s}");
    let skipped: Vec<&serde_json::Value> = s["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "SKIPPED")
        .collect();
    assert_eq!(skipped.len(), 2, "{s}");
    for d in skipped {
        let why = d["error"].as_str().unwrap();
        assert!(why.contains("RolloutAborted") && why.contains(named), "{d}");
    }
    // The journal says the same: the gate's record and each skipped device's end.
    let plan = s["plan"].as_str().unwrap();
    let aborted = gates(&j, plan).pop().unwrap();
    assert!(
        matches!(aborted.by, Some(Cause::Timeout { secs: 1, .. })),
        "{aborted:?}"
    );
    assert!(aborted.detail.contains(named), "{aborted:?}");
    let finals: Vec<String> = journal::read(&j)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Final { error: Some(e), .. } => Some(e.message),
            _ => None,
        })
        .collect();
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert!(finals.iter().all(|m| m.contains(named)), "{finals:?}");
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_word_and_every_mode_and_nothing_is_sent() {
    let sim = sim(fleet(3), QuotaMode::Off).await;
    let j = headless::journal("words");
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
    let plan = plan_of(&j);
    let before = sent(&sim);
    assert_eq!(before, 1);
    for args in [
        vec!["--promote", &plan],
        vec!["--pause", &plan],
        vec!["--abort", &plan],
        vec!["--retry", &plan],
        vec!["--resume", &plan],
        vec!["--discard", &plan],
        vec!["--resume"],
    ] {
        let mut args = args.clone();
        args.push("--read-only");
        let out = word(&sim, &j, &args).await;
        let said = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(
            said.contains("--read-only: `run` changes devices"),
            "{args:?}: {said}"
        );
        assert_eq!(sent(&sim), before, "{args:?} led to a mutating call");
    }
    // The waiting run heard nothing: after a poll it still waits, nothing more sent.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(sent(&sim), before);
    let promoted = word(&sim, &j, &["--promote", &plan]).await;
    assert!(promoted.status.success(), "{}", text(&promoted.stderr));
    let out = finish(child, &mut seen).await;
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert_eq!(sent(&sim), 3);
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_reads_every_end_a_poll_brought_and_health_comes_before_the_end() {
    // Three silent Snow devices sent anyway time out in one task, read in one poll: the gate
    // counts all three, not the first of them.
    let mut toml = String::from("[panorama]\nimages = [\"5.0.21\"]\n");
    for i in 0..3 {
        toml.push_str(&format!(
            "[[snow.devices]]\nid = \"smd-silent{i:08}\"\nsoftware = \"7.1.0\"\nreachable = false\n"
        ));
    }
    toml.push_str("[[snow.devices]]\nid = \"smd-fine00000000\"\nsoftware = \"7.1.0\"\n");
    let sim = sim(toml, QuotaMode::Off).await;
    let j = headless::journal("words");
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--include-skipped",
            "--canary",
            "silent",
            "--waves",
            "3,rest",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("3 failed of 3 finished"), "{stderr}");

    // A gated plan of one wave: every health record is journaled before the plan's end.
    let sim = self::sim(fleet(2), QuotaMode::Off).await;
    let j = headless::journal("words");
    let out = output(
        &sim,
        &j,
        &["--action", "reboot", "--all", "--max-failed", "0", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let records = journal::read(&j).unwrap();
    let end = records
        .iter()
        .position(|r| matches!(r, Record::End { .. }))
        .expect("the plan ended");
    let healths: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Health { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(healths.len(), 2, "{records:?}");
    assert!(healths.iter().all(|h| *h < end), "{records:?}");
    let _ = std::fs::remove_file(&j);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_min_done_beyond_the_plan_is_refused_and_a_retried_success_keeps_no_error() {
    let sim = sim(fleet(3), QuotaMode::Off).await;
    let j = headless::journal("words");
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--waves",
            "1,rest",
            "--min-done",
            "5",
            "--yes",
        ],
    );
    let said = text(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("--min-done 5 is more than the plan's 3 devices"),
        "{said}"
    );
    assert!(
        sim.ledger().is_empty(),
        "nothing was sent: {:?}",
        sim.ledger()
    );

    // A CreateJobForDevices answered 500 (nothing took effect; the SDK does not retry it):
    // the row is UNCONFIRMED with that error until the appliance's jobs show none, then sent
    // again. It ends COMPLETED, and neither the summary nor the journal keeps the first try's
    // error as its end.
    let sim = self::sim(fleet(1), QuotaMode::Off).await;
    sim.add_fault(FaultRule::new(
        "CreateJobForDevices",
        1,
        TargetedFault::FailBefore,
    ))
    .unwrap();
    let j = headless::journal("words");
    let out = output(
        &sim,
        &j,
        &["--action", "reboot", "--all", "--yes", "--output", "json"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(sim.faults()[0].hit);
    // The first try's failure is in the journal, as its call's outcome.
    let failed_try = journal::read(&j).unwrap().into_iter().any(|r| {
        matches!(r, Record::Outcome { error: Some(e), .. } if e.code == "InternalServerException")
    });
    assert!(failed_try, "the first create failed: {stderr}");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &s["devices"][0];
    assert_eq!(d["state"], "COMPLETED", "{s}");
    assert!(d["error"].is_null(), "{s}");
    let finals: Vec<Record> = journal::read(&j)
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r, Record::Final { .. }))
        .collect();
    assert!(
        matches!(finals.as_slice(), [Record::Final { error: None, .. }]),
        "{finals:?}"
    );
    assert_eq!(sim.ledger().len(), 1, "one job");
    let _ = std::fs::remove_file(&j);
}
