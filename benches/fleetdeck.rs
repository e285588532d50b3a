//! fleetdeck's benchmarks: `cargo bench --bench fleetdeck`. Each measures one goal through the
//! real parts — the worker and the official SDK clients against the simulator on loopback, the
//! UI's own `update` and `draw`, the release binary in a pseudo-terminal — and the run rewrites
//! BENCHMARKS.md with the machine and the figures. Nothing here is asserted: these machines are
//! noisy, so the figures are written down, not gated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetdeck::app::{self, App, Msg};
use fleetdeck::aws::Connection;
use fleetdeck::fleet::{Device, DeviceKey, Operation, Service, SnowOptions};
use fleetdeck::ops::Plan;
use fleetdeck::ops::{OpId, OpState, OpUpdate, Progress};
use fleetdeck::protocol::{Command, Event, Settings, Source};
use fleetdeck::sim::{self, FleetSource, QuotaMode, SimConfig, SimHandle};
use fleetdeck::worker;
use fleetdeck::{tui, ui};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// Panorama jobs dispatched: the 50 appliances AWS allows per account and region.
const PANORAMA_JOBS: usize = 50;
/// Snow targets dispatched, and the latency the simulator adds to each call.
const SNOW_TARGETS: usize = 1000;
const SNOW_LATENCY: Duration = Duration::from_millis(50);
/// Appliances listed for the calls-per-refresh figure (quotas off: above the 50 cap).
const REFRESH_APPLIANCES: usize = 500;
const BIG_FLEET: usize = 100_000;
const OPS_IN_FLIGHT: usize = 1000;

