//! Team mode against a real DynamoDB and STS (the moto server on loopback) and the simulator:
//! hosts are processes with journals of their own, identities are moto IAM users. Every
//! device's operations are counted through the services' own APIs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
mod headless;
mod team;

use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};
use headless::{read_until, text};
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
    // Whoever lost a device names who holds it, as preflight names a left-out device. A host
    // that came once the other held every device is refused up front, naming each.
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for out in [&a, &b] {
        let said = text(&out.stderr);
        if out.stdout.is_empty() {
            assert!(!out.status.success(), "{said}");
            assert!(
                said.contains("every chosen device is held by another plan"),
                "{said}"
            );
            assert_eq!(
                said.matches("left out (another plan holds it): ").count(),
                8,
                "{said}"
            );
        } else {
            rows.extend(summary(out));
        }
    }
    let skipped: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["state"] == "SKIPPED").collect();
    let done = rows
        .iter()
        .filter(|r| r["state"] == "SUCCEEDED" || r["state"] == "COMPLETED")
        .count();
    assert_eq!(done, 8, "{rows:#?}");
    assert_eq!(skipped.len(), rows.len() - 8, "{rows:#?}");
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
    let ran = [&a, &b].iter().filter(|o| !o.stdout.is_empty()).count();
    assert_eq!(plans.len(), ran, "{plans:#?}");
    assert!(plans.iter().all(|p| p["outcome"].is_string()), "{plans:#?}");
}

/// Appliances sent to so far, read from the simulator's ledger.
fn creates(sim: &SimHandle) -> usize {
    sim.ledger().len()
}

