//! What a rollout's gate watches beyond its devices, driven: each appliance's applications
//! read before the plan's first send (the baseline its health is judged against), the
//! team's CloudWatch alarms read before each wave and every 10 s while the rollout is in
//! flight or baking, and each device's maintenance window, which holds its send until it
//! opens. Every reading that decides something is journaled, so a resume knows it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Internal, Worker};
use crate::aws::{self, ApiError, ErrorKind};
use crate::fleet::{AlarmReading, AppInstance, DeviceKey, Service};
use crate::journal::{self, Record};
use crate::ops::rollout::{AppRef, Cause, OnBreach, Phase, Verdict, app_baseline};
use crate::ops::watch::{WindowState, Windows, alarm_breach, breach_key, missing_alarms, within};
use crate::ops::{OpId, OpState, OpUpdate};
use crate::protocol::Event;

/// At most one DescribeAlarms per rollout this often.
pub(super) const ALARM_EVERY: Duration = Duration::from_secs(10);

/// A rollout's watch, as the worker keeps it.
#[derive(Default)]
pub(super) struct Watching {
    /// Each appliance's applications running before its operation.
    pub apps_before: HashMap<DeviceKey, Vec<AppRef>>,
    pub reading_apps: bool,
    /// When the alarms were last read, and what they said.
    pub alarms_read: Option<Instant>,
    pub reading_alarms: bool,
    /// When a reading was last asked for, answered or not: a CloudWatch that fails is asked
    /// again no more often than a working one, and its failure told once.
    pub alarms_tried: Option<Instant>,
    pub alarms_failing: bool,
    pub last_alarms: Vec<AlarmReading>,
    /// The breach an operator promoted past: the same alarms in the same state do not break
    /// the gate again; a new transition does.
    pub alarm_accepted: Option<String>,
    /// Each device's window, parsed (or why its spec is wrong).
    pub windows: HashMap<DeviceKey, Result<Windows, String>>,
    /// Devices waiting for their window: since when, and until when.
    pub waits: HashMap<DeviceKey, (u64, u64)>,
}

impl Watching {
    /// From the plan's journaled watch: windows parsed, and what a resume already knows
    /// (baselines, when each wait began).
    pub fn new(watch: &crate::ops::rollout::Watch, records: &[Record]) -> Self {
        let mut w = Self {
            windows: watch
                .device_windows
                .iter()
                .filter_map(|(d, spec)| Some((super::parse_device_ref(d)?, Windows::parse(spec))))
                .collect(),
            ..Self::default()
        };
        // The breach a promotion accepted, as the journal has them in order.
        let mut breaking = None;
        for r in records {
            match r {
                Record::Apps {
                    device, running, ..
                } => {
                    if let Some(k) = super::parse_device_ref(device) {
                        w.apps_before.insert(k, running.clone());
                    }
                }
                // The wait a device was in last; one in an earlier window does not count
                // against --window-timeout. Waits of devices sent since are dropped as the
                // plan's sends are looked at.
                Record::Window {
                    at, device, until, ..
                } => {
                    if let Some(k) = super::parse_device_ref(device) {
                        let since = match w.waits.get(&k) {
                            Some((s, u)) if *u > *at => *s,
                            _ => *at,
                        };
                        w.waits.insert(k, (since, *until));
                    }
                }
                Record::Alarms { alarms, breach, .. } => {
                    if *breach {
                        breaking = breach_key(alarms, watch.alarm_strict);
                    }
                    w.last_alarms = alarms.clone();
                }
                Record::Gate { decision, .. }
                    if decision.verdict == crate::ops::rollout::Verdict::Promoted =>
                {
                    if let Some(b) = breaking.take() {
                        w.alarm_accepted = Some(b);
                    }
                }
                _ => {}
            }
        }
        w
    }

    /// The windows a dispatch task checks right before each send, by device id.
    pub fn send_windows(&self) -> Arc<HashMap<String, Windows>> {
        Arc::new(
            self.windows
                .iter()
                .filter_map(|(k, w)| Some((k.id.to_string(), w.as_ref().ok()?.clone())))
                .collect(),
        )
    }
}

impl Worker {
    /// Of the operations about to be sent, those the watch lets go now. Reads what it lacks
    /// first (the applications' baseline, a fresh alarm reading); holds devices whose window
    /// is shut, journaling each wait once.
    pub(super) fn watch_admits(
        &mut self,
        plan: &str,
        ops: Vec<(OpId, DeviceKey)>,
    ) -> Vec<(OpId, DeviceKey)> {
        if ops.is_empty() || self.needs_apps(plan) || self.needs_alarms(plan) {
            return Vec::new();
        }
        self.in_window(plan, ops)
    }

