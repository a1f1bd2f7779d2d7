//! When and how long to wait before trying a request again.

use std::time::Duration;

use rand::Rng;

/// Retry policy for one lemlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff after a 5xx, a timeout or a dropped connection; doubled on each retry.
    pub base_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": half the step is fixed, half random, so retries
    /// of many callers spread out yet none retries immediately.
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(16);
        let step = self.base_backoff.saturating_mul(1 << exp).min(self.max_backoff);
        let half = step / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// 100–500 ms added to a rate-limit wait so that callers paused together do not all retry in
/// the same millisecond.
pub fn rate_limit_jitter() -> Duration {
    Duration::from_millis(rand::rng().random_range(100..=500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_caps() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!((Duration::from_millis(125)..=Duration::from_millis(250)).contains(&first));
            let third = p.backoff(3);
            assert!((Duration::from_millis(500)..=Duration::from_secs(1)).contains(&third));
            let late = p.backoff(30);
            assert!((Duration::from_secs(4)..=Duration::from_secs(8)).contains(&late));
        }
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..50 {
            let j = rate_limit_jitter();
            assert!((Duration::from_millis(100)..=Duration::from_millis(500)).contains(&j));
        }
    }
}
