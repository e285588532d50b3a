//! Pure rendering: `draw` reads the `App` and writes cells, one file per pane or dialog.
//! Only visible rows are built, whatever the fleet's size.

mod confirm;
mod details;
mod devices;
mod drift;
mod form;
mod help;
mod results;
mod resume;
mod team;
pub mod theme;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
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
        Some(Overlay::Details(d)) => {
            let held = app.held.get(&d.key).map(String::as_str);
            details::draw(d, held, &theme, frame, area)
        }
        Some(Overlay::Quit) => quit(app, &theme, frame, area),
        Some(Overlay::Cancel { task, devices }) => cancel(task, devices, &theme, frame, area),
        Some(Overlay::Abort { plan, unsent }) => abort(plan, *unsent, &theme, frame, area),
        Some(Overlay::Drift) => drift::draw(app, &theme, frame, area),
        Some(Overlay::Inspect {
            label,
            resource,
            fields,
            ..
        }) => inspect(label, resource, fields.as_ref(), &theme, frame, area),
        Some(Overlay::HiddenMarks { kind, hidden }) => {
            hidden_marks(app, *kind, *hidden, &theme, frame, area)
        }
        Some(Overlay::ErrorLog { scroll }) => error_log(app, *scroll, &theme, frame, area),
        Some(Overlay::Resume(plan)) => resume::draw(app, plan, &theme, frame, area),
        Some(Overlay::Team { selected, asking }) => {
            team::draw(app, *selected, asking.as_ref(), &theme, frame, area)
        }
    }
}

pub fn spinner(app: &App) -> &'static str {
    let ticks = app.now.saturating_duration_since(app.started).as_millis() / 125;
    SPINNER[(ticks % SPINNER.len() as u128) as usize]
}

/// The header: every context in use with its account, regions, read-only mark and SSO
/// token expiry, then the endpoint when it is not AWS's. A narrower terminal gets less of
/// each (the accounts' last four digits and no endpoint, then the labels and how many
/// regions), and when even that does not fit, the contexts that fit and how many more.
fn status_bar(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    let fits = |spans: &[Span]| {
        spans
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>()
            <= width
    };
    let contexts = context_names(app).len();
    let mut spans = Vec::new();
    'found: for detail in [
        Detail::Full,
        Detail::Compact,
        Detail::Minimal,
        Detail::Labels,
    ] {
        for shown in (1..=contexts.max(1)).rev() {
            // Fewer contexts only at the least detail.
            if shown < contexts && detail != Detail::Labels {
                break;
            }
            spans = header_spans(app, theme, detail, shown);
            if fits(&spans) {
                break 'found;
            }
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// How much the header says of each context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Detail {
    Full,
    /// The accounts' last four digits, no endpoint.
    Compact,
    /// The label and its regions' count.
    Minimal,
    /// The label alone.
    Labels,
}

fn context_names(app: &App) -> Vec<&str> {
    let mut contexts: Vec<&str> = Vec::new();
    for c in &app.connections {
        if !contexts.contains(&c.context.as_str()) {
            contexts.push(&c.context);
        }
    }
    contexts
}

fn header_spans<'a>(app: &App, theme: &Theme, detail: Detail, shown: usize) -> Vec<Span<'a>> {
    let mut spans = vec![Span::styled(" fleetdeck ", theme.title())];
    if app.connections.iter().any(|c| c.demo) {
        spans.push(Span::styled(" DEMO ", theme.badge()));
        spans.push(Span::raw(" "));
    }
    if app.read_only {
        spans.push(Span::styled(" READ-ONLY ", theme.badge()));
        spans.push(Span::raw(" "));
    }
    if let Some(team) = &app.team {
        // The table always; who this session is to it while there is room.
        let user = team.arn.rsplit('/').next().unwrap_or(&team.arn);
        // While other plans share a quota: how many at most, since this host sends slower.
        let shared = match app.quota_shared.values().max() {
            Some(n) => format!("· quota shared with {n} "),
            None => String::new(),
        };
        let text = match detail {
            Detail::Full | Detail::Compact => format!(" TEAM {} as {user} {shared}", team.table),
            _ => format!(" TEAM {} {shared}", team.table),
        };
        spans.push(Span::styled(text, theme.badge()));
        spans.push(Span::raw(" "));
    }
    let contexts = context_names(app);
    for (i, name) in contexts.iter().take(shown).enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        context_spans(app, theme, name, detail, &mut spans);
    }
    if contexts.len() > shown {
        spans.push(Span::styled(
            format!(" +{} more (:ctx)", contexts.len() - shown),
            theme.dim(),
        ));
    }
    let endpoints: std::collections::BTreeSet<&str> = app
        .connections
        .iter()
        .flat_map(|c| [c.panorama_endpoint.as_str(), c.snow_endpoint.as_str()])
        .filter(|e| !e.contains(".amazonaws.com"))
        .collect();
    if !endpoints.is_empty() && detail == Detail::Full {
        let list: Vec<&str> = endpoints.into_iter().collect();
        spans.push(Span::styled(format!(" · {}", list.join(" ")), theme.dim()));
    }
    spans
}

