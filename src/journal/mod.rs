//! The dispatch journal: JSON Lines, append-only and fsynced. Before each mutating call an
//! intent record, after it an outcome record, so that what was sent can always be told from
//! what was only planned. No credentials or secrets are ever written.

mod file;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use file::{Journal, PATH_VARIABLE, default_path, now, read};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// An operator confirmed a plan.
    Plan {
        plan: String,
        at: u64,
        action: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        image_version: Option<String>,
        #[serde(default)]
        allow_major: bool,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        description: Option<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
        tags: BTreeMap<String, String>,
        region: String,
        endpoint: String,
        /// "panorama:<id>" or "snow:<id>".
        devices: Vec<String>,
    },
    /// A mutating call is about to be sent.
    Intent {
        plan: String,
        at: u64,
        service: String,
        operation: String,
        devices: Vec<String>,
        action: String,
        /// Snow's client token, chosen before the first send and reused on every retry.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        token: Option<String>,
        /// Panorama: the appliance's jobs before the first send, for reconciliation.
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        known_jobs: Vec<String>,
    },
    /// What came of it.
    Outcome {
        plan: String,
        at: u64,
        service: String,
        devices: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        resource_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        request_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
    },
    /// Every device of the plan has reached a final state, or the operator left with these
    /// still in flight.
    End {
        plan: String,
        at: u64,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        in_flight: Vec<String>,
    },
}

/// What of an unfinished plan is still to be confirmed.
#[derive(Clone, Debug, PartialEq)]
pub enum Pending {
    /// An appliance with no job recorded. `known_jobs` is what it had before the first send,
    /// if a send was begun: a job beyond those is the lost answer's.
    Panorama {
        device: String,
        known_jobs: Option<Vec<String>>,
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
    service: &'a str,
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
        let confirmed: std::collections::HashSet<&String> = records
            .iter()
            .filter_map(|r| match r {
                Record::Outcome {
                    plan,
                    devices,
                    resource_id: Some(_),
                    ..
                } if mine(plan) => Some(devices),
                _ => None,
            })
            .flatten()
            .collect();
        let intents: Vec<Sent> = records
            .iter()
            .filter_map(|r| match r {
                Record::Intent {
                    plan,
                    service,
                    devices,
                    token,
                    known_jobs,
                    ..
                } if mine(plan) => Some(Sent {
                    service,
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
                let known_jobs = intents
                    .iter()
                    .find(|s| s.service == "panorama" && s.devices.contains(&id))
                    .map(|s| s.known_jobs.clone());
                pending.push(Pending::Panorama {
                    device: id,
                    known_jobs,
                });
            } else if let Some(id) = d.strip_prefix("snow:") {
                let id = id.to_string();
                if confirmed.contains(&id) || snow_seen.contains(&id) {
                    continue;
                }
                match intents
                    .iter()
                    .find(|s| s.service == "snow" && s.devices.contains(&id))
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
        for chunk in snow_fresh.chunks(crate::fleet::plan::SNOW_TARGETS_PER_TASK) {
            pending.push(Pending::Snow {
                devices: chunk.to_vec(),
                token: None,
            });
        }
        if !pending.is_empty() {
            out.push(Unfinished {
                plan: plan.clone(),
                pending,
            });
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;

    fn intent(plan: &str) -> Record {
        Record::Intent {
            plan: plan.into(),
            at: 1,
            service: "snow".into(),
            operation: "CreateTask".into(),
            devices: vec!["smd-1".into()],
            action: "unlock".into(),
            token: Some("t-1".into()),
            known_jobs: vec![],
        }
    }

    fn plan(id: &str) -> Record {
        Record::Plan {
            plan: id.into(),
            at: 1,
            action: "unlock".into(),
            image_version: None,
            allow_major: false,
            description: None,
            tags: BTreeMap::new(),
            region: "us-east-1".into(),
            endpoint: "http://127.0.0.1:4580".into(),
            devices: vec!["snow:smd-1".into()],
        }
    }

    #[test]
    fn records_round_trip_and_survive_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("fleetdeck-journal-{}", uuid::Uuid::new_v4()));
        let path = dir.join("journal.jsonl");
        let journal = Journal::open(&path).unwrap();
        journal.append(&plan("p1")).unwrap();
        journal.append(&intent("p1")).unwrap();
        drop(journal);
        // A crash mid-write leaves half a line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"record\":\"outcome\",\"pla").unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records, vec![plan("p1"), intent("p1")]);
        assert_eq!(unfinished(&records), vec!["p1".to_string()]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn pending_work_is_what_no_outcome_confirms() {
        let mut p = plan("p1");
        if let Record::Plan { devices, .. } = &mut p {
            *devices = vec![
                "panorama:a".into(),
                "panorama:b".into(),
                "panorama:c".into(),
                "snow:s1".into(),
                "snow:s2".into(),
                "snow:s3".into(),
            ];
        }
        let intent =
            |service: &str, devices: &[&str], token: Option<&str>, known: &[&str]| Record::Intent {
                plan: "p1".into(),
                at: 1,
                service: service.into(),
                operation: "x".into(),
                devices: devices.iter().map(|d| d.to_string()).collect(),
                action: "reboot".into(),
                token: token.map(str::to_string),
                known_jobs: known.iter().map(|d| d.to_string()).collect(),
            };
        let outcome = |service: &str, devices: &[&str], id: Option<&str>| Record::Outcome {
            plan: "p1".into(),
            at: 2,
            service: service.into(),
            devices: devices.iter().map(|d| d.to_string()).collect(),
            resource_id: id.map(str::to_string),
            request_id: None,
            error: None,
        };
        let records = vec![
            p,
            intent("panorama", &["a"], None, &["job-old"]),
            outcome("panorama", &["a"], Some("job-1")),
            // b was being sent when the process died: no outcome.
            intent("panorama", &["b"], None, &["job-b0"]),
            intent("snow", &["s1", "s2"], Some("tok-1"), &[]),
            outcome("snow", &["s1", "s2"], None),
        ];
        let left = unfinished_plans(&records);
        assert_eq!(left.len(), 1);
        assert_eq!(
            left[0].pending,
            vec![
                Pending::Panorama {
                    device: "b".into(),
                    known_jobs: Some(vec!["job-b0".into()])
                },
                Pending::Panorama {
                    device: "c".into(),
                    known_jobs: None
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
    fn an_ended_plan_is_finished() {
        let records = vec![
            plan("p1"),
            plan("p2"),
            Record::End {
                plan: "p1".into(),
                at: 2,
                in_flight: vec![],
            },
        ];
        assert_eq!(unfinished(&records), vec!["p2".to_string()]);
    }
}
