//! What the simulator holds: the simulated clock, the seeded randomness, the ledger of
//! accepted mutating calls, and the small pieces both services' handlers share
//! (timelines, pagination tokens, ids).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::wire::{ApiError, ApiResult, Service};

/// The last second a timestamp can name: 9999-12-31T23:59:59Z.
pub const MAX_EPOCH: f64 = 253_402_300_799.0;
/// The fastest simulated time may run: a year in about 30 seconds.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// A speed for [`Clock::new`]: finite, above 0, at most [`MAX_SPEED`].
pub fn check_speed(speed: f64) -> Result<(), String> {
    if speed.is_finite() && speed > 0.0 && speed <= MAX_SPEED {
        Ok(())
    } else {
        Err(format!(
            "a speed is a number above 0 and at most {MAX_SPEED} (times real time), not {speed}"
        ))
    }
}

/// Simulated time in epoch seconds: it starts at the wall clock and runs `speed` times faster.
#[derive(Debug, Clone)]
pub struct Clock {
    started: Instant,
    epoch_at_start: f64,
    speed: f64,
    /// Simulated seconds skipped by `advance`, for tests that step time instead of waiting.
    skipped: f64,
}

impl Clock {
    pub fn new(speed: f64) -> Self {
        let epoch_at_start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            started: Instant::now(),
            epoch_at_start,
            speed,
            skipped: 0.0,
        }
    }

    pub fn now(&self) -> f64 {
        self.epoch_at_start + self.started.elapsed().as_secs_f64() * self.speed + self.skipped
    }

    /// Skips `seconds` of simulated time at once. Refused unless finite and positive, and
    /// unless the clock stays within what a timestamp can say (year 9999).
    pub fn advance(&mut self, seconds: f64) -> Result<(), String> {
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(format!(
                "the clock moves forward by a positive, finite number of seconds, not {seconds}"
            ));
        }
        if self.now() + seconds > MAX_EPOCH {
            return Err(format!(
                "{seconds} seconds would take the clock past the year 9999"
            ));
        }
        self.skipped += seconds;
        Ok(())
    }

    pub fn start(&self) -> f64 {
        self.epoch_at_start
    }
}

/// A state that changes on a schedule: each step is (simulated start time, state). The last
/// step is the final state.
#[derive(Debug, Clone)]
pub struct Timeline {
    steps: Vec<(f64, &'static str)>,
}

impl Timeline {
    /// Starts at `start` in `first`, then goes through `(state, seconds spent before it)`.
    pub fn build(start: f64, first: &'static str, rest: &[(&'static str, f64)]) -> Self {
        let mut steps = vec![(start, first)];
        let mut at = start;
        for &(state, after) in rest {
            at += after;
            steps.push((at, state));
        }
        Self { steps }
    }

    pub fn state_at(&self, t: f64) -> &'static str {
        self.steps
            .iter()
            .rev()
            .find(|(start, _)| *start <= t)
            .map_or(self.steps[0].1, |(_, s)| s)
    }

    pub fn start(&self) -> f64 {
        self.steps[0].0
    }

    pub fn end(&self) -> f64 {
        self.steps[self.steps.len() - 1].0
    }

    pub fn final_state(&self) -> &'static str {
        self.steps[self.steps.len() - 1].1
    }

    pub fn ended_at(&self, t: f64) -> bool {
        t >= self.end()
    }

    /// Ends the timeline in `state` at `t`, dropping whatever was scheduled after it.
    pub fn cut(&mut self, t: f64, state: &'static str) {
        self.steps.retain(|(start, _)| *start <= t);
        self.steps.push((t, state));
    }

    /// When the timeline entered `state`, if it has by `t`.
    pub fn entered(&self, state: &str, t: f64) -> Option<f64> {
        self.steps
            .iter()
            .find(|(start, s)| *s == state && *start <= t)
            .map(|(start, _)| *start)
    }

    /// From when the timeline first entered one of `states` until it left them all, or
    /// `None` if it never enters them. The end is infinite if it stays in them to the last.
    pub fn window(&self, states: &[&str]) -> Option<(f64, f64)> {
        let first = self.steps.iter().position(|(_, s)| states.contains(s))?;
        let end = self.steps[first..]
            .iter()
            .find(|(_, s)| !states.contains(s))
            .map_or(f64::INFINITY, |(t, _)| *t);
        Some((self.steps[first].0, end))
    }

    /// The last time the state changed at or before `t`.
    pub fn changed_at(&self, t: f64) -> f64 {
        self.steps
            .iter()
            .rev()
            .find(|(start, _)| *start <= t)
            .map_or(self.start(), |(start, _)| *start)
    }
}

