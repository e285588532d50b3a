//! `fleetdeck run --promote/--pause/--abort PLAN`: a word for the process that runs a plan,
//! left beside the journal it holds.

use std::time::Duration;

use anyhow::{Context, bail};

use super::RunEnd;
use crate::cli::RunArgs;
use crate::journal::{self, Control};

/// Leaves the word beside the journal and waits for the process holding it to take it.
pub async fn control(args: &RunArgs, plan: &str, word: Control) -> anyhow::Result<RunEnd> {
    let path = args
        .session
        .journal
        .clone()
        .or_else(journal::default_path)
        .context("no journal path: pass --journal PATH (the one the rollout runs with)")?;
    let records = journal::read(&path)
        .with_context(|| format!("cannot read the journal {}", path.display()))?;
    if !journal::unfinished(&records).iter().any(|p| p == plan) {
        bail!(
            "the journal {} has no unfinished plan {plan} (see `fleetdeck journal list`)",
            path.display()
        );
    }
    let pid = match journal::Journal::open(&path) {
        Err(journal::OpenError::Locked { pid, .. }) => pid,
        Ok(_) => bail!(
            "no fleetdeck process is running plan {plan} (nothing holds the journal {}); carry it on with:\n  fleetdeck run --resume {plan}",
            path.display()
        ),
        Err(e) => bail!("{e}"),
    };
    let file = journal::request(&path, plan, word)?;
    let holder = pid.map_or_else(|| "the process".to_string(), |p| format!("process {p}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if !file.exists() {
            eprintln!("{}: taken by {holder} running plan {plan}", word.word());
            return Ok(RunEnd::Succeeded);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_file(&file);
    bail!(
        "{holder} holds the journal but did not take the {} within 15 s: is it the one running plan {plan}?",
        word.word()
    )
}
