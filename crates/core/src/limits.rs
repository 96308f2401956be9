//! Per-source call rate: a token bucket per source address.

use std::collections::HashMap;
use std::net::IpAddr;
use tokio::time::Instant;

/// Token buckets by source address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: u32,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            per_second,
            buckets: HashMap::new(),
        }
    }

    /// Takes a token for `ip`; false when its rate is exceeded.
    pub(crate) fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let rate = f64::from(self.per_second);
        let (tokens, last) = self.buckets.entry(ip).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * rate).min(rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets sources whose buckets are full again.
    pub(crate) fn prune(&mut self, now: Instant) {
        let rate = f64::from(self.per_second);
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.duration_since(*last).as_secs_f64() * rate < rate
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_over_time() {
        let mut r = RateLimiter::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t = Instant::now();
        assert!(r.allow(ip, t));
        assert!(r.allow(ip, t));
        assert!(!r.allow(ip, t));
        assert!(r.allow(ip, t + Duration::from_millis(600)));
        r.prune(t + Duration::from_secs(10));
        assert!(r.buckets.is_empty());
    }
}
