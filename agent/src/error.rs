//! The agent's error type, and the only place errors become gRPC statuses. Every message says what
//! failed, for what, and what to do next; none contains a secret.

use tonic::{Code, Status};

use crate::accounts::AccountsError;
use crate::config::ConfigError;
use crate::oauth::discovery::DiscoveryError;
use crate::oauth::id_token::IdTokenError;
use crate::oauth::token::TokenError;
use crate::store::StoreError;

/// Everything that can go wrong serving a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error(
        "no provider named `{0}`; see `authctl provider list`, or add one with `authctl provider add`"
    )]
    NoSuchProvider(String),
    #[error(
        "no account named `{0}`; see `authctl status`, or log in with `authctl login PROVIDER`"
    )]
    NoSuchAccount(String),
    #[error("provider `{provider}` has several accounts ({accounts}); name one")]
    AmbiguousAccount { provider: String, accounts: String },
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
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("secret store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("the login was not completed within {0} seconds; run `authctl login` again when ready")]
    LoginTimeout(u64),
    #[error("the login failed: {0}")]
    LoginFailed(String),
    #[error("the sign-out at the provider did not complete: {0}")]
    EndSession(String),
    #[error("the agent is stopping; retry in a moment")]
    Stopping,
    /// An error of a task shared by several callers (an on-demand login), relayed to each.
    #[error("{message}")]
    Relayed { code: Code, message: String },
    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    /// The gRPC code a client can act on.
    #[must_use]
    pub fn code(&self) -> Code {
        match self {
            Self::NoSuchProvider(_) | Self::NoSuchAccount(_) => Code::NotFound,
            Self::AmbiguousAccount { .. } | Self::InvalidArgument(_) | Self::Config(_) => {
                Code::InvalidArgument
            }
            // FAILED_PRECONDITION means exactly "login required" to clients.
            Self::LoginRequired { .. } => Code::FailedPrecondition,
            Self::ProviderUnavailable { .. } | Self::Store(_) => Code::Unavailable,
            Self::Discovery(d) if d.is_transient() => Code::Unavailable,
            // A wrong issuer or a provider refusing the request's scope/resource: the request or
            // the provider configuration must change.
            Self::Discovery(_) | Self::ProviderRefused { .. } => Code::InvalidArgument,
            Self::Relayed { code, .. } => *code,
            Self::Stopping => Code::Unavailable,
            Self::LoginTimeout(_) => Code::DeadlineExceeded,
            Self::LoginFailed(_) | Self::IdToken(_) | Self::EndSession(_) => Code::Aborted,
            Self::Accounts(_) | Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<AgentError> for Status {
    fn from(e: AgentError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}

/// A reqwest error with its causes, for messages (URLs of endpoints are not secrets; request
/// bodies never appear in reqwest errors).
#[must_use]
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
