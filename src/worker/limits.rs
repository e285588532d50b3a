//! What paces the worker: Panorama's quotas kept on our side, a bound on calls under way,
//! when to try a call again, and the stop signal every wait gives way to.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit, watch};

use crate::aws::{ApiError, ErrorKind};

/// How many times a call whose failure may pass is tried.
const ATTEMPTS: u32 = 5;
/// How many throttles one call absorbs before it reports them.
const MAX_THROTTLES: u32 = 60;

/// Panorama's per-account quotas, kept on our side so polling and dispatch together stay
/// inside them: 5 requests/s overall, 1 CreateJobForDevices/s, each an adaptive pace that
/// backs off when the service throttles anyway. Pacing is waited for outside the bound on
/// calls under way, so a Snow batch never queues behind Panorama's one create a second.
pub struct Limits {
    pub panorama_all: Pacer,
    pub panorama_create: Pacer,
    /// When the last CreateJobForDevices went out: a create whose read ran late is sent late,
    /// and the next, already reserved, must still come a whole period after it.
    last_create: tokio::sync::Mutex<Option<Instant>>,
    pub calls: Semaphore,
}

/// The documented quotas: 5 requests a second and 1 create a second. The creates take one of
/// the five and each create's read of the appliance's jobs, made just before its turn, rides
/// with it and takes another; every other call (listings, describes, polls) shares the other
/// three. A pace starts 1% inside the quota: the create bucket holds a single token, so two
/// sends a hair under a second apart by the service's clock would be throttled (the network's
/// jitter is that hair). The service's throttling is what slows a pace further.
const REQUESTS_PER_SECOND: f64 = 3.0 * 0.99;
pub(super) const CREATES_PER_SECOND: f64 = 0.99;

impl Limits {
    pub fn new(concurrency: usize) -> Self {
        Self {
            panorama_all: Pacer::new(REQUESTS_PER_SECOND),
            panorama_create: Pacer::new(CREATES_PER_SECOND),
            last_create: tokio::sync::Mutex::new(None),
            calls: Semaphore::new(concurrency.max(1)),
        }
    }

    pub async fn panorama_read(&self) {
        self.panorama_all.take().await;
    }

    /// Waits for a create's turn, and a whole create period after the last one sent, and
    /// counts it as sent. Call it right before the send.
    pub async fn space_create(&self, turn: Instant) {
        let mut last = self.last_create.lock().await;
        let pacer = &self.panorama_create;
        let after_last = last.map_or(turn, |at| at + pacer.spacing());
        // On the team's grid a send that missed its turn waits for its next one: between
        // two turns is another host's.
        let at = pacer.align(turn.max(after_last).max(Instant::now()));
        tokio::time::sleep_until(at.into()).await;
        *last = Some(Instant::now());
    }

    /// Team mode: this host's share of the account's quota, from the team's table. Reads
    /// take the plans' part of theirs; creates take the plans' turns on the account's grid.
    pub fn share(&self, share: &crate::team::budget::Share) {
        self.panorama_all.share(share.reads(), None);
        let senders = share.senders.max(1);
        let turns = share.my_turns.len().max(1) as f64 / senders as f64;
        self.panorama_create
            .share(turns, Some((senders, share.my_turns.clone())));
    }

    /// A place among the calls under way. Take it after any pacing, never before.
    pub async fn call(&self) -> Option<SemaphorePermit<'_>> {
        self.calls.acquire().await.ok()
    }

    /// A Panorama answer: a throttle slows the account's pace, anything else wins some back.
    pub fn answered<T>(&self, result: &Result<T, ApiError>, create: bool) {
        let throttled = matches!(result, Err(e) if e.kind == ErrorKind::Throttled);
        let pacer = if create {
            &self.panorama_create
        } else {
            &self.panorama_all
        };
        if throttled {
            pacer.throttled();
        } else {
            pacer.went_through();
        }
    }
}

/// A rate that adapts to the service: it starts at the documented quota and, when the service
/// throttles anyway (another run in the account, another tool, a lower quota than
/// documented), drops to 70% (the AWS SDKs' adaptive retry mode's factor); each call that
/// goes through wins back a twentieth of the quota (additive increase, multiplicative
/// decrease).
/// Slots are handed out in order, evenly spaced at the current rate. In team mode the pace
/// is this host's share of the quota, and creates take turns on a grid of the wall clock
/// that every host of the team draws alike: turn k of the grid is at k × the quota's period
/// since the epoch, and goes to the sending plan at position k mod (plans sending).
pub struct Pacer {
    state: std::sync::Mutex<Pace>,
    max_rate: f64,
}

