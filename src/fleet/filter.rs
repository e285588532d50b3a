//! The filter language, the same in `/`, `--filter`, `--canary` and the danger tags:
//! space-separated terms, all of which must match.
//!
//! - `key=value`: a tag, exactly (`env=prod` is not `env=production`);
//! - `field:value`: a field, exactly — `status`, `svc`, `version`, `region`, `lock`,
//!   `account`, `ctx`, `name`, `id`; `status:unreachable` is a Snow device silent for longer
//!   than the stale limit, as the table shows it;
//! - a value ending in `*` matches by prefix (`version:5.0*`);
//! - `!term` negates a term;
//! - any other word matches part of a name, id, tag, region, account or context.
//!
//! Case never matters. A word with a colon before an unknown field (an ARN) is a plain word.

use super::{Device, Service};

/// The danger filters when the config file names none.
pub const DEFAULT_DANGER: &str = "env=prod";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Status,
    Service,
    Version,
    Region,
    Lock,
    Account,
    Context,
    Name,
    Id,
}

impl Field {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "status" => Self::Status,
            "svc" | "service" => Self::Service,
            "version" | "ver" => Self::Version,
            "region" => Self::Region,
            "lock" => Self::Lock,
            "account" | "acct" => Self::Account,
            "ctx" | "context" => Self::Context,
            "name" => Self::Name,
            "id" => Self::Id,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Tag { key: String, value: Pattern },
    Field(Field, Pattern),
    Word(String),
}

/// An exact value, or a prefix (the text before a trailing `*`). Lowercase.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn new(text: &str) -> Self {
        match text.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_string()),
            None => Self::Exact(text.to_string()),
        }
    }

    /// Without allocating for ASCII values: the filter asks this of every row per key.
    fn matches(&self, value: &str) -> bool {
        if value.is_ascii() {
            return match self {
                Self::Exact(v) => value.eq_ignore_ascii_case(v),
                Self::Prefix(p) => value
                    .as_bytes()
                    .get(..p.len())
                    .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes())),
            };
        }
        let value = value.to_lowercase();
        match self {
            Self::Exact(v) => value == *v,
            Self::Prefix(p) => value.starts_with(p.as_str()),
        }
    }

    /// Whether every value this pattern matches, `wider` matches too.
    fn within(&self, wider: &Self) -> bool {
        match (self, wider) {
            (_, Self::Prefix(p)) => match self {
                Self::Exact(v) | Self::Prefix(v) => v.starts_with(p.as_str()),
            },
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Prefix(_), Self::Exact(_)) => false,
        }
    }
}

impl Kind {
    /// Whether every device this term matches, `wider` matches too.
    fn within(&self, wider: &Self) -> bool {
        match (self, wider) {
            (Self::Word(a), Self::Word(b)) => a.contains(b.as_str()),
            (Self::Field(f, a), Self::Field(g, b)) => f == g && a.within(b),
            (Self::Tag { key: k, value: a }, Self::Tag { key: l, value: b }) => {
                k == l && a.within(b)
            }
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    negate: bool,
    kind: Kind,
}

/// A parsed filter. The empty filter matches every device. Two filters are equal when they
/// ask the same, whenever they were parsed.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    terms: Vec<Term>,
    /// Epoch seconds, for `status:unreachable`: set when parsed, moved on by `at`.
    now: u64,
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.terms == other.terms
    }
}

impl Eq for Filter {}

