//! `fleetdeck run`: one operation without the full-screen UI. It uses the same pieces as the
//! terminal UI — the devices list and its filter, the plan, validation, the worker (dispatch,
//! journal, tracking) — and prints progress and a summary per device.
//!
//! - `flags`: what the flags ask for, checked before anything is read;
//! - `choose`: listing, choosing and describing the devices, and the plan made of them;
//! - `confirm`: the operator's word before anything is sent;
//! - `follow`: every operation to its end, the rollout's decisions, signals;
//! - `progress`: bars on a terminal, lines otherwise;
//! - `summary`: the rows and their table or JSON;
//! - `control`: a word for the process that runs a plan (`--promote`, `--pause`, `--abort`).

mod choose;
mod confirm;
mod control;
mod flags;
mod follow;
mod progress;
mod summary;

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use tokio::sync::mpsc;

use crate::app::Devices;
use crate::cli::{Output, RunArgs};
use crate::fleet::filter::Danger;
use crate::fleet::{Device, DeviceKey, Operation, SnowOptions};
use crate::ops::OpState;
use crate::ops::rollout::Outcome as RolloutOutcome;
use crate::protocol::{Command, Event, Refusal, Resumable};
use crate::tui::Session;
use crate::worker;
use choose::{Channels, Listed};
use flags::Staging;
use follow::{Followed, Following, Rows, Signals};
use progress::Progress;
use summary::{Outcome, Place};

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
    /// Team mode: the team's table did not answer for `--team-timeout`; nothing more was
    /// sent and the plan is kept for `--resume` (exit 4).
    TeamDown,
}

impl RunEnd {
    pub fn code(self) -> i32 {
        match self {
            Self::Succeeded => 0,
            Self::SomeFailed => 1,
            Self::Aborted => 3,
            Self::Stopped | Self::Interrupted => 130,
            Self::TeamDown => 4,
        }
    }
}

/// Runs the operation (or resumes or discards a plan) and reports how it ended.
pub async fn run(args: RunArgs) -> anyhow::Result<RunEnd> {
    // Every mode of `run` can lead to a call that changes a device: a new plan, a resume, a
    // retry, a discard's reconciliation, and a word to a running rollout (a promotion sends
    // the next wave). Refused before anything is read or sent.
    if args.session.read_only {
        bail!(
            "--read-only: `run` changes devices, so there is nothing it may do; to look without touching anything, use `fleetdeck --read-only` or `fleetdeck journal show PLAN`"
        );
    }
    if let Some((plan, word)) = flags::control_of(&args) {
        return control::control(&args, plan, word).await;
    }
    let snow = flags::check(&args)?;
    let mut staging = Staging::of(&args)?;
    // Signals are taken over before anything is sent: from here on a SIGINT, SIGTERM or SIGHUP
    // stops dispatch cleanly instead of killing the process mid-call.
    let mut signals = Signals::new()?;
    let mut session = Session::prepare(&args.session).await?;
    staging.team = session.settings.team.is_some();
    staging.watch(session.watch.clone());
    if staging.wait_for_leases.is_some() && !staging.team {
        bail!(
            "--wait-for-leases waits for devices the team's other plans hold: it needs team mode (--team TABLE, FLEETDECK_TEAM or a context's `team`)"
        );
    }
    session.settings.wait_for_leases = staging.wait_for_leases;
    // Nothing is on screen to keep fresh: only what was sent is followed.
    session.settings.refresh_every = None;
    session.settings.services = flags::services_of(&args);
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
    let prepared = match prepared {
        Prepared::Done(end) => return Ok(end),
        Prepared::Send(p) => *p,
    };
    let wiring = Wiring {
        commands: &commands,
        events: &mut events,
        signals: &mut signals,
        staging: &staging,
    };
    let sent = send(prepared, wiring, Progress::new(text)).await?;
    finish(sent, &commands, journal.as_deref(), args.output).await
}

/// A plan handed to the worker, with what the summary needs of the listing.
struct ToSend {
    command: Command,
    list: Devices,
    /// The devices preflight left out, with why.
    left_out: Vec<(Device, String)>,
    /// Each scope's account.
    accounts: BTreeMap<String, String>,
}

