//! The dispatch journal: JSON Lines, append-only and fsynced. Before each mutating call an
//! intent record, after it an outcome record, so that what was sent can always be told from
//! what was only planned. No credentials or secrets are ever written.

pub mod cmd;
pub mod control;
mod file;
mod reconcile;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::ApiError;
use crate::fleet::{Operation, Service, SnowOptions};
use crate::ops::OpState;
use crate::ops::rollout::{Decision, Gate, Size};

pub use file::{
    Contents, Journal, OpenError, PATH_VARIABLE, RETENTION_SECS, default_path, holder, now, read,
    read_checked, when,
};
pub use reconcile::{
    Finished, Pending, RolloutState, Unfinished, rest_of, rollout_state, unfinished,
    unfinished_plans,
};

/// What a plan asks its devices to do, as the journal names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[serde(alias = "OTA")]
    Ota,
    Reboot,
    Unlock,
}

/// The mutating calls the journal guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    CreateJobForDevices,
    CreateTask,
    CancelTask,
}

impl Call {
    /// Calls that send an operation to devices (a cancel does not).
    pub fn sends(self) -> bool {
        matches!(self, Self::CreateJobForDevices | Self::CreateTask)
    }
}

/// An AWS error as recorded: its code and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub code: String,
    pub message: String,
}

