//! The agent's shared state: a cheap-to-clone [`AgentHandle`] over `Arc<AgentState>`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use secrecy::SecretString;

use crate::accounts::{AccountDb, AccountRecord};
use crate::cache::TokenCache;
use crate::config::{ClientAuthMethod, Config, ProviderConfig};
use crate::error::AgentError;
use crate::oauth::discovery::{self, Endpoints};
use crate::oauth::token::{ClientAuth, TokenError};
use crate::paths::Paths;
use crate::store::{self, Secrets};
use authctl_proto::v1::{WatchEvent, WatchEventKind};

/// Everything the agent owns.
pub struct AgentState {
    pub paths: Paths,
    config: RwLock<Arc<Config>>,
    pub secrets: Secrets,
    pub accounts: AccountDb,
    /// Built on first use: loading the root certificates is the costliest part of start-up, and
    /// a cache-hit request never needs it.
    http: std::sync::OnceLock<reqwest::Client>,
    http_timeout: Duration,
    endpoints: Mutex<HashMap<String, Arc<Endpoints>>>,
    pub cache: TokenCache,
    /// Rotated refresh tokens whose durable write failed: used before the store's copy, and
    /// written again at the next chance.
    pub unsaved: Mutex<HashMap<String, SecretString>>,
    pub started_at: i64,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub supervisors: crate::supervisor::Supervisors,
    /// Account events for the `Watch` RPC.
    pub events: tokio::sync::broadcast::Sender<authctl_proto::v1::WatchEvent>,
    /// Per-account transient-failure state: the backoff and when the next attempt may go out.
    failures: Mutex<HashMap<String, Failure>>,
    /// Unix seconds of the last client request (for `idle_timeout_seconds`).
    pub last_activity: std::sync::atomic::AtomicI64,
    /// Logins in progress (an idle exit must not cut one off).
    pub logins_in_flight: std::sync::atomic::AtomicUsize,
    /// Shared on-demand logins (`GetToken{interactive}`).
    pub ondemand: crate::ondemand::OnDemand,
}

struct Failure {
    backoff: crate::backoff::Backoff,
    retry_at: std::time::Instant,
    last: TokenError,
}

/// A handle to the state.
pub type AgentHandle = Arc<AgentState>;

