//! The drift view: per service, how many devices run each software version, newest first.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::theme::Theme;
use crate::app::{App, behind};
use crate::fleet::{Service, version_key};

/// (version, devices) newest first; devices that report none are "unknown", last.
pub fn versions(app: &App, service: Service) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<Vec<u64>, (String, usize)> = BTreeMap::new();
    let mut unknown = 0;
    for d in app.devices.rows().iter().filter(|d| d.service == service) {
        match &d.current_software {
            Some(v) => counts.entry(version_key(v)).or_insert((v.to_string(), 0)).1 += 1,
            None => unknown += 1,
        }
    }
    let mut out: Vec<(String, usize)> = counts.into_values().rev().collect();
    if unknown > 0 {
        out.push(("unknown".into(), unknown));
    }
    out
}

pub fn draw(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let width = area.width.min(90);
    let bar_width = usize::from(width.saturating_sub(34)).clamp(8, 40);
    let mut lines = Vec::new();
    for service in [Service::Panorama, Service::Snow] {
        let rows = versions(app, service);
        let total: usize = rows.iter().map(|(_, n)| n).sum();
        if total == 0 {
            continue;
        }
        let what = match service {
            Service::Panorama => "Panorama appliances",
            Service::Snow => "Snow devices",
        };
        lines.push(Line::from(Span::styled(
            format!("{what}: {total}"),
            theme.header(),
        )));
        for (i, (version, n)) in rows.iter().enumerate() {
            let filled = (n * bar_width).div_ceil(total.max(1)).min(bar_width);
            let style = if i == 0 && version != "unknown" {
                theme.state("SUCCEEDED")
            } else {
                theme.state("UPDATE_NEEDED")
            };
            lines.push(Line::from(vec![
                Span::raw(format!(" {version:<10} ")),
                Span::styled("█".repeat(filled), style),
                Span::styled("░".repeat(bar_width - filled), theme.dim()),
                Span::raw(format!(
                    " {n:>5} {:>5.1}%",
                    *n as f64 * 100.0 / total as f64
                )),
            ]));
        }
        lines.push(Line::from(""));
    }
    if lines.is_empty() {
        lines.push(Line::from("No devices listed yet."));
    }
    let hint = match behind(&app.devices) {
        Some((newest, keys)) if !keys.is_empty() && !app.read_only => format!(
            "m marks the {} appliance{} behind {newest} and opens the OTA form · Esc closes",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        ),
        Some((newest, keys)) if keys.is_empty() => {
            format!("Every appliance runs {newest} · Esc closes")
        }
        _ => "Esc closes".into(),
    };
    lines.push(Line::from(Span::styled(hint, theme.title())));
    let rect = super::dialog(frame, area, width, lines.len() as u16 + 2);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Drift: software versions ")),
        rect,
    );
}
