//! Team mode: the account's Panorama quota shared by the team's plans in it
//! (`team::budget`). Every few seconds while this host's team plans have appliances not yet
//! final, each scope's plans are written to the table and every host's read back; the scope's
//! pacing takes this host's share, and the operator is told when the sharing changes. A plan
//! writes its part before its first send (with its leases), so two runs started together
//! share from their first create.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::limits::Limits;
use super::{Internal, Place, Worker};
use crate::aws::ApiError;
use crate::fleet::Service;
use crate::ops::OpState;
use crate::protocol::Event;
use crate::team::Team;
use crate::team::budget::{Member, Share};

/// How often the shares are written and read back: well inside an item's hold.
const EVERY: Duration = Duration::from_secs(3);

/// One scope's ask: its pacing (none for a key no scope has any more: an account learned
/// later), this host's plans there, and those that have left it.
pub(super) struct Ask {
    scope: String,
    limits: Option<Arc<Limits>>,
    mine: Vec<Member>,
    left: Vec<String>,
}

/// Asks made together, numbered in the order made: an answer older than one already taken
/// is not taken (two asks can be under way, and end in either order).
pub(super) struct Shared {
    number: u64,
    periodic: bool,
    answers: Vec<(Ask, Result<Vec<Member>, ApiError>)>,
}

#[derive(Default)]
pub(super) struct Quota {
    /// Per scope: this host's plans written there, and the share last taken.
    scopes: HashMap<String, (Vec<String>, Share)>,
    asking: bool,
    asked: Option<Instant>,
    /// The last ask's number, and the newest whose answer was taken.
    made: u64,
    taken: u64,
}

impl Quota {
    /// A number for a new ask.
    pub(super) fn number(&mut self) -> u64 {
        self.made += 1;
        self.made
    }

    /// Asks again at the next poll (a wave's sends have begun).
    pub(super) fn soon(&mut self) {
        self.asked = None;
    }

    /// The plan has ended: the scopes it was written in, which it leaves.
    pub(super) fn leave(&mut self, plan: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (scope, (written, _)) in &mut self.scopes {
            if let Some(i) = written.iter().position(|p| p == plan) {
                written.remove(i);
                out.push(scope.clone());
            }
        }
        out
    }
}

/// Whose quota a scope draws on: its account (once an ARN named it) and region.
fn quota_scope(place: &Place) -> String {
    let account = place
        .conn
        .account
        .clone()
        .unwrap_or_else(|| place.pacing.clone());
    format!("{account}#{}", place.conn.region)
}

/// Writes each scope's plans and reads back every host's.
pub(super) async fn ask(team: Arc<Team>, number: u64, periodic: bool, asks: Vec<Ask>) -> Shared {
    let mut answers = Vec::with_capacity(asks.len());
    for a in asks {
        let members = team.share_quota(&a.scope, &a.mine, &a.left).await;
        answers.push((a, members));
    }
    Shared {
        number,
        periodic,
        answers,
    }
}

impl Worker {
    /// This host's team plans in each scope, from their appliances not yet final: sending
    /// while any is handed to a send (a later wave's, a baking plan's, are not).
    fn quota_members(&self) -> HashMap<String, (Arc<Limits>, Vec<Member>)> {
        let dispatching: std::collections::HashSet<crate::ops::OpId> =
            self.dispatch_ops.values().flatten().copied().collect();
        let mut out: HashMap<String, (Arc<Limits>, Vec<Member>)> = HashMap::new();
        for (plan, guard) in &self.guards {
            if !guard.live() {
                continue;
            }
            let mut in_scope: HashMap<String, (Arc<Limits>, bool)> = HashMap::new();
            for op in self.book.ops_of(plan) {
                if op.key.service != Service::Panorama || op.state.is_final() {
                    continue;
                }
                let Some(place) = self.place_of(&op.key) else {
                    continue;
                };
                let sending = dispatching.contains(&op.id)
                    || matches!(
                        op.state,
                        OpState::Waiting | OpState::Sending | OpState::Unconfirmed
                    );
                let entry = in_scope
                    .entry(quota_scope(place))
                    .or_insert_with(|| (place.limits.clone(), false));
                entry.1 |= sending;
            }
            for (scope, (limits, sending)) in in_scope {
                let member = Member {
                    plan: plan.clone(),
                    sending,
                };
                out.entry(scope)
                    .or_insert_with(|| (limits, Vec::new()))
                    .1
                    .push(member);
            }
        }
        out
    }

    /// A plan about to begin, with its appliances, beside this host's others: its part is
    /// written before its first send.
    pub(super) fn plan_asks(&self, plan: &str, keys: &[crate::fleet::DeviceKey]) -> Vec<Ask> {
        let mut wanted = self.quota_members();
        for key in keys.iter().filter(|k| k.service == Service::Panorama) {
            let Some(place) = self.place_of(key) else {
                continue;
            };
            let (_, mine) = wanted
                .entry(quota_scope(place))
                .or_insert_with(|| (place.limits.clone(), Vec::new()));
            if !mine.iter().any(|m| m.plan == plan) {
                mine.push(Member {
                    plan: plan.to_string(),
                    sending: true,
                });
            }
        }
        self.asks(wanted)
    }

