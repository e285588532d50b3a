//! Reading the fleet: listings, DescribeDevice for what is in view, and following what was
//! sent. A Panorama row moves only on its own job's DescribeDeviceJob; ListDevices'
//! LatestDeviceJob (no job id, possibly another job's, possibly stale) only says when to ask.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::limits::Limits;
use super::{Internal, Worker};
use crate::aws::{self, ApiError, Clients};
use crate::fleet::{Device, DeviceKey, Service};
use crate::ops::{OpId, OpState, OpUpdate};
use crate::protocol::Event;

/// A followed job is asked about at least this often while the listing's LatestDeviceJob
/// does not tell its state (another job is the appliance's latest, or the job was not asked
/// about yet)...
const ASK_AT_LEAST_EVERY: Duration = Duration::from_secs(20);
/// ...and this often while it does: a move of the job then shows in the listing, which asks
/// at once. The timer is only a net for a listing that stops telling.
const ASK_WHEN_LISTED: Duration = Duration::from_secs(120);

/// A Snow device's lock state read in view stands this long through background refreshes;
/// the operator's own refresh, or an execution of ours ending on it, reads it again sooner.
const SNOW_DETAILS_KEPT: Duration = Duration::from_secs(300);

/// A Snow task is polled at most this rarely, however old it is.
const TASK_POLL_AT_MOST: Duration = Duration::from_secs(30);

/// When a Snow task is next asked about: every poll while it is young, then at a sixth of its
/// age (a task 60 s old every 10 s), never beyond `TASK_POLL_AT_MOST`. Executions that have
/// run a while rarely end in the next two seconds.
pub(super) fn task_poll_interval(age: Duration, every: Duration) -> Duration {
    (age / 6).clamp(every, TASK_POLL_AT_MOST.max(every))
}

/// When a followed Snow task was first and last asked about.
struct TaskPoll {
    since: Instant,
    last: Option<Instant>,
}

/// A Panorama job being followed.
struct Watch {
    device: String,
    op: OpId,
    /// The appliance's LatestDeviceJob when the job was last asked about.
    hint: Option<String>,
    asked: Option<Instant>,
    /// The job as it last answered, in the listing's words ("REBOOT IN_PROGRESS").
    known: Option<String>,
}

impl Watch {
    /// Whether the job is asked about now, given its appliance's LatestDeviceJob.
    fn due(&self, hint: Option<&String>, now: Instant, by_time_only: bool) -> bool {
        let every = if self.known.is_some() && hint == self.known.as_ref() {
            ASK_WHEN_LISTED
        } else {
            ASK_AT_LEAST_EVERY
        };
        let stale = self.asked.is_none_or(|at| now - at >= every);
        // Moved since it was last asked about, to a state it has not answered with (a
        // listing that only catches up with an answer is no news).
        let moved = hint != self.hint.as_ref() && hint != self.known.as_ref();
        stale || (!by_time_only && moved)
    }
}

#[derive(Default)]
pub(super) struct Status {
    /// Polls the service throttled: asked again at the next poll, never shown as failures.
    pub throttled: u64,
    /// Listings under way, by scope and service.
    pub listing: HashSet<(String, Service)>,
    /// A listing asked for while one was under way, to start when it ends: `Some(quiet)`,
    /// quiet only if every ask since was the background refresh's.
    pub list_again: Option<bool>,
    /// Devices whose details are current, and when they were read; Snow's go stale.
    pub described: HashMap<DeviceKey, Instant>,
    /// DescribeDevice calls under way, so none is sent twice.
    pub describing: HashSet<DeviceKey>,
    /// What the operator can see: only these are described.
    pub in_view: HashSet<DeviceKey>,
    /// Each appliance's LatestDeviceJob as last listed ("REBOOT IN_PROGRESS").
    latest: HashMap<String, String>,
    /// Panorama jobs sent by this process and not yet final, by job id.
    jobs: HashMap<String, Watch>,
    /// DescribeDeviceJob calls under way.
    asking: HashSet<String>,
    /// Snow task id → its targets' operations.
    pub snow_tasks: HashMap<String, Vec<(String, OpId)>>,
    /// ListExecutions calls under way, by task.
    pub polling: HashSet<String>,
    /// When each followed Snow task was first and last polled: older tasks are polled less.
    task_polls: HashMap<String, TaskPoll>,
    /// A device per scope to describe for the scope's account, should no listing name it.
    probe: HashMap<String, DeviceKey>,
}

