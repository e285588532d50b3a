//! The one owner of an operation's lifecycle. A plan is a set of per-device operations, each a
//! typed state machine with an id the engine assigns:
//!
//! ```text
//! queued → waiting → sending → sent → running(progress) → succeeded | failed | timed out | canceled
//!                       └──→ unconfirmed (being resolved, never final) ──┘
//! queued | waiting → paused (dispatch stopped before the send: resumable)
//! queued → skipped (never sent: busy, or overlapping an unfinished plan)
//! ```
//!
//! The worker drives it, the journal records it, and the terminal UI and `fleetdeck run` are
//! two views of it. No SDK types and no I/O here.

pub mod plan;
pub mod rollout;
pub mod watch;

pub use plan::{Plan, Preflight};

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::aws::ApiError;
use crate::fleet::DeviceKey;

/// The first block of a plan's id, as the operator reads it.
pub fn short(plan: &str) -> &str {
    plan.split('-').next().unwrap_or(plan)
}

/// A message begun with a capital: "No approval within 3s …" from "no approval within 3s …".
pub fn upper_first(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// An operation's id, assigned by the engine, unique for the process.
pub type OpId = usize;

/// Where a job or task is on the service, between sent and final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Progress {
    /// Panorama PENDING.
    Pending,
    /// Snow QUEUED.
    Queued,
    Downloading,
    Verifying,
    InProgress,
    Rebooting,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpState {
    /// Planned, nothing done yet.
    Queued,
    /// Held by pacing or a quota.
    Waiting,
    /// The call is under way.
    Sending,
    /// The service took it: a job or task id is known.
    Sent,
    Running(Progress),
    /// A call that may or may not have taken effect, being resolved. Never final.
    Unconfirmed,
    /// Dispatch stopped before this was sent; the plan can be resumed.
    Paused,
    /// Never sent, on purpose (the reason is in the error).
    Skipped,
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
}

impl OpState {
    /// Nothing will change it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Skipped | Self::Succeeded | Self::Failed | Self::TimedOut | Self::Canceled
        )
    }

    /// Something is happening to the device, or about to.
    pub fn in_flight(self) -> bool {
        !self.is_final() && self != Self::Paused
    }

    /// A call went out (or may have): the device is no longer merely planned.
    pub fn was_sent(self) -> bool {
        matches!(
            self,
            Self::Sent
                | Self::Running(_)
                | Self::Unconfirmed
                | Self::Succeeded
                | Self::Failed
                | Self::TimedOut
                | Self::Canceled
        )
    }

    /// The service's job status (Panorama) or execution state (Snow), as the models spell it.
    pub fn from_service(status: &str) -> Option<Self> {
        Some(match status {
            "PENDING" => Self::Running(Progress::Pending),
            "QUEUED" => Self::Running(Progress::Queued),
            "DOWNLOADING" => Self::Running(Progress::Downloading),
            "VERIFYING" => Self::Running(Progress::Verifying),
            "IN_PROGRESS" => Self::Running(Progress::InProgress),
            "REBOOTING" => Self::Running(Progress::Rebooting),
            "COMPLETED" | "SUCCEEDED" => Self::Succeeded,
            // REJECTED: the device was busy with another task; it did nothing.
            "FAILED" | "REJECTED" => Self::Failed,
            "TIMED_OUT" => Self::TimedOut,
            "CANCELED" => Self::Canceled,
            _ => return None,
        })
    }

    /// The state in the service's own words where it has them (a Panorama job COMPLETED, a
    /// Snow execution SUCCEEDED), else the engine's.
    pub fn word(self, service: crate::fleet::Service) -> &'static str {
        use crate::fleet::Service;
        match (self, service) {
            (Self::Succeeded, Service::Panorama) => "COMPLETED",
            (Self::Running(Progress::Queued), _) => "QUEUED",
            _ => self.name(),
        }
    }

    /// The state's stable name (as in `fleetdeck run`'s JSON).
    pub fn name(self) -> &'static str {
        match self {
            Self::Queued => "PLANNED",
            Self::Waiting => "WAITING",
            Self::Sending => "SENDING",
            Self::Sent => "SENT",
            Self::Running(p) => match p {
                Progress::Pending => "PENDING",
                Progress::Queued => "QUEUED_ON_DEVICE",
                Progress::Downloading => "DOWNLOADING",
                Progress::Verifying => "VERIFYING",
                Progress::InProgress => "IN_PROGRESS",
                Progress::Rebooting => "REBOOTING",
            },
            Self::Unconfirmed => "UNCONFIRMED",
            Self::Paused => "PAUSED",
            Self::Skipped => "SKIPPED",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Canceled => "CANCELED",
        }
    }

    /// A final state by its stable name (as the team's table records an outcome).
    pub fn final_named(name: &str) -> Option<Self> {
        [
            Self::Succeeded,
            Self::Failed,
            Self::TimedOut,
            Self::Canceled,
            Self::Skipped,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Whether `next` may follow this state. A final state never changes; nothing goes back
    /// to planned once sent; a paused operation only moves again when its plan is resumed.
    pub fn may_become(self, next: OpState) -> bool {
        if self.is_final() {
            return false;
        }
        // Unconfirmed may turn out unsent (the service shows no job): it may wait again.
        if self.was_sent()
            && self != Self::Unconfirmed
            && matches!(next, Self::Queued | Self::Waiting | Self::Paused)
        {
            return false;
        }
        if self.was_sent() && next == Self::Skipped {
            return false;
        }
        true
    }
}

/// News of one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpUpdate {
    pub state: OpState,
    /// The job or task id, once known.
    pub resource_id: Option<String>,
    pub error: Option<ApiError>,
}