    /// What to write: each scope with plans of this host, and each it has left.
    fn asks(&self, mut wanted: HashMap<String, (Arc<Limits>, Vec<Member>)>) -> Vec<Ask> {
        let mut asks = Vec::new();
        for (scope, (written, _)) in &self.quota.scopes {
            let (limits, mine) = match wanted.remove(scope) {
                Some((l, mine)) => (Some(l), mine),
                None => (self.quota_limits(scope), Vec::new()),
            };
            let left = written
                .iter()
                .filter(|p| !mine.iter().any(|m| &m.plan == *p))
                .cloned()
                .collect();
            asks.push(Ask {
                scope: scope.clone(),
                limits,
                mine,
                left,
            });
        }
        asks.extend(wanted.into_iter().map(|(scope, (limits, mine))| Ask {
            scope,
            limits: Some(limits),
            mine,
            left: Vec::new(),
        }));
        asks
    }

    fn quota_limits(&self, scope: &str) -> Option<Arc<Limits>> {
        self.places
            .iter()
            .find(|p| quota_scope(p) == scope)
            .map(|p| p.limits.clone())
    }

    /// Every poll: the shares written and read back, once every few seconds.
    pub(super) fn share_quota(&mut self) {
        let Some(team) = self.team.clone() else {
            return;
        };
        if self.quota.asking || self.quota.asked.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        let asks = self.asks(self.quota_members());
        if asks.is_empty() {
            return;
        }
        self.quota.asking = true;
        let number = self.quota.number();
        let tx = self.internal.clone();
        self.tasks.spawn(async move {
            let _ = tx.send(Internal::QuotaShared(ask(team, number, true, asks).await));
        });
    }

    /// What the table said: each scope's pacing takes this host's share.
    pub(super) fn quota_shared(&mut self, shared: Shared) {
        if shared.periodic {
            self.quota.asking = false;
            self.quota.asked = Some(Instant::now());
        }
        if shared.number < self.quota.taken {
            return;
        }
        self.quota.taken = shared.number;
        for (ask, members) in shared.answers {
            let members = match members {
                Ok(m) => m,
                Err(e) => {
                    // The last share stands; the sends themselves wait on the table's word.
                    tracing::warn!(scope = %ask.scope, error = %e, "the quota's share could not be read");
                    continue;
                }
            };
            // A plan that ended while its part was being written is taken out again.
            self.leave_ended(&ask);
            if ask.mine.is_empty() {
                let before = self.quota.scopes.remove(&ask.scope);
                if let Some(limits) = &ask.limits {
                    limits.share(&Share::whole());
                }
                if before.is_some_and(|(_, s)| s.others() > 0) {
                    self.emit(Event::QuotaShared {
                        scope: ask.scope.clone(),
                        others: 0,
                        text: shared_text(&ask.scope, &Share::whole()),
                    });
                }
                continue;
            }
            let share = Share::of(&members, &ask.mine);
            let written = ask.mine.iter().map(|m| m.plan.clone()).collect();
            let before = self
                .quota
                .scopes
                .insert(ask.scope.clone(), (written, share.clone()))
                .map(|(_, s)| s);
            if before.as_ref() == Some(&share) {
                continue;
            }
            if let Some(limits) = &ask.limits {
                limits.share(&share);
            }
            let was = before.map_or(0, |s| s.others());
            if share.others() != was {
                self.emit(Event::QuotaShared {
                    scope: ask.scope.clone(),
                    others: share.others(),
                    text: shared_text(&ask.scope, &share),
                });
            }
        }
    }
}

impl Worker {
    /// Plans of an answered ask that ended meanwhile: the ask may have written their part
    /// back after their end took it out.
    fn leave_ended(&mut self, ask: &Ask) {
        let Some(team) = self.team.clone() else {
            return;
        };
        let ended: Vec<String> = ask
            .mine
            .iter()
            .filter(|m| self.guards.get(&m.plan).is_none_or(|g| !g.live()))
            .map(|m| m.plan.clone())
            .collect();
        if ended.is_empty() {
            return;
        }
        let scope = ask.scope.clone();
        self.team_writes.spawn(async move {
            for plan in ended {
                let _ = team.leave_quota(&scope, &plan).await;
            }
        });
    }
}

/// "Panorama quota of 123456789012 in us-east-1 shared with 1 other plan of the team: this
/// host takes 1 of every 2 create turns".
fn shared_text(scope: &str, share: &Share) -> String {
    let (account, region) = scope.rsplit_once('#').unwrap_or((scope, ""));
    let place = format!("Panorama quota of {account} in {region}");
    match share.others() {
        0 => format!("{place} no longer shared: this host sends at the whole quota"),
        n => format!(
            "{place} shared with {n} other plan{} of the team: this host takes {} of every {} create turns",
            if n == 1 { "" } else { "s" },
            share.my_turns.len(),
            share.senders.max(1),
        ),
    }
}