impl Status {
    pub fn latest(&self, device: &str) -> Option<&str> {
        self.latest.get(device).map(String::as_str)
    }
}

impl Worker {
    /// The operator's refresh: everything listed again, and a Snow device's state (locked or
    /// not, only in DescribeDevice) read again for the devices in view as their pages arrive.
    pub(super) fn refresh(&mut self) {
        self.status
            .described
            .retain(|k, _| k.service == Service::Panorama);
        self.list_everything(false);
    }

    /// The periodic refresh: the listings again, but a Snow device's details only once they
    /// are `SNOW_DETAILS_KEPT` old, so an idle view does not describe its screen every time.
    pub(super) fn refresh_in_background(&mut self) {
        let now = Instant::now();
        self.status
            .described
            .retain(|k, at| k.service == Service::Panorama || now - *at < SNOW_DETAILS_KEPT);
        self.list_everything(true);
    }

    /// Every service listed in every scope. A `quiet` listing (the background refresh's) is
    /// not announced: an idle screen whose devices have not changed stays unchanged, and
    /// writes nothing to a slow link.
    fn list_everything(&mut self, quiet: bool) {
        if !self.status.listing.is_empty() {
            self.status.list_again = Some(quiet && self.status.list_again.unwrap_or(true));
            if !quiet {
                // The operator asked: the listings under way are what they wait for now.
                let under_way: Vec<_> = self.status.listing.iter().cloned().collect();
                for (scope, service) in under_way {
                    self.emit(Event::ListingStarted(scope, service));
                }
            }
            return;
        }
        // Team mode: who holds which devices changes as other hosts' plans come and go.
        if self.team.is_some() {
            self.read_leases();
        }
        let scopes: Vec<String> = self.places.iter().map(|p| p.conn.scope()).collect();
        for scope in scopes {
            for service in self.settings.services.clone() {
                self.spawn_listing(&scope, service, quiet);
            }
        }
    }

    /// Lists one service in one scope, unless that is under way or the service is not there.
    fn spawn_listing(&mut self, scope: &str, service: Service, quiet: bool) {
        let Some(place) = self.place(scope) else {
            return;
        };
        if service == Service::Panorama && place.clients.panorama.is_none() {
            return;
        }
        let (clients, limits, tx) = (
            place.clients.clone(),
            place.limits.clone(),
            self.internal.clone(),
        );
        let region = place.conn.region.clone();
        if !self.status.listing.insert((scope.to_string(), service)) {
            return;
        }
        if !quiet {
            self.emit(Event::ListingStarted(scope.to_string(), service));
        }
        self.tasks.spawn(list(
            Where {
                scope: scope.to_string(),
                region,
            },
            service,
            clients,
            limits,
            tx,
        ));
    }

    /// Devices read from a scope: routed there, the scope's account learned from an ARN. A
    /// device another scope already lists (two profiles of one account) stays with that one.
    pub(super) fn page(&mut self, scope: &str, service: Service, mut devices: Vec<Device>) {
        // A page from a scope switched away from (`:ctx`) arrives late: it is not news.
        if self.place(scope).is_none() {
            return;
        }
        // With one scope every device's calls go there: no route is kept (at 100,000
        // devices the routes alone were 9 MB).
        if self.places.len() > 1 {
            devices.retain(|d| {
                self.routes
                    .get(&d.key())
                    .is_none_or(|routed| routed == scope)
            });
            for d in &devices {
                self.routes.insert(d.key(), scope.to_string());
            }
        }
        // A team's two-person rule reads the devices' tags: kept only in team mode (the
        // table's rule is read after the first listings have come).
        if self.settings.team.is_some() {
            for d in &devices {
                self.known.insert(d.key(), d.clone());
            }
        }
        self.learn_account(scope, &devices);
        let account = self.place(scope).and_then(|p| p.conn.account.clone());
        for d in devices.iter_mut().filter(|d| d.account.is_none()) {
            d.account = account.as_deref().map(Into::into);
        }
        if service == Service::Panorama {
            for d in &devices {
                match &d.latest {
                    Some(l) => self.status.latest.insert(d.id.to_string(), l.to_string()),
                    None => self.status.latest.remove(d.id.as_str()),
                };
            }
            self.ask_jobs(false);
        }
        for d in &devices {
            self.keep_described(d.key());
        }
        self.emit(Event::DevicesPage(service, devices));
    }

