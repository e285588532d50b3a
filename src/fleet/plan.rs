//! Turning marked devices and an operation into the calls that carry it out: Panorama takes
//! one device per CreateJobForDevices, Snow up to 10 targets per CreateTask.

use std::collections::BTreeMap;

use super::{Device, DeviceKey, Operation, Service, major_of};

pub const SNOW_TARGETS_PER_TASK: usize = 10;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnowOptions {
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A device the operation does not apply to, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub key: DeviceKey,
    pub label: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub operation: Operation,
    pub snow: SnowOptions,
    /// One CreateJobForDevices each.
    pub panorama: Vec<DeviceKey>,
    /// One CreateTask each.
    pub snow_batches: Vec<Vec<DeviceKey>>,
    pub skipped: Vec<Skipped>,
    /// Labels of appliances the OTA would move to a new major version.
    pub major_bumps: Vec<String>,
}

impl Plan {
    pub fn new(operation: Operation, snow: SnowOptions, devices: &[&Device]) -> Self {
        let mut panorama = Vec::new();
        let mut snow_targets = Vec::new();
        let mut skipped = Vec::new();
        let mut major_bumps = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for d in devices {
            // A device named twice (by id and by name, say) is one target.
            if !seen.insert(d.key()) {
                continue;
            }
            if let Some(reason) = skip_reason(&operation, d) {
                skipped.push(Skipped {
                    key: d.key(),
                    label: d.label().to_string(),
                    reason,
                });
                continue;
            }
            if let (Operation::Ota { image_version, .. }, Some(current)) =
                (&operation, &d.current_software)
                && major_of(image_version) > major_of(current)
            {
                major_bumps.push(d.label().to_string());
            }
            match d.service {
                Service::Panorama => panorama.push(d.key()),
                Service::Snow => snow_targets.push(d.key()),
            }
        }
        let snow_batches = snow_targets
            .chunks(SNOW_TARGETS_PER_TASK)
            .map(<[DeviceKey]>::to_vec)
            .collect();
        Self {
            operation,
            snow,
            panorama,
            snow_batches,
            skipped,
            major_bumps,
        }
    }

    pub fn snow_device_count(&self) -> usize {
        self.snow_batches.iter().map(Vec::len).sum()
    }

    pub fn device_count(&self) -> usize {
        self.panorama.len() + self.snow_device_count()
    }

    pub fn is_empty(&self) -> bool {
        self.device_count() == 0
    }

    /// The calls this plan makes, as the confirmation dialog states them.
    pub fn calls(&self) -> String {
        let mut parts = Vec::new();
        if !self.panorama.is_empty() {
            let n = self.panorama.len();
            parts.push(format!("{n} CreateJobForDevices (1 device each)"));
        }
        if !self.snow_batches.is_empty() {
            let n = self.snow_batches.len();
            parts.push(format!(
                "{n} CreateTask (at most {SNOW_TARGETS_PER_TASK} targets each)"
            ));
        }
        if parts.is_empty() {
            "no calls".into()
        } else {
            parts.join(", ")
        }
    }

    /// All devices the plan sends to, Panorama first, in the order they are sent.
    pub fn targets(&self) -> impl Iterator<Item = &DeviceKey> {
        self.panorama
            .iter()
            .chain(self.snow_batches.iter().flatten())
    }
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
        assert_eq!(plan.panorama.len(), 3);
        let sizes: Vec<usize> = plan.snow_batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
        assert_eq!(plan.device_count(), 26);
        assert_eq!(
            plan.calls(),
            "3 CreateJobForDevices (1 device each), 3 CreateTask (at most 10 targets each)"
        );
        assert_eq!(plan.targets().count(), 26);
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
            allow_major: false,
        };
        let plan = Plan::new(ota, SnowOptions::default(), &refs);
        assert_eq!(plan.panorama, vec![DeviceKey::new(Service::Panorama, "p1")]);
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
        assert_eq!(
            plan.snow_batches,
            vec![vec![DeviceKey::new(Service::Snow, "s1")]]
        );
        assert_eq!(plan.skipped.len(), 3);
        assert!(plan.skipped.iter().any(|s| s.reason == "already unlocked"));
    }
}