struct Pace {
    rate: f64,
    /// The most this host may use: the quota, or its share of it.
    cap: f64,
    next: Option<Instant>,
    throttled: u64,
    /// Team mode: the grid's turns this host takes, out of how many.
    turns: Option<(usize, Vec<usize>)>,
}

/// How late a send may be and still count as on its turn (the timer's and scheduler's slack).
const SLACK: Duration = Duration::from_millis(5);

impl Pacer {
    pub fn new(rate: f64) -> Self {
        Self {
            state: std::sync::Mutex::new(Pace {
                rate,
                cap: rate,
                next: None,
                throttled: 0,
                turns: None,
            }),
            max_rate: rate,
        }
    }

    fn pace(&self) -> std::sync::MutexGuard<'_, Pace> {
        // A poisoned pace is still a pace: the numbers in it are whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The time between two slots at the current rate.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.pace().rate)
    }

    /// The least time between two of this host's sends: the quota's period on a grid (less
    /// the slack, or a send a hair late would push the next off its turn), else the period.
    pub fn spacing(&self) -> Duration {
        let p = self.pace();
        match p.turns {
            Some(_) => Duration::from_secs_f64(1.0 / self.max_rate).saturating_sub(SLACK),
            None => Duration::from_secs_f64(1.0 / p.rate),
        }
    }

    /// Team mode: this host's share of the quota (a fraction), and for creates the grid's
    /// turns it takes out of how many. The pace starts again at the share.
    pub fn share(&self, fraction: f64, turns: Option<(usize, Vec<usize>)>) {
        let mut p = self.pace();
        p.cap = self.max_rate * fraction.clamp(0.0, 1.0).max(1e-3);
        p.rate = p.cap;
        p.turns = turns;
    }

    /// The first of this host's turns at or after `at` (`at` itself off the grid).
    pub fn align(&self, at: Instant) -> Instant {
        let p = self.pace();
        match &p.turns {
            Some((of, mine)) => grid_turn(at, 1.0 / self.max_rate, *of, mine),
            None => at,
        }
    }

    /// Reserves the next free slot and says when it is.
    pub fn reserve(&self) -> Instant {
        let mut p = self.pace();
        let now = Instant::now();
        let earliest = p.next.map_or(now, |n| n.max(now));
        let (at, after) = match &p.turns {
            Some((of, mine)) => {
                let g = 1.0 / self.max_rate;
                // The next is at least a period on (a slower pace skips turns), then on a turn
                // of ours: the slack less, so that rounding never skips a turn the period
                // allows.
                let at = grid_turn(earliest, g, *of, mine);
                (at, 1.0 / p.rate - SLACK.as_secs_f64())
            }
            None => (earliest, 1.0 / p.rate),
        };
        p.next = Some(at + Duration::from_secs_f64(after));
        at
    }

    /// Gives back a slot reserved and not used (its send was held): the slots after it are
    /// not left to stand empty, so a pause then a promotion does not wait out a schedule
    /// nobody keeps. Two slots may then fall together; the send spacing (`space_create`)
    /// still keeps them a period apart.
    pub fn release(&self, slot: Instant) {
        let mut p = self.pace();
        let now = Instant::now();
        let period = Duration::from_secs_f64(1.0 / p.rate);
        if let Some(next) = p.next
            && slot >= now
        {
            p.next = Some(next.checked_sub(period).unwrap_or(now).max(now));
        }
    }

    /// Waits for a slot of its own.
    pub async fn take(&self) {
        let at = self.reserve();
        tokio::time::sleep_until(at.into()).await;
    }

    pub fn throttled(&self) {
        let mut p = self.pace();
        p.rate = (p.rate * 0.7).max(p.cap / 8.0);
        p.throttled += 1;
        let later = Instant::now() + Duration::from_secs_f64(1.0 / p.rate);
        p.next = Some(p.next.map_or(later, |n| n.max(later)));
    }

    pub fn went_through(&self) {
        let mut p = self.pace();
        p.rate = (p.rate + p.cap / 20.0).min(p.cap);
    }

    /// How many throttles it has seen.
    pub fn throttles(&self) -> u64 {
        self.pace().throttled
    }
}

/// The first turn at or after `at` of those at positions `mine` among `of`, on the grid of
/// step `g` seconds from the Unix epoch. The wall clock is what the team's hosts share.
fn grid_turn(at: Instant, g: f64, of: usize, mine: &[usize]) -> Instant {
    let (now, wall) = (Instant::now(), unix_secs());
    let at_wall = if at >= now {
        wall + (at - now).as_secs_f64()
    } else {
        wall - (now - at).as_secs_f64()
    };
    let turn_wall = next_turn(at_wall - SLACK.as_secs_f64(), g, of, mine);
    if turn_wall >= wall {
        now + Duration::from_secs_f64(turn_wall - wall)
    } else {
        now.checked_sub(Duration::from_secs_f64(wall - turn_wall))
            .unwrap_or(now)
    }
}

