//! Per-account transient-failure state: the backoff, when the next attempt may go out, and the
//! error that caused it. While an account backs off, callers are served a still-valid token or
//! fail fast, and nobody hammers a failing provider.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::backoff::Backoff;
use super::cache::TokenKey;
use crate::oauth::token::TokenError;

struct Failure {
    backoff: Backoff,
    retry_at: Instant,
    last: TokenError,
}

/// See the module docs.
#[derive(Default)]
pub struct Failures {
    map: Mutex<HashMap<String, Failure>>,
    /// Keys (a downscoped scope set or resource) the provider refused, and when: the account and
    /// its other keys stay usable, this key is not asked for again during [`KEY_COOLDOWN`].
    keys: Mutex<HashMap<TokenKey, (Instant, TokenError)>>,
}

/// How long a key the provider refused is not asked for again.
pub const KEY_COOLDOWN: Duration = Duration::from_secs(60);

impl Failures {
    /// Records a transient failure of `account`'s refresh; returns how long to wait
    /// (`unit`: a random number in `[0, 1)` for the jitter).
    pub fn record(&self, account: &str, e: &TokenError, unit: f64) -> Duration {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let f = map.entry(account.to_owned()).or_insert_with(|| Failure {
            backoff: Backoff::default(),
            retry_at: Instant::now(),
            last: e.clone(),
        });
        let wait = f.backoff.next_delay(e.retry_after(), unit);
        f.retry_at = Instant::now() + wait;
        f.last = e.clone();
        wait
    }

    /// Clears `account`'s failure state (after a success, or when the account goes).
    pub fn clear(&self, account: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(account);
    }

    /// Records that the provider refused `key` (its scopes or resource).
    pub fn refuse_key(&self, key: &TokenKey, e: &TokenError) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), (Instant::now(), e.clone()));
    }

    /// While `key` is refused: the time left and the provider's error.
    #[must_use]
    pub fn key_refused(&self, key: &TokenKey) -> Option<(Duration, TokenError)> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, e) = keys.get(key)?;
        let left = KEY_COOLDOWN.saturating_sub(at.elapsed());
        if left.is_zero() {
            keys.remove(key);
            return None;
        }
        Some((left, e.clone()))
    }

    /// Forgets the refused keys of `account` (a new login may be granted them).
    pub fn clear_keys(&self, account: &str) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| k.account != account);
    }

    /// While `account` backs off: the time left and the error that caused it.
    #[must_use]
    pub fn backing_off(&self, account: &str) -> Option<(Duration, TokenError)> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let f = map.get(account)?;
        let left = f.retry_at.checked_duration_since(Instant::now())?;
        (!left.is_zero()).then(|| (left, f.last.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backs_off_until_the_delay_passes_then_clears() {
        let f = Failures::default();
        let e = TokenError::Http {
            status: 503,
            retry_after: None,
        };
        let first = f.record("a", &e, 0.0);
        assert_eq!(first, Duration::from_millis(500));
        assert!(f.backing_off("a").is_some());
        assert!(f.backing_off("b").is_none(), "one account's failure only");
        tokio::time::advance(first).await;
        assert!(f.backing_off("a").is_none(), "the delay passed");
        assert_eq!(f.record("a", &e, 0.0), Duration::from_secs(1), "doubles");
        f.clear("a");
        assert!(f.backing_off("a").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let f = Failures::default();
        let e = TokenError::Http {
            status: 429,
            retry_after: Some(Duration::from_secs(40)),
        };
        assert_eq!(f.record("a", &e, 0.5), Duration::from_secs(40));
        let (left, last) = f.backing_off("a").unwrap();
        assert_eq!(left, Duration::from_secs(40));
        assert!(matches!(last, TokenError::Http { status: 429, .. }));
    }
}
