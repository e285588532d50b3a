//! Turning marked devices and an operation into the calls that carry it out: Panorama takes
//! one device per CreateJobForDevices, Snow up to 10 targets per CreateTask.

use std::collections::BTreeMap;
use std::time::Duration;

use super::rollout::{Rollout, duration_text, wave_sizes};
use crate::fleet::{
    Device, DeviceKey, Operation, SNOW_TARGETS_PER_TASK, STALE_AFTER, Service, SnowOptions,
    major_of, version_key,
};

/// A device left out of the plan, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub key: DeviceKey,
    pub label: String,
    pub reason: String,
    /// Left out by preflight (certain to fail), rather than because the operation does not
    /// apply: `include_skipped` sends these anyway.
    pub preflight: bool,
    /// Team mode: another plan of the team holds it (the reason names who). Never sent,
    /// whatever `include_skipped` says.
    pub held: bool,
}

/// What preflight checks before a plan is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preflight {
    /// Send the devices preflight would skip.
    pub include_skipped: bool,
    /// A Snow device silent for longer than this is skipped.
    pub stale: Duration,
    /// Now, epoch seconds.
    pub now: u64,
}

impl Preflight {
    pub const DEFAULT_STALE: Duration = STALE_AFTER;

    pub fn new(include_skipped: bool, stale: Duration) -> Self {
        Self {
            include_skipped,
            stale,
            now: crate::fleet::now(),
        }
    }
}

impl Default for Preflight {
    fn default() -> Self {
        Self::new(false, Self::DEFAULT_STALE)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub operation: Operation,
    pub snow: SnowOptions,
    /// The devices sent to, in the order they go: canaries first, then as shown.
    pub targets: Vec<DeviceKey>,
    pub skipped: Vec<Skipped>,
    /// Labels of appliances the OTA would move to a new major version.
    pub major_bumps: Vec<String>,
    pub rollout: Rollout,
    /// Preflight's skips, sent anyway (they are in `targets` and still named in `skipped`).
    pub include_skipped: bool,
    /// The scope ("context/region") each target was read from: where its call goes.
    pub scopes: BTreeMap<DeviceKey, String>,
    /// The tags of targets that have any: a device's own maintenance window is one of them.
    pub tags: BTreeMap<DeviceKey, crate::fleet::Tags>,
}

impl Plan {
    /// A plan of `devices` in the order given; devices matching `canary` go first.
    pub fn new(operation: Operation, snow: SnowOptions, devices: &[&Device]) -> Self {
        Self::with(operation, snow, devices, Preflight::default())
    }

    pub fn with(
        operation: Operation,
        snow: SnowOptions,
        devices: &[&Device],
        preflight: Preflight,
    ) -> Self {
        let mut targets = Vec::new();
        let mut skipped = Vec::new();
        let mut major_bumps = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut scopes = BTreeMap::new();
        let mut tags = BTreeMap::new();
        let offered = offered_versions(&operation, devices);
        for d in devices {
            // A device named twice (by id and by name, say) is one target.
            if !seen.insert(d.key()) {
                continue;
            }
            let skip = |reason: String, preflight: bool| Skipped {
                key: d.key(),
                label: d.label().to_string(),
                reason,
                preflight,
                held: false,
            };
            if let Some(reason) = skip_reason(&operation, d) {
                skipped.push(skip(reason, false));
                continue;
            }
            if let Some(reason) = certain_to_fail(&operation, d, &offered, &preflight) {
                skipped.push(skip(reason, true));
                if !preflight.include_skipped {
                    continue;
                }
            }
            if let (Operation::Ota { image_version, .. }, Some(current)) =
                (&operation, &d.current_software)
                && major_of(image_version) > major_of(current)
            {
                major_bumps.push(d.label().to_string());
            }
            if !d.scope.is_empty() {
                scopes.insert(d.key(), d.scope.to_string());
            }
            if !d.tags.is_empty() {
                tags.insert(d.key(), d.tags.clone());
            }
            targets.push(d.key());
        }
        Self {
            operation,
            snow,
            targets,
            skipped,
            major_bumps,
            rollout: Rollout::default(),
            include_skipped: preflight.include_skipped,
            scopes,
            tags,
        }
    }

    /// Each target's maintenance window, "panorama:<id>" → spec: its own tag's, else the
    /// plan's. Devices with neither are absent: they may be sent to at any time.
    pub fn windows(&self) -> BTreeMap<String, String> {
        let watch = &self.rollout.watch;
        self.targets
            .iter()
            .filter_map(|k| {
                let own = self
                    .tags
                    .get(k)
                    .and_then(|t| t.get(&watch.window_tag))
                    .map(str::to_string);
                let spec = own.or_else(|| watch.window.clone())?;
                let service = match k.service {
                    crate::fleet::Service::Panorama => "panorama",
                    crate::fleet::Service::Snow => "snow",
                };
                Some((format!("{service}:{}", k.id), spec))
            })
            .collect()
    }

