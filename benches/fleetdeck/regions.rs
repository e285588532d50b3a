//! The same dispatch across two regions, against the per-region bound.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use fleetdeck::fleet::{Device, Operation, SnowOptions};
use fleetdeck::ops::Plan;
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};

use crate::PANORAMA_JOBS;
use crate::harness::{connect_to, dispatch};
use crate::report::{Report, secs};

/// The same reboot across two regions: each (account, region) has its own create quota and
/// pacing, so the regions are sent in parallel and the wall time is one region's bound.
pub(crate) async fn regions(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let regions = vec!["us-east-1".to_string(), "us-west-2".to_string()];
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: PANORAMA_JOBS,
            snow: 0,
        },
        regions: regions.clone(),
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect_to(&h, scratch.join("regions.jsonl"), &regions).await?;
    let refs: Vec<&Device> = s.devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    let jobs = plan.device_count();
    // Preflight leaves offline appliances out: the bound is the busier region's sends.
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &plan.targets {
        if let Some(d) = s.devices.iter().find(|d| d.key() == *k) {
            *per.entry(d.region.as_str()).or_default() += 1;
        }
    }
    let busiest = per.values().copied().max().unwrap_or(1);
    let per = format!("{per:?}");
    let (took, failed) = dispatch(&mut s, plan).await?;
    let ledger = h.ledger();
    let creates = ledger
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
        .count();
    let distinct: HashSet<&str> = ledger
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
        .map(|e| e.device_id.as_str())
        .collect();
    // Per region a one-token bucket: N creates in N − 1 seconds.
    let per_region = Duration::from_secs(busiest.saturating_sub(1) as u64);
    let serial = Duration::from_secs((jobs - 1) as u64);
    report.add(
        "dispatch",
        format!("{jobs} Panorama REBOOT jobs across 2 regions {per}, AWS quotas on"),
        secs(took),
        format!(
            "{:.3}× the per-region (N − 1) × 1 s bound ({}), serial would be {}; {creates} creates for {} appliances, {failed} failed",
            took.as_secs_f64() / per_region.as_secs_f64(),
            secs(per_region),
            secs(serial),
            distinct.len()
        ),
        "near the per-region bound",
    );
    Ok(())
}
