//! The background task: it owns the SDK clients and the operation engine's book, carries out
//! plans, and polls what is in flight. It talks to the UI only through `Command`s in and
//! `Event`s out.
//!
//! - `protocol`: the commands and events;
//! - `limits`: quota pacing, the bound on calls under way, retries, the stop signal;
//! - `plans`: plans begun, resumed, discarded, paused and ended, and the journal records of each;
//! - `dispatch`: the calls that send operations;
//! - `status`: listing, describing and polling what was sent.

mod cancel;
mod dispatch;
mod limits;
mod plans;
mod rollout;
mod share;
mod snow_send;
mod status;
mod takeover;
mod team;
mod team_asks;
mod unfinished;
mod watching;
mod words;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::aws::{self, ApiError, Clients, Connection, Target};
use crate::fleet::{Device, DeviceKey, Service};
use crate::journal::{self, Journal};
use crate::ops::rollout::Control;
use crate::ops::{Book, OpId, OpUpdate, Tally, short};
use crate::protocol::{Command, Event, Resumable, Settings, Source};

pub use limits::Limits;

/// What the worker's own sub-tasks report back to it.
enum Internal {
    Page(String, Service, Vec<Device>),
    ListingDone(String, Service, Vec<String>),
    ListingFailed(String, Service, ApiError),
    /// Configuration for a new set of scopes is loaded (`:ctx`, `:region`, `:profile`).
    Loaded(Vec<Place>),
    /// A DescribeDevice call ended.
    Described(DeviceKey, Result<Device, ApiError>),
    /// A Panorama job was created for an operation: follow it by its id.
    PanoramaJob {
        job: String,
        device: String,
        op: OpId,
    },
    /// DescribeDeviceJob answered for a followed job.
    JobStatus {
        job: String,
        status: Result<(String, String), ApiError>,
    },
    SnowTask {
        task: String,
        ops: Vec<(String, OpId)>,
    },
    Executions {
        task: String,
        states: Result<Vec<(String, String)>, ApiError>,
    },
    Op(OpId, OpUpdate),
    /// A discard's reconciliation is done.
    Discarded {
        plan: String,
        adopted: Vec<(String, String)>,
        abandoned: Vec<String>,
    },
    /// A CancelTask ended, as the operator is told.
    Canceled {
        task: String,
        message: String,
    },
    /// Something the operator should know, that stops nothing by itself.
    Warn(String),
    /// A team plan's lease written and its devices acquired (or not).
    Leased {
        plan: String,
        result: Result<(crate::team::PlanLease, crate::team::Acquired), ApiError>,
        needs_approval: bool,
    },
    /// A team plan's heartbeat: its renewal, the words left for it, its approval.
    Renewed {
        plan: String,
        renewed: Result<crate::team::PlanLease, crate::team::plans::Renewal>,
        words: Vec<crate::team::Word>,
        approved: bool,
    },
    /// Team mode: what the table said of the account's quota, scope by scope.
    QuotaShared(share::Shared),
    /// The team table connected at start, or why not.
    TeamReady(Result<Arc<crate::team::Team>, String>),
    /// Another host's plan taken over (or why not).
    TakenOver(Result<Box<takeover::Taken>, ApiError>),
    /// A plan's appliances' applications, read before its first send.
    Apps {
        plan: String,
        read: Vec<(
            OpId,
            DeviceKey,
            Result<Vec<crate::fleet::AppInstance>, ApiError>,
        )>,
    },
    /// A rollout's CloudWatch alarms, as read.
    Alarms {
        plan: String,
        read: Result<Vec<crate::fleet::AlarmReading>, ApiError>,
    },
    /// A health check after a success ended, with the device as last read.
    Health {
        op: OpId,
        health: crate::ops::rollout::Health,
        device: Option<Device>,
    },
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

/// One scope (a context in one region): its clients and its own quota pacing and bound on
/// calls under way, as AWS's quotas are per account and region.
pub(crate) struct Place {
    conn: Connection,
    clients: Clients,
    limits: Arc<limits::Limits>,
    /// Whose quota the calls draw on: the credentials, region and endpoint. Scopes loaded
    /// again by a switch keep their pacing, so the service's bucket sees one caller.
    pacing: String,
}

/// The credentials (the demo's key or the profile), region and endpoint a scope calls with.
fn pacing_key(target: &Target, conn: &Connection) -> String {
    let who = match &target.demo_key {
        Some((key, _)) => key.clone(),
        None => conn.profile.clone(),
    };
    format!("{who}|{}|{}", conn.region, conn.panorama_endpoint)
}

/// Loads every target's configuration at once: one slow profile does not hold up the others.
async fn load_places(targets: &[Target], settings: &Settings) -> Vec<Place> {
    let loads = targets
        .iter()
        .map(|t| aws::config::load(t, settings.call_timeout));
    let mut places: Vec<Place> = Vec::new();
    for (target, (clients, conn)) in targets.iter().zip(futures::future::join_all(loads).await) {
        // Two targets that resolve to one scope (a profile's own region named again) are one.
        if places.iter().any(|p| p.conn.scope() == conn.scope()) {
            continue;
        }
        places.push(Place {
            pacing: pacing_key(target, &conn),
            conn,
            clients,
            limits: Arc::new(limits::Limits::new(settings.concurrency)),
        });
    }
    places
}

struct Worker {
    /// Every scope in use, in the order the operator named them.
    places: Vec<Place>,
    /// Which scope each device was read from: where its calls go.
    routes: HashMap<DeviceKey, String>,
    /// Every scope's pacing ever used, by `Place::pacing`: kept across switches.
    pacing: HashMap<String, Arc<limits::Limits>>,
    journal: Option<Arc<Journal>>,
    /// Why nothing can be dispatched (no journal, a broken or foreign one), if so.
    journal_problem: Option<String>,
    book: Book,
    /// Plans from the journal awaiting the operator's word, and as they were offered.
    unfinished: HashMap<String, journal::Unfinished>,
    offered: HashMap<String, Resumable>,
    /// Unfinished plans reaching some scopes in use and some not: not resumable here, but
    /// their devices here are theirs. With the scopes missing.
    elsewhere: HashMap<String, (journal::Unfinished, Vec<String>)>,
    stop_tx: watch::Sender<bool>,
    stop: limits::Stop,
    /// Answered once dispatch has stopped and open plans are recorded as paused.
    shutting_down: Option<oneshot::Sender<Tally>>,
    settings: Settings,
    events: mpsc::UnboundedSender<Event>,
    internal: mpsc::UnboundedSender<Internal>,
    /// Reads: listings, describes, polls.
    tasks: JoinSet<()>,
    /// Sends, each with the operations it carries, so a task that panics fails its rows.
    dispatching: JoinSet<()>,
    dispatch_ops: HashMap<tokio::task::Id, Vec<OpId>>,
    status: status::Status,
    /// CancelTask calls under way, by task: one at a time per task.
    canceling: std::collections::HashSet<String>,
    /// Every plan's rollout (a plan sent all at once is a rollout of one wave).
    rollouts: HashMap<String, rollout::Run>,
    /// Plans closed in the journal by this process.
    ended: std::collections::HashSet<String>,
    /// Plans with an operation ended without its record (a dispatch task panicked): kept open
    /// in the journal for a resume to reconcile.
    unrecorded: std::collections::HashSet<String>,
    /// While a burst of news is taken in, the rollouts it moved: each is advanced once the
    /// burst is in, so a gate reads every end a poll brought, not the first of them.
    moved: Option<std::collections::HashSet<String>>,
    /// Team mode: the team's table, once reached.
    team: Option<Arc<crate::team::Team>>,
    /// Team mode: why the table cannot be used (not reached yet, refused): nothing is sent.
    team_problem: Option<String>,
    /// Team mode: each plan's gate to the table.
    guards: HashMap<String, Arc<team::Guard>>,
    /// Team mode: the lease of a plan just taken over, for its resume.
    taking: Option<crate::team::PlanLease>,
    /// Team mode: writes to the table a stop waits for (releases, ends, decisions, answers).
    team_writes: JoinSet<()>,
    /// A new heartbeat period for the loop to take up (the table's lease, once read).
    heartbeat_every: Option<Duration>,
    /// Team mode with a two-person rule: the devices as last listed, for the rule's filter.
    known: HashMap<DeviceKey, Device>,
    /// CloudWatch, for rollouts' alarms: made at the first reading.
    alarm_client: Arc<tokio::sync::OnceCell<aws_sdk_cloudwatch::Client>>,
    /// Team mode: this host's share of each account's Panorama quota.
    quota: share::Quota,
}

async fn run(
    source: Source,
    settings: Settings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) {
    // Loading configuration may read files or probe for credentials: it happens here, after
    // the first frame, never on the UI's path.
    let places = load_places(&source.targets(&settings), &settings).await;
    let (journal, journal_problem) = plans::open_journal(&settings, &events);
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop) = limits::Stop::new();
    let mut worker = Worker {
        places: Vec::new(),
        routes: HashMap::new(),
        pacing: HashMap::new(),
        journal,
        journal_problem,
        book: Book::default(),
        unfinished: HashMap::new(),
        offered: HashMap::new(),
        elsewhere: HashMap::new(),
        stop_tx,
        stop,
        shutting_down: None,
        settings: settings.clone(),
        events,
        internal,
        tasks: JoinSet::new(),
        dispatching: JoinSet::new(),
        dispatch_ops: HashMap::new(),
        status: status::Status::default(),
        canceling: Default::default(),
        rollouts: HashMap::new(),
        ended: Default::default(),
        unrecorded: Default::default(),
        moved: None,
        team: None,
        team_problem: settings
            .team
            .as_ref()
            .map(|t| format!("the team table {} is being reached", t.table)),
        guards: HashMap::new(),
        team_writes: JoinSet::new(),
        taking: None,
        heartbeat_every: None,
        known: HashMap::new(),
        alarm_client: Default::default(),
        quota: Default::default(),
    };
    if let Some(config) = settings.team.clone() {
        let tx = worker.internal.clone();
        let attempt = settings.call_timeout;
        worker.tasks.spawn(async move {
            let ready = crate::team::Team::connect(&config, attempt)
                .await
                .map(Arc::new);
            let _ = tx.send(Internal::TeamReady(ready));
        });
    }
    // Team mode's heartbeat: three times a lease, from when the table's settings are read.
    let mut heartbeat: Option<tokio::time::Interval> = None;
    worker.use_places(places);
    // Without a view the interval still exists, at a period that never comes round.
    let every = settings.refresh_every;
    let mut refresh = tokio::time::interval(every.unwrap_or(Duration::from_secs(86_400 * 365)));
    refresh.tick().await;
    let mut poll = tokio::time::interval(settings.poll_every);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if let Some(every) = worker.heartbeat_every.take() {
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            heartbeat = Some(beat);
        }
        let beat = async {
            match heartbeat.as_mut() {
                Some(b) => b.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // News from sub-tasks first: a task's last updates are applied before its end is
            // seen, so a shutdown never tallies states older than what was reported.
            biased;
            Some(news) = internal_rx.recv() => {
                worker.moved = Some(Default::default());
                worker.internal(news);
                // What is queued behind it came with it (a poll's ends, a batch's outcomes).
                for _ in 0..BURST {
                    let Ok(more) = internal_rx.try_recv() else { break };
                    worker.internal(more);
                }
                worker.advance_moved();
            }
            command = commands.recv() => match command {
                Some(c) => worker.command(c),
                None => break,
            },
            _ = refresh.tick(), if every.is_some() => worker.refresh_in_background(),
            _ = poll.tick() => {
                worker.poll();
                worker.rollout_tick();
                worker.share_quota();
            }
            _ = beat => worker.heartbeat(),
            Some(_) = worker.team_writes.join_next(), if !worker.team_writes.is_empty() => {}
            Some(joined) = worker.tasks.join_next(), if !worker.tasks.is_empty() => {
                if let Err(e) = joined && e.is_panic() {
                    worker.emit(Event::Failure(format!(
                        "A background read failed unexpectedly: {}",
                        panic_message(e.into_panic())
                    )));
                }
            }
            Some(joined) = worker.dispatching.join_next_with_id(), if !worker.dispatching.is_empty() => {
                worker.dispatch_ended(joined);
            }
        }
    }
    worker.tasks.abort_all();
    worker.dispatching.abort_all();
}

