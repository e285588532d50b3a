//! Panorama dispatch at AWS quotas against the (N − 1) s bound, beside the loops a user
//! would write: the `aws` CLI in bash and boto3 in one Python process.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fleetdeck::fleet::{Device, DeviceKey, Operation, Service, SnowOptions};
use fleetdeck::ops::{OpId, OpState, Plan};
use fleetdeck::protocol::{Command, Event};
use fleetdeck::sim;
use fleetdeck::sim::{FleetSource, QuotaMode, SimConfig, SimHandle};

use crate::PANORAMA_JOBS;
use crate::harness::{
    Session, aws_version, ceil_div, connect, diff, dispatch, named, panorama_calls, throttled,
};
use crate::report::{Report, secs};

/// N Panorama jobs with AWS's quotas on; calls per status poll while they run; then the same
/// N jobs through a shell loop of the `aws` CLI and a boto3 loop against the same simulator.
pub(crate) async fn panorama(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: PANORAMA_JOBS,
            snow: 0,
        },
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect(&h, scratch.join("panorama.jsonl")).await?;
    view_costs(report, &h, &mut s).await?;
    let refs: Vec<&Device> = s.devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    let jobs = plan.device_count();
    // A one-token bucket refilled once a second lets N creates through in N − 1 seconds.
    let bound = Duration::from_secs(jobs as u64 - 1);
    let took = dispatch_jobs(report, &h, &mut s, plan, bound).await?;
    poll_costs(report, &h, &mut s, jobs).await?;
    drop(s);
    baselines(report, &h, took, bound).await;
    h.stop().await;
    Ok(())
}

/// What the first listing costs, and what bringing every appliance into view costs.
async fn view_costs(report: &mut Report, h: &SimHandle, s: &mut Session) -> anyhow::Result<()> {
    let listed = panorama_calls(h);
    report.add(
        "status",
        format!("first listing of {PANORAMA_JOBS} appliances, nothing in view"),
        named(&listed),
        format!("ceil(N/25) = {}", ceil_div(PANORAMA_JOBS, 25)),
        "≤ ceil(N/25) + in view",
    );
    // A 200×60 terminal shows all 50: the worker describes each once.
    let keys: Vec<DeviceKey> = s.devices.iter().map(Device::key).collect();
    s.commands.send(Command::Look(keys.clone()))?;
    let mut described = HashSet::new();
    while described.len() < keys.len() {
        if let Event::DeviceUpdated(d) = s.events.recv().await.context("the worker stopped")? {
            described.insert(d.key());
        }
    }
    let viewed = diff(&listed, &panorama_calls(h));
    report.add(
        "status",
        format!("all {PANORAMA_JOBS} appliances come into view"),
        named(&viewed),
        format!("{} in view", keys.len()),
        "≤ ceil(N/25) + in view",
    );
    Ok(())
}

/// The plan's jobs against the (N − 1) s bound; how long they took.
async fn dispatch_jobs(
    report: &mut Report,
    h: &SimHandle,
    s: &mut Session,
    plan: Plan,
    bound: Duration,
) -> anyhow::Result<Duration> {
    let jobs = plan.device_count();
    let before = h.ledger().len();
    let throttled_before = throttled(h);
    let (took, failed) = dispatch(s, plan).await?;
    let created = h.ledger().len() - before;
    let ours = throttled(h) - throttled_before;
    report.add(
        "dispatch",
        format!("{jobs} Panorama REBOOT jobs, AWS quotas on (fleetdeck)"),
        secs(took),
        format!(
            "{:.3}× the (N − 1) × 1 s bound ({}); {created} jobs, {failed} failed, {ours} calls throttled",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound)
        ),
        "≤ 1.02× the bound, 0 throttled",
    );
    report.note(
        "Panorama dispatch: the worker (the engine the UI and `fleetdeck run` share, journal on) \
         against an in-process simulator with AWS quotas on; timed from the Dispatch command to \
         the last job id. Each create's turn is reserved at 0.99 a second (1% inside the quota: \
         the service's create bucket holds one token, and the network's jitter must not make \
         two sends a hair under a second apart), and a throttle slows the pace to 70%, won back \
         a step per call that goes through. Each appliance also costs a ListDevicesJobs read \
         before its create (to reconcile a lost answer without a second job), made 0.5 s before \
         the create's turn while the creates ahead go out; its request slot rides with the \
         create's, and every other call shares the other three of the five requests a second. \
         The first create goes at once, so N creates need (N − 1) × 1.0101 s.",
    );
    Ok(took)
}

