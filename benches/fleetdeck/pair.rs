//! Two runs in one account at once, on different appliances: each paces itself at the
//! account's quota, so together they ask twice what the service allows; its throttling is what
//! slows them (each run's pace backs off and recovers). The pair against what one run would
//! need for all of them.

use std::path::Path;
use std::time::Duration;

use fleetdeck::fleet::{Device, Operation, SnowOptions};
use fleetdeck::ops::Plan;
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};

use crate::PANORAMA_JOBS;
use crate::harness::{connect, dispatch, throttled};
use crate::report::{Report, secs};

pub(crate) async fn pair(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: PANORAMA_JOBS,
            snow: 0,
        },
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let mut a = connect(&h, scratch.join("pair-a.jsonl")).await?;
    let mut b = connect(&h, scratch.join("pair-b.jsonl")).await?;
    let all: Vec<&Device> = a.devices.iter().collect();
    let whole = Plan::new(Operation::Reboot, SnowOptions::default(), &all);
    let sent: Vec<&Device> = all
        .iter()
        .copied()
        .filter(|d| whole.targets.contains(&d.key()))
        .collect();
    let half = |odd: usize| -> Plan {
        let devices: Vec<&Device> = sent.iter().copied().skip(odd).step_by(2).collect();
        Plan::new(Operation::Reboot, SnowOptions::default(), &devices)
    };
    let (pa, pb) = (half(0), half(1));
    let jobs = pa.device_count() + pb.device_count();
    let before = throttled(&h);
    let ((ta, fa), (tb, fb)) = tokio::try_join!(dispatch(&mut a, pa), dispatch(&mut b, pb))?;
    let took = ta.max(tb);
    let bound = Duration::from_secs(jobs as u64 - 1);
    let creates = h
        .ledger()
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
        .count();
    report.add(
        "dispatch",
        format!("two runs in one account at once, {jobs} Panorama REBOOT jobs between them (different appliances), AWS quotas on"),
        secs(took),
        format!(
            "{:.3}× what one run needs for all of them, the (N − 1) × 1 s bound ({}); {creates} creates, {} failed, {} calls throttled",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound),
            fa + fb,
            throttled(&h) - before,
        ),
        "≤ 1.05× one run's bound",
    );
    report.note(
        "Two runs in one account: two workers (two processes' engines, each with its own journal) against one simulator with AWS quotas on, each sent half of the online appliances at the same moment; timed until both have every job id. Neither knows of the other: each starts at the account's quota, and the service's throttling slows each (its pace drops to 70% on a throttle and wins a twentieth back per call that goes through). Team mode's shared budget is not used here.",
    );
    h.stop().await;
    Ok(())
}
