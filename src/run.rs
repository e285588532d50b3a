//! `fleetdeck run`: one operation without the full-screen UI. It uses the same pieces as the
//! terminal UI — the devices list and its filter, the plan, validation, the worker (dispatch,
//! journal, tracking) — and prints progress and a summary per device.

use crate::fleet::filter::Danger;
use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::app::Devices;
use crate::cli::{Action, Breach, Output, RunArgs};
use crate::fleet::{Device, DeviceKey, Operation, Service, SnowOptions, highest, validate};
use crate::journal::{self, Control};
use crate::ops::plan::likely_failure;
use crate::ops::rollout::{
    Gate, Health, OnBreach, Outcome as RolloutOutcome, Phase, Rollout, Size, duration_text,
    parse_duration, parse_waves,
};
use crate::ops::{OpId, OpState, OpUpdate, Tally};
use crate::ops::{Plan, Preflight};
use crate::protocol::{Command, Event, Refusal, Resumable, RolloutView};
use crate::tui::Session;
use crate::worker;

/// A device's part in the run, as the summary reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub service: &'static str,
    pub device: String,
    pub name: String,
    /// The context and region it was reached through, and its account.
    pub context: String,
    pub region: String,
    pub account: Option<String>,
    #[serde(skip)]
    scope: String,
    pub operation: String,
    pub state: &'static str,
    pub resource_id: Option<String>,
    pub error: Option<String>,
    /// After a success in a gated rollout: "healthy", or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The wave it was in, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    #[serde(skip)]
    key: DeviceKey,
    #[serde(skip)]
    healthy: bool,
    #[serde(skip)]
    engine_state: OpState,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.engine_state == OpState::Succeeded && self.healthy
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
    /// Some device did not (exit 1): a PARTIAL rollout.
    SomeFailed,
    /// A gate (or an operator) aborted the rollout (exit 3).
    Aborted,
    /// A signal stopped dispatch with work left for `--resume` (exit 130).
    Stopped,
    /// A signal came before anything was sent (exit 130).
    Interrupted,
}

impl RunEnd {
    pub fn code(self) -> i32 {
        match self {
            Self::Succeeded => 0,
            Self::SomeFailed => 1,
            Self::Aborted => 3,
            Self::Stopped | Self::Interrupted => 130,
        }
    }
}

/// The staging the flags ask for: waves, and a gate when any gate flag is given.
fn rollout_of(args: &RunArgs) -> anyhow::Result<Option<Rollout>> {
    let gate_given = args.max_failed.is_some()
        || args.min_done.is_some()
        || args.bake.is_some()
        || args.approve
        || args.on_breach.is_some();
    if args.waves.is_none() && !gate_given {
        return Ok(None);
    }
    let waves = match &args.waves {
        Some(w) => parse_waves(w).map_err(|e| anyhow::anyhow!("--waves: {e}"))?,
        None => vec![Size::Rest],
    };
    let gate = if gate_given {
        let d = Gate::default();
        Some(Gate {
            max_failed: match &args.max_failed {
                Some(t) => t
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--max-failed: {e}"))?,
                None => d.max_failed,
            },
            min_done: args.min_done.unwrap_or(d.min_done),
            bake_secs: match &args.bake {
                Some(b) => parse_duration(b)
                    .map_err(|e| anyhow::anyhow!("--bake: {e}"))?
                    .as_secs(),
                None => 0,
            },
            approve: args.approve,
            on_breach: match args.on_breach {
                Some(Breach::Pause) => OnBreach::Pause,
                _ => OnBreach::Abort,
            },
        })
    } else {
        None
    };
    Ok(Some(Rollout { waves, gate }))
}

/// `--promote`, `--pause` or `--abort PLAN`: the word for the process that runs the plan.
fn control_of(args: &RunArgs) -> Option<(&str, Control)> {
    [
        (&args.promote, Control::Promote),
        (&args.pause, Control::Pause),
        (&args.abort, Control::Abort),
    ]
    .into_iter()
    .find_map(|(plan, c)| plan.as_deref().map(|p| (p, c)))
}

