//! Why a token could not be served.

use crate::core::CoreError;
use crate::oauth::id_token::IdTokenError;
use crate::oauth::token::TokenError;

/// A failure serving a token. Messages name the account or provider and what to do next; none
/// contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("account `{account}` needs a login: run `authctl login {account}`{}", if reason.is_empty() { String::new() } else { format!(" ({reason})") })]
    LoginRequired { account: String, reason: String },
    #[error(
        "provider `{provider}` is unavailable: {source}; the refresh token is kept, try again later"
    )]
    ProviderUnavailable {
        provider: String,
        source: TokenError,
    },
    #[error("provider `{provider}` refused the request: {source}")]
    ProviderRefused {
        provider: String,
        source: TokenError,
    },
    /// The provider refused one downscoped key; the account and its other keys stay usable.
    #[error(transparent)]
    KeyRefused(Box<Refusal>),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("the agent is stopping; retry in a moment")]
    Stopping,
    #[error("the refresh task failed: {0}")]
    RefreshTask(#[from] tokio::task::JoinError),
}

/// A key the provider refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "provider `{provider}` refused {key} for account `{account}`: {source}; the account's other tokens are unaffected (asked again in {retry_in} s at the earliest)"
)]
pub struct Refusal {
    pub provider: String,
    pub account: String,
    pub key: String,
    pub source: TokenError,
    pub retry_in: u64,
}

impl ServeError {
    /// Whether a login would help: the account's login ended, or a provider without an account
    /// was named.
    #[must_use]
    pub fn needs_login(&self) -> bool {
        matches!(
            self,
            Self::LoginRequired { .. } | Self::Core(CoreError::NoAccountYet(_))
        )
    }
}
