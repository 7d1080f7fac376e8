//! Retry timing: capped exponential backoff with jitter, and when to refresh a token ahead of its
//! expiry. Pure functions of their inputs (the randomness is passed in), so they are unit-tested
//! exactly.

use std::time::Duration;

/// Capped exponential backoff with "equal jitter": the n-th delay lies in
/// `[d/2, d]` where `d = min(cap, base · 2ⁿ)`, never below the server's `Retry-After`
/// (itself capped, so a hostile header cannot park an account for days).
#[derive(Debug, Clone)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

impl Backoff {
    #[must_use]
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            max_retry_after: Duration::from_secs(3600),
            attempt: 0,
        }
    }

    /// Failures so far.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; `unit` is a random number in `[0, 1)`.
    pub fn next_delay(&mut self, retry_after: Option<Duration>, unit: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(self.attempt.min(30)));
        let d = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let jittered = d / 2 + d.mul_f64(unit.clamp(0.0, 1.0) / 2.0);
        match retry_after {
            Some(ra) => jittered.max(ra.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// A token is not refreshed again within this many seconds of being obtained, unless a caller
/// forces it (with zero-lifetime tokens counted as [`ZERO_LIFETIME_SECONDS`], no hot loop).
pub const REFRESH_FLOOR_SECONDS: i64 = 1;

/// A token the provider issues with a lifetime of 0 s (or a negative one) is used for this long:
/// refreshing it on every call would hammer the provider.
pub const ZERO_LIFETIME_SECONDS: i64 = 10;

/// When (Unix seconds) a background refresh of a token should happen: ahead of expiry by the
/// default `min_ttl` plus a margin and up to `jitter_max` seconds of jitter (so many accounts do
/// not refresh in lockstep), but never earlier than half the token's lifetime, so a provider that
/// issues short tokens sees at most one refresh per issued token. `None`: no expiry, no refresh.
#[must_use]
pub fn refresh_due(
    obtained_at: i64,
    expires_at: Option<i64>,
    min_ttl: i64,
    jitter_max: i64,
    unit: f64,
) -> Option<i64> {
    let expires_at = expires_at?;
    let lifetime = expires_at.saturating_sub(obtained_at).max(0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "a jitter of seconds: whole seconds, far below 2^52"
    )]
    let jitter = (jitter_max.max(0) as f64 * unit.clamp(0.0, 1.0)) as i64;
    let lead = min_ttl
        .saturating_add(30)
        .saturating_add(jitter)
        .min(lifetime / 2);
    // Never again within the floor, whatever lifetime the provider claims (0 s, or negative).
    Some(
        expires_at
            .saturating_sub(lead)
            .max(obtained_at.saturating_add(REFRESH_FLOOR_SECONDS)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        assert_eq!(b.next_delay(None, 0.0), Duration::from_millis(500));
        assert_eq!(b.next_delay(None, 1.0), Duration::from_secs(2));
        assert_eq!(b.next_delay(None, 0.0), Duration::from_secs(2));
        assert_eq!(b.next_delay(None, 1.0), Duration::from_secs(8));
        assert_eq!(b.next_delay(None, 1.0), Duration::from_secs(8), "capped");
        assert_eq!(b.attempts(), 5);
    }

    #[test]
    fn retry_after_is_a_floor_but_capped() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(30)), 0.0),
            Duration::from_secs(30)
        );
        b.max_retry_after = Duration::from_secs(60);
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(86_400)), 0.0),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn never_overflows() {
        let mut b = Backoff::default();
        for _ in 0..200 {
            assert!(b.next_delay(None, 0.99) <= Duration::from_secs(300));
        }
    }

    #[test]
    fn refresh_due_leads_expiry_by_min_ttl_margin_and_jitter() {
        // One-hour token, min_ttl 60: refresh 90..120 s before expiry.
        assert_eq!(refresh_due(0, Some(3600), 60, 30, 0.0), Some(3510));
        assert_eq!(refresh_due(0, Some(3600), 60, 30, 1.0), Some(3480));
    }

    #[test]
    fn short_tokens_refresh_at_half_life_never_in_a_loop() {
        assert_eq!(refresh_due(0, Some(100), 60, 30, 0.5), Some(50));
        assert_eq!(refresh_due(100, Some(104), 60, 30, 0.5), Some(102));
        // Zero and negative lifetimes wait for the floor.
        assert_eq!(refresh_due(100, Some(100), 60, 30, 0.5), Some(101));
        assert_eq!(refresh_due(100, Some(50), 60, 30, 0.5), Some(101));
        assert_eq!(
            refresh_due(i64::MAX - 5, Some(i64::MAX), i64::MAX, 30, 0.5),
            Some(i64::MAX - 2),
            "no overflow"
        );
        assert_eq!(refresh_due(0, None, 60, 30, 0.5), None);
    }
}
