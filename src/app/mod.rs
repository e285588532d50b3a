//! The state machine: `update` takes a message (a key, a worker event, a tick), changes the
//! state and returns the commands for the worker. No I/O and no SDK types here, so every
//! behaviour is a unit test.

pub mod devices;
pub mod forms;

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::aws::Connection;
use crate::fleet::{Device, DeviceKey, Service};
use crate::keymap::{self, Action, Scope};
use crate::worker::{Command, Event, OpId, OpUpdate, Resumable};

pub use devices::{Devices, SortColumn};
pub use forms::{Confirm, ConfirmOutcome, Field, Form, FormKind, FormOutcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Devices,
    Results,
}

#[derive(Debug, Clone)]
pub struct Details {
    pub key: DeviceKey,
    pub device: Option<Device>,
    pub history: Option<Result<Vec<String>, String>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Overlay {
    Help,
    Form(Form),
    Confirm(Confirm),
    Details(Details),
    /// Quitting while operations are in flight.
    Quit,
    /// A plan a crash left open: resume it, discard it, or decide later.
    Resume(Resumable),
}

/// One device's part in one operation.
#[derive(Debug, Clone)]
pub struct OpRow {
    pub id: OpId,
    pub key: DeviceKey,
    pub label: String,
    pub operation: String,
    pub resource_id: Option<String>,
    pub state: String,
    pub started: Instant,
    pub finished: Option<Instant>,
    pub error: Option<String>,
}

impl OpRow {
    pub fn done(&self) -> bool {
        self.finished.is_some()
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        self.finished
            .unwrap_or(now)
            .saturating_duration_since(self.started)
    }
}

#[derive(Debug, Default)]
pub struct Results {
    pub rows: Vec<OpRow>,
    pub cursor: usize,
}

impl Results {
    pub fn in_flight(&self) -> usize {
        self.rows.iter().filter(|r| !r.done()).count()
    }

    /// (state, count) in order of first appearance, for the pane's title.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for r in &self.rows {
            match out.iter_mut().find(|(s, _)| *s == r.state) {
                Some((_, n)) => *n += 1,
                None => out.push((r.state.clone(), 1)),
            }
        }
        out
    }
}

pub struct App {
    pub connection: Connection,
    pub devices: Devices,
    pub results: Results,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    /// The filter being typed, while `/` is active.
    pub filter_input: Option<Input>,
    /// Errors that stay until dismissed with Esc.
    pub errors: Vec<String>,
    /// Passing news, shown for a few seconds.
    pub notice: Option<(String, Instant)>,
    pub now: Instant,
    pub started: Instant,
    pub color: bool,
    /// Rows the terminal shows, for paging.
    pub height: u16,
    /// Mutating keys and forms are disabled.
    pub read_only: bool,
    /// Where the dispatch journal is written, for the help overlay.
    pub journal_path: Option<String>,
    /// Unfinished plans waiting to be shown, after the one on screen.
    pub resumable: Vec<Resumable>,
    /// The devices last reported to the worker as in view.
    pub looked: Vec<DeviceKey>,
    pub quit: bool,
}

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Tick(Instant),
    Worker(Box<Event>),
}

const NOTICE_FOR: Duration = Duration::from_secs(4);

impl App {
    pub fn new(connection: Connection, color: bool, now: Instant) -> Self {
        Self {
            connection,
            devices: Devices::default(),
            results: Results::default(),
            focus: Pane::Devices,
            overlay: None,
            filter_input: None,
            errors: Vec::new(),
            notice: None,
            now,
            started: now,
            color,
            height: 24,
            read_only: false,
            journal_path: None,
            resumable: Vec::new(),
            looked: Vec::new(),
            quit: false,
        }
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice
            .as_ref()
            .filter(|(_, at)| self.now.saturating_duration_since(*at) < NOTICE_FOR)
            .map(|(m, _)| m.as_str())
    }

    fn tell(&mut self, message: impl Into<String>) {
        self.notice = Some((message.into(), self.now));
    }

    fn page(&self) -> isize {
        (self.height as isize / 2 - 3).max(1)
    }
}

/// The devices that can be on screen: a terminal's height of rows either side of the
/// cursor covers every page the devices pane can show, whatever the layout.
pub fn in_view(app: &App) -> Vec<DeviceKey> {
    let list = &app.devices;
    let rows = usize::from(app.height);
    let to = list.cursor.saturating_add(rows).min(list.shown());
    (list.cursor.saturating_sub(rows)..to)
        .filter_map(|i| list.row(i))
        .map(Device::key)
        .collect()
}

/// Tells the worker what is in view when that changed, so it describes only those devices.
pub fn look(app: &mut App) -> Option<Command> {
    let keys = in_view(app);
    if keys == app.looked {
        return None;
    }
    app.looked = keys.clone();
    Some(Command::Look(keys))
}

pub fn update(app: &mut App, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Tick(now) => {
            app.now = now;
            Vec::new()
        }
        Msg::Resize(_, h) => {
            app.height = h;
            Vec::new()
        }
        Msg::Worker(event) => {
            on_event(app, *event);
            Vec::new()
        }
        Msg::Key(key) => on_key(app, key),
    }
}

