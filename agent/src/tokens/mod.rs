//! Serving access tokens: the cache, one refresh per account in flight, the refresh supervisors,
//! backoff and failure state, rotated refresh tokens not yet saved, and the one sequence that ends
//! an account's login (logout, or a grant the provider rejected).
//!
//! [`Tokens`] owns all of it over the [`Core`]; nothing else touches a stored refresh token.

mod backoff;
pub mod cache;
mod error;
mod failures;
mod refresh;
mod supervisor;
#[cfg(test)]
mod tests;
mod unsaved;

use std::sync::Arc;

use secrecy::SecretString;

use self::cache::{CachedToken, TokenCache, TokenKey};
pub use self::error::ServeError;
use self::failures::Failures;
use self::refresh::Flights;
pub use self::refresh::{Served, TokenRequest};
use self::supervisor::Supervisors;
use self::unsaved::Unsaved;
use crate::core::accounts::AccountRecord;
use crate::core::events::{AccountEvent, EventKind};
use crate::core::{Core, CoreError};
use crate::oauth::revoke::RevokeError;
use crate::oauth::token::TokenSet;
use crate::store::{self, StoreError};

/// See the module docs. Shared as `Arc<Tokens>`.
pub struct Tokens {
    core: Arc<Core>,
    cache: TokenCache,
    flights: Flights,
    failures: Failures,
    unsaved: Unsaved,
    supervisors: Supervisors,
}

/// How an account's login ends.
#[derive(Debug)]
enum Ending {
    /// Logged out: the account and all its secrets go.
    Removed,
    /// The provider rejected the grant (RFC 6749 §5.2 `invalid_grant`): the refresh token is
    /// worthless and goes; the account stays, marked *login required* with the reason, and a
    /// login repairs it in place.
    LoginRequired(String),
}

/// An account's health, for `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Tokens can be served.
    Ready,
    /// The last refresh failed; the agent retries.
    Degraded,
    /// A login is needed.
    LoginRequired,
    /// Tokens are served, but the refresh token is held in memory only.
    NotSaved,
}

/// The account's `last_error` while its refresh token is held in memory.
fn not_saved(e: &StoreError) -> String {
    let fix = match e {
        StoreError::Keyring(k) => k.trouble.fix(),
        _ => "check the secret store named by `authctl status`",
    };
    format!(
        "not saved: the secret store refused the refresh token ({e}); it is held in memory only and lost if the agent stops, and the agent retries the write: {fix}"
    )
}

/// A completed login to store.
pub struct NewLogin {
    pub provider: String,
    pub account: String,
    /// The scopes asked (the granted ones, when the response names them, win).
    pub scopes: Vec<String>,
    pub tokens: TokenSet,
    pub subject: String,
    pub display_name: String,
    /// Keep the ID token in the secret store as a later end-session's `id_token_hint`.
    pub keep_id_token: bool,
    /// Where the tokens came from: the refresh token is only ever sent back there.
    pub issuer: String,
    pub token_endpoint: String,
}

/// What a logout did about revocation (RFC 7009).
#[derive(Debug)]
pub enum Revocation {
    Revoked,
    NotAsked,
    Skipped(RevokeSkip),
}

