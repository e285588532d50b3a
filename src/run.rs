//! `fleetdeck run`: one operation without the full-screen UI. It uses the same pieces as the
//! terminal UI — the devices list and its filter, the plan, validation, the worker (dispatch,
//! journal, tracking) — and prints progress and a summary per device.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::app::Devices;
use crate::cli::{Action, Output, RunArgs};
use crate::fleet::{Device, DeviceKey, Operation, Plan, Service, SnowOptions, highest, validate};
use crate::ops::{OpId, OpState, OpUpdate, Tally};
use crate::tui::Session;
use crate::worker::{self, Command, Event, Refusal, Resumable};

/// A device's part in the run, as the summary reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub service: &'static str,
    pub device: String,
    pub name: String,
    pub operation: String,
    pub state: &'static str,
    pub resource_id: Option<String>,
    pub error: Option<String>,
    #[serde(skip)]
    key: DeviceKey,
    #[serde(skip)]
    engine_state: OpState,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.engine_state == OpState::Succeeded
    }

    fn set(&mut self, state: OpState) {
        self.engine_state = state;
        self.state = state.word(self.key.service);
    }
}

/// How a run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every device succeeded (exit 0).
    Succeeded,
    /// Some device did not (exit 1).
    SomeFailed,
    /// A signal stopped dispatch with work left for `--resume` (exit 3).
    Stopped,
    /// A signal came before anything was sent (exit 130).
    Interrupted,
}

impl RunEnd {
    pub fn code(self) -> i32 {
        match self {
            Self::Succeeded => 0,
            Self::SomeFailed => 1,
            Self::Stopped => 3,
            Self::Interrupted => 130,
        }
    }
}

/// Runs the operation (or resumes or discards a plan) and reports how it ended.
pub async fn run(args: RunArgs) -> anyhow::Result<RunEnd> {
    if args.session.read_only {
        bail!("--read-only: `run` changes devices, so there is nothing it may do");
    }
    let targets = !args.devices.is_empty() || args.all || args.filter.is_some();
    if !targets && args.resume.is_none() && args.discard.is_none() {
        bail!(
            "name the devices: --devices ID,... , --all or --filter EXPR (or --resume / --discard an unfinished plan)"
        );
    }
    if let Some(f) = &args.filter
        && f.trim().is_empty()
    {
        bail!(
            "--filter is empty, and an empty filter would match every device; pass --all to mean every device"
        );
    }
    let snow = SnowOptions {
        description: validate::description(args.description.as_deref().unwrap_or(""))
            .map_err(anyhow::Error::msg)?,
        tags: validate::tags(&args.tags.join(",")).map_err(anyhow::Error::msg)?,
    };
    if let Some(v) = &args.image_version {
        validate::image_version(v).map_err(anyhow::Error::msg)?;
    }
    // Signals are taken over before anything is sent: from here on a SIGINT, SIGTERM or SIGHUP
    // stops dispatch cleanly instead of killing the process mid-call.
    let mut signals = Signals::new()?;
    let session = Session::prepare(&args.session).await?;
    let journal = session.settings.journal.clone();
    let (commands, mut events) = worker::spawn(session.source, session.settings);
    let text = args.output == Output::Text;

    // Until the plan is handed to the worker nothing has been sent, so a signal simply ends
    // the run; from then on it stops dispatch and pauses the plan (see `follow`).
    let prepared = tokio::select! {
        biased;
        name = signals.next() => {
            eprintln!("{name}: stopped before anything was sent");
            return Ok(RunEnd::Interrupted);
        }
        prepared = prepare(&args, snow, &commands, &mut events, text) => prepared?,
    };
    let (command, name_of) = match prepared {
        Prepared::Done(end) => return Ok(end),
        Prepared::Send(command, list) => (command, list),
    };
    commands.send(command).context("the worker stopped")?;
    let (plan_id, operation, ops) = wait_started(&mut events).await?;
    let mut outcomes: Vec<Outcome> = ops
        .iter()
        .map(|(_, k)| Outcome {
            service: match k.service {
                Service::Panorama => "panorama",
                Service::Snow => "snow-device-management",
            },
            device: k.id.clone(),
            name: name_of
                .get(k)
                .map_or(k.id.clone(), |d| d.label().to_string()),
            operation: operation.label().to_string(),
            state: OpState::Queued.word(k.service),
            resource_id: None,
            error: None,
            key: k.clone(),
            engine_state: OpState::Queued,
        })
        .collect();
    let ids: Vec<OpId> = ops.iter().map(|(id, _)| *id).collect();
    let stopped = follow(
        &commands,
        &mut events,
        &mut signals,
        &ids,
        &mut outcomes,
        text,
    )
    .await?;
    let tally = match stopped {
        Followed::Stopped(tally) => tally,
        Followed::Done => shutdown(&commands).await,
    };
    let path = journal.map_or_else(String::new, |p| format!(" (journal {})", p.display()));
    let Some(tally) = tally else {
        report(&outcomes, args.output)?;
        eprintln!(
            "stopped without confirming every call's end; the plan is kept{path}. Finish it with:\n  fleetdeck run --resume {plan_id}"
        );
        return Ok(RunEnd::Stopped);
    };
    report(&outcomes, args.output)?;
    if tally.left() > 0 {
        eprintln!(
            "stopped: {} sent, {} not yet sent, {} unconfirmed; the plan is kept{path}. Finish it with:\n  fleetdeck run --resume {plan_id}",
            tally.running + tally.succeeded + tally.not_done,
            tally.unsent,
            tally.unconfirmed,
        );
        return Ok(RunEnd::Stopped);
    }
    Ok(if outcomes.iter().all(Outcome::ok) {
        RunEnd::Succeeded
    } else {
        RunEnd::SomeFailed
    })
}

