//! Keys: Ctrl-C, the `:` line, the filter being typed, an open dialog's keys, and the keymap's
//! actions for the pane in focus.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::actions::{form_for, mark_behind, on_action};
use super::{
    App, Confirm, ConfirmOutcome, FormKind, FormOutcome, Overlay, Pane, command, work_left,
};
use crate::keymap::{self, Action, Scope};
use crate::protocol::{Command, Resumable};

pub(super) fn scope(app: &App) -> Scope {
    match app.focus {
        Pane::Devices => Scope::Devices,
        Pane::Results => Scope::Results,
    }
}

pub(super) fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
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
pub(super) fn on_command_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
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

pub(super) fn run_command(app: &mut App, line: &str) -> Vec<Command> {
    match command::parse(line, &app.catalog) {
        Err(e) => app.fail(format!(":{} — {e}", line.trim())),
        Ok(command::Asked::Say(s)) if s.is_empty() => {}
        Ok(command::Asked::Say(s)) => app.tell(s),
        Ok(command::Asked::Quit) => return on_action(app, Action::Quit),
        Ok(command::Asked::Drift) => app.overlay = Some(Overlay::Drift),
        Ok(command::Asked::Team) => return on_action(app, Action::Team),
        Ok(command::Asked::Use(flags)) => return switch(app, flags),
    }
    Vec::new()
}

/// Asks the worker to use other scopes. Refused while a rollout is under way: its answers
/// come from the scopes it was sent to.
pub(super) fn switch(app: &mut App, flags: crate::contexts::Flags) -> Vec<Command> {
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

pub(super) fn on_overlay_key(app: &mut App, overlay: Overlay, key: KeyEvent) -> Vec<Command> {
    match overlay {
        Overlay::Help | Overlay::Details(_) => {
            let close = [
                KeyCode::Esc,
                KeyCode::Char('q'),
                KeyCode::Char('?'),
                KeyCode::Enter,
            ];
            keep_unless(app, overlay, &close, key);
        }
        Overlay::Inspect { .. } => {
            let close = [KeyCode::Esc, KeyCode::Char('q'), KeyCode::Enter];
            keep_unless(app, overlay, &close, key);
        }
        Overlay::ErrorLog { scroll } => error_log_key(app, scroll, key),
        Overlay::Abort { plan, unsent } => return abort_key(app, plan, unsent, key),
        Overlay::Drift => return drift_key(app, key),
        Overlay::Team { selected, asking } => return super::team::key(app, selected, asking, key),
        Overlay::HiddenMarks { kind, hidden } => return hidden_marks_key(app, kind, hidden, key),
        Overlay::Cancel { task, devices } => return cancel_key(app, task, devices, key),
        Overlay::Resume(plan) => return resume_key(app, plan, key),
        Overlay::Quit => app.quit = matches!(key.code, KeyCode::Char('y') | KeyCode::Enter),
        Overlay::Form(form) => form_key(app, form, key),
        Overlay::Confirm(mut confirm) => match confirm.key(key) {
            ConfirmOutcome::Stay => app.overlay = Some(Overlay::Confirm(confirm)),
            ConfirmOutcome::Cancel => {}
            ConfirmOutcome::Go => return dispatch(app, confirm),
        },
    }
    Vec::new()
}

/// A dialog that only shows something stays open until one of `close` is pressed.
fn keep_unless(app: &mut App, overlay: Overlay, close: &[KeyCode], key: KeyEvent) {
    if !close.contains(&key.code) {
        app.overlay = Some(overlay);
    }
}

fn error_log_key(app: &mut App, scroll: usize, key: KeyEvent) {
    let last = app.error_log.len().saturating_sub(1);
    let scroll = match key.code {
        KeyCode::Up | KeyCode::Char('k') => scroll.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') => (scroll + 1).min(last),
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('!') | KeyCode::Enter => return,
        _ => scroll,
    };
    app.overlay = Some(Overlay::ErrorLog { scroll });
}

fn abort_key(app: &mut App, plan: String, unsent: usize, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Char('y') => {
            app.tell(format!(
                "Aborting rollout {}: nothing more is sent",
                crate::ops::short(&plan)
            ));
            let by = app.operator.clone();
            vec![Command::Abort { plan, by }]
        }
        KeyCode::Char('n') | KeyCode::Esc => Vec::new(),
        _ => {
            app.overlay = Some(Overlay::Abort { plan, unsent });
            Vec::new()
        }
    }
}

fn drift_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Char('m') if !app.read_only => mark_behind(app),
        KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('D') | KeyCode::Enter => Vec::new(),
        _ => {
            app.overlay = Some(Overlay::Drift);
            Vec::new()
        }
    }
}

fn hidden_marks_key(app: &mut App, kind: FormKind, hidden: usize, key: KeyEvent) -> Vec<Command> {
    match key.code {
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
    }
}

fn cancel_key(app: &mut App, task: String, devices: Vec<String>, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Char('y') => {
            app.tell(format!("Canceling the queued executions of {task}"));
            vec![Command::CancelTask { task_id: task }]
        }
        KeyCode::Char('n') | KeyCode::Esc => Vec::new(),
        _ => {
            app.overlay = Some(Overlay::Cancel { task, devices });
            Vec::new()
        }
    }
}

fn resume_key(app: &mut App, plan: Resumable, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Char('r') if !app.read_only => {
            let commands = resume(app, plan);
            app.next_resume();
            commands
        }
        KeyCode::Char('d') if !app.read_only => {
            app.tell(format!(
                "Discarding plan {}: reconciling what may have been sent; nothing is sent",
                plan.plan
            ));
            app.next_resume();
            vec![Command::Discard { plan: plan.plan }]
        }
        KeyCode::Esc => {
            app.put_off.push(plan);
            app.next_resume();
            Vec::new()
        }
        _ => {
            app.overlay = Some(Overlay::Resume(plan));
            Vec::new()
        }
    }
}

/// A key in an operation's form; a submitted form becomes its confirmation.
fn form_key(app: &mut App, mut form: Box<super::Form>, key: KeyEvent) {
    match form.key(key) {
        FormOutcome::Stay => app.overlay = Some(Overlay::Form(form)),
        FormOutcome::Cancel => {}
        FormOutcome::Submit(plan) => {
            let devices = &app.devices;
            let confirm = Confirm::new(*plan, |k| {
                devices
                    .get(k)
                    .map_or(k.id.as_str(), |d| d.label())
                    .to_string()
            });
            app.overlay = Some(Overlay::Confirm(confirm));
        }
    }
}

/// Asks the worker to carry on with a plan; its rows come with the worker's answer.
pub(super) fn resume(app: &mut App, plan: Resumable) -> Vec<Command> {
    app.tell(format!(
        "Resuming {}: reconciling before sending anything",
        plan.operation.label()
    ));
    vec![Command::Resume { plan: plan.plan }]
}

/// Hands the confirmed plan to the worker; its rows come with the worker's answer.
pub(super) fn dispatch(app: &mut App, confirm: Confirm) -> Vec<Command> {
    let plan = confirm.plan;
    app.devices.marks.clear();
    app.tell(format!(
        "Dispatching {}: {}",
        plan.operation.label(),
        plan.calls()
    ));
    vec![Command::Dispatch(Box::new(plan))]
}