fn on_event(app: &mut App, event: Event) {
    match event {
        Event::Connected(connection) => app.connection = connection,
        Event::ListingStarted(service) => {
            app.devices.loading.insert(service);
        }
        Event::DevicesPage(_, devices) => app.devices.upsert(devices),
        Event::ListingDone(service, ids) => {
            app.devices.loading.remove(&service);
            app.devices.retain_listed(service, &ids);
        }
        Event::ListingFailed(service, error) => {
            app.devices.loading.remove(&service);
            app.errors.push(format!(
                "Listing {} devices failed: {error}",
                service.label()
            ));
        }
        Event::DeviceUpdated(device) => app.devices.upsert(vec![device]),
        // Passing: the row keeps its listing, and the details overlay shows the error if asked.
        Event::DescribeFailed(..) => {}
        Event::Details {
            key,
            device,
            history,
        } => {
            if let Some(Overlay::Details(d)) = &mut app.overlay
                && d.key == key
            {
                match device {
                    Ok(device) => d.device = Some(device),
                    Err(e) => d.error = Some(e.to_string()),
                }
                d.history = Some(history.map_err(|e| e.to_string()));
            }
        }
        Event::Op(id, update) => apply_op(app, id, update),
        Event::Unfinished(plan) => {
            app.resumable.push(plan);
            next_resume(app);
        }
        Event::Notice(message) => app.tell(message),
        Event::Failure(message) => app.errors.push(message),
    }
}

fn apply_op(app: &mut App, id: OpId, update: OpUpdate) {
    let now = app.now;
    let Some(row) = app.results.rows.iter_mut().find(|r| r.id == id) else {
        return;
    };
    if row.done() {
        return;
    }
    row.state = update.state;
    if update.resource_id.is_some() {
        row.resource_id = update.resource_id;
    }
    if let Some(e) = update.error {
        row.error = Some(e.to_string());
    }
    if update.done {
        row.finished = Some(now);
    }
}

fn scope(app: &App) -> Scope {
    match app.focus {
        Pane::Devices => Scope::Devices,
        Pane::Results => Scope::Results,
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        app.quit = true;
        return Vec::new();
    }
    if let Some(input) = &mut app.filter_input {
        match key.code {
            KeyCode::Enter => app.filter_input = None,
            KeyCode::Esc => {
                app.filter_input = None;
                app.devices.set_filter(String::new());
            }
            _ => {
                input.handle_event(&crossterm::event::Event::Key(key));
                let value = input.value().to_string();
                app.devices.set_filter(value);
            }
        }
        return Vec::new();
    }
    if let Some(overlay) = app.overlay.take() {
        return on_overlay_key(app, overlay, key);
    }
    let Some(action) = keymap::action(&key, scope(app)) else {
        return Vec::new();
    };
    if app.read_only && keymap::is_mutating(action) {
        app.tell("Read-only mode: operations that change devices are disabled");
        return Vec::new();
    }
    on_action(app, action)
}

fn on_overlay_key(app: &mut App, overlay: Overlay, key: KeyEvent) -> Vec<Command> {
    match overlay {
        Overlay::Help | Overlay::Details(_) => {
            if !matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter
            ) {
                app.overlay = Some(overlay);
            }
            Vec::new()
        }
        Overlay::Resume(plan) => match key.code {
            KeyCode::Char('r') if !app.read_only => {
                let commands = resume(app, plan);
                next_resume(app);
                commands
            }
            KeyCode::Char('d') => {
                app.tell(format!(
                    "Plan {} closed in the journal; nothing sent",
                    plan.plan
                ));
                next_resume(app);
                vec![Command::Discard { plan: plan.plan }]
            }
            KeyCode::Esc => {
                next_resume(app);
                Vec::new()
            }
            _ => {
                app.overlay = Some(Overlay::Resume(plan));
                Vec::new()
            }
        },
        Overlay::Quit => {
            match key.code {
                KeyCode::Char('y') | KeyCode::Enter => app.quit = true,
                _ => {}
            }
            Vec::new()
        }
        Overlay::Form(mut form) => match form.key(key) {
            FormOutcome::Stay => {
                app.overlay = Some(Overlay::Form(form));
                Vec::new()
            }
            FormOutcome::Cancel => Vec::new(),
            FormOutcome::Submit(plan) => {
                let devices = &app.devices;
                let confirm = Confirm::new(plan, |k| {
                    devices
                        .get(k)
                        .map_or(k.id.clone(), |d| d.label().to_string())
                });
                app.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
        },
        Overlay::Confirm(mut confirm) => match confirm.key(key) {
            ConfirmOutcome::Stay => {
                app.overlay = Some(Overlay::Confirm(confirm));
                Vec::new()
            }
            ConfirmOutcome::Cancel => Vec::new(),
            ConfirmOutcome::Go => dispatch(app, confirm),
        },
    }
}

/// Shows the next unfinished plan, when nothing else is on screen.
fn next_resume(app: &mut App) {
    if app.overlay.is_none() && !app.resumable.is_empty() {
        app.overlay = Some(Overlay::Resume(app.resumable.remove(0)));
    }
}