    pub(super) fn listing_done(&mut self, scope: String, service: Service, ids: Vec<String>) {
        self.status.listing.remove(&(scope.clone(), service));
        if self.place(&scope).is_none() {
            return self.listing_ended();
        }
        // A scope whose account no ARN has named yet (Panorama lists none): one appliance's
        // DescribeDevice names it, once every listing of the scope has ended without an ARN
        // (a Snow listing names it for free).
        if let Some(first) = ids.first() {
            self.status
                .probe
                .entry(scope.clone())
                .or_insert_with(|| DeviceKey::new(service, first.clone()));
        }
        let scope_listing = self.status.listing.iter().any(|(s, _)| *s == scope);
        let unknown = self.place(&scope).is_some_and(|p| p.conn.account.is_none());
        // The probe is dropped once the scope's listings end, whether it is needed or not.
        if !scope_listing
            && let Some(key) = self.status.probe.remove(&scope)
            && unknown
            && self.status.describing.insert(key.clone())
        {
            self.spawn_describe(key);
        }
        self.emit(Event::ListingDone(scope, service, ids));
        self.listing_ended();
    }

    pub(super) fn listing_ended(&mut self) {
        if !self.status.listing.is_empty() {
            return;
        }
        if let Some(quiet) = self.status.list_again.take() {
            self.list_everything(quiet);
        }
    }

    /// The first ARN read in a scope names its account (a device's `account`, as read),
    /// which the header then shows.
    fn learn_account(&mut self, scope: &str, devices: &[Device]) {
        let Some(account) = devices.iter().find_map(|d| d.account.as_deref()) else {
            return;
        };
        let Some(place) = self.places.iter_mut().find(|p| p.conn.scope() == scope) else {
            return;
        };
        if place.conn.account.as_deref() == Some(account) {
            return;
        }
        place.conn.account = Some(account.to_string());
        self.emit(Event::Connected(self.connections()));
    }

    pub(super) fn look(&mut self, keys: Vec<DeviceKey>) {
        self.status.in_view = keys.iter().cloned().collect();
        // In the order given (the screen's, top down), so the rows fill in as read.
        for key in keys {
            self.keep_described(key);
        }
    }

    pub(super) fn described(&mut self, key: DeviceKey, device: Result<Device, ApiError>) {
        self.status.describing.remove(&key);
        let gone = match &device {
            Ok(d) => self.place(&d.scope).is_none(),
            Err(_) => self.place_of(&key).is_none(),
        };
        if gone {
            return;
        }
        match device {
            Ok(device) => {
                let scope = device.scope.clone();
                self.learn_account(&scope, std::slice::from_ref(&device));
                // Only what is in view stays described: a read made to learn an account does
                // not stand in for the one a later view (or `fleetdeck run`) asks for.
                if self.status.in_view.contains(&key) {
                    self.status.described.insert(key.clone(), Instant::now());
                }
                self.emit(Event::DeviceUpdated(device));
            }
            Err(e) => self.emit(Event::DescribeFailed(key, e)),
        }
    }

    /// A job was created for an operation: from now on its own id tells its state.
    pub(super) fn follow_job(&mut self, job: String, device: String, op: OpId) {
        self.status.jobs.insert(
            job,
            Watch {
                device,
                op,
                hint: None,
                asked: None,
                known: None,
            },
        );
    }

