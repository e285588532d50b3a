//! The devices table: both services, only the visible page of rows built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::theme::Theme;
use crate::app::{App, Pane};
use crate::fleet::Service;

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let list = &app.devices;
    let mut title = vec![Span::styled(
        format!(
            " Devices {} ({} Panorama, {} Snow) ",
            list.len(),
            list.count(Service::Panorama),
            list.count(Service::Snow)
        ),
        theme.title(),
    )];
    if list.shown() != list.len() {
        title.push(Span::raw(format!("· {} shown ", list.shown())));
    }
    if !list.marks.is_empty() {
        title.push(Span::styled(
            format!("· {} marked ", list.marks.len()),
            theme.marked(),
        ));
    }
    if !list.filter.is_empty() {
        title.push(Span::raw(format!("· filter \"{}\" ", list.filter)));
    }
    if let Some(sort) = list.sort {
        let arrow = if list.reverse { "↑" } else { "↓" };
        title.push(Span::raw(format!("· sort {} {arrow} ", sort.title())));
    }
    if !list.loading.is_empty() {
        title.push(Span::styled(
            format!("{} loading ", super::spinner(app)),
            theme.warn(),
        ));
    }
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(theme.focus_border(app.focus == Pane::Devices));

    let inner_rows = area.height.saturating_sub(3).max(1) as usize;
    // Page-wise scrolling: the page holding the cursor, computed rather than stored.
    let offset = list.cursor - list.cursor % inner_rows;
    // Narrow terminals fold Current and Available into one column, show the account's last
    // four digits and leave tags to the details view.
    let wide = area.width >= 110;
    let rows: Vec<Row> = (offset..(offset + inner_rows).min(list.shown()))
        .filter_map(|i| list.row(i))
        .map(|d| {
            let mark = if list.marks.contains(&d.key()) {
                "●"
            } else {
                " "
            };
            let service = match d.service {
                Service::Panorama => "PAN",
                Service::Snow => "SNOW",
            };
            let available = match (&d.available_software, &d.current_software) {
                (Some(a), Some(c)) if a != c => a.clone(),
                (Some(_), _) => "—".into(),
                (None, _) => String::new(),
            };
            let status = match &d.connection {
                Some(c) if d.service == Service::Snow => {
                    format!(
                        "{} {}",
                        d.status,
                        c.trim_start_matches("seen ").trim_end_matches(" ago")
                    )
                }
                _ => d.status.clone(),
            };
            let account = d.account.clone().unwrap_or_default();
            let latest = Cell::from(Span::styled(
                d.latest.clone().unwrap_or_default(),
                theme.state(d.latest.as_deref().unwrap_or("")),
            ));
            let current = d.current_software.clone().unwrap_or_default();
            let mut cells = vec![
                Cell::from(Span::styled(mark, theme.marked())),
                Cell::from(service),
                Cell::from(d.label().to_string()),
                Cell::from(d.region.clone()),
            ];
            if wide {
                cells.extend([
                    Cell::from(account),
                    Cell::from(Span::styled(status, theme.state(&d.status))),
                    Cell::from(current),
                    Cell::from(available),
                    latest,
                    Cell::from(d.tags_text()),
                ]);
            } else {
                let software = match available.as_str() {
                    "" | "—" => current,
                    a => format!("{current}→{a}"),
                };
                cells.extend([
                    Cell::from(account[account.len().saturating_sub(4)..].to_string()),
                    Cell::from(Span::styled(status, theme.state(&d.status))),
                    Cell::from(software),
                    latest,
                ]);
            }
            Row::new(cells)
        })
        .collect();
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![
                "", "Svc", "Name", "Region", "Account", "Status", "Current", "Avail", "Latest",
                "Tags",
            ],
            vec![
                Constraint::Length(1),
                Constraint::Length(4),
                Constraint::Length(21),
                Constraint::Length(12),
                Constraint::Length(12),
                Constraint::Length(13),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(16),
                Constraint::Min(4),
            ],
        )
    } else {
        (
            vec![
                "", "Svc", "Name", "Region", "Acct", "Status", "Software", "Latest",
            ],
            vec![
                Constraint::Length(1),
                Constraint::Length(4),
                Constraint::Length(16),
                Constraint::Length(9),
                Constraint::Length(4),
                Constraint::Length(13),
                Constraint::Length(13),
                Constraint::Min(8),
            ],
        )
    };
    let header = Row::new(header).style(theme.header());
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected());
    let mut state = TableState::default();
    if list.shown() > 0 && app.focus == Pane::Devices {
        state.select(Some(list.cursor - offset));
    }
    frame.render_stateful_widget(table, area, &mut state);
    if list.is_empty() && area.height > 4 {
        let text = if list.loading.is_empty() {
            "No devices."
        } else {
            "Loading devices…"
        };
        let at = Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1);
        frame.render_widget(Span::styled(text, theme.dim()), at);
    }
}
