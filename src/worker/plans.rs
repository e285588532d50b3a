//! Plans through their life: begun (journaled, checked against unfinished plans and busy
//! devices), resumed, discarded, paused by a quit and ended; and the one CancelTask per task.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::dispatch::{self, Ctx, Log, Work};
use super::rollout::Run;
use super::{Internal, Place, Worker, device_ref, parse_device_ref};
use crate::aws::{self, ApiError, ErrorKind};
use crate::fleet::{DeviceKey, Operation, Service, SnowOptions};
use crate::journal::{self, Action, Call, ErrorRecord, Journal, Record, operation_of};
use crate::ops::Plan;
use crate::ops::rollout::{Phase, Verdict};
use crate::ops::{OpId, OpState, OpUpdate, Tally};
use crate::protocol::{Event, Refusal, Resumable, RolloutView, Settings};

/// Opens the journal the settings name. Without one nothing is dispatched, and the operator
/// is told why.
pub(super) fn open_journal(
    settings: &Settings,
    events: &mpsc::UnboundedSender<Event>,
) -> (Option<Arc<Journal>>, Option<String>) {
    let Some(path) = &settings.journal else {
        let why = "no place for the dispatch journal was found (no state or data directory): pass --journal PATH; nothing will be dispatched without one".to_string();
        let _ = events.send(Event::Failure(why.clone()));
        return (None, Some(why));
    };
    match Journal::open(path) {
        Ok(j) => (Some(Arc::new(j)), None),
        Err(e) => {
            let why = format!("{e:#}");
            let _ = events.send(Event::Failure(format!(
                "The journal cannot be used, so nothing will be dispatched: {why}"
            )));
            (None, Some(why))
        }
    }
}

fn action_of(operation: &Operation) -> Action {
    match operation {
        Operation::Ota { .. } => Action::Ota,
        Operation::Reboot => Action::Reboot,
        Operation::Unlock => Action::Unlock,
    }
}

impl Worker {
    fn journal(&self, record: &Record) -> Result<(), String> {
        let Some(j) = &self.journal else {
            return Err("no journal".into());
        };
        j.append(record).map_err(|e| {
            let why = format!("{e:#}");
            self.emit(Event::Failure(format!(
                "The journal could not be written: {why}. Nothing more is sent."
            )));
            why
        })
    }

    fn refuse(&self, error: ApiError, overlaps: Option<String>) {
        self.emit(Event::PlanRefused(Refusal { error, overlaps }));
    }

    fn ctx(&self, plan: &str, operation: Operation, snow: SnowOptions, place: &Place) -> Ctx {
        let hold = match self.rollouts.get(plan) {
            Some(run) => self.stop.or(&run.hold),
            None => self.stop.clone(),
        };
        Ctx {
            clients: place.clients.clone(),
            limits: place.limits.clone(),
            stop: self.stop.clone(),
            hold,
            log: Log {
                journal: self.journal.clone(),
                plan: plan.to_string(),
            },
            tx: self.internal.clone(),
            // A create given up on at its deadline may still be on its way: the service is
            // asked what became of it only after twice that long.
            settle: self.settings.call_timeout * 2,
            operation,
            snow,
            panic_for_tests: self.settings.panic_in_dispatch_for_tests,
        }
    }

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

