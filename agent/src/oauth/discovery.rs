//! Endpoint discovery: OpenID Connect Discovery 1.0 §4, else RFC 8414 authorization-server
//! metadata, else the endpoints written in the config (GitHub has no discovery document).

use serde::Deserialize;
use url::Url;

use super::http::{BodyError, read_body};
use crate::config::{ProviderConfig, UrlProblem, endpoint_url};

/// What we use of a provider's metadata; explicit config values win over discovered ones.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Endpoints {
    #[serde(default)]
    pub issuer: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    /// RFC 9207 §3: the server sends `iss` in authorization responses.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// A discovery failure.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error(
        "discovery for issuer {issuer} failed: {url} is unreachable ({source}); check the issuer URL and network access, or set the endpoints explicitly in config.toml"
    )]
    Unreachable {
        issuer: String,
        url: String,
        source: BodyError,
    },
    #[error(
        "discovery for issuer {issuer} failed: {last}; check the issuer URL (`authctl provider add … --issuer`) or set the endpoints explicitly in config.toml"
    )]
    NotFound { issuer: String, last: Attempt },
    #[error(
        "the discovery document of {expected} names a different issuer ({found}); the issuer URL must match exactly"
    )]
    IssuerMismatch { expected: String, found: String },
    /// RFC 8252 §8.3, RFC 9700 §2.6: endpoints off loopback must be https, discovered ones too.
    #[error("provider {issuer}: its {key} is refused: {problem}")]
    Insecure {
        issuer: String,
        key: &'static str,
        problem: UrlProblem,
    },
}

/// What the last well-known URL answered.
#[derive(Debug, thiserror::Error)]
pub enum Attempt {
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not a valid metadata document ({source})")]
    Invalid {
        url: String,
        source: serde_json::Error,
    },
}

impl DiscoveryError {
    /// Whether the failure is transient (network, 5xx), as opposed to a wrong configuration.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::NotFound {
                last: Attempt::Status { status, .. },
                ..
            } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The well-known URLs to try, in order: OIDC (`{issuer}/.well-known/openid-configuration`), then
/// RFC 8414 §3.1 (the well-known segment inserted between host and path).
#[must_use]
pub fn well_known_urls(issuer: &str) -> Vec<String> {
    let trimmed = issuer.trim_end_matches('/');
    let mut urls = vec![format!("{trimmed}/.well-known/openid-configuration")];
    if let Ok(u) = Url::parse(trimmed) {
        let path = u.path().trim_end_matches('/');
        let mut base = u.clone();
        base.set_path("");
        base.set_query(None);
        let origin = base.as_str().trim_end_matches('/');
        urls.push(format!(
            "{origin}/.well-known/oauth-authorization-server{path}"
        ));
        if !path.is_empty() {
            // Some servers (Keycloak-like layouts) put it under the issuer path instead.
            urls.push(format!("{trimmed}/.well-known/oauth-authorization-server"));
        }
    }
    urls
}

/// Resolves a provider's endpoints.
///
/// # Errors
/// Discovery was needed and failed, or named another issuer.
pub async fn resolve(
    http: &reqwest::Client,
    p: &ProviderConfig,
) -> Result<Endpoints, DiscoveryError> {
    let mut ep = match &p.issuer {
        Some(issuer)
            if p.authorization_endpoint.is_none()
                || p.token_endpoint.is_none()
                || p.jwks_uri.is_none() =>
        {
            fetch(http, issuer).await?
        }
        _ => Endpoints {
            issuer: p.issuer.clone(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            ..Endpoints::default()
        },
    };
    let set = |slot: &mut String, v: &Option<String>| {
        if let Some(v) = v {
            slot.clone_from(v);
        }
    };
    set(&mut ep.authorization_endpoint, &p.authorization_endpoint);
    set(&mut ep.token_endpoint, &p.token_endpoint);
    for (slot, v) in [
        (&mut ep.jwks_uri, &p.jwks_uri),
        (&mut ep.revocation_endpoint, &p.revocation_endpoint),
        (
            &mut ep.device_authorization_endpoint,
            &p.device_authorization_endpoint,
        ),
        (&mut ep.userinfo_endpoint, &p.userinfo_endpoint),
        (&mut ep.end_session_endpoint, &p.end_session_endpoint),
    ] {
        if v.is_some() {
            slot.clone_from(v);
        }
    }
    for (key, url) in ep.urls() {
        endpoint_url(url).map_err(|problem| DiscoveryError::Insecure {
            issuer: p.issuer.clone().unwrap_or_default(),
            key,
            problem,
        })?;
    }
    Ok(ep)
}

impl Endpoints {
    /// Every endpoint URL the agent may call or send a browser to, by its metadata name.
    pub fn urls(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("authorization_endpoint", Some(&self.authorization_endpoint)),
            ("token_endpoint", Some(&self.token_endpoint)),
            ("jwks_uri", self.jwks_uri.as_ref()),
            ("revocation_endpoint", self.revocation_endpoint.as_ref()),
            (
                "device_authorization_endpoint",
                self.device_authorization_endpoint.as_ref(),
            ),
            ("userinfo_endpoint", self.userinfo_endpoint.as_ref()),
            ("end_session_endpoint", self.end_session_endpoint.as_ref()),
            ("registration_endpoint", self.registration_endpoint.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?.as_str())))
    }
}

async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, DiscoveryError> {
    let mut last = None;
    for url in well_known_urls(issuer) {
        let unreachable = |source| DiscoveryError::Unreachable {
            issuer: issuer.into(),
            url: url.clone(),
            source,
        };
        // A network failure will not be cured by the next well-known URL on the same host.
        let resp = super::http::get_json(http, &url)
            .await
            .map_err(|e| unreachable(e.into()))?;
        let status = resp.status();
        if !status.is_success() {
            last = Some(Attempt::Status {
                url,
                status: status.as_u16(),
            });
            continue;
        }
        let body = read_body(resp).await.map_err(unreachable)?;
        let ep: Endpoints = match serde_json::from_slice(&body) {
            Ok(ep) => ep,
            Err(source) => {
                last = Some(Attempt::Invalid { url, source });
                continue;
            }
        };
        let found = ep.issuer.clone().unwrap_or_default();
        // OIDC Discovery §4.3 / RFC 8414 §3.3: the issuer must be identical; we forgive only a
        // trailing slash, which users add or drop when they type it.
        if found.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(DiscoveryError::IssuerMismatch {
                expected: issuer.into(),
                found: super::text::clean(&found),
            });
        }
        return Ok(ep);
    }
    Err(DiscoveryError::NotFound {
        issuer: issuer.into(),
        last: last.unwrap_or(Attempt::Status {
            url: issuer.into(),
            status: 0,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_for_root_issuer() {
        assert_eq!(
            well_known_urls("https://idp.example.com/"),
            vec![
                "https://idp.example.com/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn well_known_urls_for_issuer_with_path() {
        assert_eq!(
            well_known_urls("https://idp.example.com/realms/x"),
            vec![
                "https://idp.example.com/realms/x/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/x",
                "https://idp.example.com/realms/x/.well-known/oauth-authorization-server",
            ]
        );
    }
}
