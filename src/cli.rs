//! Every command-line flag, in one place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::sim;

/// Simulated seconds per real second in demo mode: an OTA takes about 20 s.
pub const DEMO_SPEED: f64 = 30.0;

#[derive(Debug, Parser)]
#[command(
    name = "fleetdeck",
    version,
    about = "Operate fleets of AWS Panorama appliances and AWS Snow devices"
)]
pub struct Cli {
    /// Errors print with their backtrace (when RUST_BACKTRACE asks for one).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// How much the log file records.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "info",
        env = "FLEETDECK_LOG_LEVEL"
    )]
    pub log_level: crate::log::LogLevel,
    /// The log file (default: $FLEETDECK_LOG, else fleetdeck.log beside the journal in use,
    /// by default in the XDG state directory). Nothing is logged to the screen.
    #[arg(long, global = true, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub tui: TuiArgs,
}

/// The terminal UI (no subcommand).
#[derive(Debug, Clone, Args)]
pub struct TuiArgs {
    /// Run against a simulator started in-process with the demo fleet; nothing leaves this machine.
    #[arg(long)]
    pub demo: bool,
    /// How many times faster than real time the demo's simulated time runs.
    #[arg(long, default_value_t = DEMO_SPEED, requires = "demo", value_parser = speed)]
    pub demo_speed: f64,
    /// Contexts from the config file, comma-separated (default: FLEETDECK_CONTEXT, then the
    /// file's `current`). In the demo: prod, lab.
    #[arg(
        long,
        alias = "context",
        value_name = "NAME[,NAME]",
        value_delimiter = ','
    )]
    pub ctx: Vec<String>,
    /// AWS profiles, comma-separated: each one a context, in every region of --regions
    /// (default: AWS_PROFILE, then the config file, then "default").
    #[arg(long, alias = "profile", value_name = "P[,P]", value_delimiter = ',', conflicts_with_all = ["demo", "ctx"])]
    pub profiles: Vec<String>,
    /// Regions, comma-separated, for every context (default: the context's own, then
    /// AWS_REGION, then the profile's).
    #[arg(long, alias = "region", value_name = "R[,R]", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// The config file with named contexts (default: $XDG_CONFIG_HOME/fleetdeck/config.toml).
    /// The demo has its own contexts and reads none.
    #[arg(long, value_name = "PATH", env = "FLEETDECK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Send both services' calls here (also: AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_PANORAMA,
    /// AWS_ENDPOINT_URL_SNOW_DEVICE_MANAGEMENT).
    #[arg(long, conflicts_with = "demo")]
    pub endpoint_url: Option<String>,
    /// How many calls may be under way at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Look, never touch: mutating keys and forms are disabled, and no call that changes a
    /// device can leave the process.
    #[arg(long)]
    pub read_only: bool,
    /// The dispatch journal (JSON Lines of intents and outcomes). Default: $FLEETDECK_JOURNAL,
    /// else journal.jsonl in the XDG state directory (~/.local/state/fleetdeck).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<std::path::PathBuf>,
    /// Seconds between background refreshes of the devices list.
    #[arg(long, default_value_t = 30)]
    pub refresh_secs: u64,
    /// Team mode: share leases, plans and words with the team through this DynamoDB table
    /// (also a context's `team` in the config file). Its endpoint comes from aws-config
    /// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_STS); --endpoint-url is the fleet's only.
    #[arg(
        long,
        value_name = "TABLE",
        env = "FLEETDECK_TEAM",
        conflicts_with = "demo"
    )]
    pub team: Option<String>,
    /// Team mode: the AWS profile whose credentials reach the team's table (default: the
    /// context's `team_profile`, then aws-config's default chain).
    #[arg(long, value_name = "PROFILE", env = "FLEETDECK_TEAM_PROFILE")]
    pub team_profile: Option<String>,
    /// Team mode: the table's region (default: the context's `team_region`, then aws-config's).
    #[arg(long, value_name = "REGION", env = "FLEETDECK_TEAM_REGION")]
    pub team_region: Option<String>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// What a rollout's gate watches besides its devices' own state.
