//! Serving a token: the cache first, else one refresh per account at a time, with the rotated
//! refresh token written durably before the new access token is handed to anyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use secrecy::ExposeSecret;

use super::backoff::{Backoff, REFRESH_FLOOR_SECONDS};
use super::cache::{CachedToken, Freshness, TokenKey, freshness};
use super::error::{Refusal, ServeError};
use super::failures::KEY_COOLDOWN;
use super::{Ending, Tokens};
use crate::core::accounts::AccountRecord;
use crate::core::events::{AccountEvent, EventKind};
use crate::oauth::id_token::Expected;
use crate::oauth::token::{TokenError, TokenSet};

/// What a caller asked for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// An account, or a provider with exactly one account.
    pub account: String,
    pub scopes: Vec<String>,
    pub resource: String,
    /// Seconds the token must stay valid (`None`: the agent's `min_ttl_seconds`).
    pub min_ttl: Option<u64>,
    pub force_refresh: bool,
}

/// A token served, with a note when it cannot meet the caller's wish.
#[derive(Debug, Clone)]
pub struct Served {
    pub account: String,
    pub token: CachedToken,
    pub note: Option<String>,
}

fn served(account: &str, token: CachedToken, fresh: Freshness, min_ttl: i64) -> Served {
    let note = (fresh == Freshness::FreshestPossible).then(|| {
        format!(
            "the provider issues tokens valid for {} s, less than the {min_ttl} s asked; this is the freshest token",
            token.lifetime().unwrap_or_default()
        )
    });
    Served {
        account: account.to_owned(),
        token,
        note,
    }
}

/// The per-account locks that keep one refresh in flight: every key of an account refreshes with
/// the same (rotating) refresh token, so the lock is per account, not per key.
#[derive(Default)]
pub struct Flights {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while an account's refresh token may be used or changed.
pub type FlightGuard = tokio::sync::OwnedMutexGuard<()>;

impl Flights {
    /// Takes `account`'s lock, waiting for a refresh in flight.
    pub async fn lock(&self, account: &str) -> FlightGuard {
        let lock = Arc::clone(
            self.locks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(account.to_owned())
                .or_default(),
        );
        lock.lock_owned().await
    }

