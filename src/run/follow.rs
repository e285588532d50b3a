//! Following a plan to its end: every operation's news into its summary row, each gate
//! decision and wait told once, an approval timeout kept, and signals that stop dispatch
//! cleanly (a second one exits at once).

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use super::progress::Progress;
use super::summary::Outcome;
use crate::journal;
use crate::ops::rollout::{Cause, Health, Phase, duration_text};
use crate::ops::{OpId, Tally, upper_first};
use crate::protocol::{Command, Event, RolloutView};

/// SIGINT, SIGTERM and SIGHUP, taken over from their default of ending the process at once.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Stops the worker's dispatch and waits for the tally of what it left; `None` when it did
/// not answer (it is gone, or took over a minute).
pub async fn shutdown(commands: &mpsc::UnboundedSender<Command>) -> Option<Tally> {
    let (done, wait) = oneshot::channel();
    commands.send(Command::Shutdown(done)).ok()?;
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .ok()
        .and_then(Result::ok)
}

/// How following ended.
pub enum Followed {
    /// Every operation reached its end.
    Done,
    /// A signal (or the team's table: see `team`) stopped dispatch: the tally of what was
    /// left, if the worker answered.
    Stopped {
        tally: Option<Tally>,
        team: Option<TeamStop>,
    },
}

/// Why team mode stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamStop {
    /// The table did not answer for `--team-timeout`: the plan is kept for `--resume`.
    Down,
    /// Another host took the plan over (or its lease could not be written).
    Lost,
}

/// What following a plan needs besides the rows.
pub struct Following<'a> {
    pub commands: &'a mpsc::UnboundedSender<Command>,
    pub events: &'a mut mpsc::UnboundedReceiver<Event>,
    pub signals: &'a mut Signals,
    pub ids: &'a [OpId],
    pub approve_timeout: Option<Duration>,
    pub journal: Option<&'a std::path::Path>,
    /// Team mode: how long the team's table may not answer before the run stops.
    pub team_timeout: Option<Duration>,
}

/// The rows, the rollout as last reported, and how progress is shown.
pub struct Rows<'a> {
    pub outcomes: &'a mut [Outcome],
    pub rollout: &'a mut Option<RolloutView>,
    pub progress: &'a mut Progress,
    /// Team mode: how the plan stands with the table, as last told.
    pub team: Option<String>,
}