/// Leaves the word beside the journal and waits for the process holding it to take it.
async fn control(args: &RunArgs, plan: &str, word: Control) -> anyhow::Result<RunEnd> {
    let path = args
        .session
        .journal
        .clone()
        .or_else(journal::default_path)
        .context("no journal path: pass --journal PATH (the one the rollout runs with)")?;
    let records = journal::read(&path)
        .with_context(|| format!("cannot read the journal {}", path.display()))?;
    if !journal::unfinished(&records).iter().any(|p| p == plan) {
        bail!(
            "the journal {} has no unfinished plan {plan} (see `fleetdeck journal list`)",
            path.display()
        );
    }
    let pid = match journal::Journal::open(&path) {
        Err(journal::OpenError::Locked { pid, .. }) => pid,
        Ok(_) => bail!(
            "no fleetdeck process is running plan {plan} (nothing holds the journal {}); carry it on with:\n  fleetdeck run --resume {plan}",
            path.display()
        ),
        Err(e) => bail!("{e}"),
    };
    let file = journal::request(&path, plan, word)?;
    let holder = pid.map_or_else(|| "the process".to_string(), |p| format!("process {p}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        if !file.exists() {
            eprintln!("{}: taken by {holder} running plan {plan}", word.word());
            return Ok(RunEnd::Succeeded);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_file(&file);
    bail!(
        "{holder} holds the journal but did not take the {} within 15 s: is it the one running plan {plan}?",
        word.word()
    )
}

/// Runs the operation (or resumes or discards a plan) and reports how it ended.
pub async fn run(args: RunArgs) -> anyhow::Result<RunEnd> {
    if let Some((plan, word)) = control_of(&args) {
        return control(&args, plan, word).await;
    }
    if args.session.read_only {
        bail!("--read-only: `run` changes devices, so there is nothing it may do");
    }
    let targets = !args.devices.is_empty() || args.all || args.filter.is_some();
    if !targets && args.resume.is_none() && args.discard.is_none() && args.retry.is_none() {
        bail!(
            "name the devices: --devices ID,... , --all or --filter EXPR (or --resume / --discard an unfinished plan)"
        );
    }
    if let Some(f) = &args.filter
        && crate::fleet::filter::Filter::parse(f).is_empty()
    {
        bail!(
            "--filter {f:?} asks nothing, and an empty filter would match every device; pass --all to mean every device"
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
    let rollout = rollout_of(&args)?;
    let stale = parse_duration(&args.stale).map_err(|e| anyhow::anyhow!("--stale: {e}"))?;
    let approve_timeout = match &args.approve_timeout {
        Some(t) => Some(parse_duration(t).map_err(|e| anyhow::anyhow!("--approve-timeout: {e}"))?),
        None => None,
    };
    let mut staging = Staging {
        rollout,
        stale,
        journal: args.session.journal.clone().or_else(journal::default_path),
        danger: Danger::default(),
    };
    // Signals are taken over before anything is sent: from here on a SIGINT, SIGTERM or SIGHUP
    // stops dispatch cleanly instead of killing the process mid-call.
    let mut signals = Signals::new()?;
    let mut session = Session::prepare(&args.session).await?;
    // Nothing is on screen to keep fresh: only what was sent is followed.
    session.settings.refresh_every = None;
    session.settings.services = services_of(&args);
    staging.danger = Danger::new(&session.catalog.file.danger());
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
        prepared = prepare(&args, snow, &staging, &commands, &mut events, text) => prepared?,
    };
    let (command, name_of, left_out, accounts) = match prepared {
        Prepared::Done(end) => return Ok(end),
        Prepared::Send(command, list, left_out, accounts) => (*command, list, left_out, accounts),
    };
    let place = |d: Option<&Device>| match d {
        Some(d) => (
            d.context().to_string(),
            d.region.to_string(),
            d.account
                .as_ref()
                .map(|a| a.to_string())
                .or_else(|| accounts.get(d.scope.as_str()).cloned()),
            d.scope.to_string(),
        ),
        None => (String::new(), String::new(), None, String::new()),
    };
    // Preflight's reads are done and nothing is on screen: a target is not read again when
    // its execution ends (the execution's own state is the outcome).
    commands
        .send(Command::Look(Vec::new()))
        .context("the worker stopped")?;
    commands.send(command).context("the worker stopped")?;
    let (plan_id, operation, ops) = wait_started(&mut events).await?;
    let mut outcomes: Vec<Outcome> = ops
        .iter()
        .map(|(_, k)| {
            let (context, region, account, scope) = place(name_of.get(k));
            Outcome {
                service: match k.service {
                    Service::Panorama => "panorama",
                    Service::Snow => "snow-device-management",
                },
                device: k.id.to_string(),
                name: name_of
                    .get(k)
                    .map_or(k.id.as_str(), |d| d.label())
                    .to_string(),
                context,
                region,
                account,
                scope,
                operation: operation.label().to_string(),
                state: OpState::Queued.word(k.service),
                resource_id: None,
                error: None,
                health: None,
                wave: None,
                key: k.clone(),
                healthy: true,
                engine_state: OpState::Queued,
            }
        })
        .collect();
    let ids: Vec<OpId> = ops.iter().map(|(id, _)| *id).collect();
    let mut rollout = None;
    let stopped = follow(
        Following {
            commands: &commands,
            events: &mut events,
            signals: &mut signals,
            ids: &ids,
            text,
            approve_timeout,
            journal: staging.journal.as_deref(),
        },
        &mut outcomes,
        &mut rollout,
    )
    .await?;
    for (d, reason) in &left_out {
        let (context, region, account, scope) = place(Some(d));
        outcomes.push(Outcome {
            service: match d.service {
                Service::Panorama => "panorama",
                Service::Snow => "snow-device-management",
            },
            device: d.id.to_string(),
            name: d.label().to_string(),
            context,
            region,
            account,
            scope,
            operation: operation.label().to_string(),
            state: OpState::Skipped.name(),
            resource_id: None,
            error: Some(format!("left out by preflight: {reason}")),
            health: None,
            wave: None,
            key: d.key(),
            healthy: true,
            engine_state: OpState::Skipped,
        });
    }
    for o in outcomes.iter_mut() {
        if o.error.is_none() && matches!(o.engine_state, OpState::Failed | OpState::TimedOut) {
            let timed_out = o.engine_state == OpState::TimedOut;
            o.error = name_of
                .get(&o.key)
                .and_then(|d| likely_failure(&operation, d, timed_out))
                .map(|why| format!("likely: {why}"));
        }
    }
    let tally = match stopped {
        Followed::Stopped(tally) => tally,
        Followed::Done => shutdown(&commands).await,
    };
    let path = journal.map_or_else(String::new, |p| format!(" (journal {})", p.display()));
    let Some(tally) = tally else {
        report(&plan_id, &outcomes, rollout.as_ref(), args.output)?;
        eprintln!(
            "stopped without confirming every call's end; the plan is kept{path}. Finish it with:\n  fleetdeck run --resume {plan_id}"
        );
        return Ok(RunEnd::Stopped);
    };
    report(&plan_id, &outcomes, rollout.as_ref(), args.output)?;
    if tally.left() > 0 {
        eprintln!(
            "stopped: {} sent, {} not yet sent, {} unconfirmed; the plan is kept{path}. Finish it with:\n  fleetdeck run --resume {plan_id}",
            tally.running + tally.succeeded + tally.not_done,
            tally.unsent,
            tally.unconfirmed,
        );
        return Ok(RunEnd::Stopped);
    }
    if rollout.as_ref().and_then(|r| r.outcome) == Some(RolloutOutcome::Aborted) {
        return Ok(RunEnd::Aborted);
    }
    Ok(if outcomes.iter().all(Outcome::ok) {
        RunEnd::Succeeded
    } else {
        RunEnd::SomeFailed
    })
}

/// How the flags stage a new plan.
struct Staging {
    rollout: Option<Rollout>,
    stale: Duration,
    journal: Option<std::path::PathBuf>,
    /// The devices dangerous to touch, counted before the prompt.
    danger: Danger,
}

/// What the run will hand the worker, with the devices listed; or how it ended already.
enum Prepared {
    /// The command, the devices listed, the devices preflight left out with why, and each
    /// scope's account.
    Send(
        Box<Command>,
        Box<Devices>,
        Vec<(Device, String)>,
        BTreeMap<String, String>,
    ),
    Done(RunEnd),
}

/// Lists, chooses, describes and confirms: everything before the first call that changes
/// anything.
async fn prepare(
    args: &RunArgs,
    snow: SnowOptions,
    staging: &Staging,
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    text: bool,
) -> anyhow::Result<Prepared> {
    let services = services_of(args);
    let (mut list, unfinished, accounts) = list_devices(events, &services, text).await?;
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
        return Ok(Prepared::Send(
            Box::new(command),
            Box::new(list),
            Vec::new(),
            accounts,
        ));
    }
    let plan = new_plan(args, snow, staging, commands, events, &mut list).await?;
    if !args.yes {
        confirm(plan.device_count()).await?;
    }
    let left_out = plan
        .left_out()
        .filter_map(|s| list.get(&s.key).map(|d| (d.clone(), s.reason.clone())))
        .collect();
    Ok(Prepared::Send(
        Box::new(Command::Dispatch(Box::new(plan))),
        Box::new(list),
        left_out,
        accounts,
    ))
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
        .filter_map(|d| worker::parse_device_ref(d))
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
        }),
        _ => None,
    };
    Ok((operation, snow, rest, rollout))
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