#[derive(Debug, Args, Clone, Default)]
pub struct WatchArgs {
    /// Count an OTA'd or rebooted appliance healthy without reading its application
    /// instances (by default each that ran before must be RUNNING again).
    #[arg(long)]
    pub no_app_health: bool,
    /// How long a gate waits for a device (and its applications) to be healthy after its
    /// operation succeeded.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub health_timeout: String,
    /// A CloudWatch alarm (repeatable; also a context's `alarms`): read before each wave,
    /// during bakes and while a wave is in flight; in ALARM it breaches the gate. Its
    /// endpoint comes from aws-config (AWS_ENDPOINT_URL_CLOUDWATCH).
    #[arg(long = "abort-on-alarm", value_name = "NAME")]
    pub alarms: Vec<String>,
    /// An alarm in INSUFFICIENT_DATA breaches the gate too (by default it is reported only).
    #[arg(long)]
    pub alarm_strict: bool,
    /// When devices may be sent to, in their own time zone: "Sat,Sun 02:00-05:00
    /// America/Chicago" (several joined with ';'). A device's own tag overrides it.
    #[arg(long, value_name = "SPEC")]
    pub window: Option<String>,
    /// The device tag whose value is that device's maintenance window (default
    /// maintenance-window; also a context's `window_tag`).
    #[arg(long, value_name = "KEY")]
    pub window_tag: Option<String>,
    /// A device still waiting for its window after this long is skipped.
    #[arg(long, value_name = "DURATION")]
    pub window_timeout: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve a simulated AWS Panorama and AWS Snow Device Management endpoint.
    Sim(Box<SimArgs>),
    /// Carry out one operation without the full-screen UI: the same plan, validation,
    /// dispatch, journal and tracking, with a summary per device.
    Run(Box<RunArgs>),
    /// Read the dispatch journal: its plans, one plan's records, or its raw lines.
    Journal(JournalArgs),
    /// Team mode's table: make it, list its plans and held devices, approve a plan.
    Team(TeamArgs),
    /// Print a shell completion script, e.g. `fleetdeck completions bash >
    /// ~/.local/share/bash-completion/completions/fleetdeck`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `fleetdeck man | man -l -`; with --dir, write one page
    /// per command there.
    Man {
        /// Write fleetdeck.1 and a page per subcommand (fleetdeck-run.1, …) into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The journal to read (default: as for the terminal UI).
    #[arg(long, value_name = "PATH", global = true)]
    pub journal: Option<PathBuf>,
    #[command(subcommand)]
    pub what: JournalCommand,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Every plan: when, what, where, how many devices and sent, open, paused or ended.
    List,
    /// One plan's records, readable.
    Show { plan: String },
    /// The raw JSON Lines of one plan, or of all.
    Export { plan: Option<String> },
}

#[derive(Debug, Args)]
pub struct TeamArgs {
    /// The team's DynamoDB table (also FLEETDECK_TEAM, or a context's `team`).
    #[arg(long, value_name = "TABLE", env = "FLEETDECK_TEAM", global = true)]
    pub team: Option<String>,
    /// The profile whose credentials reach the table (default: aws-config's).
    #[arg(
        long,
        value_name = "PROFILE",
        env = "FLEETDECK_TEAM_PROFILE",
        global = true
    )]
    pub team_profile: Option<String>,
    /// The table's region (default: aws-config's).
    #[arg(
        long,
        value_name = "REGION",
        env = "FLEETDECK_TEAM_REGION",
        global = true
    )]
    pub team_region: Option<String>,
    #[command(subcommand)]
    pub what: TeamCommand,
}

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Make the team's table (on-demand, TTL on `expires`) and store the team's settings;
    /// run again to change the settings.
    Init {
        /// How long a plan's lease lasts without its owner's heartbeat.
        #[arg(long, value_name = "DURATION", default_value = "2m")]
        lease: String,
        /// Plans touching at least min devices the filter matches wait for a second
        /// identity's approval (`fleetdeck team approve PLAN`), e.g. env=prod,min=10.
        #[arg(long, value_name = "FILTER[,min=N]")]
        require_approval: Option<String>,
    },
    /// Live and recent plans across the team: owner, progress, phase.
    Plans {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Devices held by a plan now, with their holder.
    Leases {
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Approve a plan waiting for a second operator (two-person rule).
    Approve { plan: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Quotas {
    /// Panorama's AWS quotas: 5 requests/s, 1 create/s, 50 appliances per region.
    Aws,
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Action {
    /// OTA update (Panorama)
    Ota,
    /// Reboot (Panorama job or Snow task)
    Reboot,
    /// Unlock (Snow)
    Unlock,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Breach {
    /// Stop sending, skip the rest, cancel queued Snow executions (exit 3).
    Abort,
    /// Stop sending and wait for `--promote` or `--abort` from another shell.
    Pause,
}

#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("targets")
        .args(["devices", "all", "filter"])
        .conflicts_with_all(["resume", "discard", "retry"])
))]
#[command(group(
    clap::ArgGroup::new("control")
        .args(["promote", "pause", "abort"])
        .conflicts_with_all(["resume", "discard", "retry", "devices", "all", "filter"])
))]
pub struct RunArgs {
    #[arg(long, value_enum, required_unless_present_any = ["resume", "discard", "retry", "promote", "pause", "abort"])]
    pub action: Option<Action>,
    /// Device ids or names, comma-separated (a device named twice is one target).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Every device of both services.
    #[arg(long)]
    pub all: bool,
    /// Devices whose name, id, tag or status contains this text (as `/` in the UI). An empty
    /// filter is refused: `--all` is the way to say every device.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Finish an unfinished plan from the journal (a quit, a signal or a crash left it):
    /// PLAN, or with no value the only one for the contexts in use.
    #[arg(long, value_name = "PLAN", num_args = 0..=1, default_missing_value = "", conflicts_with = "discard")]
    pub resume: Option<String>,
    /// Close an unfinished plan without sending: what may have been sent is reconciled, the
    /// rest recorded as abandoned.
    #[arg(long, value_name = "PLAN")]
    pub discard: Option<String>,
    /// OTA image version (default: the highest available among the chosen appliances).
    #[arg(long)]
    pub image_version: Option<String>,
    /// Allow OTA updates to a new major version.
    #[arg(long)]
    pub allow_major: bool,
    /// Snow task description.
    #[arg(long)]
    pub description: Option<String>,
    /// Snow task tag, key=value (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Send in waves: sizes as counts or percentages of the plan, the last wave taking the
    /// rest ("1,10%,50%,rest"). Default: all at once.
    #[arg(long, value_name = "SIZES")]
    pub waves: Option<String>,
    /// The gate between waves: how many finished operations may fail (a count, or a
    /// percentage of those finished). Default 0 with several waves.
    #[arg(long, value_name = "N|P%")]
    pub max_failed: Option<String>,
    /// Apply --max-failed once this many operations have finished (default 1).
    #[arg(long, value_name = "N")]
    pub min_done: Option<usize>,
    /// Wait this long after a wave passes before the next (30s, 10m, 1h).
    #[arg(long, value_name = "DURATION")]
    pub bake: Option<String>,
    /// Each wave waits for `fleetdeck run --promote PLAN` from another shell.
    #[arg(long)]
    pub approve: bool,
    /// Abort the rollout when it waits this long for an operator (an approval, or a pause
    /// after a breach) and no promotion comes.
    #[arg(long, value_name = "DURATION")]
    pub approve_timeout: Option<String>,
    /// What a breached gate does.
    #[arg(long, value_enum)]
    pub on_breach: Option<Breach>,
    /// Devices matching this filter go first (the canaries), the rest in order.
    #[arg(long, value_name = "FILTER")]
    pub canary: Option<String>,
    /// Send the devices preflight would skip as certain to fail.
    #[arg(long)]
    pub include_skipped: bool,
    /// Preflight skips a Snow device not heard from for longer than this.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub stale: String,
    /// A new plan of what an ended plan never sent or that failed, with the same operation.
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["resume", "discard"])]
    pub retry: Option<String>,
    /// Let a rollout that waits for approval (or is paused) go on; the process running it
    /// takes the word within seconds.
    #[arg(long, value_name = "PLAN")]
    pub promote: Option<String>,
    /// Pause a running rollout: nothing more is sent until promoted.
    #[arg(long, value_name = "PLAN")]
    pub pause: Option<String>,
    /// Abort a running rollout: nothing more is sent.
    #[arg(long, value_name = "PLAN")]
    pub abort: Option<String>,
    /// Team mode: wait this long for devices another plan holds, instead of leaving them out.
    #[arg(long, value_name = "DURATION")]
    pub wait_for_leases: Option<String>,
    /// Team mode: when the team table cannot be reached this long, stop (exit 4, resumable).
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub team_timeout: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub session: TuiArgs,
}

