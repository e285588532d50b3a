//! The results list: one row per device per operation, live.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::theme::Theme;
use crate::app::{App, OpRow, Pane};
use crate::fleet::Service;
use crate::fleet::plan::likely_failure;
use crate::ops::OpState;
use crate::ops::rollout::{Health, Outcome, Phase, duration_text};
use crate::worker::{RolloutView, short};

/// A text gauge: `width` cells, filled for `done` of `total`.
fn bar(done: usize, total: usize, width: usize) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

/// What the rollout waits for, or how it ended, in words.
fn waiting(view: &RolloutView, now_epoch: u64) -> String {
    let n = view.waves.len();
    let k = view.wave + 1;
    match &view.phase {
        Phase::Sending if n > 1 => format!("sending wave {k}/{n}"),
        Phase::Sending => "sending".into(),
        Phase::Checking => format!("wave {k}/{n}: checking the devices' health"),
        Phase::Baking { until } => format!(
            "wave {k}/{n} passed · bake {} left (P skips it)",
            duration_text(std::time::Duration::from_secs(
                until.saturating_sub(now_epoch)
            ))
        ),
        Phase::AwaitingApproval => {
            format!("wave {k}/{n} passed · waiting for approval: P promotes")
        }
        Phase::Paused { why } => format!("PAUSED (P promotes, X aborts): {why}"),
        Phase::Aborted { why } => format!("ABORTED: {why}"),
        Phase::Done => match view.outcome {
            Some(Outcome::Succeeded) => "SUCCEEDED".into(),
            _ => "PARTIAL: some devices failed or were left out (r retries the rest)".into(),
        },
    }
}

/// Two lines on the rollout in focus: its state and figures, then a gauge per wave.
fn rollout_lines(app: &App, view: &RolloutView, theme: &Theme) -> Vec<Line<'static>> {
    let rows = &app.results.rows;
    let final_of = |ops: &[usize]| {
        ops.iter()
            .filter(|op| {
                rows.iter()
                    .find(|r| r.id == **op)
                    .is_some_and(|r| r.state.is_final())
            })
            .count()
    };
    let total: usize = view.waves.iter().map(Vec::len).sum();
    let done: usize = view.waves.iter().map(|w| final_of(w)).sum();
    let mut head = vec![Span::styled(
        format!("Rollout {} ", short(&view.plan)),
        theme.title(),
    )];
    let word = waiting(view, app.now_epoch);
    let style = match &view.phase {
        Phase::Aborted { .. } | Phase::Paused { .. } => theme.error(),
        Phase::AwaitingApproval | Phase::Baking { .. } => theme.warn(),
        _ => theme.dim(),
    };
    head.push(Span::styled(word, style));
    let mut gauges = vec![Span::raw(format!(
        "{} {done}/{total}",
        bar(done, total, 12)
    ))];
    if view.waves.len() > 1 {
        for (k, w) in view.waves.iter().enumerate() {
            let style = if k == view.wave {
                theme.title()
            } else {
                theme.dim()
            };
            gauges.push(Span::styled(
                format!(
                    "  W{} {} {}/{}",
                    k + 1,
                    bar(final_of(w), w.len(), 4),
                    final_of(w),
                    w.len()
                ),
                style,
            ));
        }
    }
    if let Some(g) = view.gate {
        gauges.push(Span::raw(format!(
            "  · {} failed of {} (max {})",
            view.figures.failed, view.figures.finished, g.max_failed
        )));
    }
    if !view.left_out.is_empty() {
        gauges.push(Span::raw(format!(" · {} left out", view.left_out.len())));
    }
    vec![Line::from(head), Line::from(gauges)]
}

