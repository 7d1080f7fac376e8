//! Logins: the loopback authorization-code flow (RFC 8252, PKCE), the device flow (RFC 8628),
//! on-demand logins an app asks for, zero-configuration logins to a protected resource, and the
//! sign-out at the provider. Every flow ends in the same [`finish`] step, which hands the tokens to
//! [`Tokens`] to store.

mod browser;
mod code;
mod device;
mod endsession;
mod error;
mod finish;
mod loopback;
mod ondemand;
mod peer;
mod zeroconf;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use self::error::{LoginError, LoginFailure, Refusal};
#[cfg(feature = "fuzzing")]
pub use self::loopback::{Routes, Verdict, judge};
use self::ondemand::OnDemand;
#[cfg(feature = "fuzzing")]
pub use self::peer::parse_table;
pub use self::zeroconf::is_resource;
use crate::config::{self, ProviderConfig};
use crate::core::Core;
use crate::core::accounts::AccountRecord;
use crate::tokens::Tokens;

/// The longest a login (or a sign-out at the provider) waits for the user, whatever is asked.
pub const MAX_LOGIN_TIMEOUT: Duration = Duration::from_secs(3600);

/// What a login asks.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    /// A provider name, an existing account's name (re-login in place), or a resource URL
    /// (zero-configuration login).
    pub target: String,
    pub account_name: Option<String>,
    pub scopes: Vec<String>,
    pub timeout: Option<Duration>,
    /// Use the device authorization grant (RFC 8628) instead of the loopback redirect.
    pub device: bool,
    /// Refuse a login of an existing account as another user: every re-login, unless
    /// `other_user` says the account is to become another user's.
    pub same_subject: bool,
    /// Let a re-login come back as another user.
    pub other_user: bool,
}

/// Progress a login reports to its caller.
#[derive(Debug)]
pub enum Progress {
    AuthorizeUrl {
        url: String,
        redirect_uri: String,
    },
    DeviceCode {
        verification_uri: String,
        verification_uri_complete: String,
        user_code: String,
        expires_at: i64,
    },
}

/// The outcome.
#[derive(Debug)]
pub struct LoginOutcome {
    pub account: AccountRecord,
    /// Non-fatal problems a person should know about.
    pub warnings: Vec<String>,
}

/// Who and where a login is for, once planned.
struct Target {
    provider_name: String,
    provider: ProviderConfig,
    account_name: String,
    scopes: Vec<String>,
}

/// The logins of the agent over its [`Tokens`]. Shared as `Arc<Logins>`.
pub struct Logins {
    tokens: Arc<Tokens>,
    on_demand: OnDemand,
    /// One resource set-up at a time: two first logins to the same resource at once register one
    /// client, and the second finds the first's provider.
    resource_setup: tokio::sync::Mutex<()>,
}

impl Logins {
    /// Logins over `tokens`.
    #[must_use]
    pub fn new(tokens: Arc<Tokens>) -> Arc<Self> {
        Arc::new(Self {
            tokens,
            on_demand: OnDemand::default(),
            resource_setup: tokio::sync::Mutex::new(()),
        })
    }

    /// Token serving below.
    #[must_use]
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The core below.
    #[must_use]
    pub fn core(&self) -> &Arc<Core> {
        self.tokens.core()
    }

    /// Runs a login, reporting progress on `progress`.
    ///
    /// # Errors
    /// Unknown provider, discovery failure, a listener that cannot bind, the user not finishing
    /// in time, the provider's error, or a failed check.
    pub async fn login(
        &self,
        mut req: LoginRequest,
        progress: mpsc::Sender<Progress>,
    ) -> Result<LoginOutcome, LoginError> {
        let core = self.core();
        // An agent waiting for a user's login is not idle.
        let _busy = core.busy();
        req.timeout = req.timeout.map(|t| t.min(MAX_LOGIN_TIMEOUT));
        // `Url::parse` drops tabs and newlines silently: a target holding them is refused, so what
        // is remembered (and written into config.toml) is exactly what was asked.
        if req.target.chars().any(char::is_control) {
            return Err(LoginError::ControlCharacters(
                req.target.escape_debug().to_string(),
            ));
        }
        if zeroconf::is_resource(&req.target) {
            req.target = self.provider_for_resource(&req.target).await?;
        }
        let target = plan(core, &req)?;
        // A re-login in place stays with its user: another identity picked in the provider's
        // account chooser (or injected) must not take the account over unasked.
        if !req.other_user && core.accounts.get(&target.account_name).is_some() {
            req.same_subject = true;
        }
        let obtained = if req.device {
            device::run(core, &req, &target, &progress).await?
        } else {
            code::run(core, &req, &target, &progress).await?
        };
        finish::finish(&self.tokens, &req, target, obtained).await
    }
}

/// Which provider and account name a login is for, and its scopes.
fn plan(core: &Core, req: &LoginRequest) -> Result<Target, LoginError> {
    let config = core.config();
    let (provider_name, named) = if config.providers.contains_key(&req.target) {
        (req.target.clone(), req.account_name.clone())
    } else if let Some(a) = core.accounts.get(&req.target) {
        (a.provider, Some(a.name))
    } else {
        return Err(crate::core::CoreError::NoSuchProvider(req.target.clone()).into());
    };
    let provider = core.provider(&provider_name)?;
    let scopes = login_scopes(&provider, &req.scopes);
    let target = |account_name: String| Target {
        provider_name: provider_name.clone(),
        provider: provider.clone(),
        account_name,
        scopes: scopes.clone(),
    };
    if let Some(name) = named {
        if !config::valid_name(&name) {
            return Err(LoginError::BadAccountName(name));
        }
        if let Some(existing) = core.accounts.get(&name)
            && existing.provider != provider_name
        {
            return Err(LoginError::AccountElsewhere {
                account: name,
                provider: existing.provider,
            });
        }
        return Ok(target(name));
    }
    let mine: Vec<AccountRecord> = core
        .accounts
        .all()
        .into_iter()
        .filter(|a| a.provider == provider_name)
        .collect();
    match mine.as_slice() {
        [] if core.accounts.get(&provider_name).is_some() => {
            Err(LoginError::NameTaken(provider_name.clone()))
        }
        [] => Ok(target(provider_name.clone())),
        [only] => Ok(target(only.name.clone())),
        many => Err(crate::core::CoreError::AmbiguousAccount {
            provider: provider_name.clone(),
            accounts: many
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
    }
}

/// The scopes of a login: asked, else configured, else (OIDC) `openid offline_access`.
fn login_scopes(p: &ProviderConfig, asked: &[String]) -> Vec<String> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    if !p.scopes.is_empty() {
        return p.scopes.clone();
    }
    if p.issuer.is_some() {
        return vec!["openid".into(), "offline_access".into()];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scopes() {
        let p = ProviderConfig {
            issuer: Some("https://i".into()),
            ..ProviderConfig::default()
        };
        assert_eq!(login_scopes(&p, &[]), vec!["openid", "offline_access"]);
        let p = ProviderConfig::default();
        assert!(login_scopes(&p, &[]).is_empty());
        assert_eq!(login_scopes(&p, &["repo".into()]), vec!["repo"]);
    }
}