/// How much queued news is taken in before the rollouts it moved are advanced.
const BURST: usize = 256;

/// The text a panic carried.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

impl Worker {
    fn emit(&self, event: Event) {
        crate::log::event(&event, &self.book);
        let _ = self.events.send(event);
    }

    fn place(&self, scope: &str) -> Option<&Place> {
        self.places.iter().find(|p| p.conn.scope() == scope)
    }

    /// Where a device's calls go: the scope it was read from (or a plan named), or the only
    /// scope there is.
    fn place_of(&self, key: &DeviceKey) -> Option<&Place> {
        match self.routes.get(key) {
            Some(scope) => self.place(scope),
            None if self.places.len() == 1 => self.places.first(),
            None => None,
        }
    }

    fn connections(&self) -> Vec<Connection> {
        self.places.iter().map(|p| p.conn.clone()).collect()
    }

    /// Takes a freshly loaded set of scopes: what the old ones listed is forgotten, the
    /// journal's unfinished plans are offered again for the new ones, and all are listed.
    fn use_places(&mut self, mut places: Vec<Place>) {
        // Calls of the old scopes may still be under way, and the service counts them: a
        // scope that was in use keeps its pacing (and its bound on calls under way).
        for p in &mut places {
            p.limits = self
                .pacing
                .entry(p.pacing.clone())
                .or_insert_with(|| p.limits.clone())
                .clone();
        }
        for p in places.iter().filter(|p| p.clients.panorama.is_none()) {
            self.emit(Event::Failure(format!(
                "{} ({}). Snow Device Management keeps working.",
                ApiError::panorama_ended().message,
                p.conn.scope()
            )));
        }
        self.places = places;
        self.routes.clear();
        self.status = status::Status::default();
        self.emit(Event::Connected(self.connections()));
        self.unfinished.clear();
        self.offered.clear();
        self.elsewhere.clear();
        if self.journal.is_some() {
            self.offer_unfinished();
        }
        self.refresh();
    }