    /// Whether the plan's appliances' applications must still be read before anything is
    /// sent: every unsent appliance of the plan, once, before the first send.
    fn needs_apps(&mut self, plan: &str) -> bool {
        let Some(run) = self.rollouts.get(plan) else {
            return false;
        };
        if run.view.gate.is_none() || !run.view.watch.reads_apps(&run.operation) {
            return false;
        }
        if run.watching.reading_apps {
            return true;
        }
        let missing: Vec<(OpId, DeviceKey)> = self
            .book
            .ops_of(plan)
            .filter(|o| o.key.service == Service::Panorama)
            .filter(|o| matches!(o.state, OpState::Queued | OpState::Paused))
            .filter(|o| !run.watching.apps_before.contains_key(&o.key))
            .map(|o| (o.id, o.key.clone()))
            .collect();
        if missing.is_empty() {
            return false;
        }
        self.read_apps(plan, missing);
        true
    }

    fn read_apps(&mut self, plan: &str, devices: Vec<(OpId, DeviceKey)>) {
        if let Some(run) = self.rollouts.get_mut(plan) {
            run.watching.reading_apps = true;
        }
        let mut reads = Vec::new();
        for (op, key) in devices {
            match self.reach(&key) {
                Some((clients, limits, _)) => reads.push((op, key, Some((clients, limits)))),
                None => reads.push((op, key, None)),
            }
        }
        let tx = self.internal.clone();
        let plan = plan.to_string();
        self.tasks.spawn(async move {
            let mut out = Vec::new();
            for (op, key, reach) in reads {
                let read = match reach {
                    None => Err(super::status::no_scope(&key)),
                    Some((clients, limits)) => match clients.panorama() {
                        Err(e) => Err(e),
                        Ok(client) => {
                            limits.panorama_read().await;
                            let _permit = limits.call().await;
                            aws::panorama::app_instances(client, &key.id).await
                        }
                    },
                };
                out.push((op, key, read));
            }
            let _ = tx.send(Internal::Apps { plan, read: out });
        });
    }

    /// The applications before the plan: journaled as each appliance's baseline. An
    /// appliance whose applications cannot be read is not sent to: its health afterwards
    /// could not be told.
    pub(super) fn apps_read(
        &mut self,
        plan: &str,
        read: Vec<(OpId, DeviceKey, Result<Vec<AppInstance>, ApiError>)>,
    ) {
        for (op, key, result) in read {
            match result {
                Ok(apps) => {
                    let running = app_baseline(&apps);
                    self.record_watch(&Record::Apps {
                        plan: plan.to_string(),
                        at: journal::now(),
                        device: super::device_ref(&key),
                        running: running.clone(),
                    });
                    if let Some(run) = self.rollouts.get_mut(plan) {
                        run.watching.apps_before.insert(key, running);
                    }
                }
                Err(e) => {
                    let error = ApiError::new(
                        e.kind,
                        e.code.clone(),
                        format!(
                            "its applications could not be read before the operation ({}: {}), so its health afterwards could not be told; --no-app-health sends without that check",
                            e.code, e.message
                        ),
                    );
                    self.op(op, OpUpdate::new(OpState::Skipped).with_error(error));
                }
            }
        }
        if let Some(run) = self.rollouts.get_mut(plan) {
            run.watching.reading_apps = false;
        }
        self.send_unsent(plan);
        self.advance(plan);
    }

    /// Whether a fresh alarm reading must come before the next send (none within 10 s).
    fn needs_alarms(&mut self, plan: &str) -> bool {
        let Some(run) = self.rollouts.get(plan) else {
            return false;
        };
        if run.view.watch.alarms.is_empty() {
            return false;
        }
        let fresh = run
            .watching
            .alarms_read
            .is_some_and(|at| at.elapsed() < ALARM_EVERY);
        if fresh {
            return false;
        }
        self.read_alarms(plan);
        true
    }