impl Filter {
    /// Every text is a filter: what is not a tag or a known field is a word.
    pub fn parse(text: &str) -> Self {
        let terms = text
            .split_whitespace()
            .filter_map(|raw| {
                let lower = raw.to_lowercase();
                let (negate, body) = match lower.strip_prefix('!') {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, lower),
                };
                // A lone `!` or a field with nothing after it yet (being typed) asks nothing.
                if body.is_empty() {
                    return None;
                }
                let kind = term_kind(&body)?;
                Some(Term { negate, kind })
            })
            .collect();
        Self {
            terms,
            now: crate::fleet::now(),
        }
    }

    /// The same filter, judging "unreachable" as of `now` (epoch seconds).
    pub fn at(&mut self, now: u64) {
        self.now = now;
    }

    /// Whether this filter lets through only devices `wider` lets through: it keeps each of
    /// `wider`'s terms, or narrows it (a word typed further, a prefix made longer), and may
    /// add more. A negated term narrows only by staying the same.
    pub fn narrows(&self, wider: &Filter) -> bool {
        wider.terms.len() <= self.terms.len()
            && wider
                .terms
                .iter()
                .zip(&self.terms)
                .all(|(w, t)| t == w || (!t.negate && !w.negate && t.kind.within(&w.kind)))
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether any device of `service` could pass: false where a term names the other
    /// service (`svc:`, or `lock:`, which only Snow devices have), so a run need not list a
    /// service its filter rules out.
    pub fn admits(&self, service: Service) -> bool {
        let names: &[&str] = match service {
            Service::Panorama => &["panorama", "pan"],
            Service::Snow => &["snow", "sdm"],
        };
        self.terms.iter().all(|t| match &t.kind {
            Kind::Field(Field::Service, p) => names.iter().any(|n| p.matches(n)) != t.negate,
            Kind::Field(Field::Lock, _) => t.negate || service == Service::Snow,
            _ => true,
        })
    }

    pub fn matches(&self, d: &Device) -> bool {
        self.terms
            .iter()
            .all(|t| t.kind.matches(d, self.now) != t.negate)
    }

    /// `matches`, with words looked for in the device's [`haystack`]: one scan of one
    /// buffer instead of a field at a time through the device's own strings, each a pointer
    /// away. The table judges 100,000 rows this way at every key of a filter.
    pub fn matches_in(&self, d: &Device, hay: &[u8]) -> bool {
        self.terms.iter().all(|t| {
            let hit = match &t.kind {
                Kind::Word(w) if !w.contains('\0') => {
                    memchr::memmem::find(hay, w.as_bytes()).is_some()
                }
                kind => kind.matches(d, self.now),
            };
            hit != t.negate
        })
    }
}

/// What a word is looked for in, as one buffer: the device's label, id, region, account,
/// context and each tag as `k=v`, lowercase, each ended by NUL so no match spans two. A word
/// without '=' found in `k=v` lies in the key or the value, so `k=v` stands for all three
/// of the word's tag checks.
pub fn haystack(d: &Device, out: &mut Vec<u8>) {
    fn lower(text: &str, out: &mut Vec<u8>) {
        if text.is_ascii() {
            out.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
        } else {
            out.extend_from_slice(text.to_lowercase().as_bytes());
        }
    }
    for field in [
        d.label(),
        &d.id,
        &d.region,
        d.account.as_deref().unwrap_or_default(),
        d.context(),
    ] {
        lower(field, out);
        out.push(0);
    }
    for (k, v) in &d.tags {
        lower(k, out);
        out.push(b'=');
        lower(v, out);
        out.push(0);
    }
}

/// The devices dangerous to touch (production): filters, each with its text, any of which
/// marks a device. They are drawn in a warning style and counted before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Danger {
    rules: Vec<(String, Filter)>,
}

impl Default for Danger {
    fn default() -> Self {
        Self::new(&[DEFAULT_DANGER.to_string()])
    }
}

impl Danger {
    pub fn new(texts: &[String]) -> Self {
        let rules = texts
            .iter()
            .map(|t| (t.clone(), Filter::parse(t)))
            .filter(|(_, f)| !f.is_empty())
            .collect();
        Self { rules }
    }

    /// The first rule a device matches, by its text.
    pub fn of(&self, d: &Device) -> Option<&str> {
        self.rules
            .iter()
            .find(|(_, f)| f.matches(d))
            .map(|(t, _)| t.as_str())
    }

