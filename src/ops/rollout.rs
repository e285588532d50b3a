//! Staged rollouts over services that have none: a plan's devices cut into waves, and the gate
//! each wave must pass before the next is sent. Pure arithmetic and types; the worker drives
//! them, the journal records them, the UI and `fleetdeck run` show them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fleet::{Device, Operation, Service};

pub use super::watch::{AppRef, WINDOW_TAG, Watch, app_baseline, app_baseline_all, app_health};

/// One wave's size as the operator gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    Count(usize),
    /// Of the whole plan, rounded up: a wave is never empty.
    Percent(u8),
    /// Whatever is left.
    Rest,
}

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("rest") {
            return Ok(Self::Rest);
        }
        if let Some(p) = s.strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(p @ 1..=100) => Ok(Self::Percent(p)),
                _ => Err(format!(
                    "wave size {s:?}: a percentage is 1% to 100% of the plan"
                )),
            };
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Self::Count(n)),
            _ => Err(format!(
                "wave size {s:?}: give a count (1 or more), a percentage (10%) or \"rest\""
            )),
        }
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
            Self::Rest => f.write_str("rest"),
        }
    }
}

/// "1,10%,50%,rest": the waves in order. The last wave always takes what is left.
pub fn parse_waves(text: &str) -> Result<Vec<Size>, String> {
    let sizes: Vec<Size> = text.split(',').map(str::parse).collect::<Result<_, _>>()?;
    if let Some(at) = sizes.iter().position(|s| *s == Size::Rest)
        && at + 1 != sizes.len()
    {
        return Err("\"rest\" can only be the last wave".into());
    }
    Ok(sizes)
}

pub fn waves_text(sizes: &[Size]) -> String {
    sizes
        .iter()
        .map(Size::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The wave presets the confirmation offers, in the order `w` cycles through them.
pub const PRESETS: &[(&str, &str)] = &[
    ("all at once", "rest"),
    ("canary 1, then the rest", "1,rest"),
    ("1, 10%, 50%, rest", "1,10%,50%,rest"),
];

/// How many devices each wave of an `n`-device plan takes: percentages of the plan rounded up,
/// capped at what is left, no empty wave, and the last wave taking the rest.
pub fn wave_sizes(spec: &[Size], n: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut left = n;
    for size in spec {
        if left == 0 {
            break;
        }
        let want = match *size {
            Size::Count(c) => c,
            Size::Percent(p) => (n * usize::from(p)).div_ceil(100),
            Size::Rest => left,
        };
        let take = want.clamp(1, left);
        out.push(take);
        left -= take;
    }
    match out.last_mut() {
        Some(last) => *last += left,
        None if n > 0 => out.push(n),
        None => {}
    }
    out
}

/// How many failures a rollout tolerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    Count(usize),
    Percent(u8),
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(p @ 0..=100) => Ok(Self::Percent(p)),
                _ => Err(format!("max failed {s:?}: a percentage is 0% to 100%")),
            };
        }
        s.parse::<usize>()
            .map(Self::Count)
            .map_err(|_| format!("max failed {s:?}: give a count (0, 3) or a percentage (10%)"))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Threshold {
    /// Whether `failed` of `finished` is more than this allows.
    pub fn exceeded(self, failed: usize, finished: usize) -> bool {
        match self {
            Self::Count(n) => failed > n,
            Self::Percent(p) => failed * 100 > usize::from(p) * finished,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBreach {
    /// Stop sending, skip what was not sent, cancel queued Snow executions.
    #[default]
    Abort,
    /// Stop sending and wait for the operator to promote or abort.
    Pause,
}

impl FromStr for OnBreach {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "abort" => Ok(Self::Abort),
            "pause" => Ok(Self::Pause),
            other => Err(format!("on breach {other:?}: abort or pause")),
        }
    }
}

/// What a wave must pass before the next one is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub max_failed: Threshold,
    /// The threshold is applied once this many operations have finished.
    pub min_done: usize,
    /// Seconds to wait after a wave passes, before the next begins.
    pub bake_secs: u64,
    /// An operator promotes each wave.
    pub approve: bool,
    pub on_breach: OnBreach,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            max_failed: Threshold::Count(0),
            min_done: 1,
            bake_secs: 0,
            approve: false,
            on_breach: OnBreach::Abort,
        }
    }
}