/// What the run will hand the worker, with the devices listed; or how it ended already.
enum Prepared {
    Send(Command, Box<Devices>),
    Done(RunEnd),
}

/// Lists, chooses, describes and confirms: everything before the first call that changes
/// anything.
async fn prepare(
    args: &RunArgs,
    snow: SnowOptions,
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    text: bool,
) -> anyhow::Result<Prepared> {
    let (mut list, unfinished) = list_devices(events, text).await?;
    if let Some(plan) = &args.discard {
        return Ok(Prepared::Done(
            discard(commands, events, &unfinished, plan).await?,
        ));
    }
    if let Some(wanted) = &args.resume {
        let plan = pick_unfinished(&unfinished, wanted)?;
        eprintln!(
            "resume {} plan {} (confirmed {}): {} devices not yet sent or confirmed",
            plan.operation.label(),
            plan.plan,
            when(plan.at),
            plan.pending.len()
        );
        print_targets(&list, &plan.pending);
        if !args.yes {
            confirm(plan.pending.len()).await?;
        }
        let command = Command::Resume {
            plan: plan.plan.clone(),
        };
        return Ok(Prepared::Send(command, Box::new(list)));
    }
    let plan = new_plan(args, snow, commands, events, &mut list).await?;
    if !args.yes {
        confirm(plan.device_count()).await?;
    }
    Ok(Prepared::Send(Command::Dispatch(plan), Box::new(list)))
}

/// Stops the worker's dispatch and waits for the tally of what it left; `None` when it did
/// not answer (it is gone, or took over a minute).
async fn shutdown(commands: &mpsc::UnboundedSender<Command>) -> Option<Tally> {
    let (done, wait) = tokio::sync::oneshot::channel();
    commands.send(Command::Shutdown(done)).ok()?;
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .ok()
        .and_then(Result::ok)
}

