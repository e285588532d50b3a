//! `fleetdeck journal`: the plans a journal holds, one plan's records, or its raw lines. It
//! only reads, so it works beside a running fleetdeck.

use std::io::Write;
use std::path::Path;

use super::{Record, read_checked, when};

/// A plan's standing, as `list` shows it.
fn standing(records: &[&Record]) -> &'static str {
    if records.iter().any(|r| matches!(r, Record::End { .. })) {
        "ended"
    } else if records.iter().any(|r| matches!(r, Record::Paused { .. })) {
        "paused"
    } else {
        "open"
    }
}

/// The plans in order, each with its records.
fn plans(records: &[Record]) -> Vec<(&Record, Vec<&Record>)> {
    records
        .iter()
        .filter(|r| matches!(r, Record::Plan { .. }))
        .map(|p| {
            let mine = records.iter().filter(|r| r.plan() == p.plan()).collect();
            (p, mine)
        })
        .collect()
}

pub fn list(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let contents = read_checked(path)?;
    for w in &contents.warnings {
        eprintln!("warning: {w}");
    }
    writeln!(
        out,
        "{:<36}  {:<19}  {:<6}  {:<10}  {:>7}  {:>4}  state",
        "plan", "confirmed (UTC)", "action", "region", "devices", "sent"
    )?;
    for (plan, mine) in plans(&contents.records) {
        let Record::Plan {
            plan: id,
            at,
            action,
            region,
            devices,
            ..
        } = plan
        else {
            continue;
        };
        let sent: std::collections::HashSet<&String> = mine
            .iter()
            .filter_map(|r| match r {
                Record::Outcome {
                    operation,
                    devices,
                    resource_id: Some(_),
                    ..
                } if operation.sends() => Some(devices),
                _ => None,
            })
            .flatten()
            .collect();
        writeln!(
            out,
            "{id:<36}  {:<19}  {:<6}  {region:<10}  {:>7}  {:>4}  {}",
            when(*at),
            format!("{action:?}").to_lowercase(),
            devices.len(),
            sent.len(),
            standing(&mine)
        )?;
    }
    Ok(())
}

pub fn show(path: &Path, plan: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let contents = read_checked(path)?;
    let mine: Vec<&Record> = contents
        .records
        .iter()
        .filter(|r| r.plan() == plan)
        .collect();
    anyhow::ensure!(
        !mine.is_empty(),
        "the journal {} has no plan {plan}",
        path.display()
    );
    for r in mine {
        writeln!(out, "{}", line(r).trim_end())?;
    }
    Ok(())
}

/// One record as `journal show` prints it: when, what, and its figures.
fn line(r: &Record) -> String {
    match r {
        Record::Wave { .. }
        | Record::Gate { .. }
        | Record::Health { .. }
        | Record::Apps { .. }
        | Record::Alarms { .. }
        | Record::Window { .. } => rollout_line(r),
        Record::Intent { .. } | Record::Outcome { .. } | Record::Final { .. } => call_line(r),
        Record::Plan {
            at,
            action,
            devices,
            region,
            endpoint,
            ..
        } => format!(
            "{}  plan     {action:?} of {} devices in {region} at {endpoint}",
            when(*at),
            devices.len()
        ),
        Record::Paused {
            at,
            unsent,
            unconfirmed,
            running,
            ..
        } => format!(
            "{}  paused   {} unsent, {} unconfirmed, {} running",
            when(*at),
            unsent.len(),
            unconfirmed.len(),
            running.len()
        ),
        Record::End { at, abandoned, .. } => format!(
            "{}  end      {}",
            when(*at),
            if abandoned.is_empty() {
                String::new()
            } else {
                format!("{} abandoned", abandoned.len())
            }
        ),
    }
}

