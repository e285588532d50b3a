//! The background task: it owns the SDK clients, carries out plans, and polls what is in
//! flight. It talks to the UI only through `Command`s in and `Event`s out.

mod dispatch;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::aws::{self, ApiError, Clients, Connection, Target};
use crate::fleet::{Device, DeviceKey, Plan, Service};
use crate::journal::{self, Journal, Record};

pub type OpId = usize;

#[derive(Debug)]
pub enum Command {
    /// Reload both services' devices. A refresh asked for while one runs is folded into it.
    Refresh,
    /// Read one device's details and history.
    Describe(DeviceKey),
    /// These devices are in view (or wanted by a headless run): keep their DescribeDevice
    /// details current. Devices out of view are listed, never described one by one.
    Look(Vec<DeviceKey>),
    /// Carry out a plan; each target has the result row `OpId`.
    Dispatch {
        plan: Plan,
        ops: Vec<(OpId, DeviceKey)>,
    },
    CancelTask {
        task_id: String,
    },
    /// Carry on with an unfinished plan from the journal; each pending device has a row.
    Resume {
        plan: String,
        ops: Vec<(OpId, DeviceKey)>,
    },
    /// Close an unfinished plan in the journal without sending anything.
    Discard {
        plan: String,
    },
    /// Write down what is still in flight, then answer.
    Shutdown(tokio::sync::oneshot::Sender<()>),
}

/// A result row's news: its state, the job or task id once known, and an error.
#[derive(Debug, Clone, PartialEq)]
pub struct OpUpdate {
    pub state: String,
    pub resource_id: Option<String>,
    pub error: Option<ApiError>,
    /// True once the state is final.
    pub done: bool,
}

#[derive(Debug, Clone)]
pub enum Event {
    /// Configuration is loaded: calls go here.
    Connected(Connection),
    /// A listing of one service begins; pages follow.
    ListingStarted(Service),
    DevicesPage(Service, Vec<Device>),
    /// The listing is complete: these are all the service's devices.
    ListingDone(Service, Vec<String>),
    ListingFailed(Service, ApiError),
    /// A fuller read of one device (DescribeDevice).
    DeviceUpdated(Device),
    /// DescribeDevice of a device in view failed; it keeps what its listing said.
    DescribeFailed(DeviceKey, ApiError),
    Details {
        key: DeviceKey,
        device: Result<Device, ApiError>,
        history: Result<Vec<String>, ApiError>,
    },
    Op(OpId, OpUpdate),
    /// A plan a crash left open, for the same region and endpoint, offered for resume.
    Unfinished(Resumable),
    /// Passing news for the status line.
    Notice(String),
    /// An error the operator must see until dismissed.
    Failure(String),
}

/// An unfinished plan as the operator is asked about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumable {
    pub plan: String,
    /// When it was confirmed, epoch seconds.
    pub at: u64,
    pub action: String,
    /// The devices no job or task is recorded for.
    pub pending: Vec<DeviceKey>,
}

/// Where the clients come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The in-process simulator: endpoint, region, key pair.
    Demo {
        endpoint: String,
        region: String,
        access_key: String,
        secret: String,
    },
    Aws(Target),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    /// Background refresh of the devices list.
    pub refresh_every: Duration,
    /// How often what is in flight is polled.
    pub poll_every: Duration,
    /// Refuse every call that changes a device.
    pub read_only: bool,
    /// Where intents and outcomes are written; without one, nothing is.
    pub journal: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            refresh_every: Duration::from_secs(30),
            poll_every: Duration::from_secs(2),
            read_only: false,
            journal: None,
        }
    }
}

/// Panorama's per-account quotas, kept on our side so polling and dispatch together stay
/// inside them: 5 requests/s overall (we pace at 4), 1 CreateJobForDevices/s.
pub struct Limits {
    pub panorama_all: DefaultDirectRateLimiter,
    pub panorama_create: DefaultDirectRateLimiter,
    pub calls: Semaphore,
}

