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

/// One scope's ask: its pacing, this host's plans there, and those that have left it.
pub(super) struct Ask {
    scope: String,
    limits: Arc<Limits>,
    mine: Vec<Member>,
    left: Vec<String>,
}

/// A scope's ask and what the table answered.
pub(super) type Shared = (Ask, Result<Vec<Member>, ApiError>);

#[derive(Default)]
pub(super) struct Quota {
    /// Per scope: this host's plans written there, and the share last taken.
    scopes: HashMap<String, (Vec<String>, Share)>,
    asking: bool,
    asked: Option<Instant>,
}

impl Quota {
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
pub(super) async fn ask(team: Arc<Team>, asks: Vec<Ask>) -> Vec<Shared> {
    let mut out = Vec::with_capacity(asks.len());
    for a in asks {
        let members = team.share_quota(&a.scope, &a.mine, &a.left).await;
        out.push((a, members));
    }
    out
}

impl Worker {
    /// This host's team plans in each scope, from their appliances not yet final: sending
    /// while any is on its way to a create.
    fn quota_members(&self) -> HashMap<String, (Arc<Limits>, Vec<Member>)> {
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
                let sending = matches!(
                    op.state,
                    OpState::Queued | OpState::Waiting | OpState::Sending | OpState::Unconfirmed
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
                Some(w) => w,
                None => match self.quota_limits(scope) {
                    Some(l) => (l, Vec::new()),
                    None => continue,
                },
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
            limits,
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
        let tx = self.internal.clone();
        self.tasks.spawn(async move {
            let _ = tx.send(Internal::QuotaShared(ask(team, asks).await));
        });
    }

    /// What the table said: each scope's pacing takes this host's share.
    pub(super) fn quota_shared(&mut self, shared: Vec<Shared>) {
        self.quota.asking = false;
        self.quota.asked = Some(Instant::now());
        for (ask, members) in shared {
            let members = match members {
                Ok(m) => m,
                Err(e) => {
                    // The last share stands; the sends themselves wait on the table's word.
                    tracing::warn!(scope = %ask.scope, error = %e, "the quota's share could not be read");
                    continue;
                }
            };
            if ask.mine.is_empty() {
                self.quota.scopes.remove(&ask.scope);
                ask.limits.share(&Share::whole());
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
            ask.limits.share(&share);
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
