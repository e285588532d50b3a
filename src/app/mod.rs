//! The state machine: `update` takes a message (a key, a worker event, a tick), changes the
//! state and returns the commands for the worker. No I/O and no SDK types here, so every
//! behaviour is a unit test.

pub mod command;
pub mod devices;
pub mod forms;

use std::time::{Duration, Instant};

use compact_str::CompactString;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use crate::aws::Connection;
use crate::fleet::{Device, DeviceKey, Service};
use crate::keymap::{self, Action, Scope};
use crate::ops::rollout::Health;
use crate::ops::{OpId, OpState, OpUpdate, Tally};
use crate::protocol::{Command, Event, Refusal, Resumable, RolloutView};

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
    Form(Box<Form>),
    Confirm(Confirm),
    Details(Details),
    /// Quitting while operations are in flight or not yet sent.
    Quit,
    /// Canceling a Snow task: its id and the devices of its executions still queued or running.
    Cancel {
        task: String,
        devices: Vec<String>,
    },
    /// Every error seen, newest last.
    ErrorLog {
        scroll: usize,
    },
    /// A plan a crash left open: resume it, discard it, or decide later.
    Resume(Resumable),
    /// Aborting a rollout: its plan and how many of its devices were never sent.
    Abort {
        plan: String,
        unsent: usize,
    },
    /// One operation's job or execution, as DescribeDeviceJob / DescribeExecution said it
    /// (None while the read is under way).
    Inspect {
        key: DeviceKey,
        label: String,
        resource: String,
        fields: Option<Result<Vec<(String, String)>, String>>,
    },
    /// How many devices run each software version, per service.
    Drift,
    /// Marks the filter hides: are they part of the operation about to be formed?
    HiddenMarks {
        kind: FormKind,
        hidden: usize,
    },
}

/// One device's part in one operation: a view of the engine's operation.
#[derive(Debug, Clone)]
pub struct OpRow {
    pub id: OpId,
    pub plan: String,
    pub key: DeviceKey,
    pub label: String,
    pub operation: String,
    pub resource_id: Option<String>,
    pub state: OpState,
    pub started: Instant,
    pub finished: Option<Instant>,
    pub error: Option<String>,
    /// After a success, in a gated rollout: whether the device came back healthy.
    pub health: Option<Health>,
}

impl OpRow {
    /// Nothing more will happen to it in this process: final, or paused.
    pub fn done(&self) -> bool {
        !self.state.in_flight()
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
    /// Each plan's rollout as the worker last reported it, oldest first.
    pub rollouts: Vec<RolloutView>,
}

impl Results {
    /// The rollout of the plan under the cursor, or else the newest.
    pub fn rollout_in_focus(&self) -> Option<&RolloutView> {
        let plan = self.rows.get(self.cursor).map(|r| r.plan.as_str());
        plan.and_then(|p| self.rollouts.iter().find(|r| r.plan == p))
            .or_else(|| self.rollouts.last())
    }
}

impl Results {
    /// The newest operation on a device here and its state, e.g. "unlock IN_PROGRESS": what
    /// the Latest column shows where the service's own listing says nothing (Snow).
    pub fn latest_of(&self, key: &DeviceKey) -> Option<String> {
        let r = self.rows.iter().rev().find(|r| r.key == *key)?;
        Some(format!("{} {}", r.operation, r.state.word(r.key.service)))
    }

    pub fn in_flight(&self) -> usize {
        self.rows.iter().filter(|r| r.state.in_flight()).count()
    }

    pub fn tally(&self) -> Tally {
        Tally::of(self.rows.iter().map(|r| &r.state))
    }
}

/// An error kept until dismissed; the same error again is counted, not repeated.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLine {
    pub message: String,
    pub count: usize,
}

/// How many errors the log keeps.
const ERROR_LOG_SIZE: usize = 500;

