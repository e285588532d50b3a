//! Choosing what a run sends to: the devices listed as the UI lists them, chosen by the flags
//! (or by an ended plan for `--retry`), described where preflight needs what only
//! DescribeDevice says, then made into a plan with its waves.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use super::flags::Staging;
use crate::app::Devices;
use crate::cli::{Action, RunArgs};
use crate::fleet::{Device, DeviceKey, Operation, Service, SnowOptions, highest, validate};
use crate::journal;
use crate::ops::rollout::Rollout;
use crate::ops::{Plan, Preflight};
use crate::protocol::{Command, Event, Resumable};

/// The devices listed, the unfinished plans the journal offers, and each scope's account.
pub struct Listed {
    pub devices: Devices,
    pub unfinished: Vec<Resumable>,
    pub accounts: BTreeMap<String, String>,
}

/// Reads the devices of `services` as the UI does; a service that cannot be listed is an
/// error. Unfinished plans the journal offers arrive meanwhile, and are kept for `--resume`.
pub async fn list_devices(
    events: &mut mpsc::UnboundedReceiver<Event>,
    services: &[Service],
    text: bool,
    team: bool,
) -> anyhow::Result<Listed> {
    let mut list = Devices::default();
    let mut unfinished = Vec::new();
    let mut connections: Vec<crate::aws::Connection> = Vec::new();
    // Every scope's listings: both services, less Panorama where AWS's own endpoint is used.
    let mut left: Option<usize> = None;
    let mut failures = Failures::default();
    // Team mode: the table must have answered too, before anything is chosen.
    let mut joined = !team;
    while left != Some(0) || !joined {
        match events.recv().await.context("the worker stopped")? {
            Event::TeamJoined(Ok(j)) => {
                joined = true;
                eprintln!("team table {} as {}", j.table, j.who);
            }
            Event::TeamJoined(Err(why)) => bail!("{why}"),
            Event::DevicesPage(_, page) => list.upsert(page),
            Event::ListingDone(..) => left = left.map(|n| n.saturating_sub(1)),
            Event::ListingFailed(scope, service, e) => {
                left = left.map(|n| n.saturating_sub(1));
                let c = connections
                    .iter()
                    .find(|c| c.scope() == scope)
                    .cloned()
                    .unwrap_or_default();
                failures.add(&scope, service, &e, &c);
            }
            Event::Connected(c) => {
                if left.is_none() {
                    left = Some(listings(&c, services));
                }
                list.set_scope_order(c.iter().map(|c| c.scope()).collect());
                connections = c;
            }
            // Panorama on AWS's own endpoint is left out (counted above).
            Event::Failure(message) if message.contains("ended Panorama") && !text => {}
            // Not fatal by itself (a journal problem refuses the plan, with its reason).
            Event::Failure(message) => eprintln!("{message}"),
            Event::Unfinished(plan) => unfinished.push(plan),
            _ => {}
        }
    }
    // Every scope must be read before a plan is made of them: a device missing because its
    // context failed would silently shrink `--all` or a filter.
    failures.refuse()?;
    let accounts = connections
        .iter()
        .filter_map(|c| Some((c.scope(), c.account.clone()?)))
        .collect();
    Ok(Listed {
        devices: list,
        unfinished,
        accounts,
    })
}

/// How many listings the scopes make: each service in each, less Panorama where AWS's own
/// endpoint would be called.
fn listings(connections: &[crate::aws::Connection], services: &[Service]) -> usize {
    let ended = if services.contains(&Service::Panorama) {
        connections
            .iter()
            .filter(|c| c.panorama_endpoint.contains(".amazonaws.com"))
            .count()
    } else {
        0
    };
    connections.len() * services.len() - ended
}

/// Listings that failed: the cause and its fix per scope, the AWS errors under it.
#[derive(Default)]
struct Failures(Vec<(String, Vec<String>)>);

impl Failures {
    fn add(
        &mut self,
        scope: &str,
        service: Service,
        e: &crate::aws::ApiError,
        c: &crate::aws::Connection,
    ) {
        let detail = format!("listing {} devices failed: {e}", service.label());
        let head = match crate::aws::advice::advice(e, c, service, "ListDevices") {
            Some(advice) => format!("{scope}: {advice}"),
            None => format!("{scope}: listing devices failed"),
        };
        // Both services failing for one cause say the cause once.
        match self.0.iter_mut().find(|(h, _)| *h == head) {
            Some((_, details)) => details.push(detail),
            None => self.0.push((head, vec![detail])),
        }
    }