impl Limits {
    fn new(concurrency: usize) -> Self {
        let per_second = |n: u32| Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            // 4 of the 5 requests a second the quota allows: the SDK's own retries of reads
            // are not paced here and need the headroom.
            panorama_all: RateLimiter::direct(per_second(4)),
            // A little under 1 a second: 30 ms of slack for the clocks and the network, so
            // our pacing and the service's bucket do not disagree at the boundary.
            panorama_create: RateLimiter::direct(
                Quota::with_period(std::time::Duration::from_millis(1030)).unwrap_or(per_second(1)),
            ),
            calls: Semaphore::new(concurrency.max(1)),
        }
    }

    pub async fn panorama_read(&self) {
        self.panorama_all.until_ready().await;
    }
}

/// What the worker's own sub-tasks report back to it.
enum Internal {
    Page(Service, Vec<Device>),
    ListingDone(Service, Vec<String>),
    ListingFailed(Service, ApiError),
    /// A DescribeDevice call ended.
    Described(DeviceKey, Result<Device, ApiError>),
    PanoramaJob {
        device: String,
        op: OpId,
    },
    SnowTask {
        task: String,
        ops: Vec<(String, OpId)>,
    },
    Executions {
        task: String,
        states: Vec<(String, String)>,
    },
    Op(OpId, OpUpdate),
}

pub fn spawn(
    source: Source,
    settings: Settings,
) -> (
    mpsc::UnboundedSender<Command>,
    mpsc::UnboundedReceiver<Event>,
) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(source, settings, cmd_rx, event_tx));
    (cmd_tx, event_rx)
}

/// How the journal names a device: "panorama:<id>" or "snow:<id>".
pub fn device_ref(key: &DeviceKey) -> String {
    match key.service {
        Service::Panorama => format!("panorama:{}", key.id),
        Service::Snow => format!("snow:{}", key.id),
    }
}

pub fn parse_device_ref(text: &str) -> Option<DeviceKey> {
    match text.split_once(':')? {
        ("panorama", id) => Some(DeviceKey::new(Service::Panorama, id)),
        ("snow", id) => Some(DeviceKey::new(Service::Snow, id)),
        _ => None,
    }
}

struct Worker {
    read_only: bool,
    connection: Connection,
    journal: Option<Arc<Journal>>,
    /// Set when a journal was asked for and cannot be written: nothing is dispatched then.
    journal_broken: Option<String>,
    /// Each plan's result rows not yet final, and which plan a row belongs to.
    plans: HashMap<String, HashSet<OpId>>,
    /// Plans from the journal awaiting the operator's word.
    unfinished: HashMap<String, journal::Unfinished>,
    op_plan: HashMap<OpId, (String, DeviceKey)>,
    clients: Clients,
    limits: Arc<Limits>,
    events: mpsc::UnboundedSender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    tasks: JoinSet<()>,
    listing: HashSet<Service>,
    list_again: bool,
    /// Devices whose details are current; Snow's go stale with each full refresh.
    described: HashSet<DeviceKey>,
    /// DescribeDevice calls under way, so none is sent twice.
    describing: HashSet<DeviceKey>,
    /// What the operator can see: only these are described.
    in_view: HashSet<DeviceKey>,
    /// Panorama appliance id → the result row of the job sent to it.
    panorama_jobs: HashMap<String, OpId>,
    /// Snow task id → its targets' result rows.
    snow_tasks: HashMap<String, Vec<(String, OpId)>>,
    polling: HashSet<String>,
}

