//! Unfinished plans from the journal, as they bear on this process: offered for a resume
//! where every scope they reach is in use, keeping their devices from new plans, and closed
//! by a discard that reconciles what may have been sent.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Internal, Worker, device_ref, parse_device_ref};
use crate::aws::{self, ApiError, ErrorKind};
use crate::fleet::{DeviceKey, Service};
use crate::journal::{self, Call, Record, operation_of};
use crate::protocol::{Event, Resumable};

impl Worker {
    /// Offers the plans a crash or a quit left open, where they were made against this same
    /// region and endpoint (a demo's simulator is gone with its process, so its plans are not).
    pub(super) fn offer_unfinished(&mut self) {
        let Some(path) = &self.settings.journal else {
            return;
        };
        let records = match journal::read_checked(path) {
            Ok(c) => {
                for warning in c.warnings {
                    self.emit(Event::Failure(format!("The journal: {warning}")));
                }
                c.records
            }
            Err(e) => return self.emit(Event::Failure(format!("{e:#}"))),
        };
        self.close_settled(&records);
        let paused: std::collections::HashSet<&str> = records
            .iter()
            .filter_map(|r| match r {
                Record::Paused { plan, .. } => Some(plan.as_str()),
                _ => None,
            })
            .collect();
        for u in journal::unfinished_plans(&records) {
            let Record::Plan {
                plan, at, devices, ..
            } = &u.plan
            else {
                continue;
            };
            if self.plan_routes(&u.plan).is_none() {
                // Some of its scopes are here, not all: it cannot be resumed now, but its
                // devices here are still in it, so no new plan may take them.
                let missing = self.missing_scopes(&u.plan);
                if !missing.is_empty() && self.reaches_here(&u.plan) {
                    self.elsewhere.insert(plan.clone(), (u, missing));
                }
                continue;
            }
            let Some((operation, _)) = operation_of(&u.plan) else {
                continue;
            };
            let pending = u
                .pending_devices()
                .iter()
                .filter_map(|d| parse_device_ref(d))
                .collect();
            let offer = Resumable {
                plan: plan.clone(),
                at: *at,
                operation,
                pending,
                paused: paused.contains(plan.as_str()),
                total: devices.len(),
                running: u.running.len(),
            };
            self.offered.insert(plan.clone(), offer.clone());
            self.emit(Event::Unfinished(offer));
            self.unfinished.insert(plan.clone(), u);
        }
    }

    /// Closes the plans the journal shows begun, with every operation ended and no end
    /// recorded (the process stopped between the last end and the plan's): nothing is left to
    /// send or follow, and an open plan would block its devices and `--retry` for ever.
    fn close_settled(&mut self, records: &[Record]) {
        let live = self.book.open_plans();
        let left: std::collections::HashSet<String> = journal::unfinished_plans(records)
            .into_iter()
            .filter_map(|u| match u.plan {
                Record::Plan { plan, .. } => Some(plan),
                _ => None,
            })
            .collect();
        for plan in journal::unfinished(records) {
            if left.contains(&plan) || live.contains(&plan) || self.rollouts.contains_key(&plan) {
                continue;
            }
            tracing::info!(plan = %plan, "closing a plan whose every operation had ended");
            let _ = self.journal(&Record::End {
                plan,
                at: journal::now(),
                abandoned: Vec::new(),
            });
        }
    }

    /// Where a journaled plan's devices are, when every scope it reaches is in use with the
    /// same endpoint (a demo's simulator is gone with its process, so its plans are not). An
    /// older journal's plan reached one scope: the one with its region and endpoint.
    pub(super) fn plan_routes(&self, record: &Record) -> Option<HashMap<DeviceKey, String>> {
        let Record::Plan {
            region,
            endpoint,
            scopes,
            routes,
            devices,
            ..
        } = record
        else {
            return None;
        };
        if scopes.is_empty() {
            let place = self
                .places
                .iter()
                .find(|p| p.conn.region == *region && p.conn.snow_endpoint == *endpoint)?;
            let scope = place.conn.scope();
            return Some(
                devices
                    .iter()
                    .filter_map(|d| parse_device_ref(d))
                    .map(|k| (k, scope.clone()))
                    .collect(),
            );
        }
        let here = scopes.iter().all(|(scope, endpoint)| {
            self.place(scope)
                .is_some_and(|p| p.conn.snow_endpoint == *endpoint)
        });
        if !here {
            return None;
        }
        Some(
            routes
                .iter()
                .filter_map(|(d, scope)| Some((parse_device_ref(d)?, scope.clone())))
                .collect(),
        )
    }

    /// The scopes a journaled plan reaches that are not in use with its endpoint.
    pub(super) fn missing_scopes(&self, record: &Record) -> Vec<String> {
        let Record::Plan { scopes, .. } = record else {
            return Vec::new();
        };
        scopes
            .iter()
            .filter(|(scope, endpoint)| {
                self.place(scope)
                    .is_none_or(|p| p.conn.snow_endpoint != **endpoint)
            })
            .map(|(scope, _)| scope.clone())
            .collect()
    }

    /// Whether any scope of a journaled plan is in use with its endpoint.
    pub(super) fn reaches_here(&self, record: &Record) -> bool {
        let Record::Plan { scopes, .. } = record else {
            return false;
        };
        scopes.iter().any(|(scope, endpoint)| {
            self.place(scope)
                .is_some_and(|p| p.conn.snow_endpoint == *endpoint)
        })
    }