pub struct App {
    /// Every scope in use (a context in one region), as the worker last said.
    pub connections: Vec<Connection>,
    /// The config file's contexts, the environment and the flags in use: what `:` resolves.
    pub catalog: crate::contexts::Catalog,
    /// The `:` command line, while it is open.
    pub command_input: Option<Input>,
    /// Scopes whose last listing failed: `R` reloads their configuration, not just lists.
    pub failed_listings: std::collections::HashSet<(String, Service)>,
    pub devices: Devices,
    pub results: Results,
    pub focus: Pane,
    pub overlay: Option<Overlay>,
    /// The filter being typed, while `/` is active.
    pub filter_input: Option<Input>,
    /// Errors that stay until dismissed with Esc, repeats folded.
    pub errors: Vec<ErrorLine>,
    /// Every error seen this session (the last 500), for the error log (`!`).
    pub error_log: Vec<ErrorLine>,
    /// Passing news, shown for a few seconds.
    pub notice: Option<(String, Instant)>,
    /// Unfinished plans the operator put off (Esc): `J` offers them again.
    pub put_off: Vec<Resumable>,
    /// The devices dangerous to touch (`env=prod` unless the config file says otherwise).
    pub danger: crate::fleet::filter::Danger,
    /// When the last error was shown: news told since then (an answer to the operator's
    /// command) shows above standing errors for its few seconds.
    pub error_at: Option<Instant>,
    pub now: Instant,
    /// The wall clock in epoch seconds, as of the last tick (a bake's end is one).
    pub now_epoch: u64,
    pub started: Instant,
    pub color: bool,
    /// Rows the terminal shows, for paging.
    pub height: u16,
    /// Mutating keys and forms are disabled.
    pub read_only: bool,
    /// Where the dispatch journal is written, for the help overlay.
    pub journal_path: Option<String>,
    /// Where the log file is written, for the help overlay.
    pub log_path: Option<String>,
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
    pub fn new(connections: Vec<Connection>, color: bool, now: Instant) -> Self {
        let now_epoch = crate::journal::now();
        let mut devices = Devices::default();
        devices.at(now_epoch);
        Self {
            connections,
            catalog: crate::contexts::Catalog::default(),
            command_input: None,
            failed_listings: Default::default(),
            devices,
            results: Results::default(),
            focus: Pane::Devices,
            overlay: None,
            filter_input: None,
            errors: Vec::new(),
            error_log: Vec::new(),
            notice: None,
            put_off: Vec::new(),
            danger: Default::default(),
            error_at: None,
            now,
            now_epoch,
            started: now,
            color,
            height: 24,
            read_only: false,
            journal_path: None,
            log_path: None,
            resumable: Vec::new(),
            looked: Vec::new(),
            quit: false,
        }
    }

