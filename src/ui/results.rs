//! The results list: one row per device per operation, live.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Block;

use super::devices::Col;

use super::theme::Theme;
use crate::app::{App, OpRow, Pane};
use crate::fleet::Service;
use crate::ops::OpState;
use crate::ops::plan::likely_failure;
use crate::ops::rollout::{Health, Outcome, Phase, duration_text};
use crate::ops::short;
use crate::protocol::RolloutView;

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
    // Once per frame, not once per operation: with 5,000 rows in flight a search of the
    // rows for each took 10 ms a frame.
    let finals: std::collections::HashSet<usize> = app
        .results
        .rows
        .iter()
        .filter(|r| r.state.is_final())
        .map(|r| r.id)
        .collect();
    let final_of = |ops: &[usize]| ops.iter().filter(|op| finals.contains(op)).count();
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
    // One wave: the plan's own line above its rows has the gauge already.
    let mut gauges = Vec::new();
    if view.waves.len() > 1 {
        gauges.push(Span::raw(format!(
            "{} {done}/{total}",
            bar(done, total, 12)
        )));
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
        let f = view.figures;
        // Below --min-done the failures are not counted yet: the figure says so.
        let from = if f.finished < g.min_done.max(1) {
            format!(", counted from {} done", g.min_done.max(1))
        } else {
            String::new()
        };
        gauges.push(Span::raw(format!(
            "  · {} failed of {} (max {}{from})",
            f.failed, f.finished, g.max_failed
        )));
    }
    if !view.left_out.is_empty() {
        let sep = if gauges.is_empty() { "" } else { " · " };
        gauges.push(Span::raw(format!("{sep}{} left out", view.left_out.len())));
    }
    if let Some(next) = view.waiting.iter().map(|(_, u)| *u).min() {
        let sep = if gauges.is_empty() { "" } else { " · " };
        gauges.push(Span::styled(
            format!(
                "{sep}{} waiting for a maintenance window (next opens in {})",
                view.waiting.len(),
                crate::ops::rollout::duration_text(std::time::Duration::from_secs(
                    next.saturating_sub(app.now_epoch)
                ))
            ),
            theme.warn(),
        ));
    }
    let alarms: Vec<String> = view
        .alarms
        .iter()
        .map(|a| format!("{} {}", a.name, a.state))
        .collect();
    if !alarms.is_empty() {
        let sep = if gauges.is_empty() { "" } else { " · " };
        let firing = view.alarms.iter().any(|a| a.state != "OK");
        gauges.push(Span::styled(
            format!("{sep}alarms: {}", alarms.join(", ")),
            if firing { theme.warn() } else { theme.dim() },
        ));
    }
    if gauges.is_empty() {
        return vec![Line::from(head)];
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
    if r.state == OpState::Queued
        && let Some((_, until)) = app
            .results
            .rollouts
            .iter()
            .find(|v| v.plan == r.plan)
            .and_then(|v| v.waiting.iter().find(|(k, _)| *k == r.key))
    {
        return Some(format!(
            "waits for its maintenance window: opens {} UTC",
            crate::journal::when(*until)
        ));
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
    let outer = area;
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
        area.height.max(1) as usize
    } else {
        area.height.saturating_sub(2).max(1) as usize
    };
    // One line per plan (what, when, how far) above its rows; rows of a plan are together.
    let mut lines: Vec<Option<usize>> = Vec::with_capacity(results.rows.len() + 4);
    let mut last: Option<&str> = None;
    for (i, r) in results.rows.iter().enumerate() {
        if last != Some(r.plan.as_str()) {
            lines.push(None);
            last = Some(r.plan.as_str());
        }
        lines.push(Some(i));
    }
    // The table's header takes a line.
    let body = inner_rows.saturating_sub(1).max(1);
    let at = lines
        .iter()
        .position(|l| *l == Some(results.cursor))
        .unwrap_or(0);
    let offset = super::devices::scroll_offset(at, lines.len(), body);
    let page: Vec<Option<usize>> = lines.iter().skip(offset).take(body).copied().collect();
    let cols = columns(app, theme, &page);
    let fit = super::devices::fit_widths(&cols, usize::from(area.width.saturating_sub(2)));
    let shown: Vec<usize> = (0..cols.len()).filter(|&c| fit[c] > 0).collect();
    let mut out: Vec<Line> = Vec::with_capacity(page.len() + 1);
    let mut header = Vec::new();
    for &c in &shown {
        header.push(Span::styled(pad(cols[c].title, fit[c]), theme.header()));
        header.push(Span::raw(" "));
    }
    out.push(Line::from(header));
    for (n, l) in page.iter().enumerate() {
        let line = match l {
            None => plan_line(app, theme, page_plan(results, &page, n)),
            Some(i) => {
                let mut spans = Vec::new();
                for &c in &shown {
                    let (text, style) = &cols[c].cells[n];
                    spans.push(Span::styled(pad(text, fit[c]), *style));
                    spans.push(Span::raw(" "));
                }
                let line = Line::from(spans);
                if *i == results.cursor && app.focus == Pane::Results {
                    line.style(theme.selected())
                } else {
                    line
                }
            }
        };
        out.push(line);
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    frame.render_widget(ratatui::widgets::Paragraph::new(out), inner);
    super::scroll_position(frame, outer, theme, offset, page.len(), lines.len());
}

/// `text` cut or padded to `width` cells.
fn pad(text: &str, width: usize) -> String {
    let cut: String = text.chars().take(width).collect();
    format!("{cut:<width$}")
}

/// The plan of a header line on the page: that of the row after it.
fn page_plan<'a>(results: &'a crate::app::Results, page: &[Option<usize>], n: usize) -> &'a str {
    page[n..]
        .iter()
        .find_map(|l| *l)
        .and_then(|i| results.rows.get(i))
        .map_or("", |r| r.plan.as_str())
}

