//! Team mode against a real DynamoDB and STS (the moto server on loopback) and the simulator:
//! hosts are processes with journals of their own, identities are moto IAM users. Every
//! device's operations are counted through the services' own APIs.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
mod headless;
mod team;

use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};
use headless::text;
use team::Moto;

/// The team's table, its server and the identities that reach it.
struct Team {
    moto: Moto,
    creds: PathBuf,
    table: String,
}

impl Team {
    /// A moto server with two IAM users, alice and bob, and the table made by alice.
    fn new() -> Self {
        let moto = Moto::start();
        let alice = moto.user("alice");
        let bob = moto.user("bob");
        let creds = team::credentials(&[("alice", alice), ("bob", bob)]);
        let t = Self {
            moto,
            creds,
            table: "fleet-team".into(),
        };
        let made = t.team("alice", &["init", "--lease", "6s"]);
        assert!(made.status.success(), "{}", text(&made.stderr));
        t
    }

    /// Points a fleetdeck command at the team's table as `who`, with a home of its own.
    fn env(&self, c: &mut Command, who: &str) {
        c.env("AWS_ENDPOINT_URL_DYNAMODB", &self.moto.endpoint)
            .env("AWS_ENDPOINT_URL_STS", &self.moto.endpoint)
            .env("AWS_SHARED_CREDENTIALS_FILE", &self.creds)
            .env("FLEETDECK_TEAM", &self.table)
            .env("FLEETDECK_TEAM_PROFILE", who)
            .env(
                "XDG_STATE_HOME",
                std::env::temp_dir().join(format!("fd-{who}")),
            );
    }

    /// `fleetdeck team …` as `who`.
    fn team(&self, who: &str, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
        c.arg("team")
            .args(args)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null());
        self.env(&mut c, who);
        c.output().expect("fleetdeck runs")
    }

    /// `fleetdeck run …` as `who`, on the simulator, with journal `j`.
    fn run(&self, sim: &SimHandle, j: &Path, who: &str, args: &[&str]) -> Command {
        let mut c = headless::command(sim, j, args);
        self.env(&mut c, who);
        c
    }
}

/// `n` online appliances on 5.0.10 (cam-00…) and `m` Snow devices (smd-…).
fn fleet(n: usize, m: usize) -> String {
    let mut toml = String::from("[panorama]\nimages = [\"5.0.10\", \"5.0.21\"]\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.10\"\n"
        ));
    }
    for i in 0..m {
        toml.push_str(&format!(
            "[[snow.devices]]\nid = \"smd-team{i:013}\"\nsoftware = \"7.1.0\"\n"
        ));
    }
    toml
}

async fn sim(toml: String) -> SimHandle {
    fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(toml),
        quotas: QuotaMode::Off,
        busy_conflicts: false,
        speed: 300.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

/// Operations per device, read through the services' APIs: each appliance's jobs
/// (ListDevicesJobs) and each Snow task's targets (ListTasks, DescribeTask).
async fn operations(sim: &SimHandle) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    let panorama = common::panorama(sim);
    for d in common::all_panorama_devices(&panorama).await {
        let id = d.device_id().unwrap_or_default().to_string();
        let jobs = panorama
            .list_devices_jobs()
            .device_id(&id)
            .send()
            .await
            .expect("ListDevicesJobs");
        per.insert(id, jobs.device_jobs().len());
    }
    let snow = common::snow(sim);
    let tasks = snow.list_tasks().send().await.expect("ListTasks");
    for t in tasks.tasks() {
        let task = snow
            .describe_task()
            .task_id(t.task_id())
            .send()
            .await
            .expect("DescribeTask");
        for target in task.targets() {
            *per.entry(target.clone()).or_default() += 1;
        }
    }
    for id in common::snow_device_ids(&snow).await {
        per.entry(id).or_default();
    }
    per
}

async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("fleetdeck runs"))
        .await
        .unwrap()
}