    /// `:ctx`, `:region`, `:profile`: load the new scopes, unless something is under way in
    /// the old ones (their answers would have nowhere to go).
    fn switch(&mut self, targets: Vec<Target>) {
        if let Some(plan) = self.book.open_plans().first() {
            return self.emit(Event::Failure(format!(
                "Contexts were not switched: plan {} is still under way in them. Switch once it ends (or abort it).",
                short(plan)
            )));
        }
        let settings = self.settings.clone();
        let tx = self.internal.clone();
        let targets = Source(targets).targets(&settings);
        self.tasks.spawn(async move {
            let places = load_places(&targets, &settings).await;
            let _ = tx.send(Internal::Loaded(places));
        });
    }

    fn command(&mut self, command: Command) {
        if command.is_read() {
            tracing::debug!(command = command.name(), "command");
        } else {
            tracing::info!(command = command.name(), "command");
        }
        match command {
            Command::Refresh => self.refresh(),
            Command::Use(targets) => self.switch(targets),
            Command::Describe(key) => self.describe(key),
            Command::Inspect { key, resource } => self.inspect(key, resource),
            Command::Look(keys) => self.look(keys),
            Command::Dispatch(plan) => self.dispatch(*plan),
            Command::Resume { plan } => self.resume(&plan),
            Command::Discard { plan } => self.discard(&plan),
            Command::CancelTask { task_id } => self.cancel(task_id),
            Command::Promote { plan, by } => {
                self.word(&plan, Control::Promote, by);
            }
            Command::Pause { plan, by } => {
                self.word(&plan, Control::Pause, by);
            }
            Command::Abort { plan, by } => {
                self.word(&plan, Control::Abort, by);
            }
            Command::ReadLeases => self.read_leases(),
            Command::ReadTeam => self.read_team(),
            Command::TeamWord { plan, control, by } => self.team_word(plan, control, by),
            Command::Approve { plan } => self.approve(plan),
            Command::TakeOver { plan } => self.take_over(plan),
            Command::Shutdown(done) => {
                let _ = self.stop_tx.send(true);
                self.shutting_down = Some(done);
                self.finish_shutdown();
            }
        }
    }

