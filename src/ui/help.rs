//! The help overlay, generated from the keymap.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::theme::Theme;
use crate::app::App;
use crate::keymap::{BINDINGS, Scope};

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    for (scope, heading) in [
        (Scope::Everywhere, "Everywhere"),
        (Scope::Devices, "Devices pane"),
        (Scope::Results, "Results pane"),
    ] {
        lines.push(Line::from(Span::styled(heading, theme.header())));
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
    }
    if let Some(path) = &app.journal_path {
        lines.push(Line::from(Span::styled(
            format!("Journal: {path}"),
            theme.dim(),
        )));
    }
    let block = Block::bordered().title(" Keys · Esc closes ");
    // One column where it fits, two where the terminal is short.
    let one_column = lines.len() as u16 + 2 <= area.height;
    let (w, h) = if one_column {
        (50, lines.len() as u16 + 2)
    } else {
        (84, (lines.len() as u16).div_ceil(2) + 2)
    };
    let rect = super::dialog(frame, area, w, h);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    if one_column {
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let right = lines.split_off(lines.len().div_ceil(2));
    let [l, r] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), l);
    frame.render_widget(Paragraph::new(right), r);
}