/// Adds a row per device the plan never confirmed and asks the worker to carry on.
fn resume(app: &mut App, plan: Resumable) -> Vec<Command> {
    let ops = add_rows(app, plan.pending.iter(), &plan.action);
    app.focus = Pane::Results;
    app.tell(format!(
        "Resuming {}: reconciling before sending anything",
        plan.action
    ));
    vec![Command::Resume {
        plan: plan.plan,
        ops,
    }]
}

fn add_rows<'a>(
    app: &mut App,
    keys: impl Iterator<Item = &'a DeviceKey>,
    operation: &str,
) -> Vec<(OpId, DeviceKey)> {
    let mut ops = Vec::new();
    for key in keys {
        let id = app.results.rows.len();
        let label = app
            .devices
            .get(key)
            .map_or(key.id.clone(), |d| d.label().to_string());
        app.results.rows.push(OpRow {
            id,
            key: key.clone(),
            label,
            operation: operation.to_string(),
            resource_id: None,
            state: "QUEUED".into(),
            started: app.now,
            finished: None,
            error: None,
        });
        ops.push((id, key.clone()));
    }
    ops
}

/// Adds a result row per target and hands the plan to the worker.
fn dispatch(app: &mut App, confirm: Confirm) -> Vec<Command> {
    let plan = confirm.plan;
    let ops = add_rows(app, plan.targets(), plan.operation.label());
    app.devices.marks.clear();
    app.focus = Pane::Results;
    app.tell(format!(
        "Dispatching {}: {}",
        plan.operation.label(),
        plan.calls()
    ));
    vec![Command::Dispatch { plan, ops }]
}

fn on_action(app: &mut App, action: Action) -> Vec<Command> {
    match action {
        Action::Up => move_by(app, -1),
        Action::Down => move_by(app, 1),
        Action::PageUp => move_by(app, -app.page()),
        Action::PageDown => move_by(app, app.page()),
        Action::Top => move_by(app, isize::MIN / 2),
        Action::Bottom => move_by(app, isize::MAX / 2),
        Action::NextPane | Action::PrevPane => {
            app.focus = match app.focus {
                Pane::Devices => Pane::Results,
                Pane::Results => Pane::Devices,
            };
        }
        Action::Help => app.overlay = Some(Overlay::Help),
        Action::Close => {
            if !app.errors.is_empty() {
                app.errors.clear();
            } else if !app.devices.filter.is_empty() {
                app.devices.set_filter(String::new());
            }
        }
        Action::Quit => {
            if app.results.in_flight() > 0 {
                app.overlay = Some(Overlay::Quit);
            } else {
                app.quit = true;
            }
        }
        Action::ForceQuit => app.quit = true,
        Action::Refresh => {
            app.tell("Refreshing devices");
            return vec![Command::Refresh];
        }
        Action::Filter => app.filter_input = Some(Input::new(app.devices.filter.clone())),
        Action::Sort => app.devices.cycle_sort(),
        Action::SortReverse => app.devices.toggle_reverse(),
        Action::Mark => {
            app.devices.toggle_mark();
            app.devices.move_by(1);
        }
        Action::MarkAll => app.devices.mark_all_shown(),
        Action::ClearMarks => app.devices.marks.clear(),
        Action::Open => {
            if let Some(d) = app.devices.current() {
                let key = d.key();
                app.overlay = Some(Overlay::Details(Details {
                    key: key.clone(),
                    device: Some(d.clone()),
                    history: None,
                    error: None,
                }));
                return vec![Command::Describe(key)];
            }
        }
        Action::Ota => open_form(app, FormKind::Ota),
        Action::Reboot => open_form(app, FormKind::Reboot),
        Action::Unlock => open_form(app, FormKind::Unlock),
        Action::CancelTask => return cancel(app),
    }
    Vec::new()
}

fn move_by(app: &mut App, delta: isize) {
    match app.focus {
        Pane::Devices => app.devices.move_by(delta),
        Pane::Results => {
            let last = app.results.rows.len().saturating_sub(1) as isize;
            app.results.cursor = (app.results.cursor as isize)
                .saturating_add(delta)
                .clamp(0, last.max(0)) as usize;
        }
    }
}

fn open_form(app: &mut App, kind: FormKind) {
    let targets: Vec<Device> = app.devices.selection().into_iter().cloned().collect();
    if targets.is_empty() {
        app.tell("No device selected: move to one, or mark some with Space");
        return;
    }
    app.overlay = Some(Overlay::Form(Form::new(kind, targets)));
}

fn cancel(app: &mut App) -> Vec<Command> {
    let Some(row) = app.results.rows.get(app.results.cursor) else {
        return Vec::new();
    };
    if row.key.service != Service::Snow {
        app.tell("Only a Snow task can be canceled; a Panorama job cannot");
        return Vec::new();
    }
    let Some(task_id) = row.resource_id.clone() else {
        app.tell("This row has no task yet");
        return Vec::new();
    };
    app.tell(format!("Canceling the queued executions of {task_id}"));
    vec![Command::CancelTask { task_id }]
}

#[cfg(test)]
mod tests;
