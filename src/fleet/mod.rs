//! The domain both services map into: devices, operations and plans. No SDK types, no I/O.

pub mod filter;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use compact_str::CompactString;

/// Snow Device Management takes at most this many targets per CreateTask.
pub const SNOW_TARGETS_PER_TASK: usize = 10;

/// A Snow device silent for longer than this is unreachable: the table says so, and
/// preflight leaves it out by default.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The wall clock in epoch seconds, as the services' timestamps count.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A Panorama application instance on an appliance, as ListApplicationInstances tells it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppInstance {
    pub id: String,
    pub name: String,
    /// HealthStatus: RUNNING, ERROR or NOT_AVAILABLE.
    pub health: String,
    /// Status: DEPLOYMENT_SUCCEEDED and the other deployment states.
    pub status: String,
    /// StatusDescription, when the service gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AppInstance {
    /// Running as deployed: what an application that came back after an operation shows.
    pub fn is_running(&self) -> bool {
        self.health == "RUNNING" && self.status == "DEPLOYMENT_SUCCEEDED"
    }

    /// "people-counter ERROR (the application failed to start)".
    pub fn state_text(&self) -> String {
        let mut text = format!("{} {}", self.name, self.health);
        if self.health == "RUNNING" && self.status != "DEPLOYMENT_SUCCEEDED" {
            text = format!("{} {}", self.name, self.status);
        }
        if let Some(d) = self.detail.as_deref().filter(|d| !d.is_empty())
            && !self.is_running()
        {
            text.push_str(&format!(" ({d})"));
        }
        text
    }
}

/// One CloudWatch alarm as DescribeAlarms told it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlarmReading {
    pub name: String,
    /// OK, ALARM or INSUFFICIENT_DATA.
    pub state: String,
    /// StateReason.
    #[serde(default)]
    pub reason: String,
    /// StateUpdatedTimestamp, epoch seconds.
    #[serde(default)]
    pub since: u64,
}

impl AlarmReading {
    /// "cv-errors is ALARM since 2026-12-06T20:01:05Z: Threshold Crossed: …".
    pub fn text(&self) -> String {
        let mut t = format!("{} is {} since {}", self.name, self.state, utc(self.since));
        if !self.reason.is_empty() {
            t.push_str(&format!(": {}", self.reason));
        }
        t
    }
}

pub fn utc(secs: u64) -> String {
    jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX))
        .map_or_else(|_| secs.to_string(), |t| t.strftime("%FT%TZ").to_string())
}

/// What a Snow task carries besides its command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnowOptions {
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

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
    pub id: CompactString,
}

impl DeviceKey {
    pub fn new(service: Service, id: impl Into<CompactString>) -> Self {
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

/// A device's tags, sorted by key, packed in one string: `key US value RS key US value`,
/// with the ASCII unit and record separators, which no AWS tag may hold. Two tags such as
/// `site=bos env=prod` fit inside the string itself with nothing on the heap; a vector of
/// pairs took about 110 bytes a device (11 MB at 100,000 devices).
/// The separators sort below every character a tag may hold, so the packed strings order as
/// the pairs do, pair by pair (key, then value): the order the Tags column sorts by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tags(CompactString);

const UNIT: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// A separator in a tag (which AWS refuses, but a fleet file may hold) would split it: it
/// reads as a space.
fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([UNIT, RECORD]) {
        text.replace([UNIT, RECORD], " ").into()
    } else {
        text.into()
    }
}

impl Tags {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sets a tag; what it held before, if anything.
    pub fn insert(
        &mut self,
        key: impl Into<CompactString>,
        value: impl Into<CompactString>,
    ) -> Option<CompactString> {
        let (key, value) = (key.into(), value.into());
        let before = self.get(&clean(&key)).map(CompactString::from);
        let mut pairs: Vec<(CompactString, CompactString)> =
            self.iter().map(|(k, v)| (k.into(), v.into())).collect();
        pairs.push((key, value));
        *self = pairs.into_iter().collect();
        before
    }

    pub fn iter(&self) -> TagIter<'_> {
        TagIter(if self.0.is_empty() {
            None
        } else {
            Some(self.0.split(RECORD))
        })
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A device's tags, pair by pair, in key order.
pub struct TagIter<'a>(Option<std::str::Split<'a, char>>);

impl<'a> Iterator for TagIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.0.as_mut()?.next()?;
        Some(pair.split_once(UNIT).unwrap_or((pair, "")))
    }
}

