//! On-demand logins (`GetToken{interactive}`): when an app asks for a token that needs a login,
//! the agent starts one loopback login for the account and opens the browser itself. Every caller
//! for that account waits on the same login (one browser tab, never a storm), and after a failure
//! no new one starts for a cool-down, so a background tool asking in a loop cannot open tab after
//! tab.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::browser;
use super::error::{LoginError, LoginFailure};
use super::{LoginRequest, Logins, Progress};
use crate::tokens::{Served, TokenRequest};

/// A shared login's outcome: `None` while it runs.
type Outcome = Option<Result<(), Arc<LoginError>>>;

enum Entry {
    Running(watch::Receiver<Outcome>),
    /// The last login's end, and its error: whatever the outcome, no new one opens the browser
    /// within the cool-down (a login that succeeds but does not satisfy the caller, for a key no
    /// login can give, must not open tab after tab either).
    Finished {
        at: Instant,
        error: Option<Arc<LoginError>>,
    },
}

/// The shared logins by account (or by provider, for a first login).
#[derive(Default)]
pub(super) struct OnDemand {
    logins: Arc<Mutex<HashMap<String, Entry>>>,
}

impl OnDemand {
    /// Waits for the login of `key`: joins one that runs, else starts `start` in a task of its
    /// own (it runs to its end even if every caller goes away) unless one failed less than
    /// `cooldown` ago.
    ///
    /// # Errors
    /// The shared login's failure (the same for every caller), or the cool-down.
    pub async fn join<F, Fut>(
        &self,
        key: &str,
        cooldown: Duration,
        start: F,
    ) -> Result<(), LoginError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), LoginError>> + Send + 'static,
    {
        let mut rx = {
            let mut logins = self.logins.lock().unwrap_or_else(PoisonError::into_inner);
            match logins.get(key) {
                Some(Entry::Running(rx)) => rx.clone(),
                Some(Entry::Finished { at, error }) if at.elapsed() < cooldown => {
                    return Err(LoginError::CoolingDown {
                        account: key.to_owned(),
                        ago: at.elapsed().as_secs(),
                        wait: cooldown.saturating_sub(at.elapsed()).as_secs().max(1),
                        reason: error.clone(),
                    });
                }
                _ => {
                    let (tx, rx) = watch::channel(None);
                    logins.insert(key.to_owned(), Entry::Running(rx.clone()));
                    tokio::spawn(supervise(
                        Arc::clone(&self.logins),
                        key.to_owned(),
                        start(),
                        tx,
                    ));
                    rx
                }
            }
        };
        let outcome = rx.wait_for(Option::is_some).await.map(|o| o.clone());
        match outcome {
            Ok(Some(Ok(()))) => Ok(()),
            Ok(Some(Err(e))) => Err(LoginError::Shared(e)),
            // The supervisor always sends an outcome before it drops the sender.
            Ok(None) | Err(_) => unreachable!("a shared login ended without an outcome"),
        }
    }
}

/// Runs the shared login and records its outcome, also when it panics (an entry left "running"
/// would refuse every later on-demand login for the account).
async fn supervise(
    logins: Arc<Mutex<HashMap<String, Entry>>>,
    key: String,
    login: impl Future<Output = Result<(), LoginError>> + Send + 'static,
    tx: watch::Sender<Outcome>,
) {
    let outcome = match tokio::spawn(login).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Arc::new(e)),
        Err(e) => Err(Arc::new(LoginError::Task(e))),
    };
    {
        let mut logins = logins.lock().unwrap_or_else(PoisonError::into_inner);
        match &outcome {
            Ok(()) => tracing::info!(target = %key, "on-demand login completed"),
            Err(error) => tracing::warn!(target = %key, %error, "on-demand login failed"),
        }
        logins.insert(
            key.clone(),
            Entry::Finished {
                at: Instant::now(),
                error: outcome.as_ref().err().map(Arc::clone),
            },
        );
    }
    let _ = tx.send(Some(outcome));
}

impl Logins {
    /// A token for `req`; with `interactive`, an account that needs a login (or a provider with
    /// no account yet) is logged in on demand first, through the browser the agent opens.
    ///
    /// # Errors
    /// As [`crate::tokens::Tokens::get`], or the on-demand login failed.
    pub async fn token(
        self: &Arc<Self>,
        req: &TokenRequest,
        interactive: bool,
    ) -> Result<Served, LoginError> {
        match self.tokens.get(req).await {
            Err(e) if interactive && e.needs_login() => {
                self.on_demand_login(&req.account).await?;
                Ok(self.tokens.get(req).await?)
            }
            other => Ok(other?),
        }
    }

