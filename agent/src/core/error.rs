//! The core's errors: names that resolve to nothing, configuration, discovery, the stores.

use crate::config::ConfigError;
use crate::oauth::discovery::DiscoveryError;
use crate::store::StoreError;

use super::accounts::AccountsError;

/// A failure of the core. Every message says what failed, for what, and what to do next; none
/// contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
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
    /// A provider was named that has no account yet: a first login creates one.
    #[error("account `{0}` needs a login: run `authctl login {0}` (provider has no account yet)")]
    NoAccountYet(String),
    #[error(
        "provider `{provider}` still has accounts ({accounts}); log them out first with `authctl logout`"
    )]
    ProviderInUse { provider: String, accounts: String },
    /// No `[[route]]` covers a tool's target.
    #[error(
        "no {tool} route for `{target}`; add one with `authctl route add {tool} {target} ACCOUNT`"
    )]
    NoRoute { tool: &'static str, target: String },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error("{0}; the agent keeps running with the configuration it loaded before")]
    Reload(Box<ConfigError>),
    #[error("secret store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
}

impl From<ConfigError> for CoreError {
    fn from(e: ConfigError) -> Self {
        Self::Config(Box::new(e))
    }
}