fn rollout_line(r: &Record) -> String {
    match r {
        Record::Wave { at, wave, .. } => format!("{}  wave     {} begins", when(*at), wave + 1),
        Record::Gate { at, decision, .. } => format!(
            "{}  gate     wave {} {}: {}",
            when(*at),
            decision.wave + 1,
            decision.verdict.word(),
            decision.detail
        ),
        Record::Health {
            at,
            device,
            healthy,
            reason,
            ..
        } => format!(
            "{}  health   {device} {}{}",
            when(*at),
            if *healthy { "healthy" } else { "NOT HEALTHY" },
            reason
                .as_ref()
                .map_or_else(String::new, |r| format!(": {r}"))
        ),
        Record::Apps {
            at,
            device,
            running,
            ..
        } => format!(
            "{}  apps     {device} before: {}",
            when(*at),
            if running.is_empty() {
                "none running".to_string()
            } else {
                running
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        Record::Alarms {
            at, alarms, breach, ..
        } => format!(
            "{}  alarms   {}{}",
            when(*at),
            alarms
                .iter()
                .map(|a| format!("{} {}", a.name, a.state))
                .collect::<Vec<_>>()
                .join(", "),
            if *breach { " — BREACH" } else { "" }
        ),
        Record::Window {
            at,
            device,
            until,
            window,
            ..
        } => format!(
            "{}  window   {device} waits until {} ({window})",
            when(*at),
            when(*until)
        ),
        _ => String::new(),
    }
}

fn call_line(r: &Record) -> String {
    match r {
        Record::Intent {
            at,
            operation,
            devices,
            token,
            ..
        } => format!(
            "{}  intent   {operation:?} {}{}",
            when(*at),
            devices.join(","),
            token
                .as_ref()
                .map_or_else(String::new, |t| format!(" token {t}"))
        ),
        Record::Outcome {
            at,
            operation,
            devices,
            resource_id,
            error,
            ..
        } => format!(
            "{}  outcome  {operation:?} {} {}",
            when(*at),
            devices.join(","),
            match (resource_id, error) {
                (Some(id), _) => id.clone(),
                (None, Some(e)) => format!("{}: {}", e.code, e.message),
                (None, None) => "-".into(),
            }
        ),
        Record::Final {
            at,
            device,
            state,
            resource_id,
            error,
            ..
        } => format!(
            "{}  final    {device} {} {}{}",
            when(*at),
            state.name(),
            resource_id.as_deref().unwrap_or("-"),
            error
                .as_ref()
                .map_or_else(String::new, |e| format!(" {}: {}", e.code, e.message))
        ),
        _ => String::new(),
    }
}

/// The records of one plan, or of all, as JSON Lines.
pub fn export(path: &Path, plan: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    let contents = read_checked(path)?;
    for w in &contents.warnings {
        eprintln!("warning: {w}");
    }
    for r in contents
        .records
        .iter()
        .filter(|r| plan.is_none_or(|p| r.plan() == p))
    {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;

    #[test]
    fn list_show_and_export_read_what_was_written() {
        let d = std::env::temp_dir().join(format!("fleetdeck-jc-{}", uuid::Uuid::new_v4()));
        let path = d.join("journal.jsonl");
        let j = Journal::open(&path).unwrap();
        for (id, ended) in [("p-ended", true), ("p-open", false)] {
            j.append(&crate::journal::reboot_plan(
                id,
                1_795_000_000,
                &["snow:a", "snow:b"],
            ))
            .unwrap();
            if ended {
                j.append(&Record::End {
                    plan: id.into(),
                    at: crate::journal::now(),
                    abandoned: vec![],
                })
                .unwrap();
            }
        }
        let mut out = Vec::new();
        list(&path, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("p-ended") && l.ends_with("ended")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("p-open") && l.ends_with("open")),
            "{text}"
        );
        let mut out = Vec::new();
        show(&path, "p-open", &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Reboot of 2 devices")
        );
        assert!(show(&path, "nope", &mut Vec::new()).is_err());
        let mut out = Vec::new();
        export(&path, Some("p-ended"), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
        std::fs::remove_dir_all(d).unwrap();
    }
}