    fn refuse(self) -> anyhow::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(head, details)| {
                let details: Vec<String> = details.iter().map(|d| format!("  ({d})")).collect();
                format!("{head}\n{}", details.join("\n"))
            })
            .collect();
        bail!("{}", lines.join("\n"))
    }
}

/// The worker's channels, for the reads preflight asks of it.
pub struct Channels<'a> {
    pub commands: &'a mpsc::UnboundedSender<Command>,
    pub events: &'a mut mpsc::UnboundedReceiver<Event>,
}

/// Builds the plan from the flags: targets chosen, deduplicated and described as needed,
/// preflight's certain failures left out, canaries first, cut into waves.
pub async fn new_plan(
    args: &RunArgs,
    snow: SnowOptions,
    staging: &Staging,
    mut ch: Channels<'_>,
    list: &mut Devices,
) -> anyhow::Result<Plan> {
    let (operation, snow, chosen, rollout) = match &args.retry {
        Some(wanted) => retried(staging, wanted, list)?,
        None => {
            let Some(action) = args.action else {
                bail!("--action is required to start a plan");
            };
            // A Snow device's lock state is only in DescribeDevice, and nothing is described
            // unasked: a filter may name the state.
            if args.filter.is_some() {
                let snow = keys_of(list, Service::Snow, |_| true);
                describe(ch.commands, ch.events, list, snow).await?;
            }
            let chosen = choose(list, args)?;
            let operation = operation_of(action, args);
            (operation, snow, chosen, staging.rollout.clone())
        }
    };
    // Preflight reads what only DescribeDevice has: a Snow device's lock state and when it
    // last reached out; an appliance's offered versions (for an OTA).
    let snow_keys = keys_of(list, Service::Snow, |k| chosen.contains(k));
    if args.filter.is_none() {
        describe(ch.commands, ch.events, list, snow_keys).await?;
    }
    let operation = ota_version(operation, &chosen, &mut ch, list).await?;
    let refs: Vec<&Device> = chosen.iter().filter_map(|k| list.get(k)).collect();
    let preflight = Preflight::new(args.include_skipped, staging.stale);
    let mut plan = Plan::with(operation, snow, &refs, preflight);
    if staging.team {
        held_by_others(&mut plan, staging, &mut ch, list).await?;
    }
    if let Some(canary) = &args.canary {
        canaries_first(&mut plan, &refs, canary)?;
    }
    // A retry keeps its plan's watch unless this run's flags or contexts say otherwise.
    let journaled = rollout.as_ref().map(|r| r.watch.clone());
    if let Some(r) = rollout {
        super::flags::check_min_done(&r, plan.device_count())?;
        plan.rollout = r;
    }
    plan.rollout.watch = match journaled {
        Some(w) if staging.watch == crate::ops::rollout::Watch::default() => w,
        _ => staging.watch.clone(),
    };
    tell_plan(&plan, list, staging)?;
    Ok(plan)
}

/// Team mode: the devices another plan holds, read from the team's table, are left out
/// (named with their holder), or told as waited for under `--wait-for-leases`.
async fn held_by_others(
    plan: &mut Plan,
    staging: &Staging,
    ch: &mut Channels<'_>,
    list: &Devices,
) -> anyhow::Result<()> {
    ch.commands
        .send(Command::ReadLeases)
        .context("the worker stopped")?;
    let held: std::collections::HashMap<DeviceKey, String> = loop {
        match ch.events.recv().await.context("the worker stopped")? {
            Event::Leases(held) => break held.into_iter().collect(),
            Event::Failure(message) => bail!("{message}"),
            _ => {}
        }
    };
    match staging.wait_for_leases {
        Some(wait) => {
            for k in plan.targets.iter().filter(|k| held.contains_key(*k)) {
                let name = list.get(k).map_or(k.id.as_str(), |d| d.label());
                eprintln!(
                    "waits up to {} for: {name} — {}",
                    crate::ops::rollout::duration_text(wait),
                    held[k]
                );
            }
        }
        None => plan.leave_out_held(&held, |k| {
            list.get(k)
                .map_or_else(|| k.id.to_string(), |d| d.label().to_string())
        }),
    }
    Ok(())
}