/// What the run will hand the worker, with the devices listed; or how it ended already.
enum Prepared {
    Send(Box<ToSend>),
    Done(RunEnd),
}

/// A plan sent and followed to its end (or to a stop).
struct Sent {
    plan: String,
    outcomes: Vec<Outcome>,
    rollout: Option<crate::protocol::RolloutView>,
    followed: Followed,
}

/// The worker's channels and the signals, for following what is sent.
struct Wiring<'a> {
    commands: &'a mpsc::UnboundedSender<Command>,
    events: &'a mut mpsc::UnboundedReceiver<Event>,
    signals: &'a mut Signals,
    staging: &'a Staging,
}

/// Hands the plan to the worker and follows it.
async fn send(p: ToSend, w: Wiring<'_>, mut progress: Progress) -> anyhow::Result<Sent> {
    // Preflight's reads are done and nothing is on screen: a target is not read again when
    // its execution ends (the execution's own state is the outcome).
    w.commands
        .send(Command::Look(Vec::new()))
        .context("the worker stopped")?;
    w.commands.send(p.command).context("the worker stopped")?;
    let (plan, operation, ops) = wait_started(w.events).await?;
    let mut outcomes: Vec<Outcome> = ops
        .iter()
        .map(|(_, k)| {
            let d = p.list.get(k);
            let name = d.map_or(k.id.as_str(), |d| d.label());
            let place = Place::of(d, &p.accounts);
            Outcome::new(k, name, place, &operation, OpState::Queued)
        })
        .collect();
    let ids: Vec<crate::ops::OpId> = ops.iter().map(|(id, _)| *id).collect();
    let f = Following {
        commands: w.commands,
        events: w.events,
        signals: w.signals,
        ids: &ids,
        approve_timeout: w.staging.approve_timeout,
        team_timeout: w.staging.team.then_some(w.staging.team_timeout),
        journal: w.staging.journal.as_deref(),
    };
    let mut rollout = None;
    let rows = Rows {
        outcomes: &mut outcomes,
        rollout: &mut rollout,
        progress: &mut progress,
        team: None,
    };
    let followed = follow::follow(f, rows).await?;
    summary::complete(&mut outcomes, &p.left_out, &operation, &p.accounts, |k| {
        p.list.get(k).cloned()
    });
    Ok(Sent {
        plan,
        outcomes,
        rollout,
        followed,
    })
}

