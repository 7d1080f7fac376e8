//! Serving tokens: the cache first, else one refresh per account at a time, with the rotated
//! refresh token written durably before the new access token is handed to anyone.

use secrecy::{ExposeSecret, SecretString};

use crate::cache::{CachedToken, Freshness, TokenKey, freshness};
use crate::error::AgentError;
use crate::oauth::token::{self, TokenError, TokenSet};
use crate::state::{AgentHandle, AgentState, now_unix};
use crate::store;
use crate::supervisor;
use authctl_proto::v1::WatchEventKind;
use std::time::Duration;

/// What a caller asked for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub account: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub min_ttl: Option<u64>,
    pub force_refresh: bool,
}

/// A token served, with a note when it cannot meet the caller's `min_ttl`.
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

/// Returns a token for `req`, refreshing when needed.
///
/// # Errors
/// Unknown account, login required, provider unavailable or refusing.
pub async fn get_token(state: &AgentHandle, req: &TokenRequest) -> Result<Served, AgentError> {
    let account = state.resolve_account(&req.account)?;
    let key = TokenKey::new(&account.name, &req.scopes, &req.resource);
    let min_ttl = i64::try_from(req.min_ttl.unwrap_or(state.config().agent.min_ttl_seconds))
        .unwrap_or(i64::MAX);
    let now = now_unix();
    let seen = state.cache.get(&key);
    if !req.force_refresh
        && let Some(t) = &seen
    {
        let f = freshness(t, min_ttl, now);
        if f != Freshness::Stale {
            state.cache.touch(&key, now);
            supervisor::ensure(state, &account.name);
            return Ok(served(&account.name, t.clone(), f, min_ttl));
        }
    }
    // One refresh in flight per account: later callers wait here, then find the new token. The
    // lock is per account, not per key, because every key of an account refreshes with the same
    // (rotating) refresh token.
    let mut guard = state.cache.refresh_lock(&account.name).lock_owned().await;
    let cached = state.cache.get(&key);
    if let Some(t) = &cached {
        let newer = seen.as_ref().is_none_or(|s| t.generation > s.generation);
        let f = freshness(t, min_ttl, now_unix());
        if (req.force_refresh && newer) || (!req.force_refresh && f != Freshness::Stale) {
            state.cache.touch(&key, now_unix());
            return Ok(served(&account.name, t.clone(), f, min_ttl));
        }
    }
    let still_valid = cached.filter(|t| t.remaining(now_unix()) > 0);
    // While the provider is failing, do not hammer it: serve what is still valid, else fail fast.
    if let Some((left, last)) = state.backoff_state(&account.name) {
        return serve_stale_or_fail(
            &account.name,
            &account.provider,
            still_valid.filter(|_| !req.force_refresh),
            last,
            Some(left),
        );
    }
    let mut attempts =
        crate::backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    let started = std::time::Instant::now();
    loop {
        let (result, back) = refresh(state, &account.name, &key, guard).await?;
        guard = back;
        match result {
            Ok(t) => {
                state.cache.touch(&key, now_unix());
                supervisor::ensure(state, &account.name);
                let f = freshness(&t, min_ttl, now_unix());
                return Ok(served(&account.name, t, f, min_ttl));
            }
            Err(AgentError::ProviderUnavailable { provider, source }) => {
                // A caller holding a still-valid token gets it at once; one with nothing to serve
                // is retried a little in the foreground (the supervisor keeps retrying after).
                let retry = still_valid.is_none()
                    && attempts.attempts() < 2
                    && started.elapsed() < Duration::from_secs(10);
                if !retry || req.force_refresh {
                    state.record_failure(&account.name, &source);
                    supervisor::ensure(state, &account.name);
                    return serve_stale_or_fail(
                        &account.name,
                        &provider,
                        still_valid.filter(|_| !req.force_refresh),
                        source,
                        None,
                    );
                }
                let wait = attempts.next_delay(source.retry_after(), rand::random::<f64>());
                tokio::time::sleep(wait.min(Duration::from_secs(5))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn serve_stale_or_fail(
    account: &str,
    provider: &str,
    still_valid: Option<CachedToken>,
    source: TokenError,
    backing_off: Option<Duration>,
) -> Result<Served, AgentError> {
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
        None => {
            let _ = backing_off;
            Err(AgentError::ProviderUnavailable {
                provider: provider.to_owned(),
                source,
            })
        }
    }
}

/// A background refresh of `key` by the supervisor, unless a caller refreshed it since
/// `generation`.
///
/// # Errors
/// As the refresh.
pub async fn refresh_background(
    state: &AgentHandle,
    account: &str,
    key: &TokenKey,
    generation: u64,
) -> Result<(), AgentError> {
    let guard = state.cache.refresh_lock(account).lock_owned().await;
    if state
        .cache
        .get(key)
        .is_some_and(|t| t.generation != generation)
    {
        return Ok(());
    }
    match refresh(state, account, key, guard).await?.0 {
        Ok(_) => Ok(()),
        Err(AgentError::ProviderUnavailable { provider, source }) => {
            state.record_failure(account, &source);
            Err(AgentError::ProviderUnavailable { provider, source })
        }
        Err(e) => Err(e),
    }
}

/// The refresh token to use: an unsaved rotated one first, else the store's.
async fn current_refresh_token(
    state: &AgentState,
    account: &str,
) -> Result<Option<SecretString>, AgentError> {
    let unsaved = state
        .unsaved
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(account)
        .cloned();
    if let Some(rt) = unsaved {
        // Try again to make it durable.
        if state
            .secrets
            .set(&store::refresh_token_key(account), rt.clone())
            .await
            .is_ok()
        {
            state
                .unsaved
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(account);
        }
        return Ok(Some(rt));
    }
    Ok(state
        .secrets
        .get(&store::refresh_token_key(account))
        .await?)
}

/// Performs one refresh for `key` under the account's refresh lock (`guard`), and hands the
/// guard back for a retry. The outer error: the refresh task itself died (the guard with it).
///
/// The refresh runs in a task of its own that holds the guard: a caller that goes away (a client
/// cancelling its call) must not cut it off between the provider rotating the refresh token and
/// the new one being stored, and no other refresh may start before it has finished.
async fn refresh(
    state: &AgentHandle,
    account: &str,
    key: &TokenKey,
    guard: RefreshGuard,
) -> Result<(Result<CachedToken, AgentError>, RefreshGuard), AgentError> {
    // A stop waits for the refreshes in flight; none may start after it began (checked under the
    // lock, so the stop's wait for this lock covers every refresh that got past this point).
    if *state.shutdown.borrow() {
        return Ok((Err(AgentError::Stopping), guard));
    }
    let task_state = std::sync::Arc::clone(state);
    let (account, key) = (account.to_owned(), key.clone());
    let task = tokio::spawn(async move {
        let result = refresh_locked(&task_state, &account, &key).await;
        (result, guard)
    });
    task.await
        .map_err(|e| AgentError::Internal(format!("refresh task failed: {e}")))
}

type RefreshGuard = tokio::sync::OwnedMutexGuard<()>;

async fn refresh_locked(
    state: &AgentState,
    account: &str,
    key: &TokenKey,
) -> Result<CachedToken, AgentError> {
    let record = state
        .accounts
        .get(account)
        .ok_or_else(|| AgentError::NoSuchAccount(account.into()))?;
    if record.login_required {
        return Err(AgentError::LoginRequired {
            account: account.into(),
            reason: record.last_error,
        });
    }
    let Some(rt) = current_refresh_token(state, account).await? else {
        return Err(AgentError::LoginRequired {
            account: account.into(),
            reason: "no refresh token is stored".into(),
        });
    };
    let provider = record.provider.clone();
    let endpoints = state.endpoints(&provider).await?;
    let auth = state.client_auth(&provider).await?;
    let scope = crate::oauth::join_scopes(&key.scopes);
    let mut params: Vec<(&str, &str)> = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.expose_secret()),
    ];
    if !scope.is_empty() {
        params.push(("scope", &scope));
    }
    // RFC 8707 §2.2: the key's own resource, else the provider's (a resource login).
    let provider_resource = state.provider(&provider).ok().and_then(|p| p.resource);
    if !key.resource.is_empty() {
        params.push(("resource", &key.resource));
    } else if let Some(r) = &provider_resource {
        params.push(("resource", r));
    }
    tracing::debug!(%account, %provider, "refreshing");
    let result = token::request(state.http(), &endpoints.token_endpoint, &auth, &params).await;
    match result {
        Ok(set) => Ok(accept(state, account, key, set).await),
        Err(e) if e.is_definitive() => {
            mark_login_required(state, account, &e).await;
            Err(AgentError::LoginRequired {
                account: account.into(),
                reason: e.to_string(),
            })
        }
        Err(e) if e.is_transient() => {
            state
                .accounts
                .touch(account, |a| a.last_error = e.to_string());
            Err(AgentError::ProviderUnavailable {
                provider,
                source: e,
            })
        }
        Err(e) => {
            state
                .accounts
                .touch(account, |a| a.last_error = e.to_string());
            Err(AgentError::ProviderRefused {
                provider,
                source: e,
            })
        }
    }
}

/// Takes a successful refresh: the rotated refresh token is made durable first, then the access
/// token is cached (and so handed out).
async fn accept(state: &AgentState, account: &str, key: &TokenKey, set: TokenSet) -> CachedToken {
    if let Some(new_rt) = set.refresh_token.clone() {
        save_refresh_token(state, account, new_rt).await;
    }
    let now = now_unix();
    let scopes = granted_scopes(set.scope.as_deref(), &key.scopes);
    let token = CachedToken {
        access_token: set.access_token,
        token_type: set.token_type,
        expires_at: set
            .expires_in
            .map(|s| now + i64::try_from(s).unwrap_or(i64::MAX / 2)),
        obtained_at: now,
        scopes,
        id_token: set.id_token,
        generation: 0,
    };
    state.accounts.touch(account, |a| {
        a.last_refresh_at = now;
        a.last_error.clear();
    });
    state.clear_failure(account);
    let token = state.cache.put(key.clone(), token);
    state.emit(account, WatchEventKind::Refreshed, |e| {
        e.expires_at = token.expires_at.unwrap_or(0);
        e.scopes.clone_from(&token.scopes);
        e.resource.clone_from(&key.resource);
    });
    token
}

/// Writes a (rotated) refresh token durably, retrying briefly; if the store keeps failing the
/// token is kept in memory, used for the next refresh, and the account shows the problem.
pub async fn save_refresh_token(state: &AgentState, account: &str, rt: SecretString) {
    let key = store::refresh_token_key(account);
    let mut last = None;
    for attempt in 0..3u32 {
        match state.secrets.set(&key, rt.clone()).await {
            Ok(()) => {
                state
                    .unsaved
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(account);
                return;
            }
            Err(e) => {
                tracing::warn!(%account, attempt, error = %e, "could not save the rotated refresh token");
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
    }
    state
        .unsaved
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(account.to_owned(), rt);
    if let Some(e) = last {
        state.accounts.touch(account, |a| {
            a.last_error = format!(
                "the rotated refresh token is held in memory only: {e}; the agent retries the write"
            );
        });
    }
}

async fn mark_login_required(state: &AgentState, account: &str, e: &TokenError) {
    tracing::warn!(%account, error = %e, "refresh token rejected; login required");
    state.forget_tokens(account);
    // The grant is dead (RFC 6749 §5.2 invalid_grant): its token is worthless, drop it.
    if let Err(se) = state
        .secrets
        .delete(&store::refresh_token_key(account))
        .await
    {
        tracing::warn!(%account, error = %se, "could not delete the rejected refresh token");
    }
    let msg = e.to_string();
    state.clear_failure(account);
    state.emit(account, WatchEventKind::LoginRequired, |ev| {
        ev.message.clone_from(&msg)
    });
    if let Err(ae) = state
        .accounts
        .update(|m| {
            if let Some(a) = m.get_mut(account) {
                a.login_required = true;
                a.has_refresh_token = false;
                a.last_error = msg;
            }
        })
        .await
    {
        tracing::warn!(%account, error = %ae, "could not record the login-required state");
    }
}

/// RFC 6749 §5.1: a missing `scope` means the requested scopes were granted.
fn granted_scopes(scope: Option<&str>, requested: &[String]) -> Vec<String> {
    scope.map_or_else(
        || requested.to_vec(),
        |s| s.split_whitespace().map(str::to_owned).collect(),
    )
}