async fn run(
    source: Source,
    settings: Settings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) {
    // Loading configuration may read files or probe for credentials: it happens here, after
    // the first frame, never on the UI's path.
    let (clients, connection) = match &source {
        Source::Demo {
            endpoint,
            region,
            access_key,
            secret,
        } => aws::config::demo(endpoint, region, access_key, secret, settings.read_only),
        Source::Aws(target) => aws::config::load(target, settings.read_only).await,
    };
    if clients.panorama.is_none() {
        let _ = events.send(Event::Failure(format!(
            "{}. Snow Device Management keeps working.",
            ApiError::panorama_ended().message
        )));
    }
    let (journal, journal_broken) = match &settings.journal {
        None => (None, None),
        Some(path) => match Journal::open(path) {
            Ok(j) => (Some(Arc::new(j)), None),
            Err(e) => {
                let why = format!("{e:#}");
                let _ = events.send(Event::Failure(format!(
                    "The journal cannot be written, so nothing will be dispatched: {why}"
                )));
                (None, Some(why))
            }
        },
    };
    let _ = events.send(Event::Connected(connection.clone()));
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
    let mut worker = Worker {
        read_only: settings.read_only,
        connection,
        journal,
        journal_broken,
        plans: HashMap::new(),
        unfinished: HashMap::new(),
        op_plan: HashMap::new(),
        clients,
        limits: Arc::new(Limits::new(settings.concurrency)),
        events,
        internal,
        tasks: JoinSet::new(),
        listing: HashSet::new(),
        list_again: false,
        described: HashSet::new(),
        describing: HashSet::new(),
        in_view: HashSet::new(),
        panorama_jobs: HashMap::new(),
        snow_tasks: HashMap::new(),
        polling: HashSet::new(),
    };
    if let Some(path) = &settings.journal {
        worker.offer_unfinished(path);
    }
    worker.refresh();
    let mut refresh = tokio::time::interval(settings.refresh_every);
    refresh.tick().await;
    let mut poll = tokio::time::interval(settings.poll_every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(c) => worker.command(c),
                None => break,
            },
            Some(news) = internal_rx.recv() => worker.internal(news),
            _ = refresh.tick() => worker.refresh(),
            _ = poll.tick() => worker.poll(),
            Some(_) = worker.tasks.join_next(), if !worker.tasks.is_empty() => {}
        }
    }
    worker.tasks.abort_all();
}

