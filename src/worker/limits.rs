//! What paces the worker: Panorama's quotas kept on our side, a bound on calls under way,
//! when to try a call again, and the stop signal every wait gives way to.

use std::future::Future;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Semaphore, SemaphorePermit, watch};

use crate::aws::{ApiError, ErrorKind};

/// How many times a call whose failure may pass is tried.
const ATTEMPTS: u32 = 5;
/// How many throttles one call absorbs before it reports them.
const MAX_THROTTLES: u32 = 60;

/// Panorama's per-account quotas, kept on our side so polling and dispatch together stay
/// inside them: 5 requests/s overall (we pace at 4), 1 CreateJobForDevices/s. Pacing is
/// waited for outside the bound on calls under way, so a Snow batch never queues behind
/// Panorama's one create a second.
pub struct Limits {
    pub panorama_all: DefaultDirectRateLimiter,
    pub panorama_create: DefaultDirectRateLimiter,
    /// When the last CreateJobForDevices went out. `panorama_create` orders the creates
    /// waiting; this spaces the sends themselves, since a read made between the two waits
    /// (the appliance's jobs before its create) can take a while, and without it the next
    /// create, already paced, could follow the late one within the second and be throttled.
    last_create: tokio::sync::Mutex<Option<Instant>>,
    pub calls: Semaphore,
}

/// A little over Panorama's 1 create a second: 30 ms of slack for the clocks and the
/// network, so our pacing and the service's bucket do not disagree at the boundary.
const CREATE_PERIOD: Duration = Duration::from_millis(1030);

impl Limits {
    pub fn new(concurrency: usize) -> Self {
        let per_second = |n: u32| Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            // 4 of the 5 requests a second the quota allows: the SDK's own retries of reads
            // are not paced here and need the headroom.
            panorama_all: RateLimiter::direct(per_second(4)),
            panorama_create: RateLimiter::direct(
                Quota::with_period(CREATE_PERIOD).unwrap_or(per_second(1)),
            ),
            last_create: tokio::sync::Mutex::new(None),
            calls: Semaphore::new(concurrency.max(1)),
        }
    }

    pub async fn panorama_read(&self) {
        self.panorama_all.until_ready().await;
    }

    /// Waits until a create may go out, at least `CREATE_PERIOD` after the last one, and
    /// counts it as sent. Call it right before the send.
    pub async fn space_create(&self) {
        let mut last = self.last_create.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until((at + CREATE_PERIOD).into()).await;
        }
        *last = Some(Instant::now());
    }

    /// A place among the calls under way. Take it after any pacing, never before.
    pub async fn call(&self) -> Option<SemaphorePermit<'_>> {
        self.calls.acquire().await.ok()
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
