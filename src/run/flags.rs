//! What `fleetdeck run`'s flags ask for, checked before anything is listed or sent: the mode,
//! the staging of a new plan, the Snow options, and the services the run can reach.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use crate::cli::{Action, Breach, RunArgs};
use crate::fleet::filter::{Danger, Filter};
use crate::fleet::{Service, SnowOptions, validate};
use crate::journal;
use crate::ops::rollout::Control;
use crate::ops::rollout::{Gate, OnBreach, Rollout, Size, parse_duration, parse_waves};

/// How the flags stage a new plan.
pub struct Staging {
    pub rollout: Option<Rollout>,
    pub stale: Duration,
    pub journal: Option<PathBuf>,
    /// The devices dangerous to touch, counted before the prompt.
    pub danger: Danger,
    /// Abort a rollout that waits this long for an operator.
    pub approve_timeout: Option<Duration>,
    /// Team mode: wait this long for devices another plan holds (else they are left out).
    pub wait_for_leases: Option<Duration>,
    /// Team mode: stop (resumable) when the team's table has not answered this long.
    pub team_timeout: Duration,
    /// Team mode is on (`--team`, FLEETDECK_TEAM or a context's `team`).
    pub team: bool,
    /// What the gate watches besides the devices.
    pub watch: crate::ops::rollout::Watch,
}

impl Staging {
    /// The gate's watch, from the flags and the contexts: set on the plan once its rollout
    /// is chosen (a retry's from the journal, or the flags').
    pub fn watch(&mut self, watch: crate::ops::rollout::Watch) {
        self.watch = watch;
    }

    pub fn of(args: &RunArgs) -> anyhow::Result<Self> {
        let stale = parse_duration(&args.stale).map_err(|e| anyhow::anyhow!("--stale: {e}"))?;
        let approve_timeout = match &args.approve_timeout {
            Some(t) => {
                Some(parse_duration(t).map_err(|e| anyhow::anyhow!("--approve-timeout: {e}"))?)
            }
            None => None,
        };
        let wait_for_leases = match &args.wait_for_leases {
            Some(t) => {
                Some(parse_duration(t).map_err(|e| anyhow::anyhow!("--wait-for-leases: {e}"))?)
            }
            None => None,
        };
        let team_timeout = parse_duration(&args.team_timeout)
            .map_err(|e| anyhow::anyhow!("--team-timeout: {e}"))?;
        Ok(Self {
            rollout: rollout_of(args)?,
            stale,
            journal: args.session.journal.clone().or_else(journal::default_path),
            danger: Danger::default(),
            approve_timeout,
            wait_for_leases,
            team_timeout,
            team: false,
            watch: Default::default(),
        })
    }
}

/// `--promote`, `--pause` or `--abort PLAN`: the word for the process that runs the plan.
pub fn control_of(args: &RunArgs) -> Option<(&str, Control)> {
    [
        (&args.promote, Control::Promote),
        (&args.pause, Control::Pause),
        (&args.abort, Control::Abort),
    ]
    .into_iter()
    .find_map(|(plan, c)| plan.as_deref().map(|p| (p, c)))
}

/// The flags of a run that makes or carries on a plan, checked before anything is read: a run
/// names its devices, a filter asks something, the Snow options and the image version are
/// ones the services take.
pub fn check(args: &RunArgs) -> anyhow::Result<SnowOptions> {
    let targets = !args.devices.is_empty() || args.all || args.filter.is_some();
    if !targets && args.resume.is_none() && args.discard.is_none() && args.retry.is_none() {
        bail!(
            "name the devices: --devices ID,... , --all or --filter EXPR (or --resume / --discard an unfinished plan)"
        );
    }
    if let Some(at) = args.devices.iter().position(|d| d.trim().is_empty()) {
        bail!(
            "--devices has an empty entry (the {} of {}): name each device once, separated by single commas",
            ordinal(at + 1),
            args.devices.len()
        );
    }
    if let Some(f) = &args.filter
        && Filter::parse(f).is_empty()
    {
        bail!(
            "--filter {f:?} asks nothing, and an empty filter would match every device; pass --all to mean every device"
        );
    }
    if let Some(v) = &args.image_version {
        validate::image_version(v).map_err(anyhow::Error::msg)?;
    }
    Ok(SnowOptions {
        description: validate::description(args.description.as_deref().unwrap_or(""))
            .map_err(anyhow::Error::msg)?,
        tags: validate::tags(&args.tags.join(",")).map_err(anyhow::Error::msg)?,
    })
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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
    let gate = gate_given.then(|| gate_of(args)).transpose()?;
    Ok(Some(Rollout {
        waves,
        gate,
        watch: Default::default(),
    }))
}

fn gate_of(args: &RunArgs) -> anyhow::Result<Gate> {
    let d = Gate::default();
    Ok(Gate {
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
}

/// `--min-done` beyond the plan's size would never let the gate count a failure: refused,
/// once the plan's size is known.
pub fn check_min_done(rollout: &Rollout, devices: usize) -> anyhow::Result<()> {
    if let Some(g) = rollout.gate
        && g.min_done > devices
    {
        bail!(
            "--min-done {} is more than the plan's {devices} devices: the gate would never count a failure (--max-failed {} would never apply); give at most {devices}",
            g.min_done,
            g.max_failed
        );
    }
    Ok(())
}

/// The services a run's devices can be of: what its action applies to, narrowed by its filter
/// or the services its `--devices` name. Resuming, discarding or retrying a plan reads both.
pub fn services_of(args: &RunArgs) -> Vec<Service> {
    let both = vec![Service::Panorama, Service::Snow];
    if args.resume.is_some() || args.discard.is_some() || args.retry.is_some() {
        return both;
    }
    let named: Option<Vec<Service>> = (!args.devices.is_empty())
        .then(|| {
            args.devices
                .iter()
                .map(|d| crate::worker::parse_device_ref(d).map(|k| k.service))
                .collect::<Option<Vec<_>>>()
        })
        .flatten();
    let filter = args.filter.as_deref().map(Filter::parse);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_read_as_english() {
        let words: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            words,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th"
            ]
        );
    }
}
