//! Peak memory (VmHWM) with 100,000 devices listed.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig};

use crate::BIG_FLEET;
use crate::pty::Pty;
use crate::report::{Report, kib_field, secs};

pub(crate) async fn peak_memory(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: 0,
            snow: BIG_FLEET,
        },
        quotas: QuotaMode::Off,
        ..SimConfig::default()
    })
    .await?;
    let journal = scratch.join("memory.jsonl").to_string_lossy().to_string();
    let endpoint = h.endpoint.clone();
    let (key, secret) = (h.access_key_id.clone(), h.secret_access_key.clone());
    let done = format!("Devices {BIG_FLEET} (0 Panorama, {BIG_FLEET} Snow)");
    let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Duration)> {
        let started = Instant::now();
        let pty = Pty::spawn(
            &["--endpoint-url", &endpoint, "--region", "us-east-1"],
            &[
                ("FLEETDECK_JOURNAL", &journal),
                ("AWS_ACCESS_KEY_ID", &key),
                ("AWS_SECRET_ACCESS_KEY", &secret),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ],
            (200, 60),
            &done,
        )?;
        pty.wait("every device listed", Duration::from_secs(300), |s| {
            s.contains(&done) && !s.contains("loading")
        })?;
        let listed = started.elapsed();
        // The devices in view are described after the listing: let that settle first.
        let pid = pty.child.process_id().context("no process id")?;
        std::thread::sleep(Duration::from_secs(2));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak = kib_field(&status, "VmHWM:").context("no VmHWM")?;
        Ok((peak, listed))
    })
    .await??;
    let (peak_kib, listed) = measured;
    let mib = peak_kib as f64 / 1024.0;
    report.add(
        "ui",
        format!("peak memory (VmHWM), {BIG_FLEET} devices listed, 200×60"),
        format!("{mib:.1} MiB"),
        format!("{:.2}× the 80 MiB goal", mib / 80.0),
        "≤ 80 MiB",
    );
    report.note(format!(
        "Peak memory: the release binary in a 200×60 pseudo-terminal against a simulator with \
         {BIG_FLEET} Snow devices (quotas off), read from /proc/PID/status once the whole fleet \
         was listed ({} from spawn to the last page), the devices in view described.",
        secs(listed)
    ));
    h.stop().await;
    Ok(())
}
