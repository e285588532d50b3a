//! How a run shows its progress on stderr: on a terminal, indicatif's bars — one per wave (or
//! one for the plan) with how many are final, sent and failed, the rate and the time left —
//! and a spinner while the rollout waits for a gate, a bake or an operator; otherwise (a CI
//! log, a pipe) plain lines, one per change. The summary stays alone on stdout either way.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::summary::Outcome;
use crate::ops::rollout::duration_text;

pub enum Progress {
    Bars(Bars),
    /// A line per change of state (with text output only: JSON keeps stderr for what waits
    /// and what went wrong).
    Lines {
        text: bool,
    },
}

impl Progress {
    /// Bars when stderr is a terminal, lines otherwise.
    pub fn new(text: bool) -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bars(Bars::new(ProgressDrawTarget::stderr()))
        } else {
            Self::Lines { text }
        }
    }

    /// A line that stays: above the bars, or on its own.
    pub fn say(&self, line: &str) {
        match self {
            Self::Bars(b) => b.println(line),
            Self::Lines { .. } => eprintln!("{line}"),
        }
    }

    /// A row of the summary changed: the bars are redrawn, or its new state is a line.
    pub fn op(&mut self, outcomes: &[Outcome], row: usize, changed: bool) {
        match self {
            Self::Bars(b) => b.update(outcomes),
            Self::Lines { text: true } if changed => {
                let o = &outcomes[row];
                eprintln!("{} {} {}", o.name, o.operation, o.state);
            }
            Self::Lines { .. } => {}
        }
    }

    /// A device's operation succeeded but the device is not healthy.
    pub fn unhealthy(&self, name: &str, why: &str) {
        match self {
            Self::Bars(b) => b.println(&format!("{name} not healthy: {why}")),
            Self::Lines { text: true } => eprintln!("{name} not healthy: {why}"),
            Self::Lines { .. } => {}
        }
    }

    /// The rollout's waves are known (or changed): a bar each.
    pub fn waves(&mut self, outcomes: &[Outcome], waves: usize) {
        if let Self::Bars(b) = self {
            b.waves(outcomes, waves);
        }
    }

    /// What the rollout waits for, if anything: a spinner saying it.
    pub fn waiting(&mut self, what: Option<String>) {
        if let Self::Bars(b) = self {
            b.waiting(what);
        }
    }

    /// Every bar as it ended, left on screen.
    pub fn finish(&mut self) {
        if let Self::Bars(b) = self {
            b.finish();
        }
    }
}

/// indicatif's bars: one per wave, and a spinner for a wait.
pub struct Bars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    spinner: Option<ProgressBar>,
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:<9}[{wide_bar}] {pos}/{len} final · {msg} · {rate} · {left}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.1}/s", state.per_sec());
        },
    )
    // Time left only once something has ended to reckon it from, and while anything is left.
    .with_key(
        "left",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let left = state.len().unwrap_or(0).saturating_sub(state.pos());
            let _ = match (state.pos(), left) {
                (_, 0) => write!(w, "done"),
                (0, _) => write!(w, "ETA —"),
                _ => write!(w, "ETA {}", duration_text(state.eta())),
            };
        },
    )
    .progress_chars("█▌░")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Bars {
    pub fn new(target: ProgressDrawTarget) -> Self {
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: Vec::new(),
            spinner: None,
        }
    }

    fn println(&self, line: &str) {
        // Hidden (a closed terminal): the line is not lost, it goes to stderr as it is.
        if self.multi.println(line).is_err() || self.multi.is_hidden() {
            eprintln!("{line}");
        }
    }

    /// One bar per wave, each as long as its wave; a plan of one wave has one bar.
    fn waves(&mut self, outcomes: &[Outcome], waves: usize) {
        let waves = waves.max(1);
        if self.bars.len() == waves {
            return self.update(outcomes);
        }
        for bar in self.bars.drain(..) {
            self.multi.remove(&bar);
        }
        for k in 0..waves {
            let len = if waves == 1 {
                outcomes.len()
            } else {
                outcomes.iter().filter(|o| o.wave == Some(k + 1)).count()
            };
            let bar = self.multi.add(ProgressBar::new(len as u64));
            bar.set_style(bar_style());
            bar.set_prefix(if waves == 1 {
                "plan".to_string()
            } else {
                format!("wave {}/{waves}", k + 1)
            });
            self.bars.push(bar);
        }
        self.update(outcomes);
    }

    fn update(&mut self, outcomes: &[Outcome]) {
        if self.bars.is_empty() {
            self.waves(outcomes, 1);
            return;
        }
        let several = self.bars.len() > 1;
        for (k, bar) in self.bars.iter().enumerate() {
            let rows = outcomes
                .iter()
                .filter(|o| !several || o.wave == Some(k + 1));
            let (mut sent, mut done, mut failed, mut skipped) = (0, 0, 0, 0);
            for o in rows {
                let state = o.engine_state;
                sent += usize::from(state.was_sent());
                done += usize::from(state.is_final());
                // Never sent is not failed: a skipped device is counted apart.
                skipped += usize::from(state == crate::ops::OpState::Skipped);
                failed += usize::from(state.is_final() && state.was_sent() && !o.ok());
            }
            bar.set_position(done as u64);
            bar.set_message(if skipped > 0 {
                format!("{sent} sent · {failed} failed · {skipped} skipped")
            } else {
                format!("{sent} sent · {failed} failed")
            });
        }
    }

    fn waiting(&mut self, what: Option<String>) {
        match (what, &self.spinner) {
            (Some(what), Some(s)) => s.set_message(what),
            (Some(what), None) => {
                let s = self.multi.add(ProgressBar::new_spinner());
                s.set_style(spinner_style());
                s.set_message(what);
                s.enable_steady_tick(Duration::from_millis(120));
                self.spinner = Some(s);
            }
            (None, _) => {
                if let Some(s) = self.spinner.take() {
                    s.finish_and_clear();
                    self.multi.remove(&s);
                }
            }
        }
    }

    fn finish(&mut self) {
        self.waiting(None);
        for bar in &self.bars {
            bar.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{DeviceKey, Operation, Service};
    use crate::ops::OpState;

    fn row(id: &str, wave: usize, state: OpState) -> Outcome {
        let key = DeviceKey::new(Service::Panorama, id);
        let place = super::super::summary::Place::of(None, &Default::default());
        let mut o = Outcome::new(&key, id, place, &Operation::Reboot, state);
        o.wave = Some(wave);
        o
    }

    #[test]
    fn each_wave_counts_its_own_rows() {
        let mut bars = Bars::new(ProgressDrawTarget::hidden());
        let rows = vec![
            row("a", 1, OpState::Succeeded),
            row("b", 2, OpState::Failed),
            row("c", 2, OpState::Sent),
            row("d", 2, OpState::Queued),
        ];
        bars.waves(&rows, 2);
        assert_eq!(bars.bars.len(), 2);
        assert_eq!(bars.bars[0].length(), Some(1));
        assert_eq!(bars.bars[0].position(), 1);
        assert_eq!(bars.bars[1].length(), Some(3));
        assert_eq!(bars.bars[1].position(), 1);
        assert_eq!(bars.bars[1].message(), "2 sent · 1 failed");
        // A wait shows as a spinner, and goes when the wait ends.
        bars.waiting(Some("waiting for approval".into()));
        assert!(bars.spinner.is_some());
        bars.waiting(None);
        assert!(bars.spinner.is_none());
    }
}