/// SIGINT, SIGTERM and SIGHUP, taken over from their default of ending the process at once.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Builds the plan from the flags: targets chosen, deduplicated and described as needed.
async fn new_plan(
    args: &RunArgs,
    snow: SnowOptions,
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    list: &mut Devices,
) -> anyhow::Result<Plan> {
    let Some(action) = args.action else {
        bail!("--action is required to start a plan");
    };
    // A Snow device's lock state is only in DescribeDevice, and nothing is described unasked:
    // a filter may name the state, and an unlock skips devices already unlocked.
    if args.filter.is_some() {
        let snow = keys_of(list, Service::Snow, |_| true);
        describe(commands, events, list, snow).await?;
    }
    let chosen = choose(list, args)?;
    if matches!(action, Action::Unlock) && args.filter.is_none() {
        let snow = keys_of(list, Service::Snow, |k| chosen.contains(k));
        describe(commands, events, list, snow).await?;
    }
    let operation = match action {
        Action::Reboot => Operation::Reboot,
        Action::Unlock => Operation::Unlock,
        Action::Ota => {
            let version = match &args.image_version {
                Some(v) => v.clone(),
                None => {
                    let appliances = keys_of(list, Service::Panorama, |k| chosen.contains(k));
                    describe(commands, events, list, appliances).await?;
                    highest_available(list, &chosen)?
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
    let targets: Vec<DeviceKey> = plan.targets.clone();
    print_targets(list, &targets);
    Ok(plan)
}

/// Names the devices about to be changed, so a confirmation is never blind.
fn print_targets(list: &Devices, keys: &[DeviceKey]) {
    let names: Vec<String> = keys
        .iter()
        .map(|k| list.get(k).map_or(k.id.clone(), |d| d.label().to_string()))
        .collect();
    eprintln!("  {}", names.join(", "));
}

/// The engine's answer to a dispatch or a resume: its plan id, operation and operations.
async fn wait_started(
    events: &mut mpsc::UnboundedReceiver<Event>,
) -> anyhow::Result<(String, Operation, Vec<(OpId, DeviceKey)>)> {
    loop {
        match events.recv().await.context("the worker stopped")? {
            Event::PlanStarted {
                plan,
                operation,
                ops,
                ..
            } => return Ok((plan, operation, ops)),
            Event::PlanRefused(Refusal { error, overlaps }) => match overlaps {
                Some(plan) => bail!(
                    "nothing was sent: {error}.\n  finish it:  fleetdeck run --resume {plan}\n  or drop it: fleetdeck run --discard {plan}"
                ),
                None => bail!("nothing was sent: {error}"),
            },
            Event::Failure(message) => eprintln!("{message}"),
            _ => {}
        }
    }
}

/// The unfinished plan `--resume` names, or the only one.
fn pick_unfinished<'a>(unfinished: &'a [Resumable], wanted: &str) -> anyhow::Result<&'a Resumable> {
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
                    format!(
                        "no unfinished plan {wanted} for this region and endpoint (there are none)"
                    )
                } else {
                    format!(
                        "no unfinished plan {wanted} for this region and endpoint; these are:\n{}",
                        list()
                    )
                }
            });
    }
    match unfinished {
        [] => bail!("no unfinished plan for this region and endpoint: nothing to resume"),
        [one] => Ok(one),
        _ => bail!(
            "{} unfinished plans for this region and endpoint; name one with --resume PLAN:\n{}",
            unfinished.len(),
            list()
        ),
    }
}

async fn discard(
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    unfinished: &[Resumable],
    plan: &str,
) -> anyhow::Result<RunEnd> {
    let plan = pick_unfinished(unfinished, plan)?;
    commands
        .send(Command::Discard {
            plan: plan.plan.clone(),
        })
        .context("the worker stopped")?;
    loop {
        match events.recv().await.context("the worker stopped")? {
            Event::Notice(message) if message.contains("discarded") => {
                eprintln!("{message}");
                return Ok(RunEnd::Succeeded);
            }
            Event::Failure(message) => bail!("{message}"),
            _ => {}
        }
    }
}

fn when(at: u64) -> String {
    format!("{} UTC", crate::journal::when(at))
}

/// Reads both services' devices as the UI does; a service that cannot be listed is an error.
/// Unfinished plans the journal offers arrive meanwhile, and are kept for `--resume`.
async fn list_devices(
    events: &mut mpsc::UnboundedReceiver<Event>,
    text: bool,
) -> anyhow::Result<(Devices, Vec<Resumable>)> {
    let mut list = Devices::default();
    let mut unfinished = Vec::new();
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
            // Not fatal by itself (a journal problem refuses the plan, with its reason).
            Event::Failure(message) => eprintln!("{message}"),
            Event::Unfinished(plan) => unfinished.push(plan),
            _ => {}
        }
    }
    Ok((list, unfinished))
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

