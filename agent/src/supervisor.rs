//! Proactive refresh: one supervisor task per account that clients use. It sleeps until the
//! earliest hot token of its account is due (expiry minus `min_ttl`, a margin and jitter; never
//! before half the token's life), refreshes through the same single-flight path as callers, backs
//! off on transient failures, and ends when the account goes idle (no caller for
//! `refresh_idle_seconds`), is logged out, or needs a login. The next request starts it again.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use authctl_proto::v1::WatchEventKind;

use crate::backoff::refresh_due;
use crate::error::AgentError;
use crate::refresh;
use crate::state::{AgentHandle, now_unix};

/// Which accounts have a running supervisor.
#[derive(Default)]
pub struct Supervisors {
    running: Mutex<HashSet<String>>,
}

impl Supervisors {
    /// How many accounts are being kept fresh.
    #[must_use]
    pub fn count(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Longest single sleep, so idle detection and config changes are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Starts `account`'s supervisor unless it runs.
pub fn ensure(state: &AgentHandle, account: &str) {
    {
        let mut running = state
            .supervisors
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !running.insert(account.to_owned()) {
            return;
        }
    }
    let state = AgentHandle::clone(state);
    let account = account.to_owned();
    tokio::spawn(async move {
        supervise(&state, &account).await;
        state
            .supervisors
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&account);
        tracing::debug!(%account, "refresh supervisor stopped");
    });
}

async fn supervise(state: &AgentHandle, account: &str) {
    tracing::debug!(%account, "refresh supervisor started");
    let mut shutdown = state.shutdown.subscribe();
    // Account events end the sleep early: a logout or a rejected grant stops the supervisor at
    // once (so an idle agent can exit), a new token is rescheduled.
    let mut events = state.events.subscribe();
    loop {
        let config = state.config();
        let idle = i64::try_from(config.agent.refresh_idle_seconds).unwrap_or(i64::MAX);
        let min_ttl = i64::try_from(config.agent.min_ttl_seconds).unwrap_or(i64::MAX);
        let now = now_unix();
        match state.accounts.get(account) {
            Some(a) if !a.login_required => {}
            _ => return,
        }
        let next = state
            .cache
            .hot_keys(account, now.saturating_sub(idle))
            .into_iter()
            .filter_map(|(k, t)| {
                let due = refresh_due(
                    t.obtained_at,
                    t.expires_at,
                    min_ttl,
                    30,
                    rand::random::<f64>(),
                )?;
                Some((due, k, t.generation))
            })
            .min_by_key(|(due, _, _)| *due);
        let Some((due, key, generation)) = next else {
            return;
        };
        if due > now {
            let wait = Duration::from_secs(u64::try_from(due - now).unwrap_or(0)).min(MAX_SLEEP);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
                ev = events.recv() => match ev {
                    Ok(ev) if ev.account == account => {
                        let kind = WatchEventKind::try_from(ev.kind).unwrap_or(WatchEventKind::Unspecified);
                        if matches!(kind, WatchEventKind::Removed | WatchEventKind::LoginRequired) {
                            return;
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
            continue;
        }
        if let Some(wait) = state.backoff_remaining(account) {
            tokio::select! {
                () = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        match refresh::refresh_background(state, account, &key, generation).await {
            Ok(()) => {}
            Err(AgentError::LoginRequired { .. } | AgentError::NoSuchAccount(_)) => return,
            Err(e) => {
                tracing::warn!(%account, error = %e, "background refresh failed; backing off");
            }
        }
    }
}

/// Ends the agent after `idle_timeout_seconds` without a request, when no account is being kept
/// fresh and no login is in progress (socket activation starts it again on the next connection).
pub async fn idle_exit(state: AgentHandle) {
    use std::sync::atomic::Ordering;
    loop {
        let idle = state.config().agent.idle_timeout_seconds;
        tokio::time::sleep(Duration::from_secs(if idle == 0 {
            30
        } else {
            (idle / 4).clamp(1, 30)
        }))
        .await;
        if idle == 0 {
            continue;
        }
        let quiet = now_unix() - state.last_activity.load(Ordering::Relaxed);
        if quiet >= i64::try_from(idle).unwrap_or(i64::MAX)
            && state.supervisors.count() == 0
            && state.logins_in_flight.load(Ordering::Relaxed) == 0
        {
            tracing::info!(idle_seconds = quiet, "idle; exiting (idle_timeout_seconds)");
            let _ = state.shutdown.send(true);
            return;
        }
    }
}
