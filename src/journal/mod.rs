//! The dispatch journal: JSON Lines, append-only and fsynced. Before each mutating call an
//! intent record, after it an outcome record, so that what was sent can always be told from
//! what was only planned. No credentials or secrets are ever written.

pub mod cmd;
mod file;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::ApiError;
use crate::fleet::{Operation, Service, SnowOptions};
use crate::ops::OpState;
use crate::ops::rollout::{Decision, Figures, Gate, Size, Verdict};

pub use file::{
    Contents, Control, Journal, OpenError, PATH_VARIABLE, RETENTION_SECS, control_dir,
    default_path, now, read, read_checked, request, take_requests, when,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub device: String,
    pub reason: String,
}

/// Where a rollout stood when its process ended: the wave begun last, what had finished,
/// the decisions made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutState {
    pub wave: usize,
    pub figures: Figures,
    pub decisions: Vec<Decision>,
    /// When the gate last passed the current wave (epoch seconds): a bake goes on from there.
    pub passed_at: Option<u64>,
}

/// Reads a plan's rollout progress from its records.
pub fn rollout_state(records: &[Record], id: &str) -> RolloutState {
    let mut state = RolloutState::default();
    for r in records.iter().filter(|r| r.plan() == id) {
        match r {
            Record::Wave { wave, .. } => {
                state.wave = *wave;
                state.passed_at = None;
            }
            Record::Gate { at, decision, .. } => {
                if decision.verdict == Verdict::Passed && decision.wave == state.wave {
                    state.passed_at = Some(*at);
                }
                state.decisions.push(decision.clone());
            }
            Record::Final { state: s, .. } if *s != OpState::Skipped => {
                state.figures.finished += 1;
                if *s != OpState::Succeeded {
                    state.figures.failed += 1;
                }
            }
            Record::Health { healthy: false, .. } => state.figures.failed += 1,
            _ => {}
        }
    }
    state
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

/// What of an unfinished plan is still to be confirmed.
#[derive(Clone, Debug, PartialEq)]
pub enum Pending {
    /// An appliance with no job recorded. `known_jobs` is what it had before the first send,
    /// if a send was begun: a job beyond those is the lost answer's.
    Panorama {
        device: String,
        known_jobs: Option<Vec<String>>,
        /// When the last send was begun (epoch seconds): a request still on its way could land
        /// until its deadline has passed, so the jobs are read only after that.
        last_sent: Option<u64>,
    },
    /// Snow devices with no task recorded, and the client token their batch was sent under,
    /// if it was: resending with it cannot create a second task.
    Snow {
        devices: Vec<String>,
        token: Option<String>,
    },
}

/// A plan a crash left open, with what it still needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Unfinished {
    pub plan: Record,
    pub pending: Vec<Pending>,
    /// Devices sent (an outcome names the job or task) with no final state recorded:
    /// "panorama:<id>" or "snow:<id>", and the job or task. A resume follows them again, so
    /// the wave they are in is gated on their end.
    pub running: Vec<(String, String)>,
    /// Where its rollout stood.
    pub rollout: RolloutState,
}

impl Unfinished {
    pub fn pending_devices(&self) -> Vec<String> {
        self.pending
            .iter()
            .flat_map(|p| match p {
                Pending::Panorama { device, .. } => vec![format!("panorama:{device}")],
                Pending::Snow { devices, .. } => {
                    devices.iter().map(|d| format!("snow:{d}")).collect()
                }
            })
            .collect()
    }
}

/// An intent, as reconciliation reads it.
struct Sent<'a> {
    at: u64,
    service: Service,
    devices: &'a Vec<String>,
    token: &'a Option<String>,
    known_jobs: &'a Vec<String>,
}

