//! A device's details (DescribeDevice) and its job or task history.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::Details;

pub fn draw(details: &Details, held: Option<&str>, theme: &Theme, frame: &mut Frame, area: Rect) {
    let rect = super::dialog(frame, area, 90, 22);
    let mut lines = Vec::new();
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<12}"), theme.header()),
            Span::raw(value),
        ])
    };
    if let Some(d) = &details.device {
        lines.push(field("Id", d.id.to_string()));
        lines.push(field("Name", d.label().to_string()));
        lines.push(field("Status", d.status.to_string()));
        if let Some(c) = &d.connection {
            lines.push(field("Connection", c.to_string()));
        }
        lines.push(field(
            "Software",
            d.current_software
                .as_deref()
                .unwrap_or_default()
                .to_string(),
        ));
        if let Some(a) = &d.available_software {
            lines.push(field("Available", a.to_string()));
        }
        lines.push(field(
            "Latest",
            d.latest.as_deref().unwrap_or("none").to_string(),
        ));
        lines.push(field("Tags", d.tags_text()));
    }
    if let Some(h) = held {
        // Team mode: another plan has it; a plan made here now leaves it out.
        lines.push(Line::from(vec![
            Span::styled(format!("{:<12}", "Team"), theme.header()),
            Span::styled(h.to_string(), theme.warn()),
        ]));
    }
    if let Some(e) = &details.error {
        lines.push(Line::from(Span::styled(e.clone(), theme.error())));
    }
    if details.key.service == crate::fleet::Service::Panorama {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("Applications", theme.title())));
        match &details.apps {
            None => lines.push(Line::from(Span::styled("loading…", theme.dim()))),
            Some(Err(e)) => lines.push(Line::from(Span::styled(e.clone(), theme.error()))),
            Some(Ok(a)) if a.is_empty() => {
                lines.push(Line::from(Span::styled("none deployed", theme.dim())))
            }
            Some(Ok(a)) => lines.extend(a.iter().map(|i| app_line(i, theme))),
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "History (newest first)",
        theme.title(),
    )));
    match &details.history {
        None => lines.push(Line::from(Span::styled("loading…", theme.dim()))),
        Some(Err(e)) => lines.push(Line::from(Span::styled(e.clone(), theme.error()))),
        Some(Ok(h)) if h.is_empty() => {
            lines.push(Line::from(Span::styled("no jobs or tasks", theme.dim())))
        }
        Some(Ok(h)) => lines.extend(h.iter().map(|l| Line::from(l.clone()))),
    }
    let block = Block::bordered().title(format!(" {} · Esc closes ", details.key));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

/// "people-counter   RUNNING         DEPLOYMENT_SUCCEEDED", in the health's colour.
fn app_line(a: &crate::fleet::AppInstance, theme: &Theme) -> Line<'static> {
    let style = match a.health.as_str() {
        "RUNNING" if a.is_running() => theme.state("HEALTHY"),
        "ERROR" => theme.error(),
        _ => theme.warn(),
    };
    let mut spans = vec![
        Span::raw(format!("{:<22} ", a.name)),
        Span::styled(format!("{:<14}", a.health), style),
        Span::styled(a.status.clone(), theme.dim()),
    ];
    if let Some(d) = a.detail.as_deref().filter(|_| !a.is_running()) {
        spans.push(Span::styled(format!("  {d}"), theme.dim()));
    }
    Line::from(spans)
}
