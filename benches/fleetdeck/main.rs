//! fleetdeck's benchmarks: `cargo bench --bench fleetdeck`. Each measures one goal through the
//! real parts — the worker and the official SDK clients against the simulator on loopback, the
//! UI's own `update` and `draw`, the release binary in a pseudo-terminal — and the run rewrites
//! BENCHMARKS.md with the machine and the figures. Nothing here is asserted: these machines are
//! noisy, so the figures are written down, not gated.

mod frames;
mod harness;
mod memory;
mod org;
mod pair;
mod panorama;
mod pty;
mod refresh;
mod regions;
mod report;
mod snow;
#[path = "../../tests/team/mod.rs"]
mod team;
mod unlock;

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use frames::{frames, key_to_frame};
use memory::peak_memory;
use org::org;
use pair::pair;
use panorama::panorama;
use pty::{first_frame, terminal_end_to_end};
use refresh::refresh;
use regions::regions;
use report::{Report, filesystem};
use snow::snow;
use unlock::unlock;

/// Panorama jobs dispatched: the 50 appliances AWS allows per account and region.
const PANORAMA_JOBS: usize = 50;
/// Snow targets dispatched, and the latency the simulator adds to each call.
const SNOW_TARGETS: usize = 1000;
const SNOW_LATENCY: Duration = Duration::from_millis(50);
/// Appliances listed for the calls-per-refresh figure (quotas off: above the 50 cap).
const REFRESH_APPLIANCES: usize = 500;
const BIG_FLEET: usize = 100_000;
const OPS_IN_FLIGHT: usize = 1000;

/// The sections, by the names `cargo bench --bench fleetdeck -- NAME…` takes.
const SECTIONS: &[&str] = &[
    "panorama", "pair", "regions", "org", "snow", "unlock", "refresh", "frames", "keys", "pty",
    "memory",
];

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`. Names pick sections for a quick look: such a run prints
    // its figures and leaves BENCHMARKS.md alone, which only a whole run writes.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(bad) = only.iter().find(|a| !SECTIONS.contains(&a.as_str())) {
        bail!(
            "unknown section {bad}: the sections are {}",
            SECTIONS.join(", ")
        );
    }
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The journal goes where it would for the operator: on the working directory's disk, not
    // in a tmpfs /tmp, so its fsyncs cost what they cost there.
    let scratch = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("bench-scratch-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut report = Report {
        filesystem: filesystem(&scratch),
        ..Report::default()
    };

    if run("panorama") {
        runtime.block_on(panorama(&mut report, &scratch))?;
    }
    if run("pair") {
        runtime.block_on(pair(&mut report, &scratch))?;
    }
    if run("regions") {
        runtime.block_on(regions(&mut report, &scratch))?;
    }
    if run("org") {
        runtime.block_on(org(&mut report, &scratch))?;
    }
    if run("snow") {
        runtime.block_on(snow(&mut report, &scratch))?;
    }
    if run("unlock") {
        runtime.block_on(unlock(&mut report, &scratch))?;
    }
    if run("refresh") {
        runtime.block_on(refresh(&mut report, &scratch))?;
    }
    if run("frames") {
        frames(&mut report)?;
    }
    if run("keys") {
        key_to_frame(&mut report)?;
    }
    if run("pty") {
        first_frame(&mut report, &scratch)?;
        runtime.block_on(terminal_end_to_end(&mut report, &scratch))?;
    }
    if run("memory") {
        runtime.block_on(peak_memory(&mut report, &scratch))?;
    }

    let _ = std::fs::remove_dir_all(&scratch);
    if !only.is_empty() {
        eprintln!(
            "sections {} only: BENCHMARKS.md not written",
            only.join(", ")
        );
        return Ok(());
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    std::fs::write(&path, report.markdown())?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
