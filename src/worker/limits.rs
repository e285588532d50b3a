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
const CREATES_PER_SECOND: f64 = 0.99;

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
        let after_last = last.map_or(turn, |at| at + self.panorama_create.period());
        tokio::time::sleep_until(turn.max(after_last).into()).await;
        *last = Some(Instant::now());
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
/// Slots are handed out in order, evenly spaced at the current rate.
pub struct Pacer {
    state: std::sync::Mutex<Pace>,
    max_rate: f64,
}

struct Pace {
    rate: f64,
    next: Option<Instant>,
    throttled: u64,
}

impl Pacer {
    pub fn new(rate: f64) -> Self {
        Self {
            state: std::sync::Mutex::new(Pace {
                rate,
                next: None,
                throttled: 0,
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

    /// Reserves the next free slot and says when it is.
    pub fn reserve(&self) -> Instant {
        let mut p = self.pace();
        let now = Instant::now();
        let at = p.next.map_or(now, |n| n.max(now));
        p.next = Some(at + Duration::from_secs_f64(1.0 / p.rate));
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
        p.rate = (p.rate * 0.7).max(self.max_rate / 8.0);
        p.throttled += 1;
        let later = Instant::now() + Duration::from_secs_f64(1.0 / p.rate);
        p.next = Some(p.next.map_or(later, |n| n.max(later)));
    }

    pub fn went_through(&self) {
        let mut p = self.pace();
        p.rate = (p.rate + self.max_rate / 20.0).min(self.max_rate);
    }

    /// How many throttles it has seen.
    pub fn throttles(&self) -> u64 {
        self.pace().throttled
    }
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