fn operation_of(action: Action, args: &RunArgs) -> Operation {
    match action {
        Action::Reboot => Operation::Reboot,
        Action::Unlock => Operation::Unlock,
        Action::Ota => Operation::Ota {
            image_version: args.image_version.clone().unwrap_or_default(),
            allow_major: args.allow_major,
        },
    }
}

/// `--retry PLAN`: what the ended plan left, of what is still listed, with its operation and
/// its staging unless the flags give one.
fn retried(
    staging: &Staging,
    wanted: &str,
    list: &Devices,
) -> anyhow::Result<(Operation, SnowOptions, Vec<DeviceKey>, Option<Rollout>)> {
    let (operation, snow, rest, rollout) = retry_of(staging, wanted)?;
    let chosen: Vec<DeviceKey> = rest.into_iter().filter(|k| list.get(k).is_some()).collect();
    if chosen.is_empty() {
        bail!("none of the devices plan {wanted} left is listed any more");
    }
    eprintln!(
        "retry {} of plan {wanted}: {} devices never sent or not succeeded",
        operation.label(),
        chosen.len()
    );
    let rollout = staging.rollout.clone().or(rollout);
    Ok((operation, snow, chosen, rollout))
}

/// An OTA describes its appliances (preflight reads the versions each offers) and without a
/// version takes the highest available among them.
async fn ota_version(
    operation: Operation,
    chosen: &[DeviceKey],
    ch: &mut Channels<'_>,
    list: &mut Devices,
) -> anyhow::Result<Operation> {
    let Operation::Ota {
        image_version,
        allow_major,
    } = operation
    else {
        return Ok(operation);
    };
    let appliances = keys_of(list, Service::Panorama, |k| chosen.contains(k));
    describe(ch.commands, ch.events, list, appliances).await?;
    let version = if image_version.is_empty() {
        highest_available(list, chosen)?
    } else {
        image_version
    };
    Ok(Operation::Ota {
        image_version: validate::image_version(&version).map_err(anyhow::Error::msg)?,
        allow_major,
    })
}

fn canaries_first(plan: &mut Plan, refs: &[&Device], canary: &str) -> anyhow::Result<()> {
    let mut filtered = Devices::default();
    filtered.upsert(refs.iter().map(|d| (*d).clone()).collect());
    filtered.set_filter(canary.to_string());
    let first: HashSet<DeviceKey> = (0..filtered.shown())
        .filter_map(|i| filtered.row(i))
        .map(Device::key)
        .collect();
    if first.is_empty() {
        bail!("--canary {canary:?} matches none of the chosen devices");
    }
    plan.canaries_first(|k| first.contains(k));
    Ok(())
}