/// Waits until `n` operations were created, then until the owner is well inside its pacing
/// wait before the next (1.03 s between creates): a freeze or a kill then lands between two
/// sends, never between a check and its send.
async fn between_sends(sim: &SimHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while creates(sim) < n {
        assert!(Instant::now() < deadline, "{n} creates never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The one live plan in the team's table, as `team plans` shows it.
fn live_plan(t: &Team, who: &str) -> serde_json::Value {
    let out = t.team(who, &["plans", "--output", "json"]);
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    let live: Vec<serde_json::Value> = plans
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["outcome"].is_null())
        .cloned()
        .collect();
    assert_eq!(live.len(), 1, "{plans:#}");
    live[0].clone()
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_killed_midway_is_taken_over_after_its_lease_and_no_device_gets_two() {
    let t = Team::new();
    let sim = sim(fleet(5, 2)).await;
    let ja = headless::journal("team-killed");
    let a = t
        .run(
            &sim,
            &ja,
            "alice",
            &["--action", "reboot", "--all", "--yes"],
        )
        .spawn()
        .unwrap();
    between_sends(&sim, 4).await;
    signal(&a, nix::sys::signal::Signal::SIGKILL);
    let _ = finish(a).await;
    let sent_by_alice = creates(&sim);
    let plan = live_plan(&t, "bob");
    let id = plan["plan"].as_str().unwrap().to_string();
    assert!(
        plan["owner"].as_str().unwrap().ends_with("user/alice"),
        "{plan:#}"
    );

    // Bob's host takes it over: it watches the record for a whole lease, then carries on.
    let jb = headless::journal("team-taker");
    let began = Instant::now();
    let b = output(t.run(
        &sim,
        &jb,
        "bob",
        &["--resume", &id, "--yes", "--output", "json"],
    ))
    .await;
    let said = text(&b.stderr);
    assert_eq!(b.status.code(), Some(0), "{said}");
    assert!(began.elapsed() >= Duration::from_secs(6), "waited a lease");
    assert!(said.contains("watching its record"), "{said}");
    assert!(
        said.contains("taken over from arn:aws:iam::123456789012:user/alice"),
        "{said}"
    );
    let per = operations(&sim).await;
    assert_eq!(per.len(), 7, "{per:?}");
    assert!(
        per.values().all(|n| *n == 1),
        "each device once: {per:?}\n{said}"
    );
    assert!(creates(&sim) > sent_by_alice, "bob sent the rest");
    let rows = summary(&b);
    assert_eq!(rows.len(), 7, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r["state"] == "COMPLETED" || r["state"] == "SUCCEEDED"),
        "{rows:#?}"
    );
    let ended = t.team("bob", &["plans", "--output", "json"]);
    let ended: serde_json::Value = serde_json::from_slice(&ended.stdout).unwrap();
    assert_eq!(ended[0]["outcome"], "SUCCEEDED", "{ended:#}");
    assert_eq!(ended[0]["epoch"], 2, "{ended:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_frozen_past_its_lease_finds_its_plan_taken_and_sends_nothing_more() {
    let t = Team::new();
    let sim = sim(fleet(6, 0)).await;
    let ja = headless::journal("team-frozen");
    let mut a = t
        .run(
            &sim,
            &ja,
            "alice",
            &["--action", "reboot", "--all", "--yes"],
        )
        .spawn()
        .unwrap();
    between_sends(&sim, 2).await;
    signal(&a, nix::sys::signal::Signal::SIGSTOP);
    let frozen_at = creates(&sim);
    let id = live_plan(&t, "bob")["plan"].as_str().unwrap().to_string();
    let jb = headless::journal("team-thaw-taker");
    let b = output(t.run(&sim, &jb, "bob", &["--resume", &id, "--yes"])).await;
    assert_eq!(b.status.code(), Some(0), "{}", text(&b.stderr));
    let after_bob = creates(&sim);
    assert!(after_bob > frozen_at, "bob sent the rest");

    // Alice wakes: her next renewal finds the plan taken, and she sends nothing more.
    signal(&a, nix::sys::signal::Signal::SIGCONT);
    let mut seen = String::new();
    read_until(&mut a, "taken over by", &mut seen);
    let out = finish(a).await;
    seen.push_str(&text(&out.stderr));
    // Her rollout ends aborted, what she never sent named as taken over.
    assert_eq!(out.status.code(), Some(3), "{seen}");
    assert!(seen.contains("nothing more is sent from here"), "{seen}");
    assert!(
        seen.contains("rollout ABORTED: taken over by arn:aws:iam::123456789012:user/bob"),
        "{seen}"
    );
    assert_eq!(
        creates(&sim),
        after_bob,
        "alice sent nothing after waking:\n{seen}"
    );
    let per = operations(&sim).await;
    assert!(per.values().all(|n| *n == 1), "each device once: {per:?}");
    assert_eq!(per.len(), 6, "{per:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_gone_midway_stops_the_sends_and_the_plan_resumes_on_a_new_table() {
    let mut t = Team::new();
    let sim = sim(fleet(5, 0)).await;
    let ja = headless::journal("team-down");
    let a = t
        .run(
            &sim,
            &ja,
            "alice",
            &[
                "--action",
                "reboot",
                "--all",
                "--yes",
                "--team-timeout",
                "4s",
            ],
        )
        .spawn()
        .unwrap();
    between_sends(&sim, 2).await;
    t.moto.kill();
    let at_kill = creates(&sim);
    let out = finish(a).await;
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert_eq!(
        creates(&sim),
        at_kill,
        "nothing sent without the table:\n{said}"
    );
    assert!(said.contains("Team table fleet-team"), "{said}");
    assert!(said.contains("Nothing new is sent"), "{said}");
    assert!(said.contains("--team-timeout"), "{said}");
    assert!(said.contains("fleetdeck run --resume"), "{said}");

    // A new table server, empty: made again, and the plan carries on from alice's journal.
    t.moto.restart();
    let alice = t.moto.user("alice");
    let bob = t.moto.user("bob");
    t.creds = team::credentials(&[("alice", alice), ("bob", bob)]);
    let made = t.team("alice", &["init", "--lease", "6s"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let resumed = output(t.run(&sim, &ja, "alice", &["--resume", "--yes"])).await;
    let said = text(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{said}");
    let per = operations(&sim).await;
    assert_eq!(per.len(), 5, "{per:?}");
    assert!(
        per.values().all(|n| *n == 1),
        "each device once: {per:?}\n{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_under_the_two_person_rule_waits_for_another_identity_and_takes_words_from_other_hosts()
 {
    let t = Team::new();
    let rule = t.team(
        "alice",
        &[
            "init",
            "--lease",
            "6s",
            "--require-approval",
            "env=prod,min=1",
        ],
    );
    assert!(rule.status.success(), "{}", text(&rule.stderr));
    let mut toml = fleet(0, 0);
    for i in 0..3 {
        toml.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.10\"\ntags = {{ env = \"prod\" }}\n"
        ));
    }
    let sim = sim(toml).await;
    let ja = headless::journal("team-approval");
    let mut a = t
        .run(
            &sim,
            &ja,
            "alice",
            &[
                "--action",
                "reboot",
                "--all",
                "--waves",
                "1,rest",
                "--approve",
                "--yes",
            ],
        )
        .spawn()
        .unwrap();
    let mut seen = String::new();
    read_until(
        &mut a,
        "waiting for a second operator's approval",
        &mut seen,
    );
    let id = live_plan(&t, "bob")["plan"].as_str().unwrap().to_string();
    assert_eq!(creates(&sim), 0, "nothing sent before the approval");

    let own = t.team("alice", &["approve", &id]);
    let said = text(&own.stderr);
    assert!(!own.status.success(), "{said}");
    assert!(
        said.contains("two-person rule needs a different identity"),
        "{said}"
    );
    assert_eq!(creates(&sim), 0);

    let other = t.team("bob", &["approve", &id]);
    assert!(other.status.success(), "{}", text(&other.stderr));
    assert!(text(&other.stdout).contains("approved by arn:aws:iam::123456789012:user/bob"));
    read_until(&mut a, "waiting for approval", &mut seen);
    assert_eq!(creates(&sim), 1, "the canary went: {seen}");

    // Bob, from his own host, promotes alice's rollout through the table; the word is
    // answered once alice applied it, within a heartbeat (2 s for a 6 s lease).
    let jb = headless::journal("team-word");
    let began = Instant::now();
    let word = output(t.run(&sim, &jb, "bob", &["--promote", &id[..8]])).await;
    let said = text(&word.stderr);
    assert!(word.status.success(), "{said}");
    assert!(
        said.contains("promote: applied by arn:aws:iam::123456789012:user/alice"),
        "{said}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(12),
        "{:?}",
        began.elapsed()
    );
    let out = finish(a).await;
    seen.push_str(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{seen}");
    assert!(
        seen.contains("promote from arn:aws:iam::123456789012:user/bob"),
        "{seen}"
    );
    let per = operations(&sim).await;
    assert!(per.len() == 3 && per.values().all(|n| *n == 1), "{per:?}");
    let plans = t.team("bob", &["plans", "--output", "json"]);
    let plans: serde_json::Value = serde_json::from_slice(&plans.stdout).unwrap();
    assert_eq!(
        plans[0]["approvals"][0],
        "arn:aws:iam::123456789012:user/bob"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_from_another_host_stops_the_rollout_within_a_heartbeat() {
    let t = Team::new();
    let sim = sim(fleet(4, 0)).await;
    let ja = headless::journal("team-abort");
    let mut a = t
        .run(
            &sim,
            &ja,
            "alice",
            &[
                "--action",
                "reboot",
                "--all",
                "--waves",
                "1,rest",
                "--approve",
                "--yes",
            ],
        )
        .spawn()
        .unwrap();
    let mut seen = String::new();
    read_until(&mut a, "waiting for approval", &mut seen);
    let id = live_plan(&t, "bob")["plan"].as_str().unwrap().to_string();
    let jb = headless::journal("team-abort-word");
    let word = output(t.run(&sim, &jb, "bob", &["--abort", &id])).await;
    let said = text(&word.stderr);
    assert!(word.status.success(), "{said}");
    assert!(said.contains("abort: applied by"), "{said}");
    let out = finish(a).await;
    seen.push_str(&text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{seen}");
    assert_eq!(creates(&sim), 1, "only the canary went");
    let ended = live_or_ended(&t, &id);
    assert_eq!(ended["outcome"], "ABORTED", "{ended:#}");
}

fn live_or_ended(t: &Team, id: &str) -> serde_json::Value {
    let out = t.team("bob", &["plans", "--output", "json"]);
    let plans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plans
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan"] == id)
        .cloned()
        .unwrap_or_default()
}

/// Two runs on different appliances of one account, at AWS's quotas: each is told it shares
/// the account's quota with the other, and every appliance gets its one job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_in_one_account_share_its_quota_and_each_is_told() {
    let t = Team::new();
    let sim = fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet(12, 0)),
        quotas: QuotaMode::Aws,
        busy_conflicts: false,
        speed: 300.0,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts");
    let names = |r: std::ops::Range<usize>| {
        r.map(|i| format!("cam-{i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (first, second) = (names(0..6), names(6..12));
    let (ja, jb) = (headless::journal("share-a"), headless::journal("share-b"));
    let args = |devices: &str| {
        [
            "--action",
            "reboot",
            "--devices",
            devices,
            "--yes",
            "--output",
            "json",
        ]
        .map(String::from)
    };
    let run = |j: &Path, who: &str, devices: &str| {
        let a = args(devices);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        t.run(&sim, j, who, &a).spawn().unwrap()
    };
    let (a, b) = (run(&ja, "alice", &first), run(&jb, "bob", &second));
    let (a, b) = (finish(a).await, finish(b).await);
    for out in [&a, &b] {
        let said = text(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(
            said.contains(
                "Panorama quota of 123456789012 in us-east-1 shared with 1 other plan of the team"
            ),
            "{said}"
        );
    }
    // Counted from the simulator's ledger of calls: asking each appliance through the API
    // would itself meet the quota.
    let mut per: HashMap<String, usize> = HashMap::new();
    for e in sim.ledger() {
        if e.operation == "CreateJobForDevices" {
            *per.entry(e.device_id.clone()).or_default() += 1;
        }
    }
    assert_eq!(per.len(), 12, "{per:?}");
    assert!(
        per.values().all(|n| *n == 1),
        "each appliance once: {per:?}"
    );
}
