//! Pure rendering: `draw` reads the `App` and writes cells, one file per pane or dialog.
//! Only visible rows are built, whatever the fleet's size.

mod confirm;
mod details;
mod devices;
mod form;
mod help;
mod results;
mod resume;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::app::{App, Overlay, Pane};
use theme::Theme;

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

pub fn draw(app: &App, frame: &mut Frame) {
    let theme = Theme::new(app.color);
    let area = frame.area();
    let [top, main, message, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    status_bar(app, &theme, frame, top);
    if app.results.rows.is_empty() {
        devices::draw(app, &theme, frame, main);
    } else {
        let [d, r] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(main);
        devices::draw(app, &theme, frame, d);
        results::draw(app, &theme, frame, r);
    }
    message_line(app, &theme, frame, message);
    key_hints(app, &theme, frame, keys);
    match &app.overlay {
        None => {}
        Some(Overlay::Help) => help::draw(app, &theme, frame, area),
        Some(Overlay::Form(f)) => form::draw(app, f, &theme, frame, area),
        Some(Overlay::Confirm(c)) => confirm::draw(app, c, &theme, frame, area),
        Some(Overlay::Details(d)) => details::draw(d, &theme, frame, area),
        Some(Overlay::Quit) => quit(app, &theme, frame, area),
        Some(Overlay::Resume(plan)) => resume::draw(app, plan, &theme, frame, area),
    }
}

pub fn spinner(app: &App) -> &'static str {
    let ticks = app.now.saturating_duration_since(app.started).as_millis() / 125;
    SPINNER[(ticks % SPINNER.len() as u128) as usize]
}

fn status_bar(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let c = &app.connection;
    let mut spans = vec![Span::styled(" fleetdeck ", theme.title())];
    if c.demo {
        spans.push(Span::styled(" DEMO ", theme.badge()));
        spans.push(Span::raw(" "));
    }
    if app.read_only {
        spans.push(Span::styled(" READ-ONLY ", theme.badge()));
        spans.push(Span::raw(" "));
    }
    let endpoint = if c.panorama_endpoint == c.snow_endpoint {
        c.snow_endpoint.clone()
    } else {
        format!(
            "panorama {} · snow {}",
            c.panorama_endpoint, c.snow_endpoint
        )
    };
    spans.push(Span::styled(
        format!("profile {} · region {} · {endpoint}", c.profile, c.region),
        theme.dim(),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn message_line(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = if let Some(input) = &app.filter_input {
        Line::from(vec![
            Span::styled("Filter: ", theme.header()),
            Span::raw(input.value()),
        ])
    } else if let Some(e) = app.errors.last() {
        let more = if app.errors.len() > 1 {
            format!(" (+{} more)", app.errors.len() - 1)
        } else {
            String::new()
        };
        Line::from(Span::styled(format!("✖ {e}{more}"), theme.error()))
    } else if let Some(n) = app.notice() {
        Line::from(Span::raw(n.to_string()))
    } else {
        Line::default()
    };
    frame.render_widget(Paragraph::new(line), area);
    if let Some(input) = &app.filter_input {
        let x = area.x + 8 + input.visual_cursor() as u16;
        frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
    }
}

fn key_hints(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let hints: &[(&str, &str)] = match app.focus {
        Pane::Devices => &[
            ("Space", "mark"),
            ("o", "OTA"),
            ("b", "reboot"),
            ("u", "unlock"),
            ("Enter", "details"),
            ("/", "filter"),
            ("Tab", "results"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Pane::Results => &[
            ("c", "cancel task"),
            ("Tab", "devices"),
            ("?", "help"),
            ("q", "quit"),
        ],
    };
    let mut spans = Vec::new();
    let dismiss = [("Esc", "dismiss error")];
    // In read-only mode the keys that change devices are not offered.
    let offered = hints
        .iter()
        .filter(|(k, _)| !(app.read_only && ["o", "b", "u", "c"].contains(k)))
        .copied();
    let shown: Vec<(&str, &str)> = if app.errors.is_empty() {
        offered.collect()
    } else {
        dismiss.iter().copied().chain(offered).collect()
    };
    for (k, what) in shown {
        spans.push(Span::styled(format!(" {k} "), theme.header()));
        spans.push(Span::styled(format!("{what} "), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A centred box of at most `w`×`h` inside `area`, cleared for a dialog.
pub fn dialog(frame: &mut Frame, area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, rect);
    rect
}

fn quit(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let rect = dialog(frame, area, 60, 7);
    let n = app.results.in_flight();
    let what = if n == 1 {
        "1 operation is".to_string()
    } else {
        format!("{n} operations are")
    };
    let text = vec![
        Line::from(Span::styled(
            format!("{what} still in flight."),
            theme.warn(),
        )),
        Line::from("Quitting stops following them; what was sent stays sent."),
        Line::from(""),
        Line::from("Quit now?  y quit · any other key stays"),
    ];
    let block = ratatui::widgets::Block::bordered().title(" Quit ");
    frame.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
        rect,
    );
}
