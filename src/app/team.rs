//! The team pane (team mode): every member's plans as the team's table has them, read again
//! every two seconds while it is open. From it an operator pauses, promotes or aborts a plan
//! wherever it runs, or approves one under the two-person rule; each asks first.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, Overlay, TeamAsk};
use crate::ops::rollout::Control;
use crate::protocol::Command;
use crate::team::PlanRow;

/// How often the open pane reads the table again.
const REREAD: Duration = Duration::from_secs(2);

/// The plans in the order the pane shows them: live first, then the newest.
pub fn shown(app: &App) -> Vec<&PlanRow> {
    let mut rows: Vec<&PlanRow> = app.team_plans.iter().collect();
    rows.sort_by_key(|r| (r.ended(), std::cmp::Reverse(r.created_at)));
    rows
}

/// Why the selected plan cannot take `ask` (None: it can).
pub fn refusal(app: &App, row: &PlanRow, ask: TeamAsk) -> Option<String> {
    if app.read_only {
        return Some("Read-only mode: words and approvals are disabled".into());
    }
    if row.ended() {
        return Some(format!(
            "Plan {} has ended ({}): nothing to do",
            crate::ops::short(&row.plan),
            row.outcome.as_deref().unwrap_or("ENDED")
        ));
    }
    match ask {
        TeamAsk::Approve if !row.needs_approval => Some(format!(
            "Plan {} needs no approval: the team's rule does not cover its devices",
            crate::ops::short(&row.plan)
        )),
        TeamAsk::Approve if row.approved() => Some(format!(
            "Plan {} is approved already (by {})",
            crate::ops::short(&row.plan),
            row.approvals.join(", ")
        )),
        TeamAsk::Approve if app.team.as_ref().is_some_and(|t| t.arn == row.created_by) => {
            Some(format!(
                "Plan {} was made by you: the two-person rule needs another identity to approve it",
                crate::ops::short(&row.plan)
            ))
        }
        _ => None,
    }
}

/// Opens the pane and reads the table; outside team mode, says how to get there.
pub(super) fn open(app: &mut App) -> Vec<Command> {
    if let (None, Some(why)) = (&app.team, &app.team_refused) {
        app.fail(format!(
            "The team pane needs the team table, which cannot be used: {why}"
        ));
        return Vec::new();
    }
    if app.team.is_none() {
        app.fail(
            "Not in team mode: the team pane shows the plans of a team table. Start fleetdeck with --team TABLE (after `fleetdeck team init --team TABLE`).",
        );
        return Vec::new();
    }
    app.overlay = Some(Overlay::Team {
        selected: 0,
        asking: None,
    });
    app.team_read_at = Some(app.now);
    vec![Command::ReadTeam]
}

/// At each tick: the open pane reads the table again once its last read is old enough.
pub(super) fn reread(app: &mut App) -> Vec<Command> {
    if !matches!(app.overlay, Some(Overlay::Team { .. })) {
        return Vec::new();
    }
    let due = app
        .team_read_at
        .is_none_or(|at| app.now.saturating_duration_since(at) >= REREAD);
    if !due {
        return Vec::new();
    }
    app.team_read_at = Some(app.now);
    vec![Command::ReadTeam]
}

pub(super) fn key(
    app: &mut App,
    selected: usize,
    asking: Option<(TeamAsk, String)>,
    key: KeyEvent,
) -> Vec<Command> {
    let count = app.team_plans.len();
    let selected = selected.min(count.saturating_sub(1));
    let stay = |app: &mut App, selected, asking| {
        app.overlay = Some(Overlay::Team { selected, asking });
        Vec::new()
    };
    if let Some((ask, plan)) = asking {
        return match key.code {
            KeyCode::Char('y') | KeyCode::Enter => {
                let sent = send(app, &plan, ask);
                stay(app, selected, None);
                sent
            }
            KeyCode::Char('n') | KeyCode::Esc => stay(app, selected, None),
            _ => stay(app, selected, Some((ask, plan))),
        };
    }
    let ask = match key.code {
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('T') => return Vec::new(),
        KeyCode::Down | KeyCode::Char('j') => {
            return stay(app, (selected + 1).min(count.saturating_sub(1)), None);
        }
        KeyCode::Up | KeyCode::Char('k') => return stay(app, selected.saturating_sub(1), None),
        KeyCode::Char('r') => {
            app.team_read_at = Some(app.now);
            stay(app, selected, None);
            return vec![Command::ReadTeam];
        }
        KeyCode::Char('p') => TeamAsk::Word(Control::Pause),
        KeyCode::Char('P') => TeamAsk::Word(Control::Promote),
        KeyCode::Char('X') => TeamAsk::Word(Control::Abort),
        KeyCode::Char('a') => TeamAsk::Approve,
        _ => return stay(app, selected, None),
    };
    let Some(row) = shown(app).get(selected).copied() else {
        return stay(app, selected, None);
    };
    if let Some(why) = refusal(app, row, ask) {
        app.fail(why);
        return stay(app, selected, None);
    }
    let plan = row.plan.clone();
    stay(app, selected, Some((ask, plan)))
}

/// Sends the confirmed word or approval for the plan asked about, as it stands now.
fn send(app: &mut App, plan: &str, ask: TeamAsk) -> Vec<Command> {
    let Some(row) = app.team_plans.iter().find(|r| r.plan == plan) else {
        app.fail(format!(
            "Plan {} is no longer in the team table: nothing was sent",
            crate::ops::short(plan)
        ));
        return Vec::new();
    };
    if let Some(why) = refusal(app, row, ask) {
        app.fail(why);
        return Vec::new();
    }
    let plan = plan.to_string();
    // The answer changes the plan's row: read it again soon.
    app.team_read_at = None;
    match ask {
        TeamAsk::Word(control) => {
            app.tell(format!(
                "{}: asking plan {}'s owner…",
                crate::ops::upper_first(control.word()),
                crate::ops::short(&plan)
            ));
            vec![Command::TeamWord {
                plan,
                control,
                by: app.operator.clone(),
            }]
        }
        TeamAsk::Approve => {
            app.tell(format!("Approving plan {}…", crate::ops::short(&plan)));
            vec![Command::Approve { plan }]
        }
    }
}