/// Why the refresh token was not revoked.
#[derive(Debug, thiserror::Error)]
pub enum RevokeSkip {
    #[error("not revoked: the provider has no revocation endpoint")]
    NoEndpoint,
    #[error("not revoked: no refresh token is stored")]
    NoToken,
    #[error("not revoked: {0}")]
    Core(#[from] CoreError),
    #[error(transparent)]
    Failed(#[from] RevokeError),
    #[error("not revoked: {0}")]
    Moved(refresh::Moved),
}

impl Tokens {
    /// Token serving over `core`.
    #[must_use]
    pub fn new(core: Arc<Core>) -> Arc<Self> {
        Arc::new(Self {
            core,
            cache: TokenCache::default(),
            flights: Flights::default(),
            failures: Failures::default(),
            unsaved: Unsaved::default(),
            supervisors: Supervisors::default(),
        })
    }

    /// The core below.
    #[must_use]
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Stores a completed login: the refresh token durably first, then the account, then the
    /// access token in the cache. Under the account's refresh lock, so a refresh in flight cannot
    /// write an older refresh token over the new login's.
    ///
    /// # Errors
    /// The secret store or the account file refused the write (nothing is served then).
    ///
    /// A secret store that refuses the refresh token (a keyring that cannot be written) loses
    /// nothing: the token is held in memory, served from, written again later, and the account
    /// says so (state *not saved*); the store's refusal is returned beside the record.
    pub async fn store_login(
        &self,
        login: NewLogin,
    ) -> Result<(AccountRecord, Option<StoreError>), CoreError> {
        let core = &self.core;
        let name = login.account.as_str();
        let _flight = self.flights.lock(name).await;
        self.cache.forget_account(name);
        self.unsaved.forget(name);
        let rt_key = store::refresh_token_key(name);
        let has_rt = login.tokens.refresh_token.is_some();
        let refused = if let Some(rt) = login.tokens.refresh_token.clone() {
            self.unsaved.save(core, name, rt).await
        } else {
            core.secrets.delete(&rt_key).await?;
            None
        };
        // Only a hint: failing to keep it fails nothing.
        let idt_key = store::id_token_key(name);
        let kept = match &login.tokens.id_token {
            Some(idt) if login.keep_id_token => core.secrets.set(&idt_key, idt.clone()).await,
            _ => core.secrets.delete(&idt_key).await,
        };
        if let Err(e) = kept {
            tracing::warn!(account = %name, error = %e, "could not keep the ID token for a later end-session");
        }
        let now = core.now();
        let token = CachedToken::issued(login.tokens, &login.scopes, now);
        let record = core
            .accounts
            .update(|m| {
                let created_at = m.get(name).map_or(now, |a| a.created_at);
                let rec = AccountRecord {
                    name: name.to_owned(),
                    provider: login.provider.clone(),
                    subject: login.subject.clone(),
                    display_name: login.display_name.clone(),
                    scopes: token.scopes.clone(),
                    created_at,
                    last_refresh_at: now,
                    login_required: false,
                    last_error: refused.as_ref().map_or_else(String::new, not_saved),
                    has_refresh_token: has_rt,
                    issuer: login.issuer.clone(),
                    token_endpoint: login.token_endpoint.clone(),
                };
                m.insert(name.to_owned(), rec.clone());
                rec
            })
            .await?;
        self.cache.put(TokenKey::new(name, &[], ""), token);
        self.failures.clear(name);
        self.failures.clear_keys(name);
        let mut ev = AccountEvent::new(name, EventKind::LoggedIn);
        ev.scopes.clone_from(&record.scopes);
        core.emit(ev);
        tracing::info!(provider = %login.provider, account = %name, refresh_token = has_rt, "login completed");
        Ok((record, refused))
    }

    /// Writes again, every 30 s, the refresh tokens a secret store refused; runs until the agent
    /// stops.
    pub async fn retry_unsaved(self: Arc<Self>) {
        let stopped = self.core.stopped();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                () = &mut stopped => return,
            }
            for account in self.unsaved.retry(&self.core).await {
                tracing::info!(%account, "the refresh token held in memory is saved now");
                self.core.accounts.touch(&account, |a| a.last_error.clear());
            }
        }
    }

    /// Logs `account` out: revokes its refresh token where asked and possible, then forgets the
    /// account and its secrets (also when revocation failed).
    ///
    /// # Errors
    /// No such account, or the store or account file refused the deletion.
    pub async fn logout(
        &self,
        account: &str,
        revoke: bool,
    ) -> Result<(String, Revocation), CoreError> {
        let account = self.core.resolve_account(account)?;
        let name = account.name.clone();
        // No refresh may rotate the token while it is revoked and deleted.
        let _flight = self.flights.lock(&name).await;
        let revocation = if revoke {
            match self.revoke(&account).await {
                Ok(()) => Revocation::Revoked,
                Err(skip) => Revocation::Skipped(skip),
            }
        } else {
            Revocation::NotAsked
        };
        self.end(&name, Ending::Removed).await?;
        tracing::info!(account = %name, revoked = matches!(revocation, Revocation::Revoked), "logged out");
        Ok((name, revocation))
    }

