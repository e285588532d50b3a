//! What the devices table sorts by: the columns in the order `s` cycles through them, and
//! each row's key, borrowed from it and ordered as the operator reads it (versions by
//! number, tags pair by pair).

use crate::fleet::{Device, Service, Tags, version_key};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    Service,
    Name,
    Region,
    Account,
    Status,
    Current,
    Available,
    Latest,
    Tags,
}

impl SortColumn {
    pub const ALL: [SortColumn; 9] = [
        Self::Service,
        Self::Name,
        Self::Region,
        Self::Account,
        Self::Status,
        Self::Current,
        Self::Available,
        Self::Latest,
        Self::Tags,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Service => "Service",
            Self::Name => "Name",
            Self::Region => "Region",
            Self::Account => "Account",
            Self::Status => "Status",
            Self::Current => "Current",
            Self::Available => "Available",
            Self::Latest => "Latest job/task",
            Self::Tags => "Tags",
        }
    }

    pub(super) fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// What a row sorts by, borrowed from it, so a sort of 100,000 rows allocates nothing per
/// row: it hashes each row's key once, and compares only the few distinct ones.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Key<'a> {
    /// Unsorted: the service, then the scope's place in the order named.
    Arrival(Service, usize),
    Service(Service),
    Text(&'a str),
    Maybe(Option<&'a str>),
    Version(Version<'a>),
    Tags(&'a Tags),
}

/// A version as read, ordered numerically (4.3.100 after 4.3.93), then as text so that the
/// order agrees with equality. The numbers are worked out per comparison, not per row.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Version<'a>(Option<&'a str>);

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let numbers = |v: &Self| v.0.map(version_key).unwrap_or_default();
        numbers(self)
            .cmp(&numbers(other))
            .then(self.0.cmp(&other.0))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

pub(super) fn sort_key(d: &Device, column: Option<SortColumn>, rank: usize) -> (Key<'_>, &str) {
    let primary = match column {
        None => return (Key::Arrival(d.service, rank), ""),
        Some(SortColumn::Service) => Key::Service(d.service),
        Some(SortColumn::Name) => Key::Text(d.label()),
        Some(SortColumn::Region) => Key::Text(&d.region),
        Some(SortColumn::Account) => Key::Maybe(d.account.as_deref()),
        Some(SortColumn::Status) => Key::Text(&d.status),
        Some(SortColumn::Current) => Key::Version(Version(d.current_software.as_deref())),
        Some(SortColumn::Available) => Key::Version(Version(d.available_software.as_deref())),
        Some(SortColumn::Latest) => Key::Maybe(d.latest.as_deref()),
        Some(SortColumn::Tags) => Key::Tags(&d.tags),
    };
    (primary, d.label())
}
