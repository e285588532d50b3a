//! The domain both services map into: devices, operations and plans. No SDK types, no I/O.

pub mod filter;
pub mod plan;
pub mod validate;

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

/// A device's tags, sorted by key. A sorted vector, not a `BTreeMap`: a map of even one tag
/// allocates a whole node (about 540 bytes for `String` pairs), which at 100,000 devices is
/// half the UI's memory; this holds exactly what the device has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Sets a tag; what it held before, if anything.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }
}

/// A key given twice keeps its last value, as a map's `collect` would.
impl FromIterator<(String, String)> for Tags {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut pairs: Vec<(String, String)> = iter.into_iter().collect();
        // Stable: of equal keys the last given ends last, and is the one kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => kept.push(pair),
            }
        }
        Self(kept)
    }
}

impl<const N: usize> From<[(String, String); N]> for Tags {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
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
    pub tags: Tags,
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
            tags: Tags::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn tags_keep_key_order_and_the_last_value_of_a_key() {
        let mut t: Tags = [pair("site", "a"), pair("env", "prod"), pair("site", "b")]
            .into_iter()
            .collect();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("site").map(String::as_str), Some("b"));
        assert_eq!(
            t.insert("env".into(), "dev".into()).as_deref(),
            Some("prod")
        );
        assert_eq!(t.insert("aisle".into(), "3".into()), None);
        assert_eq!(t.get("nope"), None);
        let keys: Vec<&str> = t.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["aisle", "env", "site"]);
        let mut d = Device::new(Service::Snow, "smd-1");
        d.tags = t;
        assert_eq!(d.tags_text(), "aisle=3 env=dev site=b");
    }
}
