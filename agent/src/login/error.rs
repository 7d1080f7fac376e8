//! Why a login (or a sign-out at the provider) did not complete.

use std::sync::Arc;

use crate::config::ProviderInvalid;
use crate::core::CoreError;
use crate::oauth::device::{DeviceError, PollFailure};
use crate::oauth::discovery::DiscoveryError;
use crate::oauth::id_token::IdTokenError;
use crate::oauth::registration::RegistrationError;
use crate::oauth::resource::ResourceError;
use crate::oauth::token::TokenError;
use crate::tokens::ServeError;

use super::browser::BrowserError;
use super::loopback::LoopbackError;

/// A failure of a login request. Messages say what failed and what to do next; none contains a
/// code, a verifier or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("account name `{0}` must be 1-64 letters, digits, '.', '_' or '-'")]
    BadAccountName(String),
    #[error(
        "account `{account}` already exists at provider `{provider}`; choose another --account name"
    )]
    AccountElsewhere { account: String, provider: String },
    #[error("an account named `{0}` exists at another provider; pass --account NAME")]
    NameTaken(String),
    #[error(
        "provider `{0}` has no device authorization endpoint; set `device_authorization_endpoint` in config.toml, or log in without --device"
    )]
    NoDeviceEndpoint(String),
    #[error("provider `{provider}` has an invalid {key}: {source}")]
    BadEndpoint {
        provider: String,
        key: &'static str,
        source: url::ParseError,
    },
    #[error("`{target}` is not a valid URL: {source}")]
    BadTarget {
        target: String,
        source: url::ParseError,
    },
    #[error("the login target \"{0}\" contains control characters (tab, newline, …); refused")]
    ControlCharacters(String),
    #[error("the resource URL is refused: {0}")]
    InsecureTarget(crate::config::UrlProblem),
    #[error("the login failed: {0}")]
    Failed(#[from] LoginFailure),
    #[error("the login was not completed within {0} seconds; run `authctl login` again when ready")]
    Timeout(u64),
    #[error("the sign-out at the provider did not complete: {0}")]
    EndSession(#[from] EndSessionFailure),
    /// The failure of a login shared by several callers (an on-demand login), told to each.
    #[error(transparent)]
    Shared(Arc<LoginError>),
    /// An on-demand login ran recently (and failed, or did not satisfy the caller): no new one
    /// opens the browser yet.
    #[error(
        "account `{account}` needs a login: run `authctl login {account}` ({}; the agent starts no new one for {wait}s — run `authctl login {account}` to log in now)",
        match reason {
            Some(r) => format!("an on-demand login failed {ago}s ago ({r})"),
            None => format!("an on-demand login completed {ago}s ago, yet a login is needed again (the provider issued no refresh token, or did not grant what was asked)"),
        }
    )]
    CoolingDown {
        account: String,
        ago: u64,
        wait: u64,
        reason: Option<Arc<LoginError>>,
    },
    #[error("the login task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl LoginError {
    /// Whether this is the login's own outcome (told to the user as a failed login), rather than
    /// a problem with the request or the agent.
    #[must_use]
    pub fn is_outcome(&self) -> bool {
        match self {
            // A resource whose metadata is refused, or unreachable, is a problem with the request
            // (or the network), told with its own code.
            Self::Failed(LoginFailure::Resource { reason, .. }) => reason.refusal().is_none(),
            Self::IdToken(_) | Self::Failed(_) | Self::Timeout(_) | Self::EndSession(_) => true,
            Self::Shared(e) => e.is_outcome(),
            _ => false,
        }
    }
}

/// How a login failed once under way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginFailure {
    #[error(
        "the authorization response came from issuer `{got}`, not `{want}` (RFC 9207 mix-up protection); the login was aborted"
    )]
    IssuerMixup { got: String, want: String },
    #[error(
        "the provider advertises RFC 9207 but its response carries no `iss`; the login was aborted"
    )]
    IssMissing,
    #[error("the provider answered `{error}`{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        error: String,
        description: Option<String>,
    },
    #[error("the callback carries neither a code nor an error")]
    NoCode,
    #[error("the code exchange failed: {0}")]
    Exchange(TokenError),
    #[error("the provider sent an ID token but has no jwks_uri to verify it")]
    NoJwksUri,
    #[error(
        "the browser login was for another user (subject `{got}`) than account `{account}` (subject `{existing}`); nothing was changed — log in as that user, run `authctl login {account} --other-user` to make the account the new user's, or `authctl login PROVIDER --account NAME` for a second account"
    )]
    OtherUser {
        account: String,
        got: String,
        existing: String,
    },
    #[error(transparent)]
    Loopback(#[from] LoopbackError),
    #[error("cannot log in to the resource {target}: {reason}")]
    Resource {
        target: String,
        reason: ResourceSetup,
    },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(
        "the device code expired after {0} seconds before the login was completed; run the login again"
    )]
    DeviceCodeExpired(u64),
    #[error(transparent)]
    Poll(#[from] PollFailure),
    #[error(
        "`{target}` needs a login but the agent could not open a browser ({reason}); run `authctl login {target}` in a terminal (with --device on a machine without a browser)"
    )]
    NoBrowser {
        target: String,
        reason: BrowserError,
    },
}

/// Why a zero-configuration login could not set up a provider for a resource.
#[derive(Debug, thiserror::Error)]
pub enum ResourceSetup {
    #[error(transparent)]
    Metadata(#[from] ResourceError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(
        "its authorization server {issuer} offers no dynamic client registration (RFC 7591); register a native client there, then `authctl provider add NAME --issuer {issuer} --client-id ID --resource {target}` and `authctl login NAME`"
    )]
    NoRegistration { issuer: String, target: String },
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    #[error(transparent)]
    Invalid(#[from] ProviderInvalid),
}

/// What kind of refusal a zero-configuration set-up failure is, when it is not the login's own
/// outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// An endpoint the resource or its authorization server names is refused (not https off
    /// loopback, not http(s) at all): the target must change.
    Insecure,
    /// The resource or its authorization server cannot be reached now.
    Unavailable,
}

impl ResourceSetup {
    /// See [`Refusal`]; `None`: a failed login.
    #[must_use]
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Metadata(ResourceError::Insecure { .. })
            | Self::Discovery(DiscoveryError::Insecure { .. }) => Some(Refusal::Insecure),
            Self::Metadata(ResourceError::Unreachable { .. }) => Some(Refusal::Unavailable),
            Self::Discovery(d) if d.is_transient() => Some(Refusal::Unavailable),
            _ => None,
        }
    }
}

/// How an end-session (RP-initiated logout) failed.
#[derive(Debug, thiserror::Error)]
pub enum EndSessionFailure {
    #[error(
        "provider `{0}` offers no end_session_endpoint (RP-initiated logout); set `end_session_endpoint` in config.toml if it has one"
    )]
    NoEndpoint(String),
    #[error("provider `{provider}` has an invalid end_session_endpoint: {source}")]
    BadEndpoint {
        provider: String,
        source: url::ParseError,
    },
    #[error(transparent)]
    Loopback(#[from] LoopbackError),
    #[error(
        "the provider did not send the browser back within {0} seconds (it may need the sign-out confirmed in the browser, or not accept the loopback post_logout_redirect_uri)"
    )]
    NoReturn(u64),
}
