//! On-demand logins (`GetToken{interactive}`): when an app asks for a token that needs a login,
//! the agent starts one loopback login for the account and opens the browser itself. Every caller
//! for that account waits on the same login (one browser tab, never a storm), and after a failure
//! no new one starts for a cool-down, so a background tool asking in a loop cannot open tab after
//! tab.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::error::AgentError;
use crate::login::{self, InFlight, LoginRequest, Progress};
use crate::state::AgentHandle;

/// The outcome of a shared login: `None` while it runs, then `Ok` or the failure (its gRPC code
/// and message, relayed to every caller).
type Outcome = Option<Result<(), (tonic::Code, String)>>;

enum Entry {
    Running(watch::Receiver<Outcome>),
    Failed { at: Instant, reason: String },
}

/// The on-demand logins by target (an account name, or a provider name for a first login).
#[derive(Default)]
pub struct OnDemand {
    logins: Mutex<HashMap<String, Entry>>,
}

/// Whether `e` means a login would help.
#[must_use]
pub fn needs_login(state: &AgentHandle, target: &str, e: &AgentError) -> bool {
    match e {
        AgentError::LoginRequired { .. } => true,
        // No account yet, but a provider by that name: a first login creates it.
        AgentError::NoSuchAccount(_) => state.config().providers.contains_key(target),
        _ => false,
    }
}

/// Logs `target` in through the browser, joining a login already running for it.
///
/// # Errors
/// The login failed, timed out, no browser could be opened, or an earlier on-demand login failed
/// less than `interactive_retry_seconds` ago.
pub async fn login(state: &AgentHandle, target: &str) -> Result<(), AgentError> {
    // One login per account, however the callers name it (account, or provider of one account).
    let key = state
        .resolve_account(target)
        .map_or_else(|_| target.to_owned(), |a| a.name);
    let mut rx = {
        let mut logins = state
            .ondemand
            .logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cooldown = Duration::from_secs(state.config().agent.interactive_retry_seconds);
        match logins.get(&key) {
            Some(Entry::Running(rx)) => rx.clone(),
            Some(Entry::Failed { at, reason }) if at.elapsed() < cooldown => {
                let wait = cooldown.saturating_sub(at.elapsed()).as_secs().max(1);
                return Err(AgentError::LoginRequired {
                    account: key.clone(),
                    reason: format!(
                        "an on-demand login failed {}s ago ({reason}); the agent starts no new one for {wait}s — run `authctl login {key}` to log in now",
                        at.elapsed().as_secs()
                    ),
                });
            }
            _ => {
                let (tx, rx) = watch::channel(None);
                logins.insert(key.clone(), Entry::Running(rx.clone()));
                tokio::spawn(supervise(AgentHandle::clone(state), key, tx));
                rx
            }
        }
    };
    let outcome = rx
        .wait_for(Option::is_some)
        .await
        .map_err(|_| AgentError::Internal("the on-demand login ended without an outcome".into()))?
        .clone();
    match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err((code, message))) => Err(AgentError::Relayed { code, message }),
        None => Err(AgentError::Internal("no outcome".into())),
    }
}

/// Runs the shared login in a task of its own and records its outcome, also when it panics (an
/// entry left "running" would refuse every later on-demand login for the account).
async fn supervise(state: AgentHandle, key: String, tx: watch::Sender<Outcome>) {
    let outcome = match tokio::spawn(run(AgentHandle::clone(&state), key.clone())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err((e.code(), e.to_string())),
        Err(e) => Err((
            tonic::Code::Internal,
            format!("the on-demand login failed: {e}"),
        )),
    };
    {
        let mut logins = state
            .ondemand
            .logins
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &outcome {
            Ok(()) => {
                tracing::info!(target = %key, "on-demand login completed");
                logins.remove(&key);
            }
            Err((_, reason)) => {
                tracing::warn!(target = %key, error = %reason, "on-demand login failed");
                logins.insert(
                    key.clone(),
                    Entry::Failed {
                        at: Instant::now(),
                        reason: reason.clone(),
                    },
                );
            }
        }
    }
    let _ = tx.send(Some(outcome));
}

/// The shared login itself: runs to its end even if every caller has gone.
async fn run(state: AgentHandle, target: String) -> Result<(), AgentError> {
    let _in_flight = InFlight::new(&state);
    tracing::info!(%target, "on-demand login: opening the browser");
    let (ptx, prx) = mpsc::channel::<Progress>(4);
    // A re-login asks the account's scopes again, and must come back as the same user.
    let scopes = state
        .accounts
        .get(&target)
        .map(|a| a.scopes)
        .unwrap_or_default();
    let req = LoginRequest {
        target: target.clone(),
        scopes,
        same_subject: true,
        ..LoginRequest::default()
    };
    let login = login::login(&state, req, ptx);
    let opener = open_browser(prx);
    tokio::pin!(login, opener);
    tokio::select! {
        r = &mut login => r.map(|_| ()),
        Err(reason) = &mut opener => Err(AgentError::LoginFailed(format!(
            "`{target}` needs a login but the agent could not open a browser ({reason}); run `authctl login {target}` in a terminal (with --device on a machine without a browser)"
        ))),
    }
}

/// Opens the browser on the login's authorization URL. Ends `Ok` when the login stops reporting
/// progress, `Err` when no browser would open.
async fn open_browser(mut progress: mpsc::Receiver<Progress>) -> Result<(), String> {
    while let Some(p) = progress.recv().await {
        if let Progress::AuthorizeUrl { url, .. } = p {
            let program = crate::browser::open(&url).await?;
            tracing::info!(%program, "on-demand login: browser opened");
        }
    }
    Ok(())
}
