//! What a rollout's gate watches besides its devices, headless, against the simulator (and,
//! for alarms, moto's CloudWatch): an OTA'd canary whose applications stay in ERROR aborts
//! the rollout after one job; an alarm set to ALARM during a bake aborts it before the next
//! wave, and one that does not exist stops it before anything is sent; a maintenance window
//! that opens in a few seconds holds the plan until then, also across a restart.

use std::time::Duration;

mod headless;
mod team;

use headless::{command, creates, output, read_until, summary, text};

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};

/// `n` online appliances on 5.0.10, named cam-00…, each running two applications.
fn fleet(n: usize) -> String {
    let mut toml = String::from("[panorama]\nimages = [\"5.0.10\", \"5.0.21\"]\n");
    for i in 0..n {
        toml.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.10\"\napplications = [\"people-counter\", \"ppe-check\"]\n"
        ));
    }
    toml
}

async fn sim(n: usize, unhealthy: &[&str]) -> SimHandle {
    fleetdeck::sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet(n)),
        quotas: QuotaMode::Off,
        busy_conflicts: false,
        speed: 300.0,
        unhealthy_after_ota: unhealthy.iter().map(ToString::to_string).collect(),
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts")
}

fn device<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} is in the summary: {s}"))
}

fn journal_show(j: &std::path::Path, plan: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .args(["journal", "show", plan, "--journal"])
        .arg(j)
        .output()
        .expect("journal show runs");
    text(&out.stdout) + &text(&out.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_applications_stay_in_error_aborts_the_ota_after_one_job() {
    let sim = sim(4, &["cam-00"]).await;
    let j = headless::journal("apps");
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "ota",
            "--image-version",
            "5.0.21",
            "--all",
            "--canary",
            "cam-00",
            "--waves",
            "1,rest",
            "--health-timeout",
            "4s",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "aborted by its gate\n{stderr}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "ABORTED", "{s}");
    // Exactly one job: the canary's, which COMPLETED on the service.
    assert_eq!(
        creates(&sim).values().sum::<usize>(),
        1,
        "{:?}",
        sim.ledger()
    );
    let canary = device(&s, "cam-00");
    assert_eq!(canary["state"], "COMPLETED", "{canary}");
    let why = canary["health"].as_str().unwrap_or_default();
    assert!(
        why.contains("people-counter ERROR") && why.contains("ppe-check ERROR"),
        "the reason names each instance and its state: {why}"
    );
    for other in ["cam-01", "cam-02", "cam-03"] {
        assert_eq!(device(&s, other)["state"], "SKIPPED", "{s}");
    }
    // The baseline is journaled before the send, the health after it.
    let plan = s["plan"].as_str().unwrap();
    let shown = journal_show(&j, plan);
    assert!(
        shown.contains("before: people-counter, ppe-check"),
        "{shown}"
    );
    assert!(
        shown.contains("NOT HEALTHY") && shown.contains("ERROR"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_waits_for_the_applications_to_run_again_and_passes() {
    // The simulator's applications come back some simulated seconds after the appliance
    // is ONLINE: the gate waits for them rather than counting the device at once.
    let sim = sim(3, &[]).await;
    let j = headless::journal("apps-ok");
    let out = output(
        &sim,
        &j,
        &[
            "--action", "reboot", "--all", "--waves", "1,rest", "--yes", "--output", "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary(&out);
    assert_eq!(s["outcome"], "SUCCEEDED", "{s}");
    assert_eq!(creates(&sim).values().sum::<usize>(), 3);
    for name in ["cam-00", "cam-01", "cam-02"] {
        assert_eq!(device(&s, name)["health"], "healthy", "{s}");
    }
    // Each appliance's applications were read before anything was sent, as its baseline.
    let shown = journal_show(&j, s["plan"].as_str().unwrap());
    assert_eq!(
        shown.matches("before: people-counter, ppe-check").count(),
        3,
        "{shown}"
    );
    let first_apps = shown.find("apps ").expect("a baseline");
    let first_send = shown.find("CreateJobForDevices").expect("a send");
    assert!(first_apps < first_send, "{shown}");
}

/// A CloudWatch client on moto, with the key pair the run uses.
async fn cloudwatch(moto: &team::Moto) -> aws_sdk_cloudwatch::Client {
    let conf = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "AKIDALARMS",
            "alarms/secret",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(conf)
}

async fn put_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("Fleet/Apps")
        .metric_name("InferenceErrors")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("moto takes the alarm");
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(StateValue::Ok)
        .state_reason("quiet")
        .send()
        .await
        .expect("moto sets its state");
}

fn with_cloudwatch(c: &mut std::process::Command, moto: &team::Moto) {
    c.env("AWS_ENDPOINT_URL_CLOUDWATCH", &moto.endpoint);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_that_fires_during_a_bake_aborts_before_the_next_wave() {
    let moto = team::Moto::start();
    let cw = cloudwatch(&moto).await;
    put_alarm(&cw, "fleet-inference-errors").await;
    let sim = sim(4, &[]).await;
    let j = headless::journal("alarm");
    let mut c = command(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--waves",
            "1,rest",
            "--bake",
            "1h",
            "--abort-on-alarm",
            "fleet-inference-errors",
            "--no-app-health",
            "--yes",
            "--output",
            "json",
        ],
    );
    with_cloudwatch(&mut c, &moto);
    let mut child = c.spawn().expect("fleetdeck runs");
    let mut seen = String::new();
    read_until(&mut child, "baking for", &mut seen);
    cw.set_alarm_state()
        .alarm_name("fleet-inference-errors")
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 9 errors in 1 minute")
        .send()
        .await
        .expect("moto sets ALARM");
    let out = child.wait_with_output().expect("the run ends");
    let stderr = seen + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("alarm fleet-inference-errors is ALARM")
            && stderr.contains("Threshold Crossed: 9 errors"),
        "the reason names the alarm and its state reason:\n{stderr}"
    );
    // The canary's one job, and nothing of the second wave.
    assert_eq!(
        creates(&sim).values().sum::<usize>(),
        1,
        "{:?}",
        sim.ledger()
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(s["outcome"], "ABORTED", "{s}");
    assert_eq!(s["rollout"]["alarms"][0]["state"], "ALARM", "{s}");
    let shown = journal_show(&j, s["plan"].as_str().unwrap());
    assert!(
        shown.contains("fleet-inference-errors ALARM — BREACH"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_cloudwatch_does_not_have_stops_the_plan_before_anything_is_sent() {
    let moto = team::Moto::start();
    let sim = sim(2, &[]).await;
    let j = headless::journal("no-alarm");
    let mut c = command(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--abort-on-alarm",
            "no-such-alarm",
            "--yes",
        ],
    );
    with_cloudwatch(&mut c, &moto);
    let out = c.output().expect("fleetdeck runs");
    let stderr = text(&out.stderr) + &text(&out.stdout);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("no alarm named no-such-alarm"),
        "the missing alarm is named:\n{stderr}"
    );
    assert!(creates(&sim).is_empty(), "{:?}", sim.ledger());
}

/// "HH:MM:SS-HH:MM:SS UTC", a daily window opening `from` seconds from now for `len` seconds.
fn window_in(from: u64, len: u64) -> (String, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let opens = now + from;
    let clock = |t: u64| {
        let s = t % 86_400;
        format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    };
    (
        format!("daily {}-{} UTC", clock(opens), clock(opens + len)),
        opens,
    )
}

/// When each create was about to be sent, by the journal's wall clock (epoch seconds).
fn intent_times(j: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(j)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["record"] == "intent")
        .filter_map(|r| r["at"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_opens_later_holds_the_plan_and_sends_when_it_opens() {
    let sim = sim(2, &[]).await;
    let j = headless::journal("window");
    let (window, opens) = window_in(6, 600);
    let out = output(
        &sim,
        &j,
        &[
            "--action", "reboot", "--all", "--window", &window, "--yes", "--output", "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("2 devices wait for the maintenance window"),
        "the wait is shown:\n{stderr}"
    );
    assert_eq!(
        creates(&sim).values().sum::<usize>(),
        2,
        "{:?}",
        sim.ledger()
    );
    let times = intent_times(&j);
    assert_eq!(times.len(), 2, "{times:?}");
    assert!(
        times.iter().all(|t| *t >= opens),
        "every create came once the window opened at {opens}: {times:?}"
    );
    let s = summary(&out);
    let shown = journal_show(&j, s["plan"].as_str().unwrap());
    assert!(
        shown.contains("window") && shown.contains("waits until"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_wait_resumes_it_and_sends_when_the_window_opens() {
    let sim = sim(2, &[]).await;
    let j = headless::journal("window-resume");
    let (window, opens) = window_in(10, 600);
    let mut child = command(
        &sim,
        &j,
        &["--action", "reboot", "--all", "--window", &window, "--yes"],
    )
    .spawn()
    .expect("fleetdeck runs");
    let mut seen = String::new();
    read_until(&mut child, "wait for the maintenance window", &mut seen);
    headless::interrupt(&child);
    let first = child.wait_with_output().expect("the run ends");
    assert_eq!(
        first.status.code(),
        Some(130),
        "{seen}{}",
        text(&first.stderr)
    );
    assert!(creates(&sim).is_empty(), "nothing was sent before the stop");
    let out = output(&sim, &j, &["--resume", "--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        creates(&sim).values().sum::<usize>(),
        2,
        "{:?}",
        sim.ledger()
    );
    let times = intent_times(&j);
    assert_eq!(times.len(), 2, "{times:?}");
    assert!(times.iter().all(|t| *t >= opens), "{times:?} vs {opens}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_that_cannot_be_read_hold_every_send() {
    // A CloudWatch that is gone: the rollout says so and sends nothing until it answers.
    let mut moto = team::Moto::start();
    moto.kill();
    let sim = sim(2, &[]).await;
    let j = headless::journal("alarm-down");
    let mut c = command(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--abort-on-alarm",
            "fleet-inference-errors",
            "--yes",
        ],
    );
    with_cloudwatch(&mut c, &moto);
    let mut child = c.spawn().expect("fleetdeck runs");
    let mut seen = String::new();
    read_until(&mut child, "could not be read from CloudWatch", &mut seen);
    // Past two more 10 s attempts: still nothing sent, and the outage told once.
    std::thread::sleep(Duration::from_secs(21));
    headless::interrupt(&child);
    let out = child.wait_with_output().expect("the run ends");
    let stderr = seen + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        creates(&sim).is_empty(),
        "nothing was sent: {:?}",
        sim.ledger()
    );
    assert_eq!(
        stderr.matches("could not be read from CloudWatch").count(),
        1,
        "the outage is told once:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_window_does_not_open_in_time_is_skipped() {
    let sim = sim(2, &[]).await;
    let j = headless::journal("window-timeout");
    let (window, _) = window_in(3600, 600);
    let out = output(
        &sim,
        &j,
        &[
            "--action",
            "reboot",
            "--all",
            "--window",
            &window,
            "--window-timeout",
            "3s",
            "--yes",
            "--output",
            "json",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s = summary(&out);
    for name in ["cam-00", "cam-01"] {
        let d = device(&s, name);
        assert_eq!(d["state"], "SKIPPED", "{d}");
        assert!(
            d["error"].to_string().contains("--window-timeout"),
            "the reason names the flag: {d}"
        );
    }
    assert!(creates(&sim).is_empty(), "{:?}", sim.ledger());
}
