//! The loopback login (RFC 8252): authorization code with PKCE S256 (RFC 7636), `state`, OIDC
//! `nonce`, the RFC 9207 `iss` check and the code exchange, all while the browser waits on the
//! loopback listener, so it is shown whether the login worked.

use oauth2::{CsrfToken, PkceCodeChallenge};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use url::Url;

use super::error::{LoginError, LoginFailure};
use super::finish::{Obtained, identify};
use super::loopback::{Callback, Loopback, Page};
use super::{LoginRequest, Progress, Target};
use crate::core::Core;
use crate::oauth::authorize::{AuthorizationRequest, authorization_url};
use crate::oauth::discovery::Endpoints;

/// Runs the browser half of a login at `target`: returns the verified tokens.
///
/// # Errors
/// Discovery, a listener that cannot bind, the user not finishing in time, the provider's error,
/// or a failed check.
pub(super) async fn run(
    core: &Core,
    req: &LoginRequest,
    target: &Target,
    progress: &mpsc::Sender<Progress>,
) -> Result<Obtained, LoginError> {
    let Target {
        provider_name,
        provider,
        account_name,
        scopes,
    } = target;
    let endpoints = core.endpoints(provider_name).await?;
    let auth_endpoint = Url::parse(&endpoints.authorization_endpoint).map_err(|source| {
        LoginError::BadEndpoint {
            provider: provider_name.clone(),
            key: "authorization_endpoint",
            source,
        }
    })?;
    let loopback = Loopback::bind(
        provider.redirect_host,
        &provider.redirect_ports,
        provider.redirect_path(),
    )
    .map_err(LoginFailure::from)?;
    let redirect_uri = loopback.redirect_uri.clone();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let csrf = CsrfToken::new_random(); // 128 bits of randomness (RFC 6749 §10.12)
    let state = SecretString::from(csrf.secret().clone());
    let is_oidc = scopes.iter().any(|s| s == "openid");
    let nonce = is_oidc.then(|| CsrfToken::new_random().secret().clone());
    let mut extra = provider.auth_params.clone();
    if let Some(r) = &provider.resource {
        extra.entry("resource".into()).or_insert_with(|| r.clone()); // RFC 8707 §2.1
    }
    let url = authorization_url(
        &auth_endpoint,
        &AuthorizationRequest {
            client_id: &provider.client_id,
            redirect_uri: &redirect_uri,
            scopes,
            state: state.expose_secret(),
            code_challenge: challenge.as_str(),
            nonce: nonce.as_deref(),
            extra: &extra,
        },
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
        .unwrap_or_else(|| provider.login_timeout(&core.config().agent));
    let exchange = Exchange {
        core,
        target,
        endpoints: &endpoints,
        redirect_uri: &redirect_uri,
        verifier: SecretString::from(verifier.secret().clone()),
        nonce: nonce.as_deref(),
    };
    let outcome = loopback
        .wait(&state, timeout, |cb| async {
            let received = std::time::Instant::now();
            let r = exchange.complete(cb).await.map(|mut o| {
                o.received = received;
                o
            });
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
    match outcome {
        None => Err(LoginError::Timeout(timeout.as_secs())),
        Some(r) => r,
    }
}

/// What completing a callback needs.
struct Exchange<'a> {
    core: &'a Core,
    target: &'a Target,
    endpoints: &'a Endpoints,
    redirect_uri: &'a str,
    verifier: SecretString,
    nonce: Option<&'a str>,
}

impl Exchange<'_> {
    /// Checks the callback, exchanges its code and verifies the ID token.
    async fn complete(&self, cb: Callback) -> Result<Obtained, LoginError> {
        let provider = &self.target.provider;
        // RFC 9207 §2.4: where the server sends `iss`, it must be the issuer we talk to.
        let expected_iss = self
            .endpoints
            .issuer
            .as_deref()
            .or(provider.issuer.as_deref());
        match (cb.param("iss"), expected_iss) {
            (Some(got), Some(want)) if got != want => {
                return Err(LoginFailure::IssuerMixup {
                    got: got.to_owned(),
                    want: want.to_owned(),
                }
                .into());
            }
            (None, Some(_))
                if self
                    .endpoints
                    .authorization_response_iss_parameter_supported =>
            {
                return Err(LoginFailure::IssMissing.into());
            }
            _ => {}
        }
        if let Some(error) = cb.param("error") {
            return Err(LoginFailure::Denied {
                error: error.to_owned(),
                description: cb.param("error_description").map(str::to_owned),
            }
            .into());
        }
        let code = cb.code().ok_or(LoginFailure::NoCode)?;
        let auth = self.core.client_auth(&self.target.provider_name).await?;
        let mut params = vec![
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", self.redirect_uri),
            ("code_verifier", self.verifier.expose_secret()),
        ];
        if let Some(r) = &provider.resource {
            params.push(("resource", r)); // RFC 8707 §2.2
        }
        let tokens = self
            .core
            .token_endpoint()
            .request(&self.endpoints.token_endpoint, &auth, &params)
            .await
            .map_err(LoginFailure::Exchange)?;
        let identity = identify(
            self.core,
            self.endpoints,
            provider,
            &auth,
            &tokens,
            self.nonce,
        )
        .await?;
        Ok(Obtained {
            tokens,
            identity,
            received: std::time::Instant::now(),
            issuer: expected_iss.unwrap_or_default().to_owned(),
            token_endpoint: self.endpoints.token_endpoint.clone(),
        })
    }
}