/// The sections, by the names `cargo bench --bench fleetdeck -- NAME…` takes.
const SECTIONS: &[&str] = &[
    "panorama", "regions", "snow", "unlock", "refresh", "frames", "keys", "pty", "memory",
];

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`. Names pick sections for a quick look: such a run prints
    // its figures and leaves BENCHMARKS.md alone, which only a whole run writes.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(bad) = only.iter().find(|a| !SECTIONS.contains(&a.as_str())) {
        bail!(
            "unknown section {bad}: the sections are {}",
            SECTIONS.join(", ")
        );
    }
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The journal goes where it would for the operator: on the working directory's disk, not
    // in a tmpfs /tmp, so its fsyncs cost what they cost there.
    let scratch = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("bench-scratch-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut report = Report {
        filesystem: filesystem(&scratch),
        ..Report::default()
    };

    if run("panorama") {
        runtime.block_on(panorama(&mut report, &scratch))?;
    }
    if run("regions") {
        runtime.block_on(regions(&mut report, &scratch))?;
    }
    if run("snow") {
        runtime.block_on(snow(&mut report, &scratch))?;
    }
    if run("unlock") {
        runtime.block_on(unlock(&mut report, &scratch))?;
    }
    if run("refresh") {
        runtime.block_on(refresh(&mut report, &scratch))?;
    }
    if run("frames") {
        frames(&mut report)?;
    }
    if run("keys") {
        key_to_frame(&mut report)?;
    }
    if run("pty") {
        first_frame(&mut report, &scratch)?;
        runtime.block_on(terminal_end_to_end(&mut report, &scratch))?;
    }
    if run("memory") {
        runtime.block_on(peak_memory(&mut report, &scratch))?;
    }

    let _ = std::fs::remove_dir_all(&scratch);
    if !only.is_empty() {
        eprintln!(
            "sections {} only: BENCHMARKS.md not written",
            only.join(", ")
        );
        return Ok(());
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    std::fs::write(&path, report.markdown())?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The filesystem a directory is on, and its device, as `stat -f` and `df` name them.
fn filesystem(dir: &Path) -> String {
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .arg(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let kind = run("stat", &["-f", "-c", "%T"]).unwrap_or_else(|| "unknown".into());
    let device = run("df", &["--output=source"])
        .and_then(|s| s.lines().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown device".into());
    format!("{kind} on {device}")
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    /// Where the journals were written.
    filesystem: String,
}

struct Row {
    section: &'static str,
    what: String,
    figure: String,
    against: String,
    goal: String,
}

impl Report {
    fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        figure: impl Into<String>,
        against: impl Into<String>,
        goal: impl Into<String>,
    ) {
        let row = Row {
            section,
            what: what.into(),
            figure: figure.into(),
            against: against.into(),
            goal: goal.into(),
        };
        eprintln!(
            "{:<9} {:<58} {:>14}  {}  [{}]",
            row.section, row.what, row.figure, row.against, row.goal
        );
        self.rows.push(row);
    }

    fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("note: {text}");
        self.notes.push(text);
    }

    fn markdown(&self) -> String {
        let mut out = String::from(
            "# Benchmarks\n\n\
             Written by `cargo bench --bench fleetdeck` (benches/fleetdeck.rs); run it again to \
             regenerate this file (`cargo bench --bench fleetdeck -- keys pty` runs some sections \
             and prints them without writing it). It takes about ten minutes and needs the `aws` \
             CLI and Python's boto3 on PATH for the baselines. Everything runs on loopback: the simulator binds 127.0.0.1.\n\n",
        );
        out.push_str(&format!("Machine: {}\n\n", machine()));
        out.push_str(&format!("Run: {}\n\n", revision()));
        out.push_str(&format!(
            "Journals (fsynced on every intent and outcome): the working directory's disk, {}\n\n",
            self.filesystem
        ));
        out.push_str("| Section | Measure | Figure | Against the bound / baseline | Goal |\n");
        out.push_str("|---|---|---|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.section, r.what, r.figure, r.against, r.goal
            ));
        }
        if !self.notes.is_empty() {
            out.push_str("\n## How each figure is taken\n\n");
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| kib_field(&s, "MemTotal:"))
        .map_or("unknown memory".into(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or("unknown kernel".into(), |s| s.trim().to_string());
    let rustc = std::process::Command::new("rustc")
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory}, Linux {kernel}, {rustc}, bench profile (release)")
}

/// The commit measured and the day, so a figure can be traced to the code it came from.
fn revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // This file's own last output does not count as a change to what is measured.
    let changes = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ".",
        ":!BENCHMARKS.md",
    ];
    let dirty = git(&changes).is_some_and(|s| !s.is_empty());
    let day = time::OffsetDateTime::now_utc().date();
    format!(
        "commit {commit}{}, {day}",
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    )
}

fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The p-th percentile (0..=100) of the samples, nearest rank.
fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

fn mean(samples: &[Duration]) -> Duration {
    samples.iter().sum::<Duration>() / samples.len().max(1) as u32
}

// ---------------------------------------------------------------------------------------------
// The worker against the simulator

struct Session {
    commands: UnboundedSender<Command>,
    events: UnboundedReceiver<Event>,
    devices: Vec<Device>,
}

async fn connect(h: &SimHandle, journal: PathBuf) -> anyhow::Result<Session> {
    connect_to(h, journal, &h.regions[..1]).await
}

/// The worker on the simulator's default account in each of `regions`: one scope each.
async fn connect_to(
    h: &SimHandle,
    journal: PathBuf,
    regions: &[String],
) -> anyhow::Result<Session> {
    let mut targets = Vec::new();
    for region in regions {
        let Source(mut t) =
            Source::simulator(&h.endpoint, region, &h.access_key_id, &h.secret_access_key);
        targets.append(&mut t);
    }
    let scopes = targets.len();
    let source = Source(targets);
    // No background refresh: a listing it starts would land in whatever window is counted.
    let settings = Settings {
        journal: Some(journal),
        refresh_every: None,
        ..Settings::default()
    };
    let (commands, mut events) = worker::spawn(source, settings);
    let mut devices = Vec::new();
    let mut done = 0;
    while done < 2 * scopes {
        match events.recv().await.context("the worker stopped")? {
            Event::DevicesPage(_, page) => devices.extend(page),
            Event::ListingDone(..) => done += 1,
            Event::ListingFailed(_, service, e) => bail!("listing {} failed: {e}", service.label()),
            Event::Failure(f) => bail!("{f}"),
            _ => {}
        }
    }
    Ok(Session {
        commands,
        events,
        devices,
    })
}

/// Dispatches the plan; returns the time until every row has its job or task id.
async fn dispatch(s: &mut Session, plan: Plan) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    s.commands.send(Command::Dispatch(Box::new(plan)))?;
    let mut waiting: HashSet<usize> = loop {
        match s.events.recv().await.context("the worker stopped")? {
            Event::PlanStarted { ops, .. } => break ops.iter().map(|(op, _)| *op).collect(),
            Event::PlanRefused(r) => bail!("the plan was refused: {}", r.error),
            _ => {}
        }
    };
    let mut failed = 0;
    while !waiting.is_empty() {
        let event = tokio::time::timeout(Duration::from_secs(600), s.events.recv())
            .await
            .context("dispatch stalled")?
            .context("the worker stopped")?;
        if let Event::Op(
            op,
            OpUpdate {
                resource_id, error, ..
            },
        ) = event
        {
            if resource_id.is_some() {
                waiting.remove(&op);
            } else if error.is_some() && waiting.remove(&op) {
                failed += 1;
            }
        }
    }
    Ok((started.elapsed(), failed))
}

fn count(h: &SimHandle, key: &str) -> u64 {
    h.calls().get(key).copied().unwrap_or(0)
}

fn panorama_calls(h: &SimHandle) -> BTreeMap<String, u64> {
    h.calls()
        .into_iter()
        .filter(|(k, _)| k.starts_with("panorama:"))
        .collect()
}

fn diff(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn named(calls: &BTreeMap<String, u64>) -> String {
    if calls.is_empty() {
        return "none".into();
    }
    calls
        .iter()
        .map(|(k, v)| format!("{v} {}", k.split(':').nth(1).unwrap_or(k)))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// N Panorama jobs with AWS's quotas on; calls per status poll while they run; then the same
/// N jobs through a shell loop of the `aws` CLI against the same simulator.
async fn panorama(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
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
    let listed = panorama_calls(&h);
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
    let viewed = diff(&listed, &panorama_calls(&h));
    report.add(
        "status",
        format!("all {PANORAMA_JOBS} appliances come into view"),
        named(&viewed),
        format!("{} in view", keys.len()),
        "≤ ceil(N/25) + in view",
    );

    let refs: Vec<&Device> = s.devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    let jobs = plan.device_count();
    let before = h.ledger().len();
    let throttled_before = throttled(&h);
    let (took, failed) = dispatch(&mut s, plan).await?;
    let created = h.ledger().len() - before;
    let ours = throttled(&h) - throttled_before;
    // A one-token bucket refilled once a second lets N creates through in N − 1 seconds.
    let bound = Duration::from_secs(jobs as u64 - 1);
    report.add(
        "dispatch",
        format!("{jobs} Panorama REBOOT jobs, AWS quotas on (fleetdeck)"),
        secs(took),
        format!(
            "{:.3}× the (N − 1) × 1 s bound ({}); {created} jobs, {failed} failed, {ours} calls throttled",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound)
        ),
        "near the bound",
    );
    report.note(
        "Panorama dispatch: the worker (the engine the UI and `fleetdeck run` share, journal on) \
         against an in-process simulator with AWS quotas on; timed from the Dispatch command to \
         the last job id. The worker paces creates at one per 1.03 s, 3% under the quota, so its \
         pacing and the service's bucket do not disagree at the boundary; the first create goes \
         at once, so N creates need (N − 1) × 1.03 s. Each appliance also costs a \
         ListDevicesJobs read before its create (to reconcile a lost answer without a second \
         job), inside the 4 requests/s the worker allows itself; that read is made after the \
         create's turn comes and before it is sent, so its wait for a request token adds to \
         each create's 1.03 s, and the sends themselves are spaced 1.03 s apart so that none \
         is throttled.",
    );

    // The jobs run for 120 simulated seconds: count what the status polls cost meanwhile.
    // A job's state is read from its own record (DescribeDeviceJob) when the listing's
    // LatestDeviceJob says it moved: count the moves the worker reported meanwhile.
    let before = panorama_calls(&h);
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
    let polled = diff(&before, &panorama_calls(&h));
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
    drop(s);

    // The baselines, on the same simulator once those jobs are over.
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
        let throttled_before = throttled(&h);
        let result = match which {
            "cli" => aws_cli_loop(&h, &ids).await,
            _ => boto3_loop(&h, &ids).await,
        };
        match result {
            Ok((base, failed)) => {
                let created = h.ledger().len() - before;
                let theirs = throttled(&h) - throttled_before;
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
    h.stop().await;
    Ok(())
}

/// Every throttled answer the simulator gave, all operations.
fn throttled(h: &SimHandle) -> u64 {
    h.throttled().values().sum()
}

async fn aws_version() -> String {
    let out = tokio::process::Command::new("aws")
        .arg("--version")
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            // aws-cli v1 prints its version on stderr, v2 on stdout.
            let text = [o.stdout, o.stderr].concat();
            let text = String::from_utf8_lossy(&text);
            text.split_whitespace().next().unwrap_or("aws").to_string()
        }
        _ => "aws not found".into(),
    }
}

async fn boto3_loop(h: &SimHandle, ids: &[String]) -> anyhow::Result<(Duration, usize)> {
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

/// The same reboot across two regions: each (account, region) has its own create quota and
/// pacing, so the regions are sent in parallel and the wall time is one region's bound.
async fn regions(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let regions = vec!["us-east-1".to_string(), "us-west-2".to_string()];
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: PANORAMA_JOBS,
            snow: 0,
        },
        regions: regions.clone(),
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect_to(&h, scratch.join("regions.jsonl"), &regions).await?;
    let refs: Vec<&Device> = s.devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    let jobs = plan.device_count();
    // Preflight leaves offline appliances out: the bound is the busier region's sends.
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &plan.targets {
        if let Some(d) = s.devices.iter().find(|d| d.key() == *k) {
            *per.entry(d.region.as_str()).or_default() += 1;
        }
    }
    let busiest = per.values().copied().max().unwrap_or(1);
    let per = format!("{per:?}");
    let (took, failed) = dispatch(&mut s, plan).await?;
    let ledger = h.ledger();
    let creates = ledger
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
        .count();
    let distinct: HashSet<&str> = ledger
        .iter()
        .filter(|e| e.operation == "CreateJobForDevices")
        .map(|e| e.device_id.as_str())
        .collect();
    // Per region a one-token bucket: N creates in N − 1 seconds.
    let per_region = Duration::from_secs(busiest.saturating_sub(1) as u64);
    let serial = Duration::from_secs((jobs - 1) as u64);
    report.add(
        "dispatch",
        format!("{jobs} Panorama REBOOT jobs across 2 regions {per}, AWS quotas on"),
        secs(took),
        format!(
            "{:.3}× the per-region (N − 1) × 1 s bound ({}), serial would be {}; {creates} creates for {} appliances, {failed} failed",
            took.as_secs_f64() / per_region.as_secs_f64(),
            secs(per_region),
            secs(serial),
            distinct.len()
        ),
        "near the per-region bound",
    );
    Ok(())
}

async fn aws_cli_loop(h: &SimHandle, ids: &[String]) -> anyhow::Result<(Duration, usize)> {
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

/// N Snow targets, quotas off and 50 ms per call: CreateTask calls and wall time.
async fn snow(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: 0,
            snow: SNOW_TARGETS,
        },
        quotas: QuotaMode::Off,
        latency: SNOW_LATENCY,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect(&h, scratch.join("snow.jsonl")).await?;
    let refs: Vec<&Device> = s.devices.iter().collect();
    let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
    let targets = plan.device_count();
    let concurrency = Settings::default().concurrency;
    let before = count(&h, "snow-device-management:CreateTask");
    let (took, failed) = dispatch(&mut s, plan).await?;
    let calls = count(&h, "snow-device-management:CreateTask") - before;
    let expected = ceil_div(targets, 10);
    report.add(
        "dispatch",
        format!("{targets} Snow targets: CreateTask calls"),
        calls.to_string(),
        format!("ceil(N/10) = {expected}"),
        "= ceil(N/10)",
    );
    let bound = SNOW_LATENCY * ceil_div(expected, concurrency) as u32;
    report.add(
        "dispatch",
        format!("{targets} Snow targets, 50 ms per call, concurrency {concurrency}"),
        secs(took),
        format!(
            "{:.2}× the concurrency bound ceil({expected}/{concurrency}) × 50 ms = {}; {failed} failed",
            took.as_secs_f64() / bound.as_secs_f64(),
            secs(bound)
        ),
        "near the bound",
    );
    report.note(
        "Snow dispatch: the same worker, quotas off and 50 ms added to every call; timed from the \
         Dispatch command to the last task id. Each batch's intent and outcome are written to the \
         journal and fsynced before and after its CreateTask, so the disk's fsync time adds to \
         each call's 50 ms.",
    );
    drop(s);
    h.stop().await;
    Ok(())
}

/// Locked Snow devices an unlock is measured on, beside a few appliances it must not touch.
const UNLOCK_TARGETS: usize = 28;
const UNLOCK_APPLIANCES: usize = 10;

/// An unlock of every locked Snow device through `fleetdeck run`, the release binary, from
/// start to end: every call it makes, counted by the simulator.
async fn unlock(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let mut fleet = String::from("[panorama]\nimages = [\"5.0.21\"]\n");
    for i in 0..UNLOCK_APPLIANCES {
        fleet.push_str(&format!(
            "[[panorama.devices]]\nname = \"cam-{i:02}\"\nsoftware = \"5.0.21\"\n"
        ));
    }
    for _ in 0..UNLOCK_TARGETS {
        fleet.push_str(
            "[[snow.devices]]\ntype = \"SNOWCONE\"\nstate = \"LOCKED\"\nsoftware = \"7.1.0\"\n",
        );
    }
    let h = sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet),
        quotas: QuotaMode::Aws,
        ..SimConfig::default()
    })
    .await?;
    let journal = scratch.join("unlock.jsonl");
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .arg("run")
        .args(["--endpoint-url", &h.endpoint, "--region", "us-east-1"])
        .args([
            "--action", "unlock", "--filter", "svc:snow", "--yes", "--output", "json",
        ])
        .env("FLEETDECK_JOURNAL", &journal)
        .env("AWS_ACCESS_KEY_ID", &h.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &h.secret_access_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml")
        .env_remove("AWS_PROFILE")
        .env_remove("FLEETDECK_CONTEXT")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("fleetdeck run could not be started")?;
    let took = started.elapsed();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "fleetdeck run did not answer JSON: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let succeeded = summary["succeeded"].as_u64().unwrap_or(0);
    let calls = h.calls();
    let n = |op: &str| calls.get(op).copied().unwrap_or(0);
    let snow = |op: &str| n(&format!("snow-device-management:{op}"));
    let tasks = snow("CreateTask");
    let panorama: BTreeMap<String, u64> = panorama_calls(&h);
    let everything: BTreeMap<String, u64> = calls.clone();
    report.add(
        "status",
        format!("unlock of {UNLOCK_TARGETS} locked Snow devices, `fleetdeck run`, start to end"),
        format!("{} calls in {}", everything.values().sum::<u64>(), secs(took)),
        format!(
            "{succeeded} succeeded; {}; CreateTask {tasks} (ceil(N/10) = {}); DescribeDevice {} ({} devices); Panorama: {} (the fleet's listing, ceil({UNLOCK_APPLIANCES}/25) = {})",
            named(&everything),
            ceil_div(UNLOCK_TARGETS, 10),
            snow("DescribeDevice"),
            UNLOCK_TARGETS,
            named(&panorama),
            ceil_div(UNLOCK_APPLIANCES, 25),
        ),
        "ceil(N/10) CreateTask, 1 DescribeDevice per device, nothing to Panorama past the listing",
    );
    let polls = took.as_secs_f64() / Settings::default().poll_every.as_secs_f64();
    report.add(
        "status",
        format!("unlock of {UNLOCK_TARGETS}: ListExecutions against one per task per poll"),
        snow("ListExecutions").to_string(),
        format!(
            "{tasks} tasks × {polls:.0} polls of 2 s = {:.0} at most; the tasks lasted about 35 s each",
            tasks as f64 * polls
        ),
        "≤ 1 per unfinished task per poll, fewer as tasks age",
    );
    report.note(format!(
        "Unlock: `fleetdeck run --action unlock --filter svc:snow --yes` (the release binary) \
         against a simulator of {UNLOCK_APPLIANCES} appliances and {UNLOCK_TARGETS} locked Snow \
         devices, AWS quotas on, simulated time at real speed (an execution takes 5 s queued and \
         30 s running, ±20%). Every call from start to end is counted: the fleet's listing, \
         the lock states read before choosing (the filter could name them), ListTasks for \
         devices busy with another task, the tasks, and the polls until every execution ended."
    ));
    h.stop().await;
    Ok(())
}

/// A full refresh of more appliances than one page, with a terminal's worth in view.
async fn refresh(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: REFRESH_APPLIANCES,
            snow: 0,
        },
        quotas: QuotaMode::Off,
        ..SimConfig::default()
    })
    .await?;
    let mut s = connect(&h, scratch.join("refresh.jsonl")).await?;
    // What the UI reports in view on a 200×60 terminal with the cursor on the first row; the
    // app knows the worker's scope (context "sim"), or it would drop every row as not its own.
    let sim = Connection {
        context: "sim".into(),
        ..connection()
    };
    let mut app = App::new(vec![sim], true, Instant::now());
    app::update(&mut app, Msg::Resize(200, 60));
    let page = Event::DevicesPage(Service::Panorama, s.devices.clone());
    app::update(&mut app, Msg::Worker(Box::new(page)));
    let in_view = app::in_view(&app);
    anyhow::ensure!(!in_view.is_empty(), "the app shows none of the listed rows");
    let before = panorama_calls(&h);
    s.commands.send(Command::Look(in_view.clone()))?;
    let mut described = 0;
    while described < in_view.len() {
        if let Event::DeviceUpdated(_) = s.events.recv().await.context("the worker stopped")? {
            described += 1;
        }
    }
    let viewed = diff(&before, &panorama_calls(&h));
    // The cursor mid-list: what comes into view there is described, once each.
    for _ in 0..REFRESH_APPLIANCES / 2 {
        app::update(&mut app, key(KeyCode::Down));
    }
    let mid = app::in_view(&app);
    let fresh = mid.iter().filter(|k| !in_view.contains(k)).count();
    let before = panorama_calls(&h);
    s.commands.send(Command::Look(mid.clone()))?;
    let mut described = 0;
    while described < fresh {
        if let Event::DeviceUpdated(_) = s.events.recv().await.context("the worker stopped")? {
            described += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mid_viewed = diff(&before, &panorama_calls(&h));
    let before = panorama_calls(&h);
    s.commands.send(Command::Refresh)?;
    loop {
        match s.events.recv().await.context("the worker stopped")? {
            Event::ListingDone(_, Service::Panorama, _) => break,
            Event::ListingFailed(_, _, e) => bail!("{e}"),
            _ => {}
        }
    }
    // Let any describes a refresh might start arrive before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let refreshed = diff(&before, &panorama_calls(&h));
    let total: u64 = refreshed.values().sum();
    report.add(
        "status",
        format!(
            "{REFRESH_APPLIANCES} appliances, {} in view (200×60): first view",
            in_view.len()
        ),
        named(&viewed),
        "DescribeDevice only for what is in view",
        "≤ ceil(N/25) + in view",
    );
    report.add(
        "status",
        format!(
            "{REFRESH_APPLIANCES} appliances, cursor on row {}: {} in view, {fresh} not yet read",
            REFRESH_APPLIANCES / 2,
            mid.len()
        ),
        named(&mid_viewed),
        format!("{fresh} newly in view"),
        "≤ in view",
    );
    report.add(
        "status",
        format!("{REFRESH_APPLIANCES} appliances: calls per full refresh"),
        total.to_string(),
        format!(
            "goal ceil(N/25) = {}: {}",
            ceil_div(REFRESH_APPLIANCES, 25),
            named(&refreshed)
        ),
        "≤ ceil(N/25) + in view",
    );
    report.note(
        "Status: API calls counted by the simulator per operation (`GET /_fleetdeck/calls`). A \
         poll or refresh walks ListDevices (25 per page), whose LatestDeviceJob carries each \
         job's state; DescribeDevice goes only to the devices the UI reports in view (a \
         terminal's height either side of the cursor), once per appliance; a Snow device in view \
         is described again after each full refresh, since its lock state is only in \
         DescribeDevice.",
    );
    drop(s);
    h.stop().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The UI: `update` and `draw` as the event loop calls them, into ratatui's TestBackend

fn connection() -> Connection {
    Connection {
        profile: "bench".into(),
        region: "us-east-1".into(),
        panorama_endpoint: "http://127.0.0.1:4580".into(),
        snow_endpoint: "http://127.0.0.1:4580".into(),
        demo: true,
        context: "prod".into(),
        account: Some("123456789012".into()),
        ..Connection::default()
    }
}

/// A device as the worker would report it, with every column filled.
fn device(i: usize) -> Device {
    if i < 50 {
        let mut d = Device::new(Service::Panorama, format!("device-{i:026}"));
        d.name = Some(format!("site-{:03}-cam-{i:02}", i % 7).into());
        d.status = "UPDATE_NEEDED".into();
        d.connection = Some("ONLINE".into());
        d.current_software = Some("5.0.10".into());
        d.available_software = Some("5.0.21".into());
        d.latest = Some("OTA COMPLETED".into());
        d.tags.insert("site", format!("site-{:03}", i % 7));
        d
    } else {
        let mut d = Device::new(Service::Snow, format!("smd-{i:017}"));
        d.status = if i.is_multiple_of(3) {
            "UNLOCKED"
        } else {
            "LOCKED"
        }
        .into();
        d.connection = Some("2026-11-23T10:00:00Z".into());
        d.current_software = Some("1.4.2".into());
        d.latest = Some("reboot SUCCEEDED".into());
        d.tags.insert("site", format!("site-{:03}", i % 211));
        d
    }
}

fn big_app(n: usize, width: u16, height: u16) -> App {
    let mut app = App::new(vec![connection()], true, Instant::now());
    app::update(&mut app, Msg::Resize(width, height));
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let page = chunk.iter().map(|&i| device(i)).collect();
        let event = Event::DevicesPage(Service::Snow, page);
        app::update(&mut app, Msg::Worker(Box::new(event)));
    }
    app
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn frames(report: &mut Report) -> anyhow::Result<()> {
    let built = Instant::now();
    let mut app = big_app(BIG_FLEET, 200, 60);
    let load = built.elapsed();
    for (w, h) in [(200u16, 60u16), (80, 24)] {
        app::update(&mut app, Msg::Resize(w, h));
        let mut terminal = Terminal::new(TestBackend::new(w, h))?;
        let mut samples = Vec::new();
        for i in 0..2000 {
            // Move through the list so each frame shows different rows.
            let code = if i % 400 < 200 {
                KeyCode::PageDown
            } else {
                KeyCode::PageUp
            };
            app::update(&mut app, key(code));
            let t = Instant::now();
            terminal.draw(|f| ui::draw(&app, f))?;
            samples.push(t.elapsed());
        }
        let p99 = percentile(&mut samples, 99.0);
        report.add(
            "ui",
            format!("frame, {BIG_FLEET} devices, {w}×{h}: mean / p99"),
            format!("{} / {}", ms(mean(&samples)), ms(p99)),
            format!("{:.2}× the 2 ms goal (p99)", p99.as_secs_f64() / 0.002),
            "≤ 2 ms",
        );
    }
    report.note(format!(
        "Frames: `ui::draw` of an App holding {BIG_FLEET} devices into ratatui's TestBackend, \
         2,000 frames per size while paging through the list (terminal output not included). \
         Loading the {BIG_FLEET} devices as 1,000 pages of 100 took {} in all.",
        secs(load)
    ));
    Ok(())
}

/// 100,000 devices sorted by Status with 1,000 Snow rows in flight (marked and rebooted with
/// the operator's keys), 200×60.
fn app_in_flight() -> anyhow::Result<(App, Vec<usize>)> {
    let mut app = big_app(BIG_FLEET, 200, 60);
    // Service, Name, Region, Account, Status: a page of news then reorders rows.
    for _ in 0..5 {
        app::update(&mut app, key(KeyCode::Char('s')));
    }
    anyhow::ensure!(
        app.devices.sort == Some(app::SortColumn::Status),
        "not sorted by Status: {:?}",
        app.devices.sort
    );
    for _ in 0..100 {
        app::update(&mut app, key(KeyCode::Down));
    }
    for _ in 0..OPS_IN_FLIGHT {
        app::update(&mut app, key(KeyCode::Char(' ')));
    }
    app::update(&mut app, key(KeyCode::Char('b')));
    app::update(&mut app, key(KeyCode::Enter));
    for c in OPS_IN_FLIGHT.to_string().chars() {
        app::update(&mut app, key(KeyCode::Char(c)));
    }
    let commands = app::update(&mut app, key(KeyCode::Enter));
    let Some(Command::Dispatch(plan)) = commands.into_iter().next() else {
        bail!("the reboot of {OPS_IN_FLIGHT} devices was not dispatched");
    };
    // The engine's answer, as the worker would give it: one operation per target.
    let started: Vec<(usize, DeviceKey)> = plan.targets.iter().cloned().enumerate().collect();
    let ops: Vec<usize> = started.iter().map(|(op, _)| *op).collect();
    app::update(
        &mut app,
        Msg::Worker(Box::new(Event::PlanStarted {
            plan: "bench".into(),
            operation: plan.operation.clone(),
            ops: started,
            resumed: false,
        })),
    );
    anyhow::ensure!(ops.len() == OPS_IN_FLIGHT, "{} rows in flight", ops.len());
    Ok((app, ops))
}

/// A poll's news: every row in flight moves on a step.
fn poll_news(ops: &[usize], round: usize) -> Vec<Event> {
    let states = [
        OpState::Sending,
        OpState::Sent,
        OpState::Running(Progress::Queued),
        OpState::Running(Progress::InProgress),
    ];
    ops.iter()
        .map(|&op| {
            let update = OpUpdate {
                state: states[(round + op) % states.len()],
                resource_id: Some(format!("task-{}", op / 10)),
                error: None,
            };
            Event::Op(op, update)
        })
        .collect()
}

/// A full refresh: the whole fleet again as 1,000 pages of 100, a third of the Snow devices
/// having changed lock state, so under the Status sort they move.
fn refresh_news(round: usize) -> Vec<Event> {
    (0..BIG_FLEET)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(|chunk| {
            let page = chunk
                .iter()
                .map(|&i| {
                    let mut d = device(i);
                    if d.service == Service::Snow && (i + round).is_multiple_of(3) {
                        d.status = if d.status == "LOCKED" {
                            "UNLOCKED"
                        } else {
                            "LOCKED"
                        }
                        .into();
                    }
                    d
                })
                .collect();
            Event::DevicesPage(Service::Snow, page)
        })
        .collect()
}

type BenchTerm = Terminal<CrosstermBackend<tui::Quiet<std::io::Sink>>>;

/// The event loop as `tui::event_loop` runs it — keys first, then worker news, one
/// `tui::turn` and one frame written through crossterm — while a producer thread (the
/// worker's place) keeps news queued and another presses `keys` at random moments 4–30 ms
/// apart. Each sample is one key's time from the moment it was pressed to the end of the frame
/// that answers it, so a turn under way when it came is counted.
fn drive(
    app: &mut App,
    terminal: &mut BenchTerm,
    keys: Vec<KeyCode>,
    gap: std::ops::Range<u64>,
    news: impl FnMut(usize) -> Vec<Event> + Send + 'static,
) -> anyhow::Result<Vec<Duration>> {
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, KeyCode)>();
    let presser = std::thread::spawn(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for code in keys {
            std::thread::sleep(Duration::from_millis(rng.random_range(gap.clone())));
            if tx.send((Instant::now(), code)).is_err() {
                return;
            }
        }
    });
    // Bounded, so the producer stays ahead of the loop without holding every round at once.
    let (news_tx, news_rx) = std::sync::mpsc::sync_channel::<Event>(4096);
    let producer = std::thread::spawn(move || {
        let mut news = news;
        for round in 0.. {
            let batch = news(round);
            if batch.is_empty() {
                return;
            }
            for e in batch {
                if news_tx.send(e).is_err() {
                    return;
                }
            }
        }
    });
    let mut samples = Vec::new();
    loop {
        let (msg, pressed) = match rx.try_recv() {
            Ok((at, code)) => (key(code), Some(at)),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            Err(std::sync::mpsc::TryRecvError::Empty) => match news_rx.try_recv() {
                Ok(e) => (Msg::Worker(Box::new(e)), None),
                // Nothing queued: wait for the next key, as the loop would.
                Err(_) => match rx.recv_timeout(Duration::from_millis(1)) {
                    Ok((at, code)) => (key(code), Some(at)),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                },
            },
        };
        let code = match &msg {
            Msg::Key(k) => Some(k.code),
            _ => None,
        };
        let t0 = Instant::now();
        let _ = tui::turn(app, msg, || news_rx.try_recv().ok());
        let t1 = Instant::now();
        terminal.draw(|f| ui::draw(app, f))?;
        if let Some(at) = pressed {
            samples.push(at.elapsed());
            if std::env::var_os("FLEETDECK_BENCH_TRACE").is_some() {
                eprintln!("{code:?} turn {:?} draw {:?}", t1 - t0, t1.elapsed());
            }
        }
    }
    drop(news_rx);
    presser
        .join()
        .map_err(|_| anyhow::anyhow!("the key thread panicked"))?;
    producer
        .join()
        .map_err(|_| anyhow::anyhow!("the news thread panicked"))?;
    Ok(samples)
}

/// Key to frame with 100,000 devices and 1,000 rows in flight: a key alone, behind a poll's
/// news, during full refreshes, while typing a filter, and on sorts.
fn key_to_frame(report: &mut Report) -> anyhow::Result<()> {
    let (mut app, ops) = app_in_flight()?;

    // A fixed viewport: the backend never asks the (absent) terminal for its size.
    let mut terminal = Terminal::with_options(
        CrosstermBackend::new(tui::Quiet::new(std::io::sink())),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 200, 60)),
        },
    )?;
    let moves = [KeyCode::Down, KeyCode::Up, KeyCode::Tab, KeyCode::PageDown];
    let moving = |n: usize| (0..n).map(|i| moves[i % moves.len()]).collect::<Vec<_>>();
    let goal = |report: &mut Report, what: &str, samples: &mut Vec<Duration>| {
        let p99 = percentile(samples, 99.0);
        report.add(
            "ui",
            format!("key to frame, {BIG_FLEET} devices, {OPS_IN_FLIGHT} in flight, {what}: p50 / p99 (n = {})", samples.len()),
            format!("{} / {}", ms(percentile(samples, 50.0)), ms(p99)),
            format!("{:.2}× the 16 ms goal (p99)", p99.as_secs_f64() / 0.016),
            "p99 ≤ 16 ms",
        );
    };

    let mut alone = drive(&mut app, &mut terminal, moving(300), 4..30, |_| Vec::new())?;
    goal(report, "a key alone", &mut alone);
    let polls = |ops: &Vec<usize>| {
        let ops = ops.clone();
        move |round| poll_news(&ops, round)
    };
    // As the worker sends them: a poll's news for every row every 2 s.
    let paced = |ops: &Vec<usize>| {
        let ops = ops.clone();
        move |round| {
            if round > 0 {
                std::thread::sleep(Settings::default().poll_every);
            }
            poll_news(&ops, round)
        }
    };
    let mut polled = drive(&mut app, &mut terminal, moving(300), 4..30, polls(&ops))?;
    goal(
        report,
        "polls' news for every row queued all along",
        &mut polled,
    );

    // Full refreshes back to back, a poll's news between them.
    let refreshes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (counted, in_flight) = (refreshes.clone(), ops.clone());
    let mut refreshing = drive(&mut app, &mut terminal, moving(600), 4..30, move |round| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut news = refresh_news(round);
        news.extend(poll_news(&in_flight, round));
        news
    })?;
    goal(
        report,
        "full refreshes arriving (1,000 pages each)",
        &mut refreshing,
    );
    anyhow::ensure!(
        app.devices.len() == BIG_FLEET,
        "{} devices after the refreshes",
        app.devices.len()
    );

    // `/`, then a filter typed, edited and cleared, over and over, polls' news queued.
    let mut typing = Vec::new();
    for _ in 0..40 {
        typing.push(KeyCode::Char('/'));
        typing.extend("site-01".chars().map(KeyCode::Char));
        typing.extend([KeyCode::Backspace, KeyCode::Backspace]);
        typing.extend("2 lock".chars().map(KeyCode::Char));
        typing.push(KeyCode::Esc);
        typing.push(KeyCode::Esc);
    }
    let mut typed = drive(&mut app, &mut terminal, typing, 4..30, paced(&ops))?;
    goal(report, "typing a filter", &mut typed);

    // `s` through every column, and reversing, polls' news queued.
    // A sort is looked at before the next: 150–400 ms between keys.
    let sorting: Vec<KeyCode> = (0..100)
        .map(|i| {
            if i % 10 == 9 {
                KeyCode::Char('S')
            } else {
                KeyCode::Char('s')
            }
        })
        .collect();
    let mut sorted = drive(&mut app, &mut terminal, sorting, 150..400, paced(&ops))?;
    goal(report, "sorting by each column and reversing", &mut sorted);
    anyhow::ensure!(
        app.results.in_flight() == OPS_IN_FLIGHT,
        "rows in flight: {}",
        app.results.in_flight()
    );
    report.note(format!(
        "Key to frame (in process): {BIG_FLEET} devices sorted by Status and {OPS_IN_FLIGHT} \
         result rows in flight (marked and rebooted with the operator's keys), 200×60. The \
         bench runs the event loop's own turn (`tui::turn`: keys first; a key's frame goes out \
         at once; otherwise worker news for at most {} ms, then the in-view report) and writes \
         each frame through crossterm into a sink, while a second thread presses keys 4–30 ms \
         apart (150–400 ms for sorts, each looked at before the next); a sample runs from the press to the end of the answering frame, so the turn \
         under way when the key came is included. A producer thread keeps news queued (up to 4,096 events \
         ahead), faster than any worker sends it: a poll's {OPS_IN_FLIGHT} row updates at a time, \
         or {} full refreshes of 1,000 pages of 100 devices (a third of the Snow devices changing lock \
         state, so rows move under the sort). While typing and sorting the news is what the \
         worker sends: a poll's {OPS_IN_FLIGHT} row updates every 2 s. The filter typed is \
         `site-01`, two backspaces, `2 lock`, Esc twice, 40 times; the sort keys are `s` nine \
         times then `S`, 10 times. \
         Reading the key from a terminal is not included (the pseudo-terminal figure is).",
        tui::NEWS_PER_FRAME.as_millis(),
        refreshes.load(std::sync::atomic::Ordering::Relaxed)
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The release binary in a pseudo-terminal

struct Pty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    screen: Arc<Mutex<vt100::Parser>>,
    /// Kept open: the terminal lives as long as its master side.
    _master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn std::io::Write + Send>,
    /// What the screen is waited for, and when the reader first saw it.
    watch: Arc<Mutex<Watch>>,
    /// Every byte the program wrote to the terminal.
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

/// Text the screen should come to contain (or, with `present` false, to lose), and the moment
/// the bytes read back first made it so.
struct Watch {
    text: String,
    present: bool,
    at: Option<Instant>,
}

impl Watch {
    fn check(&mut self, contents: &str) {
        if self.at.is_none()
            && !self.text.is_empty()
            && contents.contains(&self.text) == self.present
        {
            self.at = Some(Instant::now());
        }
    }
}

impl Pty {
    fn spawn(
        args: &[&str],
        env: &[(&str, &str)],
        size: (u16, u16),
        watch: &str,
    ) -> anyhow::Result<Self> {
        let (cols, rows) = size;
        let pair = native_pty_system().openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })?;
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_fleetdeck"));
        cmd.args(args);
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pair.slave.spawn_command(cmd)?;
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader()?;
        let writer = pair.master.take_writer()?;
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(rows).context("rows")?,
            NonZeroU16::new(cols).context("cols")?,
            0,
        )));
        let watch = Arc::new(Mutex::new(Watch {
            text: watch.to_string(),
            present: true,
            at: None,
        }));
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (feed, mark, count) = (screen.clone(), watch.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                let mut parser = feed.lock().unwrap_or_else(|e| e.into_inner());
                parser.process(&buf[..n]);
                let contents = parser.screen().contents();
                drop(parser);
                mark.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .check(&contents);
            }
        });
        Ok(Self {
            child,
            screen,
            _master: pair.master,
            writer,
            watch,
            bytes,
        })
    }

    fn contents(&self) -> String {
        self.screen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .screen()
            .contents()
    }

    fn seen(&self) -> Option<Instant> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner()).at
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn send(&mut self, keys: &[u8]) -> anyhow::Result<()> {
        use std::io::Write;
        self.writer.write_all(keys)?;
        self.writer.flush()?;
        Ok(())
    }

    /// Writes `keys` and returns how long until the screen read back shows (or, with
    /// `present` false, no longer shows) `text`.
    fn press(&mut self, keys: &[u8], text: &str, present: bool) -> anyhow::Result<Duration> {
        let contents = self.contents();
        {
            let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
            *w = Watch {
                text: text.to_string(),
                present,
                at: None,
            };
            anyhow::ensure!(
                contents.contains(text) != present,
                "the screen already shows what {keys:?} should bring ({text:?})"
            );
        }
        let pressed = Instant::now();
        self.send(keys)?;
        let deadline = pressed + Duration::from_secs(5);
        loop {
            if let Some(at) = self.seen() {
                return Ok(at.duration_since(pressed));
            }
            if Instant::now() > deadline {
                bail!(
                    "the screen did not answer {keys:?} with {text:?} within 5 s:\n{}",
                    self.contents()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn wait(&self, what: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while !ok(&self.contents()) {
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what}; the screen:\n{}",
                    self.contents()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn first_frame(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let journal = scratch.join("first-frame.jsonl");
    let journal = journal.to_string_lossy().to_string();
    let mut samples = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        let pty = Pty::spawn(
            &["--demo"],
            &[("FLEETDECK_JOURNAL", &journal)],
            (120, 40),
            " fleetdeck ",
        )?;
        pty.wait("the first frame", Duration::from_secs(20), |s| {
            s.contains(" fleetdeck ")
        })?;
        let seen = pty.seen().context("the first frame was not timed")?;
        samples.push(seen.duration_since(started));
    }
    let p50 = percentile(&mut samples, 50.0);
    let worst = percentile(&mut samples, 100.0);
    report.add(
        "ui",
        "time to the first frame of `fleetdeck --demo`: median / worst of 15",
        format!("{} / {}", ms(p50), ms(worst)),
        format!("{:.2}× the 50 ms goal (median)", p50.as_secs_f64() / 0.05),
        "≤ 50 ms",
    );
    report.note(
        "First frame: the release binary spawned in a 120×40 pseudo-terminal, timed from the \
         spawn to the moment the bytes read back from the terminal, fed through a vt100 parser, \
         show the status bar.",
    );
    Ok(())
}

/// Snow devices listed for the end-to-end terminal figures, and how many are rebooted.
const PTY_FLEET: usize = 2000;

/// The release binary in a 120×40 pseudo-terminal against the simulator: bytes written while
/// idle and with 1,000 operations in flight, and key to frame through the terminal.
async fn terminal_end_to_end(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    // Every device reachable, so the plan takes every marked row and 1,000 are in flight (a
    // generated fleet leaves 1 in 20 unreachable, which the preflight leaves out).
    let mut fleet = String::from("[panorama]\nimages = [\"5.0.21\"]\n");
    for i in 0..PTY_FLEET {
        let state = if i % 2 == 0 { "LOCKED" } else { "UNLOCKED" };
        fleet.push_str(&format!(
            "[[snow.devices]]\nstate = \"{state}\"\nsoftware = \"7.1.0\"\n"
        ));
    }
    let h = sim::start(SimConfig {
        fleet: FleetSource::Toml(fleet),
        quotas: QuotaMode::Off,
        // Executions take about 70 s: the rows stay in flight while they are measured.
        speed: 0.5,
        ..SimConfig::default()
    })
    .await?;
    let journal = scratch.join("pty.jsonl").to_string_lossy().to_string();
    let endpoint = h.endpoint.clone();
    let (key, secret) = (h.access_key_id.clone(), h.secret_access_key.clone());
    let figures = tokio::task::spawn_blocking(move || -> anyhow::Result<PtyFigures> {
        let listed = format!("Devices {PTY_FLEET} (0 Panorama, {PTY_FLEET} Snow)");
        let mut pty = Pty::spawn(
            &["--endpoint-url", &endpoint, "--region", "us-east-1"],
            &[
                ("FLEETDECK_JOURNAL", &journal),
                ("AWS_ACCESS_KEY_ID", &key),
                ("AWS_SECRET_ACCESS_KEY", &secret),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
                ("FLEETDECK_CONFIG", "/nonexistent/fleetdeck/config.toml"),
            ],
            (120, 40),
            "",
        )?;
        pty.wait("every device listed", Duration::from_secs(60), |s| {
            s.contains(&listed) && !s.contains("loading")
        })?;
        // The rows in view are described after the listing: let that settle.
        std::thread::sleep(Duration::from_secs(3));
        let idle_window = Duration::from_secs(31);
        let (before, shown) = (pty.bytes(), pty.contents());
        std::thread::sleep(idle_window);
        let idle = pty.bytes() - before;
        // What the idle bytes drew: the rows whose text is not what it was (a Seen cell turning
        // a minute is a change; a spinner come and gone is not).
        let after = pty.contents();
        let idle_changed = shown
            .lines()
            .zip(after.lines())
            .filter(|(a, b)| a != b)
            .count();
        // Where on those lines the text differs, in columns, against where the Seen column is.
        let mut band: Option<(usize, usize)> = None;
        for (a, b) in shown.lines().zip(after.lines()).filter(|(a, b)| a != b) {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let differs = |i: &usize| a.get(*i) != b.get(*i);
            let all = 0..a.len().max(b.len());
            if let (Some(lo), Some(hi)) = (all.clone().find(differs), all.rev().find(differs)) {
                band = Some(band.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
            }
        }
        let seen_at = shown
            .lines()
            .find_map(|l| l.find(" Seen ").map(|b| l[..b].chars().count() + 1));
        let idle_where = match (band, seen_at) {
            (Some((lo, hi)), Some(at)) => format!(
                ", differing in columns {}–{} (the Seen column starts at {})",
                lo + 1,
                hi + 1,
                at + 1
            ),
            _ => String::new(),
        };

        // 1,000 marked with Space (which moves on a row), rebooted, the count typed.
        pty.send(&[b' '; OPS_IN_FLIGHT])?;
        let marked = format!("{OPS_IN_FLIGHT} marked");
        pty.wait("the marks", Duration::from_secs(30), |s| {
            s.contains(&marked)
        })?;
        pty.send(b"b")?;
        std::thread::sleep(Duration::from_millis(300));
        pty.send(b"\r")?;
        // The count typed is the one the confirmation asks for: every marked row.
        pty.wait("the confirmation", Duration::from_secs(10), |s| {
            confirm_count(s).is_some()
        })?;
        let screen = pty.contents();
        let asked = confirm_count(&screen)
            .ok_or_else(|| anyhow::anyhow!("no count to type on the confirmation:\n{screen}"))?;
        anyhow::ensure!(
            asked == OPS_IN_FLIGHT,
            "the plan holds {asked} devices, not the {OPS_IN_FLIGHT} marked:\n{screen}"
        );
        pty.send(asked.to_string().as_bytes())?;
        std::thread::sleep(Duration::from_millis(300));
        pty.send(b"\r")?;
        let results = format!(" Results {asked} ");
        pty.wait("the results", Duration::from_secs(30), |s| {
            s.contains(&results)
        })?;
        // Every task created (100 calls at 8 at a time): the rows are in flight.
        std::thread::sleep(Duration::from_secs(5));
        let flight_window = Duration::from_secs(20);
        let before = pty.bytes();
        std::thread::sleep(flight_window);
        let in_flight = pty.bytes() - before;

        // A filter typed and erased, a key at a time, each timed to its answer on screen.
        pty.send(b"/")?;
        std::thread::sleep(Duration::from_millis(300));
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let typed = "smd-1";
        let mut samples = Vec::new();
        for _ in 0..40 {
            for n in 1..=typed.len() {
                let shown = format!("filter \"{}\"", &typed[..n]);
                samples.push(pty.press(&typed.as_bytes()[n - 1..n], &shown, true)?);
                std::thread::sleep(Duration::from_millis(rng.random_range(10..40)));
            }
            for n in (0..typed.len()).rev() {
                let took = if n == 0 {
                    pty.press(&[0x7f], "· filter \"", false)?
                } else {
                    pty.press(&[0x7f], &format!("filter \"{}\"", &typed[..n]), true)?
                };
                samples.push(took);
                std::thread::sleep(Duration::from_millis(rng.random_range(10..40)));
            }
        }
        let still = pty.contents();
        Ok(PtyFigures {
            idle,
            idle_window,
            idle_changed,
            idle_where,
            in_flight,
            flight_window,
            samples,
            in_flight_at_end: still.contains(&results),
        })
    })
    .await??;
    h.stop().await;
    let PtyFigures {
        idle,
        idle_window,
        idle_changed,
        idle_where,
        in_flight,
        flight_window,
        mut samples,
        in_flight_at_end,
    } = figures;
    anyhow::ensure!(in_flight_at_end, "the results pane left the screen");
    let per_sec = |b: u64, w: Duration| b as f64 / w.as_secs_f64();
    report.add(
        "ui",
        format!("bytes written to the terminal while idle, {PTY_FLEET} devices, 120×40"),
        format!("{:.1} B/s", per_sec(idle, idle_window)),
        format!(
            "{idle} bytes in {} (a background refresh included); {idle_changed} lines on screen changed{idle_where}",
            secs(idle_window)
        ),
        "0",
    );
    let rate = per_sec(in_flight, flight_window);
    report.add(
        "ui",
        format!("bytes written to the terminal, {OPS_IN_FLIGHT} operations in flight, 120×40"),
        format!("{:.0} B/s", rate),
        format!(
            "{:.2}× the 4 KB/s goal; {in_flight} bytes in {}",
            rate / 4000.0,
            secs(flight_window)
        ),
        "≤ 4 KB/s",
    );
    let p99 = percentile(&mut samples, 99.0);
    report.add(
        "ui",
        format!(
            "key to frame through a pseudo-terminal, {OPS_IN_FLIGHT} in flight, typing a filter: p50 / p99 (n = {})",
            samples.len()
        ),
        format!("{} / {}", ms(percentile(&mut samples, 50.0)), ms(p99)),
        format!("{:.2}× the 16 ms goal (p99)", p99.as_secs_f64() / 0.016),
        "p99 ≤ 16 ms",
    );
    report.note(format!(
        "Terminal end to end: the release binary in a 120×40 pseudo-terminal against a simulator \
         of {PTY_FLEET} Snow devices (quotas off, simulated time at half speed so executions \
         last about 70 s). Bytes are every byte read from the terminal's master side. Idle: \
         the fleet listed and the rows in view described, then {} with no key pressed, which \
         includes a background refresh. In flight: {OPS_IN_FLIGHT} devices marked with Space, \
         rebooted with `b`, Enter, the count typed and Enter; counted over {} once every task \
         was created, the polls moving the rows. Key to frame: with those {OPS_IN_FLIGHT} in \
         flight, `/` then `smd-1` typed and erased with Backspace, 40 times, 10–40 ms between \
         keys; each sample runs from the key written to the master to the moment the bytes read \
         back, fed through a vt100 parser, show the filter as typed in the devices pane's title.",
        secs(idle_window),
        secs(flight_window)
    ));
    Ok(())
}

/// The count a confirmation asks to be typed: "Type N (the number of devices) to confirm".
fn confirm_count(screen: &str) -> Option<usize> {
    screen.match_indices("Type ").find_map(|(at, t)| {
        let digits: String = screen[at + t.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

struct PtyFigures {
    idle: u64,
    idle_window: Duration,
    idle_changed: usize,
    /// Which columns of the screen the idle changes fall in.
    idle_where: String,
    in_flight: u64,
    flight_window: Duration,
    samples: Vec<Duration>,
    in_flight_at_end: bool,
}

async fn peak_memory(report: &mut Report, scratch: &Path) -> anyhow::Result<()> {
    let h = sim::start(SimConfig {
        fleet: FleetSource::Generated {
            panorama: 0,
            snow: BIG_FLEET,
        },
        quotas: QuotaMode::Off,
        ..SimConfig::default()
    })
    .await?;
    let journal = scratch.join("memory.jsonl").to_string_lossy().to_string();
    let endpoint = h.endpoint.clone();
    let (key, secret) = (h.access_key_id.clone(), h.secret_access_key.clone());
    let done = format!("Devices {BIG_FLEET} (0 Panorama, {BIG_FLEET} Snow)");
    let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, Duration)> {
        let started = Instant::now();
        let pty = Pty::spawn(
            &["--endpoint-url", &endpoint, "--region", "us-east-1"],
            &[
                ("FLEETDECK_JOURNAL", &journal),
                ("AWS_ACCESS_KEY_ID", &key),
                ("AWS_SECRET_ACCESS_KEY", &secret),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ],
            (200, 60),
            &done,
        )?;
        pty.wait("every device listed", Duration::from_secs(300), |s| {
            s.contains(&done) && !s.contains("loading")
        })?;
        let listed = started.elapsed();
        // The devices in view are described after the listing: let that settle first.
        let pid = pty.child.process_id().context("no process id")?;
        std::thread::sleep(Duration::from_secs(2));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak = kib_field(&status, "VmHWM:").context("no VmHWM")?;
        Ok((peak, listed))
    })
    .await??;
    let (peak_kib, listed) = measured;
    let mib = peak_kib as f64 / 1024.0;
    report.add(
        "ui",
        format!("peak memory (VmHWM), {BIG_FLEET} devices listed, 200×60"),
        format!("{mib:.1} MiB"),
        format!("{:.2}× the 100 MiB goal", mib / 100.0),
        "≤ 100 MiB",
    );
    report.note(format!(
        "Peak memory: the release binary in a 200×60 pseudo-terminal against a simulator with \
         {BIG_FLEET} Snow devices (quotas off), read from /proc/PID/status once the whole fleet \
         was listed ({} from spawn to the last page), the devices in view described.",
        secs(listed)
    ));
    h.stop().await;
    Ok(())
}
