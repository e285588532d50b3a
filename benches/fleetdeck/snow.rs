//! Snow dispatch: CreateTask calls and wall time for 1,000 targets, and calls per poll
//! as tasks age.

use std::path::Path;

use fleetdeck::fleet::{Device, Operation, SnowOptions};
use fleetdeck::ops::Plan;
use fleetdeck::protocol::Settings;
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};

use crate::harness::{ceil_div, connect, count, dispatch};
use crate::report::{Report, secs};
use crate::{SNOW_LATENCY, SNOW_TARGETS};

/// N Snow targets, quotas off and 50 ms per call: CreateTask calls and wall time.
pub(crate) async fn snow(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: 0,
            snow: SNOW_TARGETS,
        },
        quotas: QuotaMode::Off,
        latency: SNOW_LATENCY,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect(&h, scratch.join("snow.jsonl")).await?;
    let refs: Vec<&Device> = s.devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    let targets = plan.device_count();
    let concurrency = Settings::default().concurrency;
    let before = count(&h, "snow-device-management:CreateTask");
    let (took, failed) = dispatch(&mut s, plan).await?;
    let calls = count(&h, "snow-device-management:CreateTask") - before;
    let expected = ceil_div(targets, 10);
    report.add(
        "dispatch",
        format!("{targets} Snow targets: CreateTask calls"),
        calls.to_string(),
        format!("ceil(N/10) = {expected}"),
        "= ceil(N/10)",
    );
    let bound = SNOW_LATENCY * ceil_div(expected, concurrency) as u32;
    report.add(
        "dispatch",
        format!("{targets} Snow targets, 50 ms per call, concurrency {concurrency}"),
        secs(took),
        format!(
            "{:.2}× the concurrency bound ceil({expected}/{concurrency}) × 50 ms = {}; {failed} failed",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound)
        ),
        "near the bound",
    );
    report.note(
        "Snow dispatch: the same worker, quotas off and 50 ms added to every call; timed from the \
         Dispatch command to the last task id. Each batch's intent and outcome are written to the \
         journal and fsynced before and after its CreateTask, so the disk's fsync time adds to \
         each call's 50 ms.",
    );
    drop(s);
    h.stop().await;
    Ok(())
}