async fn finish(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

/// Reads the child's stderr up to the end of a line holding `what`.
fn read_until(child: &mut Child, what: &str, seen: &mut String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let err = child.stderr.as_mut().expect("stderr is piped");
    let mut buf = [0u8; 4096];
    let whole = |seen: &String| seen.find(what).is_some_and(|at| seen[at..].contains('\n'));
    while !whole(seen) {
        assert!(Instant::now() < deadline, "no {what:?} in:\n{seen}");
        match err.read(&mut buf) {
            Ok(0) => panic!("fleetdeck ended before {what:?}:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) => panic!("{e}"),
        }
    }
}

fn summary(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    v["devices"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_is_idempotent_and_a_table_that_cannot_serve_is_refused_before_anything_is_sent() {
    let t = Team::new();
    let again = t.team("bob", &["init", "--lease", "6s"]);
    let said = text(&again.stdout);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(said.contains("team table fleet-team: found"), "{said}");
    assert!(said.contains("lease 6s"), "{said}");

    let sim = sim(fleet(2, 1)).await;
    // No such table: refused, naming it and the fix; nothing touched.
    let j = headless::journal("team-missing");
    let mut c = t.run(&sim, &j, "alice", &["--action", "reboot", "--all", "--yes"]);
    c.env("FLEETDECK_TEAM", "no-such-table");
    let out = output(c).await;
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("team table no-such-table"), "{said}");
    assert!(
        said.contains("fleetdeck team init --team no-such-table"),
        "{said}"
    );
    assert!(sim.ledger().is_empty(), "{:?}", sim.ledger());

    // A table of another shape: refused, naming its key schema.
    let script = format!(
        "import boto3\n\
         db = boto3.client('dynamodb', endpoint_url='{}', region_name='us-east-1',\n\
           aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         db.create_table(TableName='other', BillingMode='PAY_PER_REQUEST',\n\
           KeySchema=[{{'AttributeName': 'id', 'KeyType': 'HASH'}}],\n\
           AttributeDefinitions=[{{'AttributeName': 'id', 'AttributeType': 'S'}}])\n",
        t.moto.endpoint
    );
    let made = Command::new(team::python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    let mut c = t.run(&sim, &j, "alice", &["--action", "reboot", "--all", "--yes"]);
    c.env("FLEETDECK_TEAM", "other");
    let out = output(c).await;
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("team table other"), "{said}");
    assert!(said.contains("key schema"), "{said}");

    // Nothing answers at the table's endpoint: refused up front, never local-only.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = t.run(&sim, &j, "alice", &["--action", "reboot", "--all", "--yes"]);
    c.env(
        "AWS_ENDPOINT_URL_DYNAMODB",
        format!("http://127.0.0.1:{closed}"),
    )
    .env("AWS_ENDPOINT_URL_STS", format!("http://127.0.0.1:{closed}"));
    let out = output(c).await;
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("team table fleet-team"), "{said}");
    assert!(said.contains("connection refused"), "{said}");
    assert!(said.contains("never falls back to local-only"), "{said}");
    assert!(sim.ledger().is_empty(), "{:?}", sim.ledger());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_the_same_devices_give_each_device_one_operation() {
    let t = Team::new();
    let sim = sim(fleet(4, 4)).await;
    let (ja, jb) = (headless::journal("team-a"), headless::journal("team-b"));
    let args = ["--action", "reboot", "--all", "--yes", "--output", "json"];
    let a = t.run(&sim, &ja, "alice", &args).spawn().unwrap();
    let b = t.run(&sim, &jb, "bob", &args).spawn().unwrap();
    let (a, b) = (finish(a).await, finish(b).await);
    let per = operations(&sim).await;
    assert_eq!(per.len(), 8, "{per:?}");
    assert!(
        per.values().all(|n| *n == 1),
        "each device once: {per:?}\n--- alice:\n{}\n--- bob:\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    // Whoever lost a device names who holds it, as preflight names a left-out device.
    let rows: Vec<serde_json::Value> = summary(&a).into_iter().chain(summary(&b)).collect();
    let skipped: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["state"] == "SKIPPED").collect();
    let done = rows
        .iter()
        .filter(|r| r["state"] == "SUCCEEDED" || r["state"] == "COMPLETED")
        .count();
    assert_eq!(done, 8, "{rows:#?}");
    assert_eq!(skipped.len(), 8, "{rows:#?}");
    for r in skipped {
        let e = r["error"].as_str().unwrap_or_default();
        assert!(
            e.starts_with("held by arn:aws:iam::123456789012:user/"),
            "{r}"
        );
        assert!(e.contains("(plan ") && e.contains("reboot, since "), "{r}");
    }
    let leases = t.team("bob", &["leases"]);
    assert!(
        text(&leases.stdout).trim().is_empty(),
        "every lease released: {}",
        text(&leases.stdout)
    );
    let plans = t.team("bob", &["plans", "--output", "json"]);
    let plans: serde_json::Value = serde_json::from_slice(&plans.stdout).unwrap();
    let plans = plans.as_array().unwrap();
    assert_eq!(plans.len(), 2, "{plans:#?}");
    assert!(plans.iter().all(|p| p["outcome"].is_string()), "{plans:#?}");
}
