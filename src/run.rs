//! `fleetdeck run`: one operation without the full-screen UI. It uses the same pieces as the
//! terminal UI — the devices list and its filter, the plan, validation, the worker (dispatch,
//! journal, tracking) — and prints progress and a summary per device.

use std::collections::HashSet;
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

    let mut list = list_devices(&mut events, text).await?;
    // A Snow device's lock state is only in DescribeDevice, and nothing is described unasked:
    // a filter may name the state, and an unlock skips devices already unlocked.
    if args.filter.is_some() {
        let snow = keys_of(&list, Service::Snow, |_| true);
        describe(&commands, &mut events, &mut list, snow).await?;
    }
    let chosen = choose(&list, &args)?;
    if matches!(args.action, Action::Unlock) && args.filter.is_none() {
        let snow = keys_of(&list, Service::Snow, |k| chosen.contains(k));
        describe(&commands, &mut events, &mut list, snow).await?;
    }
    let operation = match args.action {
        Action::Reboot => Operation::Reboot,
        Action::Unlock => Operation::Unlock,
        Action::Ota => {
            let version = match &args.image_version {
                Some(v) => v.clone(),
                None => {
                    let appliances = keys_of(&list, Service::Panorama, |k| chosen.contains(k));
                    describe(&commands, &mut events, &mut list, appliances).await?;
                    highest_available(&list, &chosen)?
                }
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

fn keys_of(
    list: &Devices,
    service: Service,
    wanted: impl Fn(&DeviceKey) -> bool,
) -> Vec<DeviceKey> {
    (0..list.shown())
        .filter_map(|i| list.row(i))
        .map(Device::key)
        .filter(|k| k.service == service && wanted(k))
        .collect()
}

/// Reads DescribeDevice for these devices into the list. One that cannot be read keeps what
/// its listing said, and the operator is told.
async fn describe(
    commands: &tokio::sync::mpsc::UnboundedSender<Command>,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    list: &mut Devices,
    keys: Vec<DeviceKey>,
) -> anyhow::Result<()> {
    let mut waiting: HashSet<DeviceKey> = keys.iter().cloned().collect();
    if waiting.is_empty() {
        return Ok(());
    }
    commands
        .send(Command::Look(keys))
        .context("the worker stopped")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut read = Vec::new();
    while !waiting.is_empty() {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} devices did not answer DescribeDevice within 2 minutes",
                    waiting.len()
                )
            })?
            .context("the worker stopped")?;
        match event {
            Event::DeviceUpdated(d) if waiting.remove(&d.key()) => read.push(d),
            Event::DescribeFailed(key, e) if waiting.remove(&key) => {
                eprintln!("DescribeDevice {} failed: {e}", key.id);
            }
            _ => {}
        }
    }
    list.upsert(read);
    Ok(())
}

/// The highest LatestSoftware among the chosen appliances.
fn highest_available(list: &Devices, chosen: &[DeviceKey]) -> anyhow::Result<String> {
    let available = chosen
        .iter()
        .filter_map(|k| list.get(k))
        .filter_map(|d| d.available_software.as_deref());
    highest(available).map(str::to_string).context(
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
