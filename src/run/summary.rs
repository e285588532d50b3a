//! The summary of a run: one row per device (its state, job or task, error, health, wave), as
//! a table or as JSON on stdout, and how the rollout ended.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::cli::Output;
use crate::fleet::{Device, DeviceKey, Operation, Service};
use crate::ops::plan::likely_failure;
use crate::ops::rollout::Outcome as RolloutOutcome;
use crate::ops::{OpState, OpUpdate};
use crate::protocol::RolloutView;

/// A device's part in the run, as the summary reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub service: &'static str,
    pub device: String,
    pub name: String,
    /// The context and region it was reached through, and its account.
    pub context: String,
    pub region: String,
    pub account: Option<String>,
    #[serde(skip)]
    pub scope: String,
    pub operation: String,
    pub state: &'static str,
    pub resource_id: Option<String>,
    pub error: Option<String>,
    /// After a success in a gated rollout: "healthy", or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The wave it was in, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    #[serde(skip)]
    pub key: DeviceKey,
    #[serde(skip)]
    pub healthy: bool,
    #[serde(skip)]
    pub engine_state: OpState,
}

/// Where a device was reached: its context, region, account and scope.
pub struct Place {
    pub context: String,
    pub region: String,
    pub account: Option<String>,
    pub scope: String,
}

impl Place {
    /// A listed device's place; its account from its ARN, else its scope's.
    pub fn of(d: Option<&Device>, accounts: &BTreeMap<String, String>) -> Self {
        match d {
            Some(d) => Self {
                context: d.context().to_string(),
                region: d.region.to_string(),
                account: d
                    .account
                    .as_ref()
                    .map(|a| a.to_string())
                    .or_else(|| accounts.get(d.scope.as_str()).cloned()),
                scope: d.scope.to_string(),
            },
            None => Self {
                context: String::new(),
                region: String::new(),
                account: None,
                scope: String::new(),
            },
        }
    }
}

fn service_name(service: Service) -> &'static str {
    match service {
        Service::Panorama => "panorama",
        Service::Snow => "snow-device-management",
    }
}

impl Outcome {
    /// A row for `key`, in `state`, before anything is known of it.
    pub fn new(
        key: &DeviceKey,
        name: &str,
        place: Place,
        operation: &Operation,
        state: OpState,
    ) -> Self {
        Self {
            service: service_name(key.service),
            device: key.id.to_string(),
            name: name.to_string(),
            context: place.context,
            region: place.region,
            account: place.account,
            scope: place.scope,
            operation: operation.label().to_string(),
            state: state.word(key.service),
            resource_id: None,
            error: None,
            health: None,
            wave: None,
            key: key.clone(),
            healthy: true,
            engine_state: state,
        }
    }

    pub fn ok(&self) -> bool {
        self.engine_state == OpState::Succeeded && self.healthy
    }

    pub fn set(&mut self, state: OpState) {
        self.engine_state = state;
        self.state = state.word(self.key.service);
    }

    /// Takes an operation's news; whether its state changed.
    pub fn apply(&mut self, update: OpUpdate) -> bool {
        let changed = self.engine_state != update.state;
        self.set(update.state);
        if update.resource_id.is_some() {
            self.resource_id = update.resource_id;
        }
        match update.error {
            // A device another plan of the team holds: named with its holder, as preflight
            // names it.
            Some(e) if e.code == "DeviceHeld" => self.error = Some(e.message),
            Some(e) => self.error = Some(e.to_string()),
            // A call that was retried and then succeeded keeps no error of its tries.
            None if self.engine_state == OpState::Succeeded || update.state == OpState::Sent => {
                self.error = None
            }
            None => {}
        }
        changed
    }
}

/// Rows for the devices preflight left out, and the likely cause of failures the service
/// gave no reason for.
pub fn complete(
    outcomes: &mut Vec<Outcome>,
    left_out: &[(Device, String)],
    operation: &Operation,
    accounts: &BTreeMap<String, String>,
    listed: impl Fn(&DeviceKey) -> Option<Device>,
) {
    for (d, reason) in left_out {
        let place = Place::of(Some(d), accounts);
        let mut row = Outcome::new(&d.key(), d.label(), place, operation, OpState::Skipped);
        row.state = OpState::Skipped.name();
        row.error = Some(reason.clone());
        outcomes.push(row);
    }
    for o in outcomes.iter_mut() {
        if o.error.is_none() && matches!(o.engine_state, OpState::Failed | OpState::TimedOut) {
            let timed_out = o.engine_state == OpState::TimedOut;
            o.error = listed(&o.key)
                .and_then(|d| likely_failure(operation, &d, timed_out))
                .map(|why| format!("likely: {why}"));
        }
    }
}

/// How the rollout ended, in the words of the summary.
pub fn outcome_word(rollout: Option<&RolloutView>, outcomes: &[Outcome]) -> &'static str {
    if rollout.is_some_and(|r| r.outcome.is_none()) {
        return "STOPPED";
    }
    match rollout.and_then(|r| r.outcome) {
        Some(RolloutOutcome::Aborted) => "ABORTED",
        Some(RolloutOutcome::Succeeded) if outcomes.iter().all(Outcome::ok) => "SUCCEEDED",
        Some(_) => "PARTIAL",
        None if outcomes.iter().all(|o| o.engine_state.is_final()) => {
            if outcomes.iter().all(Outcome::ok) {
                "SUCCEEDED"
            } else {
                "PARTIAL"
            }
        }
        None => "STOPPED",
    }
}

/// The summary on stdout: a line per device and the outcome, or one JSON document.
pub fn report(
    plan: &str,
    outcomes: &[Outcome],
    rollout: Option<&RolloutView>,
    output: Output,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let word = outcome_word(rollout, outcomes);
    match output {
        Output::Json => {
            let summary = json(plan, word, outcomes, rollout);
            writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        }
        Output::Text => {
            for o in outcomes {
                writeln!(out, "{}", table_line(o))?;
            }
            writeln!(out, "outcome: {word} (plan {plan})")?;
        }
    }
    Ok(())
}

fn json(
    plan: &str,
    word: &str,
    outcomes: &[Outcome],
    rollout: Option<&RolloutView>,
) -> serde_json::Value {
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    serde_json::json!({
        "plan": plan,
        "outcome": word,
        "devices": outcomes,
        "succeeded": outcomes.len() - failed,
        "failed": failed,
        "rollout": rollout.map(|r| serde_json::json!({
            "waves": (0..r.waves.len()).map(|k| {
                outcomes.iter().filter(|o| o.wave == Some(k + 1)).map(|o| o.device.clone()).collect::<Vec<_>>()
            }).collect::<Vec<_>>(),
            "gate": r.gate,
            "decisions": r.decisions,
            "phase": r.phase,
            "watch": r.watch,
            "alarms": r.alarms,
            "waiting": r.waiting.iter().map(|(k, until)| serde_json::json!({
                "device": k.id.as_str(), "until": until,
            })).collect::<Vec<_>>(),
        })),
    })
}

fn table_line(o: &Outcome) -> String {
    let detail = o
        .error
        .as_deref()
        .or(o.health.as_deref().filter(|h| *h != "healthy"))
        .unwrap_or("");
    format!(
        "{:<5} {:<10} {:<24} {:<7} {:<12} {:<30} {}",
        if o.service == "panorama" {
            "PAN"
        } else {
            "SNOW"
        },
        o.region,
        o.name,
        o.operation,
        o.state,
        o.resource_id.as_deref().unwrap_or("-"),
        detail
    )
}
