//! Which failures are retried, and how long to wait between attempts.

use std::time::Duration;

/// Bounded retries with exponential backoff and jitter.
///
/// Only throttling codes, `ServiceUnavailable`, 5xx answers, connection failures and connect
/// timeouts are retried ([`crate::Error::is_retryable`]); every attempt is signed anew, with a
/// fresh nonce and timestamp. The whole call, waits included, stays within the client's total
/// timeout: a wait that would end past it is not started.
///
/// ```
/// use std::time::Duration;
/// use aliyun_guard::RetryPolicy;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 3);
/// let wait = policy.delay(2, false);
/// assert!(wait >= Duration::from_millis(100) && wait <= Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Base delay after a 5xx or connection failure; doubled per attempt.
    pub base_delay: Duration,
    /// Base delay after throttling; doubled per attempt.
    pub throttle_base_delay: Duration,
    /// Longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            throttle_base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// A policy with `max_attempts` attempts and the given base delay for both kinds of failure.
    pub fn new(max_attempts: u32, base_delay: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base_delay,
            throttle_base_delay: base_delay,
            max_delay: Duration::from_secs(20),
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): `base × 2^(attempt-1)`, capped at
    /// `max_delay`, then jittered uniformly into its upper half.
    pub fn delay(&self, attempt: u32, throttled: bool) -> Duration {
        let base = if throttled {
            self.throttle_base_delay
        } else {
            self.base_delay
        };
        let exp = attempt.saturating_sub(1).min(20);
        let full = base.saturating_mul(1u32 << exp).min(self.max_delay);
        let half = full / 2;
        let jitter_nanos = fastrand::u64(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        for _ in 0..100 {
            let d1 = p.delay(1, false);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d3 = p.delay(3, true);
            assert!(d3 >= Duration::from_millis(1000) && d3 <= Duration::from_millis(2000));
            let big = p.delay(40, true);
            assert!(big <= Duration::from_secs(20) && big >= Duration::from_secs(10));
        }
    }
}
