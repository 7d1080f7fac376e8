//! The core every workflow stands on: where files live, the configuration, the secret store, the
//! account metadata, the provider HTTP client and discovered endpoints, account events, the clock,
//! activity and shutdown. It names no workflow type: serving tokens (`tokens`), logins (`login`)
//! and the socket (`server`) sit above it and own their own registries.

pub mod accounts;
pub mod clock;
pub mod error;
pub mod events;
mod routes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use secrecy::SecretString;
use tokio::sync::{broadcast, watch};

use self::accounts::{AccountDb, AccountRecord};
use self::clock::Clock;
pub use self::error::CoreError;
use self::events::AccountEvent;
use crate::config::{self, ClientAuthMethod, Config, ConfigError, ProviderConfig};
use crate::oauth::discovery::{self, Endpoints};
use crate::oauth::id_token::JwksCache;
use crate::oauth::token::{ClientAuth, HttpTokenEndpoint, TokenEndpoint};
use crate::paths::Paths;
use crate::store::{self, Secrets};

/// Events a receiver (a `Watch` stream, a refresh supervisor) may fall behind before it misses
/// some; one that does is told, and keeps receiving. Every slot is allocated and touched up
/// front, 144 bytes each: 1,024 were 144 kB of the agent's resident memory (bench rows 7).
const EVENT_BACKLOG: usize = 256;

/// See the module docs. Shared as `Arc<Core>`.
pub struct Core {
    pub paths: Paths,
    config: RwLock<Arc<Config>>,
    pub secrets: Secrets,
    pub accounts: AccountDb,
    http: Arc<HttpTokenEndpoint>,
    token_endpoint: Arc<dyn TokenEndpoint>,
    /// Discovery results by provider, until the next configuration change.
    endpoints: Mutex<HashMap<String, Arc<Endpoints>>>,
    /// The providers' ID-token signing keys.
    pub jwks: JwksCache,
    events: broadcast::Sender<AccountEvent>,
    shutdown: watch::Sender<bool>,
    activity: Activity,
    clock: Clock,
    /// Unix seconds when the agent started.
    pub started_at: i64,
}

/// When a client last asked for something, and how much work is in progress that an idle exit
/// must not cut off (logins, accounts being kept fresh).
#[derive(Default)]
struct Activity {
    last: AtomicI64,
    busy: AtomicUsize,
}

