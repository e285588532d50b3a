//! One fleet across regions and accounts, headless: `--profiles` × `--regions` against a
//! simulator serving two accounts (each its own key pair) in two regions, and named contexts
//! from a config file. The simulator's ledger is the judge of what was sent where.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod common;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

use fleetdeck::sim::{FleetSource, QuotaMode, SimAccount, SimConfig, SimHandle};

const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];
const LAB_ACCOUNT: &str = "210987654321";

/// One account's fleet: in each region, `panorama` online appliances and `snow` reachable
/// Snow devices (ids generated from the account's own stream).
fn fleet(account: &str, panorama: usize, snow: usize) -> String {
    let mut toml = format!("account_id = \"{account}\"\n[panorama]\nimages = [\"5.0.10\"]\n");
    for region in REGIONS {
        for i in 0..panorama {
            toml.push_str(&format!(
                "[[panorama.devices]]\nname = \"{account}-{region}-cam-{i}\"\nsoftware = \"5.0.10\"\nregion = \"{region}\"\n"
            ));
        }
        for _ in 0..snow {
            toml.push_str(&format!(
                "[[snow.devices]]\nsoftware = \"7.1.0\"\nregion = \"{region}\"\n"
            ));
        }
    }
    toml
}

/// Two accounts, each with `panorama` appliances and `snow` Snow devices in both regions.
async fn sim(panorama: usize, snow: usize) -> SimHandle {
    fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet("123456789012", panorama, snow)),
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        accounts: vec![SimAccount {
            access_key_id: "AKIDFLEETDECKLAB0002".into(),
            secret_access_key: "lab/secret".into(),
            fleet: FleetSource::Toml(fleet(LAB_ACCOUNT, panorama, snow)),
            account_id: None,
        }],
        quotas: QuotaMode::Aws,
        speed: 30.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

/// A scratch directory with an AWS credentials file naming each account's key pair as a
/// profile (`prod`, `lab`, and `broken` with a wrong secret), and a fleetdeck config file.
struct Home {
    dir: PathBuf,
}

impl Home {
    fn new(sim: &SimHandle, config: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fleetdeck-ctx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let lab = &sim.accounts[1];
        let credentials = format!(
            "[prod]\naws_access_key_id = {}\naws_secret_access_key = {}\n\
             [lab]\naws_access_key_id = {}\naws_secret_access_key = {}\n\
             [broken]\naws_access_key_id = {}\naws_secret_access_key = not-the-secret\n",
            sim.access_key_id,
            sim.secret_access_key,
            lab.access_key_id,
            lab.secret_access_key,
            lab.access_key_id,
        );
        std::fs::write(dir.join("credentials"), credentials).unwrap();
        std::fs::write(dir.join("config.toml"), config).unwrap();
        Self { dir }
    }

    fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    /// `fleetdeck run` with nothing from the machine: these files, this simulator.
    fn run(&self, sim: &SimHandle, args: &[&str]) -> Output {
        self.command(sim, args).output().expect("fleetdeck runs")
    }

