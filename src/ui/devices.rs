//! The devices table: both services, only the visible page of rows built.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};

use super::theme::Theme;
use crate::app::{App, Pane};
use crate::fleet::{Device, Service};

/// One column: its title, how much it matters when space is short (lower goes first), the
/// least width worth showing, and the page's cells.
pub(super) struct Col {
    pub title: &'static str,
    pub priority: u8,
    pub min: usize,
    pub cells: Vec<(String, Style)>,
}

impl Col {
    /// The width its widest cell (or its title) wants; 0 when every cell is empty.
    fn want(&self) -> usize {
        let widest = self
            .cells
            .iter()
            .map(|(t, _)| t.chars().count())
            .max()
            .unwrap_or(0);
        if widest == 0 {
            return 0;
        }
        widest.max(self.title.chars().count())
    }
}

/// The first row shown: the cursor stays mid-screen once past the first half, so the view
/// scrolls a line at a time, and the last page is always full.
pub fn scroll_offset(cursor: usize, len: usize, rows: usize) -> usize {
    cursor
        .saturating_sub(rows / 2)
        .min(len.saturating_sub(rows.max(1)))
}

/// Widths per column that fit `width`: every column gets what it wants when it can; when not,
/// the lowest-priority columns shrink to their least and then go, empty ones first.
pub(super) fn fit_widths(cols: &[Col], width: usize) -> Vec<usize> {
    let wants: Vec<usize> = cols.iter().map(Col::want).collect();
    let mut fit = wants.clone();
    let total = |fit: &[usize]| -> usize {
        let n = fit.iter().filter(|w| **w > 0).count();
        fit.iter().sum::<usize>() + n.saturating_sub(1)
    };
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&c| cols[c].priority);
    for &c in &order {
        if total(&fit) <= width {
            break;
        }
        let over = total(&fit) - width;
        let least = cols[c].min.min(wants[c]);
        if fit[c] > least && fit[c] - least >= over {
            fit[c] -= over;
            break;
        }
        fit[c] = least;
        if total(&fit) > width {
            fit[c] = 0;
        }
    }
    // What is left goes back to columns that went, most important first, at their least.
    for &c in order.iter().rev() {
        if fit[c] > 0 || wants[c] == 0 {
            continue;
        }
        let left = width.saturating_sub(total(&fit));
        if left > cols[c].min {
            fit[c] = wants[c].min(left - 1);
        }
    }
    fit
}

