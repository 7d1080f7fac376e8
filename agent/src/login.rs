//! The loopback login (RFC 8252): authorization code with PKCE S256 (RFC 7636), `state`, OIDC
//! `nonce`, the RFC 9207 `iss` check, the code exchange, ID-token verification, and storing the
//! account with its refresh token.

use std::time::Duration;

use oauth2::{CsrfToken, PkceCodeChallenge};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use url::Url;

use crate::accounts::AccountRecord;
use crate::cache::{CachedToken, TokenKey};
use crate::config::ProviderConfig;
use crate::error::AgentError;
use crate::loopback::{Callback, Loopback, Page};
use crate::oauth::discovery::Endpoints;
use crate::oauth::id_token::{self, Identity};
use crate::oauth::token::{self, TokenSet};
use crate::state::{AgentState, now_unix};

/// What a login asks.
#[derive(Debug, Clone, Default)]
pub struct LoginRequest {
    /// A provider name, or an existing account's name (re-login in place).
    pub target: String,
    pub account_name: Option<String>,
    pub scopes: Vec<String>,
    pub timeout: Option<Duration>,
    /// Use the device authorization grant (RFC 8628) instead of the loopback redirect.
    pub device: bool,
    /// Refuse a login of an existing account as another user (an on-demand re-login, where the
    /// user may pick another identity in the provider's account chooser).
    pub same_subject: bool,
}

/// Progress a login reports to its caller.
#[derive(Debug)]
pub enum Progress {
    AuthorizeUrl {
        url: String,
        redirect_uri: String,
    },
    DeviceCode {
        verification_uri: String,
        verification_uri_complete: String,
        user_code: String,
        expires_at: i64,
    },
}

/// The outcome.
#[derive(Debug)]
pub struct LoginOutcome {
    pub account: AccountRecord,
    pub warnings: Vec<String>,
}

/// Counts a login in progress for as long as it lives.
pub struct InFlight(crate::state::AgentHandle);

impl InFlight {
    #[must_use]
    pub fn new(state: &crate::state::AgentHandle) -> Self {
        state
            .logins_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(std::sync::Arc::clone(state))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .logins_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.0.touch_activity();
    }
}

