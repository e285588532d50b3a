//! Staged rollouts, driven: a plan's waves sent one after another, each held behind its gate
//! (every operation final, failures within the threshold, the devices healthy, the bake
//! served, the operator's approval), with pause, promote and abort that answer in any phase.
//! Every wave begun, gate decision and operator's word is journaled, so a resume carries on
//! at the wave it was in.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::dispatch::Work;
use super::limits::Stop;
use super::{Internal, Worker};
use crate::aws::{self, ApiError, ErrorKind};
use crate::fleet::{Device, DeviceKey, Operation, Service, SnowOptions};
use crate::journal::{self, Record};
use crate::ops::rollout::{
    AppRef, Cause, Decision, Figures, Gate, Health, OnBreach, Outcome, Phase, Verdict, app_health,
    duration_text, health,
};
use crate::ops::{OpId, OpState, OpUpdate};
use crate::protocol::{Event, RolloutView};

/// One plan's rollout, as the worker drives it.
pub(super) struct Run {
    pub view: RolloutView,
    pub operation: Operation,
    pub snow: SnowOptions,
    /// Set by a pause or an abort: no new send of the plan begins. A promotion replaces it.
    pub(super) hold_tx: watch::Sender<bool>,
    pub hold: Stop,
    /// Failures the operator accepted by promoting past a breach.
    pub(super) accepted: usize,
    /// Each succeeded operation's health, as the gate reads it.
    pub health: HashMap<OpId, Health>,
    /// When the current wave passed its gate (epoch seconds).
    pub(super) passed_at: Option<u64>,
    /// The operator promoted the current wave: no bake or approval is waited for.
    pub(super) promoted: bool,
    /// The pause came from a breached gate (a promotion then accepts its failures).
    pub(super) breached: bool,
    /// What a pause interrupted, to go back to when promoted.
    pub(super) before_pause: Option<Phase>,
    /// Applications, alarms and windows, as the gate watches them.
    pub(super) watching: super::watching::Watching,
}

impl Run {
    pub fn new(
        view: RolloutView,
        operation: Operation,
        snow: SnowOptions,
        state: &journal::RolloutState,
    ) -> Self {
        let (hold_tx, hold) = Stop::new();
        let accepted = state
            .decisions
            .iter()
            .rev()
            .find(|d| d.verdict == Verdict::Promoted)
            .map_or(0, |d| d.figures.failed);
        let watching = super::watching::Watching::new(&view.watch, &state.watched);
        Self {
            watching,
            view,
            operation,
            snow,
            hold_tx,
            hold,
            accepted,
            health: HashMap::new(),
            passed_at: state.passed_at,
            promoted: false,
            breached: false,
            before_pause: None,
        }
    }

    /// Holds the plan's sends from the start (a resumed rollout that was paused or aborted).
    pub fn hold_now(&mut self) {
        let _ = self.hold_tx.send(true);
    }

    fn gate(&self) -> Option<Gate> {
        self.view.gate
    }

    fn last_wave(&self) -> bool {
        self.view.wave + 1 >= self.view.waves.len()
    }

    /// What an appliance's applications are judged against after its operation, when its
    /// health includes theirs.
    pub(super) fn apps_before(&self, key: &DeviceKey) -> Option<Apps> {
        if key.service != Service::Panorama || !self.view.watch.reads_apps(&self.operation) {
            return None;
        }
        Some(match self.watching.apps_before.get(key) {
            Some(before) => Apps::Before(before.clone()),
            // Sent by another host whose baseline this one never read (a takeover): every
            // instance must run, which fails closed.
            None => Apps::AllRunning,
        })
    }
}

/// Fresh sends for operations never sent: an appliance each, Snow 10 to a task, a task
/// never mixing scopes (it lives in one account and region).
pub(super) fn fresh_work(
    ops: &[(OpId, DeviceKey)],
    scope_of: impl Fn(&DeviceKey) -> Option<String>,
) -> Vec<Work> {
    let mut work = Vec::new();
    // Each scope's batch still taking targets, by its index in `work`.
    let mut open: HashMap<Option<String>, usize> = HashMap::new();
    for (op, key) in ops {
        if key.service == Service::Panorama {
            work.push(Work::Panorama {
                op: *op,
                device: key.id.to_string(),
                known_jobs: None,
                last_sent: None,
            });
            continue;
        }
        let scope = scope_of(key);
        let target = (key.id.to_string(), *op);
        if let Some(&i) = open.get(&scope)
            && let Some(Work::Snow { ops, .. }) = work.get_mut(i)
            && ops.len() < crate::fleet::SNOW_TARGETS_PER_TASK
        {
            ops.push(target);
            continue;
        }
        open.insert(scope, work.len());
        work.push(Work::Snow {
            ops: vec![target],
            token: None,
        });
    }
    work
}