impl Gate {
    pub fn bake(&self) -> Duration {
        Duration::from_secs(self.bake_secs)
    }

    /// Whether these figures break the gate. Failures the operator already accepted by
    /// promoting past a breach do not break it again; only new ones count.
    pub fn breached(&self, f: Figures, accepted: usize) -> bool {
        f.finished >= self.min_done.max(1)
            && f.failed > accepted
            && self.max_failed.exceeded(f.failed, f.finished)
    }

    /// The gate as a line: "max failed 10% (after 3 done), bake 5m, approval".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "max failed {} (from {} done)",
            self.max_failed,
            self.min_done.max(1)
        )];
        if self.bake_secs > 0 {
            parts.push(format!("bake {}", duration_text(self.bake())));
        }
        if self.approve {
            parts.push("approval".into());
        }
        parts.push(match self.on_breach {
            OnBreach::Abort => "abort on breach".into(),
            OnBreach::Pause => "pause on breach".into(),
        });
        parts.join(", ")
    }
}

/// How a rollout is staged: its waves, its gate, and what else the gate watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub waves: Vec<Size>,
    /// The gate as given. A plan of one wave has none unless given; one of several waves
    /// always has one (the default allows no failure).
    pub gate: Option<Gate>,
    pub watch: Watch,
}

impl Default for Rollout {
    fn default() -> Self {
        Self {
            waves: vec![Size::Rest],
            gate: None,
            watch: Watch::default(),
        }
    }
}

impl Rollout {
    /// The gate in force for a plan cut into `waves` waves.
    pub fn gate_for(&self, waves: usize) -> Option<Gate> {
        self.gate.or_else(|| (waves > 1).then(Gate::default))
    }
}

/// Whether a device is back to health after its operation succeeded: the reason if not.
/// `ended` is when a Snow execution ended (the service's clock, epoch seconds).
pub fn health(op: &Operation, d: &Device, ended: Option<u64>) -> Result<(), String> {
    match (op, d.service) {
        (Operation::Ota { image_version, .. }, Service::Panorama) => {
            let current = d.current_software.as_deref().unwrap_or("unknown");
            if current != image_version {
                return Err(format!("runs {current}, not {image_version}"));
            }
            online(d)
        }
        (Operation::Reboot, Service::Panorama) => online(d),
        (Operation::Reboot, Service::Snow) => match (d.last_reached_out, ended) {
            (Some(seen), Some(end)) if seen >= end => Ok(()),
            _ => Err("has not reached out since its reboot".into()),
        },
        (Operation::Unlock, Service::Snow) if d.status == "UNLOCKED" => Ok(()),
        (Operation::Unlock, _) => Err(format!("is {}, not UNLOCKED", lower_or_unknown(&d.status))),
        (Operation::Ota { .. }, Service::Snow) => Ok(()),
    }
}

fn online(d: &Device) -> Result<(), String> {
    match d.connection.as_deref() {
        Some("ONLINE") if d.status != "REBOOTING" => Ok(()),
        Some("ONLINE") => Err("is still rebooting".into()),
        Some(other) => Err(format!("is {other}, not back ONLINE")),
        None => Err("its connection status is unknown".into()),
    }
}

fn lower_or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

/// The figures a gate reads: operations sent and finished so far, and how many of them
/// failed (failed, timed out, canceled, or done but not healthy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    pub finished: usize,
    pub failed: usize,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} finished failed", self.failed, self.finished)
    }
}

/// What the rollout waits for, or how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// The current wave's operations are being sent and followed.
    Sending,
    /// Every operation of the wave is final; the devices' health is being read.
    Checking,
    /// The wave passed; the next begins at `until` (epoch seconds).
    Baking { until: u64 },
    /// The wave passed; an operator must promote it.
    AwaitingApproval,
    /// Nothing more is sent until an operator promotes or aborts.
    Paused { why: String },
    /// Stopped for good: nothing more is sent.
    Aborted { why: String },
    /// Every wave was sent and every operation is final.
    Done,
}

impl Phase {
    pub fn is_end(&self) -> bool {
        matches!(self, Self::Aborted { .. } | Self::Done)
    }
}

/// How a rollout ended: never a success when any device was left out or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Succeeded,
    Partial,
    Aborted,
}