/// Which provider and account name a login is for.
fn plan(state: &AgentState, req: &LoginRequest) -> Result<(String, String), AgentError> {
    let config = state.config();
    let (provider, named) = if config.providers.contains_key(&req.target) {
        (req.target.clone(), req.account_name.clone())
    } else if let Some(a) = state.accounts.get(&req.target) {
        (a.provider, Some(a.name))
    } else {
        return Err(AgentError::NoSuchProvider(req.target.clone()));
    };
    if let Some(name) = named {
        if !crate::config::valid_name(&name) {
            return Err(AgentError::InvalidArgument(format!(
                "account name `{name}` must be 1-64 letters, digits, '.', '_' or '-'"
            )));
        }
        if let Some(existing) = state.accounts.get(&name)
            && existing.provider != provider
        {
            return Err(AgentError::InvalidArgument(format!(
                "account `{name}` already exists at provider `{}`; choose another --account name",
                existing.provider
            )));
        }
        return Ok((provider, name));
    }
    let mine: Vec<AccountRecord> = state
        .accounts
        .all()
        .into_iter()
        .filter(|a| a.provider == provider)
        .collect();
    match mine.as_slice() {
        [] => {
            if state.accounts.get(&provider).is_some() {
                return Err(AgentError::InvalidArgument(format!(
                    "an account named `{provider}` exists at another provider; pass --account NAME"
                )));
            }
            Ok((provider.clone(), provider))
        }
        [only] => Ok((provider, only.name.clone())),
        many => Err(AgentError::AmbiguousAccount {
            provider,
            accounts: many
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The scopes of a login: asked, else configured, else (OIDC) `openid offline_access`.
fn login_scopes(p: &ProviderConfig, asked: &[String]) -> Vec<String> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    if !p.scopes.is_empty() {
        return p.scopes.clone();
    }
    if p.issuer.is_some() {
        return vec!["openid".into(), "offline_access".into()];
    }
    Vec::new()
}

/// Builds the authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1).
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn authorization_url(
    endpoint: &Url,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    code_challenge: &str,
    nonce: Option<&str>,
    extra: &std::collections::BTreeMap<String, String>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client_id);
        q.append_pair("redirect_uri", redirect_uri);
        if !scopes.is_empty() {
            q.append_pair("scope", &scopes.join(" "));
        }
        q.append_pair("state", state);
        q.append_pair("code_challenge", code_challenge);
        q.append_pair("code_challenge_method", "S256");
        if let Some(n) = nonce {
            q.append_pair("nonce", n);
        }
        // OIDC Core §11: offline_access is granted only with prompt=consent (unless the provider
        // is configured with its own prompt or uses another convention, e.g. Google's access_type).
        if scopes.iter().any(|s| s == "offline_access") && !extra.contains_key("prompt") {
            q.append_pair("prompt", "consent");
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url
}

/// Runs a login, reporting progress on `progress`.
///
/// # Errors
/// Unknown provider, discovery failure, a listener that cannot bind, the user not finishing in
/// time, the provider's error, or a failed check.
pub async fn login(
    state: &AgentState,
    mut req: LoginRequest,
    progress: mpsc::Sender<Progress>,
) -> Result<LoginOutcome, AgentError> {
    if crate::zeroconf::is_resource(&req.target) {
        req.target = crate::zeroconf::provider_for(state, &req.target).await?;
    }
    let (provider_name, account_name) = plan(state, &req)?;
    let provider = state.provider(&provider_name)?;
    let scopes = login_scopes(&provider, &req.scopes);
    if req.device {
        return crate::device::login(
            state,
            &req,
            &provider_name,
            &account_name,
            &scopes,
            &progress,
        )
        .await;
    }
    let endpoints = state.endpoints(&provider_name).await?;
    let auth_endpoint = Url::parse(&endpoints.authorization_endpoint).map_err(|e| {
        AgentError::InvalidArgument(format!(
            "provider `{provider_name}` has an invalid authorization_endpoint: {e}"
        ))
    })?;
    let loopback = Loopback::bind(
        provider.redirect_host,
        &provider.redirect_ports,
        provider.redirect_path(),
    )
    .await
    .map_err(|e| AgentError::LoginFailed(e.to_string()))?;
    let redirect_uri = loopback.redirect_uri.clone();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let csrf = CsrfToken::new_random(); // 128 bits of randomness (RFC 6749 §10.12)
    let state_secret = SecretString::from(csrf.secret().clone());
    let is_oidc = scopes.iter().any(|s| s == "openid");
    let nonce = is_oidc.then(|| CsrfToken::new_random().secret().clone());
    let mut extra = provider.auth_params.clone();
    if let Some(r) = &provider.resource {
        extra.entry("resource".into()).or_insert_with(|| r.clone()); // RFC 8707 §2.1
    }
    let url = authorization_url(
        &auth_endpoint,
        &provider.client_id,
        &redirect_uri,
        &scopes,
        state_secret.expose_secret(),
        challenge.as_str(),
        nonce.as_deref(),
        &extra,
    );
    tracing::info!(provider = %provider_name, account = %account_name, %redirect_uri, "login started");
    let _ = progress
        .send(Progress::AuthorizeUrl {
            url: url.to_string(),
            redirect_uri: redirect_uri.clone(),
        })
        .await;
    let timeout = req
        .timeout
        .unwrap_or_else(|| state.login_timeout(&provider));
    let ctx = Exchange {
        state,
        provider_name: &provider_name,
        provider: &provider,
        endpoints: &endpoints,
        redirect_uri: &redirect_uri,
        verifier: SecretString::from(verifier.secret().clone()),
        nonce: nonce.as_deref(),
    };
    let outcome = loopback
        .wait(&state_secret, timeout, |cb| async {
            let received = std::time::Instant::now();
            let r = ctx.finish(cb).await.map(|(set, id)| (set, id, received));
            let page = match &r {
                Ok(_) => Page {
                    ok: true,
                    title: "Logged in".into(),
                    message: format!(
                        "authctl is logged in to {provider_name}. You can close this tab."
                    ),
                },
                Err(e) => Page {
                    ok: false,
                    title: "Login failed".into(),
                    message: e.to_string(),
                },
            };
            (r, page)
        })
        .await;
    let (set, identity, received) = match outcome {
        None => return Err(AgentError::LoginTimeout(timeout.as_secs())),
        Some(r) => r?,
    };
    if req.same_subject
        && let Some(existing) = state.accounts.get(&account_name)
        && !existing.subject.is_empty()
        && !identity.subject.is_empty()
        && existing.subject != identity.subject
    {
        return Err(AgentError::LoginFailed(format!(
            "the browser login was for another user (subject `{}`) than account `{account_name}` (subject `{}`); nothing was changed — log in as that user, or run `authctl login {account_name}` to replace the account",
            identity.subject, existing.subject
        )));
    }
    let outcome = store_account(state, &provider_name, &account_name, &scopes, set, identity).await;
    // The agent's own share of a login (code exchange, ID-token check, durable store), for the
    // benchmark suite: callback received → tokens stored.
    tracing::info!(
        account = %account_name,
        callback_to_stored_us = u64::try_from(received.elapsed().as_micros()).unwrap_or(u64::MAX),
        "login stored"
    );
    outcome
}

struct Exchange<'a> {
    state: &'a AgentState,
    provider_name: &'a str,
    provider: &'a ProviderConfig,
    endpoints: &'a Endpoints,
    redirect_uri: &'a str,
    verifier: SecretString,
    nonce: Option<&'a str>,
}

impl Exchange<'_> {
    async fn finish(&self, cb: Callback) -> Result<(TokenSet, Identity), AgentError> {
        // RFC 9207 §2.4: where the server sends `iss`, it must be the issuer we talk to.
        let expected_iss = self
            .endpoints
            .issuer
            .as_deref()
            .or(self.provider.issuer.as_deref());
        match (cb.param("iss"), expected_iss) {
            (Some(got), Some(want)) if got != want => {
                return Err(AgentError::LoginFailed(format!(
                    "the authorization response came from issuer `{got}`, not `{want}` (RFC 9207 mix-up protection); the login was aborted"
                )));
            }
            (None, Some(_))
                if self
                    .endpoints
                    .authorization_response_iss_parameter_supported =>
            {
                return Err(AgentError::LoginFailed(
                    "the provider advertises RFC 9207 but its response carries no `iss`; the login was aborted".into(),
                ));
            }
            _ => {}
        }
        if let Some(error) = cb.param("error") {
            let desc = cb
                .param("error_description")
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Err(AgentError::LoginFailed(format!(
                "the provider answered `{error}`{desc}"
            )));
        }
        let code = cb.code().ok_or_else(|| {
            AgentError::LoginFailed("the callback carries neither a code nor an error".into())
        })?;
        let auth = self.state.client_auth(self.provider_name).await?;
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", self.redirect_uri),
            ("code_verifier", self.verifier.expose_secret()),
        ];
        if let Some(r) = &self.provider.resource {
            params.push(("resource", r)); // RFC 8707 §2.2
        }
        let set = token::request(
            self.state.http(),
            &self.endpoints.token_endpoint,
            &auth,
            &params,
        )
        .await
        .map_err(|e| AgentError::LoginFailed(format!("the code exchange failed: {e}")))?;
        let identity = identify(
            self.state,
            self.endpoints,
            self.provider,
            &auth,
            &set,
            self.nonce,
        )
        .await?;
        Ok((set, identity))
    }
}

