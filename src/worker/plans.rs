//! Plans through their life: begun (journaled, checked against unfinished plans and busy
//! devices), resumed (what ended before restored, what was sent followed again), paused by a
//! quit, and ended once their rollout has its outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::dispatch::{self, Ctx, Log, Work};
use super::rollout::Run;
use super::snow_send;
use super::{Place, Worker, device_ref, parse_device_ref};
use crate::aws::{ApiError, ErrorKind};
use crate::fleet::{DeviceKey, Operation, Service, SnowOptions};
use crate::journal::{self, Action, ErrorRecord, Journal, Record, operation_of};
use crate::ops::Plan;
use crate::ops::rollout::{Health, Phase, Verdict};
use crate::ops::{OpId, OpState, OpUpdate, Tally};
use crate::protocol::{Event, Refusal, RolloutView, Settings};

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
    pub(super) fn journal(&self, record: &Record) -> Result<(), String> {
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

    pub(super) fn refuse(&self, error: ApiError, overlaps: Option<String>) {
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
            guard: self.guards.get(plan).cloned(),
            windows: self
                .rollouts
                .get(plan)
                .map(|r| r.watching.send_windows())
                .unwrap_or_default(),
            panic_for_tests: self.settings.panic_in_dispatch_for_tests,
        }
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

    /// The journal's record of a confirmed plan: its operation, every scope it reaches with
    /// its endpoint, each device's scope, its waves and gate, what preflight left out. `None`
    /// for a plan with no device in a scope in use.
    fn plan_record(&self, id: &str, plan: &Plan, waves: &[Vec<DeviceKey>]) -> Option<Record> {
        let (image_version, allow_major) = match &plan.operation {
            Operation::Ota {
                image_version,
                allow_major,
            } => (Some(image_version.clone()), *allow_major),
            _ => (None, false),
        };
        let scope_names = plan.scope_names();
        let first = scope_names.first().and_then(|s| self.place(s))?;
        Some(Record::Plan {
            plan: id.to_string(),
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
            routes: plan
                .scopes
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
                gate: plan.rollout.gate_for(waves.len()),
                watch: Box::new(plan.rollout.watch.clone()),
            }),
            left_out: plan
                .left_out()
                .map(|s| journal::LeftOut {
                    device: device_ref(&s.key),
                    reason: s.reason.clone(),
                })
                .collect(),
        })
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
        plan.rollout.watch.device_windows = plan.windows();
        let Some(record) = self.plan_record(&id, &plan, &waves) else {
            let e = ApiError::new(
                ErrorKind::Validation,
                "EmptyPlan",
                "the plan has no devices",
            );
            return self.refuse(e, None);
        };
        if let Err(why) = self.journal(&record) {
            let e = ApiError::new(ErrorKind::Validation, "JournalWriteFailed", why);
            return self.refuse(e, None);
        }
        self.routes.extend(routes);
        let keys: Vec<DeviceKey> = waves.iter().flatten().cloned().collect();
        // Team mode: the plan's lease and its devices' are taken before anything is sent; its
        // sends wait at its guard meanwhile.
        if self.team.is_some() {
            let needs_approval = self.needs_approval(&keys);
            let json = serde_json::to_string(&record).unwrap_or_default();
            self.team_begin(&id, &plan.operation, json, keys.clone(), needs_approval);
        }
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
            watch: plan.rollout.watch.clone(),
            waves: group(&ops, waves.len(), |k| {
                waves.iter().position(|w| w.contains(k))
            }),
            wave: 0,
            phase: Phase::Sending,
            figures: Default::default(),
            decisions: Vec::new(),
            outcome: None,
            left_out: plan.left_out().map(|s| s.key.clone()).collect(),
            waiting: Vec::new(),
            alarms: Vec::new(),
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
    /// jobs they had before the crash, Snow batches again under their journaled tokens. What
    /// ended before is shown as it ended, so the plan and its gauges are whole again.
    pub(super) fn resume(&mut self, id: &str) {
        let Some((u, operation, snow)) = self.take_unfinished(id) else {
            return;
        };
        let running: Vec<(DeviceKey, String)> = u
            .running
            .iter()
            .filter_map(|(d, job)| parse_device_ref(d).map(|k| (k, job.clone())))
            .collect();
        let open: Vec<DeviceKey> = u
            .pending_devices()
            .iter()
            .filter_map(|d| parse_device_ref(d))
            .chain(running.iter().map(|(k, _)| k.clone()))
            .collect();
        if let Some(e) = self.resume_refusal(id, &u, &open) {
            self.unfinished.insert(id.to_string(), u);
            return self.refuse(e, None);
        }
        if let Some(routes) = self.plan_routes(&u.plan) {
            self.routes.extend(routes);
        }
        let all: Vec<DeviceKey> = match &u.plan {
            Record::Plan { devices, .. } => {
                devices.iter().filter_map(|d| parse_device_ref(d)).collect()
            }
            _ => open.clone(),
        };
        // Team mode: the plan's lease taken back and its open devices acquired before its
        // guard lets anything go.
        if self.team.is_some() {
            let record = serde_json::to_string(&u.plan).unwrap_or_default();
            let op = super::team::operation_text(&operation);
            self.team_resume(id, &op, record, open.clone());
        }
        let ops = self.book.add_plan(id, &all);
        self.emit(Event::PlanStarted {
            plan: id.to_string(),
            operation: operation.clone(),
            ops: ops.clone(),
            resumed: true,
        });
        let health = self.restore_finished(&ops, &u.finished);
        let view = resumed_view(id, &u, &ops, &operation, &snow);
        let held = !matches!(view.phase, Phase::Sending);
        let mut run = Run::new(view, operation.clone(), snow.clone(), &u.rollout);
        if held {
            run.hold_now();
        }
        run.health
            .extend(health.iter().map(|(op, h)| (*op, h.clone())));
        self.rollouts.insert(id.to_string(), run);
        // Sends begun before the stop are resolved now, whatever the phase; what was never
        // sent goes when its wave does.
        let work = resumed_work(&u.pending, &ops);
        self.start(id, operation.clone(), snow, work);
        self.follow_again(&ops, &running);
        self.recheck_health(&ops, &health, &operation);
        self.send_unsent(id);
        self.skip_aborted(id);
        self.advance(id);
        if let Some(run) = self.rollouts.get(id) {
            self.emit(Event::Rollout(run.view.clone()));
        }
    }

    /// The unfinished plan to resume and its operation, taken from those offered; refused
    /// with the reason when dispatch may not happen or the plan is unknown or unreadable.
    fn take_unfinished(
        &mut self,
        id: &str,
    ) -> Option<(journal::Unfinished, Operation, SnowOptions)> {
        if let Some(e) = self.refusal() {
            self.refuse(e, None);
            return None;
        }
        let Some(u) = self.unfinished.remove(id) else {
            let e = ApiError::new(
                ErrorKind::NotFound,
                "NoSuchPlan",
                format!("no unfinished plan {id} for the contexts in use"),
            );
            self.refuse(e, None);
            return None;
        };
        let Some((operation, snow)) = operation_of(&u.plan) else {
            let e = ApiError::new(
                ErrorKind::Validation,
                "UnreadablePlan",
                format!("the journal's plan {id} names no operation fleetdeck can carry out"),
            );
            self.refuse(e, None);
            return None;
        };
        Some((u, operation, snow))
    }

    /// Why a resume may not go on: a device of it is taken, or a context it reaches is
    /// read-only now (refused as a new plan would be).
    fn resume_refusal(
        &self,
        id: &str,
        u: &journal::Unfinished,
        open: &[DeviceKey],
    ) -> Option<ApiError> {
        if let Some((e, _)) = self.overlap(open) {
            return Some(e);
        }
        let routes = self.plan_routes(&u.plan)?;
        let context = routes
            .values()
            .filter_map(|s| self.place(s))
            .find(|p| p.conn.read_only)
            .map(|p| p.conn.context.clone())?;
        Some(ApiError::new(
            ErrorKind::Validation,
            "ReadOnly",
            format!("context {context} is read-only: plan {id} was not resumed"),
        ))
    }

    /// Puts the operations that ended before in their recorded end, without journaling them
    /// again; their health as recorded, for the gate.
    fn restore_finished(
        &mut self,
        ops: &[(OpId, DeviceKey)],
        finished: &[journal::Finished],
    ) -> Vec<(OpId, Health)> {
        let mut health = Vec::new();
        for f in finished {
            let Some(key) = parse_device_ref(&f.device) else {
                continue;
            };
            let Some((op, _)) = ops.iter().find(|(_, k)| *k == key) else {
                continue;
            };
            let mut update = OpUpdate::new(f.state);
            update.resource_id.clone_from(&f.resource_id);
            update.error = f
                .error
                .as_ref()
                .map(|e| ApiError::new(ErrorKind::Other, e.code.clone(), e.message.clone()));
            if self.book.apply(*op, &update) != crate::ops::Applied::Ignored {
                self.emit(Event::Op(*op, update));
            }
            let h = match &f.health {
                Some(Ok(())) => Health::Healthy,
                Some(Err(why)) => Health::Unhealthy(why.clone()),
                None => continue,
            };
            self.emit(Event::Health(*op, h.clone()));
            health.push((*op, h));
        }
        health
    }

    /// A gated rollout's successes whose health was never recorded (the process ended while
    /// reading it) are read again.
    fn recheck_health(
        &mut self,
        ops: &[(OpId, DeviceKey)],
        known: &[(OpId, Health)],
        operation: &Operation,
    ) {
        for (op, key) in ops {
            let Some(o) = self.book.get(*op) else {
                continue;
            };
            let gated = self
                .rollouts
                .get(&o.plan)
                .is_some_and(|r| r.view.gate.is_some());
            if o.state != OpState::Succeeded || !gated || known.iter().any(|(k, _)| k == op) {
                continue;
            }
            let task = o.resource_id.clone();
            let mut apps = None;
            if let Some(run) = self.rollouts.get_mut(&o.plan.clone()) {
                run.health.insert(*op, Health::Checking);
                apps = run.apps_before(key);
            }
            self.check_health(*op, key.clone(), operation.clone(), task, apps);
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
        let mut snow_batches: BTreeMap<String, Vec<snow_send::Batch>> = BTreeMap::new();
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
            let handle = self.dispatching.spawn(snow_send::snow(ctx, batches));
            self.dispatch_ops.insert(handle.id(), ops);
        }
        // Team mode: a wave's sends have begun, so its plan sends: the account's turns are
        // dealt again at the next poll, not a few seconds on.
        if self.team.is_some() {
            self.quota.soon();
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

    /// Closes a plan whose every operation is final and whose rollout has its outcome (no
    /// device's health still being read, no pause waiting for a word): the health and gate
    /// records come before the plan's end. A row failed without a record (a panic) keeps its
    /// plan open for a resume to reconcile.
    pub(super) fn end_if_settled(&mut self, plan: &str) {
        let ended = self
            .rollouts
            .get(plan)
            .is_none_or(|r| r.view.outcome.is_some());
        let unrecorded = self.unrecorded.contains(plan);
        if self.book.plan_done(plan) && ended && !unrecorded {
            self.end_plan(plan);
        }
    }

    /// Every operation of the plan is final: it is closed in the journal, once.
    pub(super) fn end_plan(&mut self, plan: &str) {
        if !self.ended.insert(plan.to_string()) {
            return;
        }
        self.team_end(plan);
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
        let Some(done) = self.shutting_down.take() else {
            return;
        };
        // Team mode: the table hears of every release and end before the process goes (for
        // as long as it answers).
        let mut writes = std::mem::take(&mut self.team_writes);
        if writes.is_empty() {
            let _ = done.send(tally);
            return;
        }
        tokio::spawn(async move {
            let all = async { while writes.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(Duration::from_secs(15), all).await;
            let _ = done.send(tally);
        });
    }
}

/// A resumed plan's rollout as the journal left it: its waves, gate and decisions; a
/// rollout that was paused or aborted stays so (the operator resumes its dispatch, not past
/// its gate).
fn resumed_view(
    id: &str,
    u: &journal::Unfinished,
    ops: &[(OpId, DeviceKey)],
    operation: &Operation,
    snow: &SnowOptions,
) -> RolloutView {
    let (waves, gate, left_out, sizes, watch) = match &u.plan {
        Record::Plan {
            rollout: Some(r),
            left_out,
            ..
        } => (
            r.waves.clone(),
            r.gate,
            left_out.clone(),
            r.sizes.clone(),
            (*r.watch).clone(),
        ),
        Record::Plan { left_out, .. } => (
            Vec::new(),
            None,
            left_out.clone(),
            Vec::new(),
            Default::default(),
        ),
        _ => Default::default(),
    };
    let state = &u.rollout;
    let phase = match state.decisions.last() {
        Some(d) if d.verdict == Verdict::Aborted => Phase::Aborted {
            why: d.detail.clone(),
        },
        Some(d) if d.verdict == Verdict::Paused => Phase::Paused {
            why: d.detail.clone(),
        },
        _ => Phase::Sending,
    };
    RolloutView {
        plan: id.to_string(),
        operation: operation.clone(),
        snow: snow.clone(),
        sizes,
        gate,
        watch,
        waves: group(ops, waves.len().max(1), |k| {
            let name = device_ref(k);
            Some(waves.iter().position(|w| w.contains(&name)).unwrap_or(0))
        }),
        wave: state.wave,
        phase,
        figures: state.figures,
        decisions: state.decisions.clone(),
        outcome: None,
        left_out: left_out
            .iter()
            .filter_map(|l| parse_device_ref(&l.device))
            .collect(),
        waiting: Vec::new(),
        alarms: Vec::new(),
    }
}

/// The sends a crash or a stop interrupted, to be resolved first: an appliance against its
/// jobs before the send, a Snow batch under its token.
fn resumed_work(pending: &[journal::Pending], ops: &[(OpId, DeviceKey)]) -> Vec<Work> {
    let op_of = |service: Service, device: &str| {
        ops.iter()
            .find(|(_, k)| k.service == service && k.id == device)
            .map(|(op, _)| *op)
    };
    pending
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
        .collect()
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