impl OpUpdate {
    pub fn new(state: OpState) -> Self {
        Self {
            state,
            resource_id: None,
            error: None,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.resource_id = Some(id.into());
        self
    }

    pub fn with_error(mut self, error: ApiError) -> Self {
        self.error = Some(error);
        self
    }
}

/// One device's operation, as the engine keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub id: OpId,
    pub plan: String,
    pub key: DeviceKey,
    pub state: OpState,
    pub resource_id: Option<String>,
    pub error: Option<ApiError>,
}

/// How a plan's operations stand, for the quit dialog and the exit summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Sent and not yet final.
    pub running: usize,
    /// Not yet sent (queued, waiting, paused): resumable.
    pub unsent: usize,
    /// A call that may or may not have taken effect, still being resolved.
    pub unconfirmed: usize,
    pub succeeded: usize,
    /// Failed, timed out, canceled or skipped.
    pub not_done: usize,
}

impl Tally {
    pub fn add(&mut self, state: OpState) {
        match state {
            OpState::Queued | OpState::Waiting | OpState::Paused => self.unsent += 1,
            // A call under way may or may not land: unconfirmed until it answers.
            OpState::Sending | OpState::Unconfirmed => self.unconfirmed += 1,
            OpState::Sent | OpState::Running(_) => self.running += 1,
            OpState::Succeeded => self.succeeded += 1,
            OpState::Failed | OpState::TimedOut | OpState::Canceled | OpState::Skipped => {
                self.not_done += 1
            }
        }
    }

    /// Work the engine would still do: a quit leaves it for resume.
    pub fn left(&self) -> usize {
        self.unsent + self.unconfirmed
    }

    pub fn of<'a>(states: impl IntoIterator<Item = &'a OpState>) -> Self {
        let mut t = Self::default();
        for s in states {
            t.add(*s);
        }
        t
    }
}

/// What applying an update did.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied {
    /// The update was refused: the operation is unknown or its state may not change so.
    Ignored,
    Changed,
    /// The change made every operation of the plan final.
    PlanDone(String),
}

/// Every plan and operation of this process: the engine's book.
#[derive(Debug, Default)]
pub struct Book {
    ops: BTreeMap<OpId, Op>,
    plans: HashMap<String, Vec<OpId>>,
    next: OpId,
}

impl Book {
    /// Adds a plan's operations, one per distinct device, and returns their ids.
    pub fn add_plan(&mut self, plan: &str, keys: &[DeviceKey]) -> Vec<(OpId, DeviceKey)> {
        let mut out: Vec<(OpId, DeviceKey)> = Vec::new();
        for key in keys {
            if out.iter().any(|(_, k)| k == key) {
                continue;
            }
            let id = self.next;
            self.next += 1;
            self.ops.insert(
                id,
                Op {
                    id,
                    plan: plan.to_string(),
                    key: key.clone(),
                    state: OpState::Queued,
                    resource_id: None,
                    error: None,
                },
            );
            out.push((id, key.clone()));
        }
        self.plans
            .entry(plan.to_string())
            .or_default()
            .extend(out.iter().map(|(id, _)| *id));
        out
    }

    pub fn get(&self, id: OpId) -> Option<&Op> {
        self.ops.get(&id)
    }

    /// Moves an operation on, if its state machine allows it.
    pub fn apply(&mut self, id: OpId, update: &OpUpdate) -> Applied {
        let Some(op) = self.ops.get_mut(&id) else {
            return Applied::Ignored;
        };
        if !op.state.may_become(update.state) {
            return Applied::Ignored;
        }
        op.state = update.state;
        if update.resource_id.is_some() {
            op.resource_id.clone_from(&update.resource_id);
        }
        match &update.error {
            Some(e) => op.error = Some(e.clone()),
            // A call tried again and answered: the failure of an earlier try is not its end.
            None if matches!(update.state, OpState::Sent | OpState::Succeeded) => op.error = None,
            None => {}
        }
        let plan = op.plan.clone();
        if update.state.is_final() && self.plan_done(&plan) {
            return Applied::PlanDone(plan);
        }
        Applied::Changed
    }

