//! The job/task form: its fields, each field's error as typed, and the warnings that matter
//! before anything is sent (major bumps, skipped devices).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::theme::Theme;
use crate::app::{App, Field, Form};
use crate::fleet::Service;
use crate::ops::Plan;

fn names(list: &[String], max: usize) -> String {
    let mut out = list
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if list.len() > max {
        out.push_str(&format!(" and {} more", list.len() - max));
    }
    out
}

pub fn draw(app: &App, form: &Form, theme: &Theme, frame: &mut Frame, area: Rect) {
    let preview = form.preview();
    let panorama = form
        .targets
        .iter()
        .filter(|d| d.service == Service::Panorama)
        .count();
    let snow = form.targets.len() - panorama;
    let mut lines = vec![
        Line::from(format!(
            "{} selected: {panorama} Panorama, {snow} Snow",
            form.targets.len()
        )),
        Line::from(""),
    ];
    let cursor = fields(form, theme, &mut lines);
    lines.push(Line::from(""));
    warnings(form, &preview, theme, &mut lines);
    let waves: Vec<String> = preview
        .waves()
        .iter()
        .map(|w| w.len().to_string())
        .collect();
    if waves.len() > 1 {
        lines.push(Line::from(format!(
            "{} waves of {} devices",
            waves.len(),
            waves.join(" · ")
        )));
    }
    lines.push(Line::from(format!("Will make: {}", preview.calls())));
    if let Some(danger) = app.danger.summary(&form.targets) {
        lines.push(Line::from(Span::styled(
            format!("Targets include {danger}"),
            theme.danger(),
        )));
    }
    if let Some(why) = &form.refused {
        lines.push(Line::from(Span::styled(why.clone(), theme.error())));
    }
    lines.push(Line::from(Span::styled(
        "Enter review · Tab next field · Esc cancel",
        theme.dim(),
    )));
    let block = Block::bordered().title(format!(" {} ", form.kind.title()));
    // Long lines wrap: count the rows they take at the dialog's width.
    let width = 76u16.min(area.width).saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
    let rect = super::dialog(frame, area, 76, rows as u16 + 2);
    let inner = block.inner(rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
    if let Some((x, y)) = cursor {
        frame.set_cursor_position((
            (inner.x + x).min(inner.right().saturating_sub(1)),
            (inner.y + y).min(inner.bottom().saturating_sub(1)),
        ));
    }
}

/// Each field with its value and its error as typed; where the cursor goes in the focused
/// text field.
fn fields(form: &Form, theme: &Theme, lines: &mut Vec<Line<'static>>) -> Option<(u16, u16)> {
    let errors = form.errors();
    let mut cursor = None;
    for (i, field) in form.fields().into_iter().enumerate() {
        let focused = i == form.focus;
        let marker = if focused { "▶ " } else { "  " };
        let label = format!("{marker}{:<27}", field.label());
        let value = match form.toggle(field) {
            Some((on, word)) => {
                let hint = if focused { "  (Space toggles)" } else { "" };
                format!("[{}] {word}{hint}", if on { "x" } else { " " })
            }
            None => {
                let text = form
                    .input(field)
                    .map(|i| i.value().to_string())
                    .unwrap_or_default();
                match (field, form.staging.preset()) {
                    (Field::Waves, Some(label)) => format!("{text}  ({label})"),
                    _ => text,
                }
            }
        };
        if focused && let Some(input) = form.input(field) {
            cursor = Some((
                label.chars().count() as u16 + input.visual_cursor() as u16,
                lines.len() as u16,
            ));
        }
        let style = if focused {
            theme.title()
        } else {
            ratatui::style::Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(label, style),
            Span::raw(value),
        ]));
        if let Some((_, e)) = errors.iter().find(|(f, _)| *f == field) {
            lines.push(Line::from(Span::styled(
                format!("    ✖ {e}"),
                theme.error(),
            )));
        }
    }
    cursor
}

/// What matters before anything is sent: major version updates, the devices preflight leaves
/// out, and those the operation does not apply to.
fn warnings(form: &Form, preview: &Plan, theme: &Theme, lines: &mut Vec<Line<'static>>) {
    if !preview.major_bumps.is_empty() {
        let text = if form.allow_major {
            format!(
                "Major version update for: {}",
                names(&preview.major_bumps, 4)
            )
        } else {
            format!(
                "Major version update needed by: {} — these jobs fail unless allowed",
                names(&preview.major_bumps, 4)
            )
        };
        lines.push(Line::from(Span::styled(format!("⚠ {text}"), theme.warn())));
    }
    let (left_out, not_applicable): (Vec<_>, Vec<_>) =
        preview.skipped.iter().partition(|s| s.preflight);
    if !left_out.is_empty() {
        let what = if preview.include_skipped {
            "Sent though certain to fail"
        } else {
            "Left out (certain to fail)"
        };
        // One device's reason here; every one's in the review.
        let text = match left_out.as_slice() {
            [one] => format!("{what}: {} — {}", one.label, one.reason),
            many => {
                let named: Vec<String> = many.iter().map(|s| s.label.clone()).collect();
                format!(
                    "{what} ({}): {} — {}: {} (the others' reasons in the review)",
                    many.len(),
                    names(&named, 3),
                    many[0].label,
                    many[0].reason
                )
            }
        };
        lines.push(Line::from(Span::styled(text, theme.warn())));
    }
    if !not_applicable.is_empty() {
        let named: Vec<String> = not_applicable.iter().map(|s| s.label.clone()).collect();
        lines.push(Line::from(Span::styled(
            format!(
                "Does not apply ({}): {} — reasons in the review",
                named.len(),
                names(&named, 3)
            ),
            theme.dim(),
        )));
    }
}