impl From<&ApiError> for ErrorRecord {
    fn from(e: &ApiError) -> Self {
        Self {
            code: e.code.clone(),
            message: e.message.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// An operator confirmed a plan.
    Plan {
        plan: String,
        at: u64,
        action: Action,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        image_version: Option<String>,
        #[serde(default)]
        allow_major: bool,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        description: Option<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
        tags: BTreeMap<String, String>,
        /// The first scope's region and Snow endpoint (all an older journal records).
        region: String,
        endpoint: String,
        /// Every scope the plan reaches ("context/region") and its Snow endpoint.
        #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
        scopes: BTreeMap<String, String>,
        /// Each device's scope.
        #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
        routes: BTreeMap<String, String>,
        /// "panorama:<id>" or "snow:<id>".
        devices: Vec<String>,
        /// A staged rollout: its waves' devices and its gate.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        rollout: Option<RolloutRecord>,
        /// Devices preflight left out, with why: never sent, so a retry of the rest takes them.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        left_out: Vec<LeftOut>,
    },
    /// A rollout's wave began (from 0).
    Wave { plan: String, at: u64, wave: usize },
    /// A rollout's gate decided, or an operator spoke.
    Gate {
        plan: String,
        at: u64,
        #[serde(flatten)]
        decision: Decision,
    },
    /// A device's health after its operation succeeded.
    Health {
        plan: String,
        at: u64,
        device: String,
        healthy: bool,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        reason: Option<String>,
    },
    /// An appliance's applications before its operation: those running, by id and name. Its
    /// health afterwards is judged against them, also after a restart.
    Apps {
        plan: String,
        at: u64,
        device: String,
        running: Vec<crate::ops::rollout::AppRef>,
    },
    /// The rollout's CloudWatch alarms as read, and whether they broke the gate.
    Alarms {
        plan: String,
        at: u64,
        alarms: Vec<crate::fleet::AlarmReading>,
        breach: bool,
    },
    /// A device waits for its maintenance window: nothing is sent to it before `until`.
    Window {
        plan: String,
        at: u64,
        device: String,
        until: u64,
        window: String,
    },
    /// A mutating call is about to be sent.
    Intent {
        plan: String,
        at: u64,
        service: Service,
        operation: Call,
        devices: Vec<String>,
        /// Snow's client token, chosen before the first send and reused on every retry.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        token: Option<String>,
        /// Panorama: the appliance's jobs before the first send, for reconciliation.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        known_jobs: Vec<String>,
        /// CancelTask: the task.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        task: Option<String>,
    },
    /// What came of it.
    Outcome {
        plan: String,
        at: u64,
        service: Service,
        operation: Call,
        devices: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        resource_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        request_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<ErrorRecord>,
    },
    /// An operation reached a final state.
    Final {
        plan: String,
        at: u64,
        device: String,
        state: OpState,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        resource_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<ErrorRecord>,
    },
    /// Dispatch was stopped (a quit, a signal) with work left: the plan stays open and can be
    /// resumed. `unsent` were never sent; `unconfirmed` may or may not have been.
    Paused {
        plan: String,
        at: u64,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        unsent: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        unconfirmed: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        running: Vec<String>,
    },
    /// The plan is closed: every operation reached a final state, or the operator discarded
    /// it, abandoning the devices named.
    End {
        plan: String,
        at: u64,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        abandoned: Vec<String>,
    },
}

impl Record {
    pub fn plan(&self) -> &str {
        match self {
            Self::Plan { plan, .. }
            | Self::Intent { plan, .. }
            | Self::Outcome { plan, .. }
            | Self::Final { plan, .. }
            | Self::Wave { plan, .. }
            | Self::Gate { plan, .. }
            | Self::Health { plan, .. }
            | Self::Apps { plan, .. }
            | Self::Alarms { plan, .. }
            | Self::Window { plan, .. }
            | Self::Paused { plan, .. }
            | Self::End { plan, .. } => plan,
        }
    }
}

/// A plan's waves and gate, as journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// Each wave's devices, "panorama:<id>" or "snow:<id>".
    pub waves: Vec<Vec<String>>,
    /// The wave sizes as given ("1,10%,rest").
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub sizes: Vec<Size>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gate: Option<Gate>,
    /// What the gate watches besides the devices: applications, alarms, windows.
    /// A plan journaled before gates watched anything watches nothing on resume.
    #[serde(default = "crate::ops::watch::Watch::legacy")]
    pub watch: Box<crate::ops::rollout::Watch>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub device: String,
    pub reason: String,
}

/// The operation a journaled plan asked for.
pub fn operation_of(plan: &Record) -> Option<(Operation, SnowOptions)> {
    let Record::Plan {
        action,
        image_version,
        allow_major,
        description,
        tags,
        ..
    } = plan
    else {
        return None;
    };
    let operation = match (action, image_version) {
        (Action::Ota, Some(v)) => Operation::Ota {
            image_version: v.clone(),
            allow_major: *allow_major,
        },
        (Action::Ota, None) => return None,
        (Action::Reboot, _) => Operation::Reboot,
        (Action::Unlock, _) => Operation::Unlock,
    };
    let snow = SnowOptions {
        description: description.clone(),
        tags: tags.clone(),
    };
    Some((operation, snow))
}

/// A reboot plan record, for the journal's tests.
#[cfg(test)]
pub(crate) fn reboot_plan(id: &str, at: u64, devices: &[&str]) -> Record {
    Record::Plan {
        plan: id.into(),
        at,
        action: Action::Reboot,
        image_version: None,
        allow_major: false,
        description: None,
        tags: BTreeMap::new(),
        region: "us-east-1".into(),
        endpoint: "http://127.0.0.1:4580".into(),
        scopes: BTreeMap::new(),
        routes: BTreeMap::new(),
        devices: devices.iter().map(|d| d.to_string()).collect(),
        rollout: None,
        left_out: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, devices: &[&str]) -> Record {
        reboot_plan(id, 1, devices)
    }

    #[test]
    fn records_are_typed_on_disk_and_read_old_action_names() {
        let line = serde_json::to_string(&plan("p1", &["snow:a"])).unwrap();
        assert!(line.contains(r#""action":"reboot""#), "{line}");
        let old = r#"{"record":"plan","plan":"p0","at":1,"action":"OTA","image_version":"5.0.21","region":"r","endpoint":"e","devices":[]}"#;
        let Ok(Record::Plan { action, .. }) = serde_json::from_str::<Record>(old) else {
            panic!("an older plan record reads");
        };
        assert_eq!(action, Action::Ota);
        // A rollout journaled before gates watched applications resumes without that check;
        // one journaled since keeps what it was confirmed with.
        let gated = r#"{"record":"plan","plan":"p0","at":1,"action":"reboot","region":"r","endpoint":"e","devices":[],"rollout":{"waves":[["panorama:a"],["panorama:b"]]}}"#;
        let Ok(Record::Plan {
            rollout: Some(r), ..
        }) = serde_json::from_str::<Record>(gated)
        else {
            panic!("an older rollout reads");
        };
        assert!(!r.watch.app_health, "{r:?}");
        let now = serde_json::to_string(&RolloutRecord {
            watch: Box::default(),
            ..r
        })
        .unwrap();
        let again: RolloutRecord = serde_json::from_str(&now).unwrap();
        assert!(again.watch.app_health, "{now}");
        let f = Record::Final {
            plan: "p1".into(),
            at: 3,
            device: "snow:a".into(),
            state: OpState::TimedOut,
            resource_id: None,
            error: None,
        };
        let line = serde_json::to_string(&f).unwrap();
        assert!(line.contains(r#""state":"TIMED_OUT""#), "{line}");
    }
}