/// "▸ OTA 5.0.21 · plan 3f2a9c1d · started 4m12s ago · 8 of 14 final ████░░░░"
fn plan_line(app: &App, theme: &Theme, plan: &str) -> Line<'static> {
    let rows: Vec<&OpRow> = app.results.rows.iter().filter(|r| r.plan == plan).collect();
    let Some(first) = rows.first() else {
        return Line::default();
    };
    let done = rows.iter().filter(|r| r.state.is_final()).count();
    let what = match app
        .results
        .rollouts
        .iter()
        .find(|v| v.plan == plan)
        .map(|v| &v.operation)
    {
        Some(crate::fleet::Operation::Ota { image_version, .. }) => format!("OTA {image_version}"),
        _ => first.operation.clone(),
    };
    let started = rows
        .iter()
        .map(|r| r.started)
        .min()
        .unwrap_or(first.started);
    let ago = elapsed(app.now.saturating_duration_since(started));
    Line::from(vec![
        Span::styled(format!("▸ {what}"), theme.title()),
        Span::styled(
            format!(
                " · plan {} · started {ago} ago · {done} of {} final ",
                short(plan),
                rows.len()
            ),
            theme.dim(),
        ),
        Span::styled(bar(done, rows.len(), 12), theme.header()),
    ])
}

/// The page's cells, per column; a plan's line has empty cells.
fn columns(app: &App, theme: &Theme, page: &[Option<usize>]) -> Vec<Col> {
    let col = |title, priority, min| Col {
        title,
        priority,
        min,
        cells: Vec::with_capacity(page.len()),
    };
    let mut svc = col("Svc", 250, 4);
    let mut device = col("Device", 240, 10);
    let mut op = col("Op", 200, 3);
    let mut state_col = col("State", 230, 7);
    let mut time = col("Time", 150, 5);
    let mut id = col("Job/task", 180, 10);
    let mut note_col = col("Note", 170, 10);
    let plain = Style::new();
    for l in page {
        let Some(r) = l.and_then(|i| app.results.rows.get(i)) else {
            for c in [
                &mut svc,
                &mut device,
                &mut op,
                &mut state_col,
                &mut time,
                &mut id,
                &mut note_col,
            ] {
                c.cells.push((String::new(), plain));
            }
            continue;
        };
        let service = match r.key.service {
            Service::Panorama => "PAN",
            Service::Snow => "SNOW",
        };
        svc.cells.push((service.into(), plain));
        device.cells.push((r.label.clone(), plain));
        op.cells.push((r.operation.clone(), plain));
        let state = r.state.word(r.key.service);
        state_col.cells.push((state.into(), theme.state(state)));
        time.cells.push((elapsed(r.elapsed(app.now)), theme.dim()));
        id.cells
            .push((r.resource_id.clone().unwrap_or_default(), theme.dim()));
        let style = match r.health {
            Some(Health::Healthy) => theme.dim(),
            _ => theme.error(),
        };
        note_col
            .cells
            .push((note(app, r).unwrap_or_default(), style));
    }
    vec![svc, device, op, state_col, time, id, note_col]
}