/// Spreads a nominal duration by ±20%, so a fleet's jobs do not finish in lock step.
pub fn jitter(rng: &mut ChaCha8Rng, seconds: f64) -> f64 {
    seconds * rng.random_range(0.8..1.2)
}

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

pub fn random_id(rng: &mut ChaCha8Rng, prefix: &str, len: usize) -> String {
    let tail: String = (0..len)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// One accepted mutating call's effect on one device, for tests that must prove
/// exactly-once dispatch. Served at `GET /_fleetdeck/ledger`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LedgerEntry {
    pub seq: u64,
    /// The id of the account whose key signed the call.
    pub account: String,
    pub region: String,
    pub service: Service,
    pub operation: &'static str,
    pub device_id: String,
    /// The job id (Panorama) or task id (Snow) the call created or acted on.
    pub resource_id: String,
    /// OTA or REBOOT (Panorama), reboot, unlock or cancel (Snow).
    pub action: String,
    pub client_token: Option<String>,
    /// Simulated time of the call, epoch seconds.
    pub at: f64,
}

#[derive(Debug, Default)]
pub struct Ledger {
    entries: Vec<LedgerEntry>,
}

impl Ledger {
    pub fn record(&mut self, mut entry: LedgerEntry) {
        entry.seq = self.entries.len() as u64 + 1;
        self.entries.push(entry);
    }

    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }
}

/// What a mutating handler needs beside the fleet.
pub struct Ctx<'a> {
    pub now: f64,
    /// The account id of the signer.
    pub account: &'a str,
    pub region: &'a str,
    pub rng: &'a mut ChaCha8Rng,
    pub ledger: &'a mut Ledger,
    /// Whether a Panorama appliance with an unfinished job refuses another (409).
    pub busy_conflicts: bool,
}

/// Offset pagination with opaque tokens. A token carries a fingerprint of the query it
/// came from, so one replayed against another query is refused rather than misread.
pub struct Page {
    pub start: usize,
    pub size: usize,
    fingerprint: u64,
}

impl Page {
    pub fn new(query: impl Hash, token: Option<&str>, size: usize) -> ApiResult<Self> {
        let mut h = DefaultHasher::new();
        query.hash(&mut h);
        let fingerprint = h.finish();
        let start = match token {
            None => 0,
            Some(t) => decode_token(t, fingerprint)
                .ok_or_else(|| ApiError::validation("Invalid pagination token"))?,
        };
        Ok(Self {
            start,
            size,
            fingerprint,
        })
    }

    /// This page's items and the token for the next page, if there is one. A token that
    /// points past the items was never issued for them: refused as a forged one.
    pub fn cut<T>(&self, items: Vec<T>) -> ApiResult<(Vec<T>, Option<String>)> {
        let total = items.len();
        if self.start > total {
            return Err(ApiError::validation("Invalid pagination token"));
        }
        let end = self.start.saturating_add(self.size).min(total);
        let next = (end < total).then(|| hex::encode(format!("{}:{:x}", end, self.fingerprint)));
        let page = items
            .into_iter()
            .skip(self.start)
            .take(end.saturating_sub(self.start))
            .collect();
        Ok((page, next))
    }
}

fn decode_token(token: &str, fingerprint: u64) -> Option<usize> {
    let raw = String::from_utf8(hex::decode(token).ok()?).ok()?;
    let (offset, fp) = raw.split_once(':')?;
    (u64::from_str_radix(fp, 16).ok()? == fingerprint).then_some(())?;
    offset.parse().ok()
}

/// Orders dotted software versions numerically (4.3.100 after 4.3.93).
pub fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

