//! The worker's side of team mode. Each plan in team mode has a [`Guard`] that its dispatch
//! tasks ask before anything is sent: it opens once the plan's devices are leased (and, under
//! the two-person rule, approved), tells a task which devices another plan holds, and checks
//! each send against the table right before it goes. The worker renews each plan's lease at
//! every heartbeat, mirrors its progress, takes the words other hosts left for it, and
//! releases each device with its outcome once the device's operation is final.
//!
//! Failing closed: a guard lets a send go only while the plan's lease was renewed within its
//! length less a safety margin, on this process's own clock; a table that does not answer
//! stops new sends (what was sent is still followed) until it answers again and the leases
//! are confirmed still ours.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::limits::Stop;
use super::{Internal, Worker};
use crate::aws::{ApiError, ErrorKind};
use crate::fleet::{DeviceKey, Operation};
use crate::ops::OpState;
use crate::protocol::Event;
use crate::team::leases::{Refused, Sending};
use crate::team::plans::{Progress, Renewal};
use crate::team::{Holder, PlanLease, Team};

/// Where a plan stands with the team's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Its devices are being leased.
    Leasing,
    /// Leased; waiting for a second identity's approval (the team's rule).
    AwaitingApproval(String),
    /// Leased (and approved where the rule asks): sends may go.
    Open,
    /// Another host holds the plan now: nothing more is sent from here.
    Lost(String),
    /// The table could not be written when the plan began: nothing is sent.
    Failed(String),
}

/// A plan's gate to the team's table, shared by its dispatch tasks.
pub struct Guard {
    team: Arc<Team>,
    pub plan: String,
    standing: watch::Sender<Standing>,
    lease: Mutex<Option<PlanLease>>,
    /// Devices another plan holds: never sent to.
    held: Mutex<HashMap<DeviceKey, Holder>>,
    /// `--wait-for-leases`: until when a held device is waited for rather than left out.
    wait_until: Mutex<Option<Instant>>,
    /// Told when devices waited for are leased.
    held_changed: watch::Sender<u64>,
    /// When the plan's lease was last written, on this process's clock.
    renewed: Mutex<Instant>,
    /// Since when the table has not answered, if it has not.
    pub down_since: Mutex<Option<(Instant, ApiError)>>,
    /// The operator was told of this outage (whichever path saw it first).
    told_down: AtomicBool,
    /// A renewal is under way: the next waits for it (each is conditional on the last).
    renewing: AtomicBool,
    /// The plan has ended here: no more renewals.
    ended: AtomicBool,
}

/// Why a send did not go.
pub enum Blocked {
    /// Another plan holds the device.
    Held(Holder),
    /// The check before a send found these devices another plan's: they are not sent to.
    Taken(Vec<(DeviceKey, Holder)>),
    /// The plan is not ours to send any more, or the quit or a hold came first.
    Stopped,
}

impl Guard {
    pub fn new(team: Arc<Team>, plan: &str) -> Arc<Self> {
        let (standing, _) = watch::channel(Standing::Leasing);
        let (held_changed, _) = watch::channel(0);
        Arc::new(Self {
            team,
            plan: plan.to_string(),
            standing,
            lease: Mutex::new(None),
            held: Mutex::new(HashMap::new()),
            wait_until: Mutex::new(None),
            held_changed,
            renewed: Mutex::new(Instant::now()),
            down_since: Mutex::new(None),
            told_down: AtomicBool::new(false),
            renewing: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        })
    }

    pub fn standing(&self) -> Standing {
        self.standing.borrow().clone()
    }

    fn set(&self, s: Standing) {
        self.standing.send_replace(s);
    }

    pub fn lease(&self) -> Option<PlanLease> {
        self.lease.lock().ok().and_then(|l| l.clone())
    }

    /// Not lost, failed nor ended: it still draws on the quota.
    pub(super) fn live(&self) -> bool {
        !matches!(self.standing(), Standing::Lost(_) | Standing::Failed(_))
            && !self.ended.load(Ordering::Acquire)
    }

    /// The lease has more than its margin left, on this process's clock.
    pub(super) fn fresh(&self) -> bool {
        let renewed = self.renewed.lock().map_or_else(|_| Instant::now(), |r| *r);
        let s = &self.team.settings;
        renewed.elapsed() + s.margin() < s.lease
    }

