//! The confirmation: what will be done, to which devices — every wave's, scrollable — with
//! which calls, where, and the gate between waves.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::{App, Confirm};
use crate::fleet::Operation;

/// `head` then the names, wrapped to `width` columns, continuation lines indented.
fn wrapped(head: String, names: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = head;
    for (i, name) in names.iter().enumerate() {
        let piece = if i + 1 < names.len() {
            format!("{name}, ")
        } else {
            name.clone()
        };
        if line.chars().count() + piece.chars().count() > width && line.trim().len() > 2 {
            lines.push(std::mem::replace(&mut line, "    ".to_string()));
        }
        line.push_str(&piece);
    }
    lines.push(line);
    lines
}

/// Words wrapped to `width` columns, continuation lines indented.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::replace(&mut line, "    ".to_string()));
        } else if !line.is_empty() && line != "    " {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

fn what(op: &Operation) -> String {
    match op {
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
    }
}

/// The devices, wave by wave and per service, and what preflight left out.
fn body(app: &App, confirm: &Confirm, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let plan = &confirm.plan;
    let region = &app.connection.region;
    let mut lines = Vec::new();
    let several = confirm.waves.len() > 1;
    for (k, (panorama, snow)) in confirm.waves.iter().enumerate() {
        if several {
            lines.push(Line::from(Span::styled(
                format!(
                    "Wave {}/{} · {} device{}",
                    k + 1,
                    confirm.waves.len(),
                    panorama.len() + snow.len(),
                    if panorama.len() + snow.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ),
                theme.title(),
            )));
        }
        let indent = if several { "  " } else { "" };
        if !panorama.is_empty() {
            let head = format!("{indent}Panorama {region} ({}): ", panorama.len());
            lines.extend(wrapped(head, panorama, width).into_iter().map(Line::from));
        }
        if !snow.is_empty() {
            let head = format!("{indent}Snow {region} ({}): ", snow.len());
            lines.extend(wrapped(head, snow, width).into_iter().map(Line::from));
        }
    }
    if !plan.snow.tags.is_empty() || plan.snow.description.is_some() {
        let mut parts = Vec::new();
        if let Some(d) = &plan.snow.description {
            parts.push(format!("description \"{d}\""));
        }
        if !plan.snow.tags.is_empty() {
            let tags: Vec<String> = plan
                .snow
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("tags {}", tags.join(" ")));
        }
        lines.push(Line::from(format!("Snow tasks: {}", parts.join(", "))));
    }
    let skipped: Vec<String> = plan
        .skipped
        .iter()
        .map(|s| {
            let how = match (s.preflight, plan.include_skipped) {
                (true, false) => "left out",
                (true, true) => "sent anyway",
                (false, _) => "skipped",
            };
            format!("{} — {how}: {}", s.label, s.reason)
        })
        .collect();
    for text in skipped {
        for line in wrap_words(&text, width) {
            lines.push(Line::from(Span::styled(line, theme.warn())));
        }
    }
    lines
}

pub fn draw(app: &App, confirm: &Confirm, theme: &Theme, frame: &mut Frame, area: Rect) {
    let plan = &confirm.plan;
    let c = &app.connection;
    let width: u16 = 76;
    let inner_width = usize::from(width.min(area.width).saturating_sub(2)).max(20);
    let body = body(app, confirm, theme, inner_width);
    let mut footer = Vec::new();
    if let Some(gate) = plan.rollout.gate_for(confirm.waves.len()) {
        footer.push(Line::from(format!(
            "Gate between waves: {}",
            gate.describe()
        )));
    }
    footer.push(Line::from(format!("Calls: {}", plan.calls())));
    footer.push(Line::from(Span::styled(
        format!(
            "Profile {} · region {} · {}",
            c.profile, c.region, c.snow_endpoint
        ),
        theme.dim(),
    )));
    if c.panorama_endpoint != c.snow_endpoint {
        footer.push(Line::from(Span::styled(
            format!("Panorama endpoint {}", c.panorama_endpoint),
            theme.dim(),
        )));
    }
    if confirm.must_type() {
        footer.push(Line::from(vec![
            Span::styled(
                format!("Type {} to confirm: ", plan.device_count()),
                theme.warn(),
            ),
            Span::raw(confirm.typed.value().to_string()),
        ]));
    } else {
        footer.push(Line::from(Span::styled(
            "y / Enter go · n / Esc back",
            theme.warn(),
        )));
    }
    if let Some(why) = &confirm.refused {
        footer.push(Line::from(Span::styled(why.clone(), theme.error())));
    }
    let head = Line::from(Span::styled(what(&plan.operation), theme.title()));
    let wanted = body.len() + footer.len() + 1 + 2;
    let rect = super::dialog(frame, area, width, wanted as u16);
    let room = usize::from(rect.height.saturating_sub(2 + 1)).saturating_sub(footer.len());
    let max_scroll = body.len().saturating_sub(room);
    let scroll = usize::from(confirm.scroll).min(max_scroll);
    let mut title = format!(
        " Confirm: {} device{} ",
        plan.device_count(),
        if plan.device_count() == 1 { "" } else { "s" }
    );
    if max_scroll > 0 {
        title.push_str(&format!(
            "· lines {}–{} of {} (↑↓ PgUp PgDn) ",
            scroll + 1,
            (scroll + room).min(body.len()),
            body.len()
        ));
    }
    let block = Block::bordered().title(title);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(room as u16),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(head), top);
    let visible: Vec<Line> = body.into_iter().skip(scroll).take(room).collect();
    frame.render_widget(Paragraph::new(visible), middle);
    frame.render_widget(Paragraph::new(footer).wrap(Wrap { trim: false }), bottom);
}