    pub(super) fn resumable(&self, id: &str) -> Option<Resumable> {
        self.offered.get(id).cloned()
    }

    /// Why a device may not be in a new plan: an unfinished plan from the journal names it, or
    /// an operation of this process has it in flight.
    pub(super) fn overlap(&self, keys: &[DeviceKey]) -> Option<(ApiError, Option<String>)> {
        for key in keys {
            let name = device_ref(key);
            if let Some((id, _)) = self
                .unfinished
                .iter()
                .find(|(_, u)| u.pending_devices().contains(&name))
            {
                let detail = format!(
                    "{} is in the unfinished plan {id}: resume it or discard it first",
                    key.id
                );
                return Some((
                    ApiError::new(ErrorKind::Conflict, "OverlapsUnfinishedPlan", detail),
                    Some(id.clone()),
                ));
            }
            if let Some((id, (_, missing))) = self
                .elsewhere
                .iter()
                .find(|(_, (u, _))| u.pending_devices().contains(&name))
            {
                let detail = format!(
                    "{} is in the unfinished plan {id}, which also reaches {} (not in use): start with those contexts too to resume or discard it",
                    key.id,
                    missing.join(", ")
                );
                return Some((
                    ApiError::new(ErrorKind::Conflict, "OverlapsUnfinishedPlan", detail),
                    None,
                ));
            }
            if let Some(op) = self.book.live_op(key) {
                let detail = format!(
                    "{} already has an operation under way (plan {})",
                    key.id, op.plan
                );
                return Some((
                    ApiError::new(ErrorKind::Conflict, "DeviceInFlight", detail),
                    None,
                ));
            }
        }
        None
    }

    /// Closes an unfinished plan without sending: an appliance whose send may have happened
    /// is read first, and a job found is recorded as the plan's; the rest are abandoned.
    pub(super) fn discard(&mut self, id: &str) {
        let Some(u) = self.unfinished.remove(id) else {
            return self.emit(Event::Failure(format!(
                "No unfinished plan {id} for the contexts in use to discard"
            )));
        };
        if self.journal.is_none() || self.settings.read_only {
            self.unfinished.insert(id.to_string(), u);
            return self.emit(Event::Failure(format!(
                "Plan {id} was not discarded: the journal cannot be written here"
            )));
        }
        // Each appliance is read in its own scope.
        let routes = self.plan_routes(&u.plan).unwrap_or_default();
        let reach: HashMap<String, (aws_sdk_panorama::Client, Arc<super::limits::Limits>)> = u
            .pending
            .iter()
            .filter_map(|p| match p {
                journal::Pending::Panorama { device, .. } => {
                    let key = DeviceKey::new(Service::Panorama, device.clone());
                    let place = match routes.get(&key) {
                        Some(s) => self.place(s),
                        None => self.place_of(&key),
                    }?;
                    let client = place.clients.panorama().ok()?.clone();
                    Some((device.clone(), (client, place.limits.clone())))
                }
                journal::Pending::Snow { .. } => None,
            })
            .collect();
        let tx = self.internal.clone();
        let plan = id.to_string();
        self.dispatching.spawn(async move {
            let mut adopted = Vec::new();
            let mut abandoned = Vec::new();
            for p in &u.pending {
                match p {
                    journal::Pending::Panorama {
                        device,
                        known_jobs: Some(known),
                        ..
                    } if reach.contains_key(device) => {
                        let Some((client, limits)) = reach.get(device) else {
                            continue;
                        };
                        limits.panorama_read().await;
                        match aws::panorama::job_ids(client, device).await {
                            Ok(now) => match now.iter().find(|j| !known.contains(j)) {
                                Some(job) => adopted.push((device.clone(), job.clone())),
                                None => abandoned.push(format!("panorama:{device}")),
                            },
                            Err(_) => abandoned.push(format!("panorama:{device}")),
                        }
                    }
                    journal::Pending::Panorama { device, .. } => {
                        abandoned.push(format!("panorama:{device}"))
                    }
                    journal::Pending::Snow { devices, .. } => {
                        abandoned.extend(devices.iter().map(|d| format!("snow:{d}")))
                    }
                }
            }
            let _ = tx.send(Internal::Discarded {
                plan,
                adopted,
                abandoned,
            });
        });
    }

    pub(super) fn discarded(
        &mut self,
        plan: &str,
        adopted: Vec<(String, String)>,
        abandoned: Vec<String>,
    ) {
        for (device, job) in &adopted {
            let _ = self.journal(&Record::Outcome {
                plan: plan.to_string(),
                at: journal::now(),
                service: Service::Panorama,
                operation: Call::CreateJobForDevices,
                devices: vec![device.clone()],
                resource_id: Some(job.clone()),
                request_id: None,
                error: None,
            });
        }
        let n = abandoned.len();
        if self
            .journal(&Record::End {
                plan: plan.to_string(),
                at: journal::now(),
                abandoned,
            })
            .is_ok()
        {
            let found = if adopted.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} sent before had a job: {}",
                    adopted.len(),
                    adopted
                        .iter()
                        .map(|(d, j)| format!("{d} {j}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            self.emit(Event::Notice(format!(
                "Plan {plan} discarded: {n} devices abandoned, nothing sent{found}"
            )));
        }
    }
}
