//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the provider's
//! `end_session_endpoint` opened in the browser with `client_id`, the login's ID token as
//! `id_token_hint` only where the provider is configured to need it
//! (`end_session_id_token_hint`: it travels in the URL), `state`, and a loopback
//! `post_logout_redirect_uri` on the provider's redirect host and ports, which shows a page and
//! ends the flow when the provider sends the browser back.

use std::time::Duration;

use oauth2::CsrfToken;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use url::Url;

use crate::accounts::AccountRecord;
use crate::cache::TokenKey;
use crate::error::AgentError;
use crate::login::Progress;
use crate::loopback::{Loopback, Page};
use crate::state::AgentState;

/// The longest default wait for the provider's redirect back.
const END_SESSION_TIMEOUT_SECONDS: u64 = 120;

/// Builds the end-session URL (RP-Initiated Logout 1.0 §2).
#[must_use]
pub fn end_session_url(
    endpoint: &Url,
    client_id: &str,
    post_logout_redirect_uri: &str,
    state: &str,
    id_token_hint: Option<&str>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        if let Some(hint) = id_token_hint {
            q.append_pair("id_token_hint", hint);
        }
        q.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        q.append_pair("state", state);
    }
    url
}

/// Signs `account` out at its provider.
///
/// # Errors
/// The provider has no `end_session_endpoint`, no loopback port is free, or the provider did not
/// send the browser back in time.
pub async fn end_session(
    state: &AgentState,
    account: &AccountRecord,
    timeout: Option<Duration>,
    progress: mpsc::Sender<Progress>,
) -> Result<(), AgentError> {
    let provider = state.provider(&account.provider)?;
    let endpoints = state.endpoints(&account.provider).await?;
    let endpoint = endpoints.end_session_endpoint.as_deref().ok_or_else(|| {
        AgentError::EndSession(format!(
            "provider `{}` offers no end_session_endpoint (RP-initiated logout); set `end_session_endpoint` in config.toml if it has one",
            account.provider
        ))
    })?;
    let endpoint = Url::parse(endpoint).map_err(|e| {
        AgentError::EndSession(format!(
            "provider `{}` has an invalid end_session_endpoint: {e}",
            account.provider
        ))
    })?;
    let loopback = Loopback::bind(
        provider.redirect_host,
        &provider.redirect_ports,
        provider.post_logout_redirect_path(),
    )
    .await
    .map_err(|e| AgentError::EndSession(e.to_string()))?;
    let redirect_uri = loopback.redirect_uri.clone();
    let state_secret = SecretString::from(CsrfToken::new_random().secret().clone());
    // The freshest ID token the agent holds, else the one kept from the login (providers accept an
    // expired ID token they issued as a hint).
    let hint = if !provider.end_session_id_token_hint {
        None
    } else if let Some(t) = state
        .cache
        .get(&TokenKey::new(&account.name, &[], ""))
        .and_then(|t| t.id_token)
    {
        Some(t)
    } else {
        state
            .secrets
            .get(&crate::store::id_token_key(&account.name))
            .await
            .unwrap_or_default()
    };
    let url = end_session_url(
        &endpoint,
        &provider.client_id,
        &redirect_uri,
        state_secret.expose_secret(),
        hint.as_ref().map(ExposeSecret::expose_secret),
    );
    tracing::info!(account = %account.name, %redirect_uri, with_hint = hint.is_some(), "end session started");
    let _ = progress
        .send(Progress::AuthorizeUrl {
            url: url.to_string(),
            redirect_uri,
        })
        .await;
    // A provider that refuses the redirect URI shows its own page and never comes back: do not
    // keep the user waiting as long as for a login.
    let timeout = timeout.unwrap_or_else(|| {
        state
            .login_timeout(&provider)
            .min(Duration::from_secs(END_SESSION_TIMEOUT_SECONDS))
    });
    let name = account.provider.clone();
    loopback
        .wait(&state_secret, timeout, |_cb| async move {
            let page = Page {
                ok: true,
                title: "Signed out".into(),
                message: format!("You are signed out of {name}. You can close this tab."),
            };
            ((), page)
        })
        .await
        .ok_or_else(|| {
            AgentError::EndSession(format!(
                "the provider did not send the browser back within {} seconds (it may need the sign-out confirmed in the browser, or not accept the loopback post_logout_redirect_uri)",
                timeout.as_secs()
            ))
        })?;
    tracing::info!(account = %account.name, "end session completed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_has_client_hint_redirect_and_state_and_keeps_the_query() {
        let u = end_session_url(
            &Url::parse("https://idp.example.com/logout?p=1").unwrap(),
            "cid",
            "http://127.0.0.1:5555/logout",
            "st",
            Some("idt"),
        );
        let q: std::collections::BTreeMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["p"], "1");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["id_token_hint"], "idt");
        assert_eq!(
            q["post_logout_redirect_uri"],
            "http://127.0.0.1:5555/logout"
        );
        assert_eq!(q["state"], "st");
        let u = end_session_url(&Url::parse("https://i/e").unwrap(), "c", "r", "s", None);
        assert!(!u.query_pairs().any(|(k, _)| k == "id_token_hint"));
    }
}
