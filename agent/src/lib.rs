//! `authctl-agent`: the per-user OAuth/OIDC credential daemon.
//!
//! It owns the provider registry, the account store, the token cache and the loopback logins, and
//! serves the gRPC API of [`authctl_proto`] on a Unix socket that admits only its own user.
//! [`run`] is the whole daemon; the binary only parses flags and calls it.
//!
//! The layers, each above the one before: `core` (paths, configuration, secret store, accounts,
//! HTTP, events; built from `config`, `store`, `oauth`), `tokens` (serving and refreshing),
//! `login` (every login flow), `server` (the socket and the RPC handlers). This file composes them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let activated = authctl_agent::take_activated()?; // before any thread starts
//! let paths = authctl_agent::Paths::from_env()?;
//! authctl_agent::run(paths, activated).await?;
//! # Ok(()) }
//! ```

mod access;
mod config;
mod core;
mod fsutil;
mod hardening;
mod lifecycle;
mod login;
mod oauth;
mod paths;
mod ratelog;
mod server;
mod shape;
mod store;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

pub use crate::lifecycle::init_logging;
pub use crate::paths::{PathError, Paths};
pub use crate::server::{Activated, take_activated};

use crate::access::Access;
use crate::config::{Config, ConfigError};
use crate::core::Core;
use crate::core::accounts::{AccountDb, AccountsError};
use crate::login::Logins;
use crate::tokens::Tokens;

/// Entry points for `cargo fuzz` (the `fuzz/` crate, feature `fuzzing`): the parsers of what
/// the agent reads from untrusted parties.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::config::{Config, endpoint_url};
    pub use crate::login::{Routes, Verdict, judge, parse_table};
    pub use crate::oauth::device::parse_authorization;
    pub use crate::oauth::discovery::Endpoints;
    pub use crate::oauth::registration::Registered;
    pub use crate::oauth::resource::{ResourceMetadata, parse_bearer_challenge};
    pub use crate::oauth::text::clean;
    pub use crate::oauth::token::{parse_response, parse_retry_after};
}

/// Entry points for the benchmark suite (`bench/`, feature `bench`): what it measures in process.
#[cfg(feature = "bench")]
#[doc(hidden)]
pub mod bench {
    pub use crate::access::Attestor;
    pub use crate::access::caller::pin;
}

/// Why the agent could not start, or stopped with an error. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Directory(#[from] paths::DirError),
    #[error(transparent)]
    Lock(#[from] lifecycle::LockError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    Listener(#[from] server::ListenerError),
    #[error(transparent)]
    Server(#[from] server::ServerError),
}

impl StartError {
    /// Whether `config.toml` is what stopped the agent (exit code 2, as for the CLI).
    #[must_use]
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Config(_))
    }
}

/// Loads `config.toml` as the agent would at start (`authctl-agent --check-config`).
///
/// # Errors
/// The file is unreadable, not private, or invalid (the error names the file, line and key).
pub fn check_config(paths: &Paths) -> Result<(), StartError> {
    Config::load(&paths.config_file)?;
    Ok(())
}

/// Runs the agent until SIGTERM, SIGINT, an idle exit or a `Shutdown` request: load config → open
/// the store → build the layers → take the activated socket or bind one → serve → drain → remove
/// the socket.
///
/// # Errors
/// Any start-up failure, with a message naming what to fix.
pub async fn run(paths: Paths, activated: Activated) -> Result<(), StartError> {
    hardening::harden_process();
    paths::ensure_private_dir(&paths.data_dir)?;
    let _lock = lifecycle::lock_store(&paths)?;
    let config = Config::load(&paths.config_file)?;
    // The account metadata and the secret store are independent files, checked (not yet parsed:
    // `prepare_stores`) on this thread while a keyring probe, if any, runs on the blocking pool. A
    // blocking thread of its own for the check would keep a malloc arena for the agent's life.
    let accounts_file = paths.accounts_file();
    let (secrets, accounts) = tokio::join!(store::open(config.agent.store, &paths), async {
        AccountDb::open(accounts_file)
    });
    let (secrets, accounts) = (secrets?, accounts?);
    tracing::info!(
        config = %paths.config_file.display(),
        providers = config.providers.len(),
        accounts = accounts.loaded(),
        store = secrets.kind(),
        "starting"
    );
    let core = Core::new(paths.clone(), config, secrets, accounts);
    let tokens = Tokens::new(Arc::clone(&core));
    let logins = Logins::new(Arc::clone(&tokens));
    let access = Access::new(Arc::clone(&core));

    let (listener, bound) = if let Some(l) = activated.into_listener()? {
        (l, None)
    } else {
        let (l, bound) = server::bind(&paths.socket).await?;
        (l, Some(bound))
    };
    let hard_stop = server::DRAIN_GRACE + lifecycle::refresh_drain(&core) + Duration::from_secs(2);
    tokio::spawn(lifecycle::watch_signals(Arc::clone(&core), hard_stop));
    tokio::spawn(lifecycle::idle_exit(Arc::clone(&core)));
    tokio::spawn(Arc::clone(&tokens).retry_unsaved());
    tracing::info!(socket = %paths.socket.display(), activated = bound.is_none(), "serving");
    lifecycle::notify_ready();
    tokio::spawn(prepare_stores(Arc::clone(&core)));
    let result = server::serve(logins, access, listener).await;
    // Only refreshes still storing a rotated token are waited for.
    if tokio::time::timeout(lifecycle::refresh_drain(&core), tokens.quiesce())
        .await
        .is_err()
    {
        tracing::warn!("a refresh is still in flight at exit");
    }
    if let Some(bound) = bound {
        bound.remove();
    }
    tracing::info!("stopped");
    Ok(result?)
}

/// Builds the maps of the account metadata and the file store, checked at start, off the path of
/// the agent's first answer; a request that needs one before this finishes builds it itself. One
/// after the other, on one blocking thread: each thread that allocates keeps a malloc arena for
/// the agent's life (bench rows 7g–h).
async fn prepare_stores(core: Arc<Core>) {
    let accounts = {
        let core = Arc::clone(&core);
        tokio::task::spawn_blocking(move || core.accounts.prepare()).await
    };
    if let Ok(Err(e)) = accounts {
        tracing::error!(error = %e, "the account metadata cannot be used");
    }
    if let Err(e) = core.secrets.prepare().await {
        tracing::error!(error = %e, "the secret store cannot be used");
    }
}