/// `text` in `width` cells; a cut keeps the end (names differ there: -cam-01, -cam-02).
pub fn cut_middle(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width || width == 0 {
        return text.to_string();
    }
    if width <= 2 {
        return text.chars().take(width).collect();
    }
    let tail = (width - 1) * 2 / 5;
    let head = width - 1 - tail;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// "<1m", "3m", "5h", "8d": how long ago. No seconds: a cell that counted them would redraw
/// an idle screen every second, bytes a slow link carries for nothing an operator acts on.
fn ago(secs: u64) -> String {
    match secs {
        0..60 => "<1m".to_string(),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The page's cells, per column, most important first in `priority`.
fn columns(app: &App, theme: &Theme, page: &[&Device]) -> Vec<Col> {
    let list = &app.devices;
    let col = |title, priority, min| Col {
        title,
        priority,
        min,
        cells: Vec::with_capacity(page.len()),
    };
    let mut mark = col("", 255, 1);
    let mut svc = col("Svc", 250, 4);
    let mut name = col("Name", 240, 10);
    let mut env = col("Env", 230, 4);
    let mut status = col("Status", 220, 8);
    let mut software = col("Software", 200, 6);
    let mut seen = col("Seen", 190, 3);
    let mut region = col("Region", 180, 9);
    let mut latest = col("Latest", 150, 8);
    let mut account = col("Acct", 120, 4);
    let mut tags = col("Tags", 100, 8);
    let plain = Style::new();
    for d in page {
        let marked = list.marks.contains(&d.key());
        mark.cells
            .push(mark_cell(marked, app.held.contains_key(&d.key()), theme));
        let service = match d.service {
            Service::Panorama => "PAN",
            Service::Snow => "SNOW",
        };
        svc.cells.push((service.into(), plain));
        let danger = app.danger.of(d).is_some();
        let name_style = if danger { theme.danger() } else { plain };
        name.cells.push((d.label().to_string(), name_style));
        let env_text = d.tags.get("env").unwrap_or_default().to_string();
        env.cells
            .push((env_text, if danger { theme.danger() } else { theme.dim() }));
        let unreachable = d.unreachable(app.now_epoch);
        let state = if unreachable {
            "UNREACHABLE"
        } else {
            d.status.as_str()
        };
        status.cells.push((state.to_string(), theme.state(state)));
        let current = d
            .current_software
            .as_deref()
            .unwrap_or_default()
            .to_string();
        // ✓: DescribeDevice said nothing newer is offered; → the version offered.
        let text = match (&d.available_software, &d.current_software) {
            (Some(a), Some(c)) if a != c => format!("{c}→{a}"),
            (Some(_), Some(c)) => format!("{c} ✓"),
            _ => current,
        };
        software.cells.push((text, plain));
        let seen_text = d
            .last_reached_out
            .map(|at| ago(app.now_epoch.saturating_sub(at)))
            .unwrap_or_default();
        seen.cells.push((
            seen_text,
            if unreachable {
                theme.error()
            } else {
                theme.dim()
            },
        ));
        region.cells.push((d.region.to_string(), plain));
        latest.cells.push(latest_cell(app, d, theme));
        account.cells.push((
            d.account.as_deref().unwrap_or_default().to_string(),
            theme.dim(),
        ));
        let others: Vec<String> = d
            .tags
            .iter()
            .filter(|(k, _)| *k != "env")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tags.cells.push((others.join(" "), theme.dim()));
    }
    vec![
        mark, svc, name, env, region, account, status, seen, software, latest, tags,
    ]
}

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let list = &app.devices;
    let title = title(app, theme);
    let block = Block::bordered()
        .title(Line::from(title))
        .border_style(theme.focus_border(app.focus == Pane::Devices));

    let inner_rows = area.height.saturating_sub(3).max(1) as usize;
    let offset = scroll_offset(list.cursor, list.shown(), inner_rows);
    let page: Vec<&Device> = (offset..(offset + inner_rows).min(list.shown()))
        .filter_map(|i| list.row(i))
        .collect();
    let cols = columns(app, theme, &page);
    // Two cells of border; one space between columns.
    let fit = fit_widths(&cols, usize::from(area.width.saturating_sub(2)));
    let shown: Vec<usize> = (0..cols.len()).filter(|&c| fit[c] > 0).collect();
    let rows: Vec<Row> = (0..page.len())
        .map(|r| {
            Row::new(shown.iter().map(|&c| {
                let (text, style) = &cols[c].cells[r];
                let text = if cols[c].title == "Name" {
                    cut_middle(text, fit[c])
                } else if cols[c].title == "Acct" {
                    text[text.len().saturating_sub(fit[c])..].to_string()
                } else {
                    text.clone()
                };
                Cell::from(Span::styled(text, *style))
            }))
        })
        .collect();
    let header: Vec<&str> = shown
        .iter()
        .map(|&c| {
            if cols[c].title == "Acct" && fit[c] >= 7 {
                "Account"
            } else {
                cols[c].title
            }
        })
        .collect();
    let widths: Vec<Constraint> = shown
        .iter()
        .map(|&c| {
            if c + 1 == cols.len() {
                Constraint::Min(fit[c] as u16)
            } else {
                Constraint::Length(fit[c] as u16)
            }
        })
        .collect();
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
    super::scroll_position(frame, area, theme, offset, page.len(), list.shown());
    if list.shown() == 0 && area.height > 4 {
        let text = if !list.is_empty() {
            format!(
                "No devices match \"{}\" (Esc clears the filter; / to change it).",
                list.filter
            )
        } else if list.loading.is_empty() {
            "No devices.".to_string()
        } else {
            "Loading devices…".to_string()
        };
        let at = Rect::new(area.x + 2, area.y + 2, area.width.saturating_sub(4), 1);
        frame.render_widget(Span::styled(text, theme.dim()), at);
    }
}

/// The pane's title: counts, what is shown, marked and held, the danger, filter, sort, and
/// whether a listing is under way.
fn title<'a>(app: &App, theme: &Theme) -> Vec<Span<'a>> {
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
        let hidden = list.hidden_marks();
        let text = if hidden > 0 {
            format!(
                "· {} marked ({hidden} hidden by the filter) ",
                list.marks.len()
            )
        } else {
            format!("· {} marked ", list.marks.len())
        };
        title.push(Span::styled(text, theme.marked()));
    }
    let held = app.held.keys().filter(|k| list.get(k).is_some()).count();
    if held > 0 {
        title.push(Span::styled(
            format!("· ⊘ {held} held by other plans "),
            theme.warn(),
        ));
    }
    let marked = list.marks.iter().filter_map(|k| list.get(k));
    if let Some(danger) = app.danger.summary(marked) {
        title.push(Span::styled(format!("· {danger} "), theme.danger()));
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
    title
}

/// The Latest column: the device's latest job or operation; in team mode, first whether
/// another plan holds it, and whose.
fn latest_cell(app: &App, d: &Device, theme: &Theme) -> (String, Style) {
    if let Some(h) = app.held.get(&d.key()) {
        return (format!("HELD {}", holder_user(h)), theme.warn());
    }
    let last = d
        .latest
        .as_ref()
        .map(|l| l.to_string())
        .or_else(|| app.results.latest_of(&d.key()))
        .unwrap_or_default();
    let style = theme.state(&last);
    (last, style)
}

/// The mark column: marked, or (team mode) held by another plan — whose, in Latest or the
/// details.
fn mark_cell(marked: bool, held: bool, theme: &Theme) -> (String, Style) {
    match (marked, held) {
        (true, _) => ("●".into(), theme.marked()),
        (false, true) => ("⊘".into(), theme.warn()),
        (false, false) => (" ".into(), theme.marked()),
    }
}

/// "bob" from "held by arn:aws:iam::…:user/bob on jump-1 (plan …)".
fn holder_user(held: &str) -> &str {
    let arn = held.strip_prefix("held by ").unwrap_or(held);
    let arn = arn.split(' ').next().unwrap_or(arn);
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(title: &'static str, priority: u8, min: usize, want: usize) -> Col {
        Col {
            title,
            priority,
            min,
            cells: vec![("x".repeat(want), Style::new())],
        }
    }

    #[test]
    fn columns_shrink_and_go_by_priority_and_empty_ones_first() {
        let cols = vec![
            col("Name", 9, 10, 20),
            col("Env", 8, 4, 4),
            col("Latest", 2, 8, 16),
            col("Tags", 1, 8, 30),
            col("Empty", 7, 4, 0),
        ];
        // Room for everything: each gets what it wants; the empty one nothing.
        assert_eq!(fit_widths(&cols, 100), [20, 4, 16, 30, 0]);
        // 60: Tags shrinks first.
        let fit = fit_widths(&cols, 60);
        assert_eq!(fit, [20, 4, 16, 17, 0]);
        // 40: Tags goes, then Latest shrinks to fit.
        assert_eq!(fit_widths(&cols, 40), [20, 4, 14, 0, 0]);
        // 26: only Name and Env; Name is never cut while lesser columns show.
        assert_eq!(fit_widths(&cols, 25), [20, 4, 0, 0, 0]);
        // Narrower still: Name shrinks, to its least.
        assert_eq!(fit_widths(&cols, 12), [12, 0, 0, 0, 0]);
    }

    #[test]
    fn a_cut_name_keeps_its_end_so_neighbours_stay_apart() {
        assert_eq!(cut_middle("sea-dock-cam-01", 11), "sea-do…m-01");
        assert_ne!(
            cut_middle("sea-dock-cam-01", 11),
            cut_middle("sea-dock-cam-02", 11)
        );
        assert_eq!(cut_middle("short", 11), "short");
        assert_eq!(cut_middle("abcdef", 2), "ab");
    }

    #[test]
    fn the_view_scrolls_a_line_at_a_time_and_the_last_page_is_full() {
        // 100 rows, 10 shown.
        assert_eq!(scroll_offset(0, 100, 10), 0);
        assert_eq!(scroll_offset(5, 100, 10), 0);
        assert_eq!(scroll_offset(6, 100, 10), 1);
        assert_eq!(scroll_offset(7, 100, 10), 2);
        assert_eq!(scroll_offset(99, 100, 10), 90, "the last page is full");
        assert_eq!(scroll_offset(3, 4, 10), 0);
    }
}
