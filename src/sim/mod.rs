//! `fleetdeck sim`: a local endpoint that speaks AWS Panorama's and AWS Snow Device
//! Management's restJson1 protocols with SigV4, so the official SDKs and the `aws` CLI work
//! against it unchanged. It shares no code with the client side of fleetdeck on purpose:
//! written separately from the API models, a misreading on one side cannot hide on the other.

mod apps;
pub mod auth;
mod check;
mod faults;
pub mod fleet;
mod panorama;
mod quota;
mod routes;
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
pub use fleet::{DEMO_FLEET, DEMO_FLEET_LAB, FleetSource};
pub use state::LedgerEntry;
pub use wire::Service;

/// The key pair the simulator accepts unless told otherwise; printed at start.
pub const DEFAULT_ACCESS_KEY_ID: &str = "AKIDFLEETDECKSIM0001";
pub const DEFAULT_SECRET_ACCESS_KEY: &str = "fleetdeck/sim/secret/key/not/for/aws";
/// A client's headers must be in, and an idle kept-alive connection used again, within this.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// A request's body must be in within this of its headers.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// Connections open at once (well below the file-descriptor limits machines run with).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The key pair of the lab demo fleet's account (`DEMO_FLEET_LAB`, account 210987654321).
pub const DEMO_LAB_ACCESS_KEY_ID: &str = "AKIDFLEETDECKSIM0002";
pub const DEMO_LAB_SECRET_ACCESS_KEY: &str = "fleetdeck/sim/lab/secret/not/for/aws";

/// An account served beside the default one, with its own key pair and fleet.
#[derive(Debug, Clone)]
pub struct SimAccount {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub fleet: FleetSource,
    /// Replaces the fleet's own account id; generated fleets would otherwise all be
    /// 123456789012.
    pub account_id: Option<String>,
}

/// One account a running simulator serves, as a client signs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAccountInfo {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
}

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
    /// The default account's key pair; its fleet is `fleet`.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Accounts besides the default one.
    pub accounts: Vec<SimAccount>,
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
    /// The default account's session token, if its key is a temporary one: its requests
    /// must then carry it, and without one here a request that carries a token is refused.
    pub session_token: Option<String>,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle before the next request: after it, the connection is closed.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body once its headers are in.
    pub body_timeout: Duration,
    /// Connections open at once; one more is closed at once, with a line on stderr.
    pub max_connections: usize,
    /// Panorama appliances, by name or id, whose application instances fail to start (health
    /// ERROR) after their next OTA that completes; the OTA itself succeeds. The OTA after it
    /// installs them anew. A name no appliance has, or one that runs no applications, is
    /// refused at start.
    pub unhealthy_after_ota: Vec<String>,
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
            accounts: Vec::new(),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            error_rate: 0.0,
            drop_rate: 0.0,
            faults: Vec::new(),
            busy_conflicts: true,
            stale_reads: Duration::ZERO,
            quotas: QuotaMode::Aws,
            verbose: false,
            session_token: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            unhealthy_after_ota: Vec::new(),
        }
    }
}

/// Everything the simulator's fleets hold, behind one lock: requests are short and the
/// simulated world must change atomically per call.
struct World {
    clock: state::Clock,
    /// Job, task and execution ids of every account: one stream keeps them unique.
    rng: ChaCha8Rng,
    ledger: state::Ledger,
    /// In the order of `Shared::keyring`, the default account first.
    accounts: Vec<Account>,
}

/// One account's fleets, per region.
struct Account {
    id: String,
    regions: BTreeMap<String, fleet::Region>,
}

struct Shared {
    config: SimConfig,
    keyring: auth::Keyring,
    /// Every account, in keyring order.
    accounts: Vec<SimAccountInfo>,
    world: Mutex<World>,
    /// Fault rolls use their own stream so that turning faults on leaves ids unchanged.
    faults: Mutex<ChaCha8Rng>,
    targeted: Mutex<faults::Rules>,
    quotas: Mutex<quota::Quotas>,
    /// Signed, routed calls per "service:Operation", throttled ones included: what a bill
    /// or a quota would count.
    calls: Mutex<BTreeMap<String, u64>>,
    /// Of those, the calls refused with ThrottlingException.
    throttled: Mutex<BTreeMap<String, u64>>,
}

impl Shared {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        // A handler that panicked left no half-applied change worth refusing service over.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn throttled(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.throttled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The id of the account at `index` in the keyring.
    fn account_id(&self, index: usize) -> &str {
        self.accounts
            .get(index)
            .map_or("", |a| a.account_id.as_str())
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
    /// Every account served, the default one first.
    pub accounts: Vec<SimAccountInfo>,
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

    /// Calls refused with ThrottlingException, per "service:Operation".
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.shared.throttled().clone()
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
        world
            .accounts
            .iter()
            .flat_map(|a| a.regions.values())
            .find_map(|r| r.panorama.job_end(job))
    }

