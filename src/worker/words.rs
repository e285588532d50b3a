//! An operator's words to a rollout — promote, pause, abort — from the terminal UI or from
//! another process through the journal's mailbox: each applied to the rollout's state and
//! journaled with who gave it, then answered; or refused, saying why, with nothing changed.
//! A word is never taken and then dropped.

use super::Worker;
use super::limits::Stop;
use crate::journal::{self, control};
use crate::ops::rollout::{Cause, Control, Phase, Verdict};
use crate::ops::short;
use crate::protocol::{Event, RolloutView};

/// Applied (with what the rollout does now), or refused (with why).
type Said = Result<String, String>;

impl Worker {
    /// Applies a word and says what became of it.
    pub(super) fn word(&mut self, plan: &str, control: Control, by: Cause) -> (bool, String) {
        let said = match self.word_refusal() {
            Some(why) => Err(why),
            None => self.apply_word(plan, control, &by),
        };
        let (applied, detail) = match said {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.emit(Event::Answered {
            plan: plan.to_string(),
            control,
            by,
            applied,
            detail: detail.clone(),
        });
        (applied, detail)
    }

    /// Why no word can be applied now: the process is stopping, or the journal cannot record
    /// the decision (a word is answered only once journaled).
    fn word_refusal(&self) -> Option<String> {
        if self.stop.is_set() {
            return Some("fleetdeck is stopping: nothing changed".into());
        }
        let broken = self.journal.as_ref().and_then(|j| j.broken());
        broken.map(|why| format!("the journal cannot be written ({why}): nothing changed"))
    }

    fn apply_word(&mut self, plan: &str, control: Control, by: &Cause) -> Said {
        match control {
            Control::Promote => self.promote(plan, by),
            Control::Pause => self.pause(plan, by),
            Control::Abort => self.abort_by(plan, by),
        }
    }

    /// Takes the words other processes left for this process's rollouts, applies each, and
    /// answers it once its decision is journaled.
    pub(super) fn take_words(&mut self) {
        let Some(path) = self.settings.journal.clone() else {
            return;
        };
        let asks = control::take(&path, self.rollouts.keys().map(String::as_str));
        for ask in asks {
            let (applied, detail) = self.word(&ask.plan, ask.control, ask.by.clone());
            let answer = control::Answer {
                id: ask.id.clone(),
                applied,
                detail,
            };
            if let Err(e) = control::answer(&path, &answer) {
                self.emit(Event::Failure(format!(
                    "The answer to a {} of rollout {} could not be left for its sender: {e:#}",
                    ask.control.word(),
                    short(&ask.plan)
                )));
            }
        }
    }

    fn promote(&mut self, plan: &str, by: &Cause) -> Said {
        let Some(run) = self.rollouts.get_mut(plan) else {
            return Err(format!("no rollout {} runs here", short(plan)));
        };
        let who = by.text();
        match run.view.phase.clone() {
            Phase::AwaitingApproval | Phase::Baking { .. } => {
                run.promoted = true;
                self.decide(
                    plan,
                    Verdict::Promoted,
                    format!("promoted by {who}"),
                    by.clone(),
                );
                self.after_bake(plan);
            }
            Phase::Paused { .. } => {
                // Past a breach the failures so far are accepted; past a pause of one's own
                // the gate stands as it was, and so does a bake or an approval it interrupted.
                if run.breached {
                    run.accepted = run.view.figures.failed;
                }
                let (tx, hold) = Stop::new();
                run.hold_tx = tx;
                run.hold = hold;
                run.view.phase = match run.before_pause.take() {
                    Some(p @ (Phase::Baking { .. } | Phase::AwaitingApproval)) => p,
                    _ => Phase::Sending,
                };
                let detail = if run.breached {
                    format!(
                        "promoted by {who}, accepting {} failed",
                        run.view.figures.failed
                    )
                } else {
                    format!("resumed by {who}")
                };
                run.breached = false;
                self.decide(plan, Verdict::Promoted, detail, by.clone());
                // An alarm that breached stays accepted until it changes.
                self.accept_alarms(plan);
                self.send_unsent(plan);
            }
            Phase::Sending | Phase::Checking => return Err(nothing_waits(&run.view)),
            Phase::Aborted { .. } | Phase::Done => {
                return Err(format!(
                    "rollout {} has ended: nothing to promote",
                    short(plan)
                ));
            }
        }
        self.advance(plan);
        // The promotion itself changed the view before `advance` looked at it.
        self.emit_view(plan);
        Ok(self.standing(plan))
    }

    fn pause(&mut self, plan: &str, by: &Cause) -> Said {
        let Some(run) = self.rollouts.get(plan) else {
            return Err(format!("no rollout {} runs here", short(plan)));
        };
        match &run.view.phase {
            Phase::Paused { why } => return Err(format!("it is paused already: {why}")),
            Phase::Aborted { .. } | Phase::Done => {
                return Err(format!(
                    "rollout {} has ended: nothing to pause",
                    short(plan)
                ));
            }
            _ => {}
        }
        // The last wave wholly sent: nothing is left that a pause would hold back.
        let unsent = self
            .book
            .ops_of(plan)
            .any(|o| !o.state.was_sent() && !o.state.is_final());
        if run.view.wave + 1 >= run.view.waves.len() && !unsent {
            return Err(format!(
                "every device of rollout {}'s last wave has been sent: nothing is left to pause (abort cancels queued Snow executions)",
                short(plan)
            ));
        }
        self.hold(plan, format!("paused by {}", by.text()), false, by.clone());
        self.advance(plan);
        self.emit_view(plan);
        Ok("nothing more is sent until it is promoted or aborted".into())
    }

    fn abort_by(&mut self, plan: &str, by: &Cause) -> Said {
        let Some(run) = self.rollouts.get(plan) else {
            return Err(format!("no rollout {} runs here", short(plan)));
        };
        if matches!(run.view.phase, Phase::Aborted { .. } | Phase::Done) {
            return Err(format!(
                "rollout {} has ended: nothing to abort",
                short(plan)
            ));
        }
        // A timeout fired as its wait ended (a promotion landed first): the rollout no longer
        // waits for what timed out.
        if let Cause::Timeout { wave: Some(w), .. } = by {
            let waits = matches!(
                run.view.phase,
                Phase::AwaitingApproval | Phase::Paused { .. }
            );
            if !waits || run.view.wave != *w {
                return Err(format!(
                    "the wait of wave {} ended before its timeout was applied: nothing changed",
                    w + 1
                ));
            }
        }
        let why = match by {
            Cause::Timeout { .. } => format!("aborted: {}", by.text()),
            _ => format!("aborted by {}", by.text()),
        };
        self.abort(plan, why, by.clone());
        self.advance(plan);
        self.emit_view(plan);
        Ok("nothing more is sent; what was never sent ends SKIPPED".into())
    }

    /// What a rollout does now, in a few words, for the answer to a promotion.
    fn standing(&self, plan: &str) -> String {
        let Some(run) = self.rollouts.get(plan) else {
            return String::new();
        };
        let v = &run.view;
        let (k, n) = (v.wave + 1, v.waves.len());
        match &v.phase {
            Phase::Sending => format!("wave {k}/{n} is being sent"),
            Phase::Checking => format!("wave {k}/{n}: the devices' health is being read"),
            Phase::Baking { until } => {
                format!("wave {k}/{n} bakes until {} UTC", journal::when(*until))
            }
            Phase::AwaitingApproval => format!("wave {k}/{n} waits for approval"),
            Phase::Paused { why } => format!("paused: {why}"),
            Phase::Aborted { why } => format!("aborted: {why}"),
            Phase::Done => "every wave is sent and every operation has ended".into(),
        }
    }
}

/// Why a promotion has nothing to act on yet: what the rollout does, and when it will wait.
fn nothing_waits(view: &RolloutView) -> String {
    let (k, n) = (view.wave + 1, view.waves.len());
    let now = match view.phase {
        Phase::Checking => format!("wave {k}/{n}'s devices are being checked for health"),
        _ => format!("wave {k}/{n} is being sent"),
    };
    let then = if view.wave + 1 >= n {
        "it is the last wave, so nothing will wait for a promotion".to_string()
    } else if view.gate.is_some_and(|g| g.approve) {
        "promote once it waits for approval".to_string()
    } else {
        format!("wave {} begins by itself once this one passes", k + 1)
    };
    format!("nothing waits for a promotion yet: {now}; {then}")
}