/// Work in progress: the agent does not exit for idleness while one lives.
pub struct Busy(Arc<Core>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.activity.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A provider to add to `config.toml` (and its client secret to the secret store).
pub struct NewProvider {
    pub name: String,
    pub config: ProviderConfig,
    /// Kept in the secret store; `None` removes a secret the provider had.
    pub client_secret: Option<SecretString>,
    /// Replace a provider of the same name.
    pub replace: bool,
    /// A comment written above the table.
    pub comment: Option<String>,
    /// Routes the provider serves by default (its preset's): each is added, to the provider's
    /// name, unless a route for the same tool and target exists.
    pub default_routes: Vec<(config::Tool, String)>,
}

impl Core {
    /// The core of a running agent: the system clock and the real provider HTTP client.
    #[must_use]
    pub fn new(paths: Paths, config: Config, secrets: Secrets, accounts: AccountDb) -> Arc<Self> {
        let http = Arc::new(HttpTokenEndpoint::new(std::time::Duration::from_secs(
            config.agent.http_timeout_seconds,
        )));
        let token_endpoint: Arc<dyn TokenEndpoint> = Arc::clone(&http) as _;
        Self::build(
            paths,
            config,
            secrets,
            accounts,
            http,
            token_endpoint,
            Clock::System,
        )
    }

    /// A core for unit tests of the workflows: memory store and accounts, a scripted token
    /// endpoint and tokio's clock.
    #[cfg(test)]
    #[must_use]
    pub fn for_tests(
        config: Config,
        store: Arc<dyn store::SecretStore>,
        token_endpoint: Arc<dyn TokenEndpoint>,
    ) -> Arc<Self> {
        let paths = Paths {
            config_file: "/nonexistent/config.toml".into(),
            data_dir: "/nonexistent".into(),
            socket: "/nonexistent/agent.sock".into(),
            state_dir: "/nonexistent/state".into(),
        };
        let secrets = Secrets::new(store, "memory", "memory".into());
        let http = Arc::new(HttpTokenEndpoint::new(std::time::Duration::from_secs(5)));
        Self::build(
            paths,
            config,
            secrets,
            AccountDb::in_memory(),
            http,
            token_endpoint,
            Clock::tokio(1_000_000),
        )
    }

    fn build(
        paths: Paths,
        config: Config,
        secrets: Secrets,
        accounts: AccountDb,
        http: Arc<HttpTokenEndpoint>,
        token_endpoint: Arc<dyn TokenEndpoint>,
        clock: Clock,
    ) -> Arc<Self> {
        let now = clock.now();
        Arc::new(Self {
            paths,
            config: RwLock::new(Arc::new(config)),
            secrets,
            accounts,
            http,
            token_endpoint,
            endpoints: Mutex::new(HashMap::new()),
            jwks: JwksCache::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
            shutdown: watch::channel(false).0,
            activity: Activity {
                last: AtomicI64::new(now),
                busy: AtomicUsize::new(0),
            },
            clock,
            started_at: now,
        })
    }

    /// Unix seconds now.
    #[must_use]
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The HTTP client for provider and resource requests.
    pub fn http(&self) -> &reqwest::Client {
        self.http.client()
    }

    /// The token endpoint seam (the provider over HTTP, or a script in unit tests).
    #[must_use]
    pub fn token_endpoint(&self) -> &dyn TokenEndpoint {
        self.token_endpoint.as_ref()
    }

    // --- activity and shutdown ---

    /// Notes a client request.
    pub fn touch(&self) {
        self.activity.last.store(self.now(), Ordering::Relaxed);
    }

    /// Marks work in progress until the guard drops.
    #[must_use]
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.activity.busy.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    /// Seconds since the last client request, and whether any work is in progress.
    #[must_use]
    pub fn idleness(&self) -> (i64, bool) {
        (
            self.now() - self.activity.last.load(Ordering::Relaxed),
            self.activity.busy.load(Ordering::Relaxed) > 0,
        )
    }

    /// Begins a graceful stop.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Whether a stop has begun.
    #[must_use]
    pub fn is_stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when a stop begins.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }

    // --- events ---

    /// Publishes an account event (none listening is fine).
    pub fn emit(&self, event: AccountEvent) {
        let _ = self.events.send(event);
    }

    /// Account events from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<AccountEvent> {
        self.events.subscribe()
    }

    // --- configuration ---

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

    /// What is wrong with `config.toml` as it is on disk now, if anything (the running
    /// configuration is whatever loaded last).
    #[must_use]
    pub fn config_problem(&self) -> Option<ConfigError> {
        Config::load(&self.paths.config_file).err()
    }

    /// Re-reads `config.toml`; returns the number of providers.
    ///
    /// # Errors
    /// The file is invalid; the running configuration stays as it was.
    pub fn reload(&self) -> Result<usize, CoreError> {
        let config =
            Config::load(&self.paths.config_file).map_err(|e| CoreError::Reload(Box::new(e)))?;
        let n = config.providers.len();
        self.set_config(config);
        tracing::info!(providers = n, "configuration reloaded");
        Ok(n)
    }

    /// A provider's configuration.
    ///
    /// # Errors
    /// No such provider.
    pub fn provider(&self, name: &str) -> Result<ProviderConfig, CoreError> {
        self.config()
            .providers
            .get(name)
            .cloned()
            .ok_or_else(|| CoreError::NoSuchProvider(name.to_owned()))
    }

    /// Adds (or replaces) a provider in `config.toml`, keeping the file's comments, and its client
    /// secret in the secret store (never in the file). Returns whether a secret is kept.
    ///
    /// # Errors
    /// An invalid provider, one that exists (without `replace`), the file or the store failing.
    pub async fn add_provider(&self, new: NewProvider) -> Result<bool, CoreError> {
        config::validate_provider(&new.name, &new.config).map_err(ConfigError::from)?;
        let config = config::edit_providers(&self.paths.config_file, |t| {
            if t.contains_key(&new.name) && !new.replace {
                return Err(ConfigError::ProviderExists(new.name.clone()));
            }
            let mut table = config::provider_table(&new.config);
            if let Some(c) = &new.comment {
                table.decor_mut().set_prefix(format!("\n# {c}\n"));
            }
            t.insert(&new.name, toml_edit::Item::Table(table));
            Ok(())
        })?;
        let key = store::client_secret_key(&new.name);
        let has_secret = new.client_secret.is_some();
        if let Some(s) = new.client_secret {
            self.secrets.set(&key, s).await?;
        } else {
            self.secrets.delete(&key).await?;
        }
        self.set_config(config);
        tracing::info!(provider = %new.name, "provider added");
        for (tool, target) in new.default_routes {
            let route = config::RouteConfig {
                tool,
                target: target.clone(),
                account: new.name.clone(),
                scopes: Vec::new(),
                resource: None,
                username: None,
            };
            match self.add_route(route, false) {
                Ok(()) => {}
                Err(CoreError::Config(e)) if matches!(*e, ConfigError::RouteExists { .. }) => {}
                Err(e) => {
                    tracing::warn!(provider = %new.name, tool = tool.name(), %target, error = %e, "could not add the preset's default route");
                }
            }
        }
        Ok(has_secret)
    }

    /// Removes a provider that has no account, and its client secret.
    ///
    /// # Errors
    /// It still has accounts, it does not exist, or the file or the store failed.
    pub async fn remove_provider(&self, name: &str) -> Result<(), CoreError> {
        let users: Vec<String> = self
            .accounts
            .all()
            .into_iter()
            .filter(|a| a.provider == name)
            .map(|a| a.name)
            .collect();
        if !users.is_empty() {
            return Err(CoreError::ProviderInUse {
                provider: name.to_owned(),
                accounts: users.join(", "),
            });
        }
        let config = config::edit_providers(&self.paths.config_file, |t| {
            t.remove(name)
                .map(|_| ())
                .ok_or_else(|| ConfigError::NoSuchProvider(name.to_owned()))
        })
        .map_err(|e| match e {
            ConfigError::NoSuchProvider(n) => CoreError::NoSuchProvider(n),
            e => CoreError::from(e),
        })?;
        self.secrets.delete(&store::client_secret_key(name)).await?;
        self.set_config(config);
        tracing::info!(provider = %name, "provider removed");
        Ok(())
    }

    /// A provider's endpoints, discovered once and cached until the next configuration change.
    ///
    /// # Errors
    /// Unknown provider or failed discovery.
    pub async fn endpoints(&self, provider: &str) -> Result<Arc<Endpoints>, CoreError> {
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
    /// Unknown provider, or the secret store failed.
    pub async fn client_auth(&self, provider: &str) -> Result<ClientAuth, CoreError> {
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

    // --- accounts ---

    /// Resolves what a caller named: an account, or a provider with exactly one account.
    ///
    /// # Errors
    /// Nothing matches (a provider without an account: login required), or a provider with
    /// several accounts was named.
    pub fn resolve_account(&self, name: &str) -> Result<AccountRecord, CoreError> {
        if let Some(a) = self.accounts.get(name) {
            return Ok(a);
        }
        let mut of_provider: Vec<AccountRecord> = self
            .accounts
            .all()
            .into_iter()
            .filter(|a| a.provider == name)
            .collect();
        match of_provider.len() {
            1 => Ok(of_provider.swap_remove(0)),
            0 if self.config().providers.contains_key(name) => {
                Err(CoreError::NoAccountYet(name.to_owned()))
            }
            0 => Err(CoreError::NoSuchAccount(name.to_owned())),
            _ => Err(CoreError::AmbiguousAccount {
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