    /// Waits until the plan may send, then whether this device may: `Held` when another plan
    /// holds it. Gives way to `hold` (a pause, an abort, the quit).
    pub async fn admit(&self, key: &DeviceKey, hold: &Stop) -> Result<(), Blocked> {
        self.opened(hold).await?;
        let mut changed = self.held_changed.subscribe();
        loop {
            let Some(h) = self.held.lock().ok().and_then(|h| h.get(key).cloned()) else {
                return Ok(());
            };
            // `--wait-for-leases`: waited for until the deadline, as heartbeats try again.
            let until = self.wait_until.lock().ok().and_then(|w| *w);
            match until {
                Some(t) if Instant::now() < t => {
                    let woke = hold
                        .unless(async {
                            tokio::select! {
                                _ = changed.changed() => {}
                                _ = tokio::time::sleep_until(t.into()) => {}
                            }
                        })
                        .await;
                    if woke.is_none() {
                        return Err(Blocked::Stopped);
                    }
                }
                _ => return Err(Blocked::Held(h)),
            }
        }
    }

    /// Waits until the plan's devices are leased (and approved where the rule asks); gives
    /// way to `hold`, and stops for good when the plan is lost or could not be leased.
    async fn opened(&self, hold: &Stop) -> Result<(), Blocked> {
        let mut rx = self.standing.subscribe();
        let open = hold
            .unless(async {
                loop {
                    match &*rx.borrow_and_update() {
                        Standing::Open => return true,
                        Standing::Lost(_) | Standing::Failed(_) => return false,
                        _ => {}
                    }
                    if rx.changed().await.is_err() {
                        return false;
                    }
                }
            })
            .await;
        if open == Some(true) {
            Ok(())
        } else {
            Err(Blocked::Stopped)
        }
    }