pub fn major(v: &str) -> u64 {
    version_key(v).first().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_walks_its_steps() {
        let t = Timeline::build(
            100.0,
            "PENDING",
            &[("DOWNLOADING", 10.0), ("COMPLETED", 5.0)],
        );
        assert_eq!(t.state_at(99.0), "PENDING");
        assert_eq!(t.state_at(109.9), "PENDING");
        assert_eq!(t.state_at(110.0), "DOWNLOADING");
        assert_eq!(t.state_at(200.0), "COMPLETED");
        assert!(t.ended_at(115.0));
        assert!(!t.ended_at(114.9));
    }

    #[test]
    fn a_window_spans_consecutive_states() {
        let t = Timeline::build(
            0.0,
            "PENDING",
            &[
                ("IN_PROGRESS", 10.0),
                ("REBOOTING", 5.0),
                ("COMPLETED", 7.0),
            ],
        );
        assert_eq!(t.window(&["IN_PROGRESS", "REBOOTING"]), Some((10.0, 22.0)));
        assert_eq!(t.window(&["REBOOTING"]), Some((15.0, 22.0)));
        assert_eq!(t.window(&["FAILED"]), None);
        assert_eq!(t.window(&["COMPLETED"]), Some((22.0, f64::INFINITY)));
    }

    #[test]
    fn cutting_a_timeline_ends_it_early() {
        let mut t = Timeline::build(0.0, "QUEUED", &[("IN_PROGRESS", 10.0), ("SUCCEEDED", 10.0)]);
        t.cut(3.0, "CANCELED");
        assert_eq!(t.state_at(2.0), "QUEUED");
        assert_eq!(t.state_at(50.0), "CANCELED");
        assert_eq!(t.end(), 3.0);
    }

    #[test]
    fn tokens_round_trip_and_refuse_other_queries() {
        let first = Page::new(("ListTasks", "COMPLETED"), None, 2).unwrap();
        let (page, next) = first.cut(vec![1, 2, 3, 4, 5]).unwrap();
        assert_eq!(page, vec![1, 2]);
        let token = next.unwrap();
        let second = Page::new(("ListTasks", "COMPLETED"), Some(&token), 2).unwrap();
        assert_eq!(second.cut(vec![1, 2, 3, 4, 5]).unwrap().0, vec![3, 4]);
        assert!(Page::new(("ListTasks", "CANCELED"), Some(&token), 2).is_err());
        assert!(Page::new(("ListTasks", "COMPLETED"), Some("zz"), 2).is_err());
    }

    /// A token forged with the query's own fingerprint and an offset at the end of
    /// usize is refused, not overflowed (this panicked in debug builds).
    #[test]
    fn a_forged_token_with_a_huge_offset_is_refused() {
        let query = ("ListTasks", "COMPLETED");
        let mut h = DefaultHasher::new();
        query.hash(&mut h);
        for offset in [usize::MAX, 6] {
            let forged = hex::encode(format!("{offset}:{:x}", h.finish()));
            let page = Page::new(query, Some(&forged), 100).unwrap();
            let err = page.cut(vec![1, 2, 3, 4, 5]).unwrap_err();
            assert_eq!(err.code, "ValidationException");
        }
        // The end of the list, as a token can honestly point to, is an empty last page.
        let at_end = hex::encode(format!("5:{:x}", h.finish()));
        let page = Page::new(query, Some(&at_end), 100).unwrap();
        assert_eq!(page.cut(vec![1, 2, 3, 4, 5]).unwrap(), (vec![], None));
    }

    #[test]
    fn speeds_and_clock_advances_must_be_finite_and_positive() {
        for bad in [f64::INFINITY, f64::NAN, 0.0, -1.0, 1e20] {
            assert!(check_speed(bad).is_err(), "{bad}");
        }
        assert!(check_speed(30.0).is_ok());
        let mut clock = Clock::new(1.0);
        for bad in [f64::INFINITY, f64::NAN, 0.0, -5.0, 1e20] {
            let before = clock.now();
            assert!(clock.advance(bad).is_err(), "{bad}");
            assert!(clock.now() - before < 1.0, "{bad} moved the clock");
        }
        let before = clock.now();
        clock.advance(3600.0).unwrap();
        assert!(clock.now() - before >= 3600.0);
    }

    #[test]
    fn versions_order_numerically() {
        assert!(version_key("4.3.100") > version_key("4.3.93"));
        assert_eq!(major("5.0.21"), 5);
    }
}
