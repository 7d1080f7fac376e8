//! The in-memory access-token cache, keyed by (account, scope set, resource). Reads take a short
//! read lock and clone one entry; nothing here touches the network or the disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use secrecy::SecretString;

use super::backoff::ZERO_LIFETIME_SECONDS;
use crate::oauth::token::TokenSet;

/// A cache key: the account, its requested scopes (sorted, deduplicated; empty = the account's
/// own) and the RFC 8707 resource (empty = none).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    pub account: String,
    pub scopes: Vec<String>,
    pub resource: String,
}

impl TokenKey {
    /// The account's own key (its login's scopes, no resource), as opposed to a downscoped one.
    #[must_use]
    pub fn is_base(&self) -> bool {
        self.scopes.is_empty() && self.resource.is_empty()
    }

    /// What the key asks for, in words.
    #[must_use]
    pub fn describe(&self) -> String {
        match (self.scopes.is_empty(), self.resource.is_empty()) {
            (true, true) => "the account's own token".to_owned(),
            (false, true) => format!("scopes `{}`", self.scopes.join(" ")),
            (true, false) => format!("resource `{}`", self.resource),
            (false, false) => format!(
                "scopes `{}` for resource `{}`",
                self.scopes.join(" "),
                self.resource
            ),
        }
    }

    /// Normalises the scope list so `a b` and `b a` share an entry.
    #[must_use]
    pub fn new(account: &str, scopes: &[String], resource: &str) -> Self {
        let mut scopes: Vec<String> = scopes.iter().filter(|s| !s.is_empty()).cloned().collect();
        scopes.sort();
        scopes.dedup();
        Self {
            account: account.to_owned(),
            scopes,
            resource: resource.to_owned(),
        }
    }
}

/// One access token.
#[derive(Clone)]
pub struct CachedToken {
    pub access_token: SecretString,
    pub token_type: String,
    /// Unix seconds; `None` when the provider gave no lifetime.
    pub expires_at: Option<i64>,
    /// Unix seconds when it was obtained.
    pub obtained_at: i64,
    pub scopes: Vec<String>,
    pub id_token: Option<SecretString>,
    /// Bumped per token obtained, so a waiter can tell a token newer than the one it saw.
    pub generation: u64,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("expires_at", &self.expires_at)
            .field("obtained_at", &self.obtained_at)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    /// The access token of a token response obtained at `now`, for `scopes` (RFC 6749 §5.1: a
    /// response without `scope` granted what was asked).
    #[must_use]
    pub fn issued(set: TokenSet, asked: &[String], now: i64) -> Self {
        let scopes = set.scope.as_deref().map_or_else(
            || asked.to_vec(),
            |s| s.split_whitespace().map(str::to_owned).collect(),
        );
        Self {
            access_token: set.access_token,
            token_type: set.token_type,
            expires_at: set.expires_in.map(|s| {
                let lifetime = i64::try_from(s).unwrap_or(i64::MAX);
                now.saturating_add(if lifetime == 0 {
                    ZERO_LIFETIME_SECONDS
                } else {
                    lifetime
                })
            }),
            obtained_at: now,
            scopes,
            id_token: set.id_token,
            generation: 0,
        }
    }

    /// Seconds of validity left at `now` (`i64::MAX` with no known expiry).
    #[must_use]
    pub fn remaining(&self, now: i64) -> i64 {
        self.expires_at.map_or(i64::MAX, |e| e - now)
    }

    /// The lifetime the provider issued it with.
    #[must_use]
    pub fn lifetime(&self) -> Option<i64> {
        self.expires_at.map(|e| e - self.obtained_at)
    }
}

/// The decision for a cached token and a caller's wish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it, but it cannot meet `min_ttl`: the provider issues shorter tokens, and this one
    /// is still in the first half of its life, so a refresh would not do better for long.
    FreshestPossible,
    /// Refresh first.
    Stale,
}

/// Whether `token` satisfies `min_ttl` at `now`. A caller asking more lifetime than the provider
/// ever issues is capped at half the token's lifetime, so there is at most one refresh per issued
/// token instead of one per call (a peer agent hammers the provider here).
#[must_use]
pub fn freshness(token: &CachedToken, min_ttl: i64, now: i64) -> Freshness {
    let remaining = token.remaining(now);
    if remaining <= 0 {
        return Freshness::Stale;
    }
    if remaining >= min_ttl {
        return Freshness::Fresh;
    }
    match token.lifetime() {
        Some(lifetime) if lifetime < min_ttl && remaining * 2 > lifetime => {
            Freshness::FreshestPossible
        }
        _ => Freshness::Stale,
    }
}

