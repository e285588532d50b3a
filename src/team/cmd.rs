//! `fleetdeck team`: make the table, list the team's plans and held devices, approve a plan.

use std::io::Write;
use std::time::Duration;

use super::{ApprovalRule, Team, TeamConfig};
use crate::journal::when;

/// How long one call to the table may take.
const ATTEMPT: Duration = Duration::from_secs(10);

pub async fn init(
    config: &TeamConfig,
    lease: &str,
    approval: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let lease =
        crate::ops::rollout::parse_duration(lease).map_err(|e| anyhow::anyhow!("--lease: {e}"))?;
    anyhow::ensure!(
        lease >= Duration::from_secs(3),
        "--lease {}: a lease shorter than 3s leaves no room for a heartbeat",
        crate::ops::rollout::duration_text(lease)
    );
    let approval = approval
        .map(ApprovalRule::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let made = super::init::init(config, lease, approval, ATTEMPT)
        .await
        .map_err(anyhow::Error::msg)?;
    writeln!(
        out,
        "team table {}: {} (on-demand, TTL on expires)",
        config.table,
        if made.created { "made" } else { "found" }
    )?;
    writeln!(
        out,
        "settings: lease {}, approval {}; written by {}",
        crate::ops::rollout::duration_text(made.lease),
        made.approval.as_ref().map_or_else(
            || "not required".to_string(),
            |r| format!("required for {}", r.text())
        ),
        made.by
    )?;
    Ok(())
}

pub async fn plans(config: &TeamConfig, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let team = Team::connect(config, ATTEMPT)
        .await
        .map_err(anyhow::Error::msg)?;
    let rows = team
        .plans()
        .await
        .map_err(|e| anyhow::anyhow!(super::refused(&team.table, &e)))?;
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "plan": r.plan, "operation": r.operation, "owner": r.owner_arn,
                    "host": r.owner_host, "pid": r.owner_pid, "epoch": r.epoch,
                    "created_by": r.created_by, "created_at": r.created_at,
                    "devices": r.devices, "sent": r.sent, "final": r.finals, "failed": r.failed,
                    "phase": r.phase, "wave": r.wave + 1, "waves": r.waves,
                    "outcome": r.outcome, "needs_approval": r.needs_approval,
                    "approvals": r.approvals,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<36}  {:<12}  {:<19}  {:>9}  {:<40}  owner",
        "plan", "operation", "started (UTC)", "final", "phase"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<36}  {:<12}  {:<19}  {:>9}  {:<40}  {} on {} (process {})",
            r.plan,
            r.operation,
            when(r.created_at),
            format!("{}/{}", r.finals, r.devices),
            r.outcome.clone().unwrap_or(r.phase.clone()),
            r.owner_arn,
            r.owner_host,
            r.owner_pid
        )?;
    }
    Ok(())
}

pub async fn leases(config: &TeamConfig, json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let team = Team::connect(config, ATTEMPT)
        .await
        .map_err(anyhow::Error::msg)?;
    let held = team
        .leased()
        .await
        .map_err(|e| anyhow::anyhow!(super::refused(&team.table, &e)))?;
    if json {
        let list: Vec<serde_json::Value> = held
            .iter()
            .map(|(k, h)| {
                serde_json::json!({
                    "service": k.service.label(), "device": k.id.as_str(), "plan": h.plan,
                    "holder": h.arn, "host": h.host, "pid": h.pid, "operation": h.operation,
                    "since": h.since, "epoch": h.epoch,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    for (k, h) in held {
        writeln!(out, "{:<8} {:<32} {}", k.service.label(), k.id, h.text())?;
    }
    Ok(())
}

pub async fn approve(config: &TeamConfig, plan: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let team = Team::connect(config, ATTEMPT)
        .await
        .map_err(anyhow::Error::msg)?;
    let said = team.approve(plan).await.map_err(anyhow::Error::msg)?;
    writeln!(out, "{said}")?;
    Ok(())
}