    /// Asks DescribeDeviceJob about followed jobs whose appliance's LatestDeviceJob changed
    /// since they were last asked about, or that have not been asked about for a while.
    fn ask_jobs(&mut self, by_time_only: bool) {
        let now = Instant::now();
        let due: Vec<String> = self
            .status
            .jobs
            .iter()
            .filter(|(job, _)| !self.status.asking.contains(*job))
            .filter(|(_, w)| w.due(self.status.latest.get(&w.device), now, by_time_only))
            .map(|(job, _)| job.clone())
            .collect();
        for job in due {
            let Some(device) = self.status.jobs.get(&job).map(|w| w.device.clone()) else {
                continue;
            };
            let Some(place) = self.place_of(&DeviceKey::new(Service::Panorama, device)) else {
                continue;
            };
            let Ok(client) = place.clients.panorama().cloned() else {
                continue;
            };
            let limits = place.limits.clone();
            if let Some(w) = self.status.jobs.get_mut(&job) {
                w.asked = Some(now);
                w.hint = self.status.latest.get(&w.device).cloned();
            }
            self.status.asking.insert(job.clone());
            let tx = self.internal.clone();
            self.tasks.spawn(async move {
                limits.panorama_read().await;
                let status = aws::panorama::job_status(&client, &job).await;
                limits.answered(&status, false);
                let _ = tx.send(Internal::JobStatus { job, status });
            });
        }
    }

    pub(super) fn job_status(&mut self, job: String, status: Result<(String, String), ApiError>) {
        self.status.asking.remove(&job);
        let Some(watch) = self.status.jobs.get_mut(&job) else {
            return;
        };
        // Fresh from when it was answered: an ask that waited its turn behind others is not
        // due again sooner for it.
        watch.asked = Some(Instant::now());
        let op = watch.op;
        match status {
            // Throttled (another run or tool in the account): the pace has slowed, and the
            // job is asked again at the next poll. Counted, not shown as a failure.
            Err(e) if e.kind == aws::ErrorKind::Throttled => self.status.throttled += 1,
            Err(e) => self.emit(Event::Failure(format!("DescribeDeviceJob failed: {e}"))),
            Ok((kind, status)) => {
                watch.known = Some(format!("{kind} {status}"));
                let Some(state) = OpState::from_service(&status) else {
                    return self.emit(Event::Failure(format!(
                        "DescribeDeviceJob {job} answered an unknown status {status}"
                    )));
                };
                if state.is_final() {
                    self.status.jobs.remove(&job);
                }
                self.op(op, OpUpdate::new(state).with_id(job));
            }
        }
    }

    /// Polls what is in flight: Panorama through ListDevices pages (hints) and
    /// DescribeDeviceJob (truth), Snow through ListExecutions per task. A poll still running
    /// is not stacked on.
    pub(super) fn poll(&mut self) {
        if !self.status.jobs.is_empty() {
            // Only the scopes with jobs followed are listed for hints.
            let scopes: HashSet<String> = self
                .status
                .jobs
                .values()
                .filter_map(|w| {
                    let key = DeviceKey::new(Service::Panorama, w.device.clone());
                    self.place_of(&key).map(|p| p.conn.scope())
                })
                .collect();
            for scope in scopes {
                // A job's progress read from the listing: the rows show it, not a spinner.
                self.spawn_listing(&scope, Service::Panorama, true);
            }
            self.ask_jobs(true);
        }
        let now = Instant::now();
        let every = self.settings.poll_every;
        let status = &mut self.status;
        let due: Vec<String> = status
            .snow_tasks
            .keys()
            .filter(|t| !status.polling.contains(*t))
            .filter(|t| {
                let p = status.task_polls.entry((*t).clone()).or_insert(TaskPoll {
                    since: now,
                    last: None,
                });
                p.last.is_none_or(|last| {
                    // Half a poll's slack, so a tick a little early still counts.
                    now + every / 2 - last >= task_poll_interval(now - p.since, every)
                })
            })
            .cloned()
            .collect();
        for task in due {
            let Some(place) = self.task_place(&task) else {
                continue;
            };
            let (client, limits) = (place.clients.snow.clone(), place.limits.clone());
            self.status.polling.insert(task.clone());
            if let Some(p) = self.status.task_polls.get_mut(&task) {
                p.last = Some(now);
            }
            let tx = self.internal.clone();
            // Polls take places among the calls under way like any call: a thousand tasks
            // never means a thousand calls at once.
            self.tasks.spawn(async move {
                let _permit = limits.call().await;
                let states = aws::snow::executions(&client, &task).await;
                let _ = tx.send(Internal::Executions { task, states });
            });
        }
    }