/// A cache entry: the token and when a caller last asked for its key (Unix seconds), which tells
/// the refresh supervisor which keys are hot.
struct Slot {
    token: CachedToken,
    last_used: Arc<AtomicI64>,
}

/// Downscoped keys cached per account (least recently used evicted first).
pub const MAX_KEYS_PER_ACCOUNT: usize = 32;

/// The cache.
#[derive(Default)]
pub struct TokenCache {
    tokens: RwLock<HashMap<TokenKey, Slot>>,
    generation: AtomicU64,
}

impl TokenCache {
    /// A clone of the entry.
    #[must_use]
    pub fn get(&self, key: &TokenKey) -> Option<CachedToken> {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|s| s.token.clone())
    }

    /// Records that a caller asked for `key` at `now` (a relaxed store under the read lock).
    pub fn touch(&self, key: &TokenKey, now: i64) {
        if let Some(s) = self
            .tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            s.last_used.store(now, Ordering::Relaxed);
        }
    }

    /// Stores a token, stamping a new generation; the key's use history is kept.
    pub fn put(&self, key: TokenKey, mut token: CachedToken) -> CachedToken {
        token.generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(&key) {
            // Bounded: an account's least recently used downscoped key makes room.
            let mine: Vec<(&TokenKey, i64)> = map
                .iter()
                .filter(|(k, _)| k.account == key.account && !k.is_base())
                .map(|(k, s)| (k, s.last_used.load(Ordering::Relaxed)))
                .collect();
            if mine.len() >= MAX_KEYS_PER_ACCOUNT
                && let Some(oldest) = mine
                    .iter()
                    .min_by_key(|(_, used)| *used)
                    .map(|(k, _)| (*k).clone())
            {
                map.remove(&oldest);
            }
        }
        let last_used = map
            .get(&key)
            .map_or_else(|| Arc::new(AtomicI64::new(0)), |s| Arc::clone(&s.last_used));
        map.insert(
            key,
            Slot {
                token: token.clone(),
                last_used,
            },
        );
        token
    }

    /// The keys of `account` used at or after `since`, with their tokens.
    #[must_use]
    pub fn hot_keys(&self, account: &str, since: i64) -> Vec<(TokenKey, CachedToken)> {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, s)| k.account == account && s.last_used.load(Ordering::Relaxed) >= since)
            .map(|(k, s)| (k.clone(), s.token.clone()))
            .collect()
    }

    /// How many keys `account` has cached.
    #[cfg(test)]
    #[must_use]
    pub fn keys_of(&self, account: &str) -> usize {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|k| k.account == account)
            .count()
    }

    /// Drops every token of `account`.
    pub fn forget_account(&self, account: &str) {
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|k, _| k.account != account);
    }

    /// The earliest expiry among `account`'s tokens (for status).
    #[must_use]
    pub fn account_expiry(&self, account: &str) -> Option<i64> {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, _)| k.account == account && k.scopes.is_empty() && k.resource.is_empty())
            .filter_map(|(_, s)| s.token.expires_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(obtained: i64, expires: Option<i64>) -> CachedToken {
        CachedToken {
            access_token: SecretString::from("t"),
            token_type: "Bearer".into(),
            expires_at: expires,
            obtained_at: obtained,
            scopes: vec![],
            id_token: None,
            generation: 0,
        }
    }

    #[test]
    fn fresh_when_min_ttl_met() {
        assert_eq!(freshness(&tok(0, Some(3600)), 60, 100), Freshness::Fresh);
    }

    #[test]
    fn stale_when_close_to_expiry() {
        assert_eq!(freshness(&tok(0, Some(3600)), 60, 3550), Freshness::Stale);
    }

    #[test]
    fn expired_is_always_stale() {
        assert_eq!(freshness(&tok(0, Some(60)), 0, 60), Freshness::Stale);
    }

    #[test]
    fn min_ttl_above_lifetime_is_capped_at_half_life() {
        // A 60 s token, caller wants 3600 s: served during its first half, then refreshed once.
        let t = tok(0, Some(60));
        assert_eq!(freshness(&t, 3600, 10), Freshness::FreshestPossible);
        assert_eq!(freshness(&t, 3600, 29), Freshness::FreshestPossible);
        assert_eq!(freshness(&t, 3600, 31), Freshness::Stale);
    }

    #[test]
    fn no_expiry_is_fresh() {
        assert_eq!(freshness(&tok(0, None), 100_000, 5), Freshness::Fresh);
    }

    #[test]
    fn key_normalises_scopes() {
        let a = TokenKey::new("x", &["b".into(), "a".into(), "a".into()], "");
        let b = TokenKey::new("x", &["a".into(), "b".into()], "");
        assert_eq!(a, b);
    }
}