    /// Logs `target` in through the browser, joining a login already running for it.
    pub(super) async fn on_demand_login(self: &Arc<Self>, target: &str) -> Result<(), LoginError> {
        let core = self.core();
        // One login per account, however the callers name it (account, or provider of one).
        let key = core
            .resolve_account(target)
            .map_or_else(|_| target.to_owned(), |a| a.name);
        let cooldown = Duration::from_secs(core.config().agent.interactive_retry_seconds);
        let me = Arc::clone(self);
        let account = key.clone();
        self.on_demand
            .join(&key, cooldown, move || async move {
                me.run_on_demand(account).await
            })
            .await
    }

    /// The shared login itself.
    async fn run_on_demand(&self, target: String) -> Result<(), LoginError> {
        tracing::info!(%target, "on-demand login: opening the browser");
        let (ptx, prx) = mpsc::channel::<Progress>(4);
        // A re-login asks the account's scopes again, and must come back as the same user.
        let scopes = self
            .core()
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
        let login = self.login(req, ptx);
        let opener = open_browser(prx);
        tokio::pin!(login, opener);
        tokio::select! {
            r = &mut login => r.map(|_| ()),
            Err(reason) = &mut opener => Err(LoginFailure::NoBrowser { target, reason }.into()),
        }
    }
}

/// Opens the browser on the login's authorization URL. Ends `Ok` when the login stops reporting
/// progress, `Err` when no browser would open.
async fn open_browser(mut progress: mpsc::Receiver<Progress>) -> Result<(), browser::BrowserError> {
    while let Some(p) = progress.recv().await {
        if let Progress::AuthorizeUrl { url, .. } = p {
            let program = browser::open(&url).await?;
            tracing::info!(%program, "on-demand login: browser opened");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn failure() -> LoginError {
        LoginError::Timeout(1)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_login_and_its_outcome() {
        let od = Arc::new(OnDemand::default());
        let started = Arc::new(AtomicUsize::new(0));
        let (release, gate) = watch::channel(false);
        let mut callers = Vec::new();
        for _ in 0..5 {
            let (od, started, mut gate) = (Arc::clone(&od), Arc::clone(&started), gate.clone());
            callers.push(tokio::spawn(async move {
                od.join("alice", Duration::from_secs(30), move || async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    Ok(())
                })
                .await
            }));
        }
        // Every caller has joined before the login ends.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        release.send(true).unwrap();
        for c in callers {
            c.await.unwrap().unwrap();
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "one login for five callers"
        );
        // Even a success opens no second browser within the cool-down: a caller that still needs
        // a login right after one (a key no login can give) is told so instead.
        let e = od
            .join("alice", Duration::from_secs(30), || async { Ok(()) })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("completed"), "{e}");
        tokio::time::advance(Duration::from_secs(30)).await;
        od.join("alice", Duration::from_secs(30), || async { Ok(()) })
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_told_to_every_caller_and_starts_no_new_login_during_the_cooldown() {
        let od = OnDemand::default();
        let cooldown = Duration::from_secs(30);
        let e = od
            .join("bob", cooldown, || async { Err(failure()) })
            .await
            .unwrap_err();
        assert!(matches!(e, LoginError::Shared(_)), "{e:?}");
        let started = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&started);
        let e = od
            .join("bob", cooldown, move || async move {
                s.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("starts no new one"), "{e}");
        assert_eq!(
            started.load(Ordering::SeqCst),
            0,
            "no login in the cooldown"
        );
        // Another account is not held back.
        od.join("carol", cooldown, || async { Ok(()) })
            .await
            .unwrap();
        tokio::time::advance(cooldown).await;
        let s = Arc::clone(&started);
        od.join("bob", cooldown, move || async move {
            s.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "a new login after the cooldown"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_that_panics_is_a_failure_not_a_login_running_forever() {
        let od = OnDemand::default();
        let e = od
            .join("dave", Duration::from_secs(30), || async {
                panic!("boom");
            })
            .await
            .unwrap_err();
        assert!(
            matches!(e, LoginError::Shared(ref inner) if matches!(**inner, LoginError::Task(_))),
            "{e:?}"
        );
    }
}