    /// "11 in env=prod" (or "3 in env=prod, 2 in tier=critical"), when any device is.
    pub fn summary<'a>(&self, devices: impl IntoIterator<Item = &'a Device>) -> Option<String> {
        let mut counts: Vec<(&str, usize)> =
            self.rules.iter().map(|(t, _)| (t.as_str(), 0)).collect();
        for d in devices {
            if let Some(rule) = self.of(d)
                && let Some(c) = counts.iter_mut().find(|(t, _)| *t == rule)
            {
                c.1 += 1;
            }
        }
        let parts: Vec<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{n} in {t}"))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

fn term_kind(body: &str) -> Option<Kind> {
    if let Some((key, value)) = body.split_once('=')
        && !key.is_empty()
    {
        return Some(Kind::Tag {
            key: key.to_string(),
            value: Pattern::new(value),
        });
    }
    if let Some((name, value)) = body.split_once(':')
        && let Some(field) = Field::parse(name)
    {
        return (!value.is_empty()).then(|| Kind::Field(field, Pattern::new(value)));
    }
    Some(Kind::Word(body.to_string()))
}

impl Kind {
    fn matches(&self, d: &Device, now: u64) -> bool {
        match self {
            Self::Tag { key, value } => {
                d.tags.iter().any(|(k, v)| same(k, key) && value.matches(v))
            }
            Self::Field(field, p) => field_matches(*field, p, d, now),
            Self::Word(w) => {
                [
                    d.label(),
                    d.id.as_str(),
                    d.region.as_str(),
                    d.account.as_deref().unwrap_or_default(),
                    d.context(),
                ]
                .iter()
                .any(|h| contains(h, w))
                    || d.tags.iter().any(|(k, v)| {
                        // Only a word holding '=' can match across it, so only that one
                        // needs "k=v" built.
                        contains(k, w)
                            || contains(v, w)
                            || (w.contains('=') && contains(&format!("{k}={v}"), w))
                    })
            }
        }
    }
}

/// Whether `text` is `lower` (lowercase), ignoring case.
fn same(text: &str, lower: &str) -> bool {
    if text.is_ascii() {
        text.eq_ignore_ascii_case(lower)
    } else {
        text.to_lowercase() == lower
    }
}

/// Whether `hay` contains `needle` (lowercase), ignoring case. For ASCII the needle's first
/// byte is found by memchr (either case), and only there is the rest compared: a filter is
/// judged on every row of a large fleet at each key.
fn contains(hay: &str, needle: &str) -> bool {
    let n = needle.as_bytes();
    let Some(&first) = n.first() else {
        return true;
    };
    if !hay.is_ascii() {
        return hay.to_lowercase().contains(needle);
    }
    let h = hay.as_bytes();
    if n.len() > h.len() {
        return false;
    }
    let starts = &h[..=h.len() - n.len()];
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), starts)
        .any(|i| h[i + 1..i + n.len()].eq_ignore_ascii_case(&n[1..]))
}