/// A device's health after its operation succeeded, as the gate reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Checking,
    Healthy,
    Unhealthy(String),
}

/// A gate's decision or an operator's word, as printed and journaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The wave passed the gate.
    Passed,
    /// The threshold was broken.
    Breached,
    /// An operator (or an approval) let the next wave go.
    Promoted,
    /// An operator paused the rollout.
    Paused,
    /// The rollout was aborted (by the gate or an operator).
    Aborted,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Breached => "BREACHED",
            Self::Promoted => "promoted",
            Self::Paused => "paused",
            Self::Aborted => "ABORTED",
        }
    }
}

/// One decision of a rollout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The wave it concerns, from 0.
    pub wave: usize,
    pub verdict: Verdict,
    pub figures: Figures,
    /// In words, for the operator.
    pub detail: String,
    /// Who or what decided: an operator, the gate, a timeout. Journals before causes were
    /// recorded have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Cause>,
}

/// A word to a rollout, from an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Go on past what it waits for: an approval, a bake, a pause or a breach.
    Promote,
    /// Send nothing more until promoted or aborted.
    Pause,
    /// Send nothing more, ever.
    Abort,
}

impl Control {
    pub const ALL: [Control; 3] = [Self::Promote, Self::Pause, Self::Abort];

    pub fn word(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Pause => "pause",
            Self::Abort => "abort",
        }
    }
}

/// Why a rollout did what it did: the true cause, as the summary, the journal, the results
/// pane and every skipped device's reason name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Cause {
    /// An operator's word: who, on which host, from which process, and through what (the
    /// terminal UI, another shell).
    Operator {
        user: String,
        host: String,
        pid: u32,
        via: String,
    },
    /// The gate's own reading of the figures.
    Gate,
    /// A wait ran out: what was waited for, how long, and the flag that set it.
    Timeout {
        waited_for: String,
        secs: u64,
        flag: String,
        /// The wave whose wait ran out (from 0): a timeout that fired as the wait ended (a
        /// promotion just landed) is refused, not applied to the next wave.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wave: Option<usize>,
    },
}

impl Cause {
    /// "alice on jump-1 (process 4242, another shell)", "the gate", "no operator's word
    /// within 3s (--approve-timeout)".
    pub fn text(&self) -> String {
        match self {
            Self::Operator {
                user,
                host,
                pid,
                via,
            } => format!("{user} on {host} (process {pid}, {via})"),
            Self::Gate => "the gate".into(),
            Self::Timeout {
                waited_for,
                secs,
                flag,
                ..
            } => format!(
                "no {waited_for} within {} ({flag})",
                duration_text(Duration::from_secs(*secs))
            ),
        }
    }
}

impl Decision {
    /// "wave 1/3: passed — 0 of 2 finished failed (max 10%)".
    pub fn line(&self, waves: usize) -> String {
        format!(
            "gate, wave {}/{}: {} — {}",
            self.wave + 1,
            waves,
            self.verdict.word(),
            self.detail
        )
    }
}

