//! What the records say is left: the plans begun and not ended, what each still needs (devices
//! no outcome names a job or task for, with what a resend must know), where its rollout
//! stood, and what a retry of an ended plan sends.

use std::collections::HashSet;

use super::{ErrorRecord, Record};
use crate::fleet::{SNOW_TARGETS_PER_TASK, Service};
use crate::ops::OpState;
use crate::ops::rollout::{Decision, Figures, Verdict};

/// Where a rollout stood when its process ended: the wave begun last, what had finished,
/// the decisions made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RolloutState {
    pub wave: usize,
    pub figures: Figures,
    pub decisions: Vec<Decision>,
    /// When the gate last passed the current wave (epoch seconds): a bake goes on from there.
    pub passed_at: Option<u64>,
    /// What the gate's watch recorded: applications before, waits for windows.
    pub watched: Vec<Record>,
}

/// Reads a plan's rollout progress from its records.
pub fn rollout_state(records: &[Record], id: &str) -> RolloutState {
    state_of(records.iter().filter(|r| r.plan() == id))
}

fn state_of<'a>(mine: impl Iterator<Item = &'a Record>) -> RolloutState {
    let mut state = RolloutState::default();
    for r in mine {
        match r {
            Record::Wave { wave, .. } => {
                state.wave = *wave;
                state.passed_at = None;
            }
            Record::Gate { at, decision, .. } => {
                if decision.verdict == Verdict::Passed && decision.wave == state.wave {
                    state.passed_at = Some(*at);
                }
                if decision.verdict == Verdict::Promoted {
                    state.watched.push(r.clone());
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
            Record::Apps { .. } | Record::Window { .. } | Record::Alarms { .. } => {
                state.watched.push(r.clone())
            }
            _ => {}
        }
    }
    state
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
    /// Devices whose operation ended, as recorded: a resume shows them as they ended, so its
    /// gauges count the whole plan.
    pub finished: Vec<Finished>,
}

/// An operation's end, as the journal recorded it, with the device's health after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// "panorama:<id>" or "snow:<id>".
    pub device: String,
    pub state: OpState,
    pub resource_id: Option<String>,
    pub error: Option<ErrorRecord>,
    /// After a success in a gated rollout: healthy or not, and why not.
    pub health: Option<Result<(), String>>,
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
    unfinished(records)
        .into_iter()
        .filter_map(|id| open_plan(records, &id))
        .collect()
}

/// One open plan's reckoning; `None` when nothing is left to send or to follow.
fn open_plan(records: &[Record], id: &str) -> Option<Unfinished> {
    let mine: Vec<&Record> = records.iter().filter(|r| r.plan() == id).collect();
    let plan = mine.iter().find(|r| matches!(r, Record::Plan { .. }))?;
    let Record::Plan { devices, .. } = plan else {
        return None;
    };
    let finals: HashSet<&String> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Final { device, .. } => Some(device),
            _ => None,
        })
        .collect();
    let pending = pending(devices, &confirmed(&mine, &finals), &intents(&mine));
    let running = running(&mine, &finals);
    let finished = finished(devices, &mine);
    // A gated plan whose successes' health was never read (the process ended while reading
    // it) still needs its gate's word before it can end.
    let gated = matches!(plan, Record::Plan { rollout: Some(r), .. } if r.gate.is_some() || r.waves.len() > 1);
    let unread = gated
        && finished
            .iter()
            .any(|f| f.state == OpState::Succeeded && f.health.is_none());
    // A plan a crash cut off after its last send still has operations to follow.
    if pending.is_empty() && running.is_empty() && !unread {
        return None;
    }
    Some(Unfinished {
        plan: (*plan).clone(),
        pending,
        running,
        rollout: state_of(mine.iter().copied()),
        finished,
    })
}

