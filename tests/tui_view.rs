//! The operator's view end to end, in a pseudo-terminal on the demo: production counted in
//! the confirmation, the drift view's key that marks every appliance behind, and results
//! grouped per plan, and an idle screen that stays silent while the background refresh runs.

mod pty;

use pty::{ENTER, ESC, Tui};

#[test]
fn the_confirmation_counts_the_targets_in_production() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("/");
    tui.send("site=seattle");
    tui.send(ENTER);
    tui.send("a");
    let devices = tui.wait_for("6 marked");
    // What the table says, counted here: the rows whose Env cell is prod.
    let prod = devices
        .lines()
        .filter(|l| l.contains("sea-") || l.contains("smd-"))
        .filter(|l| l.split_whitespace().any(|w| w == "prod"))
        .count();
    assert_eq!(prod, 5, "{devices}");
    tui.send("b");
    let form = tui.wait_for("Reboot");
    assert!(form.contains("Targets include 5 in env=prod"), "{form}");
    tui.send(ENTER);
    let confirm = tui.wait_for("Confirm: 6 devices");
    assert!(confirm.contains("Reboot · 5 in env=prod"), "{confirm}");
    assert!(confirm.contains("y / Enter go"), "{confirm}");
    // Backing out sends nothing.
    tui.send("n");
    tui.send(ESC);
    let after = tui.wait_until("the dialogs closed", |s| !s.contains("Confirm:"));
    assert!(!after.contains("Results"), "{after}");
    tui.quit();
}

#[test]
fn drift_marks_every_appliance_behind_the_newest_version_and_opens_the_ota_form() {
    let mut tui = Tui::demo();
    tui.ready();
    tui.send("D");
    let drift = tui.wait_for("Drift: software versions");
    // The Panorama section: " 5.0.21  ████░░  6  30.0%" per version, the newest first.
    let section: Vec<(String, usize)> = drift
        .lines()
        .skip_while(|l| !l.contains("Panorama appliances:"))
        .skip(1)
        .take_while(|l| l.contains('%'))
        .map(|l| {
            let inner = l.split('│').nth(2).unwrap_or(l);
            let words: Vec<&str> = inner.split_whitespace().collect();
            (
                words[0].to_string(),
                words[words.len() - 2].parse().unwrap(),
            )
        })
        .collect();
    assert!(section.len() >= 2, "{drift}");
    let (newest, on_newest) = &section[0];
    let behind: usize = section[1..].iter().map(|(_, n)| n).sum();
    assert!(
        drift.contains(&format!("m marks the {behind} appliances behind {newest}")),
        "{drift}"
    );
    assert!(*on_newest > 0 && behind > 0, "{section:?}");
    tui.send("m");
    let form = tui.wait_for("OTA update");
    assert!(
        form.contains(&format!("{behind} selected: {behind} Panorama, 0 Snow")),
        "{form}"
    );
    assert!(form.contains(newest.as_str()), "{form}");
    assert!(form.contains(&format!("{behind} marked")), "{form}");
    tui.send(ESC);
    tui.quit();
}

#[test]
fn results_are_grouped_per_plan_each_under_its_own_header() {
    let mut tui = Tui::demo();
    tui.ready();
    // Plan one: a reboot of one appliance.
    tui.send("/");
    tui.send("name:sea-dock-cam-01");
    tui.send(ENTER);
    tui.wait_for("1 shown");
    tui.send(" ");
    tui.send("b");
    tui.wait_for("Reboot");
    tui.send(ENTER);
    tui.wait_for("Confirm: 1 device");
    tui.send("y");
    tui.wait_for("1 of 1 final");
    // Plan two: a reboot of two Snow devices in Seattle, filtered from the results pane
    // (focus went there when plan one began).
    tui.send("/");
    tui.send(ESC);
    tui.send("/");
    tui.send("site=seattle svc:snow");
    tui.send(ENTER);
    tui.wait_for("2 shown");
    tui.send("a");
    tui.wait_for("2 marked");
    tui.send("b");
    tui.wait_for("Reboot");
    tui.send(ENTER);
    tui.wait_for("Confirm: 2 devices");
    tui.send("y");
    let screen = tui.wait_for("2 of 2 final");
    let results: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("Results"))
        .collect();
    let headers: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("▸ reboot · plan"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(headers.len(), 2, "{screen}");
    // In the order they began, each plan's rows right under its own header: the reboot of
    // one appliance, then the two Snow devices'.
    let rows_under = |at: usize| -> Vec<&str> {
        results[at + 1..]
            .iter()
            .take_while(|l| l.contains("SNOW") || l.contains("PAN "))
            .copied()
            .collect()
    };
    assert!(results[headers[0]].contains("1 of 1 final"), "{screen}");
    let older = rows_under(headers[0]);
    assert_eq!(older.len(), 1, "{screen}");
    assert!(older[0].contains("sea-dock-cam-01"), "{screen}");
    assert!(results[headers[1]].contains("2 of 2 final"), "{screen}");
    let newer = rows_under(headers[1]);
    assert_eq!(newer.len(), 2, "{screen}");
    assert!(newer.iter().all(|l| l.contains("SNOW")), "{screen}");
    // Each header names its own plan, and the two differ.
    let id = |at: usize| {
        results[at]
            .split("plan ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
    };
    assert_ne!(id(headers[0]), id(headers[1]), "{screen}");
    tui.quit();
}

/// Appliances (no Seen cell) and Snow devices silent for days: nothing on this screen changes
/// with the clock within the test's seconds, so any byte written is a redraw of nothing.
const STILL_FLEET: &str = r#"
[panorama]
images = ["5.0.21"]
[[panorama.devices]]
name = "cam-01"
software = "5.0.21"
[[panorama.devices]]
name = "cam-02"
software = "5.0.10"
[[snow.devices]]
reachable = false
software = "7.1.0"
[[snow.devices]]
reachable = false
software = "7.0.4"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_screen_writes_nothing_while_the_background_refresh_runs() {
    let sim = fleetdeck::sim::start(fleetdeck::sim::SimConfig {
        fleet: fleetdeck::sim::FleetSource::Toml(STILL_FLEET.into()),
        ..fleetdeck::sim::SimConfig::default()
    })
    .await
    .unwrap();
    let env = pty::sim_env(&sim);
    // A directory of its own: the log beside the journal is this run's alone.
    let journal = std::env::temp_dir()
        .join(format!("fleetdeck-idle-{}", uuid::Uuid::new_v4()))
        .join("journal.jsonl");
    let args = [
        "--endpoint-url",
        sim.endpoint.as_str(),
        "--refresh-secs",
        "1",
    ];
    let tui = Tui::start_with(&args, &env, journal.clone());
    tui.ready();
    // The log records each listing as it ends.
    let log = journal.with_file_name("fleetdeck.log");
    let listed = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("listed"))
            .count()
    };
    // A background refresh has run once the log records a listing more than the first.
    let first = listed();
    wait_for_log(|| listed() > first, "a background refresh");
    let (bytes, before) = (tui.bytes(), listed());
    // Four more refreshes (one a second), each a whole listing the screen could redraw.
    wait_for_log(|| listed() >= before + 4, "four more background refreshes");
    assert_eq!(
        tui.bytes() - bytes,
        0,
        "an unchanged fleet redrew the screen:\n{}",
        tui.contents()
    );
    tui.quit();
    sim.stop().await;
}

/// Waits for what the log records, with a deadline.
fn wait_for_log(done: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
