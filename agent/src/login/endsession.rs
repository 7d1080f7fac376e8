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

use super::error::{EndSessionFailure, LoginError};
use super::loopback::{Loopback, Page};
use super::{Logins, Progress};
use crate::core::accounts::AccountRecord;
use crate::oauth::authorize::end_session_url;

/// The longest default wait for the provider's redirect back.
const END_SESSION_TIMEOUT_SECONDS: u64 = 120;

impl Logins {
    /// Signs `account` out at its provider; the account itself stays (logout removes it).
    ///
    /// # Errors
    /// The provider has no `end_session_endpoint`, no loopback port is free, or the provider did
    /// not send the browser back in time.
    pub async fn end_session(
        &self,
        account: &AccountRecord,
        timeout: Option<Duration>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<(), LoginError> {
        let core = self.core();
        let _busy = core.busy();
        let provider = core.provider(&account.provider)?;
        let endpoints = core.endpoints(&account.provider).await?;
        let endpoint = endpoints
            .end_session_endpoint
            .as_deref()
            .ok_or_else(|| EndSessionFailure::NoEndpoint(account.provider.clone()))?;
        let endpoint = Url::parse(endpoint).map_err(|source| EndSessionFailure::BadEndpoint {
            provider: account.provider.clone(),
            source,
        })?;
        let mut loopback = Loopback::bind(
            provider.redirect_host,
            &provider.redirect_ports,
            provider.post_logout_redirect_path(),
        )
        .map_err(EndSessionFailure::from)?;
        let redirect_uri = loopback.redirect_uri.clone();
        let state = SecretString::from(CsrfToken::new_random().secret().clone());
        // The freshest ID token the agent holds, else the one kept from the login (providers
        // accept an expired ID token they issued as a hint).
        let hint = if !provider.end_session_id_token_hint {
            None
        } else if let Some(t) = self.tokens().id_token(&account.name) {
            Some(t)
        } else {
            core.secrets
                .get(&crate::store::id_token_key(&account.name))
                .await
                .unwrap_or_default()
        };
        let url = end_session_url(
            &endpoint,
            &provider.client_id,
            &redirect_uri,
            state.expose_secret(),
            hint.as_ref().map(ExposeSecret::expose_secret),
        )
        .to_string();
        // The ID token never travels in a command line (`/proc/PID/cmdline` is readable by every
        // user): with a hint, the browser is launched with the loopback listener's start URL,
        // which redirects it to the provider. (A GET, not a POST form: providers' session cookies
        // are sent on a top-level GET from another site, not on a POST.)
        let url = if hint.is_some() {
            loopback.redirect_start_to(url)
        } else {
            url
        };
        tracing::info!(account = %account.name, %redirect_uri, with_hint = hint.is_some(), "end session started");
        let _ = progress
            .send(Progress::AuthorizeUrl { url, redirect_uri })
            .await;
        // A provider that refuses the redirect URI shows its own page and never comes back: do
        // not keep the user waiting as long as for a login.
        let timeout = timeout
            .unwrap_or_else(|| {
                provider
                    .login_timeout(&core.config().agent)
                    .min(Duration::from_secs(END_SESSION_TIMEOUT_SECONDS))
            })
            .min(super::MAX_LOGIN_TIMEOUT);
        let name = account.provider.clone();
        loopback
            .wait(&state, timeout, |_cb| async move {
                let page = Page {
                    ok: true,
                    title: "Signed out".into(),
                    message: format!("You are signed out of {name}. You can close this tab."),
                };
                ((), page)
            })
            .await
            .ok_or(EndSessionFailure::NoReturn(timeout.as_secs()))?;
        tracing::info!(account = %account.name, "end session completed");
        Ok(())
    }
}