    async fn revoke(&self, account: &AccountRecord) -> Result<(), RevokeSkip> {
        let core = &self.core;
        let config = core.provider(&account.provider)?;
        let endpoints = core.endpoints(&account.provider).await?;
        let issuer = endpoints
            .issuer
            .as_deref()
            .or(config.issuer.as_deref())
            .unwrap_or_default();
        if let Some(moved) = refresh::Moved::check(account, issuer, &endpoints.token_endpoint) {
            return Err(RevokeSkip::Moved(moved));
        }
        let endpoint = endpoints
            .revocation_endpoint
            .as_deref()
            .ok_or(RevokeSkip::NoEndpoint)?;
        let rt = self
            .unsaved
            .current(core, &account.name)
            .await
            .map_err(CoreError::from)?
            .ok_or(RevokeSkip::NoToken)?;
        let auth = core.client_auth(&account.provider).await?;
        crate::oauth::revoke::revoke(core.http(), endpoint, &auth, &rt).await?;
        Ok(())
    }

    /// The one sequence that ends a login, run under the account's refresh lock: what is in
    /// memory first (cached tokens, an unsaved refresh token, the backoff), then the secrets, then
    /// the account record, then the event.
    async fn end(&self, account: &str, ending: Ending) -> Result<(), CoreError> {
        let core = &self.core;
        self.cache.forget_account(account);
        self.unsaved.forget(account);
        self.failures.clear(account);
        self.failures.clear_keys(account);
        let deleted = core
            .secrets
            .delete(&store::refresh_token_key(account))
            .await;
        match ending {
            Ending::Removed => {
                deleted?;
                if let Err(e) = core.secrets.delete(&store::id_token_key(account)).await {
                    tracing::warn!(%account, error = %e, "could not delete the kept ID token");
                }
                core.accounts.update(|m| m.remove(account)).await?;
                core.emit(AccountEvent::new(account, EventKind::Removed));
            }
            Ending::LoginRequired(reason) => {
                tracing::warn!(%account, error = %reason, "refresh token rejected; login required");
                if let Err(e) = deleted {
                    tracing::warn!(%account, error = %e, "could not delete the rejected refresh token");
                }
                let mut ev = AccountEvent::new(account, EventKind::LoginRequired);
                ev.message.clone_from(&reason);
                let marked = core
                    .accounts
                    .update(|m| {
                        if let Some(a) = m.get_mut(account) {
                            a.login_required = true;
                            a.has_refresh_token = false;
                            a.last_error = reason;
                        }
                    })
                    .await;
                if let Err(e) = marked {
                    tracing::warn!(%account, error = %e, "could not record the login-required state");
                }
                core.emit(ev);
            }
        }
        Ok(())
    }

    /// The earliest expiry of `account`'s own (not downscoped) cached tokens.
    #[must_use]
    pub fn expiry(&self, account: &str) -> Option<i64> {
        self.cache.account_expiry(account)
    }

    /// The ID token of `account`'s freshest own token, if the agent holds one in memory.
    #[must_use]
    pub fn id_token(&self, account: &str) -> Option<SecretString> {
        self.cache
            .get(&TokenKey::new(account, &[], ""))
            .and_then(|t| t.id_token)
    }

    /// How `account` is doing.
    #[must_use]
    pub fn health(&self, a: &AccountRecord) -> Health {
        let no_token = self.expiry(&a.name).is_none_or(|e| e <= self.core.now());
        if a.login_required || (!a.has_refresh_token && no_token) {
            Health::LoginRequired
        } else if self.unsaved.holds(&a.name) {
            Health::NotSaved
        } else if a.last_error.is_empty() {
            Health::Ready
        } else {
            Health::Degraded
        }
    }

    /// Waits until no refresh is in flight, for a stop.
    pub async fn quiesce(&self) {
        self.flights.quiesce().await;
    }
}

/// `StoreError` reaches callers through the core's error.
impl From<StoreError> for ServeError {
    fn from(e: StoreError) -> Self {
        Self::Core(CoreError::Store(e))
    }
}
