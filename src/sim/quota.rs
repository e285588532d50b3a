//! Panorama's request quotas per account and region, as token buckets on the wall clock
//! (quotas meter the client's real rate, whatever the simulated speed).

use std::collections::HashMap;
use std::time::Instant;

/// AWS's documented Panorama quotas.
pub const PANORAMA_REQUESTS_PER_SECOND: f64 = 5.0;
pub const PANORAMA_CREATES_PER_SECOND: f64 = 1.0;

#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        Self {
            rate,
            tokens: rate,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.at = now;
    }
}

#[derive(Debug, Default)]
pub struct Quotas {
    /// Per (account id, region): (all requests, CreateJobForDevices).
    buckets: HashMap<(String, String), (Bucket, Bucket)>,
}

impl Quotas {
    /// Takes a token for one request (and one create token for a create) from the account's
    /// buckets in the region; false means throttle.
    pub fn admit(&mut self, account: &str, region: &str, is_create: bool, now: Instant) -> bool {
        let key = (account.to_string(), region.to_string());
        let (all, creates) = self.buckets.entry(key).or_insert_with(|| {
            (
                Bucket::new(PANORAMA_REQUESTS_PER_SECOND, now),
                Bucket::new(PANORAMA_CREATES_PER_SECOND, now),
            )
        });
        all.refill(now);
        creates.refill(now);
        if all.tokens < 1.0 || (is_create && creates.tokens < 1.0) {
            return false;
        }
        all.tokens -= 1.0;
        if is_create {
            creates.tokens -= 1.0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn five_requests_a_second_then_throttle() {
        let mut q = Quotas::default();
        let t0 = Instant::now();
        assert!((0..5).all(|_| q.admit("a", "us-east-1", false, t0)));
        assert!(!q.admit("a", "us-east-1", false, t0));
        // Regions are metered apart, and so are accounts.
        assert!(q.admit("a", "us-west-2", false, t0));
        assert!(q.admit("b", "us-east-1", false, t0));
        assert!(q.admit("a", "us-east-1", false, t0 + Duration::from_millis(200)));
    }

    #[test]
    fn one_create_a_second() {
        let mut q = Quotas::default();
        let t0 = Instant::now();
        assert!(q.admit("a", "r", true, t0));
        assert!(!q.admit("a", "r", true, t0 + Duration::from_millis(500)));
        assert!(q.admit("b", "r", true, t0 + Duration::from_millis(500)));
        assert!(q.admit("a", "r", false, t0 + Duration::from_millis(500)));
        assert!(q.admit("a", "r", true, t0 + Duration::from_millis(1000)));
    }
}