    /// What the confirmation says of the gate's watch: alarms, application health, and
    /// each device's window with when it next opens. `label` names a device.
    pub fn watch_notes(&self, now: u64, label: impl Fn(&DeviceKey) -> String) -> Vec<String> {
        let watch = &self.rollout.watch;
        let mut notes = Vec::new();
        if !watch.alarms.is_empty() {
            let strict = if watch.alarm_strict {
                " (INSUFFICIENT_DATA too)"
            } else {
                ""
            };
            notes.push(format!(
                "Alarms: {} — one in ALARM{strict} breaks the gate",
                watch.alarms.join(", ")
            ));
        }
        let windows = self.windows();
        for k in &self.targets {
            let service = match k.service {
                crate::fleet::Service::Panorama => "panorama",
                crate::fleet::Service::Snow => "snow",
            };
            if let Some(spec) = windows.get(&format!("{service}:{}", k.id)) {
                notes.push(format!(
                    "{}: window {spec}, {}",
                    label(k),
                    super::watch::next_window_text(spec, now)
                ));
            }
        }
        notes
    }

    /// The scopes the plan's targets are in, in order of first appearance.
    pub fn scope_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in &self.targets {
            if let Some(s) = self.scopes.get(k)
                && !out.contains(s)
            {
                out.push(s.clone());
            }
        }
        out
    }

    /// Puts the devices `first` chooses at the front, keeping the order within each part.
    pub fn canaries_first(&mut self, first: impl Fn(&DeviceKey) -> bool) {
        let (mut front, back): (Vec<DeviceKey>, Vec<DeviceKey>) =
            self.targets.drain(..).partition(|k| first(k));
        front.extend(back);
        self.targets = front;
    }