    /// The notice, if it came after every error still standing.
    pub fn fresh_notice(&self) -> Option<&str> {
        let newer = match (&self.notice, self.error_at) {
            (Some((_, told)), Some(failed)) => *told >= failed,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.notice().filter(|_| newer || self.errors.is_empty())
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

    /// Shows an error until dismissed and logs it; the same error again adds to its count.
    /// Records an error in the log (`!`) only: the detail behind advice shown elsewhere.
    pub fn log(&mut self, message: impl Into<String>) {
        let message = message.into();
        match self.error_log.iter_mut().find(|e| e.message == message) {
            Some(e) => e.count += 1,
            None => self.error_log.push(ErrorLine { message, count: 1 }),
        }
        if self.error_log.len() > ERROR_LOG_SIZE {
            self.error_log.remove(0);
        }
    }

    pub fn fail(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.error_at = Some(self.now);
        for list in [&mut self.errors, &mut self.error_log] {
            match list.iter_mut().find(|e| e.message == message) {
                Some(e) => e.count += 1,
                None => list.push(ErrorLine {
                    message: message.clone(),
                    count: 1,
                }),
            }
        }
        if self.error_log.len() > ERROR_LOG_SIZE {
            self.error_log.remove(0);
        }
    }

    /// Whether a device read from `scope` belongs in the table: its scope is in use (a read
    /// from before a switch may still arrive).
    pub fn in_use(&self, scope: &str) -> bool {
        scope.is_empty() || self.connections.iter().any(|c| c.scope() == scope)
    }

    /// The scope's connection (its account, its context's label).
    pub fn connection_of(&self, scope: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.scope() == scope)
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
            app.now_epoch = crate::journal::now();
            app.devices.at(app.now_epoch);
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
        Event::Connected(connections) => {
            // Devices of scopes no longer in use go; the rest keep their rows.
            let scopes: std::collections::HashSet<String> =
                connections.iter().map(Connection::scope).collect();
            app.devices
                .retain(|d| d.scope.is_empty() || scopes.contains(d.scope.as_str()));
            app.devices.loading.retain(|(s, _)| scopes.contains(s));
            app.failed_listings.retain(|(s, _)| scopes.contains(s));
            let accounts = connections
                .iter()
                .filter_map(|c| Some((c.scope(), c.account.clone()?)))
                .collect();
            app.devices
                .set_scope_order(connections.iter().map(Connection::scope).collect());
            app.devices.fill_accounts(&accounts);
            app.connections = connections;
        }
        Event::ListingStarted(scope, service) => {
            app.devices.loading.insert((scope, service));
        }
        Event::DevicesPage(_, mut devices) => {
            devices.retain(|d| app.in_use(&d.scope));
            app.devices.upsert(devices);
        }
        Event::ListingDone(scope, service, ids) => {
            app.devices.loading.remove(&(scope.clone(), service));
            app.failed_listings.remove(&(scope.clone(), service));
            app.devices.retain_listed(&scope, service, &ids);
        }
        Event::ListingFailed(scope, service, error) => {
            app.devices.loading.remove(&(scope.clone(), service));
            app.failed_listings.insert((scope.clone(), service));
            let connection = app.connection_of(&scope).cloned().unwrap_or_default();
            // The cause and its fix where there is one; what AWS said stays in the log (!).
            // Each scope's failure is its own line: one context failing hides no other.
            match crate::aws::advice::advice(&error, &connection, service, "ListDevices") {
                Some(advice) => {
                    app.fail(format!("{scope}: {advice} · R retries, ! shows the error"));
                    app.log(format!(
                        "{scope}: listing {} devices failed: {error}",
                        service.label()
                    ));
                }
                None => app.fail(format!(
                    "{scope}: listing {} devices failed: {error}",
                    service.label()
                )),
            }
        }
        Event::DeviceUpdated(device) if !app.in_use(&device.scope) => {}
        Event::DeviceUpdated(device) => {
            // An open form's preflight reads the newest details of its targets.
            if let Some(Overlay::Form(form)) = &mut app.overlay
                && let Some(t) = form.targets.iter_mut().find(|t| t.key() == device.key())
            {
                t.merge(device.clone());
            }
            app.devices.upsert(vec![device]);
        }
        // The row keeps its listing; the error is logged, and shown once per kind.
        Event::DescribeFailed(_, e) => app.fail(format!("DescribeDevice failed: {e}")),
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
        Event::Inspected {
            key,
            resource,
            fields,
        } => {
            if let Some(Overlay::Inspect {
                key: k,
                resource: r,
                fields: f,
                ..
            }) = &mut app.overlay
                && *k == key
                && *r == resource
            {
                *f = Some(fields.map_err(|e| e.to_string()));
            }
        }
        Event::PlanStarted {
            plan,
            operation,
            ops,
            resumed,
        } => {
            add_rows(app, &plan, &ops, operation.label());
            app.focus = Pane::Results;
            let verb = if resumed { "Resuming" } else { "Dispatching" };
            app.tell(format!(
                "{verb} {}: {} devices",
                operation.label(),
                ops.len()
            ));
        }
        Event::PlanRefused(Refusal { error, overlaps }) => {
            let what = match overlaps {
                Some(plan) => format!(
                    "Nothing was sent: {error}. Resume or discard plan {plan} (its dialog, or `fleetdeck run --resume {plan}` / `--discard {plan}`)"
                ),
                None => format!("Nothing was sent: {error}"),
            };
            app.fail(what);
        }
        Event::Op(id, update) => apply_op(app, id, update),
        Event::Rollout(view) => {
            match app
                .results
                .rollouts
                .iter_mut()
                .find(|r| r.plan == view.plan)
            {
                Some(r) => *r = view,
                None => app.results.rollouts.push(view),
            }
        }
        Event::Health(id, health) => {
            if let Some(row) = app.results.rows.iter_mut().find(|r| r.id == id) {
                row.health = Some(health);
            }
        }
        Event::Unfinished(plan) => {
            if !app.resumable.iter().any(|r| r.plan == plan.plan)
                && !matches!(&app.overlay, Some(Overlay::Resume(r)) if r.plan == plan.plan)
            {
                app.resumable.push(plan);
            }
            next_resume(app);
        }
        Event::Notice(message) => app.tell(message),
        Event::Failure(message) => app.fail(message),
    }
}

fn apply_op(app: &mut App, id: OpId, update: OpUpdate) {
    let now = app.now;
    let Some(row) = app.results.rows.iter_mut().find(|r| r.id == id) else {
        return;
    };
    if !row.state.may_become(update.state) {
        return;
    }
    row.state = update.state;
    if update.resource_id.is_some() {
        row.resource_id = update.resource_id;
    }
    match update.error {
        Some(e) => row.error = Some(e.to_string()),
        // Resolved: an earlier doubt no longer applies.
        None if matches!(row.state, OpState::Sent) => row.error = None,
        None => {}
    }
    row.finished = (!row.state.in_flight()).then_some(row.finished.unwrap_or(now));
}

fn scope(app: &App) -> Scope {
    match app.focus {
        Pane::Devices => Scope::Devices,
        Pane::Results => Scope::Results,
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        // With work left, the first Ctrl-C asks; a second one forces.
        if matches!(app.overlay, Some(Overlay::Quit)) || !work_left(app) {
            app.quit = true;
        } else {
            app.filter_input = None;
            app.overlay = Some(Overlay::Quit);
        }
        return Vec::new();
    }
    if app.command_input.is_some() {
        return on_command_key(app, key);
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

/// A key while the `:` line is open: Enter runs it, Esc closes it, Tab completes.
fn on_command_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    let Some(input) = &mut app.command_input else {
        return Vec::new();
    };
    match key.code {
        KeyCode::Esc => app.command_input = None,
        KeyCode::Tab => {
            let line = command::complete(input.value(), &app.catalog);
            let found = command::candidates(&line, &app.catalog);
            *input = Input::new(line);
            if found.len() > 1 {
                app.tell(found.join("  "));
            }
        }
        KeyCode::Enter => {
            let line = input.value().to_string();
            app.command_input = None;
            return run_command(app, &line);
        }
        _ => {
            input.handle_event(&crossterm::event::Event::Key(key));
        }
    }
    Vec::new()
}

fn run_command(app: &mut App, line: &str) -> Vec<Command> {
    match command::parse(line, &app.catalog) {
        Err(e) => app.fail(format!(":{} — {e}", line.trim())),
        Ok(command::Asked::Say(s)) if s.is_empty() => {}
        Ok(command::Asked::Say(s)) => app.tell(s),
        Ok(command::Asked::Quit) => return on_action(app, Action::Quit),
        Ok(command::Asked::Drift) => app.overlay = Some(Overlay::Drift),
        Ok(command::Asked::Use(flags)) => return switch(app, flags),
    }
    Vec::new()
}

/// Asks the worker to use other scopes. Refused while a rollout is under way: its answers
/// come from the scopes it was sent to.
fn switch(app: &mut App, flags: crate::contexts::Flags) -> Vec<Command> {
    if work_left(app) {
        app.fail(
            "Contexts were not switched: a plan is still under way. Switch once it ends (or abort it with X).",
        );
        return Vec::new();
    }
    match app.catalog.targets(&flags) {
        Err(e) => {
            app.fail(e);
            Vec::new()
        }
        Ok(targets) => {
            let names: Vec<String> = targets
                .iter()
                .map(|t| match &t.region {
                    Some(r) => format!("{}/{r}", t.context),
                    None => t.context.clone(),
                })
                .collect();
            app.tell(format!("Switching to {}", names.join(", ")));
            app.catalog.flags = flags;
            app.errors.clear();
            app.devices.marks.clear();
            vec![Command::Use(targets)]
        }
    }
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
        Overlay::ErrorLog { scroll } => {
            let last = app.error_log.len().saturating_sub(1);
            let scroll = match key.code {
                KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
                KeyCode::Down | KeyCode::Char('j') => (scroll + 1).min(last),
                KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('!') | KeyCode::Enter => {
                    return Vec::new();
                }
                _ => scroll,
            };
            app.overlay = Some(Overlay::ErrorLog { scroll });
            Vec::new()
        }
        Overlay::Abort { plan, unsent } => match key.code {
            KeyCode::Char('y') => {
                app.tell(format!(
                    "Aborting rollout {}: nothing more is sent",
                    crate::ops::short(&plan)
                ));
                vec![Command::Abort { plan }]
            }
            KeyCode::Char('n') | KeyCode::Esc => Vec::new(),
            _ => {
                app.overlay = Some(Overlay::Abort { plan, unsent });
                Vec::new()
            }
        },
        Overlay::Inspect { .. } => {
            if !matches!(key.code, KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter) {
                app.overlay = Some(overlay);
            }
            Vec::new()
        }
        Overlay::Drift => match key.code {
            KeyCode::Char('m') if !app.read_only => mark_behind(app),
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('D') | KeyCode::Enter => Vec::new(),
            _ => {
                app.overlay = Some(Overlay::Drift);
                Vec::new()
            }
        },
        Overlay::HiddenMarks { kind, hidden } => match key.code {
            KeyCode::Char('y') => {
                let targets = app.devices.selection().into_iter().cloned().collect();
                form_for(app, kind, targets)
            }
            KeyCode::Char('n') => {
                let targets = app.devices.shown_selection().into_iter().cloned().collect();
                form_for(app, kind, targets)
            }
            KeyCode::Esc => Vec::new(),
            _ => {
                app.overlay = Some(Overlay::HiddenMarks { kind, hidden });
                Vec::new()
            }
        },
        Overlay::Cancel { task, devices } => match key.code {
            KeyCode::Char('y') => {
                app.tell(format!("Canceling the queued executions of {task}"));
                vec![Command::CancelTask { task_id: task }]
            }
            KeyCode::Char('n') | KeyCode::Esc => Vec::new(),
            _ => {
                app.overlay = Some(Overlay::Cancel { task, devices });
                Vec::new()
            }
        },
        Overlay::Resume(plan) => match key.code {
            KeyCode::Char('r') if !app.read_only => {
                let commands = resume(app, plan);
                next_resume(app);
                commands
            }
            KeyCode::Char('d') if !app.read_only => {
                app.tell(format!(
                    "Discarding plan {}: reconciling what may have been sent; nothing is sent",
                    plan.plan
                ));
                next_resume(app);
                vec![Command::Discard { plan: plan.plan }]
            }
            KeyCode::Esc => {
                app.put_off.push(plan);
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
                let confirm = Confirm::new(*plan, |k| {
                    devices
                        .get(k)
                        .map_or(k.id.as_str(), |d| d.label())
                        .to_string()
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

/// Asks the worker to carry on with a plan; its rows come with the worker's answer.
fn resume(app: &mut App, plan: Resumable) -> Vec<Command> {
    app.tell(format!(
        "Resuming {}: reconciling before sending anything",
        plan.operation.label()
    ));
    vec![Command::Resume { plan: plan.plan }]
}

/// Adds a row per operation the engine started.
fn add_rows(app: &mut App, plan: &str, ops: &[(OpId, DeviceKey)], operation: &str) {
    // A plan's rows stay together (a resume adds to a plan already shown); the cursor
    // follows to the plan's first new row, so new rows never land out of sight.
    let at = app
        .results
        .rows
        .iter()
        .rposition(|r| r.plan == plan)
        .map_or(app.results.rows.len(), |i| i + 1);
    let mut new = Vec::with_capacity(ops.len());
    for (id, key) in ops {
        let label = app
            .devices
            .get(key)
            .map_or(key.id.as_str(), |d| d.label())
            .to_string();
        new.push(OpRow {
            id: *id,
            plan: plan.to_string(),
            key: key.clone(),
            label,
            operation: operation.to_string(),
            resource_id: None,
            state: OpState::Queued,
            started: app.now,
            finished: None,
            error: None,
            health: None,
        });
    }
    app.results.rows.splice(at..at, new);
    if !ops.is_empty() {
        app.results.cursor = at;
    }
}

/// Hands the confirmed plan to the worker; its rows come with the worker's answer.
fn dispatch(app: &mut App, confirm: Confirm) -> Vec<Command> {
    let plan = confirm.plan;
    app.devices.marks.clear();
    app.tell(format!(
        "Dispatching {}: {}",
        plan.operation.label(),
        plan.calls()
    ));
    vec![Command::Dispatch(Box::new(plan))]
}

/// Operations in flight or not yet sent: what a quit would stop.
pub fn work_left(app: &App) -> bool {
    let t = app.results.tally();
    t.running + t.left() > 0
}

fn on_action(app: &mut App, action: Action) -> Vec<Command> {
    match action {
        Action::Up => move_by(app, -1),
        Action::Down => move_by(app, 1),
        Action::PageUp => move_by(app, -app.page()),
        Action::PageDown => move_by(app, app.page()),
        Action::Top => move_by(app, isize::MIN / 2),
        Action::Bottom => move_by(app, isize::MAX / 2),
        Action::NextPane | Action::PrevPane => match app.focus {
            // Focus never goes to a pane with nothing in it.
            Pane::Devices if app.results.rows.is_empty() => {
                app.tell("No results yet: the results pane fills once an operation is sent");
            }
            Pane::Devices => app.focus = Pane::Results,
            Pane::Results => app.focus = Pane::Devices,
        },
        Action::Help => app.overlay = Some(Overlay::Help),
        Action::ErrorLog => {
            let scroll = app.error_log.len().saturating_sub(1);
            app.overlay = Some(Overlay::ErrorLog { scroll });
        }
        Action::Close => {
            if !app.errors.is_empty() {
                app.errors.clear();
            } else if !app.devices.filter.is_empty() {
                app.devices.set_filter(String::new());
            }
        }
        Action::Quit => {
            if work_left(app) {
                app.overlay = Some(Overlay::Quit);
            } else {
                app.quit = true;
            }
        }
        Action::ForceQuit => app.quit = true,
        Action::Refresh => {
            // After a failed listing the cause was likely fixed outside (a login, a key, a
            // network): configuration is loaded afresh, so new credentials are read.
            if !app.failed_listings.is_empty()
                && let Ok(targets) = app.catalog.targets(&app.catalog.flags)
                && !targets.is_empty()
                && !work_left(app)
            {
                app.tell("Loading configuration again and refreshing devices");
                app.errors.clear();
                return vec![Command::Use(targets)];
            }
            app.tell("Refreshing devices");
            return vec![Command::Refresh];
        }
        Action::Command => {
            app.command_input = Some(Input::default());
        }
        Action::Filter => {
            // From the results pane too: what is typed next is a filter, never results keys
            // (a `c` in "svc:snow" must not ask to cancel a task).
            app.focus = Pane::Devices;
            app.filter_input = Some(Input::new(app.devices.filter.clone()));
        }
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
        Action::Ota => return open_form(app, FormKind::Ota),
        Action::Reboot => return open_form(app, FormKind::Reboot),
        Action::Unlock => return open_form(app, FormKind::Unlock),
        Action::CancelTask => return cancel(app),
        Action::PauseRollout => return rollout_command(app, |plan| Command::Pause { plan }),
        Action::Promote => return rollout_command(app, |plan| Command::Promote { plan }),
        Action::AbortRollout => {
            if let Some(view) = open_rollout(app) {
                let unsent = view
                    .waves
                    .iter()
                    .flatten()
                    .filter(|op| {
                        app.results
                            .rows
                            .iter()
                            .any(|r| r.id == **op && !r.state.was_sent() && !r.state.is_final())
                    })
                    .count();
                app.overlay = Some(Overlay::Abort {
                    plan: view.plan.clone(),
                    unsent,
                });
            }
        }
        Action::RetryRest => retry_rest(app),
        Action::OpenResult => return inspect(app),
        Action::ClearFinished => clear_finished(app),
        Action::Drift => app.overlay = Some(Overlay::Drift),
        Action::Unfinished => {
            if app.resumable.is_empty() && app.put_off.is_empty() {
                app.tell("No unfinished plans: the journal holds none for the contexts in use");
            } else {
                app.resumable.append(&mut app.put_off);
                next_resume(app);
            }
        }
    }
    Vec::new()
}

/// Reads the job or execution of the result under the cursor.
fn inspect(app: &mut App) -> Vec<Command> {
    let Some(row) = app.results.rows.get(app.results.cursor) else {
        return Vec::new();
    };
    let Some(resource) = row.resource_id.clone() else {
        app.tell(format!(
            "{}: no job or task yet ({}), so there is nothing to read",
            row.label,
            row.state.word(row.key.service)
        ));
        return Vec::new();
    };
    let key = row.key.clone();
    app.overlay = Some(Overlay::Inspect {
        key: key.clone(),
        label: row.label.clone(),
        resource: resource.clone(),
        fields: None,
    });
    vec![Command::Inspect { key, resource }]
}

/// Drops the rows of plans whose every operation is final and whose rollout has ended.
fn clear_finished(app: &mut App) {
    let rows = &app.results.rows;
    let mut plans: Vec<String> = Vec::new();
    for r in rows {
        if !plans.contains(&r.plan) {
            plans.push(r.plan.clone());
        }
    }
    let done: Vec<String> = plans
        .into_iter()
        .filter(|p| {
            rows.iter()
                .filter(|r| r.plan == *p)
                .all(|r| r.state.is_final())
        })
        .filter(|p| {
            app.results
                .rollouts
                .iter()
                .find(|v| v.plan == *p)
                .is_none_or(|v| v.outcome.is_some() || v.phase.is_end())
        })
        .collect();
    if done.is_empty() {
        return app.tell("No finished plans to clear");
    }
    let at = app.results.rows.get(app.results.cursor).map(|r| r.id);
    app.results.rows.retain(|r| !done.contains(&r.plan));
    app.results.rollouts.retain(|v| !done.contains(&v.plan));
    app.results.cursor = at
        .and_then(|id| app.results.rows.iter().position(|r| r.id == id))
        .unwrap_or(0);
    if app.results.rows.is_empty() {
        app.focus = Pane::Devices;
    }
    app.tell(format!(
        "Cleared {} finished plan{}",
        done.len(),
        if done.len() == 1 { "" } else { "s" }
    ));
}

/// The newest Panorama version known (installed or offered), and the appliances behind it.
pub fn behind(devices: &Devices) -> Option<(String, Vec<DeviceKey>)> {
    let pan = || {
        devices
            .rows()
            .iter()
            .filter(|d| d.service == Service::Panorama)
    };
    let newest = crate::fleet::highest(pan().flat_map(|d| {
        d.current_software
            .iter()
            .chain(&d.available_software)
            .map(CompactString::as_str)
    }))?
    .to_string();
    let key = crate::fleet::version_key(&newest);
    let keys = pan()
        .filter(|d| {
            d.current_software
                .as_deref()
                .is_some_and(|v| crate::fleet::version_key(v) < key)
        })
        .map(Device::key)
        .collect();
    Some((newest, keys))
}

/// Marks every appliance behind the newest version and opens the OTA form for them.
fn mark_behind(app: &mut App) -> Vec<Command> {
    match behind(&app.devices) {
        Some((_, keys)) if !keys.is_empty() => {
            app.devices.marks = keys.iter().cloned().collect();
            let targets: Vec<Device> = keys
                .iter()
                .filter_map(|k| app.devices.get(k))
                .cloned()
                .collect();
            form_for(app, FormKind::Ota, targets)
        }
        Some((newest, _)) => {
            app.tell(format!("Every appliance runs {newest}: none is behind"));
            Vec::new()
        }
        None => {
            app.tell("No Panorama appliance reports a software version");
            Vec::new()
        }
    }
}

/// The rollout in focus, if it has not ended; the operator is told when there is none.
fn open_rollout(app: &mut App) -> Option<RolloutView> {
    let view = app.results.rollout_in_focus().cloned();
    match view {
        Some(v) if v.outcome.is_none() && !v.phase.is_end() => Some(v),
        Some(v) => {
            app.tell(format!(
                "Rollout {} has ended: nothing to pause, promote or abort (r retries the rest)",
                crate::ops::short(&v.plan)
            ));
            None
        }
        None => {
            app.tell("No rollout here: send an operation first");
            None
        }
    }
}

fn rollout_command(app: &mut App, command: impl Fn(String) -> Command) -> Vec<Command> {
    match open_rollout(app) {
        Some(view) => vec![command(view.plan)],
        None => Vec::new(),
    }
}

/// A new plan of what an ended rollout never sent or that did not succeed, with the same
/// operation and staging, for the operator to confirm.
fn retry_rest(app: &mut App) {
    let Some(view) = app.results.rollout_in_focus().cloned() else {
        return app.tell("No rollout here: send an operation first");
    };
    if view.outcome.is_none() && !view.phase.is_end() {
        return app.tell("The rollout is still under way: retry the rest once it has ended");
    }
    let mut keys: Vec<DeviceKey> = app
        .results
        .rows
        .iter()
        .filter(|r| r.plan == view.plan)
        .filter(|r| r.state != OpState::Succeeded || matches!(r.health, Some(Health::Unhealthy(_))))
        .map(|r| r.key.clone())
        .collect();
    keys.extend(view.left_out.iter().cloned());
    let devices: Vec<&Device> = keys.iter().filter_map(|k| app.devices.get(k)).collect();
    if devices.is_empty() {
        return app.tell("Nothing to retry: every device of the rollout succeeded");
    }
    let preflight = crate::ops::Preflight::default();
    let mut plan = crate::ops::Plan::with(
        view.operation.clone(),
        view.snow.clone(),
        &devices,
        preflight,
    );
    plan.rollout = crate::ops::rollout::Rollout {
        waves: if view.sizes.is_empty() {
            vec![crate::ops::rollout::Size::Rest]
        } else {
            view.sizes.clone()
        },
        gate: view.gate,
    };
    if plan.is_empty() {
        return app.tell("Nothing to retry: preflight leaves out every device that is left");
    }
    let confirm = Confirm::new(plan, |k| {
        app.devices
            .get(k)
            .map_or(k.id.as_str(), |d| d.label())
            .to_string()
    });
    app.overlay = Some(Overlay::Confirm(confirm));
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

/// Opens the form for the selection, and has the targets described (with what is in view):
/// preflight reads what only DescribeDevice has — versions offered, when a device last
/// reached out, a lock state.
fn open_form(app: &mut App, kind: FormKind) -> Vec<Command> {
    let hidden = app.devices.hidden_marks();
    if hidden > 0 {
        app.overlay = Some(Overlay::HiddenMarks { kind, hidden });
        return Vec::new();
    }
    form_for(
        app,
        kind,
        app.devices.selection().into_iter().cloned().collect(),
    )
}

/// Opens the form for `targets`, unless the operation applies to none of them (then says why).
fn form_for(app: &mut App, kind: FormKind, targets: Vec<Device>) -> Vec<Command> {
    if targets.is_empty() {
        app.tell("No device selected: move to one, or mark some with Space");
        return Vec::new();
    }
    if let Some(why) = kind.applies_to_none(&targets) {
        app.tell(why);
        return Vec::new();
    }
    let mut keys = in_view(app);
    keys.extend(
        targets
            .iter()
            .map(Device::key)
            .filter(|k| !app.looked.contains(k)),
    );
    app.looked = keys.clone();
    app.overlay = Some(Overlay::Form(Box::new(Form::new(kind, targets))));
    vec![Command::Look(keys)]
}

fn cancel(app: &mut App) -> Vec<Command> {
    let Some(row) = app.results.rows.get(app.results.cursor) else {
        return Vec::new();
    };
    if row.key.service != Service::Snow {
        app.tell("Only a Snow task can be canceled; a Panorama job cannot");
        return Vec::new();
    }
    let Some(task) = row.resource_id.clone() else {
        app.tell("This row has no task yet");
        return Vec::new();
    };
    let devices: Vec<String> = app
        .results
        .rows
        .iter()
        .filter(|r| r.resource_id.as_deref() == Some(task.as_str()) && r.state.in_flight())
        .map(|r| r.label.clone())
        .collect();
    if devices.is_empty() {
        app.tell(format!("Task {task} has ended: nothing to cancel"));
        return Vec::new();
    }
    app.overlay = Some(Overlay::Cancel { task, devices });
    Vec::new()
}

#[cfg(test)]
mod tests;