    /// Asks about a task at the next poll, whatever its age (after a cancel, say).
    pub(super) fn poll_task_soon(&mut self, task: &str) {
        self.status.polling.remove(task);
        if let Some(p) = self.status.task_polls.get_mut(task) {
            p.last = None;
        }
    }

    pub(super) fn snow_progress(
        &mut self,
        task: String,
        states: Result<Vec<(String, String)>, ApiError>,
    ) {
        self.status.polling.remove(&task);
        let states = match states {
            Ok(s) => s,
            Err(e) => {
                return self.emit(Event::Failure(format!(
                    "ListExecutions for task {task} failed: {e}"
                )));
            }
        };
        let Some(ops) = self.status.snow_tasks.get(&task).cloned() else {
            return;
        };
        let mut all_done = true;
        let mut finished = Vec::new();
        for (device, op) in &ops {
            let was_final = self.book.get(*op).is_some_and(|o| o.state.is_final());
            let Some((_, state)) = states.iter().find(|(d, _)| d == device) else {
                all_done = false;
                continue;
            };
            let Some(next) = OpState::from_service(state) else {
                all_done = false;
                continue;
            };
            all_done &= next.is_final();
            let mut update = OpUpdate::new(next).with_id(task.clone());
            if state == "REJECTED" {
                update = update.with_error(ApiError::new(
                    aws::ErrorKind::Conflict,
                    "REJECTED",
                    "the device was busy with another task's execution, so it did nothing",
                ));
            }
            // Only an execution that ends now changed the device; one ended at an earlier poll
            // has been read already.
            if next.is_final() && !was_final {
                finished.push(device.clone());
            }
            self.op(*op, update);
        }
        // A finished execution changed the device (an unlock): read it again, once.
        for device in finished {
            let key = DeviceKey::new(Service::Snow, device);
            self.status.described.remove(&key);
            self.keep_described(key);
        }
        if all_done {
            self.status.snow_tasks.remove(&task);
            self.status.task_polls.remove(&task);
        }
    }

    /// Describes a device in view whose details are not current, unless that is under way.
    pub(super) fn keep_described(&mut self, key: DeviceKey) {
        if !self.status.in_view.contains(&key)
            || self.status.described.contains_key(&key)
            || !self.status.describing.insert(key.clone())
        {
            return;
        }
        self.spawn_describe(key);
    }

    fn spawn_describe(&mut self, key: DeviceKey) {
        let Some((clients, limits, at)) = self.reach(&key) else {
            self.status.describing.remove(&key);
            return;
        };
        let tx = self.internal.clone();
        self.tasks.spawn(async move {
            let device = read_device(&clients, &limits, &key)
                .await
                .map(|d| at.stamp(d));
            let _ = tx.send(Internal::Described(key, device));
        });
    }

    /// A device's scope: its clients, its pacing, and where it is.
    pub(super) fn reach(&self, key: &DeviceKey) -> Option<(Clients, Arc<Limits>, Where)> {
        let place = self.place_of(key)?;
        Some((
            place.clients.clone(),
            place.limits.clone(),
            Where {
                scope: place.conn.scope(),
                region: place.conn.region.clone(),
            },
        ))
    }

    /// The scope a Snow task was created in: its devices'.
    pub(super) fn task_place(&self, task: &str) -> Option<&super::Place> {
        let (device, _) = self.status.snow_tasks.get(task)?.first()?;
        self.place_of(&DeviceKey::new(Service::Snow, device.clone()))
    }

    pub(super) fn describe(&mut self, key: DeviceKey) {
        let Some((clients, limits, at)) = self.reach(&key) else {
            return self.emit(Event::Details {
                history: Err(no_scope(&key)),
                apps: Err(no_scope(&key)),
                device: Err(no_scope(&key)),
                key,
            });
        };
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let device = read_device(&clients, &limits, &key)
                .await
                .map(|d| at.stamp(d));
            let (history, apps) = match key.service {
                Service::Panorama => match clients.panorama() {
                    Err(e) => (Err(e.clone()), Err(e)),
                    Ok(client) => {
                        limits.panorama_read().await;
                        let history = aws::panorama::history(client, &key.id).await;
                        limits.panorama_read().await;
                        (history, aws::panorama::app_instances(client, &key.id).await)
                    }
                },
                Service::Snow => (
                    aws::snow::history(&clients.snow, &key.id).await,
                    Ok(Vec::new()),
                ),
            };
            let _ = events.send(Event::Details {
                key,
                device,
                history,
                apps,
            });
        });
    }
}

