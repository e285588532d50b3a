//! The worker's news into the state: listings and reads into the devices table, plans and
//! their operations into the results, unfinished plans offered, notices and errors.

use super::{App, OpRow, Overlay, Pane};
use crate::aws::{ApiError, Connection};
use crate::fleet::{Device, DeviceKey, Service};
use crate::ops::{OpId, OpState, OpUpdate};
use crate::protocol::{Event, Refusal};

pub(super) fn on_event(app: &mut App, event: Event) {
    match event {
        Event::Connected(connections) => connected(app, connections),
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
        Event::ListingFailed(scope, service, error) => listing_failed(app, scope, service, error),
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
            apps,
        } => details(app, key, device, history, apps),
        Event::Inspected {
            key,
            resource,
            fields,
        } => inspected(app, key, resource, fields),
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
        Event::PlanRefused(refusal) => refused(app, refusal),
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
            app.next_resume();
        }
        Event::Answered {
            plan,
            control,
            applied,
            detail,
            ..
        } => {
            let verdict = if applied { "done" } else { "refused" };
            app.tell(format!(
                "Rollout {}: {} {verdict}: {detail}",
                crate::ops::short(&plan),
                control.word()
            ));
        }
        Event::Team { plan, standing, .. } => {
            app.results.team.insert(plan, standing);
        }
        Event::Leases(held) => {
            app.held = held.into_iter().collect();
        }
        Event::TeamJoined(Ok(j)) => {
            app.tell(format!(
                "Team table {} as {}: plans share leases with the team (T: the team's plans)",
                j.table, j.who
            ));
            // Words from here name this identity, wherever the plan runs.
            if let crate::ops::rollout::Cause::Operator { user, host, .. } = &mut app.operator {
                user.clone_from(&j.arn);
                host.clone_from(&j.host);
            }
            app.team = Some(j);
        }
        Event::TeamPlans(plans) => app.team_plans = plans,
        Event::TeamJoined(Err(why)) => {
            app.team_refused = Some(why.clone());
            app.fail(why);
        }
        Event::QuotaShared {
            scope,
            others,
            text,
        } => quota_shared(app, scope, others, text),
        Event::Notice(message) => app.tell(message),
        Event::Failure(message) => app.fail(message),
    }
}

/// Team mode: other plans share (or no longer share) a scope's quota; the header shows it.
fn quota_shared(app: &mut App, scope: String, others: usize, text: String) {
    if others == 0 {
        app.quota_shared.remove(&scope);
    } else {
        app.quota_shared.insert(scope, others);
    }
    app.tell(text);
}

/// Scopes in use: devices of scopes no longer in use go; the rest keep their rows.
fn connected(app: &mut App, connections: Vec<Connection>) {
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

/// The cause and its fix where there is one; what AWS said stays in the log (!). Each
/// scope's failure is its own line: one context failing hides no other.
fn listing_failed(app: &mut App, scope: String, service: Service, error: ApiError) {
    app.devices.loading.remove(&(scope.clone(), service));
    app.failed_listings.insert((scope.clone(), service));
    let connection = app.connection_of(&scope).cloned().unwrap_or_default();
    let failed = format!(
        "{scope}: listing {} devices failed: {error}",
        service.label()
    );
    match crate::aws::advice::advice(&error, &connection, service, "ListDevices") {
        Some(advice) => {
            app.fail(format!("{scope}: {advice} · R retries, ! shows the error"));
            app.log(failed);
        }
        None => app.fail(failed),
    }
}

fn details(
    app: &mut App,
    key: DeviceKey,
    device: Result<Device, ApiError>,
    history: Result<Vec<String>, ApiError>,
    apps: Result<Vec<crate::fleet::AppInstance>, ApiError>,
) {
    if let Some(Overlay::Details(d)) = &mut app.overlay
        && d.key == key
    {
        d.apps = Some(apps.map_err(|e| e.to_string()));
        match device {
            Ok(device) => d.device = Some(device),
            Err(e) => d.error = Some(e.to_string()),
        }
        d.history = Some(history.map_err(|e| e.to_string()));
    }
}

fn inspected(
    app: &mut App,
    key: DeviceKey,
    resource: String,
    fields: Result<Vec<(String, String)>, ApiError>,
) {
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

fn refused(app: &mut App, Refusal { error, overlaps }: Refusal) {
    let what = match overlaps {
        Some(plan) => format!(
            "Nothing was sent: {error}. Resume or discard plan {plan} (its dialog, or `fleetdeck run --resume {plan}` / `--discard {plan}`)"
        ),
        None => format!("Nothing was sent: {error}"),
    };
    app.fail(what);
}

pub(super) fn apply_op(app: &mut App, id: OpId, update: OpUpdate) {
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

/// Adds a row per operation the engine started.
pub(super) fn add_rows(app: &mut App, plan: &str, ops: &[(OpId, DeviceKey)], operation: &str) {
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
