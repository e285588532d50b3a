//! The confirmation: what will be done, to which devices — every wave's, scrollable — with
//! which calls, where, and the gate between waves.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

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
    let mut lines = Vec::new();
    let several = confirm.waves.len() > 1;
    for (k, groups) in confirm.waves.iter().enumerate() {
        let count: usize = groups.iter().map(|g| g.labels.len()).sum();
        if several {
            lines.push(Line::from(Span::styled(
                format!(
                    "Wave {}/{} · {} device{}",
                    k + 1,
                    confirm.waves.len(),
                    count,
                    if count == 1 { "" } else { "s" }
                ),
                theme.title(),
            )));
        }
        let indent = if several { "  " } else { "" };
        for g in groups {
            let scope = if g.scope.is_empty() {
                app.connections
                    .first()
                    .map(|c| c.scope())
                    .unwrap_or_default()
            } else {
                g.scope.clone()
            };
            let head = format!(
                "{indent}{} {scope} ({}): ",
                g.service.label(),
                g.labels.len()
            );
            lines.extend(wrapped(head, &g.labels, width).into_iter().map(Line::from));
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
    let label = |k: &crate::fleet::DeviceKey| {
        app.devices
            .get(k)
            .map_or(k.id.to_string(), |d| d.label().to_string())
    };
    for text in plan.watch_notes(app.now_epoch, label) {
        for line in wrap_words(&text, width) {
            lines.push(Line::from(Span::styled(line, theme.dim())));
        }
    }
    lines
}

pub fn draw(app: &App, confirm: &Confirm, theme: &Theme, frame: &mut Frame, area: Rect) {
    let plan = &confirm.plan;
    let scopes = plan.scope_names();
    let used: Vec<&crate::aws::Connection> = app
        .connections
        .iter()
        .filter(|c| scopes.is_empty() || scopes.contains(&c.scope()))
        .collect();
    let width: u16 = 76;
    let inner_width = usize::from(width.min(area.width).saturating_sub(2)).max(20);
    let body = body(app, confirm, theme, inner_width);
    // Every footer line is wrapped here, not by the Paragraph, so that footer.len() is the
    // rows it takes and the prompt at its end is never pushed out of the dialog.
    let mut footer: Vec<Line> = Vec::new();
    let mut push = |text: String, style: Style| {
        for line in wrap_words(&text, inner_width) {
            footer.push(Line::from(Span::styled(line, style)));
        }
    };
    if let Some(gate) = plan.rollout.gate_for(confirm.waves.len()) {
        push(
            format!("Gate between waves: {}", gate.describe()),
            Style::new(),
        );
    }
    push(format!("Calls: {}", plan.calls()), Style::new());
    // Where the calls go: every scope the plan reaches, with its profile and account.
    for c in &used {
        let account = c.account.as_deref().unwrap_or("account ?");
        push(
            format!("{} · profile {} · {account}", c.scope(), c.profile),
            theme.dim(),
        );
    }
    let mut endpoints: Vec<&str> = used
        .iter()
        .flat_map(|c| [c.snow_endpoint.as_str(), c.panorama_endpoint.as_str()])
        .filter(|e| !e.contains(".amazonaws.com"))
        .collect();
    endpoints.dedup();
    for e in endpoints {
        push(format!("endpoint {e}"), theme.dim());
    }
    if !confirm.must_type() {
        push("y / Enter go · n / Esc back".into(), theme.warn());
    }
    if let Some(why) = &confirm.refused {
        push(why.clone(), theme.error());
    }
    if confirm.must_type() {
        // The typed count stays on the prompt's own line, whatever the width.
        footer.push(Line::from(vec![
            Span::styled(
                format!("Type {} to confirm: ", plan.device_count()),
                theme.warn(),
            ),
            Span::raw(confirm.typed.value().to_string()),
        ]));
    }
    let mut head = vec![Span::styled(what(&plan.operation), theme.title())];
    let targets = plan.targets.iter().filter_map(|k| app.devices.get(k));
    if let Some(danger) = app.danger.summary(targets) {
        head.push(Span::styled(format!(" · {danger}"), theme.danger()));
    }
    let head = Line::from(head);
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
    frame.render_widget(Paragraph::new(footer), bottom);
}
