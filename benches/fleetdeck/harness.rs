//! What the sections share: a worker against a simulator (the engine the UI and
//! `fleetdeck run` use, journal on), a dispatch timed to its last job id, and the
//! simulator's call counts.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fleetdeck::fleet::Device;
use fleetdeck::ops::{OpUpdate, Plan};
use fleetdeck::protocol::{Command, Event, Settings, Source};
use fleetdeck::sim::SimHandle;
use fleetdeck::worker;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

pub(crate) struct Session {
    pub(crate) commands: UnboundedSender<Command>,
    pub(crate) events: UnboundedReceiver<Event>,
    pub(crate) devices: Vec<Device>,
}

pub(crate) async fn connect(h: &SimHandle, journal: PathBuf) -> anyhow::Result<Session> {
    connect_to(h, journal, &h.regions[..1]).await
}

/// The worker on the simulator's default account in each of `regions`: one scope each.
pub(crate) async fn connect_to(
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
pub(crate) async fn dispatch(s: &mut Session, plan: Plan) -> anyhow::Result<(Duration, usize)> {
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

pub(crate) fn count(h: &SimHandle, key: &str) -> u64 {
    h.calls().get(key).copied().unwrap_or(0)
}

pub(crate) fn panorama_calls(h: &SimHandle) -> BTreeMap<String, u64> {
    h.calls()
        .into_iter()
        .filter(|(k, _)| k.starts_with("panorama:"))
        .collect()
}

pub(crate) fn diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

pub(crate) fn named(calls: &BTreeMap<String, u64>) -> String {
    if calls.is_empty() {
        return "none".into();
    }
    calls
        .iter()
        .map(|(k, v)| format!("{v} {}", k.split(':').nth(1).unwrap_or(k)))
        .collect::<Vec<_>>()
        .join(" + ")
}

pub(crate) fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Every throttled answer the simulator gave, all operations.
pub(crate) fn throttled(h: &SimHandle) -> u64 {
    h.throttled().values().sum()
}

pub(crate) async fn aws_version() -> String {
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