/// One context: its label, account, regions, read-only mark and SSO expiry, as `detail` says.
fn context_spans<'a>(
    app: &App,
    theme: &Theme,
    name: &str,
    detail: Detail,
    spans: &mut Vec<Span<'a>>,
) {
    let scopes: Vec<&crate::aws::Connection> = app
        .connections
        .iter()
        .filter(|c| c.context == name)
        .collect();
    let Some(first) = scopes.first() else {
        return;
    };
    let label = first.label.as_deref().unwrap_or(name);
    spans.push(Span::styled(
        format!(" {label} "),
        theme.label(first.colour.as_deref()),
    ));
    if label != name && matches!(detail, Detail::Full | Detail::Compact) {
        spans.push(Span::raw(format!(" {name}")));
    }
    let mut accounts: Vec<&str> = scopes.iter().filter_map(|c| c.account.as_deref()).collect();
    accounts.dedup();
    let regions: Vec<&str> = scopes.iter().map(|c| c.region.as_str()).collect();
    let text = match detail {
        Detail::Labels => String::new(),
        Detail::Minimal if regions.len() == 1 => format!(" {}", regions[0]),
        Detail::Minimal => format!(" {} regions", regions.len()),
        _ => {
            let account = if accounts.is_empty() {
                "account ?".to_string()
            } else if detail == Detail::Compact {
                let tail = |a: &&str| format!("…{}", &a[a.len().saturating_sub(4)..]);
                accounts.iter().map(tail).collect::<Vec<_>>().join(",")
            } else {
                accounts.join(",")
            };
            format!(" {account} {}", regions.join(","))
        }
    };
    if !text.is_empty() {
        spans.push(Span::styled(text, theme.dim()));
    }
    if first.read_only && !app.read_only {
        spans.push(Span::styled(" read-only", theme.warn()));
    }
    if let Some(at) = first.sso_expires {
        let (text, style) = sso_text(at, app.now_epoch);
        spans.push(Span::styled(text, style(theme)));
    }
}

/// "SSO 2h10m" while the token lasts; "SSO expired" (an error) once it has not.
fn sso_text(at: u64, now: u64) -> (String, fn(&Theme) -> Style) {
    if at <= now {
        return (" SSO expired".into(), |t: &Theme| t.error());
    }
    let left = at - now;
    let text = if left >= 3600 {
        format!(" SSO {}h{:02}m", left / 3600, (left % 3600) / 60)
    } else {
        format!(" SSO {}m", left.div_ceil(60))
    };
    let style: fn(&Theme) -> Style = if left < 900 {
        |t: &Theme| t.warn()
    } else {
        |t: &Theme| t.dim()
    };
    (text, style)
}