/// Unix seconds now.
#[must_use]
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AgentState {
    /// The HTTP client for provider calls.
    pub fn http(&self) -> &reqwest::Client {
        self.http
            .get_or_init(|| crate::oauth::http_client(self.http_timeout))
    }

    /// Builds the state.
    #[must_use]
    pub fn new(paths: Paths, config: Config, secrets: Secrets, accounts: AccountDb) -> AgentHandle {
        let http_timeout = Duration::from_secs(config.agent.http_timeout_seconds);
        Arc::new(Self {
            paths,
            config: RwLock::new(Arc::new(config)),
            secrets,
            accounts,
            http: std::sync::OnceLock::new(),
            http_timeout,
            endpoints: Mutex::new(HashMap::new()),
            cache: TokenCache::default(),
            unsaved: Mutex::new(HashMap::new()),
            started_at: now_unix(),
            shutdown: tokio::sync::watch::channel(false).0,
            supervisors: crate::supervisor::Supervisors::default(),
            events: tokio::sync::broadcast::channel(1024).0,
            failures: Mutex::new(HashMap::new()),
            last_activity: std::sync::atomic::AtomicI64::new(now_unix()),
            logins_in_flight: std::sync::atomic::AtomicUsize::new(0),
            ondemand: crate::ondemand::OnDemand::default(),
        })
    }

    /// Notes a client request.
    pub fn touch_activity(&self) {
        self.last_activity
            .store(now_unix(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Drops every cached access token of `account` and any unsaved rotated refresh token.
    pub fn forget_tokens(&self, account: &str) {
        self.cache.forget_account(account);
        self.unsaved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(account);
    }

    /// Publishes an account event to `Watch` subscribers (none listening is fine).
    pub fn emit(&self, account: &str, kind: WatchEventKind, f: impl FnOnce(&mut WatchEvent)) {
        let mut ev = WatchEvent {
            account: account.to_owned(),
            kind: kind.into(),
            ..WatchEvent::default()
        };
        f(&mut ev);
        let _ = self.events.send(ev);
    }

    /// Records a transient failure of `account`'s refresh; returns how long to wait.
    pub fn record_failure(&self, account: &str, e: &TokenError) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let f = map.entry(account.to_owned()).or_insert_with(|| Failure {
            backoff: crate::backoff::Backoff::default(),
            retry_at: std::time::Instant::now(),
            last: e.clone(),
        });
        let wait = f.backoff.next_delay(e.retry_after(), rand::random::<f64>());
        f.retry_at = std::time::Instant::now() + wait;
        f.last = e.clone();
        wait
    }

    /// Clears `account`'s failure state after a success.
    pub fn clear_failure(&self, account: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(account);
    }

    /// While `account` backs off: the time left and the error that caused it.
    #[must_use]
    pub fn backoff_state(&self, account: &str) -> Option<(Duration, TokenError)> {
        let map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let f = map.get(account)?;
        let left = f
            .retry_at
            .checked_duration_since(std::time::Instant::now())?;
        Some((left, f.last.clone()))
    }

    /// While `account` backs off: the time left.
    #[must_use]
    pub fn backoff_remaining(&self, account: &str) -> Option<Duration> {
        self.backoff_state(account).map(|(d, _)| d)
    }

    /// The current configuration.
    #[must_use]
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the configuration; discovery results are dropped, cached tokens kept.
    pub fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Re-reads `config.toml`.
    ///
    /// # Errors
    /// The file is invalid; the running configuration stays as it was.
    pub fn reload(&self) -> Result<usize, AgentError> {
        let config = Config::load(&self.paths.config_file)?;
        let n = config.providers.len();
        self.set_config(config);
        tracing::info!(providers = n, "configuration reloaded");
        Ok(n)
    }

    /// A provider's configuration.
    ///
    /// # Errors
    /// No such provider.
    pub fn provider(&self, name: &str) -> Result<ProviderConfig, AgentError> {
        self.config()
            .providers
            .get(name)
            .cloned()
            .ok_or_else(|| AgentError::NoSuchProvider(name.to_owned()))
    }

    /// How long a browser flow at `provider` waits for the user: its own `login_timeout_seconds`,
    /// else the agent's.
    #[must_use]
    pub fn login_timeout(&self, provider: &ProviderConfig) -> Duration {
        Duration::from_secs(
            provider
                .login_timeout_seconds
                .unwrap_or(self.config().agent.login_timeout_seconds),
        )
    }

    /// A provider's endpoints, discovered once and cached until the next reload.
    ///
    /// # Errors
    /// Unknown provider or failed discovery.
    pub async fn endpoints(&self, provider: &str) -> Result<Arc<Endpoints>, AgentError> {
        if let Some(ep) = self
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
        {
            return Ok(Arc::clone(ep));
        }
        let config = self.provider(provider)?;
        let ep = Arc::new(discovery::resolve(self.http(), &config).await?);
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(provider.to_owned(), Arc::clone(&ep));
        Ok(ep)
    }

    /// How the client authenticates at this provider's token endpoint.
    ///
    /// # Errors
    /// The secret store failed.
    pub async fn client_auth(&self, provider: &str) -> Result<ClientAuth, AgentError> {
        let config = self.provider(provider)?;
        let secret = self
            .secrets
            .get(&store::client_secret_key(provider))
            .await?;
        let method = match (config.token_endpoint_auth_method, &secret) {
            (Some(m), _) => m,
            (None, Some(_)) => ClientAuthMethod::ClientSecretBasic,
            (None, None) => ClientAuthMethod::None,
        };
        Ok(ClientAuth {
            client_id: config.client_id,
            secret,
            method,
        })
    }

    /// Resolves what a caller named: an account, or a provider with exactly one account.
    ///
    /// # Errors
    /// Nothing matches, or a provider with several accounts was named.
    pub fn resolve_account(&self, name: &str) -> Result<AccountRecord, AgentError> {
        if let Some(a) = self.accounts.get(name) {
            return Ok(a);
        }
        let of_provider: Vec<AccountRecord> = self
            .accounts
            .all()
            .into_iter()
            .filter(|a| a.provider == name)
            .collect();
        match of_provider.len() {
            1 => Ok(of_provider
                .into_iter()
                .next()
                .unwrap_or_else(|| unreachable!())),
            0 if self.config().providers.contains_key(name) => Err(AgentError::LoginRequired {
                account: name.to_owned(),
                reason: "provider has no account yet".into(),
            }),
            0 => Err(AgentError::NoSuchAccount(name.to_owned())),
            _ => Err(AgentError::AmbiguousAccount {
                provider: name.to_owned(),
                accounts: of_provider
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}
