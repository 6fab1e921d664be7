//! When and how long to wait before trying a call again.

use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use http::{HeaderMap, StatusCode};

/// How the service client retries failed calls.
///
/// A call is tried again, up to [`max_retries`](Self::max_retries) times,
/// when:
///
/// - the connection to the service could not be made (any call: nothing was sent);
/// - the call is idempotent and the service answered `408`, `429`, `500`,
///   `502`, `503` or `504`, or did not answer within the timeout.
///
/// Every call is idempotent except the `send_to_*` calls: a message the
/// service may already have fanned out is never sent twice.
///
/// Waits grow exponentially from [`initial_delay`](Self::initial_delay)
/// (doubling, with ±20 % jitter) up to [`max_delay`](Self::max_delay); a
/// `Retry-After` header in seconds is honoured up to `max_delay`.
///
/// ```
/// use std::time::Duration;
/// use webpubsub::client::RetryPolicy;
///
/// let default = RetryPolicy::default();
/// assert_eq!(default.retries(), 3);
/// let patient = RetryPolicy::default().max_retries(5).max_delay(Duration::from_secs(30));
/// let never = RetryPolicy::none();
/// assert_eq!(never.retries(), 0);
/// # let _ = patient;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct RetryPolicy {
    max_retries: u32,
    initial_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, waiting about 0.5 s, 1 s and 2 s (at most 8 s each).
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Sets how many times a call is tried again after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the wait before the first retry (doubled before each next one).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets the longest wait between two attempts.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// How many times a call is tried again after the first attempt.
    #[must_use]
    pub fn retries(&self) -> u32 {
        self.max_retries
    }

    /// The wait before the first retry.
    #[must_use]
    pub fn first_delay(&self) -> Duration {
        self.initial_delay
    }

    /// The longest wait between two attempts.
    #[must_use]
    pub fn longest_delay(&self) -> Duration {
        self.max_delay
    }

    /// The wait before retry number `retry` (0-based), honouring `Retry-After`.
    pub(crate) fn delay(&self, retry: u32, headers: Option<&HeaderMap>) -> Duration {
        if let Some(seconds) = headers
            .and_then(|h| h.get(http::header::RETRY_AFTER))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Duration::from_secs(seconds).min(self.max_delay);
        }
        let base = self
            .initial_delay
            .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .min(self.max_delay);
        // ±20 % jitter so that many clients do not retry in lockstep.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        #[allow(clippy::cast_precision_loss)]
        let factor = 0.8 + 0.4 * ((random % 1000) as f64 / 1000.0);
        base.mul_f64(factor).min(self.max_delay)
    }
}

/// Whether an answer with this status may be retried (for idempotent calls).
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_stop_at_the_maximum() {
        let policy = RetryPolicy::default();
        for (retry, nominal_ms) in [(0, 500.0), (1, 1000.0), (2, 2000.0), (3, 4000.0)] {
            let ms = policy.delay(retry, None).as_secs_f64() * 1000.0;
            assert!(
                ms >= nominal_ms * 0.8 - 1.0 && ms <= nominal_ms * 1.2 + 1.0,
                "{retry}: {ms}"
            );
        }
        assert!(policy.delay(40, None) <= Duration::from_secs(8));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_maximum() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(
            RetryPolicy::default().delay(0, Some(&headers)),
            Duration::from_secs(2)
        );
        headers.insert(http::header::RETRY_AFTER, "600".parse().unwrap());
        assert_eq!(
            RetryPolicy::default().delay(0, Some(&headers)),
            Duration::from_secs(8)
        );
    }
}
