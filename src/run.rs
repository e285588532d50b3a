//! `fleetdeck run`: one operation without the full-screen UI. It uses the same pieces as the
//! terminal UI — the devices list and its filter, the plan, validation, the worker (dispatch,
//! journal, tracking) — and prints progress and a summary per device.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::app::Devices;
use crate::cli::{Action, Output, RunArgs};
use crate::fleet::{Device, DeviceKey, Operation, Plan, Service, SnowOptions, highest, validate};
use crate::tui::Session;
use crate::worker::{self, Command, Event, OpUpdate};

/// A device's part in the run, as the summary reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub service: &'static str,
    pub device: String,
    pub name: String,
    pub operation: String,
    pub state: String,
    pub resource_id: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.error.is_none() && matches!(self.state.as_str(), "COMPLETED" | "SUCCEEDED")
    }
}

/// Runs the operation; Ok(false) when any device failed.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let snow = SnowOptions {
        description: validate::description(args.description.as_deref().unwrap_or(""))
            .map_err(anyhow::Error::msg)?,
        tags: validate::tags(&args.tags.join(",")).map_err(anyhow::Error::msg)?,
    };
    if let Some(v) = &args.image_version {
        validate::image_version(v).map_err(anyhow::Error::msg)?;
    }
    if args.session.read_only {
        bail!("--read-only: `run` changes devices, so there is nothing it may do");
    }
    let session = Session::prepare(&args.session).await?;
    let (commands, mut events) = worker::spawn(session.source, session.settings);
    let text = args.output == Output::Text;

    let list = list_devices(&mut events, text).await?;
    let chosen = choose(&list, &args)?;
    let operation = match args.action {
        Action::Reboot => Operation::Reboot,
        Action::Unlock => Operation::Unlock,
        Action::Ota => {
            let version = match &args.image_version {
                Some(v) => v.clone(),
                None => highest_available(&commands, &mut events, &list, &chosen).await?,
            };
            Operation::Ota {
                image_version: validate::image_version(&version).map_err(anyhow::Error::msg)?,
                allow_major: args.allow_major,
            }
        }
    };
    let refs: Vec<&Device> = chosen.iter().filter_map(|k| list.get(k)).collect();
    let plan = Plan::new(operation, snow, &refs);
    for s in &plan.skipped {
        eprintln!("skipped {} ({})", s.label, s.reason);
    }
    if plan.is_empty() {
        bail!(
            "the {} applies to none of the chosen devices",
            plan.operation.label()
        );
    }
    for bump in &plan.major_bumps {
        eprintln!("major version update: {bump}");
    }
    eprintln!(
        "{}: {} devices, {}",
        plan.operation.label(),
        plan.device_count(),
        plan.calls()
    );
    if !args.yes {
        confirm(plan.device_count())?;
    }

    let ops: Vec<(usize, DeviceKey)> = plan.targets().cloned().enumerate().collect();
    let mut outcomes: Vec<Outcome> = ops
        .iter()
        .map(|(_, k)| Outcome {
            service: match k.service {
                Service::Panorama => "panorama",
                Service::Snow => "snow-device-management",
            },
            device: k.id.clone(),
            name: list.get(k).map_or(k.id.clone(), |d| d.label().to_string()),
            operation: plan.operation.label().to_string(),
            state: "QUEUED".into(),
            resource_id: None,
            error: None,
        })
        .collect();
    commands
        .send(Command::Dispatch { plan, ops })
        .context("the worker stopped")?;
    follow(&mut events, &mut outcomes, text).await?;

    let (done, wait) = tokio::sync::oneshot::channel();
    if commands.send(Command::Shutdown(done)).is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), wait).await;
    }
    report(&outcomes, args.output)?;
    Ok(outcomes.iter().all(Outcome::ok))
}

/// Reads both services' devices as the UI does; a service that cannot be listed is an error.
async fn list_devices(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    text: bool,
) -> anyhow::Result<Devices> {
    let mut list = Devices::default();
    let mut done = 0;
    let mut services = 2;
    while done < services {
        match events.recv().await.context("the worker stopped")? {
            Event::DevicesPage(_, page) => list.upsert(page),
            Event::ListingDone(..) => done += 1,
            Event::ListingFailed(service, e) => {
                bail!("listing {} devices failed: {e}", service.label())
            }
            // Panorama on AWS's own endpoint is left out: one listing fewer.
            Event::Failure(message) if message.contains("ended Panorama") => {
                if text {
                    eprintln!("{message}");
                }
                services = 1;
            }
            Event::Failure(message) => bail!("{message}"),
            _ => {}
        }
    }
    Ok(list)
}