/// Verifies the ID token of a token response, if there is one, and returns who it names.
pub(crate) async fn identify(
    state: &AgentState,
    endpoints: &Endpoints,
    provider: &ProviderConfig,
    auth: &crate::oauth::token::ClientAuth,
    set: &TokenSet,
    nonce: Option<&str>,
) -> Result<Identity, AgentError> {
    let Some(idt) = &set.id_token else {
        return Ok(Identity::default());
    };
    let jwks_uri = endpoints.jwks_uri.as_deref().ok_or_else(|| {
        AgentError::LoginFailed(
            "the provider sent an ID token but has no jwks_uri to verify it".into(),
        )
    })?;
    let jwks = id_token::fetch_jwks(state.http(), jwks_uri).await?;
    let issuer = endpoints
        .issuer
        .as_deref()
        .or(provider.issuer.as_deref())
        .unwrap_or_default();
    Ok(id_token::verify(
        idt,
        issuer,
        &auth.client_id,
        auth.secret.as_ref(),
        jwks,
        nonce,
    )?)
}

/// Saves the login: the refresh token durably first, then the metadata, then the cache.
pub(crate) async fn store_account(
    state: &AgentState,
    provider: &str,
    name: &str,
    scopes: &[String],
    set: TokenSet,
    identity: Identity,
) -> Result<LoginOutcome, AgentError> {
    let mut warnings = Vec::new();
    let has_rt = set.refresh_token.is_some();
    state.forget_tokens(name);
    if let Some(rt) = set.refresh_token.clone() {
        state
            .secrets
            .set(&crate::store::refresh_token_key(name), rt)
            .await?;
    } else {
        state
            .secrets
            .delete(&crate::store::refresh_token_key(name))
            .await?;
        warnings.push("the provider issued no refresh token, so this login lasts only as long as its access token; \
             ask for offline access (scope `offline_access` for OpenID providers, `access_type=offline` \
             for Google) in the provider's scopes or auth_params and log in again".to_string());
    }
    // The login's ID token, kept for `logout --end-session` (`id_token_hint`) across restarts. Only
    // a hint: failing to keep it fails nothing.
    let idt_key = crate::store::id_token_key(name);
    let wanted = state
        .provider(provider)
        .is_ok_and(|p| p.end_session_id_token_hint);
    let kept = match &set.id_token {
        Some(idt) if wanted => state.secrets.set(&idt_key, idt.clone()).await,
        _ => state.secrets.delete(&idt_key).await,
    };
    if let Err(e) = kept {
        tracing::warn!(account = %name, error = %e, "could not keep the ID token for a later end-session");
    }
    let now = now_unix();
    let granted: Vec<String> = set.scope.as_deref().map_or_else(
        || scopes.to_vec(),
        |s| s.split_whitespace().map(str::to_owned).collect(),
    );
    let record = state
        .accounts
        .update(|m| {
            let created_at = m.get(name).map_or(now, |a| a.created_at);
            let rec = AccountRecord {
                name: name.to_owned(),
                provider: provider.to_owned(),
                subject: identity.subject.clone(),
                display_name: identity.display_name.clone(),
                scopes: granted.clone(),
                created_at,
                last_refresh_at: now,
                login_required: false,
                last_error: String::new(),
                has_refresh_token: has_rt,
            };
            m.insert(name.to_owned(), rec.clone());
            rec
        })
        .await?;
    state.cache.put(
        TokenKey::new(name, &[], ""),
        CachedToken {
            access_token: set.access_token,
            token_type: set.token_type,
            expires_at: set
                .expires_in
                .map(|s| now + i64::try_from(s).unwrap_or(i64::MAX / 2)),
            obtained_at: now,
            scopes: granted,
            id_token: set.id_token,
            generation: 0,
        },
    );
    state.clear_failure(name);
    state.emit(name, authctl_proto::v1::WatchEventKind::LoggedIn, |e| {
        e.scopes = record.scopes.clone();
    });
    tracing::info!(%provider, account = %name, refresh_token = has_rt, "login completed");
    Ok(LoginOutcome {
        account: record,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn url(scopes: &[&str], extra: &[(&str, &str)]) -> Url {
        let extra: BTreeMap<String, String> = extra
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).into()).collect();
        authorization_url(
            &Url::parse("https://idp.example.com/authorize?tenant=x").unwrap(),
            "cid",
            "http://127.0.0.1:5555/callback",
            &scopes,
            "st",
            "chal",
            Some("n"),
            &extra,
        )
    }

    fn q(u: &Url) -> BTreeMap<String, String> {
        u.query_pairs().into_owned().collect()
    }

    #[test]
    fn has_pkce_state_nonce_and_keeps_existing_query() {
        let q = q(&url(&["openid"], &[]));
        assert_eq!(q["tenant"], "x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], "chal");
        assert_eq!(q["state"], "st");
        assert_eq!(q["nonce"], "n");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5555/callback");
        assert!(!q.contains_key("prompt"));
    }

    #[test]
    fn offline_access_adds_prompt_consent() {
        let q = q(&url(&["openid", "offline_access"], &[]));
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["scope"], "openid offline_access");
    }

    #[test]
    fn configured_prompt_wins() {
        let u = url(&["openid", "offline_access"], &[("prompt", "login")]);
        let prompts: Vec<_> = u.query_pairs().filter(|(k, _)| k == "prompt").collect();
        assert_eq!(prompts.len(), 1);
        assert_eq!(prompts[0].1, "login");
    }

    #[test]
    fn default_scopes() {
        let p = ProviderConfig {
            issuer: Some("https://i".into()),
            ..ProviderConfig::default()
        };
        assert_eq!(login_scopes(&p, &[]), vec!["openid", "offline_access"]);
        let p = ProviderConfig::default();
        assert!(login_scopes(&p, &[]).is_empty());
        assert_eq!(login_scopes(&p, &["repo".into()]), vec!["repo"]);
    }
}
