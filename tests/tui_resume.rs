//! Killed mid-rollout, restarted, resumed: still exactly one job per appliance, per the
//! simulator's ledger. The simulator runs in the test, so it outlives the killed process.

mod pty;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fleetdeck::sim::{QuotaMode, SimConfig};
use pty::{ENTER, Tui};

/// How the first run is stopped mid-rollout.
enum Stop {
    /// SIGKILL: no chance to write anything.
    Kill,
    /// Ctrl-C (it asks), then Ctrl-C again (it forces): dispatch stops, the rest is paused.
    CtrlCTwice,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_killed_midway_resumes_without_sending_twice() {
    stopped_midway_then_resumed(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_midway_pauses_and_the_restart_resumes_without_sending_twice() {
    stopped_midway_then_resumed(Stop::CtrlCTwice).await;
}

async fn stopped_midway_then_resumed(stop: Stop) {
    let sim = fleetdeck::sim::start(SimConfig {
        quotas: QuotaMode::Aws,
        // Without the one-job-per-appliance rule a second send would be a second job: only
        // the ledger decides.
        busy_conflicts: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let env = pty::sim_env(&sim);
    let args = ["--endpoint-url", sim.endpoint.as_str()];
    let journal =
        std::env::temp_dir().join(format!("fleetdeck-resume-{}.jsonl", uuid::Uuid::new_v4()));

    // Reboot every appliance: preflight leaves the two offline ones out, so 12 creates at 1 a second.
    let mut tui = Tui::start_with(&args, &env, journal.clone());
    tui.ready();
    tui.send("/");
    tui.send("svc:panorama");
    tui.send(ENTER);
    tui.send("a");
    tui.wait_for("14 marked");
    tui.send("b");
    tui.wait_for("Reboot");
    tui.send(ENTER);
    tui.wait_for("Type 12 to confirm");
    tui.send("12");
    tui.send(ENTER);
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.ledger().len() < 4 {
        assert!(Instant::now() < deadline, "the rollout did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match stop {
        Stop::Kill => tui.crash(),
        Stop::CtrlCTwice => {
            tui.send("\x03");
            tui.wait_for("not yet sent");
            tui.send("\x03");
            // Work was left: the exit status says so, and the terminal names what is kept.
            let screen = tui.expect_exit_with("Ctrl-C twice", false);
            assert!(screen.contains("not yet sent"), "{screen}");
            assert!(screen.contains("start fleetdeck again"), "{screen}");
        }
    }
    // The process is gone: what it sent is in the ledger, and the rest is the resume's. The
    // ledger at the end is the judge of exactly once.
    let sent_before = sim.ledger().len();
    assert!(
        sent_before < 12,
        "the stop came too late to test anything: {sent_before} sent"
    );

    // Restart on the same journal: the plan is offered, and resumed.
    let mut tui = Tui::start_with(&args, &env, journal.clone());
    let offer = tui.wait_for("Unfinished reboot plan");
    if matches!(stop, Stop::CtrlCTwice) {
        assert!(offer.contains("stopped by a quit"), "{offer}");
    }
    // What, when and how much: the dialog says the plan's size and its age.
    assert!(
        offer.contains("confirmed ") && offer.contains("Of its 12 devices"),
        "{offer}"
    );
    tui.send("r");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let devices: HashSet<String> = sim.ledger().into_iter().map(|e| e.device_id).collect();
        if devices.len() == 12 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "resume reached {} of 12 appliances",
            devices.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every resumed row has its job: nothing left queued or sending, and nothing unconfirmed.
    // A send the kill cut off is read again only once twice its deadline has passed, so its
    // job can be in the ledger while its row still says UNCONFIRMED: a quit then rightly
    // keeps the plan open (exit 3), which is not what this test is about.
    tui.wait_until("every resumed row to have its job", |s| {
        s.contains("Results")
            && !["PLANNED", "WAITING", "SENDING", "UNCONFIRMED"]
                .iter()
                .any(|state| s.contains(state))
    });
    // The resumed plan is the whole plan again: its gauge counts all 12, not only the rest.
    let screen = tui.contents();
    assert!(
        screen.contains(" of 12 final") && screen.contains("Results 12 "),
        "{screen}"
    );
    let ledger = sim.ledger();
    let devices: HashSet<&str> = ledger.iter().map(|e| e.device_id.as_str()).collect();
    assert_eq!(ledger.len(), 12, "a device got two jobs: {ledger:#?}");
    assert_eq!(devices.len(), 12);
    tui.send("q");
    tui.wait_for("sent and not yet done");
    tui.send("y");
    tui.expect_exit("q after resume");
    let records = fleetdeck::journal::read(&journal).unwrap();
    assert!(
        fleetdeck::journal::unfinished(&records).is_empty(),
        "the resumed plan is closed"
    );
    let _ = std::fs::remove_file(&journal);
}