/// What an appliance's applications are judged against after its operation.
#[derive(Clone, Debug)]
pub(super) enum Apps {
    /// Those that ran before it, as read before the plan's first send.
    Before(Vec<AppRef>),
    /// No baseline was read here: every instance on it must run.
    AllRunning,
}

/// The device healthy after its operation: its own state, then (an appliance whose health
/// includes its applications') every application that ran before it running again.
async fn healthy(
    operation: &Operation,
    d: &Device,
    ended: Option<u64>,
    clients: &aws::config::Clients,
    limits: &super::limits::Limits,
    apps: &Option<Apps>,
) -> Result<(), String> {
    health(operation, d, ended)?;
    let before = match apps {
        None => return Ok(()),
        Some(Apps::Before(b)) if b.is_empty() => return Ok(()),
        Some(a) => a,
    };
    let client = clients.panorama().map_err(|e| e.to_string())?;
    limits.panorama_read().await;
    let _permit = limits.call().await;
    let now = aws::panorama::app_instances(client, &d.id)
        .await
        .map_err(|e| format!("its applications could not be read: {e}"))?;
    match before {
        Apps::Before(b) => app_health(b, &now),
        Apps::AllRunning => {
            app_health(&crate::ops::rollout::app_baseline_all(&now), &now).map_err(|why| {
                format!("{why} (no baseline was read on this host, so every instance must run)")
            })
        }
    }
}

impl Worker {
    fn record(&self, record: &Record) {
        if let Some(j) = &self.journal
            && let Err(e) = j.append(record)
        {
            self.emit(Event::Failure(format!(
                "The journal could not record the rollout's progress: {e:#}"
            )));
        }
    }