fn field_matches(field: Field, p: &Pattern, d: &Device, now: u64) -> bool {
    let one = |v: Option<&str>| v.is_some_and(|v| p.matches(v));
    match field {
        // As the table shows it: an unreachable device's status is UNREACHABLE, not its
        // last lock state.
        Field::Status if d.unreachable(now) => p.matches("UNREACHABLE"),
        Field::Status => p.matches(&d.status),
        Field::Service => match d.service {
            Service::Panorama => ["panorama", "pan"].iter().any(|s| p.matches(s)),
            Service::Snow => ["snow", "sdm"].iter().any(|s| p.matches(s)),
        },
        Field::Version => one(d.current_software.as_deref()),
        Field::Region => p.matches(&d.region),
        Field::Lock => d.service == Service::Snow && p.matches(&d.status),
        Field::Account => one(d.account.as_deref()),
        Field::Context => p.matches(d.context()),
        Field::Name => p.matches(d.label()),
        Field::Id => p.matches(&d.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn snow(id: &str, lock: &str, tags: &[(&str, &str)]) -> Device {
        let mut d = Device::new(Service::Snow, id);
        d.status = lock.into();
        d.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        d.region = "us-west-2".into();
        d.scope = "lab/us-west-2".into();
        d.current_software = Some("7.1.0".into());
        d
    }

    fn pan(name: &str, status: &str, version: &str, tags: &[(&str, &str)]) -> Device {
        let mut d = Device::new(Service::Panorama, format!("device-{name}"));
        d.name = Some(name.into());
        d.status = status.into();
        d.current_software = Some(version.into());
        d.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        d.region = "us-east-1".into();
        d.scope = "prod/us-east-1".into();
        d.account = Some("123456789012".into());
        d
    }

    fn hits(filter: &str, devices: &[Device]) -> Vec<String> {
        let f = Filter::parse(filter);
        devices
            .iter()
            .filter(|d| f.matches(d))
            .map(|d| d.label().to_string())
            .collect()
    }

    #[test]
    fn typing_on_narrows_and_editing_back_does_not() {
        let narrows = |a: &str, b: &str| Filter::parse(b).narrows(&Filter::parse(a));
        assert!(narrows("", "a"));
        assert!(narrows("aus", "aust"));
        assert!(narrows("env=p*", "env=prod"));
        assert!(narrows("version:5.0*", "version:5.0.2*"));
        assert!(narrows("site=austin", "site=austin env=prod"));
        assert!(!narrows("aust", "aus"), "a word made shorter widens");
        assert!(
            !narrows("!aus", "!aust"),
            "a negated word typed further widens"
        );
        assert!(!narrows("env=prod", "env=prod*"));
        assert!(
            !narrows("version:5", "version:5."),
            "exact values are not prefixes"
        );
    }

    #[test]
    fn unreachable_is_the_status_the_table_shows() {
        let now = 1_000_000;
        let stale = crate::fleet::STALE_AFTER.as_secs();
        let mut silent = snow("JID-silent", "LOCKED", &[]);
        silent.last_reached_out = Some(now - stale - 1);
        let mut heard = snow("JID-heard", "LOCKED", &[]);
        heard.last_reached_out = Some(now - stale);
        let fleet = [silent, heard];
        let at = |text: &str| {
            let mut f = Filter::parse(text);
            f.at(now);
            fleet
                .iter()
                .filter(|d| f.matches(d))
                .map(|d| d.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(at("status:unreachable"), ["JID-silent"]);
        assert_eq!(at("!status:unreachable"), ["JID-heard"]);
        // Its last lock state is not what the table says, so it is not what the filter finds.
        assert_eq!(at("status:locked"), ["JID-heard"]);
        // The lock field still reads the lock state.
        assert_eq!(at("lock:locked"), ["JID-silent", "JID-heard"]);
        // Judged as of the moment given: an hour earlier, both were heard from.
        let mut f = Filter::parse("status:unreachable");
        f.at(now - 3600);
        assert!(fleet.iter().all(|d| !f.matches(d)));
    }

    fn fleet() -> Vec<Device> {
        vec![
            pan(
                "aus-cam-1",
                "ONLINE",
                "5.0.21",
                &[("env", "prod"), ("site", "austin")],
            ),
            pan(
                "aus-cam-2",
                "UPDATE_NEEDED",
                "5.0.10",
                &[("env", "production"), ("site", "austin")],
            ),
            pan(
                "sea-cam-1",
                "ONLINE",
                "4.3.93",
                &[("env", "prod"), ("site", "seattle")],
            ),
            snow("smd-a", "LOCKED", &[("env", "prod"), ("site", "austin")]),
            snow("smd-b", "UNLOCKED", &[("env", "dev")]),
        ]
    }

    #[test]
    fn terms_are_anded_and_tags_are_exact() {
        let f = fleet();
        assert_eq!(
            hits("site=austin env=prod", &f),
            ["aus-cam-1", "smd-a"],
            "both tags, exactly: env=production is not env=prod"
        );
        assert_eq!(hits("ENV=Prod SITE=seattle", &f), ["sea-cam-1"]);
        assert_eq!(hits("env=prod*", &f).len(), 4, "a prefix takes production");
    }

    #[test]
    fn a_filter_admits_a_service_unless_a_term_rules_it_out() {
        let admits = |text: &str| {
            let f = Filter::parse(text);
            (f.admits(Service::Panorama), f.admits(Service::Snow))
        };
        assert_eq!(admits("svc:snow"), (false, true));
        assert_eq!(admits("site=austin svc:pan"), (true, false));
        assert_eq!(admits("!svc:snow"), (true, false));
        assert_eq!(admits("svc:s*"), (false, true));
        assert_eq!(admits("lock:locked"), (false, true));
        assert_eq!(admits("!lock:locked"), (true, true));
        assert_eq!(admits("site=austin"), (true, true));
        assert_eq!(admits("svc:pan svc:snow"), (false, false));
        // Whatever a filter admits, a device it lets through is of a service it admits.
        let f = fleet();
        for text in ["svc:snow", "!svc:pan", "lock:unlocked", "svc:pan env=prod"] {
            let filter = Filter::parse(text);
            for d in f.iter().filter(|d| filter.matches(d)) {
                assert!(filter.admits(d.service), "{text} lets {} through", d.id);
            }
        }
    }

    #[test]
    fn fields_are_exact_so_locked_is_not_unlocked() {
        let f = fleet();
        assert_eq!(hits("lock:locked", &f), ["smd-a"]);
        assert_eq!(hits("lock:unlocked", &f), ["smd-b"]);
        assert_eq!(hits("status:online", &f), ["aus-cam-1", "sea-cam-1"]);
        assert_eq!(hits("svc:snow", &f), ["smd-a", "smd-b"]);
        assert_eq!(hits("svc:pan version:5.0*", &f), ["aus-cam-1", "aus-cam-2"]);
        assert_eq!(hits("version:4.3.93", &f), ["sea-cam-1"]);
        assert_eq!(hits("region:us-west-2", &f), ["smd-a", "smd-b"]);
        assert_eq!(hits("account:123456789012 ctx:prod", &f).len(), 3);
        // Versions are searchable as fields, not as words.
        assert!(hits("5.0.21", &f).is_empty());
    }

    #[test]
    fn negation_and_words() {
        let f = fleet();
        assert_eq!(hits("!env=prod", &f), ["aus-cam-2", "smd-b"]);
        assert_eq!(hits("aus !svc:snow", &f), ["aus-cam-1", "aus-cam-2"]);
        assert_eq!(hits("SEATTLE", &f), ["sea-cam-1"], "words match tags");
        assert_eq!(hits("smd-", &f), ["smd-a", "smd-b"], "and ids");
        assert_eq!(hits("east", &f).len(), 3, "and regions");
    }

    #[test]
    fn unfinished_terms_and_unknown_fields() {
        let f = fleet();
        // Being typed: `status:` and `!` ask nothing yet.
        assert_eq!(hits("status:", &f).len(), 5);
        assert_eq!(hits("!", &f).len(), 5);
        assert_eq!(hits("", &f).len(), 5);
        // An ARN is a word, not a field.
        assert_eq!(
            Filter::parse("arn:aws").terms[0].kind,
            Kind::Word("arn:aws".into())
        );
    }

    #[test]
    fn danger_counts_each_rule() {
        let f = fleet();
        let danger = Danger::default();
        assert_eq!(danger.summary(&f).as_deref(), Some("3 in env=prod"));
        assert_eq!(danger.of(&f[1]), None, "env=production is not env=prod");
        let two = Danger::new(&["env=prod svc:snow".into(), "site=austin".into(), " ".into()]);
        assert_eq!(
            two.summary(&f).as_deref(),
            Some("1 in env=prod svc:snow, 2 in site=austin")
        );
        assert_eq!(Danger::new(&[]).summary(&f), None);
    }

    proptest! {
        #[test]
        fn a_filter_and_its_negation_split_the_fleet(text in "[a-z!:=*. 0-9-]{0,24}") {
            let f = fleet();
            // One term: a device matches it or its negation, never both.
            for word in text.split_whitespace().filter(|w| !w.starts_with('!')) {
                let yes = hits(word, &f);
                let no = hits(&format!("!{word}"), &f);
                if Filter::parse(word).is_empty() {
                    continue;
                }
                prop_assert_eq!(yes.len() + no.len(), f.len());
                prop_assert!(yes.iter().all(|y| !no.contains(y)));
            }
        }

        #[test]
        fn a_narrower_filter_never_matches_what_the_wider_one_does_not(
            wider in "[a-z0-9=:!*. -]{0,12}",
            more in "[a-z0-9=:!*. -]{0,6}",
        ) {
            let f = fleet();
            // Typing on: the text extended, as the / prompt sees it key by key.
            let text = format!("{wider}{more}");
            let (w, n) = (Filter::parse(&wider), Filter::parse(&text));
            if n.narrows(&w) {
                let wide = hits(&wider, &f);
                prop_assert!(hits(&text, &f).iter().all(|d| wide.contains(d)), "{text:?} within {wider:?}");
            }
        }

        #[test]
        fn a_filter_judges_the_haystack_as_it_judges_the_device(text in "[a-zA-Z!:=*. 0-9é-]{0,24}") {
            let f = Filter::parse(&text);
            for d in fleet() {
                let mut hay = Vec::new();
                haystack(&d, &mut hay);
                prop_assert_eq!(f.matches_in(&d, &hay), f.matches(&d), "{:?} on {}", text, d.id);
            }
        }

        #[test]
        fn contains_is_a_case_blind_substring_search(
            hay in "[a-zA-Z0-9 =é-]{0,30}",
            needle in "[a-z0-9=é-]{0,5}",
        ) {
            prop_assert_eq!(contains(&hay, &needle), hay.to_lowercase().contains(&needle));
        }

        #[test]
        fn more_terms_never_match_more(a in "[a-z=:!]{1,8}", b in "[a-z=:!]{1,8}") {
            let f = fleet();
            let one = hits(&a, &f);
            let text = format!("{a} {b}");
            let both = hits(&text, &f);
            prop_assert!(both.iter().all(|d| one.contains(d)));
            let terms = Filter::parse(&text).terms.len();
            prop_assert!(terms <= 2);
        }
    }
}