    /// One DescribeAlarms for the rollout, unless one is under way.
    pub(super) fn read_alarms(&mut self, plan: &str) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        let recent = run
            .watching
            .alarms_tried
            .is_some_and(|at| at.elapsed() < ALARM_EVERY);
        if run.watching.reading_alarms || (recent && run.watching.alarms_failing) {
            return;
        }
        let Some(source) = self.settings.alarms_from.clone() else {
            let why = "its alarms cannot be read: the demo's simulator serves no CloudWatch (set AWS_ENDPOINT_URL_CLOUDWATCH to one you run locally)".to_string();
            return self.abort(plan, why, Cause::Gate);
        };
        run.watching.reading_alarms = true;
        run.watching.alarms_tried = Some(Instant::now());
        let names = run.view.watch.alarms.clone();
        let (tx, plan) = (self.internal.clone(), plan.to_string());
        let (cell, attempt) = (self.alarm_client.clone(), self.settings.call_timeout);
        self.tasks.spawn(async move {
            let client = cell
                .get_or_init(|| aws::cloudwatch::client(&source, attempt))
                .await;
            let read = aws::cloudwatch::read(client, &names).await;
            let _ = tx.send(Internal::Alarms { plan, read });
        });
    }

    /// An alarm reading: journaled when it changed or broke the gate; an alarm in ALARM (or,
    /// strictly, without data) breaks the gate, and one CloudWatch does not have stops the
    /// rollout before anything more is sent.
    pub(super) fn alarms_read(&mut self, plan: &str, read: Result<Vec<AlarmReading>, ApiError>) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        run.watching.reading_alarms = false;
        if run.view.phase.is_end() {
            return;
        }
        let readings = match read {
            Ok(r) => r,
            Err(_) if run.watching.alarms_failing => return,
            Err(e) => {
                // Not read is not known to be fine: nothing more is sent until it is.
                run.watching.alarms_failing = true;
                let why = format!(
                    "the rollout's alarms could not be read from CloudWatch ({}: {}); nothing more is sent until they can be",
                    e.code, e.message
                );
                return self.emit(Event::Failure(why));
            }
        };
        if std::mem::take(&mut run.watching.alarms_failing) {
            self.emit(Event::Notice(format!(
                "Rollout {}: its alarms can be read again",
                crate::ops::short(plan)
            )));
        }
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        let asked = run.view.watch.alarms.clone();
        let strict = run.view.watch.alarm_strict;
        let missing: Vec<String> = missing_alarms(&asked, &readings)
            .into_iter()
            .map(str::to_string)
            .collect();
        let breach = if missing.is_empty() {
            alarm_breach(&readings, strict)
        } else {
            Some(format!(
                "CloudWatch has no alarm named {}: check the name (`aws cloudwatch describe-alarms --alarm-names NAME`) and the account and region",
                missing.join(", ")
            ))
        };
        let key = breach_key(&readings, strict);
        let accepted = match (&key, &run.watching.alarm_accepted) {
            (Some(k), Some(a)) => missing.is_empty() && within(k, a),
            _ => false,
        };
        let changed = readings != run.watching.last_alarms;
        run.watching.alarms_read = Some(Instant::now());
        run.watching.last_alarms = readings.clone();
        run.view.alarms = readings.clone();
        let gate_breach = breach.filter(|_| !accepted);
        if changed || gate_breach.is_some() {
            self.record_watch(&Record::Alarms {
                plan: plan.to_string(),
                at: journal::now(),
                alarms: readings.clone(),
                breach: gate_breach.is_some(),
            });
            self.tell_alarms(plan, &readings, strict);
        }
        match gate_breach {
            Some(detail) => self.alarm_breach(plan, detail, !missing.is_empty()),
            None => {
                self.send_unsent(plan);
                self.advance(plan);
            }
        }
    }

    /// Alarms without data are told (they block only with --alarm-strict).
    fn tell_alarms(&self, plan: &str, readings: &[AlarmReading], strict: bool) {
        let quiet: Vec<&str> = readings
            .iter()
            .filter(|a| a.state == "INSUFFICIENT_DATA")
            .map(|a| a.name.as_str())
            .collect();
        if !quiet.is_empty() && !strict {
            self.emit(Event::Notice(format!(
                "Rollout {}: alarm {} has insufficient data; it does not hold the rollout (--alarm-strict would)",
                crate::ops::short(plan),
                quiet.join(", ")
            )));
        }
    }

    fn alarm_breach(&mut self, plan: &str, detail: String, missing: bool) {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return;
        };
        run.watching.alarm_accepted = None;
        let on_breach = run.view.gate.map_or(OnBreach::Abort, |g| g.on_breach);
        if matches!(run.view.phase, Phase::Paused { .. }) {
            return;
        }
        self.decide(plan, Verdict::Breached, detail.clone(), Cause::Gate);
        let why = format!("the gate was breached: {detail}");
        // A name CloudWatch does not know can never clear: nothing is waited for.
        match (on_breach, missing) {
            (OnBreach::Pause, false) => self.hold(plan, why, true, Cause::Gate),
            _ => self.abort(plan, why, Cause::Gate),
        }
        self.advance(plan);
    }

    /// A promotion past an alarm's breach accepts it as it stands.
    pub(super) fn accept_alarms(&mut self, plan: &str) {
        if let Some(run) = self.rollouts.get_mut(plan) {
            let strict = run.view.watch.alarm_strict;
            run.watching.alarm_accepted = breach_key(&run.watching.last_alarms, strict);
        }
    }

    /// Of these operations, those whose device's window is open now. The others wait, each
    /// wait journaled once; one waiting longer than --window-timeout is skipped.
    fn in_window(&mut self, plan: &str, ops: Vec<(OpId, DeviceKey)>) -> Vec<(OpId, DeviceKey)> {
        let now = journal::now();
        // Waits of devices sent, skipped or ended since are over.
        let unsent: std::collections::HashSet<DeviceKey> = self
            .book
            .ops_of(plan)
            .filter(|o| matches!(o.state, OpState::Queued | OpState::Paused))
            .map(|o| o.key.clone())
            .collect();
        let Some(run) = self.rollouts.get_mut(plan) else {
            return ops;
        };
        run.watching.waits.retain(|k, _| unsent.contains(k));
        let timeout = run.view.watch.window_timeout_secs;
        let mut go = Vec::new();
        let mut skip: Vec<(OpId, ApiError)> = Vec::new();
        let mut waits: Vec<(DeviceKey, u64, String)> = Vec::new();
        for (op, key) in ops {
            let state = match run.watching.windows.get(&key) {
                None => WindowState::Open { closes: u64::MAX },
                Some(Err(why)) => {
                    let e = ApiError::new(ErrorKind::Validation, "BadWindow", why.clone());
                    skip.push((op, e));
                    continue;
                }
                Some(Ok(w)) => w.at(now),
            };
            match state {
                WindowState::Open { .. } => {
                    run.watching.waits.remove(&key);
                    go.push((op, key));
                }
                WindowState::Shut { opens } => {
                    let since = run.watching.waits.get(&key).map_or(now, |(s, _)| *s);
                    if let Some(t) = timeout
                        && now.saturating_sub(since) >= t
                    {
                        run.watching.waits.remove(&key);
                        skip.push((op, window_timed_out(t)));
                        continue;
                    }
                    let known = run.watching.waits.get(&key).map(|(_, u)| *u);
                    run.watching.waits.insert(key.clone(), (since, opens));
                    if known != Some(opens) {
                        let spec = run.watching.windows.get(&key).and_then(|w| w.as_ref().ok());
                        waits.push((
                            key,
                            opens,
                            spec.map(ToString::to_string).unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        let mut view_waits: Vec<(DeviceKey, u64)> = run
            .watching
            .waits
            .iter()
            .map(|(k, (_, u))| (k.clone(), *u))
            .collect();
        view_waits.sort_by(|a, b| (a.1, &a.0.id).cmp(&(b.1, &b.0.id)));
        run.view.waiting = view_waits;
        for (key, until, window) in waits {
            self.record_watch(&Record::Window {
                plan: plan.to_string(),
                at: now,
                device: super::device_ref(&key),
                until,
                window,
            });
        }
        for (op, e) in skip {
            self.op(op, OpUpdate::new(OpState::Skipped).with_error(e));
        }
        self.emit_view(plan);
        go
    }

    /// The clock moved: alarms due for a reading are read; waits whose window has opened
    /// (or whose timeout has passed) are looked at again.
    pub(super) fn watch_tick(&mut self) {
        let now = journal::now();
        let plans: Vec<(String, bool, bool)> = self
            .rollouts
            .iter()
            .filter(|(_, r)| !r.view.phase.is_end())
            .map(|(p, r)| {
                let live = matches!(
                    r.view.phase,
                    Phase::Sending | Phase::Checking | Phase::Baking { .. }
                );
                let due = live
                    && !r.view.watch.alarms.is_empty()
                    && r.watching
                        .alarms_read
                        .is_none_or(|at| at.elapsed() >= ALARM_EVERY);
                let timeout = r.view.watch.window_timeout_secs;
                let opened = r.watching.waits.values().any(|(since, until)| {
                    *until <= now || timeout.is_some_and(|t| now.saturating_sub(*since) >= t)
                });
                (p.clone(), due, opened && r.view.phase == Phase::Sending)
            })
            .collect();
        for (plan, due, opened) in plans {
            if due {
                self.read_alarms(&plan);
            }
            if opened {
                self.send_unsent(&plan);
                self.advance(&plan);
            }
        }
    }

    fn record_watch(&self, record: &Record) {
        if let Some(j) = &self.journal
            && let Err(e) = j.append(record)
        {
            self.emit(Event::Failure(format!(
                "The journal could not record what the rollout's gate read: {e:#}"
            )));
        }
    }
}

fn window_timed_out(secs: u64) -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "WindowTimeout",
        format!(
            "its maintenance window did not open within {} (--window-timeout): never sent",
            crate::ops::rollout::duration_text(Duration::from_secs(secs))
        ),
    )
}