/// Says what the plan leaves out, sends and where, before the confirmation.
fn tell_plan(plan: &Plan, list: &Devices, staging: &Staging) -> anyhow::Result<()> {
    for s in &plan.skipped {
        let what = match (s.preflight, plan.include_skipped) {
            (true, false) => "left out (certain to fail)",
            (true, true) => "sent anyway (preflight expects it to fail)",
            (false, _) if s.held => "left out (another plan holds it)",
            (false, _) => "skipped",
        };
        eprintln!("{what}: {} — {}", s.label, s.reason);
    }
    if plan.is_empty() && plan.skipped.iter().all(|s| s.held) {
        bail!(
            "every chosen device is held by another plan of the team (named above): nothing was sent. Wait for them with --wait-for-leases DURATION, or, if their plan's owner is gone, take it over with `fleetdeck run --resume PLAN`"
        );
    }
    if plan.is_empty() {
        bail!(
            "the {} applies to none of the chosen devices (pass --include-skipped to send those preflight left out)",
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
    let waves = plan.waves();
    if waves.len() > 1 {
        for (i, wave) in waves.iter().enumerate() {
            eprint!("wave {}/{} ({}):", i + 1, waves.len(), wave.len());
            print_targets(list, wave);
        }
        if let Some(gate) = plan.rollout.gate_for(waves.len()) {
            eprintln!("gate between waves: {}", gate.describe());
        }
    } else {
        print_targets(list, &plan.targets);
    }
    let label = |k: &DeviceKey| {
        list.get(k)
            .map_or(k.id.to_string(), |d| d.label().to_string())
    };
    for note in plan.watch_notes(crate::journal::now(), label) {
        eprintln!("{note}");
    }
    let targets = plan.targets.iter().filter_map(|k| list.get(k));
    if let Some(danger) = staging.danger.summary(targets) {
        eprintln!("DANGER: {danger}");
    }
    Ok(())
}

/// What `--retry PLAN` sends: the devices an ended plan never sent or that did not succeed,
/// with its operation, and its staging unless the flags give one.
fn retry_of(
    staging: &Staging,
    wanted: &str,
) -> anyhow::Result<(Operation, SnowOptions, Vec<DeviceKey>, Option<Rollout>)> {
    let path = staging
        .journal
        .as_deref()
        .context("no journal to read the plan from: pass --journal PATH")?;
    let records = journal::read(path)
        .with_context(|| format!("cannot read the journal {}", path.display()))?;
    let Some(plan) = records
        .iter()
        .find(|r| matches!(r, journal::Record::Plan { plan, .. } if plan == wanted))
    else {
        bail!("the journal {} has no plan {wanted}", path.display());
    };
    if journal::unfinished(&records).iter().any(|p| p == wanted) {
        bail!(
            "plan {wanted} has not ended: finish it with `fleetdeck run --resume {wanted}` or close it with `--discard {wanted}` first"
        );
    }
    let (operation, snow) = journal::operation_of(plan)
        .context("the journaled plan names no operation fleetdeck can carry out")?;
    let rest: Vec<DeviceKey> = journal::rest_of(&records, wanted)
        .iter()
        .filter_map(|d| crate::worker::parse_device_ref(d))
        .collect();
    if rest.is_empty() {
        bail!("plan {wanted} left nothing to retry: every device succeeded");
    }
    let rollout = match plan {
        journal::Record::Plan {
            rollout: Some(r), ..
        } if !r.sizes.is_empty() => Some(Rollout {
            waves: r.sizes.clone(),
            gate: r.gate,
            watch: (*r.watch).clone(),
        }),
        _ => None,
    };
    Ok((operation, snow, rest, rollout))
}

/// Names the devices about to be changed, so a confirmation is never blind.
pub fn print_targets(list: &Devices, keys: &[DeviceKey]) {
    let names: Vec<String> = keys
        .iter()
        .map(|k| list.get(k).map_or(k.id.as_str(), |d| d.label()).to_string())
        .collect();
    eprintln!("  {}", names.join(", "));
}

/// The unfinished plan `--resume` names, or the only one.
pub fn pick_unfinished<'a>(
    unfinished: &'a [Resumable],
    wanted: &str,
) -> anyhow::Result<&'a Resumable> {
    let list = || {
        unfinished
            .iter()
            .map(|u| {
                format!(
                    "  {}  {} confirmed {}, {} devices pending",
                    u.plan,
                    u.operation.label(),
                    when(u.at),
                    u.pending.len()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if !wanted.is_empty() {
        return unfinished
            .iter()
            .find(|u| u.plan == wanted)
            .with_context(|| {
                if unfinished.is_empty() {
                    format!("no unfinished plan {wanted} for the contexts in use (there are none)")
                } else {
                    format!(
                        "no unfinished plan {wanted} for the contexts in use; these are:\n{}",
                        list()
                    )
                }
            });
    }
    match unfinished {
        [] => bail!("no unfinished plan for the contexts in use: nothing to resume"),
        [one] => Ok(one),
        _ => bail!(
            "{} unfinished plans for the contexts in use; name one with --resume PLAN:\n{}",
            unfinished.len(),
            list()
        ),
    }
}

pub fn when(at: u64) -> String {
    format!("{} UTC", journal::when(at))
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
    let mut seen = HashSet::new();
    Ok(keys
        .into_iter()
        .filter(|k| seen.insert(k.clone()))
        .collect())
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
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
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
