//! What the UI (or `fleetdeck run`) and the worker say to each other.

use std::time::Duration;

use crate::aws::{ApiError, Connection, Target};
use crate::fleet::{Device, DeviceKey, Operation, Service, SnowOptions};
use crate::ops::Plan;
use crate::ops::rollout::{Cause, Control, Decision, Figures, Gate, Health, Outcome, Phase, Size};
use crate::ops::{OpId, OpUpdate, Tally};

#[derive(Debug)]
pub enum Command {
    /// Reload both services' devices. A refresh asked for while one runs is folded into it.
    Refresh,
    /// Work against these scopes from now on (`:ctx`, `:region`, `:profile`); refused while a
    /// plan is under way.
    Use(Vec<Target>),
    /// Read one device's details and history.
    Describe(DeviceKey),
    /// Read one operation's job (DescribeDeviceJob) or execution (DescribeExecution).
    Inspect { key: DeviceKey, resource: String },
    /// These devices are in view (or wanted by a headless run): keep their DescribeDevice
    /// details current. Devices out of view are listed, never described one by one.
    Look(Vec<DeviceKey>),
    /// Carry out a plan. The engine assigns the operations' ids and answers with
    /// `Event::PlanStarted`, or `Event::PlanRefused`.
    Dispatch(Box<Plan>),
    /// Cancel a Snow task's queued executions (one CancelTask, journaled).
    CancelTask { task_id: String },
    /// Carry on with an unfinished plan from the journal.
    Resume { plan: String },
    /// Close an unfinished plan: reconcile what may have been sent, abandon the rest.
    Discard { plan: String },
    /// A rollout goes on: past an approval, a bake, a pause or a breach the operator accepts.
    /// Refused, and said so, when nothing waits for a promotion.
    Promote { plan: String, by: Cause },
    /// A rollout sends nothing more until promoted or aborted.
    Pause { plan: String, by: Cause },
    /// A rollout stops for good: nothing more is sent, what was not is skipped, queued Snow
    /// executions are canceled.
    Abort { plan: String, by: Cause },
    /// Team mode: take over a plan another host ran and abandoned (named by its id or the
    /// start of one), then resume it: `Event::PlanStarted`, or `Event::PlanRefused`.
    TakeOver { plan: String },
    /// Read the team's plans and held devices (team mode): `Event::TeamPlans`, `Event::Leases`.
    ReadTeam,
    /// A word to a team plan, wherever it runs: through the table unless this process owns
    /// it. Answered by `Event::Answered` (own plan) or a notice or failure naming the owner.
    TeamWord {
        plan: String,
        control: crate::ops::rollout::Control,
        by: crate::ops::rollout::Cause,
    },
    /// Approve a team plan under the two-person rule (team mode).
    Approve { plan: String },
    /// Read who holds which devices in the team's table (team mode): `Event::Leases`.
    ReadLeases,
    /// Stop dispatching, let calls under way answer, record open plans as paused, then answer
    /// with how the operations stand.
    Shutdown(tokio::sync::oneshot::Sender<Tally>),
}