/// Every unfinished plan and what it still needs: devices no outcome names a job or task for.
pub fn unfinished_plans(records: &[Record]) -> Vec<Unfinished> {
    let open = unfinished(records);
    let mut out = Vec::new();
    for id in open {
        let Some(plan) = records
            .iter()
            .find(|r| matches!(r, Record::Plan { plan, .. } if *plan == id))
        else {
            continue;
        };
        let Record::Plan { devices, .. } = plan else {
            continue;
        };
        let mine = |p: &str| p == id;
        // Sent for sure (an outcome names the job or task), or settled another way (a final
        // state was recorded: skipped, or refused by the service).
        let mut confirmed: std::collections::HashSet<&String> = records
            .iter()
            .filter_map(|r| match r {
                Record::Outcome {
                    plan,
                    operation,
                    devices,
                    resource_id: Some(_),
                    ..
                } if mine(plan) && operation.sends() => Some(devices),
                _ => None,
            })
            .flatten()
            .collect();
        confirmed.extend(records.iter().filter_map(|r| match r {
            Record::Final { plan, device, .. } if mine(plan) => Some(device),
            _ => None,
        }));
        let intents: Vec<Sent> = records
            .iter()
            .filter_map(|r| match r {
                Record::Intent {
                    plan,
                    at,
                    service,
                    operation,
                    devices,
                    token,
                    known_jobs,
                    ..
                } if mine(plan) && operation.sends() => Some(Sent {
                    at: *at,
                    service: *service,
                    devices,
                    token,
                    known_jobs,
                }),
                _ => None,
            })
            .collect();
        let mut pending = Vec::new();
        let mut snow_seen: std::collections::HashSet<&String> = std::collections::HashSet::new();
        let mut snow_fresh = Vec::new();
        for d in devices {
            if let Some(id) = d.strip_prefix("panorama:") {
                let id = id.to_string();
                if confirmed.contains(&id) {
                    continue;
                }
                let sent: Vec<&Sent> = intents
                    .iter()
                    .filter(|s| s.service == Service::Panorama && s.devices.contains(&id))
                    .collect();
                pending.push(Pending::Panorama {
                    device: id,
                    known_jobs: sent.first().map(|s| s.known_jobs.clone()),
                    last_sent: sent.last().map(|s| s.at),
                });
            } else if let Some(id) = d.strip_prefix("snow:") {
                let id = id.to_string();
                if confirmed.contains(&id) || snow_seen.contains(&id) {
                    continue;
                }
                match intents
                    .iter()
                    .find(|s| s.service == Service::Snow && s.devices.contains(&id))
                {
                    Some(Sent {
                        devices: batch,
                        token,
                        ..
                    }) => {
                        let left: Vec<String> = batch
                            .iter()
                            .filter(|b| !confirmed.contains(b))
                            .cloned()
                            .collect();
                        snow_seen.extend(batch.iter());
                        pending.push(Pending::Snow {
                            devices: left,
                            token: (*token).clone(),
                        });
                    }
                    None => snow_fresh.push(id),
                }
            }
        }
        for chunk in snow_fresh.chunks(crate::fleet::SNOW_TARGETS_PER_TASK) {
            pending.push(Pending::Snow {
                devices: chunk.to_vec(),
                token: None,
            });
        }
        {
            let finals: std::collections::HashSet<&String> = records
                .iter()
                .filter_map(|r| match r {
                    Record::Final { plan, device, .. } if mine(plan) => Some(device),
                    _ => None,
                })
                .collect();
            let mut running: Vec<(String, String)> = Vec::new();
            for r in records {
                if let Record::Outcome {
                    plan,
                    service,
                    operation,
                    devices,
                    resource_id: Some(job),
                    ..
                } = r
                    && mine(plan)
                    && operation.sends()
                {
                    let prefix = match service {
                        Service::Panorama => "panorama",
                        Service::Snow => "snow",
                    };
                    for d in devices.iter().filter(|d| !finals.contains(d)) {
                        let name = format!("{prefix}:{d}");
                        if !running.iter().any(|(n, _)| *n == name) {
                            running.push((name, job.clone()));
                        }
                    }
                }
            }
            // A plan a crash cut off after its last send still has operations to follow.
            if pending.is_empty() && running.is_empty() {
                continue;
            }
            out.push(Unfinished {
                plan: plan.clone(),
                pending,
                running,
                rollout: rollout_state(records, &id),
            });
        }
    }
    out
}