    pub fn plan_done(&self, plan: &str) -> bool {
        self.ops_of(plan).all(|op| op.state.is_final())
    }

    pub fn ops_of<'a>(&'a self, plan: &str) -> impl Iterator<Item = &'a Op> + 'a {
        self.plans
            .get(plan)
            .into_iter()
            .flatten()
            .filter_map(|id| self.ops.get(id))
    }

    /// Plans with any operation not final, in no particular order.
    pub fn open_plans(&self) -> Vec<String> {
        self.plans
            .keys()
            .filter(|p| !self.plan_done(p))
            .cloned()
            .collect()
    }

    /// The operation of a device that is not final, in any plan.
    pub fn live_op(&self, key: &DeviceKey) -> Option<&Op> {
        self.ops
            .values()
            .find(|op| op.key == *key && !op.state.is_final())
    }

    pub fn tally(&self) -> Tally {
        Tally::of(self.ops.values().map(|op| &op.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Service;

    fn key(id: &str) -> DeviceKey {
        DeviceKey::new(Service::Panorama, id)
    }

    #[test]
    fn a_final_state_never_changes() {
        for s in [
            OpState::Succeeded,
            OpState::Failed,
            OpState::TimedOut,
            OpState::Canceled,
            OpState::Skipped,
        ] {
            assert!(s.is_final());
            assert!(!s.may_become(OpState::Running(Progress::InProgress)));
            assert!(!s.may_become(OpState::Succeeded));
        }
    }

    #[test]
    fn unconfirmed_is_never_final_and_resolves_either_way() {
        let s = OpState::Unconfirmed;
        assert!(!s.is_final());
        assert!(s.in_flight());
        assert!(s.may_become(OpState::Sent));
        assert!(s.may_become(OpState::Failed));
        // Resolved as never sent, it waits to be sent again.
        assert!(s.may_become(OpState::Waiting));
        assert!(!s.may_become(OpState::Skipped));
    }

    #[test]
    fn a_sent_operation_cannot_be_paused_or_skipped() {
        let s = OpState::Sent;
        assert!(!s.may_become(OpState::Paused));
        assert!(!s.may_become(OpState::Skipped));
        assert!(!s.may_become(OpState::Queued));
        assert!(OpState::Queued.may_become(OpState::Paused));
        assert!(OpState::Paused.may_become(OpState::Sending));
    }

    #[test]
    fn service_states_map_to_the_machine() {
        assert_eq!(OpState::from_service("COMPLETED"), Some(OpState::Succeeded));
        assert_eq!(OpState::from_service("REJECTED"), Some(OpState::Failed));
        assert_eq!(
            OpState::from_service("REBOOTING"),
            Some(OpState::Running(Progress::Rebooting))
        );
        assert_eq!(OpState::from_service("NOPE"), None);
    }

    #[test]
    fn a_repeated_device_is_one_operation() {
        let mut book = Book::default();
        let ops = book.add_plan("p", &[key("a"), key("a"), key("b")]);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].1, key("a"));
        assert_eq!(ops[1].1, key("b"));
    }

    #[test]
    fn a_plan_is_done_when_every_operation_is_final() {
        let mut book = Book::default();
        let ops = book.add_plan("p", &[key("a"), key("b")]);
        let (a, b) = (ops[0].0, ops[1].0);
        assert_eq!(
            book.apply(a, &OpUpdate::new(OpState::Sent).with_id("j1")),
            Applied::Changed
        );
        assert_eq!(
            book.apply(a, &OpUpdate::new(OpState::Succeeded)),
            Applied::Changed
        );
        assert_eq!(
            book.apply(b, &OpUpdate::new(OpState::Unconfirmed)),
            Applied::Changed
        );
        assert_eq!(book.open_plans(), vec!["p".to_string()]);
        assert_eq!(
            book.apply(b, &OpUpdate::new(OpState::Failed)),
            Applied::PlanDone("p".into())
        );
        // A late update to a finished operation is refused.
        assert_eq!(
            book.apply(a, &OpUpdate::new(OpState::Running(Progress::Pending))),
            Applied::Ignored
        );
        assert_eq!(
            book.get(a).map(|o| o.resource_id.clone()),
            Some(Some("j1".into()))
        );
        assert!(book.open_plans().is_empty());
    }

    #[test]
    fn the_tally_counts_what_a_quit_would_leave() {
        let t = Tally::of(&[
            OpState::Queued,
            OpState::Paused,
            OpState::Sent,
            OpState::Unconfirmed,
            OpState::Succeeded,
            OpState::Skipped,
        ]);
        assert_eq!(t.unsent, 2);
        assert_eq!(t.running, 1);
        assert_eq!(t.unconfirmed, 1);
        assert_eq!(t.left(), 3);
        assert_eq!(t.succeeded, 1);
        assert_eq!(t.not_done, 1);
    }
}