/// The jobs run for 120 simulated seconds: what the status polls cost meanwhile. A job's
/// state is read from its own record (DescribeDeviceJob) when the listing's LatestDeviceJob
/// says it moved: the moves the worker reported are counted against those reads.
async fn poll_costs(
    report: &mut Report,
    h: &SimHandle,
    s: &mut Session,
    jobs: usize,
) -> anyhow::Result<()> {
    let before = panorama_calls(h);
    let mut rounds = 0;
    let mut states: HashMap<OpId, OpState> = HashMap::new();
    let mut moves = 0;
    let window = Instant::now();
    while rounds < 5 && window.elapsed() < Duration::from_secs(60) {
        match tokio::time::timeout(Duration::from_secs(5), s.events.recv()).await {
            Ok(Some(Event::ListingDone(_, Service::Panorama, _))) => rounds += 1,
            Ok(Some(Event::Op(op, u))) if states.insert(op, u.state) != Some(u.state) => moves += 1,
            _ => {}
        }
    }
    let polled = diff(&before, &panorama_calls(h));
    let total: u64 = polled.values().sum();
    let listed = polled.get("panorama:ListDevices").copied().unwrap_or(0);
    let described = polled
        .get("panorama:DescribeDeviceJob")
        .copied()
        .unwrap_or(0);
    report.add(
        "status",
        format!("calls per poll, {jobs} jobs in flight ({rounds} polls)"),
        format!("{:.1}", total as f64 / rounds.max(1) as f64),
        format!(
            "{}: {listed} ListDevices for ceil(N/25) × polls = {}, {described} DescribeDeviceJob for {moves} moves of a job's state",
            named(&polled),
            ceil_div(jobs, 25) * rounds,
        ),
        "≤ ceil(N/25) a poll + 1 per job state change",
    );
    Ok(())
}

/// The same jobs through the `aws` CLI in bash and boto3 in one process, on the same
/// simulator once the jobs before are over.
async fn baselines(report: &mut Report, h: &SimHandle, took: Duration, bound: Duration) {
    h.advance_clock(10_000.0).expect("a positive advance");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: Vec<String> = h
        .ledger()
        .iter()
        .map(|e| e.device_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let version = aws_version().await;
    let baselines: [(&str, String); 2] = [
        (
            "cli",
            format!("a shell loop of `aws panorama create-job-for-devices` ({version})"),
        ),
        (
            "boto3",
            "a boto3 loop in one Python process, standard retries".to_string(),
        ),
    ];
    for (which, what) in baselines {
        h.advance_clock(10_000.0).expect("a positive advance");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = h.ledger().len();
        let throttled_before = throttled(h);
        let result = match which {
            "cli" => aws_cli_loop(h, &ids).await,
            _ => boto3_loop(h, &ids).await,
        };
        match result {
            Ok((base, failed)) => {
                let created = h.ledger().len() - before;
                let theirs = throttled(h) - throttled_before;
                report.add(
                    "dispatch",
                    format!("the same {} jobs, {what}", ids.len()),
                    secs(base),
                    format!(
                        "{:.2}× the bound; fleetdeck takes {:.2}× its time; {created} jobs, {failed} failed, {theirs} calls throttled",
                        base.as_secs_f64() / bound.as_secs_f64(),
                        took.as_secs_f64() / base.as_secs_f64()
                    ),
                    "baseline",
                );
            }
            Err(e) => report.add("dispatch", what, "not run", format!("{e:#}"), "baseline"),
        }
    }
    report.note(
        "Baselines, on the same simulator with the same quotas, each after the simulated clock \
         has moved past the jobs before it: `for id in …; do aws panorama \
         create-job-for-devices --device-ids $id --job-type REBOOT --endpoint-url …; done` in \
         bash (the CLI's default retry mode riding through the throttling; most of its time is \
         Python starting for each call), and a boto3 client in one Python process calling \
         `create_job_for_devices` for each appliance in turn with `retries={'mode': \
         'standard'}` (3 attempts). Each is timed around the whole loop, Python's start \
         included; a call that still failed after its retries counts as failed. Throttled \
         calls are the simulator's count of ThrottlingException answers.",
    );
}

pub(crate) async fn boto3_loop(h: &SimHandle, ids: &[String]) -> anyhow::Result<(Duration, usize)> {
    let script = r#"
import os, sys
import boto3
from botocore.config import Config
client = boto3.client(
    "panorama",
    endpoint_url=os.environ["ENDPOINT"],
    region_name="us-east-1",
    config=Config(retries={"mode": "standard"}),
)
failed = 0
for device in os.environ["IDS"].split():
    try:
        client.create_job_for_devices(DeviceIds=[device], JobType="REBOOT")
    except Exception:
        failed += 1
print(failed)
"#;
    let started = Instant::now();
    let out = tokio::process::Command::new("python3")
        .args(["-c", script])
        .env("IDS", ids.join(" "))
        .env("ENDPOINT", &h.endpoint)
        .env("AWS_ACCESS_KEY_ID", &h.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &h.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .context("python3 could not be started")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "the boto3 loop failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let failed = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the loop's failure count")?;
    Ok((took, failed))
}

pub(crate) async fn aws_cli_loop(
    h: &SimHandle,
    ids: &[String],
) -> anyhow::Result<(Duration, usize)> {
    let script = "fail=0; for id in $IDS; do \
        aws panorama create-job-for-devices --device-ids \"$id\" --job-type REBOOT \
          --endpoint-url \"$ENDPOINT\" --region us-east-1 --output json >/dev/null || fail=$((fail+1)); \
        done; echo $fail";
    let started = Instant::now();
    let out = tokio::process::Command::new("bash")
        .args(["-c", script])
        .env("IDS", ids.join(" "))
        .env("ENDPOINT", &h.endpoint)
        .env("AWS_ACCESS_KEY_ID", &h.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &h.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .output()
        .await
        .context("bash could not be started")?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("command not found") {
        bail!("the aws CLI is not on PATH");
    }
    let failed = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("the loop's failure count")?;
    Ok((took, failed))
}