fn message_line(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let line = if let Some(input) = &app.command_input {
        Line::from(vec![
            Span::styled(":", theme.header()),
            Span::raw(input.value()),
        ])
    } else if let Some(input) = &app.filter_input {
        Line::from(vec![
            Span::styled("Filter: ", theme.header()),
            Span::raw(input.value()),
        ])
    } else if let Some(n) = app.fresh_notice().filter(|_| !app.errors.is_empty()) {
        Line::from(Span::raw(n.to_string()))
    } else if let Some(e) = app.errors.last() {
        let times = if e.count > 1 {
            format!(" (×{})", e.count)
        } else {
            String::new()
        };
        let more = if app.errors.len() > 1 {
            format!(" (+{} more: ! log)", app.errors.len() - 1)
        } else {
            String::new()
        };
        Line::from(Span::styled(
            format!("✖ {}{times}{more}", e.message),
            theme.error(),
        ))
    } else if let Some(n) = app.notice() {
        Line::from(Span::raw(n.to_string()))
    } else {
        Line::default()
    };
    frame.render_widget(Paragraph::new(line), area);
    if let Some(input) = &app.command_input {
        let x = area.x + 1 + input.visual_cursor() as u16;
        frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
    } else if let Some(input) = &app.filter_input {
        let x = area.x + 8 + input.visual_cursor() as u16;
        frame.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
    }
}

