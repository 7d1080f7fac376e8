//! `authctl-agent`: the per-user OAuth/OIDC credential daemon.
//!
//! It owns the provider registry, the account store, the token cache and the loopback logins, and
//! serves the gRPC API of [`authctl_proto`] on a Unix socket that admits only its own user.
//! [`run`] is the whole daemon; the binary only parses flags and calls it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let paths = authctl_agent::paths::Paths::from_env()?;
//! authctl_agent::run(paths).await?;
//! # Ok(()) }
//! ```

pub mod accounts;
pub mod backoff;
pub mod browser;
pub mod cache;
pub mod config;
pub mod device;
pub mod diagnose;
pub mod endsession;
pub mod error;
pub mod fsutil;
pub mod hardening;
pub mod login;
pub mod loopback;
pub mod oauth;
pub mod ondemand;
pub mod paths;
pub mod presets;
pub mod refresh;
pub mod revoke;
pub mod rpc;
pub mod server;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod zeroconf;

use std::io::Write as _;
use std::time::Duration;

use authctl_proto::v1::agent_server::AgentServer;

use crate::accounts::AccountDb;
use crate::config::Config;
use crate::paths::{Paths, ensure_private_dir};
use crate::state::AgentState;

/// Why the agent could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Accounts(#[from] accounts::AccountsError),
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Takes the per-store lock, so a second agent on the same store exits at once.
fn lock_store(paths: &Paths) -> Result<std::fs::File, StartError> {
    let path = paths.lock_file();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| StartError::Setup(format!("cannot open lock file {}: {e}", path.display())))?;
    if file.try_lock().is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = holder.trim();
        return Err(StartError::Setup(format!(
            "another authctl-agent{} already runs for the store in {}; stop it with `authctl agent stop`",
            if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            },
            paths.data_dir.display()
        )));
    }
    file.set_len(0).ok();
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

/// Runs the agent until SIGTERM, SIGINT or a `Shutdown` request: load config → open the store
/// → build the state → take the activated socket or bind one → serve → drain → remove the socket.
///
/// # Errors
/// Any start-up failure, with a message naming what to fix.
pub async fn run(paths: Paths) -> Result<(), StartError> {
    hardening::harden_process();
    ensure_private_dir(&paths.data_dir).map_err(StartError::Setup)?;
    let _lock = lock_store(&paths)?;
    let config = Config::load(&paths.config_file)?;
    // The account metadata and the secret store are independent files: load them side by side
    // (with many accounts, parsing them is most of the start-up time).
    let accounts_file = paths.accounts_file();
    let accounts = tokio::task::spawn_blocking(move || AccountDb::open(accounts_file));
    let secrets = store::open(config.agent.store, &paths).await?;
    let accounts = accounts
        .await
        .map_err(|e| StartError::Setup(format!("loading the accounts failed: {e}")))??;
    tracing::info!(
        config = %paths.config_file.display(),
        providers = config.providers.len(),
        accounts = accounts.len(),
        store = secrets.kind(),
        "starting"
    );
    let state = AgentState::new(paths.clone(), config, secrets, accounts);

    let (listener, owns_socket) = match server::activated().map_err(StartError::Setup)? {
        Some(l) => (l, false),
        None => (
            server::bind(&paths.socket)
                .await
                .map_err(StartError::Setup)?,
            true,
        ),
    };
    let incoming = server::incoming(listener, hardening::current_uid());

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AgentServer<rpc::AgentService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(authctl_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| StartError::Setup(format!("reflection: {e}")))?;

    let mut shutdown_rx = state.shutdown.subscribe();
    let sig_state = std::sync::Arc::clone(&state);
    tokio::spawn(async move {
        watch_signals(&sig_state).await;
    });
    let shutdown = async move {
        let _ = shutdown_rx.wait_for(|v| *v).await;
    };

    tokio::spawn(supervisor::idle_exit(std::sync::Arc::clone(&state)));
    tracing::info!(socket = %paths.socket.display(), activated = !owns_socket, "serving");
    notify_ready();
    let service = AgentServer::new(rpc::AgentService {
        state: std::sync::Arc::clone(&state),
    });
    let served = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown);
    // Drain in-flight requests, but never hang a stop on a client that keeps an idle connection
    // (or a Watch stream) open: after a short grace the server goes, and only refreshes still
    // storing a rotated token are waited for.
    let mut drain_rx = state.shutdown.subscribe();
    let grace = async move {
        let _ = drain_rx.wait_for(|v| *v).await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    let result = tokio::select! {
        r = served => r,
        () = grace => {
            tracing::info!("closing client connections still open");
            Ok(())
        }
    };
    if tokio::time::timeout(refresh_drain(&state), state.cache.quiesce())
        .await
        .is_err()
    {
        tracing::warn!("a refresh is still in flight at exit");
    }
    if owns_socket {
        let _ = std::fs::remove_file(&paths.socket);
    }
    tracing::info!("stopped");
    result.map_err(StartError::from)
}

/// How long a stop waits for clients to finish before closing their connections.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How long a stop waits for refreshes in flight: one provider request (`http_timeout_seconds`)
/// and the durable write of its rotated token.
fn refresh_drain(state: &AgentState) -> Duration {
    Duration::from_secs(state.config().agent.http_timeout_seconds) + Duration::from_secs(10)
}

async fn watch_signals(state: &AgentState) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Err(e) = state.reload() {
                    tracing::error!(error = %e, "reload on SIGHUP failed; keeping the running configuration");
                }
            }
        }
    }
    tracing::info!("signal received; shutting down");
    let _ = state.shutdown.send(true);
    // Hard stop if draining takes too long.
    tokio::time::sleep(DRAIN_GRACE + refresh_drain(state) + Duration::from_secs(2)).await;
    tracing::warn!("drain timed out; exiting");
    std::process::exit(0);
}

/// Tells systemd we are ready (`Type=notify`), a no-op elsewhere.
fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready])
    {
        tracing::warn!(error = %e, "sd_notify READY=1 failed");
    }
}

/// Sets up `tracing` from `AUTHCTL_LOG` (default `info`): plain lines without colour or
/// timestamps when journald is stderr (`JOURNAL_STREAM`), since journald adds its own.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("AUTHCTL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if journald {
        builder
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .init();
    } else {
        let ansi = std::env::var_os("NO_COLOR").is_none()
            && std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder.with_ansi(ansi).init();
    }
}