    /// Devices still held, for a heartbeat to try again while they are waited for.
    fn waited_for(&self) -> Vec<DeviceKey> {
        let waiting = self
            .wait_until
            .lock()
            .ok()
            .and_then(|w| *w)
            .is_some_and(|t| Instant::now() < t);
        if !waiting {
            return Vec::new();
        }
        self.held
            .lock()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Devices now leased that were held: no longer waited for.
    fn got(&self, keys: &[DeviceKey]) {
        if let Ok(mut h) = self.held.lock() {
            for k in keys {
                h.remove(k);
            }
        }
        self.held_changed.send_modify(|n| *n += 1);
    }

    /// Right before a send: the lease is fresh on this process's clock, and the table says the
    /// devices are still this plan's. While the table does not answer, nothing is sent and
    /// the check is tried again; another host's takeover stops it for good.
    pub async fn before_send(
        &self,
        keys: &[DeviceKey],
        sending: &Sending,
        hold: &Stop,
    ) -> Result<(), Blocked> {
        let mut wait = Duration::from_millis(250);
        loop {
            // A resumed batch comes here without an admission: it waits for the leases too.
            self.opened(hold).await?;
            let lease = self.lease().ok_or(Blocked::Stopped)?;
            if self.fresh() {
                match self.team.check(&lease, keys, sending).await {
                    // Fresh still after the check's round trip: the send follows at once.
                    Ok(()) if self.fresh() => return Ok(()),
                    Ok(()) => {}
                    Err(Refused::Lost) => match self.team.holders(keys).await {
                        Ok(holders) => return Err(self.refused(&lease, holders)),
                        Err(e) => self.down(e),
                    },
                    Err(Refused::Unreachable(e)) => self.down(e),
                }
            }
            if !hold.sleep(wait).await {
                return Err(Blocked::Stopped);
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    /// Why a check refused a send: some devices are another plan's now (they are left out,
    /// the rest of the plan goes on), or the plan itself is no longer ours at this epoch.
    fn refused(&self, lease: &PlanLease, holders: HashMap<DeviceKey, Holder>) -> Blocked {
        let others: Vec<(DeviceKey, Holder)> = holders
            .into_iter()
            .filter(|(_, h)| h.plan != lease.plan)
            .collect();
        if others.is_empty() {
            self.set(Standing::Lost(
                "its devices' leases are no longer this plan's".into(),
            ));
            return Blocked::Stopped;
        }
        if let Ok(mut held) = self.held.lock() {
            held.extend(others.iter().cloned());
        }
        Blocked::Taken(others)
    }

    /// The plan can go no further from here: its dispatch stops and the worker ends it.
    pub fn lose(&self, why: String) {
        self.set(Standing::Lost(why));
    }

    fn down(&self, e: ApiError) {
        if let Ok(mut d) = self.down_since.lock()
            && d.is_none()
        {
            *d = Some((Instant::now(), e));
        }
    }

    fn up(&self) {
        if let Ok(mut d) = self.down_since.lock() {
            *d = None;
        }
        self.told_down.store(false, Ordering::Release);
    }
}

/// The plan's operation as the team reads it: "OTA 5.0.21", "reboot".
pub fn operation_text(op: &Operation) -> String {
    match op {
        Operation::Ota { image_version, .. } => format!("OTA {image_version}"),
        other => other.label().to_string(),
    }
}

impl Worker {
    /// The table answered at start (plans may begin), or refused (nothing is sent: fail
    /// closed, and say why).
    pub(super) fn team_ready(&mut self, ready: Result<Arc<Team>, String>) {
        match ready {
            Ok(team) => {
                tracing::info!(table = %team.table, me = %team.who(), "team table in use");
                self.heartbeat_every = Some(team.settings.heartbeat());
                self.emit(Event::TeamJoined(Ok(crate::protocol::TeamJoin {
                    table: team.table.clone(),
                    arn: team.me.arn.clone(),
                    host: team.me.host.clone(),
                    who: team.who(),
                })));
                self.team = Some(team);
                self.team_problem = None;
                self.read_leases();
            }
            Err(why) => {
                self.team_problem = Some(why.clone());
                self.emit(Event::TeamJoined(Err(why)));
            }
        }
    }

    /// A plan in team mode: its lease written and its devices acquired, in a task of its own;
    /// its sends wait at its guard meanwhile.
    pub(super) fn team_begin(
        &mut self,
        plan: &str,
        operation: &Operation,
        record: String,
        keys: Vec<DeviceKey>,
        needs_approval: bool,
    ) {
        let Some(team) = self.team.clone() else {
            return;
        };
        let guard = Guard::new(team.clone(), plan);
        self.guards.insert(plan.to_string(), guard.clone());
        let op = operation_text(operation);
        let tx = self.internal.clone();
        let asks = self.plan_asks(plan, &keys);
        let number = self.quota.number();
        self.tasks.spawn(async move {
            let began = team
                .start_plan(&guard.plan, &op, &record, keys.len(), needs_approval)
                .await;
            let result = match began {
                Ok(lease) => team.acquire(&lease, &op, &keys).await.map(|a| (lease, a)),
                Err(e) => Err(e),
            };
            // Its part of the account's quota is written before its guard opens: its first
            // create already goes on its turn.
            if result.is_ok() && !asks.is_empty() {
                let shared = super::share::ask(team.clone(), number, false, asks).await;
                let _ = tx.send(Internal::QuotaShared(shared));
            }
            let _ = tx.send(Internal::Leased {
                plan: guard.plan.clone(),
                result,
                needs_approval,
            });
        });
    }

    /// The plan's devices are leased (or it could not be begun): its guard opens, waits for
    /// approval, or fails closed.
    pub(super) fn leased(
        &mut self,
        plan: &str,
        result: Result<(PlanLease, crate::team::Acquired), ApiError>,
        needs_approval: bool,
    ) {
        let Some(guard) = self.guards.get(plan).cloned() else {
            return;
        };
        let (lease, acquired) = match result {
            Ok(r) => r,
            Err(e) => {
                let why = if e.kind == ErrorKind::Conflict {
                    e.message.clone()
                } else {
                    crate::team::refused(&guard.team.table, &e)
                };
                guard.set(Standing::Failed(why.clone()));
                self.emit(Event::Failure(why.clone()));
                let error = ApiError::new(e.kind, e.code.clone(), why);
                self.skip_unsent(plan, &error);
                self.emit_team(plan);
                return;
            }
        };
        if let Ok(mut r) = guard.renewed.lock() {
            *r = lease.written;
        }
        if let Ok(mut l) = guard.lease.lock() {
            *l = Some(lease);
        }
        if let Ok(mut h) = guard.held.lock() {
            h.extend(acquired.held.iter().cloned());
        }
        if let Some(wait) = self.settings.wait_for_leases
            && let Ok(mut w) = guard.wait_until.lock()
        {
            *w = Some(Instant::now() + wait);
        }
        let waiting = self.settings.wait_for_leases.is_some();
        for (key, holder) in &acquired.held {
            let what = if waiting { "waits" } else { "left out" };
            self.emit(Event::Notice(format!(
                "{} {what}: {}",
                key.id,
                holder.text()
            )));
        }
        match (needs_approval, &guard.team.settings.approval) {
            (true, Some(rule)) => guard.set(Standing::AwaitingApproval(format!(
                "a second operator's approval (the team's rule: {}); `fleetdeck team approve {plan}`",
                rule.text()
            ))),
            _ => guard.set(Standing::Open),
        }
        self.emit_team(plan);
    }

    /// Whether the team's approval rule covers a plan: enough of its devices, as last listed,
    /// match the rule's filter.
    pub(super) fn needs_approval(&self, keys: &[DeviceKey]) -> bool {
        let Some(rule) = self.team.as_ref().and_then(|t| t.settings.approval.clone()) else {
            return false;
        };
        let filter = crate::fleet::filter::Filter::parse(&rule.filter);
        let matching = keys
            .iter()
            .filter_map(|k| self.known.get(k))
            .filter(|d| filter.matches(d))
            .count();
        matching >= rule.min
    }

    /// Every heartbeat: each live plan's lease renewed with its figures, its words and its
    /// approvals read.
    pub(super) fn heartbeat(&mut self) {
        for (plan, guard) in self.guards.clone() {
            let Some(lease) = guard.lease() else { continue };
            if matches!(guard.standing(), Standing::Lost(_) | Standing::Failed(_))
                || guard.ended.load(Ordering::Acquire)
                || guard.renewing.swap(true, Ordering::AcqRel)
            {
                continue;
            }
            let progress = self.team_progress(&plan);
            let waiting = matches!(guard.standing(), Standing::AwaitingApproval(_));
            let tx = self.internal.clone();
            let team = guard.team.clone();
            let again = guard.waited_for();
            let op = self
                .rollouts
                .get(&plan)
                .map(|r| operation_text(&r.operation))
                .unwrap_or_default();
            let waiter = guard.clone();
            self.tasks.spawn(async move {
                let renewed = team.renew(&lease, &progress).await;
                if !again.is_empty()
                    && renewed.is_ok()
                    && let Ok(a) = team.acquire(&lease, &op, &again).await
                {
                    waiter.got(&a.ours);
                }
                let words = match &renewed {
                    Ok(_) => team.pending_words(&plan).await.unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                let approved = if waiting && renewed.is_ok() {
                    team.plan(&plan)
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|r| r.approved())
                } else {
                    false
                };
                let _ = tx.send(Internal::Renewed {
                    plan,
                    renewed,
                    words,
                    approved,
                });
            });
        }
    }

    /// What the heartbeat brought back.
    pub(super) fn renewed(
        &mut self,
        plan: &str,
        renewed: Result<PlanLease, Renewal>,
        words: Vec<crate::team::Word>,
        approved: bool,
    ) {
        let Some(guard) = self.guards.get(plan).cloned() else {
            return;
        };
        guard.renewing.store(false, Ordering::Release);
        if guard.ended.load(Ordering::Acquire) {
            return;
        }
        match renewed {
            Ok(lease) => {
                if let Ok(mut r) = guard.renewed.lock() {
                    *r = lease.written;
                }
                if let Ok(mut l) = guard.lease.lock() {
                    *l = Some(lease);
                }
                // Told of the outage, so told of its end.
                if guard.told_down.load(Ordering::Acquire) {
                    self.emit(Event::Notice(format!(
                        "Team table {} answers again: plan {} sends again",
                        guard.team.table,
                        crate::ops::short(plan)
                    )));
                }
                guard.up();
            }
            Err(Renewal::Lost(by)) => return self.lost(plan, &by),
            Err(Renewal::Unreachable(e)) => {
                // A send's check may have seen the outage first: the operator is told once.
                guard.down(e.clone());
                if !guard.told_down.swap(true, Ordering::AcqRel) {
                    self.emit(Event::Failure(format!(
                        "Team table {}: {}. Nothing new is sent for plan {} until it answers again (what was sent is still followed).",
                        guard.team.table,
                        crate::team::plain(&e),
                        crate::ops::short(plan)
                    )));
                }
            }
        }
        if approved && matches!(guard.standing(), Standing::AwaitingApproval(_)) {
            guard.set(Standing::Open);
            self.emit(Event::Notice(format!(
                "Plan {} approved by a second operator: it sends",
                crate::ops::short(plan)
            )));
        }
        for w in words {
            let (applied, detail) = self.word(&w.plan, w.control, w.by.clone());
            let team = guard.team.clone();
            self.team_writes.spawn(async move {
                let _ = team.answer_word(&w, applied, &detail).await;
            });
        }
        self.emit_team(plan);
    }

    /// Another host holds the plan now: nothing more is sent from here, and the journal closes
    /// it here (what was not sent is theirs).
    fn lost(&mut self, plan: &str, by: &str) {
        let Some(guard) = self.guards.get(plan).cloned() else {
            return;
        };
        guard.set(Standing::Lost(format!("taken over by {by}")));
        self.emit(Event::Failure(format!(
            "Plan {} was taken over by {by}: nothing more is sent from here",
            crate::ops::short(plan)
        )));
        self.stop_lost(plan, &format!("taken over by {by}"));
    }

    /// A send's check found the plan no longer ours: the worker hears of it when the task
    /// ends, and stops the plan here as a takeover does (true when it did). Called only while
    /// the plan still sends, so once: stopping it aborts its rollout.
    pub(super) fn lost_at_check(&mut self, plan: &str) -> bool {
        let Some(Standing::Lost(why)) = self.guards.get(plan).map(|g| g.standing()) else {
            return false;
        };
        self.emit(Event::Failure(format!(
            "Plan {}: {why}. Nothing more is sent from here (see the team's plans: `fleetdeck team plans`, or T).",
            crate::ops::short(plan)
        )));
        self.stop_lost(plan, &why);
        true
    }

    fn stop_lost(&mut self, plan: &str, why: &str) {
        let why = why.to_string();
        if let Some(run) = self.rollouts.get_mut(plan) {
            run.hold_now();
            run.view.phase = crate::ops::rollout::Phase::Aborted { why: why.clone() };
        }
        let error = ApiError::new(ErrorKind::Conflict, "PlanTakenOver", why);
        self.skip_unsent(plan, &error);
        // The rollout's end before the team's word: a view stops following at the latter.
        self.emit_view(plan);
        self.emit_team(plan);
    }

    /// A team plan that may send nothing more from here: what it never sent is skipped, with
    /// why (what was sent is still followed).
    fn skip_unsent(&mut self, plan: &str, error: &ApiError) {
        if let Some(run) = self.rollouts.get_mut(plan) {
            run.hold_now();
        }
        let left: Vec<crate::ops::OpId> = self
            .book
            .ops_of(plan)
            .filter(|o| !o.state.was_sent() && !o.state.is_final())
            .map(|o| o.id)
            .collect();
        for op in left {
            self.op_with(
                op,
                crate::ops::OpUpdate::new(OpState::Skipped).with_error(error.clone()),
                false,
            );
        }
        self.emit_team(plan);
    }

    /// The plan's figures for the mirror.
    fn team_progress(&self, plan: &str) -> Progress {
        let ops: Vec<&crate::ops::Op> = self.book.ops_of(plan).collect();
        let view = self.rollouts.get(plan).map(|r| &r.view);
        Progress {
            phase: view.map_or_else(String::new, |v| phase_text(&v.phase)),
            wave: view.map_or(0, |v| v.wave),
            waves: view.map_or(1, |v| v.waves.len()),
            sent: ops.iter().filter(|o| o.state.was_sent()).count(),
            finals: ops.iter().filter(|o| o.state.is_final()).count(),
            failed: ops
                .iter()
                .filter(|o| o.state.is_final() && o.state != OpState::Succeeded)
                .count(),
        }
    }

    /// A device's operation is final: its lease goes back with the outcome.
    pub(super) fn team_release(&mut self, op: crate::ops::OpId) {
        let Some(o) = self.book.get(op) else { return };
        let Some(guard) = self.guards.get(&o.plan).cloned() else {
            return;
        };
        if matches!(guard.standing(), Standing::Lost(_)) {
            return;
        }
        let Some(lease) = guard.lease() else { return };
        let key = o.key.clone();
        let outcome = o.state.name().to_string();
        let resource = o.resource_id.clone();
        let error = o.error.as_ref().map(ToString::to_string);
        // A device another plan holds was never ours to release.
        if guard.held.lock().is_ok_and(|h| h.contains_key(&key)) {
            return;
        }
        self.team_writes.spawn(async move {
            let _ = guard
                .team
                .release(
                    &lease,
                    &key,
                    &outcome,
                    resource.as_deref(),
                    error.as_deref(),
                )
                .await;
        });
    }

    /// The plan has ended: its mirror says how, with its last figures.
    pub(super) fn team_end(&mut self, plan: &str) {
        let Some(guard) = self.guards.get(plan).cloned() else {
            return;
        };
        let Some(lease) = guard.lease() else { return };
        if matches!(guard.standing(), Standing::Lost(_)) {
            return;
        }
        let outcome = self
            .rollouts
            .get(plan)
            .and_then(|r| r.view.outcome)
            .map_or("ENDED", |o| match o {
                crate::ops::rollout::Outcome::Succeeded => "SUCCEEDED",
                crate::ops::rollout::Outcome::Partial => "PARTIAL",
                crate::ops::rollout::Outcome::Aborted => "ABORTED",
            });
        let progress = self.team_progress(plan);
        guard.ended.store(true, Ordering::Release);
        // Its part of the quota is given back now, not when its item's hold runs out.
        let scopes = self.quota.leave(plan);
        self.team_writes.spawn(async move {
            let _ = guard.team.end_plan(&lease, outcome, &progress).await;
            for scope in scopes {
                let _ = guard.team.leave_quota(&scope, &guard.plan).await;
            }
        });
    }

    /// A decision of a team plan's rollout, mirrored.
    pub(super) fn team_decision(&mut self, plan: &str, n: usize, line: String) {
        let Some(guard) = self.guards.get(plan).cloned() else {
            return;
        };
        self.team_writes.spawn(async move {
            let _ = guard.team.mirror_decision(&guard.plan, n, &line).await;
        });
    }

    /// How the plan stands with the team, for the views.
    fn emit_team(&self, plan: &str) {
        if let Some(g) = self.guards.get(plan) {
            let text = match g.standing() {
                Standing::Leasing => "acquiring the devices' leases".to_string(),
                Standing::AwaitingApproval(why) => format!("waiting for {why}"),
                Standing::Open => match g.down_since.lock().ok().and_then(|d| d.clone()) {
                    Some((since, e)) => format!(
                        "the team table has not answered for {}s ({}): nothing new is sent",
                        since.elapsed().as_secs(),
                        e.code
                    ),
                    None => "leased".to_string(),
                },
                Standing::Lost(why) | Standing::Failed(why) => why,
            };
            let down_secs = g
                .down_since
                .lock()
                .ok()
                .and_then(|d| d.as_ref().map(|(t, _)| t.elapsed().as_secs()));
            let stopped = matches!(g.standing(), Standing::Lost(_) | Standing::Failed(_));
            self.emit(Event::Team {
                plan: plan.to_string(),
                standing: text,
                down_secs,
                stopped,
            });
        }
    }
}

/// A phase as the team's mirror shows it.
fn phase_text(p: &crate::ops::rollout::Phase) -> String {
    use crate::ops::rollout::Phase;
    match p {
        Phase::Sending => "sending".into(),
        Phase::Checking => "checking health".into(),
        Phase::Baking { .. } => "baking".into(),
        Phase::AwaitingApproval => "waiting for approval".into(),
        Phase::Paused { why } => format!("paused: {why}"),
        Phase::Aborted { why } => format!("aborted: {why}"),
        Phase::Done => "done".into(),
    }
}