    /// Waits until no refresh is in flight (a rotated refresh token being stored), for a stop.
    pub async fn quiesce(&self) {
        let locks: Vec<_> = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for lock in locks {
            drop(lock.lock().await);
        }
    }
}

impl Tokens {
    /// A token for `req`, refreshing when needed.
    ///
    /// # Errors
    /// Unknown account, login required, provider unavailable or refusing.
    pub async fn get(self: &Arc<Self>, req: &TokenRequest) -> Result<Served, ServeError> {
        let core = &self.core;
        let account = core.resolve_account(&req.account)?;
        let key = TokenKey::new(&account.name, &req.scopes, &req.resource);
        let min_ttl = i64::try_from(req.min_ttl.unwrap_or(core.config().agent.min_ttl_seconds))
            .unwrap_or(i64::MAX);
        let seen = self.cache.get(&key);
        if !req.force_refresh
            && let Some(t) = &seen
        {
            let now = core.now();
            let f = freshness(t, min_ttl, now);
            if f != Freshness::Stale {
                self.cache.touch(&key, now);
                self.keep_fresh(&account.name);
                return Ok(served(&account.name, t.clone(), f, min_ttl));
            }
        }
        // One refresh in flight per account: later callers wait here, then find the new token.
        let mut guard = self.flights.lock(&account.name).await;
        let cached = self.cache.get(&key);
        if let Some(t) = &cached {
            let now = core.now();
            let newer = seen.as_ref().is_none_or(|s| t.generation > s.generation);
            let f = freshness(t, min_ttl, now);
            if (req.force_refresh && newer) || (!req.force_refresh && f != Freshness::Stale) {
                self.cache.touch(&key, now);
                return Ok(served(&account.name, t.clone(), f, min_ttl));
            }
        }
        if let Some(t) = &cached
            && !req.force_refresh
            && core.now().saturating_sub(t.obtained_at) < REFRESH_FLOOR_SECONDS
        {
            // Obtained moments ago, yet stale by its own account (a provider issuing tokens that
            // live 0 s): served as it is, never refreshed in a loop.
            return Ok(Served {
                account: account.name.clone(),
                token: t.clone(),
                note: Some(format!(
                    "the provider issued this token {} s ago with a lifetime of {} s; the agent refreshes a token at most once every {REFRESH_FLOOR_SECONDS} s",
                    core.now().saturating_sub(t.obtained_at),
                    t.lifetime()
                        .map_or_else(|| "unknown".to_owned(), |l| l.to_string())
                )),
            });
        }
        if let Some((left, source)) = self.failures.key_refused(&key) {
            return Err(key_refused(&account.provider, &key, source, left));
        }
        let still_valid = cached
            .filter(|t| t.remaining(core.now()) > 0)
            .filter(|_| !req.force_refresh);
        // While the provider is failing, do not hammer it: serve what is still valid, else fail fast.
        if let Some((_, last)) = self.failures.backing_off(&account.name) {
            return serve_stale_or_fail(&account.name, &account.provider, still_valid, last);
        }
        let mut attempts = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        loop {
            let (result, back) = self.refresh(&account.name, &key, guard).await?;
            guard = back;
            match result {
                Ok(t) => {
                    self.cache.touch(&key, core.now());
                    self.keep_fresh(&account.name);
                    let f = freshness(&t, min_ttl, core.now());
                    return Ok(served(&account.name, t, f, min_ttl));
                }
                Err(ServeError::ProviderUnavailable { provider, source }) => {
                    // A caller holding a still-valid token gets it at once; one with nothing to
                    // serve is retried a little in the foreground (the supervisor retries after).
                    let retry = still_valid.is_none()
                        && attempts.attempts() < 2
                        && started.elapsed() < Duration::from_secs(10);
                    if !retry || req.force_refresh {
                        self.transient_failure(&account.name, &source);
                        self.keep_fresh(&account.name);
                        return serve_stale_or_fail(&account.name, &provider, still_valid, source);
                    }
                    let wait = attempts.next_delay(source.retry_after(), rand::random::<f64>());
                    tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A background refresh of `key` by the supervisor, unless a caller refreshed it since
    /// `generation`.
    ///
    /// # Errors
    /// As the refresh.
    pub(super) async fn refresh_background(
        self: &Arc<Self>,
        account: &str,
        key: &TokenKey,
        generation: u64,
    ) -> Result<(), ServeError> {
        let guard = self.flights.lock(account).await;
        if self
            .cache
            .get(key)
            .is_some_and(|t| t.generation != generation)
        {
            return Ok(());
        }
        match self.refresh(account, key, guard).await?.0 {
            Ok(_) => Ok(()),
            Err(ServeError::ProviderUnavailable { provider, source }) => {
                self.transient_failure(account, &source);
                Err(ServeError::ProviderUnavailable { provider, source })
            }
            Err(e) => Err(e),
        }
    }

    /// Records a transient failure: the account backs off, and watchers hear of it.
    fn transient_failure(&self, account: &str, e: &TokenError) -> Duration {
        let wait = self.failures.record(account, e, rand::random::<f64>());
        let mut ev = AccountEvent::new(account, EventKind::RefreshFailed);
        ev.message = e.to_string();
        self.core.emit(ev);
        wait
    }

    /// Performs one refresh for `key` under the account's lock (`guard`), and hands the guard
    /// back for a retry. The outer error: the refresh task itself died (the guard with it).
    ///
    /// The refresh runs in a task of its own that holds the guard: a caller that goes away (a
    /// client cancelling its call) must not cut it off between the provider rotating the refresh
    /// token and the new one being stored, and no other refresh may start before it has finished.
    async fn refresh(
        self: &Arc<Self>,
        account: &str,
        key: &TokenKey,
        guard: FlightGuard,
    ) -> Result<(Result<CachedToken, ServeError>, FlightGuard), ServeError> {
        // A stop waits for the refreshes in flight; none may start after it began (checked under
        // the lock, so the stop's wait for the locks covers every refresh that got past here).
        if self.core.is_stopping() {
            return Ok((Err(ServeError::Stopping), guard));
        }
        let me = Arc::clone(self);
        let (account, key) = (account.to_owned(), key.clone());
        let task = tokio::spawn(async move {
            let result = me.refresh_locked(&account, &key).await;
            (result, guard)
        });
        Ok(task.await?)
    }

    async fn refresh_locked(
        &self,
        account: &str,
        key: &TokenKey,
    ) -> Result<CachedToken, ServeError> {
        let core = &self.core;
        let record = core
            .accounts
            .get(account)
            .ok_or_else(|| crate::core::CoreError::NoSuchAccount(account.into()))?;
        if record.login_required {
            return Err(ServeError::LoginRequired {
                account: account.into(),
                reason: record.last_error,
            });
        }
        let Some(rt) = self
            .unsaved
            .current(core, account)
            .await
            .map_err(crate::core::CoreError::from)?
        else {
            return Err(ServeError::LoginRequired {
                account: account.into(),
                reason: "no refresh token is stored".into(),
            });
        };
        let provider = record.provider.clone();
        let config = core.provider(&provider)?;
        let endpoints = core.endpoints(&provider).await?;
        let issuer = endpoints
            .issuer
            .as_deref()
            .or(config.issuer.as_deref())
            .unwrap_or_default();
        self.check_origin(&record, issuer, &endpoints.token_endpoint)
            .await?;
        let auth = core.client_auth(&provider).await?;
        let scope = crate::oauth::join_scopes(&key.scopes);
        let mut params: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.expose_secret()),
        ];
        if !scope.is_empty() {
            params.push(("scope", &scope));
        }
        // RFC 8707 §2.2: the key's own resource, else the provider's (a resource login).
        if !key.resource.is_empty() {
            params.push(("resource", &key.resource));
        } else if let Some(r) = &config.resource {
            params.push(("resource", r));
        }
        tracing::debug!(%account, %provider, "refreshing");
        let result = core
            .token_endpoint()
            .request(&endpoints.token_endpoint, &auth, &params)
            .await;
        match result {
            Ok(set) => {
                let expected = Expected {
                    issuer,
                    client_id: &auth.client_id,
                    client_secret: auth.secret.as_ref(),
                    nonce: None,
                    subject: Some(&record.subject),
                };
                let set = self
                    .checked_id_token(set, endpoints.jwks_uri.as_deref(), &expected)
                    .await;
                Ok(self.accept(account, key, set).await)
            }
            Err(e) => Err(self.failed(account, key, provider, e).await),
        }
    }

    /// What a refusal by the token endpoint means: a downscoped key refused (that key only), the
    /// grant rejected (the login ends), the provider failing (retried later), or refusing.
    async fn failed(
        &self,
        account: &str,
        key: &TokenKey,
        provider: String,
        e: TokenError,
    ) -> ServeError {
        match e {
            e if !key.is_base() && !e.is_transient() => {
                // One downscoped key's refusal is that key's (Entra answers `invalid_grant` for a
                // resource that needs consent or MFA): the login stands.
                tracing::warn!(%account, key = %key.describe(), error = %e, "the provider refused a downscoped token");
                self.failures.refuse_key(key, &e);
                key_refused(&provider, key, e, KEY_COOLDOWN)
            }
            e if e.is_definitive() => {
                let reason = e.to_string();
                if let Err(e) = self
                    .end(account, Ending::LoginRequired(reason.clone()))
                    .await
                {
                    tracing::warn!(%account, error = %e, "could not delete the rejected refresh token");
                }
                ServeError::LoginRequired {
                    account: account.into(),
                    reason,
                }
            }
            e => {
                self.core
                    .accounts
                    .touch(account, |a| a.last_error = e.to_string());
                if e.is_transient() {
                    ServeError::ProviderUnavailable {
                        provider,
                        source: e,
                    }
                } else {
                    // Not asked again at once: a refusal does not change in a loop.
                    self.failures.refuse_key(key, &e);
                    ServeError::ProviderRefused {
                        provider,
                        source: e,
                    }
                }
            }
        }
    }

    /// A refresh token goes back only to where it came from: never to an endpoint that a changed
    /// configuration (or discovery document) names now. That ends the login, saying why.
    async fn check_origin(
        &self,
        record: &AccountRecord,
        issuer: &str,
        token_endpoint: &str,
    ) -> Result<(), ServeError> {
        let account = record.name.as_str();
        if let Some(moved) = Moved::check(record, issuer, token_endpoint) {
            let reason = moved.to_string();
            if let Err(e) = self
                .end(account, Ending::LoginRequired(reason.clone()))
                .await
            {
                tracing::warn!(%account, error = %e, "could not delete the refresh token");
            }
            return Err(ServeError::LoginRequired {
                account: account.into(),
                reason,
            });
        }
        if record.token_endpoint.is_empty() {
            // An account from before 0.2 learns where its token belongs now.
            self.core.accounts.touch(account, |a| {
                issuer.clone_into(&mut a.issuer);
                token_endpoint.clone_into(&mut a.token_endpoint);
            });
        }
        Ok(())
    }

    /// A refresh's ID token, verified like a login's (OIDC Core §12.2: same issuer, audience and
    /// subject); one that fails is not served.
    async fn checked_id_token(
        &self,
        mut set: TokenSet,
        jwks_uri: Option<&str>,
        expected: &Expected<'_>,
    ) -> TokenSet {
        let Some(idt) = &set.id_token else {
            return set;
        };
        let verdict = match jwks_uri {
            Some(uri) => self
                .core
                .jwks
                .verify(self.core.http(), uri, idt, expected)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("the provider has no jwks_uri to verify it".to_owned()),
        };
        if let Err(e) = verdict {
            tracing::warn!(error = %e, "the ID token of a refresh failed verification; it is not served");
            set.id_token = None;
        }
        set
    }

    /// Takes a successful refresh: the rotated refresh token is made durable first, then the
    /// access token is cached (and so handed out).
    async fn accept(&self, account: &str, key: &TokenKey, set: TokenSet) -> CachedToken {
        let core = &self.core;
        let unsaved = match set.refresh_token.clone() {
            Some(new_rt) => self.unsaved.save(core, account, new_rt).await,
            None => None,
        };
        let now = core.now();
        core.accounts.touch(account, |a| {
            a.last_refresh_at = now;
            a.last_error = unsaved.as_ref().map_or_else(String::new, super::not_saved);
        });
        self.failures.clear(account);
        let token = self
            .cache
            .put(key.clone(), CachedToken::issued(set, &key.scopes, now));
        let mut ev = AccountEvent::new(account, EventKind::Refreshed);
        ev.expires_at = token.expires_at;
        ev.scopes.clone_from(&token.scopes);
        ev.resource.clone_from(&key.resource);
        core.emit(ev);
        token
    }
}

fn key_refused(provider: &str, key: &TokenKey, source: TokenError, left: Duration) -> ServeError {
    ServeError::KeyRefused(Box::new(Refusal {
        provider: provider.to_owned(),
        account: key.account.clone(),
        key: key.describe(),
        source,
        retry_in: left.as_secs().max(1),
    }))
}

fn serve_stale_or_fail(
    account: &str,
    provider: &str,
    still_valid: Option<CachedToken>,
    source: TokenError,
) -> Result<Served, ServeError> {
    match still_valid {
        Some(t) => {
            tracing::warn!(%account, error = %source, "refresh failing; serving the cached token");
            Ok(Served {
                account: account.to_owned(),
                token: t,
                note: Some(format!(
                    "the provider is failing ({source}); serving the cached token, which is still valid"
                )),
            })
        }
        None => Err(ServeError::ProviderUnavailable {
            provider: provider.to_owned(),
            source,
        }),
    }
}

/// The provider's configuration points elsewhere than where the account's refresh token came from.
#[derive(Debug, thiserror::Error)]
pub enum Moved {
    #[error(
        "provider `{provider}` now names the issuer `{now}`, not `{then}` where this account logged in; its refresh token is not sent there"
    )]
    Issuer {
        provider: String,
        then: String,
        now: String,
    },
    #[error(
        "provider `{provider}` now uses the token endpoint `{now}`, not `{then}` that issued this account's refresh token; it is not sent there"
    )]
    TokenEndpoint {
        provider: String,
        then: String,
        now: String,
    },
}

impl Moved {
    /// Whether `record`'s refresh token may go to `token_endpoint` of `issuer`.
    pub fn check(record: &AccountRecord, issuer: &str, token_endpoint: &str) -> Option<Self> {
        if !record.issuer.is_empty() && record.issuer != issuer {
            return Some(Self::Issuer {
                provider: record.provider.clone(),
                then: record.issuer.clone(),
                now: issuer.to_owned(),
            });
        }
        (!record.token_endpoint.is_empty() && record.token_endpoint != token_endpoint).then(|| {
            Self::TokenEndpoint {
                provider: record.provider.clone(),
                then: record.token_endpoint.clone(),
                now: token_endpoint.to_owned(),
            }
        })
    }
}