impl Command {
    /// What the log calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Refresh => "refresh",
            Self::Use(_) => "use",
            Self::Describe(_) => "describe",
            Self::Inspect { .. } => "inspect",
            Self::Look(_) => "look",
            Self::Dispatch(_) => "dispatch",
            Self::CancelTask { .. } => "cancel-task",
            Self::Resume { .. } => "resume",
            Self::Discard { .. } => "discard",
            Self::Promote { .. } => "promote",
            Self::Pause { .. } => "pause",
            Self::Abort { .. } => "abort",
            Self::ReadLeases => "read-leases",
            Self::TakeOver { .. } => "take-over",
            Self::ReadTeam => "read-team",
            Self::TeamWord { .. } => "team-word",
            Self::Approve { .. } => "approve",
            Self::Shutdown(_) => "shutdown",
        }
    }

    /// Reads are frequent and say little; the rest is what an operator decided.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::Refresh
                | Self::Describe(_)
                | Self::Inspect { .. }
                | Self::Look(_)
                | Self::ReadLeases
        )
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    /// Configuration is loaded (or an account learned): calls go to these scopes.
    Connected(Vec<Connection>),
    /// A listing of one service in one scope begins; pages follow.
    ListingStarted(String, Service),
    /// Devices read from a scope (each carries its scope).
    DevicesPage(Service, Vec<Device>),
    /// The listing is complete: these are all the service's devices in the scope.
    ListingDone(String, Service, Vec<String>),
    ListingFailed(String, Service, ApiError),
    /// A fuller read of one device (DescribeDevice).
    DeviceUpdated(Device),
    /// DescribeDevice of a device in view failed; it keeps what its listing said.
    DescribeFailed(DeviceKey, ApiError),
    Details {
        key: DeviceKey,
        device: Result<Device, ApiError>,
        history: Result<Vec<String>, ApiError>,
        /// Panorama: its application instances (none for a Snow device).
        apps: Result<Vec<crate::fleet::AppInstance>, ApiError>,
    },
    /// What DescribeDeviceJob or DescribeExecution said of an operation, field by field.
    Inspected {
        key: DeviceKey,
        resource: String,
        fields: Result<Vec<(String, String)>, ApiError>,
    },
    /// A plan was journaled and its operations begun (or resumed).
    PlanStarted {
        plan: String,
        operation: Operation,
        ops: Vec<(OpId, DeviceKey)>,
        resumed: bool,
    },
    /// Nothing of the plan was sent, and why.
    PlanRefused(Refusal),
    Op(OpId, OpUpdate),
    /// How a staged rollout stands, whenever that changes.
    Rollout(RolloutView),
    /// A device's health after its operation succeeded, as a rollout's gate reads it.
    Health(OpId, Health),
    /// What became of a word to a rollout (promote, pause, abort): applied, or refused and
    /// why. Applied means applied to the rollout's state and journaled.
    Answered {
        plan: String,
        control: Control,
        by: Cause,
        applied: bool,
        detail: String,
    },
    /// A plan a crash or a quit left open, for the same region and endpoint.
    Unfinished(Resumable),
    /// How a plan stands with the team's table (team mode): leasing, waiting for approval,
    /// leased, taken over, or the table not answering.
    Team {
        plan: String,
        standing: String,
        /// How long the table has not answered, when it has not.
        down_secs: Option<u64>,
        /// Nothing more may be sent for the plan from here: another host took it over, or
        /// its lease could not be written.
        stopped: bool,
    },
    /// The team's held devices, as just read (team mode).
    Leases(Vec<(DeviceKey, String)>),
    /// Team mode at start: the table reached, and who this process is to it ("ARN on HOST
    /// (process N)"), or why it cannot be used (nothing is sent then).
    TeamJoined(Result<TeamJoin, String>),
    /// The team's plans, live and recent, as just read (team mode).
    TeamPlans(Vec<crate::team::PlanRow>),
    /// Team mode: another plan of the team now shares (or no longer shares) a scope's
    /// Panorama quota with this host's, and the words that say so.
    QuotaShared {
        scope: String,
        others: usize,
        text: String,
    },
    /// Passing news for the status line.
    Notice(String),
    /// An error the operator must see until dismissed. Repeats are folded by the UI.
    Failure(String),
}

/// The team's table as this session reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamJoin {
    pub table: String,
    /// The caller's ARN, from STS.
    pub arn: String,
    pub host: String,
    /// "ARN on HOST (process N)".
    pub who: String,
}

