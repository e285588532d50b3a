//! The results pane's state: a row per operation the engine started, and each plan's rollout
//! as the worker last reported it.

use std::time::{Duration, Instant};

use crate::fleet::DeviceKey;
use crate::ops::rollout::Health;
use crate::ops::{OpId, OpState, Tally};
use crate::protocol::RolloutView;

/// One device's part in one operation: a view of the engine's operation.
#[derive(Debug, Clone)]
pub struct OpRow {
    pub id: OpId,
    pub plan: String,
    pub key: DeviceKey,
    pub label: String,
    pub operation: String,
    pub resource_id: Option<String>,
    pub state: OpState,
    pub started: Instant,
    pub finished: Option<Instant>,
    pub error: Option<String>,
    /// After a success, in a gated rollout: whether the device came back healthy.
    pub health: Option<Health>,
}

impl OpRow {
    /// Nothing more will happen to it in this process: final, or paused.
    pub fn done(&self) -> bool {
        !self.state.in_flight()
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        self.finished
            .unwrap_or(now)
            .saturating_duration_since(self.started)
    }
}

#[derive(Debug, Default)]
pub struct Results {
    pub rows: Vec<OpRow>,
    pub cursor: usize,
    /// Each plan's rollout as the worker last reported it, oldest first.
    pub rollouts: Vec<RolloutView>,
    /// Team mode: how each plan stands with the team's table.
    pub team: std::collections::HashMap<String, String>,
}

impl Results {
    /// The rollout of the plan under the cursor, or else the newest.
    pub fn rollout_in_focus(&self) -> Option<&RolloutView> {
        let plan = self.rows.get(self.cursor).map(|r| r.plan.as_str());
        plan.and_then(|p| self.rollouts.iter().find(|r| r.plan == p))
            .or_else(|| self.rollouts.last())
    }
}

impl Results {
    /// The newest operation on a device here and its state, e.g. "unlock IN_PROGRESS": what
    /// the Latest column shows where the service's own listing says nothing (Snow).
    pub fn latest_of(&self, key: &DeviceKey) -> Option<String> {
        let r = self.rows.iter().rev().find(|r| r.key == *key)?;
        Some(format!("{} {}", r.operation, r.state.word(r.key.service)))
    }

    pub fn in_flight(&self) -> usize {
        self.rows.iter().filter(|r| r.state.in_flight()).count()
    }

    pub fn tally(&self) -> Tally {
        Tally::of(self.rows.iter().map(|r| &r.state))
    }
}