    /// Moves simulated time forward at once, so a test can step a job through its states.
    /// Refused, as the admin endpoint refuses it, unless finite and positive.
    pub fn advance_clock(&self, seconds: f64) -> Result<(), String> {
        self.shared.world().clock.advance(seconds)
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

/// A region as AWS names them: lowercase words and a number, dash-separated (us-east-1,
/// ap-southeast-2, us-gov-west-1).
fn check_region(name: &str) -> Result<(), String> {
    let parts: Vec<&str> = name.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return Err("name at least one region".into());
    };
    let ok = words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a region name (such as us-east-1)"))
    }
}

/// What to tell the operator when the simulator listens beyond this machine: its
/// credentials are printed in the clear, and anyone who reaches the port can use them.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "warning: the simulator listens on {addr}, beyond this machine, and the credentials \
             below are printed in the clear: anyone who can reach it can use them. \
             Use --listen 127.0.0.1:PORT to keep it local."
        )
    })
}

/// Builds the fleet, binds the listener and serves until the handle is stopped or dropped.
pub async fn start(config: SimConfig) -> anyhow::Result<SimHandle> {
    anyhow::ensure!(!config.regions.is_empty(), "name at least one region");
    state::check_speed(config.speed).map_err(|e| anyhow::anyhow!("--speed: {e}"))?;
    for region in &config.regions {
        check_region(region).map_err(|e| anyhow::anyhow!("--regions: {e}"))?;
    }
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
    let (mut accounts, infos) = build_accounts(&config, clock.start())?;
    apps::arm_failures(&mut accounts, &config.unhealthy_after_ota)?;
    let mut keyring = auth::Keyring::default();
    for (i, info) in infos.iter().enumerate() {
        // Only the default account can be given a session token (`--session-token`).
        let token = if i == 0 {
            config.session_token.as_deref()
        } else {
            None
        };
        keyring.add_with_token(&info.access_key_id, &info.secret_access_key, token);
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let world = World {
        clock,
        // Offset from the fleet's stream so job ids do not repeat device ids.
        rng: ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1)),
        ledger: state::Ledger::default(),
        accounts,
    };
    let shared = Arc::new(Shared {
        keyring,
        accounts: infos.clone(),
        faults: Mutex::new(ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(2))),
        targeted: Mutex::new(targeted),
        quotas: Mutex::new(quota::Quotas::default()),
        calls: Mutex::new(BTreeMap::new()),
        throttled: Mutex::new(BTreeMap::new()),
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
        account_id: infos[0].account_id.clone(),
        accounts: infos,
        shared,
        shutdown,
        task: Some(task),
    })
}

/// Builds every account's fleets, the default account first, and refuses two accounts that
/// share an account id or an access key, or a device id that appears twice.
fn build_accounts(
    config: &SimConfig,
    now: f64,
) -> anyhow::Result<(Vec<Account>, Vec<SimAccountInfo>)> {
    let default = SimAccount {
        access_key_id: config.access_key_id.clone(),
        secret_access_key: config.secret_access_key.clone(),
        fleet: config.fleet.clone(),
        account_id: None,
    };
    let mut accounts = Vec::new();
    let mut infos: Vec<SimAccountInfo> = Vec::new();
    for (index, account) in std::iter::once(&default)
        .chain(&config.accounts)
        .enumerate()
    {
        if let Some(id) = &account.account_id {
            anyhow::ensure!(
                id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
                "account id '{id}' must be 12 digits, as AWS's are"
            );
        }
        anyhow::ensure!(
            infos
                .iter()
                .all(|i| i.access_key_id != account.access_key_id),
            "access key {} is given to two accounts: each account needs its own",
            account.access_key_id
        );
        let built = fleet::build(
            &account.fleet,
            account.account_id.as_deref(),
            &config.regions,
            account_seed(config.seed, index),
            now,
            config.quotas == QuotaMode::Aws,
        )
        // The default account's errors read as they always have; another's name its key.
        .map_err(|e| match index {
            0 => e,
            _ => anyhow::anyhow!("the fleet of access key {}: {e:#}", account.access_key_id),
        })?;
        if let Some(other) = infos.iter().find(|i| i.account_id == built.account_id) {
            anyhow::bail!(
                "account {} is served twice (access keys {} and {}): give each account its own id",
                built.account_id,
                other.access_key_id,
                account.access_key_id
            );
        }
        infos.push(SimAccountInfo {
            access_key_id: account.access_key_id.clone(),
            secret_access_key: account.secret_access_key.clone(),
            account_id: built.account_id.clone(),
        });
        accounts.push(Account {
            id: built.account_id,
            regions: built.regions,
        });
    }
    check_unique_ids(&accounts)?;
    Ok((accounts, infos))
}