    /// Records a decision and its cause in the view and the journal.
    pub(super) fn decide(&mut self, plan: &str, verdict: Verdict, detail: String, by: Cause) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        let decision = Decision {
            wave: run.view.wave,
            verdict,
            figures: run.view.figures,
            detail,
            by: Some(by),
        };
        run.view.decisions.push(decision.clone());
        let (n, line) = (
            run.view.decisions.len(),
            decision.line(run.view.waves.len()),
        );
        self.team_decision(plan, n, line);
        self.record(&Record::Gate {
            plan: plan.to_string(),
            at: journal::now(),
            decision,
        });
    }

    /// Operations of the plan that no dispatch task carries now.
    fn idle_unsent(&self, plan: &str, upto_wave: Option<usize>) -> Vec<(OpId, DeviceKey)> {
        let Some(run) = self.rollouts.get(plan) else {
            return Vec::new();
        };
        let live: HashSet<OpId> = self.dispatch_ops.values().flatten().copied().collect();
        let waves = match upto_wave {
            Some(k) => &run.view.waves[..=k.min(run.view.waves.len().saturating_sub(1))],
            None => &run.view.waves[..],
        };
        waves
            .iter()
            .flatten()
            .filter(|op| !live.contains(op))
            .filter_map(|op| self.book.get(*op))
            .filter(|o| matches!(o.state, OpState::Queued | OpState::Paused))
            .map(|o| (o.id, o.key.clone()))
            .collect()
    }

    /// Begins wave `k`: journaled, then its operations sent.
    pub(super) fn start_wave(&mut self, plan: &str, k: usize) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        run.view.wave = k;
        run.view.phase = Phase::Sending;
        run.passed_at = None;
        run.promoted = false;
        self.record(&Record::Wave {
            plan: plan.to_string(),
            at: journal::now(),
            wave: k,
        });
        self.send_unsent(plan);
    }

    /// Sends what the current wave (and those before it) has not sent and no task carries.
    pub(super) fn send_unsent(&mut self, plan: &str) {
        if self.stop.is_set() {
            return;
        }
        let Some(run) = self.rollouts.get(plan) else {
            return;
        };
        if run.view.phase != Phase::Sending {
            return;
        }
        // Its tasks would stop at once, and be sent again when they end.
        if self.lost_at_check(plan) {
            return;
        }
        let Some(run) = self.rollouts.get(plan) else {
            return;
        };
        let (operation, snow) = (run.operation.clone(), run.snow.clone());
        let ops = self.idle_unsent(plan, Some(run.view.wave));
        let ops = self.watch_admits(plan, ops);
        if !ops.is_empty() {
            let work = fresh_work(&ops, |k| self.routes.get(k).cloned());
            self.start(plan, operation, snow, work);
        }
    }

    /// The figures the gate reads: every sent operation that has finished (a succeeded one
    /// once its health is known), and those that failed or are not healthy.
    fn figures(&self, plan: &str) -> Figures {
        let Some(run) = self.rollouts.get(plan) else {
            return Figures::default();
        };
        let gated = run.gate().is_some();
        let mut f = Figures::default();
        for op in self.book.ops_of(plan) {
            match op.state {
                OpState::Succeeded => match run.health.get(&op.id) {
                    Some(Health::Unhealthy(_)) => {
                        f.finished += 1;
                        f.failed += 1;
                    }
                    Some(Health::Checking) | None if gated => {}
                    _ => f.finished += 1,
                },
                OpState::Failed | OpState::TimedOut | OpState::Canceled => {
                    f.finished += 1;
                    f.failed += 1;
                }
                _ => {}
            }
        }
        f
    }

    /// Every operation of the current wave is final, and each that succeeded has its health.
    fn wave_settled(&self, plan: &str) -> (bool, bool) {
        let Some(run) = self.rollouts.get(plan) else {
            return (false, false);
        };
        let gated = run.gate().is_some();
        let ops = run.view.waves.get(run.view.wave).into_iter().flatten();
        let (mut all_final, mut all_checked) = (true, true);
        for id in ops {
            let Some(op) = self.book.get(*id) else {
                continue;
            };
            all_final &= op.state.is_final();
            if gated && op.state == OpState::Succeeded {
                all_checked &= !matches!(run.health.get(id), Some(Health::Checking) | None);
            }
        }
        (all_final, all_final && all_checked)
    }

    /// Moves a rollout on as far as it can go now.
    pub(super) fn advance(&mut self, plan: &str) {
        let Some(before) = self.rollouts.get(plan).map(|r| r.view.clone()) else {
            return;
        };
        for _ in 0..64 {
            if !self.step(plan) {
                break;
            }
        }
        if let Some(run) = self.rollouts.get(plan)
            && run.view != before
        {
            self.emit(Event::Rollout(run.view.clone()));
        }
        // The plan ends in the journal once its rollout has an outcome: the gate's records,
        // and a pause's, come before its end, and a word can still reach a rollout that waits.
        self.end_if_settled(plan);
    }

    /// Advances a rollout now, or once the burst of news under way is in.
    fn advance_soon(&mut self, plan: &str) {
        match &mut self.moved {
            Some(moved) => {
                moved.insert(plan.to_string());
            }
            None => self.advance(plan),
        }
    }

    /// Advances the rollouts a burst of news moved.
    pub(super) fn advance_moved(&mut self) {
        let Some(moved) = self.moved.take() else {
            return;
        };
        for plan in moved {
            self.advance(&plan);
        }
    }

    /// One move of the rollout; true when another may follow at once.
    fn step(&mut self, plan: &str) -> bool {
        let figures = self.figures(plan);
        let (settled, checked) = self.wave_settled(plan);
        let all_final = self.book.plan_done(plan);
        let outcome = self.outcome(plan, figures);
        let Some(run) = self.rollouts.get_mut(plan) else {
            return false;
        };
        run.view.figures = figures;
        let (gate, accepted, last) = (run.gate(), run.accepted, run.last_wave());
        match run.view.phase.clone() {
            Phase::Sending | Phase::Checking => {}
            Phase::Baking { until } => {
                return journal::now() >= until && self.after_bake(plan);
            }
            Phase::Aborted { .. } => {
                if all_final && run.view.outcome.is_none() {
                    run.view.outcome = Some(Outcome::Aborted);
                }
                return false;
            }
            // Held when nothing is left that a word could change: every wave begun, every
            // operation final and read. The rollout ends as it stands.
            Phase::Paused { .. } if last && all_final && checked => {
                run.view.phase = Phase::Done;
                run.view.outcome = Some(outcome);
                return false;
            }
            Phase::AwaitingApproval | Phase::Paused { .. } | Phase::Done => return false,
        }
        if let Some(g) = gate
            && g.breached(figures, accepted)
        {
            let detail = format!(
                "{} failed of {} finished, more than the {} allowed",
                figures.failed, figures.finished, g.max_failed
            );
            self.decide(plan, Verdict::Breached, detail.clone(), Cause::Gate);
            let why = format!("the gate was breached: {detail}");
            match g.on_breach {
                OnBreach::Abort => self.abort(plan, why, Cause::Gate),
                OnBreach::Pause => self.hold(plan, why, true, Cause::Gate),
            }
            // Another step sees whether anything is left for the pause to hold.
            return true;
        }
        if !checked {
            run.view.phase = if settled {
                Phase::Checking
            } else {
                Phase::Sending
            };
            return false;
        }
        if last {
            run.view.phase = Phase::Done;
            run.view.outcome = Some(outcome);
            return false;
        }
        if run.passed_at.is_none() {
            run.passed_at = Some(journal::now());
            let detail = match gate {
                Some(g) if figures.finished < g.min_done.max(1) => format!(
                    "{} failed of {} finished, not counted until {} are done",
                    figures.failed,
                    figures.finished,
                    g.min_done.max(1)
                ),
                Some(g) => format!(
                    "{} failed of {} finished (max {}), the rest healthy",
                    figures.failed, figures.finished, g.max_failed
                ),
                None => "every operation finished".into(),
            };
            self.decide(plan, Verdict::Passed, detail, Cause::Gate);
        }
        self.after_pass(plan)
    }

    fn after_pass(&mut self, plan: &str) -> bool {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return false;
        };
        let bake = run.gate().map_or(0, |g| g.bake_secs);
        if bake > 0 && !run.promoted {
            let until = run.passed_at.unwrap_or_else(journal::now) + bake;
            run.view.phase = Phase::Baking { until };
            return true;
        }
        self.after_bake(plan)
    }

    pub(super) fn after_bake(&mut self, plan: &str) -> bool {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return false;
        };
        let approve = run.gate().is_some_and(|g| g.approve);
        if approve && !run.promoted {
            run.view.phase = Phase::AwaitingApproval;
            return false;
        }
        let next = run.view.wave + 1;
        self.start_wave(plan, next);
        true
    }

    /// With the figures just read: the view's may be a step behind.
    fn outcome(&self, plan: &str, figures: Figures) -> Outcome {
        let Some(run) = self.rollouts.get(plan) else {
            return Outcome::Partial;
        };
        let skipped = self.book.ops_of(plan).any(|o| o.state == OpState::Skipped);
        if figures.failed == 0 && !skipped && run.view.left_out.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Partial
        }
    }

    /// Stops the plan's new sends and waits for the operator.
    pub(super) fn hold(&mut self, plan: &str, why: String, breached: bool, by: Cause) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        let _ = run.hold_tx.send(true);
        run.breached = breached;
        run.before_pause = Some(run.view.phase.clone());
        run.view.phase = Phase::Paused { why: why.clone() };
        self.decide(plan, Verdict::Paused, why, by);
    }

    /// Stops the plan for good: nothing more is sent, what was not is skipped, queued Snow
    /// executions are canceled.
    pub(super) fn abort(&mut self, plan: &str, why: String, by: Cause) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        let _ = run.hold_tx.send(true);
        run.view.phase = Phase::Aborted { why: why.clone() };
        // Nothing waits for a window any more.
        run.view.waiting.clear();
        run.watching.waits.clear();
        self.decide(plan, Verdict::Aborted, why, by);
        self.skip_aborted(plan);
        let tasks: Vec<String> = self
            .status
            .snow_tasks
            .iter()
            .filter(|(_, ops)| {
                ops.iter().any(|(_, op)| {
                    self.book.get(*op).is_some_and(|o| {
                        o.plan == plan && matches!(o.state, OpState::Sent | OpState::Running(_))
                    })
                })
            })
            .map(|(task, _)| task.clone())
            .collect();
        for task in tasks {
            self.cancel(task);
        }
    }

    pub(super) fn cancel_if_aborted(&mut self, task: &str) {
        let plan = self
            .status
            .snow_tasks
            .get(task)
            .and_then(|ops| ops.first())
            .and_then(|(_, op)| self.book.get(*op))
            .map(|o| o.plan.clone());
        let aborted = plan
            .and_then(|p| self.rollouts.get(&p))
            .is_some_and(|r| matches!(r.view.phase, Phase::Aborted { .. }));
        if aborted {
            self.cancel(task.to_string());
        }
    }

    /// An aborted plan's operations that were never sent and that no task carries end as
    /// skipped. Those a task carries end so when the task gives way.
    pub(super) fn skip_aborted(&mut self, plan: &str) {
        let Some(Phase::Aborted { why }) = self.rollouts.get(plan).map(|r| r.view.phase.clone())
        else {
            return;
        };
        let error = ApiError::new(ErrorKind::Conflict, "RolloutAborted", why);
        for (op, _) in self.idle_unsent(plan, None) {
            self.op(
                op,
                OpUpdate::new(OpState::Skipped).with_error(error.clone()),
            );
        }
    }

    pub(super) fn emit_view(&self, plan: &str) {
        if let Some(run) = self.rollouts.get(plan) {
            self.emit(Event::Rollout(run.view.clone()));
        }
    }

    /// An operation of a rollout changed: a success starts its health check (gated plans).
    pub(super) fn rollout_op(&mut self, op: OpId, state: OpState) {
        let Some(o) = self.book.get(op) else { return };
        let plan = o.plan.clone();
        let key = o.key.clone();
        let task = o.resource_id.clone();
        let Some(run) = self.rollouts.get_mut(&plan) else {
            return;
        };
        let aborted = matches!(run.view.phase, Phase::Aborted { .. });
        if state == OpState::Succeeded && run.gate().is_some() {
            run.health.insert(op, Health::Checking);
            let operation = run.operation.clone();
            let apps = run.apps_before(&key);
            self.check_health(op, key, operation, task, apps);
        }
        if aborted && state == OpState::Paused {
            self.skip_aborted(&plan);
        }
        self.advance_soon(&plan);
    }

    /// Reads the device until it is healthy, or the health timeout passes.
    pub(super) fn check_health(
        &mut self,
        op: OpId,
        key: DeviceKey,
        operation: Operation,
        task: Option<String>,
        apps: Option<Apps>,
    ) {
        let Some((clients, limits, at)) = self.reach(&key) else {
            let why = super::status::no_scope(&key).message;
            return self.health_read(op, Health::Unhealthy(why), None);
        };
        let tx = self.internal.clone();
        let (every, timeout) = (self.settings.poll_every, self.settings.health_timeout);
        self.tasks.spawn(async move {
            let deadline = Instant::now() + timeout;
            let mut ended = None;
            loop {
                if key.service == Service::Snow
                    && operation == Operation::Reboot
                    && ended.is_none()
                    && let Some(task) = &task
                {
                    ended = aws::snow::execution_changed(&clients.snow, task, &key.id)
                        .await
                        .ok()
                        .flatten();
                }
                let read = super::status::read_device(&clients, &limits, &key)
                    .await
                    .map(|d| at.stamp(d));
                let why = match &read {
                    Ok(d) => match healthy(&operation, d, ended, &clients, &limits, &apps).await {
                        Ok(()) => {
                            let _ = tx.send(Internal::Health {
                                op,
                                health: Health::Healthy,
                                device: read.ok(),
                            });
                            return;
                        }
                        Err(why) => why,
                    },
                    Err(e) => format!("could not be read: {e}"),
                };
                if Instant::now() >= deadline {
                    let _ = tx.send(Internal::Health {
                        op,
                        health: Health::Unhealthy(format!(
                            "{why} after {}",
                            duration_text(timeout)
                        )),
                        device: read.ok(),
                    });
                    return;
                }
                tokio::time::sleep(every.max(Duration::from_millis(200))).await;
            }
        });
    }

    pub(super) fn health_read(&mut self, op: OpId, health: Health, device: Option<Device>) {
        if let Some(d) = device {
            self.emit(Event::DeviceUpdated(d));
        }
        let Some(o) = self.book.get(op) else { return };
        let (plan, device) = (o.plan.clone(), o.key.id.clone());
        let Some(run) = self.rollouts.get_mut(&plan) else {
            return;
        };
        run.health.insert(op, health.clone());
        let (healthy, reason) = match &health {
            Health::Healthy => (true, None),
            Health::Unhealthy(why) => (false, Some(why.clone())),
            Health::Checking => return,
        };
        self.record(&Record::Health {
            plan: plan.clone(),
            at: journal::now(),
            device: device.to_string(),
            healthy,
            reason,
        });
        self.emit(Event::Health(op, health));
        self.advance_soon(&plan);
    }

    /// The clock moved: bakes may have ended, and another process may have a word for a
    /// rollout (`fleetdeck run --promote PLAN`).
    pub(super) fn rollout_tick(&mut self) {
        self.take_words();
        self.watch_tick();
        let baking: Vec<String> = self
            .rollouts
            .iter()
            .filter(|(_, r)| matches!(r.view.phase, Phase::Baking { .. }))
            .map(|(p, _)| p.clone())
            .collect();
        for plan in baking {
            self.advance(&plan);
        }
    }
}