/// What a retry of an ended plan sends: every device it never sent or that did not succeed
/// (failed, timed out, canceled, skipped, abandoned, not healthy, left out by preflight).
pub fn rest_of(records: &[Record], id: &str) -> Vec<String> {
    let Some(Record::Plan {
        devices, left_out, ..
    }) = records
        .iter()
        .find(|r| matches!(r, Record::Plan { plan, .. } if plan == id))
    else {
        return Vec::new();
    };
    let mut good: std::collections::HashSet<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Final {
                plan,
                device,
                state: OpState::Succeeded,
                ..
            } if plan == id => Some(device.clone()),
            _ => None,
        })
        .collect();
    // Sent with no final state recorded (the plan was closed while they ran): their end is
    // unknown, so they are not sent again blindly.
    let finals: std::collections::HashSet<&String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Final { plan, device, .. } if plan == id => Some(device),
            _ => None,
        })
        .collect();
    for r in records {
        match r {
            Record::Outcome {
                plan,
                operation,
                devices,
                resource_id: Some(_),
                ..
            } if plan == id && operation.sends() => {
                good.extend(devices.iter().filter(|d| !finals.contains(d)).cloned());
            }
            _ => {}
        }
    }
    for r in records {
        if let Record::Health {
            plan,
            device,
            healthy: false,
            ..
        } = r
            && plan == id
        {
            good.remove(device);
        }
    }
    devices
        .iter()
        .filter(|d| {
            let bare = d.split_once(':').map_or(d.as_str(), |(_, id)| id);
            !good.contains(bare)
        })
        .cloned()
        .chain(left_out.iter().map(|l| l.device.clone()))
        .collect()
}