/// A staged rollout as the operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutView {
    pub plan: String,
    /// What the plan does, so that "retry the rest" can make the same plan again.
    pub operation: Operation,
    pub snow: SnowOptions,
    /// The wave sizes as given.
    pub sizes: Vec<Size>,
    /// The gate between waves, if any.
    pub gate: Option<Gate>,
    /// What the gate watches besides the devices.
    pub watch: crate::ops::rollout::Watch,
    /// Devices waiting for their maintenance window, and when it opens (epoch seconds).
    pub waiting: Vec<(DeviceKey, u64)>,
    /// The rollout's CloudWatch alarms as last read.
    pub alarms: Vec<crate::fleet::AlarmReading>,
    /// Each wave's operations, in order.
    pub waves: Vec<Vec<OpId>>,
    /// The wave being sent, or the last one sent.
    pub wave: usize,
    pub phase: Phase,
    /// What the gate reads, including what a resumed plan had finished before.
    pub figures: Figures,
    pub decisions: Vec<Decision>,
    /// Set once the rollout has ended.
    pub outcome: Option<Outcome>,
    /// Devices preflight left out: they make a finished rollout PARTIAL, and a retry of the
    /// rest takes them.
    pub left_out: Vec<DeviceKey>,
}

/// Why a plan was not started.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub error: ApiError,
    /// The unfinished plan it overlaps, to resume or discard first.
    pub overlaps: Option<String>,
}

/// An unfinished plan as the operator is asked about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resumable {
    pub plan: String,
    /// When it was confirmed, epoch seconds.
    pub at: u64,
    pub operation: Operation,
    /// The devices no job or task is recorded for.
    pub pending: Vec<DeviceKey>,
    /// Stopped on purpose (a quit or a signal), rather than cut short by a crash.
    pub paused: bool,
    /// Devices in the plan, and of those sent with no end recorded.
    pub total: usize,
    pub running: usize,
}

/// Where the clients come from: one target per scope (a context in one region).
#[derive(Debug, Clone)]
pub struct Source(pub Vec<Target>);

impl Source {
    /// One scope on a simulator: its endpoint, region and key pair (tests, benchmarks).
    pub fn simulator(endpoint: &str, region: &str, access_key: &str, secret: &str) -> Self {
        Self(vec![Target {
            context: "sim".into(),
            region: Some(region.to_string()),
            endpoint_url: Some(endpoint.to_string()),
            demo_key: Some((access_key.to_string(), secret.to_string())),
            ..Target::default()
        }])
    }

    /// The targets, each read-only where the settings say all are.
    pub fn targets(&self, settings: &Settings) -> Vec<Target> {
        self.0
            .iter()
            .cloned()
            .map(|mut t| {
                t.read_only |= settings.read_only;
                t
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub concurrency: usize,
    /// Background refresh of the devices list; none for a run without a view (`fleetdeck
    /// run`), which reads only what it sent.
    pub refresh_every: Option<Duration>,
    /// How often what is in flight is polled.
    pub poll_every: Duration,
    /// The services listed: both for a view; a run whose targets are all of one service
    /// lists only that one.
    pub services: Vec<Service>,
    /// Refuse every call that changes a device.
    pub read_only: bool,
    /// Where intents and outcomes are written. Without one, nothing is dispatched.
    pub journal: Option<std::path::PathBuf>,
    /// How long one attempt of a call may take before it is given up.
    pub call_timeout: Duration,
    /// How long a device may take to be healthy after its operation succeeded.
    pub health_timeout: Duration,
    /// Team mode: the team's table. Without it, the local journal alone.
    pub team: Option<crate::team::TeamConfig>,
    /// Team mode: wait this long for devices another plan holds, instead of leaving them out.
    pub wait_for_leases: Option<Duration>,
    /// Where a rollout's CloudWatch alarms are read; `None` when no alarm is watched.
    pub alarms_from: Option<crate::aws::cloudwatch::AlarmSource>,
    /// Makes every appliance's dispatch task panic, for the test that proves a panicking task
    /// fails its rows instead of leaving them in flight. Never set otherwise.
    #[doc(hidden)]
    pub panic_in_dispatch_for_tests: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            refresh_every: Some(Duration::from_secs(30)),
            poll_every: Duration::from_secs(2),
            services: vec![Service::Panorama, Service::Snow],
            read_only: false,
            journal: None,
            call_timeout: Duration::from_secs(10),
            health_timeout: Duration::from_secs(600),
            team: None,
            wait_for_leases: None,
            alarms_from: None,
            panic_in_dispatch_for_tests: false,
        }
    }
}
