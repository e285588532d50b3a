//! The domain both services map into: devices, operations and plans. No SDK types, no I/O.

pub mod filter;
pub mod plan;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;

pub use plan::{Plan, Preflight, SnowOptions};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Panorama,
    Snow,
}

impl Service {
    pub fn label(self) -> &'static str {
        match self {
            Self::Panorama => "Panorama",
            Self::Snow => "Snow",
        }
    }
}

/// Names one device across both services.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceKey {
    pub service: Service,
    pub id: String,
}

impl DeviceKey {
    pub fn new(service: Service, id: impl Into<String>) -> Self {
        Self {
            service,
            id: id.into(),
        }
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service.label(), self.id)
    }
}

/// One row of the devices table, whichever service it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub service: Service,
    pub id: String,
    pub name: Option<String>,
    /// Panorama: DeviceAggregatedStatus. Snow: the lock state.
    pub status: String,
    /// Panorama: the connection status. Snow: when the device last reached out.
    pub connection: Option<String>,
    pub current_software: Option<String>,
    /// Panorama: LatestSoftware, when it differs from the current one.
    pub available_software: Option<String>,
    /// The newest job's or execution's type and state, e.g. "OTA COMPLETED".
    pub latest: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Panorama: the image versions the appliance can take (LatestSoftware and
    /// AlternateSoftwares), from DescribeDevice.
    pub offered: Vec<String>,
    /// Snow: when the device last reached out (epoch seconds, the service's clock).
    pub last_reached_out: Option<u64>,
    /// The scope it was read from ("context/region"): where its calls go.
    pub scope: String,
    pub region: String,
    /// The device's ARN, where the read gave one (Snow listings, Panorama DescribeDevice).
    pub arn: Option<String>,
    /// The account: its ARN's, or its scope's once any ARN there named it.
    pub account: Option<String>,
}

impl Device {
    pub fn new(service: Service, id: impl Into<String>) -> Self {
        Self {
            service,
            id: id.into(),
            name: None,
            status: String::new(),
            connection: None,
            current_software: None,
            available_software: None,
            latest: None,
            tags: BTreeMap::new(),
            offered: Vec::new(),
            last_reached_out: None,
            scope: String::new(),
            region: String::new(),
            arn: None,
            account: None,
        }
    }

    /// The context part of the scope.
    pub fn context(&self) -> &str {
        self.scope.split('/').next().unwrap_or_default()
    }

    pub fn key(&self) -> DeviceKey {
        DeviceKey::new(self.service, self.id.clone())
    }

    /// What an operator calls the device: its name, a Name tag, or its id.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or_else(|| self.tags.get("Name").map(String::as_str))
            .unwrap_or(&self.id)
    }

    /// A Snow device that has not reached out for longer than the stale limit: the table
    /// says UNREACHABLE whatever its last lock state was, and `status:unreachable` finds it.
    pub fn unreachable(&self, now: u64) -> bool {
        self.last_reached_out
            .is_some_and(|at| now.saturating_sub(at) > plan::Preflight::DEFAULT_STALE.as_secs())
    }

    pub fn tags_text(&self) -> String {
        self.tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Merges what a newer read says, keeping what it does not know (a ListDevices row has
    /// no LatestSoftware; a DescribeDevice has it).
    pub fn merge(&mut self, newer: Device) {
        let keep = |old: &mut Option<String>, new: Option<String>| {
            if new.is_some() {
                *old = new;
            }
        };
        keep(&mut self.name, newer.name);
        if !newer.status.is_empty() {
            self.status = newer.status;
        }
        keep(&mut self.connection, newer.connection);
        keep(&mut self.current_software, newer.current_software);
        keep(&mut self.available_software, newer.available_software);
        keep(&mut self.latest, newer.latest);
        if !newer.tags.is_empty() {
            self.tags = newer.tags;
        }
        if !newer.offered.is_empty() {
            self.offered = newer.offered;
        }
        if newer.last_reached_out.is_some() {
            self.last_reached_out = newer.last_reached_out;
        }
        keep(&mut self.arn, newer.arn);
        keep(&mut self.account, newer.account);
        if !newer.scope.is_empty() {
            self.scope = newer.scope;
            self.region = newer.region;
        }
    }

    /// The appliance is known to be offline (its listing or its connection status says so).
    pub fn offline(&self) -> bool {
        self.service == Service::Panorama
            && (self.status == "OFFLINE" || self.connection.as_deref() == Some("OFFLINE"))
    }
}

/// What an operator asks devices to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    Ota {
        image_version: String,
        allow_major: bool,
    },
    Reboot,
    Unlock,
}

impl Operation {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Ota { .. } => "OTA",
            Self::Reboot => "reboot",
            Self::Unlock => "unlock",
        }
    }

    pub fn applies_to(&self, service: Service) -> bool {
        match self {
            Self::Ota { .. } => service == Service::Panorama,
            Self::Reboot => true,
            Self::Unlock => service == Service::Snow,
        }
    }
}

/// The account an ARN names (its fifth field).
pub fn account_of_arn(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// Orders dotted versions numerically (4.3.100 after 4.3.93).
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

pub fn major_of(v: &str) -> u64 {
    version_key(v).first().copied().unwrap_or(0)
}

/// The highest version among some, for prefilling an OTA form.
pub fn highest<'a>(versions: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    versions.max_by_key(|v| version_key(v))
}