fn choose(list: &Devices, args: &RunArgs) -> anyhow::Result<Vec<DeviceKey>> {
    let all: Vec<&Device> = (0..list.shown()).filter_map(|i| list.row(i)).collect();
    let keys: Vec<DeviceKey> = if args.all {
        all.iter().map(|d| d.key()).collect()
    } else if let Some(expr) = &args.filter {
        let mut filtered = Devices::default();
        filtered.upsert(all.iter().map(|d| (*d).clone()).collect());
        filtered.set_filter(expr.clone());
        (0..filtered.shown())
            .filter_map(|i| filtered.row(i))
            .map(Device::key)
            .collect()
    } else {
        let mut keys = Vec::new();
        for wanted in &args.devices {
            let found = all.iter().find(|d| d.id == *wanted || d.label() == wanted);
            match found {
                Some(d) => keys.push(d.key()),
                None => bail!("no device has the id or name {wanted}"),
            }
        }
        keys
    };
    if keys.is_empty() {
        bail!("no device matches");
    }
    Ok(keys)
}

/// The highest LatestSoftware among the chosen appliances, waiting for their descriptions.
async fn highest_available(
    commands: &tokio::sync::mpsc::UnboundedSender<Command>,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    list: &Devices,
    chosen: &[DeviceKey],
) -> anyhow::Result<String> {
    let mut known: HashMap<DeviceKey, String> = chosen
        .iter()
        .filter_map(|k| {
            list.get(k)
                .and_then(|d| d.available_software.clone())
                .map(|v| (k.clone(), v))
        })
        .collect();
    let appliances: Vec<DeviceKey> = chosen
        .iter()
        .filter(|k| k.service == Service::Panorama)
        .cloned()
        .collect();
    let wanted = appliances.len();
    // Only DescribeDevice tells what an appliance can take; nothing is described unasked.
    commands
        .send(Command::Look(appliances))
        .context("the worker stopped")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while known.len() < wanted {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .context(
                "appliances did not report their available software in time; pass --image-version",
            )?
            .context("the worker stopped")?;
        if let Event::DeviceUpdated(d) = event
            && chosen.contains(&d.key())
            && let Some(v) = d.available_software.clone()
        {
            known.insert(d.key(), v);
        }
    }
    highest(known.values().map(String::as_str))
        .map(str::to_string)
        .context(
            "no appliance among those chosen reports an available version; pass --image-version",
        )
}

fn confirm(count: usize) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to change {count} devices without confirmation: stdin is not a terminal (pass --yes)"
        );
    }
    eprint!("Type {count} to confirm: ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if line.trim() != count.to_string() {
        bail!("not confirmed; nothing was sent");
    }
    Ok(())
}

/// Follows every row to its end: a progress line on a terminal, a line per change otherwise.
async fn follow(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    outcomes: &mut [Outcome],
    text: bool,
) -> anyhow::Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut done = vec![false; outcomes.len()];
    while done.iter().any(|d| !d) {
        let Event::Op(
            op,
            OpUpdate {
                state,
                resource_id,
                error,
                done: finished,
            },
        ) = events.recv().await.context("the worker stopped")?
        else {
            continue;
        };
        let Some(row) = outcomes.get_mut(op) else {
            continue;
        };
        if done[op] {
            continue;
        }
        let changed = row.state != state;
        row.state = state;
        if resource_id.is_some() {
            row.resource_id = resource_id;
        }
        if let Some(e) = error {
            row.error = Some(e.to_string());
        }
        done[op] |= finished;
        if !text {
            continue;
        }
        if tty {
            let n = done.iter().filter(|d| **d).count();
            let width = 30;
            let filled = n * width / done.len();
            eprint!(
                "\r[{}{}] {n}/{} done",
                "#".repeat(filled),
                "-".repeat(width - filled),
                done.len()
            );
        } else if changed {
            eprintln!("{} {} {}", row.name, row.operation, row.state);
        }
    }
    if text && tty {
        eprintln!();
    }
    Ok(())
}

fn report(outcomes: &[Outcome], output: Output) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        Output::Json => {
            let failed = outcomes.iter().filter(|o| !o.ok()).count();
            let summary = serde_json::json!({
                "devices": outcomes,
                "succeeded": outcomes.len() - failed,
                "failed": failed,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        }
        Output::Text => {
            for o in outcomes {
                writeln!(
                    out,
                    "{:<8} {:<24} {:<7} {:<12} {:<30} {}",
                    if o.service == "panorama" {
                        "PAN"
                    } else {
                        "SNOW"
                    },
                    o.name,
                    o.operation,
                    o.state,
                    o.resource_id.as_deref().unwrap_or("-"),
                    o.error.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    Ok(())
}
