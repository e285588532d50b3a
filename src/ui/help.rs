//! The help overlay, generated from the keymap: two columns where there is room, lines
//! wrapped, the filter language and the journal's path below.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::App;
use crate::keymap::{BINDINGS, Scope};

fn section<'a>(app: &App, theme: &Theme, scope: Scope, heading: &'a str) -> Vec<Line<'a>> {
    let mut lines = vec![Line::from(Span::styled(heading, theme.header()))];
    for b in BINDINGS.iter().filter(|b| b.scope == scope) {
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<10}", b.shown), theme.title()),
            if app.read_only && b.mutating {
                Span::styled(format!("{} (off: read-only)", b.help), theme.dim())
            } else {
                Span::raw(b.help)
            },
        ]));
    }
    lines
}

/// How many screen lines `lines` take at `width`, wrapped.
fn height(lines: &[Line], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let left = section(app, theme, Scope::Everywhere, "Everywhere");
    let mut right = section(app, theme, Scope::Devices, "Devices pane");
    right.extend(section(app, theme, Scope::Results, "Results pane"));
    let mut foot = vec![
        Line::from(Span::styled("Filter (/)", theme.header())),
        Line::from(
            "words match name, id, tags, region, account, context · key=value a tag exactly · \
             status: svc: version: region: lock: account: ctx: name: id: a field exactly · \
             value* a prefix · !term negates · terms are ANDed",
        ),
        Line::from("Text fields: Ctrl-A start · Ctrl-E end · Ctrl-U clear · Ctrl-W delete a word"),
    ];
    if let Some(path) = &app.journal_path {
        foot.push(Line::from(Span::styled(
            format!("Journal: {path}"),
            theme.dim(),
        )));
    }
    if let Some(path) = &app.log_path {
        foot.push(Line::from(Span::styled(
            format!("Log: {path}"),
            theme.dim(),
        )));
    }
    let block = Block::bordered().title(" Keys · Esc closes ");
    let two = area.width >= 76;
    let w = if two {
        area.width.min(130)
    } else {
        area.width.min(72)
    };
    let inner_w = w.saturating_sub(2);
    let col_w = if two { inner_w / 2 } else { inner_w };
    let body_h = if two {
        height(&left, col_w).max(height(&right, col_w))
    } else {
        height(&left, col_w) + height(&right, col_w)
    };
    let foot_h = height(&foot, inner_w);
    let rect = super::dialog(frame, area, w, body_h + foot_h + 2);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [body, bottom] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(foot_h)]).areas(inner);
    if two {
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(body);
        frame.render_widget(Paragraph::new(left).wrap(Wrap { trim: false }), l);
        frame.render_widget(Paragraph::new(right).wrap(Wrap { trim: false }), r);
    } else {
        let mut all = left;
        all.extend(right);
        frame.render_widget(Paragraph::new(all).wrap(Wrap { trim: false }), body);
    }
    frame.render_widget(Paragraph::new(foot).wrap(Wrap { trim: false }), bottom);
}
