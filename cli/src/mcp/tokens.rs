//! The bridge's tokens, always the agent's: asked for the resource URL (or `--account`), kept in
//! memory only while they stay valid, never shown to the host. Concurrent requests wait for one
//! answer, so a first use opens one login however many requests the host sends at once.

use authctl_client::proto::{GetTokenRequest, LoginRequest};
use authctl_client::secrecy::{ExposeSecret, SecretString};
use authctl_client::{Client, ClientError};
use tokio::sync::Mutex;

/// A token is asked again this long before the agent said it expires.
const MARGIN_SECONDS: i64 = 30;

/// Why no token could be had, for the host (as a JSON-RPC error) and for stderr.
#[derive(Debug, thiserror::Error)]
#[error("no token for {target}: {reason}")]
pub struct NoToken {
    target: String,
    reason: String,
}

struct State {
    agent: Option<Client>,
    current: Option<(SecretString, i64)>,
    /// The account the agent served the last token from (the one a step-up logs in again).
    account: Option<String>,
}

pub struct Tokens {
    /// The account, or the resource URL (the agent finds its provider, or logs in to it).
    account: String,
    /// RFC 8707 resource indicator, with `--account` (a resource login carries its own).
    resource: String,
    /// Shown in messages: what the tokens are for.
    target: String,
    state: Mutex<State>,
}

impl Tokens {
    pub fn new(url: &str, account: Option<String>) -> Self {
        let (account, resource) = match account {
            Some(a) => (a, url.to_owned()),
            None => (url.to_owned(), String::new()),
        };
        Self {
            target: url.to_owned(),
            account,
            resource,
            state: Mutex::new(State {
                agent: None,
                current: None,
                account: None,
            }),
        }
    }

    /// A token to send. With `rejected` (the one the server just refused), a fresh one: the
    /// agent refreshes, unless another request already replaced that token. A login the agent
    /// needs is started (the agent opens the browser) only when `may_log_in`.
    pub async fn get(
        &self,
        rejected: Option<&SecretString>,
        may_log_in: bool,
    ) -> Result<SecretString, NoToken> {
        let mut state = self.state.lock().await;
        if let Some((token, expires_at)) = &state.current {
            let still_valid = *expires_at == 0 || *expires_at > now() + MARGIN_SECONDS;
            match rejected {
                Some(r) if r.expose_secret() != token.expose_secret() => return Ok(token.clone()),
                None if still_valid => return Ok(token.clone()),
                _ => {}
            }
        }
        state.current = None;
        let mut agent = self.agent(&mut state).await?;
        let mut req = GetTokenRequest {
            account: self.account.clone(),
            resource: self.resource.clone(),
            force_refresh: rejected.is_some(),
            ..GetTokenRequest::default()
        };
        let mut result = agent.get_token_with(req.clone()).await;
        if may_log_in
            && let Err(e) = &result
            && (e.is_login_required() || e.is_not_found())
        {
            eprintln!(
                "authctl mcp: {} needs a login; the agent is opening your browser — finish the login there",
                self.target
            );
            req.interactive = true;
            req.force_refresh = false;
            result = agent.get_token_with(req).await;
        }
        let t = result.map_err(|e| self.fail(describe(&e, &self.target)))?;
        state.current = Some((t.access_token.clone(), t.expires_at));
        state.account = Some(t.account);
        Ok(t.access_token)
    }

    /// A step-up login (RFC 6750 §3.1 `insufficient_scope`): the account of the last token logs
    /// in again asking `scope` besides its own scopes. The bridge prints the URL and opens the
    /// browser, as `authctl login` does.
    pub async fn step_up(&self, scope: &str) -> Result<(), NoToken> {
        let mut state = self.state.lock().await;
        let mut agent = self.agent(&mut state).await?;
        let Some(account) = state.account.clone() else {
            return Err(self.fail("no login to ask more scope of".into()));
        };
        let accounts = agent
            .list_accounts()
            .await
            .map_err(|e| self.fail(describe(&e, &self.target)))?;
        let mut scopes = accounts
            .into_iter()
            .find(|a| a.name == account)
            .map(|a| a.scopes)
            .unwrap_or_default();
        for s in scope.split_whitespace() {
            if !scopes.iter().any(|have| have == s) {
                scopes.push(s.to_owned());
            }
        }
        let req = LoginRequest {
            provider: account,
            scopes,
            ..LoginRequest::default()
        };
        let stream = agent
            .raw()
            .login(req)
            .await
            .map_err(|s| self.fail(agent.error(s).to_string()))?
            .into_inner();
        let prompt = format!(
            "authctl mcp: {} needs scope `{scope}`; to log in again with it, open this URL:",
            self.target
        );
        authctl_cli::bridge::follow(&agent, stream, false, &prompt)
            .await
            .map_err(|e| self.fail(with_hint(e.message, e.hint)))?;
        state.current = None;
        Ok(())
    }

    /// The connection to the agent (made on first use, starting an agent as other commands do).
    async fn agent(&self, state: &mut State) -> Result<Client, NoToken> {
        if let Some(a) = &state.agent {
            return Ok(a.clone());
        }
        let agent = authctl_cli::bridge::connect()
            .await
            .map_err(|e| self.fail(with_hint(e.message, e.hint)))?;
        state.agent = Some(agent.clone());
        Ok(agent)
    }

    fn fail(&self, reason: String) -> NoToken {
        NoToken {
            target: self.target.clone(),
            reason,
        }
    }
}

/// The agent's message, with the command that fixes a login when it does not name one.
fn describe(e: &ClientError, target: &str) -> String {
    let message = e.to_string();
    if e.is_login_required() && !message.contains("authctl login") {
        format!("{message} (run `authctl login {target}`)")
    } else {
        message
    }
}

fn with_hint(message: String, hint: Option<String>) -> String {
    match hint {
        Some(h) => format!("{message} ({h})"),
        None => message,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
