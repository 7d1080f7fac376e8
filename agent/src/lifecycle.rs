//! The agent's life around its work: the per-store lock, logging, signals, systemd readiness,
//! and the idle exit.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use crate::paths::Paths;

/// Another agent holds the store, or the lock file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another authctl-agent{} already runs for the store in {}; stop it with `authctl agent stop`",
        holder.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default(),
        data_dir.display()
    )]
    Held {
        holder: Option<String>,
        data_dir: std::path::PathBuf,
    },
}

/// Takes the per-store lock, so a second agent on the same store exits at once naming the first.
/// The lock lasts as long as the returned file is open.
///
/// # Errors
/// The lock is held, or its file cannot be opened.
pub fn lock_store(paths: &Paths) -> Result<std::fs::File, LockError> {
    let path = paths.lock_file();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
    if file.try_lock().is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = holder.trim();
        return Err(LockError::Held {
            holder: (!holder.is_empty()).then(|| holder.to_owned()),
            data_dir: paths.data_dir.clone(),
        });
    }
    file.set_len(0).ok();
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
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

/// Tells systemd we are ready (`Type=notify`), a no-op elsewhere.
pub fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready])
    {
        tracing::warn!(error = %e, "sd_notify READY=1 failed");
    }
}

/// How long a stop waits for refreshes in flight: one provider request (`http_timeout_seconds`)
/// and the durable write of its rotated token.
#[must_use]
pub fn refresh_drain(core: &Core) -> Duration {
    Duration::from_secs(core.config().agent.http_timeout_seconds) + Duration::from_secs(10)
}

/// SIGTERM and SIGINT begin a stop (and end the process if draining takes longer than
/// `hard_stop`); SIGHUP reloads the configuration.
pub async fn watch_signals(core: Arc<Core>, hard_stop: Duration) {
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
                if let Err(e) = core.reload() {
                    tracing::error!(error = %e, "reload on SIGHUP failed");
                }
            }
        }
    }
    tracing::info!("signal received; shutting down");
    core.stop();
    tokio::time::sleep(hard_stop).await;
    tracing::warn!("drain timed out; exiting");
    std::process::exit(0);
}

/// Ends the agent after `idle_timeout_seconds` without a request, when no work is in progress (no
/// account being kept fresh, no login): socket activation starts it again on the next connection.
pub async fn idle_exit(core: Arc<Core>) {
    loop {
        let idle = core.config().agent.idle_timeout_seconds;
        tokio::time::sleep(Duration::from_secs(if idle == 0 {
            30
        } else {
            (idle / 4).clamp(1, 30)
        }))
        .await;
        if idle == 0 {
            continue;
        }
        let (quiet, busy) = core.idleness();
        if quiet >= i64::try_from(idle).unwrap_or(i64::MAX) && !busy {
            tracing::info!(idle_seconds = quiet, "idle; exiting (idle_timeout_seconds)");
            core.stop();
            return;
        }
    }
}