/// Builds the plan from the flags: targets chosen, deduplicated and described as needed,
/// preflight's certain failures left out, canaries first, cut into waves.
async fn new_plan(
    args: &RunArgs,
    snow: SnowOptions,
    staging: &Staging,
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    list: &mut Devices,
) -> anyhow::Result<Plan> {
    let (operation, snow, chosen, rollout) = match &args.retry {
        Some(wanted) => {
            let (operation, snow, rest, rollout) = retry_of(staging, wanted)?;
            let chosen: Vec<DeviceKey> =
                rest.into_iter().filter(|k| list.get(k).is_some()).collect();
            if chosen.is_empty() {
                bail!("none of the devices plan {wanted} left is listed any more");
            }
            eprintln!(
                "retry {} of plan {wanted}: {} devices never sent or not succeeded",
                operation.label(),
                chosen.len()
            );
            let rollout = staging.rollout.clone().or(rollout);
            (operation, snow, chosen, rollout)
        }
        None => {
            let Some(action) = args.action else {
                bail!("--action is required to start a plan");
            };
            // A Snow device's lock state is only in DescribeDevice, and nothing is described
            // unasked: a filter may name the state.
            if args.filter.is_some() {
                let snow = keys_of(list, Service::Snow, |_| true);
                describe(commands, events, list, snow).await?;
            }
            let chosen = choose(list, args)?;
            let operation = match action {
                Action::Reboot => Operation::Reboot,
                Action::Unlock => Operation::Unlock,
                Action::Ota => Operation::Ota {
                    image_version: args.image_version.clone().unwrap_or_default(),
                    allow_major: args.allow_major,
                },
            };
            (operation, snow, chosen, staging.rollout.clone())
        }
    };
    // Preflight reads what only DescribeDevice has: a Snow device's lock state and when it
    // last reached out; an appliance's offered versions (for an OTA).
    let snow_keys = keys_of(list, Service::Snow, |k| chosen.contains(k));
    if args.filter.is_none() {
        describe(commands, events, list, snow_keys).await?;
    }
    let operation = match operation {
        Operation::Ota {
            image_version,
            allow_major,
        } => {
            let appliances = keys_of(list, Service::Panorama, |k| chosen.contains(k));
            describe(commands, events, list, appliances).await?;
            let version = if image_version.is_empty() {
                highest_available(list, &chosen)?
            } else {
                image_version
            };
            Operation::Ota {
                image_version: validate::image_version(&version).map_err(anyhow::Error::msg)?,
                allow_major,
            }
        }
        other => other,
    };
    let refs: Vec<&Device> = chosen.iter().filter_map(|k| list.get(k)).collect();
    let preflight = Preflight::new(args.include_skipped, staging.stale);
    let mut plan = Plan::with(operation, snow, &refs, preflight);
    if let Some(canary) = &args.canary {
        let mut filtered = Devices::default();
        filtered.upsert(refs.iter().map(|d| (*d).clone()).collect());
        filtered.set_filter(canary.clone());
        let first: HashSet<DeviceKey> = (0..filtered.shown())
            .filter_map(|i| filtered.row(i))
            .map(Device::key)
            .collect();
        if first.is_empty() {
            bail!("--canary {canary:?} matches none of the chosen devices");
        }
        plan.canaries_first(|k| first.contains(k));
    }
    if let Some(r) = rollout {
        plan.rollout = r;
    }
    for s in &plan.skipped {
        let what = match (s.preflight, plan.include_skipped) {
            (true, false) => "left out (certain to fail)",
            (true, true) => "sent anyway (preflight expects it to fail)",
            (false, _) => "skipped",
        };
        eprintln!("{what}: {} — {}", s.label, s.reason);
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
    let targets = plan.targets.iter().filter_map(|k| list.get(k));
    if let Some(danger) = staging.danger.summary(targets) {
        eprintln!("DANGER: {danger}");
    }
    Ok(plan)
}

/// Names the devices about to be changed, so a confirmation is never blind.
fn print_targets(list: &Devices, keys: &[DeviceKey]) {
    let names: Vec<String> = keys
        .iter()
        .map(|k| list.get(k).map_or(k.id.as_str(), |d| d.label()).to_string())
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

fn advice(
    e: &crate::aws::ApiError,
    c: &crate::aws::Connection,
    service: Service,
) -> Option<String> {
    crate::aws::advice::advice(e, c, service, "ListDevices")
}

/// The services a run's devices can be of: what its action applies to, narrowed by its filter
/// or the services its `--devices` name. Resuming, discarding or retrying a plan reads both.
fn services_of(args: &RunArgs) -> Vec<Service> {
    let both = vec![Service::Panorama, Service::Snow];
    if args.resume.is_some() || args.discard.is_some() || args.retry.is_some() {
        return both;
    }
    let named: Option<Vec<Service>> = (!args.devices.is_empty())
        .then(|| {
            args.devices
                .iter()
                .map(|d| worker::parse_device_ref(d).map(|k| k.service))
                .collect::<Option<Vec<_>>>()
        })
        .flatten();
    let filter = args
        .filter
        .as_deref()
        .map(crate::fleet::filter::Filter::parse);
    both.into_iter()
        .filter(|&s| {
            let applies = match args.action {
                Some(Action::Ota) => s == Service::Panorama,
                Some(Action::Unlock) => s == Service::Snow,
                Some(Action::Reboot) | None => true,
            };
            applies
                && filter.as_ref().is_none_or(|f| f.admits(s))
                && named.as_ref().is_none_or(|n| n.contains(&s))
        })
        .collect()
}

/// Reads the devices of `services` as the UI does; a service that cannot be listed is an
/// error. Unfinished plans the journal offers arrive meanwhile, and are kept for `--resume`.
async fn list_devices(
    events: &mut mpsc::UnboundedReceiver<Event>,
    services: &[Service],
    text: bool,
) -> anyhow::Result<(Devices, Vec<Resumable>, BTreeMap<String, String>)> {
    let mut list = Devices::default();
    let mut unfinished = Vec::new();
    let mut connections: Vec<crate::aws::Connection> = Vec::new();
    // Every scope's listings: both services, less Panorama where AWS's own endpoint is used.
    let mut left: Option<usize> = None;
    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    while left != Some(0) {
        match events.recv().await.context("the worker stopped")? {
            Event::DevicesPage(_, page) => list.upsert(page),
            Event::ListingDone(..) => left = left.map(|n| n.saturating_sub(1)),
            Event::ListingFailed(scope, service, e) => {
                left = left.map(|n| n.saturating_sub(1));
                let c = connections
                    .iter()
                    .find(|c| c.scope() == scope)
                    .cloned()
                    .unwrap_or_default();
                let detail = format!("listing {} devices failed: {e}", service.label());
                let head = match advice(&e, &c, service) {
                    Some(advice) => format!("{scope}: {advice}"),
                    None => format!("{scope}: listing devices failed"),
                };
                // Both services failing for one cause say the cause once.
                match failures.iter_mut().find(|(h, _)| *h == head) {
                    Some((_, details)) => details.push(detail),
                    None => failures.push((head, vec![detail])),
                }
            }
            Event::Connected(c) => {
                if left.is_none() {
                    let ended = c
                        .iter()
                        .filter(|c| c.panorama_endpoint.contains(".amazonaws.com"))
                        .count();
                    let ended = if services.contains(&Service::Panorama) {
                        ended
                    } else {
                        0
                    };
                    left = Some(c.len() * services.len() - ended);
                }
                list.set_scope_order(c.iter().map(|c| c.scope()).collect());
                connections = c;
            }
            // Panorama on AWS's own endpoint is left out (counted above).
            Event::Failure(message) if message.contains("ended Panorama") && text => {
                eprintln!("{message}");
            }
            Event::Failure(message) if message.contains("ended Panorama") => {}
            // Not fatal by itself (a journal problem refuses the plan, with its reason).
            Event::Failure(message) => eprintln!("{message}"),
            Event::Unfinished(plan) => unfinished.push(plan),
            _ => {}
        }
    }
    // Every scope must be read before a plan is made of them: a device missing because its
    // context failed would silently shrink `--all` or a filter.
    if !failures.is_empty() {
        let lines: Vec<String> = failures
            .iter()
            .map(|(head, details)| {
                let details: Vec<String> = details.iter().map(|d| format!("  ({d})")).collect();
                format!("{head}\n{}", details.join("\n"))
            })
            .collect();
        bail!("{}", lines.join("\n"));
    }
    let accounts = connections
        .iter()
        .filter_map(|c| Some((c.scope(), c.account.clone()?)))
        .collect();
    Ok((list, unfinished, accounts))
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

/// What following a plan needs besides the rows.
struct Following<'a> {
    commands: &'a mpsc::UnboundedSender<Command>,
    events: &'a mut mpsc::UnboundedReceiver<Event>,
    signals: &'a mut Signals,
    ids: &'a [OpId],
    text: bool,
    approve_timeout: Option<Duration>,
    journal: Option<&'a std::path::Path>,
}

/// Says what a rollout decided and what it waits for, once each.
fn tell_rollout(
    view: &RolloutView,
    before: Option<&RolloutView>,
    journal: Option<&std::path::Path>,
) {
    let n = view.waves.len();
    let seen = before.map_or(0, |b| b.decisions.len());
    for d in view.decisions.iter().skip(seen) {
        eprintln!("{}", d.line(n));
    }
    let same_phase = before.is_some_and(|b| b.phase == view.phase && b.wave == view.wave);
    if same_phase {
        return;
    }
    let with_journal = journal
        .filter(|p| Some(*p) != journal::default_path().as_deref())
        .map_or_else(String::new, |p| format!(" --journal {}", p.display()));
    let plan = &view.plan;
    match &view.phase {
        Phase::Sending if n > 1 => {
            let size = view.waves.get(view.wave).map_or(0, Vec::len);
            let s = if size == 1 { "" } else { "s" };
            eprintln!("wave {}/{n}: sending {size} device{s}", view.wave + 1)
        }
        Phase::Checking => eprintln!("wave {}/{n}: checking the devices' health", view.wave + 1),
        Phase::Baking { until } => eprintln!(
            "wave {}/{n}: baking for {} before the next wave",
            view.wave + 1,
            duration_text(Duration::from_secs(until.saturating_sub(journal::now())))
        ),
        Phase::AwaitingApproval => eprintln!(
            "wave {}/{n} passed: waiting for approval. From another shell:\n  fleetdeck run --promote {plan}{with_journal}",
            view.wave + 1
        ),
        Phase::Paused { why } => eprintln!(
            "rollout paused: {why}. From another shell:\n  fleetdeck run --promote {plan}{with_journal}   (go on)\n  fleetdeck run --abort {plan}{with_journal}     (stop)"
        ),
        Phase::Aborted { why } => eprintln!("rollout ABORTED: {why}"),
        _ => {}
    }
}

/// Follows every operation to its end: a progress line on a terminal, a line per change
/// otherwise, and each gate's decision. A signal stops dispatch (calls under way finish, the
/// rest stays in the journal for `--resume`) and returns the tally; a second signal exits at
/// once.
async fn follow(
    f: Following<'_>,
    outcomes: &mut [Outcome],
    rollout: &mut Option<RolloutView>,
) -> anyhow::Result<Followed> {
    let Following {
        commands,
        events,
        signals,
        ids,
        text,
        approve_timeout,
        journal,
    } = f;
    let tty = std::io::stderr().is_terminal();
    let mut stopping: Option<tokio::sync::oneshot::Receiver<Tally>> = None;
    let mut approval_by: Option<tokio::time::Instant> = None;
    loop {
        let ended = rollout.as_ref().is_none_or(|r| r.outcome.is_some());
        if stopping.is_none() && ended && outcomes.iter().all(|o| o.engine_state.is_final()) {
            break;
        }
        let approval = async {
            match approval_by {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
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
            () = approval => {
                approval_by = None;
                if let Some(r) = rollout.as_ref() {
                    eprintln!(
                        "no operator's word within {}: aborting the rollout",
                        duration_text(approve_timeout.unwrap_or_default())
                    );
                    commands
                        .send(Command::Abort { plan: r.plan.clone() })
                        .context("the worker stopped")?;
                }
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
            // A scope's account learned after its listing (Panorama lists no ARNs).
            Event::Connected(connections) => {
                for o in outcomes.iter_mut().filter(|o| o.account.is_none()) {
                    o.account = connections
                        .iter()
                        .find(|c| c.scope() == o.scope)
                        .and_then(|c| c.account.clone());
                }
                continue;
            }
            Event::Rollout(view) => {
                // On stderr whatever the output: the JSON summary stays alone on stdout.
                if text && tty {
                    eprint!("\r");
                }
                tell_rollout(&view, rollout.as_ref(), journal);
                // Waiting for an operator — an approval or a pause — is bounded by the timeout.
                approval_by = match (&view.phase, approve_timeout) {
                    (Phase::AwaitingApproval | Phase::Paused { .. }, Some(t)) => {
                        approval_by.or(Some(tokio::time::Instant::now() + t))
                    }
                    _ => None,
                };
                for (k, wave) in view.waves.iter().enumerate() {
                    for op in wave {
                        if let Some(at) = ids.iter().position(|id| id == op) {
                            outcomes[at].wave = Some(k + 1);
                        }
                    }
                }
                *rollout = Some(view);
                continue;
            }
            Event::Health(op, health) => {
                if let Some(at) = ids.iter().position(|id| *id == op) {
                    let row = &mut outcomes[at];
                    match health {
                        Health::Healthy => row.health = Some("healthy".into()),
                        Health::Unhealthy(why) => {
                            row.healthy = false;
                            if text && !tty {
                                eprintln!("{} not healthy: {why}", row.name);
                            }
                            row.health = Some(why);
                        }
                        Health::Checking => {}
                    }
                }
                continue;
            }
            Event::Failure(message) => {
                eprintln!("{message}");
                continue;
            }
            Event::Notice(message) if message.contains("another shell") => {
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

/// How the rollout ended, in the words of the summary.
fn outcome_word(rollout: Option<&RolloutView>, outcomes: &[Outcome]) -> &'static str {
    match rollout.and_then(|r| r.outcome) {
        Some(RolloutOutcome::Aborted) => "ABORTED",
        Some(RolloutOutcome::Succeeded) if outcomes.iter().all(Outcome::ok) => "SUCCEEDED",
        Some(_) => "PARTIAL",
        None if outcomes.iter().all(|o| o.engine_state.is_final()) => {
            if outcomes.iter().all(Outcome::ok) {
                "SUCCEEDED"
            } else {
                "PARTIAL"
            }
        }
        None => "STOPPED",
    }
}

fn report(
    plan: &str,
    outcomes: &[Outcome],
    rollout: Option<&RolloutView>,
    output: Output,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let word = if rollout.is_some_and(|r| r.outcome.is_none()) {
        "STOPPED"
    } else {
        outcome_word(rollout, outcomes)
    };
    match output {
        Output::Json => {
            let failed = outcomes.iter().filter(|o| !o.ok()).count();
            let summary = serde_json::json!({
                "plan": plan,
                "outcome": word,
                "devices": outcomes,
                "succeeded": outcomes.len() - failed,
                "failed": failed,
                "rollout": rollout.map(|r| serde_json::json!({
                    "waves": (0..r.waves.len()).map(|k| {
                        outcomes.iter().filter(|o| o.wave == Some(k + 1)).map(|o| o.device.clone()).collect::<Vec<_>>()
                    }).collect::<Vec<_>>(),
                    "gate": r.gate,
                    "decisions": r.decisions,
                    "phase": r.phase,
                })),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        }
        Output::Text => {
            for o in outcomes {
                let detail = o
                    .error
                    .as_deref()
                    .or(o.health.as_deref().filter(|h| *h != "healthy"))
                    .unwrap_or("");
                writeln!(
                    out,
                    "{:<5} {:<10} {:<24} {:<7} {:<12} {:<30} {}",
                    if o.service == "panorama" {
                        "PAN"
                    } else {
                        "SNOW"
                    },
                    o.region,
                    o.name,
                    o.operation,
                    o.state,
                    o.resource_id.as_deref().unwrap_or("-"),
                    detail
                )?;
            }
            writeln!(out, "outcome: {word} (plan {plan})")?;
        }
    }
    Ok(())
}