/// The seed of an account's fleet: the default account keeps `seed` (so its ids are what
/// they always were); each other account gets a stream far from it and from the job and
/// fault streams at `seed + 1` and `seed + 2`.
fn account_seed(seed: u64, index: usize) -> u64 {
    const STRIDE: u64 = 0x9E37_79B9_7F4A_7C15;
    seed.wrapping_add(STRIDE.wrapping_mul(index as u64))
}

/// Device ids are unique across AWS; a fleet file copied into a second account would repeat
/// them and let one account's calls reach what looks like another's device.
fn check_unique_ids(accounts: &[Account]) -> anyhow::Result<()> {
    let mut seen: std::collections::HashMap<&str, (&str, &str)> = Default::default();
    for account in accounts {
        for (region, fleet) in &account.regions {
            let ids = fleet.panorama.device_ids().chain(fleet.snow.device_ids());
            for id in ids {
                if let Some((a, r)) = seen.insert(id, (&account.id, region)) {
                    anyhow::bail!(
                        "device {id} is in account {a} ({r}) and again in account {} ({region}): \
                         device ids must be unique; give one fleet file other ids or none",
                        account.id
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_address_beyond_loopback_warns() {
        for beyond in ["0.0.0.0:4580", "[::]:4580", "192.168.1.20:4580"] {
            let warning = exposure_warning(beyond.parse().unwrap()).expect(beyond);
            assert!(warning.contains("in the clear"), "{warning}");
            assert!(warning.contains("--listen 127.0.0.1"), "{warning}");
        }
        for local in ["127.0.0.1:4580", "[::1]:4580", "127.0.0.2:0"] {
            assert_eq!(exposure_warning(local.parse().unwrap()), None, "{local}");
        }
    }

    #[test]
    fn region_names_are_checked_as_aws_spells_them() {
        for good in ["us-east-1", "ap-southeast-2", "us-gov-west-1"] {
            assert!(check_region(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "bogus region",
            "us-east-",
            "US-EAST-1",
            "useast1",
            "us-east-1a",
        ] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
    }

    fn lab(key: &str, account_id: Option<&str>) -> SimAccount {
        SimAccount {
            access_key_id: key.into(),
            secret_access_key: "s".into(),
            fleet: FleetSource::Generated {
                panorama: 2,
                snow: 2,
            },
            account_id: account_id.map(str::to_string),
        }
    }

    fn config(accounts: Vec<SimAccount>) -> SimConfig {
        SimConfig {
            accounts,
            ..SimConfig::default()
        }
    }

    #[test]
    fn accounts_are_listed_default_first_with_their_ids() {
        let c = config(vec![lab("AKIDB", Some("200000000001"))]);
        let (accounts, infos) = build_accounts(&c, 0.0).unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].access_key_id, DEFAULT_ACCESS_KEY_ID);
        assert_eq!(infos[0].account_id, "123456789012");
        assert_eq!(infos[1].access_key_id, "AKIDB");
        assert_eq!(infos[1].account_id, "200000000001");
        assert_eq!(accounts[1].id, "200000000001");
    }

    #[test]
    fn a_shared_key_or_account_id_is_refused() {
        let err = build_accounts(
            &config(vec![lab(DEFAULT_ACCESS_KEY_ID, Some("200000000001"))]),
            0.0,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("each account needs its own"),
            "{err}"
        );
        // A generated fleet's own account id is the default account's.
        let err = build_accounts(&config(vec![lab("AKIDB", None)]), 0.0)
            .err()
            .unwrap();
        assert!(err.to_string().contains("served twice"), "{err}");
        let err = build_accounts(&config(vec![lab("AKIDB", Some("2000"))]), 0.0)
            .err()
            .unwrap();
        assert!(err.to_string().contains("12 digits"), "{err}");
    }

    #[test]
    fn a_fleet_file_repeated_in_another_account_is_refused() {
        let err = build_accounts(
            &config(vec![SimAccount {
                access_key_id: "AKIDB".into(),
                secret_access_key: "s".into(),
                fleet: FleetSource::Toml(DEMO_FLEET.into()),
                account_id: Some("200000000001".into()),
            }]),
            0.0,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("must be unique"), "{err}");
    }
}
