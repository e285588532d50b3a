//! What each keymap action does to the state, and the commands it gives the worker.

use compact_str::CompactString;
use tui_input::Input;

use super::{App, Confirm, Details, Devices, Form, FormKind, Overlay, Pane, in_view, work_left};
use crate::fleet::{Device, DeviceKey, Service};
use crate::keymap::Action;
use crate::ops::OpState;
use crate::ops::rollout::Health;
use crate::protocol::{Command, RolloutView};

pub(super) fn on_action(app: &mut App, action: Action) -> Vec<Command> {
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
        Action::Refresh => return refresh(app),
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
                    apps: None,
                    error: None,
                }));
                return vec![Command::Describe(key)];
            }
        }
        Action::Ota => return open_form(app, FormKind::Ota),
        Action::Reboot => return open_form(app, FormKind::Reboot),
        Action::Unlock => return open_form(app, FormKind::Unlock),
        Action::CancelTask => return cancel(app),
        Action::PauseRollout => {
            let by = app.operator.clone();
            return rollout_command(app, |plan| Command::Pause { plan, by });
        }
        Action::Promote => {
            let by = app.operator.clone();
            return rollout_command(app, |plan| Command::Promote { plan, by });
        }
        Action::AbortRollout => ask_abort(app),
        Action::RetryRest => retry_rest(app),
        Action::OpenResult => return inspect(app),
        Action::ClearFinished => clear_finished(app),
        Action::Drift => app.overlay = Some(Overlay::Drift),
        Action::Team => return super::team::open(app),
        Action::Unfinished => {
            if app.resumable.is_empty() && app.put_off.is_empty() {
                app.tell("No unfinished plans: the journal holds none for the contexts in use");
            } else {
                app.resumable.append(&mut app.put_off);
                app.next_resume();
            }
        }
    }
    Vec::new()
}

/// Asks before aborting the rollout in focus, saying how many of its devices were never sent.
fn ask_abort(app: &mut App) {
    let Some(view) = open_rollout(app) else {
        return;
    };
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

/// Lists the devices again. After a failed listing the cause was likely fixed outside (a
/// login, a key, a network): configuration is loaded afresh, so new credentials are read.
fn refresh(app: &mut App) -> Vec<Command> {
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
    vec![Command::Refresh]
}

/// Reads the job or execution of the result under the cursor.
pub(super) fn inspect(app: &mut App) -> Vec<Command> {
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
pub(super) fn clear_finished(app: &mut App) {
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
pub(super) fn mark_behind(app: &mut App) -> Vec<Command> {
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
pub(super) fn open_rollout(app: &mut App) -> Option<RolloutView> {
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

pub(super) fn rollout_command(
    app: &mut App,
    command: impl FnOnce(String) -> Command,
) -> Vec<Command> {
    match open_rollout(app) {
        Some(view) => vec![command(view.plan)],
        None => Vec::new(),
    }
}

/// A new plan of what an ended rollout never sent or that did not succeed, with the same
/// operation and staging, for the operator to confirm.
pub(super) fn retry_rest(app: &mut App) {
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
        watch: view.watch.clone(),
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

pub(super) fn move_by(app: &mut App, delta: isize) {
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
pub(super) fn open_form(app: &mut App, kind: FormKind) -> Vec<Command> {
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
pub(super) fn form_for(app: &mut App, kind: FormKind, targets: Vec<Device>) -> Vec<Command> {
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
    let mut form = Form::new(kind, targets);
    form.staging.watch = app.watch.clone();
    form.staging.alarms = tui_input::Input::new(app.watch.alarms.join(", "));
    form.held = form
        .targets
        .iter()
        .filter_map(|d| Some((d.key(), app.held.get(&d.key())?.clone())))
        .collect();
    app.overlay = Some(Overlay::Form(Box::new(form)));
    vec![Command::Look(keys)]
}

pub(super) fn cancel(app: &mut App) -> Vec<Command> {
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