    fn internal(&mut self, news: Internal) {
        match news {
            Internal::Page(scope, service, devices) => self.page(&scope, service, devices),
            Internal::ListingDone(scope, service, ids) => self.listing_done(scope, service, ids),
            Internal::ListingFailed(scope, service, error) => {
                self.status.listing.remove(&(scope.clone(), service));
                if self.place(&scope).is_some() {
                    self.emit(Event::ListingFailed(scope, service, error));
                }
                self.listing_ended();
            }
            // A plan begun while the new configuration loaded keeps the scopes it was sent to.
            Internal::Loaded(places) => match self.book.open_plans().first() {
                Some(plan) => self.emit(Event::Failure(format!(
                    "Contexts were not switched: plan {} began in the old ones meanwhile. Switch once it ends.",
                    short(plan)
                ))),
                None => self.use_places(places),
            },
            Internal::Described(key, device) => self.described(key, device),
            Internal::PanoramaJob { job, device, op } => self.follow_job(job, device, op),
            Internal::JobStatus { job, status } => self.job_status(job, status),
            Internal::SnowTask { task, ops } => {
                self.status.snow_tasks.insert(task.clone(), ops);
                // A task that landed after its rollout was aborted (a resend under its token,
                // a late answer) is canceled too.
                self.cancel_if_aborted(&task);
            }
            Internal::Executions { task, states } => self.snow_progress(task, states),
            Internal::Op(op, update) => self.op(op, update),
            Internal::Discarded {
                plan,
                adopted,
                abandoned,
            } => self.discarded(&plan, adopted, abandoned),
            Internal::Canceled { task, message } => {
                self.canceling.remove(&task);
                self.emit(Event::Notice(message));
                // The canceled executions show on the next poll: ask now.
                self.poll_task_soon(&task);
                self.poll();
            }
            Internal::Warn(message) => self.emit(Event::Failure(message)),
            Internal::Health { op, health, device } => self.health_read(op, health, device),
            Internal::Apps { plan, read } => self.apps_read(&plan, read),
            Internal::Alarms { plan, read } => self.alarms_read(&plan, read),
            Internal::Leased {
                plan,
                result,
                needs_approval,
            } => self.leased(&plan, result, needs_approval),
            Internal::Renewed {
                plan,
                renewed,
                words,
                approved,
            } => self.renewed(&plan, renewed, words, approved),
            Internal::TeamReady(ready) => self.team_ready(ready),
            Internal::QuotaShared(shared) => self.quota_shared(shared),
            Internal::TakenOver(taken) => self.taken_over(taken),
        }
    }