/// The operations that ended, each named as the plan names its device.
fn finished(devices: &[String], mine: &[&Record]) -> Vec<Finished> {
    let named = |bare: &str| {
        devices
            .iter()
            .find(|d| d.split_once(':').is_some_and(|(_, id)| id == bare))
            .cloned()
    };
    let mut out: Vec<Finished> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Final {
                device,
                state,
                resource_id,
                error,
                ..
            } => Some(Finished {
                device: named(device)?,
                state: *state,
                resource_id: resource_id.clone(),
                error: error.clone(),
                health: None,
            }),
            _ => None,
        })
        .collect();
    for r in mine {
        if let Record::Health {
            device,
            healthy,
            reason,
            ..
        } = r
            && let Some(f) = out
                .iter_mut()
                .find(|f| f.device.ends_with(&format!(":{device}")))
        {
            f.health = Some(if *healthy {
                Ok(())
            } else {
                Err(reason.clone().unwrap_or_default())
            });
        }
    }
    out
}

/// Devices sent for sure (an outcome names the job or task), or settled another way (a final
/// state was recorded: skipped, or refused by the service).
fn confirmed<'a>(mine: &[&'a Record], finals: &HashSet<&'a String>) -> HashSet<&'a String> {
    let mut out: HashSet<&String> = mine
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
    out.extend(finals.iter().copied());
    out
}

fn intents<'a>(mine: &[&'a Record]) -> Vec<Sent<'a>> {
    mine.iter()
        .filter_map(|r| match r {
            Record::Intent {
                at,
                service,
                operation,
                devices,
                token,
                known_jobs,
                ..
            } if operation.sends() => Some(Sent {
                at: *at,
                service: *service,
                devices,
                token,
                known_jobs,
            }),
            _ => None,
        })
        .collect()
}

/// What each unconfirmed device needs: an appliance its jobs before the first send and when
/// it was last sent; a Snow batch begun its token (the batch goes again as it was); Snow
/// devices never sent fresh batches of 10.
fn pending(devices: &[String], confirmed: &HashSet<&String>, intents: &[Sent]) -> Vec<Pending> {
    let mut pending = Vec::new();
    let mut snow_seen: HashSet<&String> = HashSet::new();
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
            let batch = intents
                .iter()
                .find(|s| s.service == Service::Snow && s.devices.contains(&id));
            match batch {
                Some(sent) => {
                    let left: Vec<String> = sent
                        .devices
                        .iter()
                        .filter(|b| !confirmed.contains(b))
                        .cloned()
                        .collect();
                    snow_seen.extend(sent.devices.iter());
                    pending.push(Pending::Snow {
                        devices: left,
                        token: sent.token.clone(),
                    });
                }
                None => snow_fresh.push(id),
            }
        }
    }
    for chunk in snow_fresh.chunks(SNOW_TARGETS_PER_TASK) {
        pending.push(Pending::Snow {
            devices: chunk.to_vec(),
            token: None,
        });
    }
    pending
}

/// Devices an outcome names a job or task for, with no final state recorded.
fn running(mine: &[&Record], finals: &HashSet<&String>) -> Vec<(String, String)> {
    let mut running: Vec<(String, String)> = Vec::new();
    for r in mine {
        if let Record::Outcome {
            service,
            operation,
            devices,
            resource_id: Some(job),
            ..
        } = r
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
    running
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
    let mine: Vec<&Record> = records.iter().filter(|r| r.plan() == id).collect();
    let mut good: HashSet<String> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Final {
                device,
                state: OpState::Succeeded,
                ..
            } => Some(device.clone()),
            _ => None,
        })
        .collect();
    // Sent with no final state recorded (the plan was closed while they ran): their end is
    // unknown, so they are not sent again blindly.
    let finals: HashSet<&String> = mine
        .iter()
        .filter_map(|r| match r {
            Record::Final { device, .. } => Some(device),
            _ => None,
        })
        .collect();
    for (name, _) in running(&mine, &finals) {
        if let Some((_, bare)) = name.split_once(':') {
            good.insert(bare.to_string());
        }
    }
    for r in &mine {
        if let Record::Health {
            device,
            healthy: false,
            ..
        } = r
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Call, LeftOut, reboot_plan};

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
            by: None,
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