/// "4m12s", "1h", "30s".
pub fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// "10m", "90s", "1h30m", "0".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("{t:?} is not a duration ({e}); write it like 30s, 10m or 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(spec: &str, n: usize) -> Vec<usize> {
        wave_sizes(&parse_waves(spec).unwrap(), n)
    }

    #[test]
    fn percentages_round_up_and_the_last_wave_takes_the_rest() {
        assert_eq!(sizes("1,10%,50%,rest", 100), vec![1, 10, 50, 39]);
        assert_eq!(sizes("1,10%,50%,rest", 7), vec![1, 1, 4, 1]);
        // 10% of 3 is 0.3 devices: rounded up to 1, never an empty wave.
        assert_eq!(sizes("10%,rest", 3), vec![1, 2]);
        assert_eq!(sizes("2,100%", 20), vec![2, 18]);
        assert_eq!(sizes("1,10%,100%", 20), vec![1, 2, 17]);
        // Sizes that do not reach the end: the last wave given takes the rest.
        assert_eq!(sizes("1,5", 20), vec![1, 19]);
        assert_eq!(sizes("1,5,rest", 20), vec![1, 5, 14]);
    }

    #[test]
    fn waves_never_outnumber_devices_and_none_is_empty() {
        assert_eq!(sizes("1,1,1,rest", 2), vec![1, 1]);
        assert_eq!(sizes("5,rest", 3), vec![3]);
        assert_eq!(sizes("rest", 0), Vec::<usize>::new());
        assert_eq!(sizes("rest", 4), vec![4]);
        for n in 0..60 {
            for spec in [
                "1,10%,50%,rest",
                "1,rest",
                "25%,25%,25%,25%",
                "3,3,3",
                "100%",
            ] {
                let s = sizes(spec, n);
                assert_eq!(s.iter().sum::<usize>(), n, "{spec} of {n}");
                assert!(s.iter().all(|&w| w > 0), "{spec} of {n}: {s:?}");
            }
        }
    }

    #[test]
    fn bad_wave_lists_are_refused_with_the_reason() {
        assert!(parse_waves("0").unwrap_err().contains("count"));
        assert!(parse_waves("150%").unwrap_err().contains("1% to 100%"));
        assert!(parse_waves("rest,1").unwrap_err().contains("last"));
        assert!(parse_waves("1,,2").is_err());
        assert_eq!(
            waves_text(&parse_waves("1, 10% ,REST").unwrap()),
            "1,10%,rest"
        );
    }

    #[test]
    fn the_gate_counts_once_enough_are_done_and_only_new_failures_after_a_promotion() {
        let gate = Gate {
            max_failed: "10%".parse().unwrap(),
            min_done: 3,
            ..Gate::default()
        };
        let f = |failed, finished| Figures { failed, finished };
        // 1 of 2 is 50%, but fewer than 3 are done: not yet counted.
        assert!(!gate.breached(f(1, 2), 0));
        assert!(gate.breached(f(1, 3), 0));
        // 1 of 10 is exactly 10%: allowed; 2 of 10 is not.
        assert!(!gate.breached(f(1, 10), 0));
        assert!(gate.breached(f(2, 10), 0));
        // Promoted past 2 failures: a third breaks it again, the same two do not.
        assert!(!gate.breached(f(2, 12), 2));
        assert!(gate.breached(f(3, 12), 2));

        let count = Gate {
            max_failed: "1".parse().unwrap(),
            ..Gate::default()
        };
        assert!(!count.breached(f(1, 1), 0));
        assert!(count.breached(f(2, 2), 0));
        let strict = Gate::default();
        assert_eq!(Rollout::default().gate_for(1), None);
        assert_eq!(Rollout::default().gate_for(2), Some(Gate::default()));
        assert!(strict.breached(f(1, 1), 0));
        assert!(!strict.breached(f(0, 5), 0));
    }

    #[test]
    fn health_is_what_each_operation_promises() {
        let ota = Operation::Ota {
            image_version: "5.0.21".into(),
            allow_major: false,
        };
        let mut d = Device::new(Service::Panorama, "p");
        d.current_software = Some("5.0.10".into());
        d.connection = Some("ONLINE".into());
        assert_eq!(
            health(&ota, &d, None),
            Err("runs 5.0.10, not 5.0.21".into())
        );
        d.current_software = Some("5.0.21".into());
        assert_eq!(health(&ota, &d, None), Ok(()));
        d.connection = Some("OFFLINE".into());
        assert!(
            health(&Operation::Reboot, &d, None)
                .unwrap_err()
                .contains("OFFLINE")
        );
        let mut s = Device::new(Service::Snow, "s");
        s.last_reached_out = Some(100);
        assert!(health(&Operation::Reboot, &s, Some(120)).is_err());
        assert!(health(&Operation::Reboot, &s, Some(100)).is_ok());
        s.status = "LOCKED".into();
        assert_eq!(
            health(&Operation::Unlock, &s, None),
            Err("is LOCKED, not UNLOCKED".into())
        );
    }

    #[test]
    fn thresholds_and_durations_read_as_written() {
        assert_eq!("50%".parse(), Ok(Threshold::Percent(50)));
        assert_eq!("3".parse(), Ok(Threshold::Count(3)));
        assert!("-1".parse::<Threshold>().is_err());
        assert!("101%".parse::<Threshold>().is_err());
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("soon").is_err());
        assert_eq!(duration_text(Duration::from_secs(252)), "4m12s");
        assert_eq!(duration_text(Duration::from_secs(3600)), "1h");
    }
}
