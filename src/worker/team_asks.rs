//! What the operator asks of the team from the terminal UI: the team's plans and held
//! devices, words to a plan wherever it runs, and approvals under the two-person rule. Each is
//! read or written in a task of its own; the answer comes back as an event.

use super::Worker;
use crate::ops::rollout::{Cause, Control};
use crate::ops::{short, upper_first};
use crate::protocol::Event;

impl Worker {
    /// Who holds which devices, read from the table for the views and preflight.
    pub(super) fn read_leases(&mut self) {
        let Some(team) = self.team.clone() else {
            let _ = self.events.send(Event::Leases(Vec::new()));
            return;
        };
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let held = team.leased().await;
            send_held(&team, &events, held);
        });
    }

    /// The team's plans, live and recent, and the devices other plans hold: the plans are
    /// read once for both.
    pub(super) fn read_team(&mut self) {
        let Some(team) = self.team.clone() else {
            return self.emit(Event::Failure(
                "Not in team mode: start fleetdeck with --team TABLE to see the team's plans."
                    .into(),
            ));
        };
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let mut rows = match team.plans().await {
                Ok(rows) => rows,
                Err(e) => {
                    let _ = events.send(Event::Failure(crate::team::refused(&team.table, &e)));
                    return;
                }
            };
            let held = team.leased_among(&rows).await;
            // What a taker would carry on is not for the views.
            for r in &mut rows {
                r.record = None;
            }
            let _ = events.send(Event::TeamPlans(rows));
            send_held(&team, &events, held);
        });
    }

    /// A word to a team plan: applied here when this process runs it, else left in the table
    /// for its owner and answered by it (or taken back when it does not take it in time).
    pub(super) fn team_word(&mut self, plan: String, control: Control, by: Cause) {
        // This process's own plan, while it still is: a plan taken over is its new owner's.
        let ours = self.guards.get(&plan).is_some_and(|g| {
            !matches!(
                g.standing(),
                super::team::Standing::Lost(_) | super::team::Standing::Failed(_)
            )
        });
        if ours {
            self.word(&plan, control, by);
            return;
        }
        let Some(team) = self.team.clone() else {
            return self.emit(Event::Failure(
                "Not in team mode: words to another host's plan go through the team table (--team TABLE)."
                    .into(),
            ));
        };
        self.emit(Event::Notice(format!(
            "{}: left for plan {}'s owner in the team table, waiting for its answer…",
            upper_first(control.word()),
            short(&plan)
        )));
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let said = async {
                let row = team.named(&plan).await?;
                let ask = team
                    .send_word(&row.plan, control, &by)
                    .await
                    .map_err(|e| crate::team::refused(&team.table, &e))?;
                team.await_answer(&ask, &row).await
            }
            .await;
            let _ = events.send(match said {
                Ok(done) => Event::Notice(upper_first(&done)),
                Err(why) => Event::Failure(upper_first(&why)),
            });
        });
    }

    /// Approves another identity's plan under the two-person rule.
    pub(super) fn approve(&mut self, plan: String) {
        let Some(team) = self.team.clone() else {
            return self.emit(Event::Failure(
                "Not in team mode: approvals go through the team table (--team TABLE).".into(),
            ));
        };
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let _ = events.send(match team.approve(&plan).await {
                Ok(done) => Event::Notice(upper_first(&done)),
                Err(why) => Event::Failure(upper_first(&why)),
            });
        });
    }
}

/// The devices other processes' plans hold, for the views (this process's own are not
/// "held" to it); a table that did not answer is said, and nothing is marked.
fn send_held(
    team: &crate::team::Team,
    events: &tokio::sync::mpsc::UnboundedSender<Event>,
    held: Result<Vec<(crate::fleet::DeviceKey, crate::team::Holder)>, crate::aws::ApiError>,
) {
    match held {
        Ok(held) => {
            let list = held
                .into_iter()
                .filter(|(_, h)| !(h.pid == team.me.pid && h.host == team.me.host))
                .map(|(k, h)| (k, h.text()))
                .collect();
            let _ = events.send(Event::Leases(list));
        }
        Err(e) => {
            let _ = events.send(Event::Failure(crate::team::refused(&team.table, &e)));
            let _ = events.send(Event::Leases(Vec::new()));
        }
    }
}