/// The first turn of ours at or after `t` (seconds since the epoch).
fn next_turn(t: f64, g: f64, of: usize, mine: &[usize]) -> f64 {
    let of = of.max(1) as u64;
    let first = (t / g).ceil().max(0.0) as u64;
    let k = (first..first + of)
        .find(|k| mine.contains(&((k % of) as usize)))
        .unwrap_or(first);
    k as f64 * g
}

fn unix_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A stop signal (the worker's quit, or a rollout's hold): set once, never cleared. A stop
/// made with `or` is set when either of its parts is.
#[derive(Clone)]
pub struct Stop(Vec<watch::Receiver<bool>>);

impl Stop {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(vec![rx]))
    }

    /// Set when this one or `other` is.
    pub fn or(&self, other: &Stop) -> Stop {
        Self(self.0.iter().chain(&other.0).cloned().collect())
    }

    pub fn is_set(&self) -> bool {
        self.0.iter().any(|rx| *rx.borrow())
    }

    async fn set(&self) {
        let waits = self.0.iter().cloned().map(|mut rx| {
            Box::pin(async move {
                // A sender gone without setting it never will: wait forever.
                if rx.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
        });
        futures::future::select_all(waits).await;
    }

    /// Runs `work` unless the stop comes first: `None` when stopped.
    pub async fn unless<F: Future>(&self, work: F) -> Option<F::Output> {
        if self.is_set() {
            return None;
        }
        tokio::select! {
            out = work => Some(out),
            () = self.set() => None,
        }
    }

    /// Sleeps until `at`, unless the stop comes first: false when stopped.
    pub async fn sleep_until(&self, at: Instant) -> bool {
        self.unless(tokio::time::sleep_until(at.into()))
            .await
            .is_some()
    }

    /// Sleeps, unless the stop comes first: false when stopped.
    pub async fn sleep(&self, wait: Duration) -> bool {
        self.unless(tokio::time::sleep(wait)).await.is_some()
    }
}

/// When to try a call again. Throttling is absorbed: a throttled call never took effect, so
/// it waits and goes again, many times if need be. Other failures that may pass (a lost
/// connection, a 5xx, a timeout) get a few tries with growing waits.
#[derive(Default)]
pub struct Retry {
    failures: u32,
    throttles: u32,
}

impl Retry {
    /// Whether a try has failed already.
    pub fn tried(&self) -> bool {
        self.failures + self.throttles > 0
    }

    pub fn after(&mut self, e: &ApiError) -> Option<Duration> {
        if e.kind == ErrorKind::Throttled {
            self.throttles += 1;
            return (self.throttles <= MAX_THROTTLES).then(|| backoff(self.throttles.min(3)));
        }
        self.failures += 1;
        (retryable(e) && self.failures < ATTEMPTS).then(|| backoff(self.failures))
    }
}

fn retryable(e: &ApiError) -> bool {
    matches!(
        e.kind,
        ErrorKind::Throttled | ErrorKind::NotSent | ErrorKind::Ambiguous | ErrorKind::Timeout
    )
}

pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250 * 2u64.pow(attempt.min(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_ends_a_wait_at_once() {
        let (tx, stop) = Stop::new();
        let waiting = tokio::spawn({
            let stop = stop.clone();
            async move { stop.sleep(Duration::from_secs(3600)).await }
        });
        tx.send(true).unwrap();
        let slept = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the wait ends")
            .unwrap();
        assert!(!slept);
        assert!(stop.unless(async { 1 }).await.is_none());
    }

    #[tokio::test]
    async fn a_hold_stops_what_either_part_stops() {
        let (quit, global) = Stop::new();
        let (hold_tx, hold) = Stop::new();
        let both = global.or(&hold);
        hold_tx.send(true).unwrap();
        assert!(both.is_set());
        assert!(!global.is_set());
        assert!(!both.sleep(Duration::from_secs(3600)).await);
        let (_keep, fresh) = Stop::new();
        let other = global.or(&fresh);
        quit.send(true).unwrap();
        assert!(other.unless(async { 1 }).await.is_none());
    }

    #[test]
    fn a_pace_slows_when_throttled_and_wins_its_rate_back_a_step_at_a_time() {
        let p = Pacer::new(1.0);
        let t0 = p.reserve();
        let t1 = p.reserve();
        assert_eq!(t1 - t0, Duration::from_secs(1), "slots a period apart");
        p.throttled();
        assert_eq!(p.period(), Duration::from_secs_f64(1.0 / 0.7));
        assert_eq!(p.throttles(), 1);
        // The next slot is a whole (slower) period away from the throttle, not before.
        assert!(p.reserve() >= Instant::now() + Duration::from_millis(1400));
        for _ in 0..6 {
            p.went_through();
        }
        assert_eq!(p.period(), Duration::from_secs(1), "back at the quota");
        p.went_through();
        assert_eq!(p.period(), Duration::from_secs(1), "never past it");
        for _ in 0..20 {
            p.throttled();
        }
        assert_eq!(
            p.period(),
            Duration::from_secs(8),
            "a floor: 1/8 of the quota"
        );
    }

    #[test]
    fn a_slot_given_back_is_not_waited_out() {
        let p = Pacer::new(1.0);
        let slots: Vec<Instant> = (0..10).map(|_| p.reserve()).collect();
        // The last nine were held and given back: the next one comes after the first.
        for s in slots.iter().skip(1).rev() {
            p.release(*s);
        }
        let next = p.reserve();
        assert!(
            next <= slots[0] + Duration::from_millis(1001),
            "{:?}",
            next - slots[0]
        );
    }

    #[test]
    fn two_hosts_on_the_grid_take_turns_a_quota_period_apart() {
        let (a, b) = (Pacer::new(0.99), Pacer::new(0.99));
        a.share(0.5, Some((2, vec![0])));
        b.share(0.5, Some((2, vec![1])));
        let mut all: Vec<Instant> = (0..6).flat_map(|_| [a.reserve(), b.reserve()]).collect();
        all.sort();
        let g = Duration::from_secs_f64(1.0 / 0.99);
        for pair in all.windows(2) {
            let gap = pair[1] - pair[0];
            // Each host's own turns are two steps apart, and the two interleave.
            assert!(
                gap + Duration::from_millis(1) >= g && gap < g * 2,
                "{gap:?}"
            );
        }
        assert_eq!(a.spacing(), g - SLACK);
    }

    #[test]
    fn a_turn_is_the_first_of_ours_on_the_grid() {
        assert_eq!(next_turn(10.2, 1.0, 1, &[0]), 11.0);
        assert_eq!(next_turn(10.0, 1.0, 1, &[0]), 10.0);
        assert_eq!(
            next_turn(10.2, 1.0, 3, &[0]),
            12.0,
            "turn 12 is position 0 of 3"
        );
        assert_eq!(next_turn(10.2, 1.0, 3, &[1, 2]), 11.0);
        assert_eq!(next_turn(12.5, 1.0, 3, &[1, 2]), 13.0);
        // A host whose turns are not known yet takes the next step.
        assert_eq!(next_turn(10.2, 1.0, 2, &[]), 11.0);
    }

    #[test]
    fn a_throttle_on_the_grid_skips_turns_and_never_leaves_it() {
        let p = Pacer::new(1.0);
        p.share(1.0, Some((1, vec![0])));
        let t0 = p.reserve();
        let throttled_at = Instant::now();
        p.throttled();
        let t1 = p.reserve();
        assert!(
            t1 >= throttled_at + Duration::from_millis(1420),
            "slowed to 70%"
        );
        let steps = (t1 - t0).as_secs_f64();
        assert!((steps - steps.round()).abs() < 0.01, "on the grid: {steps}");
        // The slower pace holds: every other turn, until calls go through again.
        let t2 = p.reserve();
        assert_eq!((t2 - t1).as_secs_f64().round(), 2.0, "{:?}", t2 - t1);
        for _ in 0..6 {
            p.went_through();
        }
        let (t3, t4) = (p.reserve(), p.reserve());
        assert_eq!((t4 - t3).as_secs_f64().round(), 1.0, "back at the quota");
    }

    #[test]
    fn throttles_are_absorbed_and_other_failures_tried_a_few_times() {
        let mut r = Retry::default();
        let throttled = ApiError::new(ErrorKind::Throttled, "ThrottlingException", "slow");
        for _ in 0..MAX_THROTTLES {
            assert!(r.after(&throttled).is_some());
        }
        assert!(r.after(&throttled).is_none());
        let mut r = Retry::default();
        let lost = ApiError::new(ErrorKind::Ambiguous, "InternalServerException", "x");
        let tries = std::iter::from_fn(|| r.after(&lost)).count();
        assert_eq!(tries as u32, ATTEMPTS - 1);
        let bad = ApiError::new(ErrorKind::Validation, "ValidationException", "x");
        assert!(Retry::default().after(&bad).is_none());
    }
}
