//! The confirmation: what will be done, to which devices, with which calls, where.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::{App, Confirm};
use crate::fleet::Operation;

fn list(names: &[String]) -> String {
    let mut out = names.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 6 {
        out.push_str(&format!(" and {} more", names.len() - 6));
    }
    out
}

pub fn draw(app: &App, confirm: &Confirm, theme: &Theme, frame: &mut Frame, area: Rect) {
    let plan = &confirm.plan;
    let what = match &plan.operation {
        Operation::Ota {
            image_version,
            allow_major,
        } => format!(
            "OTA update to {image_version}{}",
            if *allow_major {
                ", major version updates allowed"
            } else {
                ""
            }
        ),
        Operation::Reboot => "Reboot".into(),
        Operation::Unlock => "Unlock".into(),
    };
    let c = &app.connection;
    let mut lines = vec![Line::from(Span::styled(what, theme.title()))];
    if !confirm.panorama.is_empty() {
        lines.push(Line::from(format!(
            "Panorama ({}): {}",
            confirm.panorama.len(),
            list(&confirm.panorama)
        )));
    }
    if !confirm.snow.is_empty() {
        lines.push(Line::from(format!(
            "Snow ({}): {}",
            confirm.snow.len(),
            list(&confirm.snow)
        )));
        if let Some(d) = &plan.snow.description {
            lines.push(Line::from(format!("  description \"{d}\"")));
        }
        if !plan.snow.tags.is_empty() {
            let tags: Vec<String> = plan
                .snow
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            lines.push(Line::from(format!("  tags {}", tags.join(" "))));
        }
    }
    if !plan.skipped.is_empty() {
        let skipped: Vec<String> = plan
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.label, s.reason))
            .collect();
        lines.push(Line::from(Span::styled(
            format!("Skipped: {}", list(&skipped)),
            theme.warn(),
        )));
    }
    lines.push(Line::from(format!("Calls: {}", plan.calls())));
    lines.push(Line::from(Span::styled(
        format!(
            "Profile {} · region {} · {}",
            c.profile, c.region, c.snow_endpoint
        ),
        theme.dim(),
    )));
    if c.panorama_endpoint != c.snow_endpoint {
        lines.push(Line::from(Span::styled(
            format!("Panorama endpoint {}", c.panorama_endpoint),
            theme.dim(),
        )));
    }
    lines.push(Line::from(""));
    if confirm.must_type() {
        lines.push(Line::from(vec![
            Span::styled(
                format!("Type {} to confirm: ", plan.device_count()),
                theme.warn(),
            ),
            Span::raw(confirm.typed.value().to_string()),
        ]));
    } else {
        lines.push(Line::from(Span::styled(
            "y / Enter go · n / Esc back",
            theme.warn(),
        )));
    }
    if let Some(why) = &confirm.refused {
        lines.push(Line::from(Span::styled(why.clone(), theme.error())));
    }
    let block = Block::bordered().title(format!(
        " Confirm: {} device{} ",
        plan.device_count(),
        if plan.device_count() == 1 { "" } else { "s" }
    ));
    let rect = super::dialog(frame, area, 76, lines.len() as u16 + 4);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
