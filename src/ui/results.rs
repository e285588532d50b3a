//! The results list: one row per device per operation, live.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::theme::Theme;
use crate::app::{App, OpRow, Pane};
use crate::fleet::Service;

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
    let inner_rows = area.height.saturating_sub(3).max(1) as usize;
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
            let error = Cell::from(Span::styled(
                r.error.clone().unwrap_or_default(),
                theme.error(),
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
            } else if r.error.is_some() {
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