/// Devices per service and region in an `--account`'s generated fleet when --devices is not given.
pub const ACCOUNT_DEVICES: usize = 12;

/// One `--account KEY:SECRET[:FLEET.toml]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountArg {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub fleet: Option<PathBuf>,
}

impl FromStr for AccountArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        // AWS keys and secrets hold no ':', so anything after the second one is the path.
        let mut parts = s.splitn(3, ':');
        let (Some(key), Some(secret)) = (parts.next(), parts.next()) else {
            return Err(format!(
                "'{s}' is not KEY:SECRET[:FLEET.toml], e.g. AKIDLAB:lab/secret:lab.toml"
            ));
        };
        if key.is_empty() || secret.is_empty() {
            return Err(format!(
                "'{s}' needs both an access key id and a secret before any fleet file"
            ));
        }
        let fleet = match parts.next() {
            Some("") => return Err(format!("'{s}' ends in ':' but names no fleet file")),
            Some(path) => Some(PathBuf::from(path)),
            None => None,
        };
        Ok(Self {
            access_key_id: key.to_string(),
            secret_access_key: secret.to_string(),
            fleet,
        })
    }
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on (keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:4580")]
    pub listen: SocketAddr,
    /// Fleet file (TOML); the built-in demo fleet (assets/demo-fleet.toml) if not given.
    #[arg(long, conflicts_with = "devices")]
    pub fleet: Option<PathBuf>,
    /// Generate N devices per service per region instead of loading a fleet file.
    #[arg(long, value_name = "N")]
    pub devices: Option<usize>,
    /// Regions to simulate, each with its own fleet; devices go to the first unless placed.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1")]
    pub regions: Vec<String>,
    /// How many times faster than real time simulated time runs (above 0, at most 1000000).
    #[arg(long, default_value_t = 1.0, value_parser = speed)]
    pub speed: f64,
    /// Seed for generated ids, timings and faults, so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The access key id requests must be signed with.
    #[arg(long, default_value = sim::DEFAULT_ACCESS_KEY_ID, requires = "secret_access_key")]
    pub access_key_id: String,
    /// The secret access key requests must be signed with.
    #[arg(long, default_value = sim::DEFAULT_SECRET_ACCESS_KEY)]
    pub secret_access_key: String,
    /// Serve one more AWS account, with its own key pair and fleet: the fleet file's (and its
    /// account_id), or else a generated fleet of --devices N (12 without it) per service and
    /// region with account id 2000000000NN for the NNth --account. Repeatable.
    #[arg(long = "account", value_name = "KEY:SECRET[:FLEET.toml]")]
    pub accounts: Vec<AccountArg>,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Random extra latency per request, up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Fraction (0 to 1) of API calls answered 500 InternalServerException.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction (0 to 1) of API calls that take effect, then lose their connection.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Hit exactly one call: the NTH call of OPERATION (CreateJobForDevices, or
    /// panorama:ListDevices for one service's), with KIND fail_before, fail_after, drop_after
    /// or delay:MS. Repeatable.
    #[arg(long = "fault", value_name = "OPERATION:NTH:KIND[:MS]")]
    pub faults: Vec<sim::FaultRule>,
    /// Let an appliance with an unfinished job take another instead of answering 409
    /// ConflictException.
    #[arg(long)]
    pub allow_concurrent_jobs: bool,
    /// Panorama ListDevices answers from a snapshot up to N simulated seconds old.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub stale_secs: u64,
    /// Enforce Panorama's AWS quotas, or lift them.
    #[arg(long, value_enum, default_value = "aws")]
    pub quotas: Quotas,
    /// Log one line per request: service, region, operation, status, latency.
    #[arg(long)]
    pub verbose: bool,
    /// The session token of temporary credentials: requests signed with --access-key-id
    /// must then carry it. Without it, a request that carries a token is refused.
    #[arg(long, value_name = "TOKEN")]
    pub session_token: Option<String>,
    /// Seconds a client may take to send a request's headers, and a kept-alive connection
    /// may sit idle; then it is closed.
    #[arg(long, value_name = "S", default_value_t = sim::DEFAULT_HEADER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send a request's body once its headers are in.
    #[arg(long, value_name = "S", default_value_t = sim::DEFAULT_BODY_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout_secs: u64,
    /// Connections open at once; more are closed as they arrive, with a line on stderr.
    #[arg(long, value_name = "N", default_value_t = sim::DEFAULT_MAX_CONNECTIONS,
          value_parser = connections)]
    pub max_connections: usize,
    /// Leave the application instances of the Panorama appliance NAME (its name or id) in
    /// health ERROR after its next OTA that completes; the OTA itself succeeds. Repeatable.
    #[arg(long, value_name = "NAME")]
    pub unhealthy_after_ota: Vec<String>,
}

/// A speed for simulated time, refused here with the simulator's own rule.
fn speed(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    sim::state::check_speed(value)?;
    Ok(value)
}

fn connections(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number of connections from 1 to 1000000"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_a_key_a_secret_and_maybe_a_fleet_file() {
        let a: AccountArg = "AKIDLAB:lab/secret".parse().unwrap();
        assert_eq!(a.access_key_id, "AKIDLAB");
        assert_eq!(a.secret_access_key, "lab/secret");
        assert_eq!(a.fleet, None);
        let a: AccountArg = "AKIDLAB:s:/tmp/a:b.toml".parse().unwrap();
        assert_eq!(a.fleet, Some(PathBuf::from("/tmp/a:b.toml")));
        for bad in ["AKIDLAB", ":s", "AKIDLAB:", "AKIDLAB:s:"] {
            assert!(bad.parse::<AccountArg>().is_err(), "{bad}");
        }
    }
}