fn elapsed(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// (state, count) in order of first appearance, for the pane's title.
fn counts(rows: &[OpRow]) -> Vec<(&'static str, usize)> {
    let mut out: Vec<(&'static str, usize)> = Vec::new();
    for r in rows {
        let word = r.state.word(r.key.service);
        match out.iter_mut().find(|(s, _)| *s == word) {
            Some((_, n)) => *n += 1,
            None => out.push((word, 1)),
        }
    }
    out
}

/// What the last column says of a row: its error, its health after a success, or the likely
/// reason a failure has when the service gave none.
fn note(app: &App, r: &OpRow) -> Option<String> {
    if let Some(e) = &r.error {
        return Some(e.clone());
    }
    match &r.health {
        Some(Health::Healthy) => return Some("✓ healthy".into()),
        Some(Health::Unhealthy(why)) => return Some(format!("not healthy: {why}")),
        Some(Health::Checking) | None => {}
    }
    if !matches!(r.state, OpState::Failed | OpState::TimedOut) {
        return None;
    }
    let view = app.results.rollouts.iter().find(|v| v.plan == r.plan)?;
    let device = app.devices.get(&r.key)?;
    likely_failure(&view.operation, device, r.state == OpState::TimedOut)
        .map(|why| format!("likely: {why}"))
}

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let results = &app.results;
    let mut title = vec![Span::styled(
        format!(" Results {} ", results.rows.len()),
        theme.title(),
    )];
    for (state, n) in counts(&results.rows) {
        title.push(Span::styled(format!("{state} {n} "), theme.state(state)));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(theme.focus_border(app.focus == Pane::Results));
    // The rollout in focus gets two lines above its rows, room allowing.
    let rollout = results
        .rollout_in_focus()
        .filter(|_| area.height >= 8)
        .map(|v| rollout_lines(app, v, theme));
    let (area, table_area) = match &rollout {
        Some(lines) => {
            let inner = block.inner(area);
            frame.render_widget(block.clone(), area);
            let [top, rest] = ratatui::layout::Layout::vertical([
                Constraint::Length(lines.len() as u16),
                Constraint::Min(1),
            ])
            .areas(inner);
            frame.render_widget(ratatui::widgets::Paragraph::new(lines.clone()), top);
            (rest, Some(rest))
        }
        None => (area, None),
    };
    let block = if table_area.is_some() {
        Block::new()
    } else {
        block
    };
    let inner_rows = if table_area.is_some() {
        area.height.saturating_sub(1).max(1) as usize
    } else {
        area.height.saturating_sub(3).max(1) as usize
    };
    let offset = results.cursor - results.cursor % inner_rows;
    // Narrow terminals get one last column: the error where there is one, else the id.
    let wide = area.width >= 110;
    let rows: Vec<Row> = results
        .rows
        .iter()
        .skip(offset)
        .take(inner_rows)
        .map(|r| {
            let service = match r.key.service {
                Service::Panorama => "PAN",
                Service::Snow => "SNOW",
            };
            let id = r.resource_id.clone().unwrap_or_default();
            let state = r.state.word(r.key.service);
            let note = note(app, r);
            let error = Cell::from(Span::styled(
                note.clone().unwrap_or_default(),
                match r.health {
                    Some(Health::Healthy) => theme.dim(),
                    _ => theme.error(),
                },
            ));
            let mut cells = vec![
                Cell::from(service),
                Cell::from(r.label.clone()),
                Cell::from(r.operation.clone()),
                Cell::from(Span::styled(state, theme.state(state))),
                Cell::from(elapsed(r.elapsed(app.now))),
            ];
            if wide {
                cells.extend([Cell::from(id), error]);
            } else if note.is_some() {
                cells.push(error);
            } else {
                cells.push(Cell::from(id));
            }
            Row::new(cells)
        })
        .collect();
    let mut titles = vec!["Svc", "Device", "Op", "State", "Time"];
    let mut widths = vec![
        Constraint::Length(4),
        Constraint::Length(18),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Length(6),
    ];
    if wide {
        titles.extend(["Job/task", "Error"]);
        widths.extend([Constraint::Length(30), Constraint::Min(10)]);
    } else {
        titles.push("Job/task · error");
        widths.push(Constraint::Min(10));
    }
    let header = Row::new(titles).style(theme.header());
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default();
    if !results.rows.is_empty() && app.focus == Pane::Results {
        state.select(Some(results.cursor - offset));
    }
    frame.render_stateful_widget(table, area, &mut state);
}