    fn command(&self, sim: &SimHandle, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
        c.arg("run")
            .args(["--endpoint-url", &sim.endpoint])
            .args(args)
            .env("FLEETDECK_JOURNAL", self.journal())
            .env("FLEETDECK_CONFIG", self.dir.join("config.toml"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("credentials"))
            .env("AWS_CONFIG_FILE", self.dir.join("aws-config"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("FLEETDECK_CONTEXT")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "a JSON summary ({e}); stdout: {} stderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// Every appliance each account has in each region, as its own key lists it.
async fn appliances(sim: &SimHandle) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for account in &sim.accounts {
        for region in REGIONS {
            let client = common::panorama_as(sim, account, region);
            let listed = client.list_devices().send().await.expect("ListDevices");
            for d in listed.devices() {
                out.push((
                    account.account_id.clone(),
                    region.to_string(),
                    d.device_id().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_appliance_in_two_regions_and_two_accounts_is_rebooted_exactly_once() {
    let sim = sim(3, 12).await;
    let home = Home::new(&sim, "");
    let out = home.run(
        &sim,
        &[
            "--profiles",
            "prod,lab",
            "--regions",
            "us-east-1,us-west-2",
            "--action",
            "reboot",
            "--all",
            "--yes",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fleet = appliances(&sim).await;
    assert_eq!(fleet.len(), 12, "3 appliances × 2 regions × 2 accounts");
    // The ledger: one create per appliance, signed by its own account in its own region.
    let ledger = sim.ledger();
    let mut creates: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for e in ledger
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
    {
        creates
            .entry(e.device_id.as_str())
            .or_default()
            .push((e.account.as_str(), e.region.as_str()));
    }
    for (account, region, id) in &fleet {
        assert_eq!(
            creates.get(id.as_str()).map(Vec::as_slice),
            Some(&[(account.as_str(), region.as_str())][..]),
            "{id} in {account}/{region}"
        );
    }
    assert_eq!(creates.len(), fleet.len());
    // Snow: 12 devices per account and region, in tasks of at most 10 that never mix scopes.
    let tasks: Vec<_> = ledger
        .iter()
        .filter(|e| e.operation == "CreateTask")
        .collect();
    let mut per_task: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for e in &tasks {
        per_task
            .entry(e.resource_id.as_str())
            .or_default()
            .push((e.account.as_str(), e.region.as_str()));
    }
    for (task, scopes) in &per_task {
        assert!(
            scopes.len() <= 10,
            "task {task} has {} targets",
            scopes.len()
        );
        assert!(
            scopes.windows(2).all(|w| w[0] == w[1]),
            "task {task} spans {scopes:?}"
        );
    }
    assert_eq!(tasks.len(), 48, "every Snow device targeted once");
    assert_eq!(
        per_task.len(),
        8,
        "two tasks (10 + 2) per account and region"
    );
    // The summary names each device's region, account and context.
    let s = summary(&out);
    let rows = s["devices"].as_array().expect("devices");
    assert_eq!(rows.len(), 60);
    for (account, region, id) in &fleet {
        let row = rows
            .iter()
            .find(|r| r["device"] == id.as_str())
            .expect("a row per appliance");
        assert_eq!(row["region"], region.as_str());
        assert_eq!(row["account"], account.as_str());
        let context = if account == LAB_ACCOUNT {
            "lab"
        } else {
            "prod"
        };
        assert_eq!(row["context"], context);
        assert_eq!(row["state"], "COMPLETED");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_that_cannot_list_is_named_with_its_fix_and_nothing_is_sent() {
    let sim = sim(2, 0).await;
    let home = Home::new(&sim, "");
    let out = home.run(
        &sim,
        &[
            "--profiles",
            "prod,broken",
            "--regions",
            "us-east-1",
            "--action",
            "reboot",
            "--all",
            "--yes",
        ],
    );
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("broken/us-east-1"), "{stderr}");
    assert!(
        stderr.contains("The secret key of profile broken does not match"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("prod/us-east-1:"),
        "the working context is not blamed: {stderr}"
    );
    assert!(
        sim.ledger().is_empty(),
        "nothing was sent: {:?}",
        sim.ledger()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn named_contexts_from_the_config_file_reach_their_own_account_and_regions() {
    let sim = sim(2, 1).await;
    let config = "current = \"prod\"\n\
                  [contexts.prod]\nprofile = \"prod\"\nregions = [\"us-east-1\"]\n\
                  [contexts.lab]\nprofile = \"lab\"\nregions = [\"us-west-2\"]\nlabel = \"lab\"\n";
    let home = Home::new(&sim, config);
    // `current` in the file: prod in us-east-1 only.
    let out = home.run(
        &sim,
        &["--action", "reboot", "--all", "--yes", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = summary(&out)["devices"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter()
            .all(|r| r["region"] == "us-east-1" && r["context"] == "prod"),
        "{rows:?}"
    );
    // A flag beats the file: --ctx lab reaches the lab account in us-west-2.
    let before = sim.ledger().len();
    let out = home.run(
        &sim,
        &[
            "--ctx", "lab", "--action", "reboot", "--all", "--yes", "--output", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sent: Vec<_> = sim.ledger().into_iter().skip(before).collect();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|e| e.account == LAB_ACCOUNT && e.region == "us-west-2"),
        "{sent:?}"
    );
    // A context the file does not define is named, with the ones it does.
    let out = home.run(&sim, &["--ctx", "nope", "--action", "reboot", "--all"]);
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("no context is named nope (known: lab, prod)"),
        "{stderr}"
    );
}

fn creates(sim: &SimHandle) -> HashMap<String, Vec<(String, String)>> {
    let mut per: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for e in sim.ledger() {
        if e.operation == "CreateJobForDevices" {
            per.entry(e.device_id.clone())
                .or_default()
                .push((e.account.clone(), e.region.clone()));
        }
    }
    per
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_across_two_accounts_and_regions_resumes_each_device_in_its_own_scope() {
    // AWS quotas: a create a second per account and region, so the kill lands mid-plan.
    let sim = sim(4, 0).await;
    let home = Home::new(&sim, "");
    let scopes = ["--profiles", "prod,lab", "--regions", "us-east-1,us-west-2"];
    let mut args = scopes.to_vec();
    args.extend(["--action", "reboot", "--all", "--yes"]);
    let mut child = home.command(&sim, &args).spawn().expect("fleetdeck starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while creates(&sim).len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "5 creates were not sent"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ended early: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let sent = creates(&sim).len();
    assert!(sent < 16, "the kill came too late: {sent}");

    // Resumed with one context only, the plan is not offered: its other scopes are not in use.
    let out = home.run(
        &sim,
        &[
            "--profiles",
            "prod",
            "--regions",
            "us-east-1,us-west-2",
            "--resume",
            "--yes",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("no unfinished plan"),
        "{}",
        text(&out.stderr)
    );

    // Nor may a new plan there take its devices: it would send them twice.
    let before = sim.ledger().len();
    let out = home.run(
        &sim,
        &[
            "--profiles",
            "prod",
            "--regions",
            "us-east-1,us-west-2",
            "--action",
            "reboot",
            "--all",
            "--yes",
        ],
    );
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("also reaches lab/"), "{stderr}");
    assert_eq!(sim.ledger().len(), before, "nothing was sent");

    let mut args = scopes.to_vec();
    args.extend(["--resume", "--yes", "--output", "json"]);
    let out = home.run(&sim, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Every appliance exactly once, each in its own account and region.
    let per = creates(&sim);
    let fleet = appliances(&sim).await;
    assert_eq!(per.len(), fleet.len(), "{per:?}");
    for (account, region, id) in &fleet {
        assert_eq!(
            per.get(id),
            Some(&vec![(account.clone(), region.clone())]),
            "{id}"
        );
    }
}
