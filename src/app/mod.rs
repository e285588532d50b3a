//! The state machine: `update` takes a message (a key, a worker event, a tick), changes the
//! state and returns the commands for the worker. No I/O and no SDK types here, so every
//! behaviour is a unit test.

mod actions;
pub mod command;
pub mod devices;
mod events;
pub mod forms;
mod keys;
mod results;
mod row_index;
mod sort;
pub mod team;

use std::time::{Duration, Instant};

use crossterm::event::KeyEvent;
use tui_input::Input;

use crate::aws::Connection;
use crate::fleet::{Device, DeviceKey, Service};
use crate::ops::rollout::Cause;
use crate::protocol::{Command, Event, Resumable};

pub use actions::behind;
pub use devices::Devices;
pub use results::{OpRow, Results};
pub use sort::SortColumn;

use events::on_event;
pub use forms::{Confirm, ConfirmOutcome, Field, Form, FormKind, FormOutcome};
use keys::on_key;

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
    /// Panorama: its application instances and their health.
    pub apps: Option<Result<Vec<crate::fleet::AppInstance>, String>>,
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
    /// Team mode: every member's plans, live; a word or an approval being confirmed.
    Team {
        selected: usize,
        /// What is being confirmed, and for which plan (by id: the list is read again
        /// meanwhile and may reorder).
        asking: Option<(TeamAsk, String)>,
    },
}

/// What the team pane asks of the selected plan, once confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamAsk {
    Word(crate::ops::rollout::Control),
    Approve,
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
    /// Who gives this terminal's words to a rollout, as the journal records it.
    pub operator: Cause,
    /// What a plan's gate watches besides its devices (the session's flags and contexts).
    pub watch: crate::ops::rollout::Watch,
    /// Team mode: devices another plan of the team holds, and who holds them.
    pub held: std::collections::HashMap<DeviceKey, String>,
    /// Team mode: the table and who this session is to it, once reached.
    pub team: Option<crate::protocol::TeamJoin>,
    /// Team mode: scopes whose Panorama quota other plans of the team share, with how many.
    pub quota_shared: std::collections::BTreeMap<String, usize>,
    /// Team mode asked for, but its table could not be used: why.
    pub team_refused: Option<String>,
    /// Team mode: the team's plans as last read (for the team pane).
    pub team_plans: Vec<crate::team::PlanRow>,
    /// When the team pane last asked for them.
    pub team_read_at: Option<Instant>,
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
            watch: Default::default(),
            operator: Cause::Operator {
                user: "the operator".into(),
                host: "this host".into(),
                pid: std::process::id(),
                via: "the terminal UI".into(),
            },
            held: Default::default(),
            team: None,
            quota_shared: Default::default(),
            team_refused: None,
            team_plans: Vec::new(),
            team_read_at: None,
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

    /// Shows the next unfinished plan, when nothing else is on screen.
    pub(crate) fn next_resume(&mut self) {
        if self.overlay.is_none() && !self.resumable.is_empty() {
            self.overlay = Some(Overlay::Resume(self.resumable.remove(0)));
        }
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
            team::reread(app)
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

/// Operations in flight or not yet sent: what a quit would stop.
pub fn work_left(app: &App) -> bool {
    let t = app.results.tally();
    t.running + t.left() > 0
}

#[cfg(test)]
mod tests;
