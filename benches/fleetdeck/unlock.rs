//! Every call a headless unlock of 28 Snow devices makes, start to end.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use fleetdeck::protocol::Settings;
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};

use crate::harness::{ceil_div, named, panorama_calls};
use crate::report::{Report, secs};

/// Locked Snow devices an unlock is measured on, beside a few appliances it must not touch.
pub(crate) const UNLOCK_TARGETS: usize = 28;
pub(crate) const UNLOCK_APPLIANCES: usize = 10;

/// An unlock of every locked Snow device through `fleetdeck run`, the release binary, from
/// start to end: every call it makes, counted by the simulator.
pub(crate) async fn unlock(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let mut fleet = String::from("[panorama]\nimages = [\"5.0.21\"]\n");
    for i in 0..UNLOCK_APPLIANCES {
        fleet.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.21\"\n"
        ));
    }
    for _ in 0..UNLOCK_TARGETS {
        fleet.push_str(
            "[[snow.devices]]\ntype = \"SNOWCONE\"\nstate = \"LOCKED\"\nsoftware = \"7.1.0\"\n",
        );
    }
    let h = sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet),
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let journal = scratch.join("unlock.jsonl");
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .arg("run")
        .args(["--endpoint-url", &h.endpoint, "--region", "us-east-1"])
        .args([
            "--action", "unlock", "--filter", "svc:snow", "--yes", "--output", "json",
        ])
        .env("FLEETDECK_JOURNAL", &journal)
        .env("AWS_ACCESS_KEY_ID", &h.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &h.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .env_remove("AWS_PROFILE")
        .env_remove("FLEETDECK_CONTEXT")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("fleetdeck run could not be started")?;
    let took = started.elapsed();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "fleetdeck run did not answer JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let succeeded = summary["succeeded"].as_u64().unwrap_or(0);
    let calls = h.calls();
    let n = |op: &str| calls.get(op).copied().unwrap_or(0);
    let snow = |op: &str| n(&format!("snow-device-management:{op}"));
    let tasks = snow("CreateTask");
    let panorama: BTreeMap<String, u64> = panorama_calls(&h);
    let everything: BTreeMap<String, u64> = calls.clone();
    report.add(
        "status",
        format!("unlock of {UNLOCK_TARGETS} locked Snow devices, `fleetdeck run`, start to end"),
        format!("{} calls in {}", everything.values().sum::<u64>(), secs(took)),
        format!(
            "{succeeded} succeeded; {}; CreateTask {tasks} (ceil(N/10) = {}); DescribeDevice {} ({} devices); Panorama: {} (the fleet's listing, ceil({UNLOCK_APPLIANCES}/25) = {})",
            named(&everything),
            ceil_div(UNLOCK_TARGETS, 10),
            snow("DescribeDevice"),
            UNLOCK_TARGETS,
            named(&panorama),
            ceil_div(UNLOCK_APPLIANCES, 25),
        ),
        "ceil(N/10) CreateTask, 1 DescribeDevice per device, nothing to Panorama past the listing",
    );
    let polls = took.as_secs_f64() / Settings::default().poll_every.as_secs_f64();
    report.add(
        "status",
        format!("unlock of {UNLOCK_TARGETS}: ListExecutions against one per task per poll"),
        snow("ListExecutions").to_string(),
        format!(
            "{tasks} tasks × {polls:.0} polls of 2 s = {:.0} at most; the tasks lasted about 35 s each",
            tasks as f64 * polls
        ),
        "≤ 1 per unfinished task per poll, fewer as tasks age",
    );
    report.note(format!(
        "Unlock: `fleetdeck run --action unlock --filter svc:snow --yes` (the release binary) \
         against a simulator of {UNLOCK_APPLIANCES} appliances and {UNLOCK_TARGETS} locked Snow \
         devices, AWS quotas on, simulated time at real speed (an execution takes 5 s queued and \
         30 s running, ±20%). Every call from start to end is counted: the fleet's listing, \
         the lock states read before choosing (the filter could name them), ListTasks for \
         devices busy with another task, the tasks, and the polls until every execution ended."
    ));
    h.stop().await;
    Ok(())
}