/// The key bar. With a dialog open, that dialog's keys; otherwise the keymap's for the pane
/// in focus by priority, as many as fit, in the keymap's order ("? help" and "q quit" are
/// the last to go), leaving out keys that do nothing now (rollout keys with no rollout).
fn key_hints(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let hints: Vec<(&str, &str)> = match &app.overlay {
        Some(overlay) => overlay_hints(overlay),
        None => pane_hints(app, usize::from(area.width)),
    };
    let mut spans = Vec::new();
    for (k, w) in hints {
        spans.push(Span::styled(format!(" {k} "), theme.header()));
        spans.push(Span::styled(format!("{w} "), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The keys an open dialog takes.
fn overlay_hints(overlay: &Overlay) -> Vec<(&'static str, &'static str)> {
    match overlay {
        Overlay::Form(_) => vec![
            ("Tab", "next field"),
            ("Shift-Tab", "back"),
            ("Space", "toggle"),
            ("Enter", "review"),
            ("Esc", "cancel"),
        ],
        Overlay::Confirm(c) if c.must_type() => vec![
            ("0-9", "type the count"),
            ("Enter", "go"),
            ("↑↓", "scroll"),
            ("Esc", "back"),
        ],
        Overlay::Confirm(_) => vec![("y Enter", "go"), ("↑↓", "scroll"), ("n Esc", "back")],
        Overlay::Quit => vec![("y", "quit"), ("Ctrl-C", "force"), ("any key", "stay")],
        Overlay::Cancel { .. } => vec![("y", "send CancelTask"), ("n Esc", "keep it")],
        Overlay::Abort { .. } => vec![("y", "abort"), ("n Esc", "keep it")],
        Overlay::HiddenMarks { .. } => vec![
            ("y", "include all"),
            ("n", "only those shown"),
            ("Esc", "back"),
        ],
        Overlay::Resume(_) => vec![("r", "resume"), ("d", "discard"), ("Esc", "later")],
        Overlay::Drift => vec![("m", "mark behind, OTA"), ("Esc", "close")],
        Overlay::Team {
            asking: Some(_), ..
        } => vec![("y Enter", "send"), ("n Esc", "back")],
        Overlay::Team { .. } => vec![
            ("↑↓", "plan"),
            ("p", "pause"),
            ("P", "promote"),
            ("X", "abort"),
            ("a", "approve"),
            ("Esc", "close"),
        ],
        Overlay::ErrorLog { .. } => vec![("↑↓", "scroll"), ("Esc", "close")],
        Overlay::Help | Overlay::Details(_) | Overlay::Inspect { .. } => vec![("Esc", "close")],
    }
}

/// Whether a key does something now: pausing, promoting or aborting needs a rollout under
/// way, retrying one that has ended, canceling a Snow row.
fn applies(app: &App, action: crate::keymap::Action) -> bool {
    use crate::keymap::Action;
    use crate::ops::rollout::Phase;
    let rollout = app.results.rollout_in_focus();
    let ended = |r: &crate::protocol::RolloutView| r.outcome.is_some() || r.phase.is_end();
    let phase = rollout.filter(|r| !ended(r)).map(|r| &r.phase);
    match action {
        Action::PauseRollout => matches!(
            phase,
            Some(Phase::Sending | Phase::Checking | Phase::Baking { .. } | Phase::AwaitingApproval)
        ),
        Action::Promote => matches!(
            phase,
            Some(Phase::AwaitingApproval | Phase::Baking { .. } | Phase::Paused { .. })
        ),
        Action::AbortRollout => phase.is_some(),
        Action::RetryRest => rollout.is_some_and(ended),
        Action::CancelTask => app
            .results
            .rows
            .get(app.results.cursor)
            .is_some_and(|r| r.key.service == crate::fleet::Service::Snow),
        _ => true,
    }
}

/// The pane's keys that fit in `width` columns, by priority, in the keymap's order.
fn pane_hints(app: &App, width: usize) -> Vec<(&'static str, &'static str)> {
    let scope = match app.focus {
        Pane::Devices => crate::keymap::Scope::Devices,
        Pane::Results => crate::keymap::Scope::Results,
    };
    let mut offered: Vec<(usize, &str, &str, u8)> = crate::keymap::BINDINGS
        .iter()
        .enumerate()
        .filter(|(_, b)| b.scope == scope || b.scope == crate::keymap::Scope::Everywhere)
        .filter(|(_, b)| !(app.read_only && b.mutating))
        .filter(|(_, b)| applies(app, b.action))
        .filter_map(|(i, b)| b.hint.map(|(word, p)| (i, b.shown, word, p)))
        .collect();
    if !app.errors.is_empty() {
        // Index 0 is a binding with no hint (moving up): free for Esc, which leads.
        offered.insert(0, (0, "Esc", "dismiss error", 245));
    }
    let cost = |k: &str, w: &str| k.chars().count() + w.chars().count() + 3;
    let mut by_priority = offered.clone();
    by_priority.sort_by_key(|o| std::cmp::Reverse(o.3));
    let mut room = width;
    let mut kept: Vec<usize> = Vec::new();
    for (i, k, w, _) in by_priority {
        let c = cost(k, w);
        if c <= room {
            room -= c;
            kept.push(i);
        }
    }
    offered
        .into_iter()
        .filter(|o| kept.contains(&o.0))
        .map(|(_, k, w, _)| (k, w))
        .collect()
}

/// "12–40 of 100" on a pane's bottom border, when it holds more than it shows.
pub fn scroll_position(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    offset: usize,
    shown: usize,
    total: usize,
) {
    if total <= shown || area.height < 3 {
        return;
    }
    let text = format!(" {}–{} of {total} ", offset + 1, offset + shown);
    let w = text.chars().count() as u16;
    if w + 4 > area.width {
        return;
    }
    let at = Rect::new(area.right() - w - 2, area.bottom() - 1, w, 1);
    frame.render_widget(Span::styled(text, theme.dim()), at);
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

fn abort(plan: &str, unsent: usize, theme: &Theme, frame: &mut Frame, area: Rect) {
    let rect = dialog(frame, area, 72, 8);
    let text = vec![
        Line::from(format!(
            "Abort rollout {}? Nothing more is sent: {unsent} device{} never sent end SKIPPED, and its Snow tasks' queued executions are canceled.",
            crate::ops::short(plan),
            if unsent == 1 { "" } else { "s" }
        )),
        Line::from(""),
        Line::from(Span::styled("y abort · n / Esc keep it", theme.warn())),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .block(ratatui::widgets::Block::bordered().title(" Abort the rollout "))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn inspect(
    label: &str,
    resource: &str,
    fields: Option<&Result<Vec<(String, String)>, String>>,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let lines: Vec<Line> = match fields {
        None => vec![Line::from(Span::styled("Reading…", theme.dim()))],
        Some(Err(e)) => vec![Line::from(Span::styled(e.clone(), theme.error()))],
        Some(Ok(fields)) => fields
            .iter()
            .map(|(k, v)| {
                Line::from(vec![
                    Span::styled(format!("{k:<16}"), theme.header()),
                    Span::styled(v.clone(), theme.state(v)),
                ])
            })
            .collect(),
    };
    let rect = dialog(frame, area, 96, lines.len() as u16 + 2);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                ratatui::widgets::Block::bordered()
                    .title(format!(" {label} · {resource} · Esc closes ")),
            )
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn hidden_marks(
    app: &App,
    kind: crate::app::FormKind,
    hidden: usize,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
) {
    let rect = dialog(frame, area, 72, 8);
    let marked = app.devices.marks.len();
    let text = vec![
        Line::from(format!(
            "{hidden} of the {marked} marked devices are hidden by the filter \"{}\". Include them in the {}?",
            app.devices.filter,
            kind.title()
        )),
        Line::from(""),
        Line::from(Span::styled(
            format!(
                "y include all {marked} · n only the {} shown · Esc back",
                marked - hidden
            ),
            theme.warn(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .block(ratatui::widgets::Block::bordered().title(" Marks hidden by the filter "))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn quit(app: &App, theme: &Theme, frame: &mut Frame, area: Rect) {
    let rect = dialog(frame, area, 72, 9);
    let t = app.results.tally();
    let mut text = vec![Line::from(Span::styled(
        format!(
            "{} sent and not yet done, {} not yet sent{}.",
            t.running,
            t.unsent,
            if t.unconfirmed > 0 {
                format!(", {} unconfirmed", t.unconfirmed)
            } else {
                String::new()
            }
        ),
        theme.warn(),
    ))];
    text.push(Line::from(
        "Quitting stops sending: calls under way finish, the rest is kept in the journal as paused, and the next start offers to resume it. What was sent carries on.",
    ));
    text.push(Line::from(""));
    text.push(Line::from(
        "Quit now?  y quit · Ctrl-C again forces · any other key stays",
    ));
    let block = ratatui::widgets::Block::bordered().title(" Quit ");
    frame.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
        rect,
    );
}

fn cancel(task: &str, devices: &[String], theme: &Theme, frame: &mut Frame, area: Rect) {
    let rect = dialog(frame, area, 72, 9);
    let mut shown = devices
        .iter()
        .take(6)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if devices.len() > 6 {
        shown.push_str(&format!(" and {} more", devices.len() - 6));
    }
    let text = vec![
        Line::from(Span::styled(format!("Cancel task {task}?"), theme.warn())),
        Line::from(format!("Its executions not yet ended: {shown}.")),
        Line::from("Queued executions are canceled; ones already running finish."),
        Line::from(""),
        Line::from("y send one CancelTask · n or Esc keep it"),
    ];
    let block = ratatui::widgets::Block::bordered().title(" CancelTask ");
    frame.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
        rect,
    );
}

fn error_log(app: &App, scroll: usize, theme: &Theme, frame: &mut Frame, area: Rect) {
    let rect = dialog(
        frame,
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    let rows = usize::from(rect.height.saturating_sub(2)).max(1);
    let first = scroll.saturating_add(1).saturating_sub(rows);
    let lines: Vec<Line> = if app.error_log.is_empty() {
        vec![Line::from(Span::styled("No errors so far.", theme.dim()))]
    } else {
        app.error_log
            .iter()
            .skip(first)
            .take(rows)
            .map(|e| {
                let times = if e.count > 1 {
                    format!("×{} ", e.count)
                } else {
                    String::new()
                };
                Line::from(vec![
                    Span::styled(times, theme.warn()),
                    Span::styled(e.message.clone(), theme.error()),
                ])
            })
            .collect()
    };
    let block = ratatui::widgets::Block::bordered().title(format!(
        " Error log {} · ↑↓ scroll · Esc close ",
        app.error_log.len()
    ));
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