    /// Where a journaled plan's devices are, when every scope it reaches is in use with the
    /// same endpoint (a demo's simulator is gone with its process, so its plans are not). An
    /// older journal's plan reached one scope: the one with its region and endpoint.
    fn plan_routes(&self, record: &Record) -> Option<HashMap<DeviceKey, String>> {
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
    fn missing_scopes(&self, record: &Record) -> Vec<String> {
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
    fn reaches_here(&self, record: &Record) -> bool {
        let Record::Plan { scopes, .. } = record else {
            return false;
        };
        scopes.iter().any(|(scope, endpoint)| {
            self.place(scope)
                .is_some_and(|p| p.conn.snow_endpoint == *endpoint)
        })
    }

    fn resumable(&self, id: &str) -> Option<Resumable> {
        self.offered.get(id).cloned()
    }

    /// Why a device may not be in a new plan: an unfinished plan from the journal names it, or
    /// an operation of this process has it in flight.
    fn overlap(&self, keys: &[DeviceKey]) -> Option<(ApiError, Option<String>)> {
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

    /// A plan reaching a scope not in use, or a read-only one, is not sent.
    fn scope_refusal(&self, plan: &Plan) -> Option<ApiError> {
        for k in &plan.targets {
            let place = match plan.scopes.get(k) {
                Some(s) => self.place(s),
                None => self.place_of(k),
            };
            let Some(place) = place else {
                return Some(super::status::no_scope(k));
            };
            if place.conn.read_only {
                return Some(ApiError::new(
                    ErrorKind::Validation,
                    "ReadOnly",
                    format!(
                        "context {} is read-only: nothing was sent (it names {k})",
                        place.conn.context
                    ),
                ));
            }
        }
        None
    }

    /// Journals a confirmed plan, gives each distinct device an operation, and sends.
    pub(super) fn dispatch(&mut self, mut plan: Plan) {
        if let Some(e) = self.refusal() {
            return self.refuse(e, None);
        }
        let keys: Vec<DeviceKey> = plan.targets.clone();
        if let Some(e) = self.scope_refusal(&plan) {
            return self.refuse(e, None);
        }
        if let Some((e, overlaps)) = self.overlap(&keys) {
            if let Some(r) = overlaps.as_deref().and_then(|id| self.resumable(id)) {
                self.emit(Event::Unfinished(r));
            }
            return self.refuse(e, overlaps);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (image_version, allow_major) = match &plan.operation {
            Operation::Ota {
                image_version,
                allow_major,
            } => (Some(image_version.clone()), *allow_major),
            _ => (None, false),
        };
        let waves = plan.waves();
        let gate = plan.rollout.gate_for(waves.len());
        // Every target's scope: the one it was read from, else the only one there is.
        for k in &keys {
            if !plan.scopes.contains_key(k)
                && let Some(p) = self.place_of(k)
            {
                plan.scopes.insert(k.clone(), p.conn.scope());
            }
        }
        let routes = plan.scopes.clone();
        let scope_names = plan.scope_names();
        let Some(first) = scope_names.first().and_then(|s| self.place(s)) else {
            let e = ApiError::new(
                ErrorKind::Validation,
                "EmptyPlan",
                "the plan has no devices",
            );
            return self.refuse(e, None);
        };
        let record = Record::Plan {
            plan: id.clone(),
            at: journal::now(),
            action: action_of(&plan.operation),
            image_version,
            allow_major,
            description: plan.snow.description.clone(),
            tags: plan.snow.tags.clone(),
            region: first.conn.region.clone(),
            endpoint: first.conn.snow_endpoint.clone(),
            scopes: scope_names
                .iter()
                .filter_map(|s| Some((s.clone(), self.place(s)?.conn.snow_endpoint.clone())))
                .collect(),
            routes: routes
                .iter()
                .map(|(k, s)| (device_ref(k), s.clone()))
                .collect(),
            devices: waves.iter().flatten().map(device_ref).collect(),
            rollout: Some(journal::RolloutRecord {
                sizes: plan.rollout.waves.clone(),
                waves: waves
                    .iter()
                    .map(|w| w.iter().map(device_ref).collect())
                    .collect(),
                gate,
            }),
            left_out: plan
                .left_out()
                .map(|s| journal::LeftOut {
                    device: device_ref(&s.key),
                    reason: s.reason.clone(),
                })
                .collect(),
        };
        if let Err(why) = self.journal(&record) {
            let e = ApiError::new(ErrorKind::Validation, "JournalWriteFailed", why);
            return self.refuse(e, None);
        }
        self.routes.extend(routes);
        let keys: Vec<DeviceKey> = waves.iter().flatten().cloned().collect();
        let ops = self.book.add_plan(&id, &keys);
        self.emit(Event::PlanStarted {
            plan: id.clone(),
            operation: plan.operation.clone(),
            ops: ops.clone(),
            resumed: false,
        });
        let view = RolloutView {
            plan: id.clone(),
            operation: plan.operation.clone(),
            snow: plan.snow.clone(),
            sizes: plan.rollout.waves.clone(),
            gate,
            waves: group(&ops, waves.len(), |k| {
                waves.iter().position(|w| w.contains(k))
            }),
            wave: 0,
            phase: Phase::Sending,
            figures: Default::default(),
            decisions: Vec::new(),
            outcome: None,
            left_out: plan.left_out().map(|s| s.key.clone()).collect(),
        };
        let state = journal::RolloutState::default();
        let run = Run::new(view, plan.operation, plan.snow, &state);
        self.rollouts.insert(id.clone(), run);
        self.start_wave(&id, 0);
        self.advance(&id);
        if let Some(run) = self.rollouts.get(&id) {
            self.emit(Event::Rollout(run.view.clone()));
        }
    }

    /// Sends what an unfinished plan never confirmed: appliances reconciled first against the
    /// jobs they had before the crash, Snow batches again under their journaled tokens.
    pub(super) fn resume(&mut self, id: &str) {
        if let Some(e) = self.refusal() {
            return self.refuse(e, None);
        }
        let Some(u) = self.unfinished.remove(id) else {
            let e = ApiError::new(
                ErrorKind::NotFound,
                "NoSuchPlan",
                format!("no unfinished plan {id} for the contexts in use"),
            );
            return self.refuse(e, None);
        };
        let Some((operation, snow)) = operation_of(&u.plan) else {
            let e = ApiError::new(
                ErrorKind::Validation,
                "UnreadablePlan",
                format!("the journal's plan {id} names no operation fleetdeck can carry out"),
            );
            return self.refuse(e, None);
        };
        let running: Vec<(DeviceKey, String)> = u
            .running
            .iter()
            .filter_map(|(d, job)| parse_device_ref(d).map(|k| (k, job.clone())))
            .collect();
        let keys: Vec<DeviceKey> = u
            .pending_devices()
            .iter()
            .filter_map(|d| parse_device_ref(d))
            .chain(running.iter().map(|(k, _)| k.clone()))
            .collect();
        if let Some((e, _)) = self.overlap(&keys) {
            self.unfinished.insert(id.to_string(), u);
            return self.refuse(e, None);
        }
        if let Some(routes) = self.plan_routes(&u.plan) {
            // A context that is read-only now refuses the resume, as it would a new plan.
            let read_only = routes
                .values()
                .filter_map(|s| self.place(s))
                .find(|p| p.conn.read_only)
                .map(|p| p.conn.context.clone());
            if let Some(context) = read_only {
                self.unfinished.insert(id.to_string(), u);
                let e = ApiError::new(
                    ErrorKind::Validation,
                    "ReadOnly",
                    format!("context {context} is read-only: plan {id} was not resumed"),
                );
                return self.refuse(e, None);
            }
            self.routes.extend(routes);
        }
        let ops = self.book.add_plan(id, &keys);
        self.emit(Event::PlanStarted {
            plan: id.to_string(),
            operation: operation.clone(),
            ops: ops.clone(),
            resumed: true,
        });
        let (waves, gate, left_out, sizes) = match &u.plan {
            Record::Plan {
                rollout: Some(r),
                left_out,
                ..
            } => (r.waves.clone(), r.gate, left_out.clone(), r.sizes.clone()),
            Record::Plan { left_out, .. } => (Vec::new(), None, left_out.clone(), Vec::new()),
            _ => (Vec::new(), None, Vec::new(), Vec::new()),
        };
        let left_out = left_out
            .iter()
            .filter_map(|l| parse_device_ref(&l.device))
            .collect();
        let state = &u.rollout;
        let mut view = RolloutView {
            plan: id.to_string(),
            operation: operation.clone(),
            snow: snow.clone(),
            sizes,
            gate,
            waves: group(&ops, waves.len().max(1), |k| {
                let name = device_ref(k);
                Some(waves.iter().position(|w| w.contains(&name)).unwrap_or(0))
            }),
            wave: state.wave,
            phase: Phase::Sending,
            figures: state.figures,
            decisions: state.decisions.clone(),
            outcome: None,
            left_out,
        };
        // A rollout that was paused or aborted stays so: the operator resumes its dispatch,
        // not past its gate.
        match state.decisions.last() {
            Some(d) if d.verdict == Verdict::Aborted => {
                view.phase = Phase::Aborted {
                    why: d.detail.clone(),
                }
            }
            Some(d) if d.verdict == Verdict::Paused => {
                view.phase = Phase::Paused {
                    why: d.detail.clone(),
                }
            }
            _ => {}
        }
        let held = !matches!(view.phase, Phase::Sending);
        let mut run = Run::new(view, operation.clone(), snow.clone(), state);
        if held {
            run.hold_now();
        }
        self.rollouts.insert(id.to_string(), run);
        let op_of = |service: Service, device: &str| {
            ops.iter()
                .find(|(_, k)| k.service == service && k.id == device)
                .map(|(op, _)| *op)
        };
        // Sends begun before the stop are resolved now, whatever the phase; what was never
        // sent goes when its wave does.
        let work = u
            .pending
            .iter()
            .filter_map(|p| match p {
                journal::Pending::Panorama {
                    device,
                    known_jobs: Some(known),
                    last_sent,
                } => Some(Work::Panorama {
                    op: op_of(Service::Panorama, device)?,
                    device: device.clone(),
                    known_jobs: Some(known.clone()),
                    last_sent: *last_sent,
                }),
                journal::Pending::Snow {
                    devices,
                    token: Some(token),
                } => Some(Work::Snow {
                    ops: devices
                        .iter()
                        .filter_map(|d| op_of(Service::Snow, d).map(|op| (d.clone(), op)))
                        .collect(),
                    token: Some(token.clone()),
                }),
                _ => None,
            })
            .collect();
        self.start(id, operation, snow, work);
        self.follow_again(&ops, &running);
        self.send_unsent(id);
        self.skip_aborted(id);
        self.advance(id);
        if let Some(run) = self.rollouts.get(id) {
            self.emit(Event::Rollout(run.view.clone()));
        }
    }

    /// Operations a resumed plan had sent, whose end was never recorded: followed again by
    /// their job or task, so their wave waits for them.
    fn follow_again(&mut self, ops: &[(OpId, DeviceKey)], running: &[(DeviceKey, String)]) {
        for (key, job) in running {
            let Some((op, _)) = ops.iter().find(|(_, k)| k == key) else {
                continue;
            };
            self.op(*op, OpUpdate::new(OpState::Sent).with_id(job.clone()));
            match key.service {
                Service::Panorama => self.follow_job(job.clone(), key.id.to_string(), *op),
                Service::Snow => self
                    .status
                    .snow_tasks
                    .entry(job.clone())
                    .or_default()
                    .push((key.id.to_string(), *op)),
            }
        }
    }

    /// Spawns the sends. Appliances each get a task (paced by the create quota, outside the
    /// bound on calls under way); a plan's Snow part is one task that checks which devices are
    /// busy, then sends its batches concurrently.
    pub(super) fn start(
        &mut self,
        plan: &str,
        operation: Operation,
        snow: SnowOptions,
        work: Vec<Work>,
    ) {
        // Each scope's Snow batches go together; each appliance on its own.
        let mut snow_batches: BTreeMap<String, Vec<dispatch::Batch>> = BTreeMap::new();
        for item in work {
            match item {
                Work::Panorama {
                    op,
                    device,
                    known_jobs,
                    last_sent,
                } => {
                    // A fresh send to an appliance whose latest job has not ended would meet
                    // that job: skipped as busy. A resumed one may be ours, so it is resolved.
                    if known_jobs.is_none()
                        && let Some(e) = dispatch::panorama_busy(self.status.latest(&device))
                    {
                        self.op(op, OpUpdate::new(OpState::Skipped).with_error(e));
                        continue;
                    }
                    let key = DeviceKey::new(Service::Panorama, device.clone());
                    let Some(place) = self.place_of(&key) else {
                        let e = super::status::no_scope(&key);
                        self.op(op, OpUpdate::new(OpState::Failed).with_error(e));
                        continue;
                    };
                    let ctx = self.ctx(plan, operation.clone(), snow.clone(), place);
                    let handle = self
                        .dispatching
                        .spawn(dispatch::panorama(ctx, op, device, known_jobs, last_sent));
                    self.dispatch_ops.insert(handle.id(), vec![op]);
                }
                Work::Snow { ops, token } => {
                    let scope = ops
                        .first()
                        .and_then(|(d, _)| self.place_of(&DeviceKey::new(Service::Snow, d.clone())))
                        .map(|p| p.conn.scope())
                        .unwrap_or_default();
                    snow_batches.entry(scope).or_default().push((ops, token));
                }
            }
        }
        for (scope, batches) in snow_batches {
            let ops: Vec<OpId> = batches
                .iter()
                .flat_map(|(ops, _)| ops.iter().map(|(_, op)| *op))
                .collect();
            let Some(place) = self.place(&scope) else {
                for (device, op) in batches.iter().flat_map(|(ops, _)| ops) {
                    let e = super::status::no_scope(&DeviceKey::new(Service::Snow, device.clone()));
                    self.op(*op, OpUpdate::new(OpState::Failed).with_error(e));
                }
                continue;
            };
            let ctx = self.ctx(plan, operation.clone(), snow.clone(), place);
            let handle = self.dispatching.spawn(dispatch::snow(ctx, batches));
            self.dispatch_ops.insert(handle.id(), ops);
        }
    }

    /// Journals an operation's final state.
    pub(super) fn record_final(&self, op: OpId) {
        let Some(o) = self.book.get(op) else { return };
        let _ = self.journal(&Record::Final {
            plan: o.plan.clone(),
            at: journal::now(),
            device: o.key.id.to_string(),
            state: o.state,
            resource_id: o.resource_id.clone(),
            error: o.error.as_ref().map(ErrorRecord::from),
        });
    }

    /// Every operation of the plan is final: it is closed in the journal.
    pub(super) fn end_plan(&mut self, plan: &str) {
        let _ = self.journal(&Record::End {
            plan: plan.to_string(),
            at: journal::now(),
            abandoned: Vec::new(),
        });
    }

    /// Once dispatch has stopped (no send task left), records each open plan as paused, naming
    /// what was never sent, and answers the shutdown with the tally.
    pub(super) fn finish_shutdown(&mut self) {
        if self.shutting_down.is_none() || !self.dispatching.is_empty() {
            return;
        }
        for plan in self.book.open_plans() {
            let (mut unsent, mut unconfirmed, mut running) = (Vec::new(), Vec::new(), Vec::new());
            for op in self.book.ops_of(&plan) {
                let name = device_ref(&op.key);
                match op.state {
                    OpState::Queued | OpState::Waiting | OpState::Paused => unsent.push(name),
                    OpState::Unconfirmed | OpState::Sending => unconfirmed.push(name),
                    OpState::Sent | OpState::Running(_) => running.push(name),
                    _ => {}
                }
            }
            let nothing_left = unsent.is_empty() && unconfirmed.is_empty();
            let _ = self.journal(&Record::Paused {
                plan: plan.clone(),
                at: journal::now(),
                unsent,
                unconfirmed,
                running,
            });
            // Everything was sent: what still runs is the service's, and there is nothing to
            // resume, so the plan is closed (the paused record names what was running).
            if nothing_left {
                self.end_plan(&plan);
            }
        }
        let tally: Tally = self.book.tally();
        if let Some(done) = self.shutting_down.take() {
            let _ = done.send(tally);
        }
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

    /// One CancelTask per task, journaled like every mutating call, never resent by the SDK;
    /// an unanswered one is resolved by reading the task's executions.
    pub(super) fn cancel(&mut self, task: String) {
        if self.settings.read_only {
            return self.emit(Event::Failure(format!(
                "Read-only mode: CancelTask {task} was not sent"
            )));
        }
        if !self.canceling.insert(task.clone()) {
            return;
        }
        let Some(ops) = self.status.snow_tasks.get(&task).cloned() else {
            self.canceling.remove(&task);
            return self.emit(Event::Failure(format!(
                "CancelTask {task} was not sent: the task has ended or is not followed here"
            )));
        };
        let plan = ops
            .first()
            .and_then(|(_, op)| self.book.get(*op))
            .map(|o| o.plan.clone())
            .unwrap_or_default();
        let log = Log {
            journal: self.journal.clone(),
            plan,
        };
        let devices: Vec<String> = ops.iter().map(|(d, _)| d.clone()).collect();
        if let Err(e) = log.intent(
            Service::Snow,
            Call::CancelTask,
            &devices,
            None,
            &[],
            Some(&task),
        ) {
            self.canceling.remove(&task);
            return self.emit(Event::Failure(format!(
                "CancelTask {task} was not sent: {e}"
            )));
        }
        let Some(client) = self.task_place(&task).map(|p| p.clients.snow.clone()) else {
            self.canceling.remove(&task);
            return self.emit(Event::Failure(format!(
                "CancelTask {task} was not sent: its context is no longer in use"
            )));
        };
        let tx = self.internal.clone();
        // Among the dispatch tasks: a shutdown waits for its answer to be journaled.
        self.dispatching.spawn(async move {
            let mut result = aws::snow::cancel_task(&client, &task).await;
            if let Err(e) = &result
                && !e.certainly_not_applied()
                && let Ok(true) = aws::snow::task_was_canceled(&client, &task).await
            {
                result = Ok(());
            }
            let created = crate::aws::Created {
                id: task.clone(),
                request_id: None,
            };
            let recorded = log.outcome(
                Service::Snow,
                Call::CancelTask,
                &devices,
                result.as_ref().map(|()| &created),
            );
            let message = match result {
                Ok(()) => format!("CancelTask {task}: its queued executions are canceled"),
                Err(e) => format!("CancelTask {task} failed: {e}"),
            };
            if let Err(e) = recorded {
                let _ = tx.send(Internal::Warn(format!(
                    "The journal could not record CancelTask {task}: {e}"
                )));
            }
            let _ = tx.send(Internal::Canceled { task, message });
        });
    }
}

/// The operations of each wave: `wave_of` places a device (unplaced ones go to the first).
fn group(
    ops: &[(OpId, DeviceKey)],
    waves: usize,
    wave_of: impl Fn(&DeviceKey) -> Option<usize>,
) -> Vec<Vec<OpId>> {
    let mut out = vec![Vec::new(); waves.max(1)];
    for (op, key) in ops {
        let k = wave_of(key).unwrap_or(0).min(out.len() - 1);
        out[k].push(*op);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journaled_plan_gives_back_its_operation() {
        let plan = Record::Plan {
            plan: "p".into(),
            at: 1,
            action: Action::Ota,
            image_version: Some("5.0.21".into()),
            allow_major: true,
            description: None,
            tags: Default::default(),
            region: "r".into(),
            endpoint: "e".into(),
            scopes: Default::default(),
            routes: Default::default(),
            devices: vec![],
            rollout: None,
            left_out: vec![],
        };
        let (op, _) = operation_of(&plan).unwrap();
        assert_eq!(
            op,
            Operation::Ota {
                image_version: "5.0.21".into(),
                allow_major: true
            }
        );
        assert_eq!(action_of(&op), Action::Ota);
    }
}
