//! Proactive refresh: one supervisor task per account that clients use. It sleeps until the
//! earliest hot token of its account is due (expiry minus `min_ttl`, a margin and jitter; never
//! before half the token's life), refreshes through the same single-flight path as callers, backs
//! off on transient failures, and ends when the account goes idle (no caller for
//! `refresh_idle_seconds`), is logged out, or needs a login. The next request starts it again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use super::Tokens;
use super::backoff::refresh_due;
use super::error::ServeError;
use crate::core::CoreError;
use crate::core::events::EventKind;

/// Which accounts have a running supervisor.
#[derive(Default)]
pub struct Supervisors {
    running: Mutex<HashSet<String>>,
}

impl Supervisors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Longest single sleep, so idle detection and config changes are noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The margin a background refresh leads expiry by, beyond `min_ttl` (before jitter).
const JITTER_MAX_SECONDS: i64 = 30;

impl Tokens {
    /// Starts `account`'s supervisor unless it runs.
    pub(super) fn keep_fresh(self: &Arc<Self>, account: &str) {
        if !self.supervisors.lock().insert(account.to_owned()) {
            return;
        }
        // An agent keeping an account fresh is not idle.
        let busy = self.core.busy();
        let me = Arc::clone(self);
        let account = account.to_owned();
        tokio::spawn(async move {
            me.supervise(&account).await;
            me.supervisors.lock().remove(&account);
            drop(busy);
            tracing::debug!(%account, "refresh supervisor stopped");
        });
    }

    async fn supervise(self: &Arc<Self>, account: &str) {
        tracing::debug!(%account, "refresh supervisor started");
        let core = &self.core;
        let stopped = core.stopped();
        tokio::pin!(stopped);
        // Account events end the sleep early: a logout or a rejected grant stops the supervisor
        // at once (so an idle agent can exit), a new token is rescheduled.
        let mut events = core.subscribe();
        loop {
            let config = core.config();
            let idle = i64::try_from(config.agent.refresh_idle_seconds).unwrap_or(i64::MAX);
            let min_ttl = i64::try_from(config.agent.min_ttl_seconds).unwrap_or(i64::MAX);
            let now = core.now();
            match core.accounts.get(account) {
                Some(a) if !a.login_required => {}
                _ => return,
            }
            let next = self
                .cache
                .hot_keys(account, now.saturating_sub(idle))
                .into_iter()
                .filter(|(k, _)| self.failures.key_refused(k).is_none())
                .filter_map(|(k, t)| {
                    let due = refresh_due(
                        t.obtained_at,
                        t.expires_at,
                        min_ttl,
                        JITTER_MAX_SECONDS,
                        rand::random::<f64>(),
                    )?;
                    Some((due, k, t.generation))
                })
                .min_by_key(|(due, _, _)| *due);
            let Some((due, key, generation)) = next else {
                return;
            };
            if due > now {
                let wait =
                    Duration::from_secs(u64::try_from(due - now).unwrap_or(0)).min(MAX_SLEEP);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut stopped => return,
                    ev = events.recv() => match ev {
                        Ok(ev) if ev.account == account
                            && matches!(ev.kind, EventKind::Removed | EventKind::LoginRequired) => return,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    },
                }
                continue;
            }
            if let Some((wait, _)) = self.failures.backing_off(account) {
                tokio::select! {
                    () = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
                    () = &mut stopped => return,
                }
                continue;
            }
            match self.refresh_background(account, &key, generation).await {
                // A refused key is skipped for a while; the others go on.
                Ok(()) | Err(ServeError::KeyRefused(_)) => {}
                Err(
                    ServeError::LoginRequired { .. }
                    | ServeError::Stopping
                    | ServeError::Core(CoreError::NoSuchAccount(_)),
                ) => return,
                Err(e) => {
                    tracing::warn!(%account, error = %e, "background refresh failed; backing off");
                }
            }
        }
    }
}