    /// Applies an operation's news to the book; only a change the state machine allows is
    /// passed on, and a final state is journaled.
    fn op(&mut self, op: OpId, update: OpUpdate) {
        self.op_with(op, update, true);
    }

    fn op_with(&mut self, op: OpId, update: OpUpdate, record_final: bool) {
        let state = update.state;
        if self.book.apply(op, &update) == crate::ops::Applied::Ignored {
            return;
        }
        if state.is_final() {
            self.team_release(op);
            if record_final {
                self.record_final(op);
            } else if let Some(o) = self.book.get(op) {
                // A row failed without a record (a panic) keeps its plan open in the journal.
                self.unrecorded.insert(o.plan.clone());
            }
        }
        self.emit(Event::Op(op, update));
        self.rollout_op(op, state);
    }

    /// A dispatch task ended. One that panicked fails the rows it carried with the panic's
    /// message; the journal keeps them open, so a resume reconciles what it may have sent.
    fn dispatch_ended(&mut self, joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (id, panic) = match joined {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), e.is_panic().then(|| panic_message(e.into_panic()))),
        };
        let ops = self.dispatch_ops.remove(&id).unwrap_or_default();
        let plans: std::collections::HashSet<String> = ops
            .iter()
            .filter_map(|op| self.book.get(*op).map(|o| o.plan.clone()))
            .collect();
        if let Some(message) = panic {
            let error = ApiError::new(
                aws::ErrorKind::Other,
                "InternalError",
                format!(
                    "dispatch stopped unexpectedly ({message}); what was sent is in the journal, and a resume reconciles it"
                ),
            );
            for op in ops {
                let still_open = self.book.get(op).is_some_and(|o| !o.state.is_final());
                if still_open {
                    let update =
                        OpUpdate::new(crate::ops::OpState::Failed).with_error(error.clone());
                    self.op_with(op, update, false);
                }
            }
        }
        // What a pause held back and a promotion since asked for, or an abort left unsent.
        for plan in plans {
            self.skip_aborted(&plan);
            self.send_unsent(&plan);
            self.advance(&plan);
        }
        self.finish_shutdown();
    }

    /// Why nothing may be dispatched now, if so.
    fn refusal(&self) -> Option<ApiError> {
        if self.settings.read_only {
            return Some(ApiError::new(
                aws::ErrorKind::Validation,
                "ReadOnly",
                "read-only mode: nothing was sent",
            ));
        }
        if self.stop.is_set() {
            return Some(ApiError::new(
                aws::ErrorKind::Validation,
                "ShuttingDown",
                "fleetdeck is stopping: nothing more is sent",
            ));
        }
        if let Some(why) = &self.team_problem {
            return Some(ApiError::new(
                aws::ErrorKind::Unavailable,
                "TeamTableUnavailable",
                why.clone(),
            ));
        }
        if let Some(why) = &self.journal_problem {
            return Some(ApiError::new(
                aws::ErrorKind::Validation,
                "JournalUnavailable",
                why.clone(),
            ));
        }
        match &self.journal {
            None => Some(dispatch::no_journal()),
            Some(j) => j.broken().map(|why| {
                ApiError::new(
                    aws::ErrorKind::Validation,
                    "JournalWriteFailed",
                    format!("the journal cannot be written ({why}); nothing more is sent"),
                )
            }),
        }
    }
}
