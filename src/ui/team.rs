//! The team pane: every member's plans as the team's table has them, live first; below the
//! table, the selected plan in full (owner, phase, approvals), or the question being asked.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::theme::Theme;
use crate::app::team::{refusal, shown};
use crate::app::{App, TeamAsk};
use crate::ops::short;
use crate::team::PlanRow;

/// "alice" from "arn:aws:iam::123456789012:user/alice".
fn user(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Where the plan stands, in a word or two: its outcome once ended.
fn standing(r: &PlanRow) -> String {
    match &r.outcome {
        Some(o) => o.clone(),
        None if !r.approved() => "needs approval".into(),
        None if r.phase.is_empty() => "starting".into(),
        None if r.waves > 1 => format!("wave {}/{} {}", r.wave + 1, r.waves, r.phase),
        None => r.phase.clone(),
    }
}

fn progress(r: &PlanRow) -> String {
    if r.failed > 0 {
        format!("{}/{} ✗{}", r.finals, r.devices, r.failed)
    } else {
        format!("{}/{}", r.finals, r.devices)
    }
}

pub fn draw(
    app: &App,
    selected: usize,
    asking: Option<&(TeamAsk, String)>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let rows = shown(app);
    let width = area.width.saturating_sub(2).min(116);
    let height = (rows.len() as u16 + 8).clamp(10, area.height.saturating_sub(2));
    let rect = super::dialog(frame, area, width, height);
    let title = match &app.team {
        Some(t) => format!(
            " Team {}: {} plan{} ",
            t.table,
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        ),
        None => " Team ".into(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [table_area, detail_area] =
        Layout::vertical([Constraint::Min(2), Constraint::Length(4)]).areas(inner);
    let wide = table_area.width >= 100;
    let now = app.now_epoch;
    let body: Vec<Row> = rows
        .iter()
        .map(|r| {
            let seen = if r.ended() {
                String::new()
            } else {
                format!("{}s", now.saturating_sub(r.renewed_at))
            };
            let owner = if wide {
                format!("{}@{}", user(&r.owner_arn), r.owner_host)
            } else {
                user(&r.owner_arn).to_string()
            };
            let state = standing(r);
            Row::new(vec![
                Cell::from(short(&r.plan).to_string()),
                Cell::from(r.operation.clone()),
                Cell::from(owner),
                Cell::from(progress(r)),
                Cell::from(seen),
                Cell::from(state.clone()).style(theme.state(&state)),
            ])
        })
        .collect();
    let owner_width = if wide { 24 } else { 10 };
    let table = Table::new(
        body,
        [
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(owner_width),
            Constraint::Length(8),
            Constraint::Length(4),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["plan", "operation", "owner", "final", "seen", "standing"]).style(theme.header()),
    )
    .row_highlight_style(theme.selected());
    let mut state = TableState::default().with_selected((!rows.is_empty()).then_some(selected));
    frame.render_stateful_widget(table, table_area, &mut state);
    let detail = match (rows.get(selected), asking) {
        (_, _) if rows.is_empty() => vec![Line::from(Span::styled(
            if app.team_plans.is_empty() && app.team_read_at.is_some() {
                "No plans in the team table yet (or still reading it)."
            } else {
                "No plans."
            },
            theme.dim(),
        ))],
        (_, Some((ask, plan))) => match rows.iter().find(|r| r.plan == *plan) {
            Some(r) => question(r, *ask, theme),
            None => vec![Line::from(Span::styled(
                format!("Plan {} is no longer listed: Esc", short(plan)),
                theme.warn(),
            ))],
        },
        (Some(r), None) => about(app, r, theme),
        (None, _) => Vec::new(),
    };
    frame.render_widget(
        Paragraph::new(detail).wrap(Wrap { trim: true }),
        detail_area,
    );
}

/// The selected plan in full.
fn about<'a>(app: &App, r: &PlanRow, theme: &Theme) -> Vec<Line<'a>> {
    let mine = app
        .team
        .as_ref()
        .is_some_and(|t| t.host == r.owner_host && t.arn == r.owner_arn);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{} ", r.plan), theme.header()),
        Span::raw(format!(
            "{} on {} (process {}){}, epoch {}",
            r.owner_arn,
            r.owner_host,
            r.owner_pid,
            if mine { " — this identity" } else { "" },
            r.epoch
        )),
    ])];
    let mut what = format!("{}: {}", r.operation, standing(r));
    if r.needs_approval {
        what.push_str(&match r.approvals.as_slice() {
            [] => format!(
                " · made by {}, waits for another identity (a)",
                user(&r.created_by)
            ),
            by => format!(" · approved by {}", by.join(", ")),
        });
    }
    lines.push(Line::from(what));
    if refusal(app, r, TeamAsk::Word(crate::ops::rollout::Control::Pause)).is_none() {
        lines.push(Line::from(Span::styled(
            "p pause · P promote · X abort: the owner applies it at its next heartbeat",
            theme.dim(),
        )));
    }
    lines
}

/// The question before a word or an approval is sent.
fn question<'a>(r: &PlanRow, ask: TeamAsk, theme: &Theme) -> Vec<Line<'a>> {
    let owner = format!("{}@{}", user(&r.owner_arn), r.owner_host);
    let text = match ask {
        TeamAsk::Word(c) => format!(
            "{} plan {} ({}, run by {owner})? The owner applies it and answers; nothing changes if it does not take it in time.",
            crate::ops::upper_first(c.word()),
            short(&r.plan),
            r.operation
        ),
        TeamAsk::Approve => format!(
            "Approve plan {} ({} on {} devices, made by {})? It starts sending at its owner's next heartbeat.",
            short(&r.plan),
            r.operation,
            r.devices,
            user(&r.created_by)
        ),
    };
    vec![
        Line::from(text),
        Line::from(Span::styled("y / Enter send · n / Esc back", theme.warn())),
    ]
}