    pub fn device_count(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The devices of each wave, in order.
    pub fn waves(&self) -> Vec<Vec<DeviceKey>> {
        let mut left = self.targets.iter();
        wave_sizes(&self.rollout.waves, self.targets.len())
            .into_iter()
            .map(|n| left.by_ref().take(n).cloned().collect())
            .collect()
    }

    /// Preflight's skips that are left out (not sent anyway).
    pub fn left_out(&self) -> impl Iterator<Item = &Skipped> {
        self.skipped
            .iter()
            .filter(|s| s.held || (s.preflight && !self.include_skipped))
    }

    /// Team mode: leaves out the devices another plan holds, each named with its holder
    /// ("held by ARN on HOST (plan ID, OTA 5.0.21, since …)"), as preflight leaves out what
    /// is certain to fail.
    pub fn leave_out_held(
        &mut self,
        held: &std::collections::HashMap<DeviceKey, String>,
        label: impl Fn(&DeviceKey) -> String,
    ) {
        let taken: Vec<DeviceKey> = self
            .targets
            .iter()
            .filter(|k| held.contains_key(*k))
            .cloned()
            .collect();
        self.targets.retain(|k| !held.contains_key(k));
        for k in taken {
            self.scopes.remove(&k);
            self.skipped.push(Skipped {
                label: label(&k),
                reason: held[&k].clone(),
                key: k,
                preflight: false,
                held: true,
            });
        }
    }

    pub fn panorama(&self) -> impl Iterator<Item = &DeviceKey> {
        self.targets
            .iter()
            .filter(|k| k.service == Service::Panorama)
    }

    pub fn snow_device_count(&self) -> usize {
        self.targets
            .iter()
            .filter(|k| k.service == Service::Snow)
            .count()
    }

    /// CreateTask calls: Snow devices are batched 10 to a task within each wave and scope
    /// (a task lives in one account and region).
    pub fn snow_tasks(&self) -> usize {
        self.waves()
            .iter()
            .map(|w| {
                let mut per_scope: BTreeMap<Option<&String>, usize> = BTreeMap::new();
                for k in w.iter().filter(|k| k.service == Service::Snow) {
                    *per_scope.entry(self.scopes.get(k)).or_default() += 1;
                }
                per_scope
                    .values()
                    .map(|n| n.div_ceil(SNOW_TARGETS_PER_TASK))
                    .sum::<usize>()
            })
            .sum()
    }

    /// The calls this plan makes, as the confirmation dialog states them.
    pub fn calls(&self) -> String {
        let mut parts = Vec::new();
        let appliances = self.panorama().count();
        if appliances > 0 {
            parts.push(format!("{appliances} CreateJobForDevices (1 device each)"));
        }
        let tasks = self.snow_tasks();
        if tasks > 0 {
            parts.push(format!(
                "{tasks} CreateTask (at most {SNOW_TARGETS_PER_TASK} targets each)"
            ));
        }
        if parts.is_empty() {
            "no calls".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Every version an appliance of the plan offers (LatestSoftware or AlternateSoftwares), when
/// any appliance of it was described; `None` when nothing is known.
fn offered_versions(op: &Operation, devices: &[&Device]) -> Option<Vec<String>> {
    if !matches!(op, Operation::Ota { .. }) {
        return None;
    }
    let offered: Vec<String> = devices
        .iter()
        .filter(|d| d.service == Service::Panorama)
        .flat_map(|d| d.offered.iter().cloned())
        .collect();
    (!offered.is_empty()).then_some(offered)
}

/// Why a device would certainly fail, if it would.
fn certain_to_fail(
    op: &Operation,
    d: &Device,
    offered: &Option<Vec<String>>,
    preflight: &Preflight,
) -> Option<String> {
    if d.offline() {
        return Some("the appliance is offline".into());
    }
    if let Operation::Ota {
        image_version,
        allow_major,
    } = op
    {
        if let Some(current) = &d.current_software
            && major_of(image_version) > major_of(current)
            && !allow_major
        {
            return Some(format!(
                "{current} → {image_version} is a major version update and AllowMajorVersionUpdate is off"
            ));
        }
        if let Some(offered) = offered
            && !offered.contains(image_version)
        {
            let mut known = offered.clone();
            known.sort_by_key(|v| version_key(v));
            known.dedup();
            return Some(format!(
                "no appliance in the plan offers {image_version} (offered: {})",
                known.join(", ")
            ));
        }
    }
    if d.service == Service::Snow
        && let Some(at) = d.last_reached_out
    {
        let silent = preflight.now.saturating_sub(at);
        if silent > preflight.stale.as_secs() {
            return Some(format!(
                "not heard from for {} (more than {})",
                duration_text(Duration::from_secs(silent)),
                duration_text(preflight.stale)
            ));
        }
    }
    None
}

/// The most likely reason an operation failed or timed out on a device, from what is known of
/// it, when the service said none.
pub fn likely_failure(op: &Operation, d: &Device, timed_out: bool) -> Option<String> {
    let offered = (!d.offered.is_empty()).then(|| d.offered.clone());
    if let Some(why) = certain_to_fail(op, d, &offered, &Preflight::default()) {
        return Some(why);
    }
    (timed_out && d.service == Service::Snow)
        .then(|| "the device did not reach out to take the task before it timed out".to_string())
}

fn skip_reason(op: &Operation, d: &Device) -> Option<String> {
    if !op.applies_to(d.service) {
        let only = match op {
            Operation::Ota { .. } => "an OTA is for Panorama appliances only",
            Operation::Unlock => "unlock is for Snow devices only",
            Operation::Reboot => "reboot does not apply",
        };
        return Some(only.to_string());
    }
    match op {
        Operation::Unlock if d.status == "UNLOCKED" => Some("already unlocked".into()),
        Operation::Ota { image_version, .. }
            if d.current_software.as_deref() == Some(image_version.as_str()) =>
        {
            Some(format!("already on {image_version}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::rollout::parse_waves;

    fn pan(id: &str, sw: &str) -> Device {
        let mut d = Device::new(Service::Panorama, id);
        d.current_software = Some(sw.into());
        d
    }

    fn snow(id: &str, state: &str) -> Device {
        let mut d = Device::new(Service::Snow, id);
        d.status = state.into();
        d
    }

    #[test]
    fn panorama_is_one_device_per_call_and_snow_ten_per_task() {
        let devices: Vec<Device> = (0..3)
            .map(|i| pan(&format!("p{i}"), "5.0.10"))
            .chain((0..23).map(|i| snow(&format!("s{i}"), "LOCKED")))
            .collect();
        let refs: Vec<&Device> = devices.iter().collect();
        let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
        assert_eq!(plan.panorama().count(), 3);
        assert_eq!(plan.snow_tasks(), 3);
        assert_eq!(plan.device_count(), 26);
        assert_eq!(
            plan.calls(),
            "3 CreateJobForDevices (1 device each), 3 CreateTask (at most 10 targets each)"
        );
    }

    #[test]
    fn snow_is_batched_within_each_wave() {
        let devices: Vec<Device> = (0..23).map(|i| snow(&format!("s{i}"), "LOCKED")).collect();
        let refs: Vec<&Device> = devices.iter().collect();
        let mut plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
        plan.rollout.waves = parse_waves("1,10%,rest").unwrap();
        let sizes: Vec<usize> = plan.waves().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, 3, 19]);
        // 1 + 1 + 2 tasks: a task never spans two waves.
        assert_eq!(plan.snow_tasks(), 4);
    }

    #[test]
    fn canaries_go_first_and_the_rest_keep_their_order() {
        let devices: Vec<Device> = ["a", "b", "c", "d"]
            .iter()
            .map(|i| pan(i, "5.0.10"))
            .collect();
        let refs: Vec<&Device> = devices.iter().collect();
        let mut plan = Plan::new(Operation::Reboot, SnowOptions::default(), &refs);
        plan.canaries_first(|k| k.id == "c" || k.id == "d");
        let order: Vec<&str> = plan.targets.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(order, vec!["c", "d", "a", "b"]);
    }

    #[test]
    fn a_device_named_twice_is_one_target() {
        let (a, b) = (pan("p1", "5.0.10"), snow("s1", "LOCKED"));
        let plan = Plan::new(Operation::Reboot, SnowOptions::default(), &[&a, &b, &a, &b]);
        assert_eq!(plan.device_count(), 2);
        assert_eq!(
            plan.calls(),
            "1 CreateJobForDevices (1 device each), 1 CreateTask (at most 10 targets each)"
        );
    }

    #[test]
    fn devices_an_operation_does_not_fit_are_named_and_skipped() {
        let devices = [
            pan("p1", "4.3.93"),
            pan("p2", "5.0.21"),
            snow("s1", "LOCKED"),
            snow("s2", "UNLOCKED"),
        ];
        let refs: Vec<&Device> = devices.iter().collect();
        let ota = Operation::Ota {
            image_version: "5.0.21".into(),
            allow_major: true,
        };
        let plan = Plan::new(ota, SnowOptions::default(), &refs);
        assert_eq!(plan.targets, vec![DeviceKey::new(Service::Panorama, "p1")]);
        assert_eq!(plan.major_bumps, vec!["p1".to_string()]);
        let reasons: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.label.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("p2", "already on 5.0.21"),
                ("s1", "an OTA is for Panorama appliances only"),
                ("s2", "an OTA is for Panorama appliances only"),
            ]
        );

        let plan = Plan::new(Operation::Unlock, SnowOptions::default(), &refs);
        assert_eq!(plan.targets, vec![DeviceKey::new(Service::Snow, "s1")]);
        assert_eq!(plan.skipped.len(), 3);
        assert!(plan.skipped.iter().any(|s| s.reason == "already unlocked"));
    }

    #[test]
    fn preflight_skips_what_is_certain_to_fail_unless_told_to_send_it() {
        let mut offline = pan("off", "5.0.10");
        offline.status = "OFFLINE".into();
        let mut ok = pan("ok", "5.0.10");
        ok.offered = vec!["5.0.21".into()];
        let major = pan("major", "4.3.93");
        let mut silent = snow("silent", "LOCKED");
        silent.last_reached_out = Some(1_000);
        let mut fresh = snow("fresh", "LOCKED");
        fresh.last_reached_out = Some(10_000 - 60);
        let ota = |v: &str| Operation::Ota {
            image_version: v.into(),
            allow_major: false,
        };
        let check = Preflight {
            include_skipped: false,
            stale: Duration::from_secs(3600),
            now: 10_000,
        };
        let refs = [&offline, &ok, &major];
        let plan = Plan::with(ota("5.0.21"), SnowOptions::default(), &refs, check);
        assert_eq!(plan.targets, vec![ok.key()]);
        let why: Vec<&str> = plan.left_out().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            why,
            vec![
                "the appliance is offline",
                "4.3.93 → 5.0.21 is a major version update and AllowMajorVersionUpdate is off"
            ]
        );
        // A version no appliance offers: every appliance is skipped, naming what is offered.
        let plan = Plan::with(ota("5.0.99"), SnowOptions::default(), &[&ok], check);
        assert!(plan.targets.is_empty());
        assert_eq!(
            plan.skipped[0].reason,
            "no appliance in the plan offers 5.0.99 (offered: 5.0.21)"
        );
        // Snow: silent for 2h30m against a 1h limit.
        let plan = Plan::with(
            Operation::Reboot,
            SnowOptions::default(),
            &[&silent, &fresh],
            check,
        );
        assert_eq!(plan.targets, vec![fresh.key()]);
        assert_eq!(
            plan.skipped[0].reason,
            "not heard from for 2h30m (more than 1h)"
        );
        // Sent anyway, and still named.
        let send_all = Preflight {
            include_skipped: true,
            ..check
        };
        let plan = Plan::with(
            Operation::Reboot,
            SnowOptions::default(),
            &[&silent, &fresh],
            send_all,
        );
        assert_eq!(plan.targets.len(), 2);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.left_out().count(), 0);
    }
}