/// A key given twice keeps its last value, as a map's `collect` would.
impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for Tags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut pairs: Vec<(CompactString, CompactString)> = iter
            .into_iter()
            .map(|(k, v)| {
                let (k, v): (CompactString, CompactString) = (k.into(), v.into());
                (clean(&k).into(), clean(&v).into())
            })
            .collect();
        // Stable: of equal keys the last given ends last, and is the one kept.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(CompactString, CompactString)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match kept.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => kept.push(pair),
            }
        }
        let mut packed = CompactString::default();
        for (i, (k, v)) in kept.iter().enumerate() {
            if i > 0 {
                packed.push(RECORD);
            }
            packed.push_str(k);
            packed.push(UNIT);
            packed.push_str(v);
        }
        Self(packed)
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>, const N: usize> From<[(K, V); N]> for Tags {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a Tags {
    type Item = (&'a str, &'a str);
    type IntoIter = TagIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One row of the devices table, whichever service it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub service: Service,
    pub id: CompactString,
    pub name: Option<CompactString>,
    /// Panorama: DeviceAggregatedStatus. Snow: the lock state.
    pub status: CompactString,
    /// Panorama: the connection status. Snow: when the device last reached out.
    pub connection: Option<CompactString>,
    pub current_software: Option<CompactString>,
    /// Panorama: LatestSoftware, when it differs from the current one.
    pub available_software: Option<CompactString>,
    /// The newest job's or execution's type and state, e.g. "OTA COMPLETED".
    pub latest: Option<CompactString>,
    pub tags: Tags,
    /// Panorama: the image versions the appliance can take (LatestSoftware and
    /// AlternateSoftwares), from DescribeDevice.
    pub offered: Vec<String>,
    /// Snow: when the device last reached out (epoch seconds, the service's clock).
    pub last_reached_out: Option<u64>,
    /// The scope it was read from ("context/region"): where its calls go.
    pub scope: CompactString,
    pub region: CompactString,
    /// The account: its ARN's, or its scope's once any ARN there named it.
    pub account: Option<CompactString>,
}

impl Device {
    pub fn new(service: Service, id: impl Into<CompactString>) -> Self {
        Self {
            service,
            id: id.into(),
            name: None,
            status: CompactString::default(),
            connection: None,
            current_software: None,
            available_software: None,
            latest: None,
            tags: Tags::default(),
            offered: Vec::new(),
            last_reached_out: None,
            scope: CompactString::default(),
            region: CompactString::default(),
            account: None,
        }
    }

    /// The context part of the scope.
    pub fn context(&self) -> &str {
        self.scope.split('/').next().unwrap_or_default()
    }

    pub fn key(&self) -> DeviceKey {
        DeviceKey {
            service: self.service,
            id: self.id.clone(),
        }
    }

    /// What an operator calls the device: its name, a Name tag, or its id.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or_else(|| self.tags.get("Name"))
            .unwrap_or(&self.id)
    }

    /// A Snow device that has not reached out for longer than the stale limit: the table
    /// says UNREACHABLE whatever its last lock state was, and `status:unreachable` finds it.
    pub fn unreachable(&self, now: u64) -> bool {
        self.last_reached_out
            .is_some_and(|at| now.saturating_sub(at) > STALE_AFTER.as_secs())
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
        let keep = |old: &mut Option<CompactString>, new: Option<CompactString>| {
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
        assert_eq!(t.get("site"), Some("b"));
        assert_eq!(t.insert("env", "dev").as_deref(), Some("prod"));
        assert_eq!(t.insert("aisle", "3"), None);
        assert_eq!(t.get("nope"), None);
        let keys: Vec<&str> = t.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["aisle", "env", "site"]);
        let mut d = Device::new(Service::Snow, "smd-1");
        d.tags = t;
        assert_eq!(d.tags_text(), "aisle=3 env=dev site=b");
    }

    #[test]
    fn packed_tags_order_as_their_pairs_do_and_hold_no_separator() {
        let sets: Vec<Vec<(String, String)>> = vec![
            vec![],
            vec![pair("a", "")],
            vec![pair("a", "b")],
            vec![pair("a", "b"), pair("c", "d")],
            vec![pair("a", "bc")],
            vec![pair("ab", "")],
            vec![pair("a b", "z")],
            vec![pair("env", "prod"), pair("site", "bos")],
            vec![pair("env", "prod"), pair("site", "bos-2")],
            vec![pair("env", "prod-eu")],
        ];
        for x in &sets {
            for y in &sets {
                let (tx, ty): (Tags, Tags) =
                    (x.iter().cloned().collect(), y.iter().cloned().collect());
                assert_eq!(tx.cmp(&ty), x.cmp(y), "{x:?} against {y:?}");
                let back: Vec<(String, String)> = tx.iter().map(|(k, v)| pair(k, v)).collect();
                assert_eq!(&back, x);
            }
        }
        let t: Tags = [pair("a\u{1f}b", "c\u{1e}d")].into_iter().collect();
        assert_eq!(t.iter().collect::<Vec<_>>(), [("a b", "c d")]);
        assert!(std::mem::size_of::<Tags>() <= 24);
    }
}