impl Worker {
    /// DescribeDeviceJob or DescribeExecution of one operation, for the operator.
    pub(super) fn inspect(&mut self, key: DeviceKey, resource: String) {
        let Some((clients, limits, _)) = self.reach(&key) else {
            return self.emit(Event::Inspected {
                fields: Err(no_scope(&key)),
                key,
                resource,
            });
        };
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let fields = match key.service {
                Service::Panorama => match clients.panorama() {
                    Err(e) => Err(e),
                    Ok(client) => {
                        limits.panorama_read().await;
                        let _permit = limits.call().await;
                        aws::panorama::describe_job(client, &resource).await
                    }
                },
                Service::Snow => {
                    let _permit = limits.call().await;
                    aws::snow::describe_execution(&clients.snow, &resource, &key.id).await
                }
            };
            let _ = events.send(Event::Inspected {
                key,
                resource,
                fields,
            });
        });
    }
}

/// DescribeDevice for either service: Panorama's paced by its request quota first, then a
/// place among the calls under way, so pacing never holds a place a Snow call could use.
pub(super) async fn read_device(
    clients: &Clients,
    limits: &Limits,
    key: &DeviceKey,
) -> Result<Device, ApiError> {
    match key.service {
        Service::Panorama => {
            let client = clients.panorama()?;
            limits.panorama_read().await;
            let _permit = limits.call().await;
            aws::panorama::describe_device(client, &key.id).await
        }
        Service::Snow => {
            let _permit = limits.call().await;
            aws::snow::describe_device(&clients.snow, &key.id).await
        }
    }
}

/// Which scope a read came from, stamped on the devices it returns.
#[derive(Clone, Debug)]
pub(super) struct Where {
    pub scope: String,
    pub region: String,
}

impl Where {
    pub fn stamp(&self, mut d: Device) -> Device {
        d.scope = self.scope.as_str().into();
        d.region = self.region.as_str().into();
        d
    }
}

/// A device no scope in use lists (its context was switched away).
pub(super) fn no_scope(key: &DeviceKey) -> ApiError {
    ApiError::new(
        aws::ErrorKind::Validation,
        "NoScope",
        format!(
            "{key} is in none of the contexts in use: switch back to its context (:ctx) to reach it"
        ),
    )
}

async fn list(
    at: Where,
    service: Service,
    clients: Clients,
    limits: Arc<Limits>,
    tx: mpsc::UnboundedSender<Internal>,
) {
    let mut token = None;
    let mut ids = Vec::new();
    loop {
        let page = match service {
            Service::Panorama => match clients.panorama() {
                Err(e) => Err(e),
                Ok(client) => {
                    limits.panorama_read().await;
                    aws::panorama::list_devices(client, token.take()).await
                }
            },
            Service::Snow => aws::snow::list_devices(&clients.snow, token.take()).await,
        };
        match page {
            Err(e) => {
                let _ = tx.send(Internal::ListingFailed(at.scope, service, e));
                return;
            }
            Ok((devices, next)) => {
                ids.extend(devices.iter().map(|d| d.id.to_string()));
                let devices = devices.into_iter().map(|d| at.stamp(d)).collect();
                let _ = tx.send(Internal::Page(at.scope.clone(), service, devices));
                token = next;
            }
        }
        if token.is_none() {
            let _ = tx.send(Internal::ListingDone(at.scope, service, ids));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_polled_less_often_as_it_ages() {
        let every = Duration::from_secs(2);
        let at = |s: u64| task_poll_interval(Duration::from_secs(s), every);
        assert_eq!(at(0), every);
        assert_eq!(at(12), every);
        assert_eq!(at(60), Duration::from_secs(10));
        assert_eq!(at(180), TASK_POLL_AT_MOST);
        assert_eq!(at(100_000), TASK_POLL_AT_MOST);
        // A poll period set above the ceiling is kept, not clamped below itself.
        let slow = Duration::from_secs(60);
        assert_eq!(task_poll_interval(Duration::ZERO, slow), slow);
    }
}