/// The summary, what a stop left for `--resume`, and the exit status.
async fn finish(
    sent: Sent,
    commands: &mpsc::UnboundedSender<Command>,
    journal: Option<&std::path::Path>,
    output: Output,
) -> anyhow::Result<RunEnd> {
    let Sent {
        plan,
        outcomes,
        rollout,
        followed,
    } = sent;
    let (tally, team) = match followed {
        Followed::Stopped { tally, team } => (tally, team),
        Followed::Done => (follow::shutdown(commands).await, None),
    };
    let stopped = match team {
        Some(follow::TeamStop::Down) => RunEnd::TeamDown,
        _ => RunEnd::Stopped,
    };
    let path = journal.map_or_else(String::new, |p| format!(" (journal {})", p.display()));
    summary::report(&plan, &outcomes, rollout.as_ref(), output)?;
    if team == Some(follow::TeamStop::Lost) {
        eprintln!(
            "plan {plan} is no longer this host's: what this run did not send is its new owner's (see `fleetdeck team plans`)"
        );
        return Ok(RunEnd::Aborted);
    }
    let Some(tally) = tally else {
        eprintln!(
            "stopped without confirming every call's end; the plan is kept{path}. Finish it with:\n  fleetdeck run --resume {plan}"
        );
        return Ok(stopped);
    };
    if tally.left() > 0 {
        eprintln!(
            "stopped: {} sent, {} not yet sent, {} unconfirmed; the plan is kept{path}. Finish it with:\n  fleetdeck run --resume {plan}",
            tally.running + tally.succeeded + tally.not_done,
            tally.unsent,
            tally.unconfirmed,
        );
        return Ok(stopped);
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
    let services = flags::services_of(args);
    let Listed {
        devices: mut list,
        unfinished,
        accounts,
    } = choose::list_devices(events, &services, text, staging.team).await?;
    if let Some(plan) = &args.discard {
        return Ok(Prepared::Done(
            discard(commands, events, &unfinished, plan).await?,
        ));
    }
    let (command, left_out) = match &args.resume {
        Some(wanted) if staging.team && !has_local(&unfinished, wanted) => {
            (take_over(args, wanted).await?, Vec::new())
        }
        Some(wanted) => (resume(args, &list, &unfinished, wanted).await?, Vec::new()),
        None => {
            let ch = Channels { commands, events };
            let plan = choose::new_plan(args, snow, staging, ch, &mut list).await?;
            if !args.yes {
                confirm::confirm(plan.device_count()).await?;
            }
            // A device another plan holds is named with its holder, as is; the rest with
            // preflight's reason.
            let left_out = plan
                .left_out()
                .filter_map(|s| {
                    let why = if s.held {
                        s.reason.clone()
                    } else {
                        format!("left out by preflight: {}", s.reason)
                    };
                    list.get(&s.key).map(|d| (d.clone(), why))
                })
                .collect();
            (Command::Dispatch(Box::new(plan)), left_out)
        }
    };
    Ok(Prepared::Send(Box::new(ToSend {
        command,
        list,
        left_out,
        accounts,
    })))
}

/// Whether this host's journal holds the plan `--resume` names (or, unnamed, any).
fn has_local(unfinished: &[Resumable], wanted: &str) -> bool {
    if wanted.is_empty() {
        !unfinished.is_empty()
    } else {
        unfinished.iter().any(|u| u.plan.starts_with(wanted))
    }
}

/// Team mode, `--resume [PLAN]` of a plan this host's journal does not hold: another host's,
/// taken over once its owner is seen silent for a whole lease.
async fn take_over(args: &RunArgs, wanted: &str) -> anyhow::Result<Command> {
    let config = crate::tui::team_config(&args.session)?.context("team mode is off")?;
    let team = crate::team::Team::connect(&config, std::time::Duration::from_secs(10))
        .await
        .map_err(anyhow::Error::msg)?;
    let row = team.named(wanted).await.map_err(anyhow::Error::msg)?;
    eprintln!(
        "take over {} plan {} from {} on {} (process {}): {} of {} devices final, phase {}",
        row.operation,
        row.plan,
        row.owner_arn,
        row.owner_host,
        row.owner_pid,
        row.finals,
        row.devices,
        row.phase
    );
    if !args.yes {
        confirm::confirm(row.devices.saturating_sub(row.finals)).await?;
    }
    Ok(Command::TakeOver { plan: row.plan })
}

/// `--resume [PLAN]`: the unfinished plan, named and confirmed.
async fn resume(
    args: &RunArgs,
    list: &Devices,
    unfinished: &[Resumable],
    wanted: &str,
) -> anyhow::Result<Command> {
    let plan = choose::pick_unfinished(unfinished, wanted)?;
    eprintln!(
        "resume {} plan {} (confirmed {}): {} devices not yet sent or confirmed",
        plan.operation.label(),
        plan.plan,
        choose::when(plan.at),
        plan.pending.len()
    );
    choose::print_targets(list, &plan.pending);
    if !args.yes {
        confirm::confirm(plan.pending.len()).await?;
    }
    Ok(Command::Resume {
        plan: plan.plan.clone(),
    })
}

/// The engine's answer to a dispatch or a resume: its plan id, operation and operations.
async fn wait_started(
    events: &mut mpsc::UnboundedReceiver<Event>,
) -> anyhow::Result<(String, Operation, Vec<(crate::ops::OpId, DeviceKey)>)> {
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
            Event::Failure(message)
            | Event::Notice(message)
            | Event::QuotaShared { text: message, .. } => eprintln!("{message}"),
            _ => {}
        }
    }
}

async fn discard(
    commands: &mpsc::UnboundedSender<Command>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    unfinished: &[Resumable],
    plan: &str,
) -> anyhow::Result<RunEnd> {
    let plan = choose::pick_unfinished(unfinished, plan)?;
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