impl Worker {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Refresh => self.refresh(),
            Command::Describe(key) => self.describe(key),
            Command::Look(keys) => {
                self.in_view = keys.iter().cloned().collect();
                // In the order given (the screen's, top down), so the rows fill in as read.
                for key in keys {
                    self.keep_described(key);
                }
            }
            Command::Dispatch { ops, .. } | Command::Resume { ops, .. }
                if self.refusal().is_some() =>
            {
                let error = self.refusal();
                for (op, _) in ops {
                    let update = OpUpdate {
                        state: "FAILED".into(),
                        resource_id: None,
                        error: error.clone(),
                        done: true,
                    };
                    self.emit(Event::Op(op, update));
                }
            }
            Command::Dispatch { plan, ops } => {
                let id = uuid::Uuid::new_v4().to_string();
                self.begin(&id, &plan, &ops);
                let work = dispatch::work(&plan, &ops);
                dispatch::start(self, &id, plan.operation, plan.snow, work);
            }
            Command::Resume { plan, ops } => self.resume(&plan, ops),
            Command::Discard { plan } => {
                if let Some(u) = self.unfinished.remove(&plan) {
                    let in_flight = u.pending_devices();
                    self.journal(&Record::End {
                        plan,
                        at: journal::now(),
                        in_flight,
                    });
                }
            }
            Command::Shutdown(done) => {
                self.end_all();
                let _ = done.send(());
            }
            Command::CancelTask { task_id } if self.read_only => {
                self.emit(Event::Failure(format!(
                    "Read-only mode: CancelTask {task_id} was not sent"
                )));
            }
            Command::CancelTask { task_id } => self.cancel(task_id),
        }
    }

    fn internal(&mut self, news: Internal) {
        match news {
            Internal::Page(service, devices) => {
                if service == Service::Panorama {
                    self.panorama_progress(&devices);
                }
                for d in &devices {
                    self.keep_described(d.key());
                }
                self.emit(Event::DevicesPage(service, devices));
            }
            Internal::ListingDone(service, ids) => {
                self.listing.remove(&service);
                self.emit(Event::ListingDone(service, ids));
                if self.listing.is_empty() && std::mem::take(&mut self.list_again) {
                    self.refresh();
                }
            }
            Internal::ListingFailed(service, error) => {
                self.listing.remove(&service);
                self.emit(Event::ListingFailed(service, error));
            }
            Internal::Described(key, device) => {
                self.describing.remove(&key);
                match device {
                    Ok(device) => {
                        self.described.insert(key);
                        self.emit(Event::DeviceUpdated(device));
                    }
                    Err(e) => self.emit(Event::DescribeFailed(key, e)),
                }
            }
            Internal::PanoramaJob { device, op } => {
                self.panorama_jobs.insert(device, op);
            }
            Internal::SnowTask { task, ops } => {
                self.snow_tasks.insert(task, ops);
            }
            Internal::Executions { task, states } => self.snow_progress(task, states),
            Internal::Op(op, update) => self.op(op, update),
        }
    }

    /// Why nothing may be dispatched now, if so.
    fn refusal(&self) -> Option<ApiError> {
        if self.read_only {
            return Some(ApiError::new(
                aws::ErrorKind::Validation,
                "ReadOnly",
                "read-only mode: nothing was sent",
            ));
        }
        self.journal_broken.as_ref().map(|why| {
            ApiError::new(
                aws::ErrorKind::Validation,
                "JournalUnavailable",
                why.clone(),
            )
        })
    }

    fn op(&mut self, op: OpId, update: OpUpdate) {
        if update.done {
            self.finish(op);
        }
        self.emit(Event::Op(op, update));
    }

    fn journal(&self, record: &Record) {
        if let Some(j) = &self.journal
            && let Err(e) = j.append(record)
        {
            self.emit(Event::Failure(format!("{e:#}")));
        }
    }

    /// Offers the plans a crash left open, where they were made against this same region and
    /// endpoint (a demo's simulator is gone with its process, so its plans are not offered).
    fn offer_unfinished(&mut self, path: &std::path::Path) {
        let records = match journal::read(path) {
            Ok(r) => r,
            Err(e) => return self.emit(Event::Failure(format!("{e:#}"))),
        };
        for u in journal::unfinished_plans(&records) {
            let Record::Plan {
                plan,
                at,
                action,
                region,
                endpoint,
                ..
            } = &u.plan
            else {
                continue;
            };
            if *region != self.connection.region || *endpoint != self.connection.snow_endpoint {
                continue;
            }
            let pending = u
                .pending_devices()
                .iter()
                .filter_map(|d| parse_device_ref(d))
                .collect();
            self.emit(Event::Unfinished(Resumable {
                plan: plan.clone(),
                at: *at,
                action: action.clone(),
                pending,
            }));
            self.unfinished.insert(plan.clone(), u);
        }
    }

    /// Sends what an unfinished plan never confirmed: appliances reconciled first against the
    /// jobs they had before the crash, Snow batches again under their journaled tokens.
    fn resume(&mut self, plan: &str, ops: Vec<(OpId, DeviceKey)>) {
        let Some(u) = self.unfinished.remove(plan) else {
            return;
        };
        let Record::Plan {
            action,
            image_version,
            allow_major,
            description,
            tags,
            ..
        } = &u.plan
        else {
            return;
        };
        let operation = match (action.as_str(), image_version) {
            ("OTA", Some(v)) => crate::fleet::Operation::Ota {
                image_version: v.clone(),
                allow_major: *allow_major,
            },
            ("reboot", _) => crate::fleet::Operation::Reboot,
            ("unlock", _) => crate::fleet::Operation::Unlock,
            _ => {
                return self.emit(Event::Failure(format!(
                    "The journal's plan {plan} names an unknown action {action}"
                )));
            }
        };
        let snow = crate::fleet::SnowOptions {
            description: description.clone(),
            tags: tags.clone(),
        };
        let op_of = |service: Service, id: &str| {
            ops.iter()
                .find(|(_, k)| k.service == service && k.id == id)
                .map(|(op, _)| *op)
        };
        let work = u
            .pending
            .iter()
            .filter_map(|p| match p {
                journal::Pending::Panorama { device, known_jobs } => {
                    Some(dispatch::Work::Panorama {
                        op: op_of(Service::Panorama, device)?,
                        device: device.clone(),
                        known_jobs: known_jobs.clone(),
                    })
                }
                journal::Pending::Snow { devices, token } => Some(dispatch::Work::Snow {
                    ops: devices
                        .iter()
                        .filter_map(|d| op_of(Service::Snow, d).map(|op| (d.clone(), op)))
                        .collect(),
                    token: token.clone(),
                }),
            })
            .collect();
        self.track(plan, &ops);
        dispatch::start(self, plan, operation, snow, work);
    }

    /// Journals the confirmed plan and remembers its rows.
    fn begin(&mut self, id: &str, plan: &Plan, ops: &[(OpId, DeviceKey)]) {
        let (image_version, allow_major) = match &plan.operation {
            crate::fleet::Operation::Ota {
                image_version,
                allow_major,
            } => (Some(image_version.clone()), *allow_major),
            _ => (None, false),
        };
        self.journal(&Record::Plan {
            plan: id.to_string(),
            at: journal::now(),
            action: plan.operation.label().to_string(),
            image_version,
            allow_major,
            description: plan.snow.description.clone(),
            tags: plan.snow.tags.clone(),
            region: self.connection.region.clone(),
            endpoint: self.connection.snow_endpoint.clone(),
            devices: ops.iter().map(|(_, k)| device_ref(k)).collect(),
        });
        self.track(id, ops);
    }

    fn track(&mut self, id: &str, ops: &[(OpId, DeviceKey)]) {
        self.plans
            .insert(id.to_string(), ops.iter().map(|(op, _)| *op).collect());
        for (op, key) in ops {
            self.op_plan.insert(*op, (id.to_string(), key.clone()));
        }
    }

    /// A row reached its final state; a plan whose rows all did is ended in the journal.
    fn finish(&mut self, op: OpId) {
        let Some((plan, _)) = self.op_plan.remove(&op) else {
            return;
        };
        let Some(rows) = self.plans.get_mut(&plan) else {
            return;
        };
        rows.remove(&op);
        if rows.is_empty() {
            self.plans.remove(&plan);
            self.journal(&Record::End {
                plan,
                at: journal::now(),
                in_flight: Vec::new(),
            });
        }
    }

    /// Leaving: every open plan is ended, naming the devices still in flight.
    fn end_all(&mut self) {
        for (plan, rows) in std::mem::take(&mut self.plans) {
            let in_flight = rows
                .iter()
                .filter_map(|op| self.op_plan.get(op).map(|(_, k)| device_ref(k)))
                .collect();
            self.journal(&Record::End {
                plan,
                at: journal::now(),
                in_flight,
            });
        }
    }

    /// A Panorama appliance's LatestDeviceJob is the job fleetdeck sent it: follow it.
    fn panorama_progress(&mut self, devices: &[Device]) {
        for d in devices {
            let Some(&op) = self.panorama_jobs.get(&d.id) else {
                continue;
            };
            let Some(latest) = &d.latest else { continue };
            let state = latest.rsplit(' ').next().unwrap_or(latest).to_string();
            let done = matches!(state.as_str(), "COMPLETED" | "FAILED");
            if done {
                self.panorama_jobs.remove(&d.id);
            }
            self.op(
                op,
                OpUpdate {
                    state,
                    resource_id: None,
                    error: None,
                    done,
                },
            );
        }
    }

    fn snow_progress(&mut self, task: String, states: Vec<(String, String)>) {
        self.polling.remove(&task);
        let Some(ops) = self.snow_tasks.get(&task).cloned() else {
            return;
        };
        let mut all_done = true;
        let mut finished = Vec::new();
        for (device, op) in &ops {
            let Some((_, state)) = states.iter().find(|(d, _)| d == device) else {
                all_done = false;
                continue;
            };
            let done = !matches!(state.as_str(), "QUEUED" | "IN_PROGRESS");
            all_done &= done;
            if done {
                finished.push(device.clone());
            }
            self.op(
                *op,
                OpUpdate {
                    state: state.clone(),
                    resource_id: None,
                    error: None,
                    done,
                },
            );
        }
        // A finished execution changed the device (an unlock): read it again.
        for device in finished {
            let key = DeviceKey::new(Service::Snow, device);
            self.described.remove(&key);
            self.keep_described(key);
        }
        if all_done {
            self.snow_tasks.remove(&task);
        }
    }

    fn refresh(&mut self) {
        if !self.listing.is_empty() {
            self.list_again = true;
            return;
        }
        // A Snow device's state (locked or not) is only in DescribeDevice: a full refresh
        // reads it again for the devices in view as their pages arrive.
        self.described.retain(|k| k.service == Service::Panorama);
        for service in [Service::Panorama, Service::Snow] {
            if service == Service::Panorama && self.clients.panorama.is_none() {
                continue;
            }
            self.listing.insert(service);
            self.emit(Event::ListingStarted(service));
            let clients = self.clients.clone();
            let limits = self.limits.clone();
            let tx = self.internal.clone();
            self.tasks.spawn(list(service, clients, limits, tx));
        }
    }

    /// Polls what is in flight: Panorama through ListDevices pages (LatestDeviceJob), Snow
    /// through ListExecutions per task. A poll still running is not stacked on.
    fn poll(&mut self) {
        if !self.panorama_jobs.is_empty() && !self.listing.contains(&Service::Panorama) {
            self.listing.insert(Service::Panorama);
            let (clients, limits, tx) = (
                self.clients.clone(),
                self.limits.clone(),
                self.internal.clone(),
            );
            self.tasks
                .spawn(list(Service::Panorama, clients, limits, tx));
        }
        let due: Vec<String> = self
            .snow_tasks
            .keys()
            .filter(|t| !self.polling.contains(*t))
            .cloned()
            .collect();
        for task in due {
            self.polling.insert(task.clone());
            let client = self.clients.snow.clone();
            let tx = self.internal.clone();
            self.tasks.spawn(async move {
                if let Ok(states) = aws::snow::executions(&client, &task).await {
                    let _ = tx.send(Internal::Executions { task, states });
                } else {
                    let _ = tx.send(Internal::Executions {
                        task,
                        states: Vec::new(),
                    });
                }
            });
        }
    }

    /// Describes a device in view whose details are not current, unless that is under way.
    fn keep_described(&mut self, key: DeviceKey) {
        if !self.in_view.contains(&key)
            || self.described.contains(&key)
            || !self.describing.insert(key.clone())
        {
            return;
        }
        let (clients, limits, tx) = (
            self.clients.clone(),
            self.limits.clone(),
            self.internal.clone(),
        );
        self.tasks.spawn(async move {
            let _permit = limits.calls.acquire().await;
            let device = read_device(&clients, &limits, &key).await;
            let _ = tx.send(Internal::Described(key, device));
        });
    }

    fn describe(&mut self, key: DeviceKey) {
        let (clients, limits, events) = (
            self.clients.clone(),
            self.limits.clone(),
            self.events.clone(),
        );
        self.tasks.spawn(async move {
            let device = read_device(&clients, &limits, &key).await;
            let history = match key.service {
                Service::Panorama => match clients.panorama() {
                    Err(e) => Err(e),
                    Ok(client) => {
                        limits.panorama_read().await;
                        aws::panorama::history(client, &key.id).await
                    }
                },
                Service::Snow => aws::snow::history(&clients.snow, &key.id).await,
            };
            let _ = events.send(Event::Details {
                key,
                device,
                history,
            });
        });
    }

    fn cancel(&mut self, task: String) {
        let client = self.clients.snow.clone();
        let events = self.events.clone();
        self.tasks.spawn(async move {
            let event = match aws::snow::cancel_task(&client, &task).await {
                Ok(()) => Event::Notice(format!(
                    "CancelTask {task}: its queued executions are canceled"
                )),
                Err(e) => Event::Failure(format!("CancelTask {task} failed: {e}")),
            };
            let _ = events.send(event);
        });
    }
}

/// DescribeDevice for either service, Panorama's inside its request quota.
async fn read_device(
    clients: &Clients,
    limits: &Limits,
    key: &DeviceKey,
) -> Result<Device, ApiError> {
    match key.service {
        Service::Panorama => {
            let client = clients.panorama()?;
            limits.panorama_read().await;
            aws::panorama::describe_device(client, &key.id).await
        }
        Service::Snow => aws::snow::describe_device(&clients.snow, &key.id).await,
    }
}

async fn list(
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
                let _ = tx.send(Internal::ListingFailed(service, e));
                return;
            }
            Ok((devices, next)) => {
                ids.extend(devices.iter().map(|d| d.id.clone()));
                let _ = tx.send(Internal::Page(service, devices));
                token = next;
            }
        }
        if token.is_none() {
            let _ = tx.send(Internal::ListingDone(service, ids));
            return;
        }
    }
}