/// Follows every operation to its end. A signal stops dispatch (calls under way finish, the
/// rest stays in the journal for `--resume`) and returns the tally; a second signal exits at
/// once.
pub async fn follow(f: Following<'_>, mut rows: Rows<'_>) -> anyhow::Result<Followed> {
    let Following {
        commands,
        events,
        signals,
        ids,
        approve_timeout,
        journal,
        team_timeout,
    } = f;
    let mut stopping: Option<oneshot::Receiver<Tally>> = None;
    let mut approval_by: Option<tokio::time::Instant> = None;
    // Team mode: since when the table has not answered, as the worker reports it.
    let mut team_down: Option<tokio::time::Instant> = None;
    let mut gave_up: Option<TeamStop> = None;
    loop {
        let ended = rows.rollout.as_ref().is_none_or(|r| r.outcome.is_some());
        if stopping.is_none() && ended && rows.outcomes.iter().all(|o| o.engine_state.is_final()) {
            break;
        }
        let approval = async {
            match approval_by {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let team_limit = async {
            match (team_down, team_timeout) {
                (Some(since), Some(t)) => tokio::time::sleep_until(since + t).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => {
                let event = event.context("the worker stopped")?;
                if let Event::Team { down_secs, stopped, .. } = &event {
                    team_down = down_secs.map(|s| {
                        team_down.unwrap_or_else(|| {
                            tokio::time::Instant::now() - Duration::from_secs(s)
                        })
                    });
                    // Taken over, or never leased: nothing more goes from here; what is
                    // left is told and kept.
                    if *stopped && stopping.is_none() {
                        let (done, wait) = oneshot::channel();
                        commands.send(Command::Shutdown(done)).context("the worker stopped")?;
                        stopping = Some(wait);
                        gave_up = Some(TeamStop::Lost);
                    }
                }
                if let Some(view) = rows.take(ids, event, journal) {
                    approval_by = approval_deadline(&view, approve_timeout, approval_by);
                }
            }
            name = signals.next() => {
                if stopping.is_some() {
                    rows.progress.say(&format!("\n{name} again: exiting now; the journal has what was sent"));
                    std::process::exit(130);
                }
                rows.progress.say(&format!(
                    "\n{name}: stopping — calls under way finish, nothing more is sent, the rest is kept for --resume ({name} again exits at once)"
                ));
                let (done, wait) = oneshot::channel();
                commands.send(Command::Shutdown(done)).context("the worker stopped")?;
                stopping = Some(wait);
            }
            () = team_limit, if stopping.is_none() => {
                let t = team_timeout.unwrap_or_default();
                rows.progress.say(&format!(
                    "the team table has not answered for {} (--team-timeout): stopping — nothing more is sent, the plan is kept for --resume",
                    duration_text(t)
                ));
                let (done, wait) = oneshot::channel();
                commands.send(Command::Shutdown(done)).context("the worker stopped")?;
                stopping = Some(wait);
                gave_up = Some(TeamStop::Down);
            }
            () = approval => {
                approval_by = None;
                if let Some(r) = rows.rollout.as_ref() {
                    let by = timed_out(r, approve_timeout.unwrap_or_default());
                    rows.progress.say(&format!(
                        "{}: aborting the rollout",
                        upper_first(&by.text())
                    ));
                    commands
                        .send(Command::Abort { plan: r.plan.clone(), by })
                        .context("the worker stopped")?;
                }
            }
            tally = async { stopping.as_mut().expect("guarded").await }, if stopping.is_some() => {
                // The worker sent every row's last news before its answer: take it in.
                while let Ok(event) = events.try_recv() {
                    if let Event::Op(op, update) = event
                        && let Some(at) = ids.iter().position(|id| *id == op)
                    {
                        rows.outcomes[at].apply(update);
                    }
                }
                rows.progress.finish();
                return Ok(Followed::Stopped { tally: tally.ok(), team: gave_up });
            }
        };
    }
    rows.progress.finish();
    Ok(Followed::Done)
}

/// The cause of an abort by `--approve-timeout`: what the rollout waited for, and how long.
fn timed_out(view: &RolloutView, after: Duration) -> Cause {
    let waited_for = match view.phase {
        Phase::Paused { .. } => "promotion after the pause",
        _ => "approval",
    };
    Cause::Timeout {
        waited_for: waited_for.into(),
        secs: after.as_secs(),
        flag: format!("--approve-timeout {}", duration_text(after)),
        wave: Some(view.wave),
    }
}

/// Waiting for an operator — an approval or a pause — is bounded by the timeout, counted
/// from when the wait began.
fn approval_deadline(
    view: &RolloutView,
    timeout: Option<Duration>,
    current: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    // An operator's own pause is theirs to end; a breach's pause waits for a word too.
    let breach = view
        .decisions
        .last()
        .is_some_and(|d| d.by == Some(Cause::Gate));
    match (&view.phase, timeout) {
        (Phase::AwaitingApproval, Some(t)) => current.or(Some(tokio::time::Instant::now() + t)),
        (Phase::Paused { .. }, Some(t)) if breach => {
            current.or(Some(tokio::time::Instant::now() + t))
        }
        _ => None,
    }
}

impl Rows<'_> {
    /// Takes one event from the worker; a rollout's new view is handed back.
    fn take(
        &mut self,
        ids: &[OpId],
        event: Event,
        journal: Option<&std::path::Path>,
    ) -> Option<RolloutView> {
        match event {
            Event::Op(op, update) => {
                let at = ids.iter().position(|id| *id == op)?;
                let changed = self.outcomes[at].apply(update);
                self.progress.op(self.outcomes, at, changed);
            }
            // A scope's account learned after its listing (Panorama lists no ARNs).
            Event::Connected(connections) => {
                for o in self.outcomes.iter_mut().filter(|o| o.account.is_none()) {
                    o.account = connections
                        .iter()
                        .find(|c| c.scope() == o.scope)
                        .and_then(|c| c.account.clone());
                }
            }
            Event::Rollout(view) => {
                self.rollout_view(ids, &view, journal);
                return Some(view);
            }
            Event::Health(op, health) => self.health(ids, op, health),
            Event::Failure(message)
            | Event::Notice(message)
            | Event::QuotaShared { text: message, .. } => self.progress.say(&message),
            // Told once per change.
            Event::Team { plan, standing, .. } if self.team.as_ref() != Some(&standing) => {
                self.progress.say(&format!(
                    "plan {} in the team table: {standing}",
                    crate::ops::short(&plan)
                ));
                self.team = Some(standing);
            }
            Event::Answered {
                control,
                by,
                applied,
                detail,
                ..
            } => {
                let verdict = if applied { "applied" } else { "refused" };
                let from = match by {
                    Cause::Operator { .. } => format!(" from {}", by.text()),
                    _ => String::new(),
                };
                self.progress
                    .say(&format!("{}{from}: {verdict}: {detail}", control.word()));
            }
            _ => {}
        }
        None
    }

    fn rollout_view(
        &mut self,
        ids: &[OpId],
        view: &RolloutView,
        journal: Option<&std::path::Path>,
    ) {
        // On stderr whatever the output: the JSON summary stays alone on stdout.
        for line in rollout_lines(view, self.rollout.as_ref(), journal) {
            self.progress.say(&line);
        }
        for (k, wave) in view.waves.iter().enumerate() {
            for op in wave {
                if let Some(at) = ids.iter().position(|id| id == op)
                    && let Some(row) = self.outcomes.get_mut(at)
                {
                    row.wave = Some(k + 1);
                }
            }
        }
        self.progress.waves(self.outcomes, view.waves.len());
        self.progress.waiting(waiting_for(view));
        *self.rollout = Some(view.clone());
    }

    fn health(&mut self, ids: &[OpId], op: OpId, health: Health) {
        let Some(at) = ids.iter().position(|id| *id == op) else {
            return;
        };
        let row = &mut self.outcomes[at];
        match health {
            Health::Healthy => row.health = Some("healthy".into()),
            Health::Unhealthy(why) => {
                row.healthy = false;
                self.progress.unhealthy(&row.name, &why);
                row.health = Some(why);
            }
            Health::Checking => {}
        }
    }
}

/// What a rollout waits for, in a few words, while it waits.
fn waiting_for(view: &RolloutView) -> Option<String> {
    let n = view.waves.len();
    let wave = view.wave + 1;
    match &view.phase {
        Phase::Checking => Some(format!("wave {wave}/{n}: checking the devices' health")),
        Phase::Baking { until } => Some(format!(
            "wave {wave}/{n}: baking until {} UTC",
            journal::when(*until)
        )),
        Phase::AwaitingApproval => Some(format!(
            "wave {wave}/{n} passed: waiting for approval (fleetdeck run --promote {})",
            crate::ops::short(&view.plan)
        )),
        Phase::Paused { why } => Some(format!("paused: {why}")),
        _ => None,
    }
}

/// What a rollout decided and what it waits for, each said once.
/// "3 devices wait for their maintenance window: cam-01 until 2026-12-07 02:00:00 UTC, …".
fn waiting_line(view: &RolloutView) -> String {
    let mut waits = view.waiting.clone();
    waits.sort_by_key(|(_, until)| *until);
    let n = waits.len();
    let shown: Vec<String> = waits
        .iter()
        .take(5)
        .map(|(k, until)| format!("{} until {} UTC", k.id, journal::when(*until)))
        .collect();
    let more = if n > 5 {
        format!(", and {} more", n - 5)
    } else {
        String::new()
    };
    let s = if n == 1 { " waits" } else { "s wait" };
    format!(
        "{n} device{s} for the maintenance window: {}{more}",
        shown.join(", ")
    )
}

fn rollout_lines(
    view: &RolloutView,
    before: Option<&RolloutView>,
    journal: Option<&std::path::Path>,
) -> Vec<String> {
    let n = view.waves.len();
    let seen = before.map_or(0, |b| b.decisions.len());
    let mut lines: Vec<String> = view
        .decisions
        .iter()
        .skip(seen)
        .map(|d| d.line(n))
        .collect();
    if before.is_none_or(|b| b.waiting != view.waiting) && !view.waiting.is_empty() {
        lines.push(waiting_line(view));
    }
    let same_phase = before.is_some_and(|b| b.phase == view.phase && b.wave == view.wave);
    if same_phase {
        return lines;
    }
    let with_journal = journal
        .filter(|p| Some(*p) != journal::default_path().as_deref())
        .map_or_else(String::new, |p| format!(" --journal {}", p.display()));
    let plan = &view.plan;
    let wave = view.wave + 1;
    match &view.phase {
        Phase::Sending if n > 1 => {
            let size = view.waves.get(view.wave).map_or(0, Vec::len);
            let s = if size == 1 { "" } else { "s" };
            lines.push(format!("wave {wave}/{n}: sending {size} device{s}"));
        }
        Phase::Checking => lines.push(format!("wave {wave}/{n}: checking the devices' health")),
        Phase::Baking { until } => lines.push(format!(
            "wave {wave}/{n}: baking for {} before the next wave",
            duration_text(Duration::from_secs(until.saturating_sub(journal::now())))
        )),
        Phase::AwaitingApproval => lines.push(format!(
            "wave {wave}/{n} passed: waiting for approval. From another shell:\n  fleetdeck run --promote {plan}{with_journal}"
        )),
        Phase::Paused { why } => lines.push(format!(
            "rollout paused: {why}. From another shell:\n  fleetdeck run --promote {plan}{with_journal}   (go on)\n  fleetdeck run --abort {plan}{with_journal}     (stop)"
        )),
        Phase::Aborted { why } => lines.push(format!("rollout ABORTED: {why}")),
        _ => {}
    }
    lines
}
