//! `fleetdeck sim`: a local endpoint that speaks AWS Panorama's and AWS Snow Device
//! Management's restJson1 protocols with SigV4, so the official SDKs and the `aws` CLI work
//! against it unchanged. It shares no code with the client side of fleetdeck on purpose:
//! written separately from the API models, a misreading on one side cannot hide on the other.

pub mod auth;
mod check;
mod faults;
pub mod fleet;
mod panorama;
mod quota;
mod server;
mod snow;
pub mod state;
pub mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use faults::{FaultRule, FaultStatus, TargetedFault};
pub use fleet::{DEMO_FLEET, FleetSource};
pub use state::LedgerEntry;
pub use wire::Service;

/// The key pair the simulator accepts unless told otherwise; printed at start.
pub const DEFAULT_ACCESS_KEY_ID: &str = "AKIDFLEETDECKSIM0001";
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "fleetdeck/sim/secret/key/not/for/aws";

/// Whether Panorama's per-account quotas are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaMode {
    /// 5 requests/s, 1 CreateJobForDevices/s and 50 appliances per account and region.
    Aws,
    Off,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub fleet: FleetSource,
    pub regions: Vec<String>,
    /// How many times faster than the wall clock simulated time runs.
    pub speed: f64,
    pub seed: u64,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub latency: Duration,
    pub jitter: Duration,
    /// Fraction of API calls answered 500 InternalServerException.
    pub error_rate: f64,
    /// Fraction of API calls whose connection is dropped after the call took effect.
    pub drop_rate: f64,
    /// Targeted faults, each hitting one call; more can be added while running.
    pub faults: Vec<FaultRule>,
    /// An appliance with an unfinished job refuses another with 409 ConflictException.
    /// Off, it takes the second job as a service without that rule would.
    pub busy_conflicts: bool,
    /// Panorama ListDevices answers from a snapshot of each region's appliances that is up
    /// to this old in simulated time; zero answers from the current state.
    pub stale_reads: Duration,
    pub quotas: QuotaMode,
    pub verbose: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fleet: FleetSource::Toml(DEMO_FLEET.to_string()),
            regions: vec!["us-east-1".to_string()],
            speed: 1.0,
            seed: 1,
            access_key_id: DEFAULT_ACCESS_KEY_ID.to_string(),
            secret_access_key: DEFAULT_SECRET_ACCESS_KEY.to_string(),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            error_rate: 0.0,
            drop_rate: 0.0,
            faults: Vec::new(),
            busy_conflicts: true,
            stale_reads: Duration::ZERO,
            quotas: QuotaMode::Aws,
            verbose: false,
        }
    }
}

/// Everything the simulator's fleets hold, behind one lock: requests are short and the
/// simulated world must change atomically per call.
struct World {
    clock: state::Clock,
    rng: ChaCha8Rng,
    ledger: state::Ledger,
    regions: BTreeMap<String, fleet::Region>,
}

struct Shared {
    config: SimConfig,
    world: Mutex<World>,
    /// Fault rolls use their own stream so that turning faults on leaves ids unchanged.
    faults: Mutex<ChaCha8Rng>,
    targeted: Mutex<faults::Rules>,
    quotas: Mutex<quota::Quotas>,
    /// Signed, routed calls per "service:Operation", throttled ones included: what a bill
    /// or a quota would count.
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        // A handler that panicked left no half-applied change worth refusing service over.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn targeted(&self) -> std::sync::MutexGuard<'_, faults::Rules> {
        self.targeted.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulator. Dropping it stops it.
pub struct SimHandle {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, to pass as the SDKs' endpoint URL.
    pub endpoint: String,
    pub regions: Vec<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// Every accepted mutating call so far, oldest first.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.shared.world().ledger.entries().to_vec()
    }

    /// Calls received per "service:Operation" (signing name), throttled ones included.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.calls().clone()
    }

    /// Adds a targeted fault; its nth call is counted from now. A rule naming an operation
    /// the simulator does not serve, or an nth of 0, is refused.
    pub fn add_fault(&self, rule: FaultRule) -> anyhow::Result<()> {
        rule.check().map_err(anyhow::Error::msg)?;
        self.shared.targeted().add(rule);
        Ok(())
    }

    /// Every targeted fault in the order added, with whether it has fired.
    pub fn faults(&self) -> Vec<FaultStatus> {
        self.shared.targeted().statuses()
    }

    /// When a Panorama job reached (or will reach) its final state, in simulated epoch seconds:
    /// what a test compares with the ledger's times to show that one wave waited for another.
    pub fn job_end(&self, job: &str) -> Option<f64> {
        let world = self.shared.world();
        world.regions.values().find_map(|r| r.panorama.job_end(job))
    }

    /// Moves simulated time forward at once, so a test can step a job through its states.
    pub fn advance_clock(&self, seconds: f64) {
        self.shared.world().clock.advance(seconds);
    }

    /// Stops accepting, closes open connections and waits for the server task to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Builds the fleet, binds the listener and serves until the handle is stopped or dropped.
pub async fn start(config: SimConfig) -> anyhow::Result<SimHandle> {
    anyhow::ensure!(!config.regions.is_empty(), "name at least one region");
    anyhow::ensure!(config.speed > 0.0, "--speed must be greater than 0");
    for (name, p) in [
        ("--error-rate", config.error_rate),
        ("--drop-rate", config.drop_rate),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&p),
            "{name} must be between 0 and 1, not {p}"
        );
    }
    let mut targeted = faults::Rules::default();
    for rule in &config.faults {
        rule.check().map_err(anyhow::Error::msg)?;
        targeted.add(rule.clone());
    }
    let clock = state::Clock::new(config.speed);
    let built = fleet::build(
        &config.fleet,
        &config.regions,
        config.seed,
        clock.start(),
        config.quotas == QuotaMode::Aws,
    )?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let world = World {
        clock,
        // Offset from the fleet's stream so job ids do not repeat device ids.
        rng: ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1)),
        ledger: state::Ledger::default(),
        regions: built.regions,
    };
    let shared = Arc::new(Shared {
        faults: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(2))),
        targeted: Mutex::new(targeted),
        quotas: Mutex::new(quota::Quotas::default()),
        calls: Mutex::new(BTreeMap::new()),
        world: Mutex::new(world),
        config: config.clone(),
    });
    let (shutdown, watch_rx) = watch::channel(false);
    let task = tokio::spawn(server::serve(listener, shared.clone(), watch_rx));
    Ok(SimHandle {
        addr,
        endpoint: format!("http://{addr}"),
        regions: config.regions.clone(),
        access_key_id: config.access_key_id.clone(),
        secret_access_key: config.secret_access_key.clone(),
        account_id: built.account_id,
        shared,
        shutdown,
        task: Some(task),
    })
}