/// Asks for the number of devices on the terminal. The read blocks, so it runs on a thread of
/// its own: a signal meanwhile still ends the run.
async fn confirm(count: usize) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || ask(count))
        .await
        .context("the confirmation prompt failed")?
}

fn ask(count: usize) -> anyhow::Result<()> {
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

/// Applies an operation's news to its summary row: (the row, whether its state changed).
fn apply(
    ids: &[OpId],
    outcomes: &mut [Outcome],
    op: OpId,
    update: OpUpdate,
) -> Option<(usize, bool)> {
    let at = ids.iter().position(|id| *id == op)?;
    let row = outcomes.get_mut(at)?;
    let changed = row.engine_state != update.state;
    row.set(update.state);
    if update.resource_id.is_some() {
        row.resource_id = update.resource_id;
    }
    if let Some(e) = update.error {
        row.error = Some(e.to_string());
    }
    Some((at, changed))
}

/// How following ended.
enum Followed {
    /// Every operation reached its end.
    Done,
    /// A signal stopped dispatch: the tally of what was left, if the worker answered.
    Stopped(Option<Tally>),
}

/// Follows every operation to its end: a progress line on a terminal, a line per change
/// otherwise. A signal stops dispatch (calls under way finish, the rest stays in the journal
/// for `--resume`) and returns the tally; a second signal exits at once.
async fn follow(
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    signals: &mut Signals,
    ids: &[OpId],
    outcomes: &mut [Outcome],
    text: bool,
) -> anyhow::Result<Followed> {
    let tty = std::io::stderr().is_terminal();
    let mut stopping: Option<tokio::sync::oneshot::Receiver<Tally>> = None;
    loop {
        if stopping.is_none() && outcomes.iter().all(|o| o.engine_state.is_final()) {
            break;
        }
        let event = tokio::select! {
            event = events.recv() => event.context("the worker stopped")?,
            name = signals.next() => {
                if stopping.is_some() {
                    eprintln!("\n{name} again: exiting now; the journal has what was sent");
                    std::process::exit(130);
                }
                eprintln!(
                    "\n{name}: stopping — calls under way finish, nothing more is sent, the rest is kept for --resume ({name} again exits at once)"
                );
                let (done, wait) = tokio::sync::oneshot::channel();
                commands.send(Command::Shutdown(done)).context("the worker stopped")?;
                stopping = Some(wait);
                continue;
            }
            tally = async { stopping.as_mut().expect("guarded").await }, if stopping.is_some() => {
                // The worker sent every row's last news before its answer: take it in.
                while let Ok(event) = events.try_recv() {
                    if let Event::Op(op, update) = event {
                        apply(ids, outcomes, op, update);
                    }
                }
                if text && tty {
                    eprintln!();
                }
                return Ok(Followed::Stopped(tally.ok()));
            }
        };
        let (op, update) = match event {
            Event::Op(op, update) => (op, update),
            Event::Failure(message) => {
                eprintln!("{message}");
                continue;
            }
            _ => continue,
        };
        let Some((at, changed)) = apply(ids, outcomes, op, update) else {
            continue;
        };
        if !text {
            continue;
        }
        if tty {
            let n = outcomes
                .iter()
                .filter(|o| o.engine_state.is_final())
                .count();
            let width = 30;
            let filled = n * width / outcomes.len().max(1);
            eprint!(
                "\r[{}{}] {n}/{} done",
                "#".repeat(filled),
                "-".repeat(width - filled),
                outcomes.len()
            );
        } else if changed {
            let row = &outcomes[at];
            eprintln!("{} {} {}", row.name, row.operation, row.state);
        }
    }
    if text && tty {
        eprintln!();
    }
    Ok(Followed::Done)
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