/// Plans the journal shows begun and not ended: what a crash left behind.
pub fn unfinished(records: &[Record]) -> Vec<String> {
    let mut open: Vec<String> = Vec::new();
    for r in records {
        match r {
            Record::Plan { plan, .. } => open.push(plan.clone()),
            Record::End { plan, .. } => open.retain(|p| p != plan),
            _ => {}
        }
    }
    open
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

    fn intent(service: Service, devices: &[&str], token: Option<&str>, known: &[&str]) -> Record {
        Record::Intent {
            plan: "p1".into(),
            at: 1,
            service,
            operation: match service {
                Service::Panorama => Call::CreateJobForDevices,
                Service::Snow => Call::CreateTask,
            },
            devices: devices.iter().map(|d| d.to_string()).collect(),
            token: token.map(str::to_string),
            known_jobs: known.iter().map(|d| d.to_string()).collect(),
            task: None,
        }
    }

    fn outcome(service: Service, call: Call, devices: &[&str], id: Option<&str>) -> Record {
        Record::Outcome {
            plan: "p1".into(),
            at: 2,
            service,
            operation: call,
            devices: devices.iter().map(|d| d.to_string()).collect(),
            resource_id: id.map(str::to_string),
            request_id: None,
            error: None,
        }
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

    #[test]
    fn pending_work_is_what_no_outcome_confirms() {
        let records = vec![
            plan(
                "p1",
                &[
                    "panorama:a",
                    "panorama:b",
                    "panorama:c",
                    "panorama:d",
                    "snow:s1",
                    "snow:s2",
                    "snow:s3",
                ],
            ),
            intent(Service::Panorama, &["a"], None, &["job-old"]),
            outcome(
                Service::Panorama,
                Call::CreateJobForDevices,
                &["a"],
                Some("job-1"),
            ),
            // b was being sent when the process died: no outcome.
            intent(Service::Panorama, &["b"], None, &["job-b0"]),
            intent(Service::Snow, &["s1", "s2"], Some("tok-1"), &[]),
            outcome(Service::Snow, Call::CreateTask, &["s1", "s2"], None),
            // d was refused for good (skipped as busy): settled, not pending.
            Record::Final {
                plan: "p1".into(),
                at: 2,
                device: "d".into(),
                state: OpState::Skipped,
                resource_id: None,
                error: None,
            },
            // A cancel names devices too, and sends nothing to them.
            Record::Outcome {
                plan: "p1".into(),
                at: 3,
                service: Service::Snow,
                operation: Call::CancelTask,
                devices: vec!["s3".into()],
                resource_id: Some("task-9".into()),
                request_id: None,
                error: None,
            },
            Record::Paused {
                plan: "p1".into(),
                at: 4,
                unsent: vec!["panorama:c".into()],
                unconfirmed: vec![],
                running: vec![],
            },
        ];
        let left = unfinished_plans(&records);
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].pending,
            vec![
                Pending::Panorama {
                    device: "b".into(),
                    known_jobs: Some(vec!["job-b0".into()]),
                    last_sent: Some(1),
                },
                Pending::Panorama {
                    device: "c".into(),
                    known_jobs: None,
                    last_sent: None,
                },
                Pending::Snow {
                    devices: vec!["s1".into(), "s2".into()],
                    token: Some("tok-1".into())
                },
                Pending::Snow {
                    devices: vec!["s3".into()],
                    token: None
                },
            ]
        );
    }

    #[test]
    fn an_ended_plan_is_finished_and_a_paused_one_is_not() {
        let records = vec![
            plan("p1", &[]),
            plan("p2", &[]),
            Record::Paused {
                plan: "p2".into(),
                at: 2,
                unsent: vec![],
                unconfirmed: vec![],
                running: vec![],
            },
            Record::End {
                plan: "p1".into(),
                at: 2,
                abandoned: vec![],
            },
        ];
        assert_eq!(unfinished(&records), vec!["p2".to_string()]);
    }

    #[test]
    fn a_rollout_resumes_where_it_stood_and_a_retry_takes_what_did_not_succeed() {
        let fin = |device: &str, state| Record::Final {
            plan: "p1".into(),
            at: 2,
            device: device.into(),
            state,
            resource_id: None,
            error: None,
        };
        let mut p = plan(
            "p1",
            &["panorama:a", "panorama:b", "panorama:c", "panorama:d"],
        );
        if let Record::Plan { left_out, .. } = &mut p {
            left_out.push(LeftOut {
                device: "panorama:e".into(),
                reason: "the appliance is offline".into(),
            });
        }
        let decision = |wave, verdict, failed| Decision {
            wave,
            verdict,
            figures: Figures {
                finished: 2,
                failed,
            },
            detail: String::new(),
        };
        let records = vec![
            p,
            Record::Wave {
                plan: "p1".into(),
                at: 1,
                wave: 0,
            },
            fin("a", OpState::Succeeded),
            fin("b", OpState::Succeeded),
            Record::Health {
                plan: "p1".into(),
                at: 3,
                device: "b".into(),
                healthy: false,
                reason: Some("runs 5.0.10".into()),
            },
            Record::Gate {
                plan: "p1".into(),
                at: 4,
                decision: decision(0, Verdict::Breached, 1),
            },
            Record::Gate {
                plan: "p1".into(),
                at: 5,
                decision: decision(0, Verdict::Promoted, 1),
            },
            Record::Wave {
                plan: "p1".into(),
                at: 6,
                wave: 1,
            },
            fin("c", OpState::Skipped),
        ];
        let state = rollout_state(&records, "p1");
        assert_eq!(state.wave, 1);
        // a and b finished, b not healthy; c was skipped, never sent: not counted.
        assert_eq!(
            state.figures,
            Figures {
                finished: 2,
                failed: 1
            }
        );
        assert_eq!(state.decisions.len(), 2);
        // A retry: b (not healthy), c (skipped), d (never sent) and e (left out); not a.
        assert_eq!(
            rest_of(&records, "p1"),
            vec!["panorama:b", "panorama:c", "panorama:d", "panorama:e"]
        );
        // The records read back as written.
        for r in &records {
            let line = serde_json::to_string(r).unwrap();
            assert_eq!(&serde_json::from_str::<Record>(&line).unwrap(), r, "{line}");
        }
    }
}
