//! The offer to resume a plan a crash left open.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::App;
use crate::protocol::Resumable;

pub fn draw(app: &App, plan: &Resumable, theme: &Theme, frame: &mut Frame, area: Rect) {
    let names: Vec<String> = plan
        .pending
        .iter()
        .map(|k| {
            app.devices
                .get(k)
                .map_or(k.id.as_str(), |d| d.label())
                .to_string()
        })
        .collect();
    let mut shown = names.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 6 {
        shown.push_str(&format!(" and {} more", names.len() - 6));
    }
    let mut lines = vec![
        Line::from(Span::styled(
            format!(
                "An unfinished {} plan was found in the journal ({}).",
                plan.operation.label(),
                if plan.paused {
                    "stopped by a quit or a signal"
                } else {
                    "cut short"
                }
            ),
            theme.warn(),
        )),
        Line::from(format!(
            "Of its {} devices: {} sent and not known to have ended, {} with no job or task recorded: {shown}",
            plan.total,
            plan.running,
            plan.pending.len()
        )),
        Line::from(""),
        Line::from("Resuming reads each appliance's jobs first and adopts one the lost call made;"),
        Line::from("Snow batches go again under their journaled tokens. Nothing is sent twice."),
        Line::from(""),
    ];
    if app.read_only {
        lines.push(Line::from(Span::styled(
            "read-only: d discard · Esc later",
            theme.dim(),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            "r resume · d discard (reconciles, sends nothing) · Esc decide later (J reopens)",
            theme.title(),
        )));
    }
    let what = match &plan.operation {
        crate::fleet::Operation::Ota { image_version, .. } => format!("OTA {image_version}"),
        op => op.label().to_string(),
    };
    let age = crate::ops::rollout::duration_text(std::time::Duration::from_secs(
        app.now_epoch.saturating_sub(plan.at),
    ));
    let block = Block::bordered().title(format!(
        " Unfinished {what} plan {} · confirmed {age} ago ",
        crate::ops::short(&plan.plan)
    ));
    let rect = super::dialog(frame, area, 84, lines.len() as u16 + 4);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
