//! The team pane in the real terminal UI: a rollout another identity runs headless, as another
//! host would, seen live through the team's table (the moto server) and promoted from the pane.

use std::path::Path;
use std::process::Command;

mod common;
mod headless;
mod pty;
mod team;

use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};
use headless::text;
use pty::Tui;
use team::Moto;

/// What points a fleetdeck process at the team's table as `who`.
fn team_env(moto: &Moto, creds: &Path, who: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_DYNAMODB", moto.endpoint.clone()),
        ("AWS_ENDPOINT_URL_STS", moto.endpoint.clone()),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.display().to_string()),
        ("FLEETDECK_TEAM", "fleet-team".into()),
        ("FLEETDECK_TEAM_PROFILE", who.into()),
        (
            "XDG_STATE_HOME",
            std::env::temp_dir()
                .join(format!("fd-tui-{who}-{}", uuid::Uuid::new_v4()))
                .display()
                .to_string(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn another_hosts_rollout_shows_live_in_the_team_pane_and_a_promote_from_it_reaches_its_owner()
{
    let moto = Moto::start();
    let alice = moto.user("alice");
    let bob = moto.user("bob");
    let creds = team::credentials(&[("alice", alice), ("bob", bob)]);
    let mut init = Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
    init.args(["team", "init", "--lease", "6s"])
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE");
    init.envs(team_env(&moto, &creds, "alice"));
    let made = init.output().expect("fleetdeck runs");
    assert!(made.status.success(), "{}", text(&made.stderr));

    let mut toml = String::from("[panorama]\nimages = [\"5.0.10\", \"5.0.21\"]\n");
    for i in 0..4 {
        toml.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.10\"\n"
        ));
    }
    let sim = fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(toml),
        quotas: QuotaMode::Off,
        busy_conflicts: false,
        speed: 300.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts");

    // Bob's rollout: a canary, then it waits for a promotion with the rest leased.
    let jb = headless::journal("team-tui-bob");
    let mut b = headless::command(
        &sim,
        &jb,
        &[
            "--action",
            "reboot",
            "--all",
            "--yes",
            "--waves",
            "1,rest",
            "--approve",
        ],
    );
    b.envs(team_env(&moto, &creds, "bob"));
    let b = b.spawn().expect("bob's run starts");

    let mut env: Vec<(&str, String)> = pty::sim_env(&sim)
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .filter(|(k, _)| *k != "AWS_SHARED_CREDENTIALS_FILE")
        .collect();
    env.extend(team_env(&moto, &creds, "alice"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let journal = headless::journal("team-tui-alice");
    let mut tui = Tui::start_with(&["--endpoint-url", &sim.endpoint], &env, journal);
    tui.wait_for("cam-03");
    tui.wait_for("TEAM fleet-team as alice");
    // The devices bob's plan holds are marked as such.
    tui.wait_until("bob's devices held", |s| s.contains("held by other plans"));
    tui.send("T");
    let pane = tui.wait_until("bob's plan waiting", |s| {
        s.lines().any(|l| {
            l.contains("bob@")
                && l.contains("reboot")
                && l.contains("wave 1/2 waiting for approval")
        })
    });
    assert!(pane.contains("Team fleet-team: 1 plan "), "{pane}");
    tui.send("P");
    tui.wait_for("Promote plan");
    tui.send("y");
    // Bob applies it at his next heartbeat, then sends the rest; the pane follows.
    tui.wait_until("the promote answered", |s| {
        s.contains("Promote: applied by arn:aws:iam::123456789012:user/bob")
    });
    tui.wait_until("bob's plan ended", |s| {
        s.lines()
            .any(|l| l.contains("bob@") && l.contains("4/4") && l.contains("SUCCEEDED"))
    });
    let out = tokio::task::spawn_blocking(move || b.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("promote from arn:aws:iam::123456789012:user/alice"),
        "{said}"
    );
    tui.send("\x1b");
    tui.quit();
    let panorama = common::panorama(&sim);
    for d in common::all_panorama_devices(&panorama).await {
        let jobs = panorama
            .list_devices_jobs()
            .device_id(d.device_id().unwrap_or_default())
            .send()
            .await
            .expect("ListDevicesJobs");
        assert_eq!(jobs.device_jobs().len(), 1, "{d:?}");
    }
}
