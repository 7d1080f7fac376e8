//! Zero-configuration logins to a protected resource (an MCP server, an API):
//! `authctl login https://resource.example.com`.
//!
//! The resource's protected-resource metadata (RFC 9728) names its authorization server, whose
//! metadata (RFC 8414, or OpenID discovery) gives the endpoints; with no client configured for the
//! resource, a public native client is registered by Dynamic Client Registration (RFC 7591). The
//! result is remembered as an ordinary provider in `config.toml` (with `resource`, so every
//! request carries the RFC 8707 resource indicator), and the next login reuses it.

use std::sync::Arc;

use url::Url;

use super::Logins;
use super::error::{LoginError, LoginFailure, ResourceSetup};
use crate::config::{self, ClientAuthMethod, ProviderConfig};
use crate::core::NewProvider;
use crate::oauth::{discovery, registration, resource};

/// Whether a login target is a resource URL rather than a provider or account name.
#[must_use]
pub fn is_resource(target: &str) -> bool {
    target.starts_with("https://") || target.starts_with("http://")
}

/// A provider name for `resource`: its host, port and path, reduced to name characters.
#[must_use]
pub fn provider_name(resource: &Url) -> String {
    let mut raw = resource.host_str().unwrap_or("resource").to_owned();
    if let Some(port) = resource.port() {
        raw = format!("{raw}-{port}");
    }
    raw.push_str(resource.path().trim_end_matches('/'));
    let mut name: String = raw
        .trim_matches(|c| c == '[' || c == ']')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(60);
    name.trim_matches('-').to_owned()
}

/// The scopes of a resource login: those the resource's challenge asked for, else those its
/// metadata lists; plus `openid` and `offline_access` where the authorization server offers them
/// (a refresh token needs `offline_access` at OpenID providers).
#[must_use]
pub fn login_scopes(
    challenge_scope: Option<&str>,
    resource_scopes: &[String],
    server_scopes: Option<&[String]>,
) -> Vec<String> {
    let mut scopes: Vec<String> = match challenge_scope {
        Some(s) if !s.trim().is_empty() => s.split_whitespace().map(str::to_owned).collect(),
        _ => resource_scopes.to_vec(),
    };
    let mut out: Vec<String> = ["openid", "offline_access"]
        .into_iter()
        .filter(|extra| server_scopes.is_some_and(|s| s.iter().any(|x| x == extra)))
        .filter(|extra| !scopes.iter().any(|x| x == extra))
        .map(str::to_owned)
        .collect();
    out.append(&mut scopes);
    out
}

impl Logins {
    /// The provider configured for the resource `url` (the one its zero-configuration login
    /// remembered), if any.
    #[must_use]
    pub fn provider_of_resource(&self, url: &str) -> Option<String> {
        self.core()
            .config()
            .providers
            .iter()
            .find(|(_, p)| {
                p.resource
                    .as_deref()
                    .is_some_and(|r| resource::same_resource(url, r))
            })
            .map(|(name, _)| name.clone())
    }

    /// A first login to the resource `url` on demand (`GetToken` naming a resource no provider
    /// serves yet): the zero-configuration set-up and the browser login, shared by every caller
    /// that waits for it. Returns the provider it set up.
    ///
    /// # Errors
    /// As [`Logins::login`] for a resource URL, or the on-demand cool-down.
    pub async fn resource_login(self: &Arc<Self>, url: &str) -> Result<String, LoginError> {
        self.on_demand_login(url).await?;
        self.provider_of_resource(url)
            .ok_or_else(|| crate::core::CoreError::NoAccountYet(url.to_owned()).into())
    }

    /// The provider that logs in to `target` (a resource URL): the one configured with that
    /// `resource`, else a new one found and registered as described above.
    ///
    /// # Errors
    /// The URL is invalid, the metadata cannot be found or is inconsistent, the authorization
    /// server cannot be discovered, or registration is impossible or refused.
    pub(super) async fn provider_for_resource(&self, target: &str) -> Result<String, LoginError> {
        let core = self.core();
        let url = Url::parse(target).map_err(|source| LoginError::BadTarget {
            target: target.to_owned(),
            source,
        })?;
        crate::config::endpoint_url(url.as_str()).map_err(LoginError::InsecureTarget)?;
        let _setup = self.resource_setup.lock().await;
        if let Some(name) = self.provider_of_resource(target) {
            tracing::debug!(provider = %name, resource = %target, "resource already configured");
            return Ok(name);
        }
        let config = core.config();
        let failed = |reason: ResourceSetup| {
            LoginError::from(LoginFailure::Resource {
                target: target.to_owned(),
                reason,
            })
        };
        let (metadata, challenge_scope) = resource::discover(core.http(), &url)
            .await
            .map_err(|e| failed(e.into()))?;
        let issuer = metadata.authorization_servers[0].clone();
        let mut p = ProviderConfig {
            issuer: Some(issuer.clone()),
            resource: Some(metadata.resource.clone()),
            ..ProviderConfig::default()
        };
        let endpoints = discovery::resolve(core.http(), &p)
            .await
            .map_err(|e| failed(e.into()))?;
        p.scopes = login_scopes(
            challenge_scope.as_deref(),
            &metadata.scopes_supported,
            endpoints.scopes_supported.as_deref(),
        );
        let registration_endpoint =
            endpoints.registration_endpoint.as_deref().ok_or_else(|| {
                failed(ResourceSetup::NoRegistration {
                    issuer: issuer.clone(),
                    target: target.to_owned(),
                })
            })?;
        // Mix-up defence: the redirect paths of a registration the agent makes are its own and
        // unpredictable. A hostile authorization server that bounces the browser to an honest one
        // (whose clients are registered with `/callback`) cannot have the honest server send a
        // code to this login's listener, which answers nothing but its own path.
        let tag = unpredictable_path_segment();
        p.redirect_path = Some(format!("/callback/{tag}"));
        p.post_logout_redirect_path = Some(format!("/logout/{tag}"));
        let host = p.redirect_host.uri_host();
        let redirect_uris = [format!("http://{host}{}", p.redirect_path())];
        let logout_uris = [format!("http://{host}{}", p.post_logout_redirect_path())];
        // Register only scopes the server says it knows: resource scopes are often the resource
        // server's, and a server may refuse a registration naming them (or one without a list).
        let register_scopes: Vec<String> = endpoints
            .scopes_supported
            .as_deref()
            .map(|known| {
                p.scopes
                    .iter()
                    .filter(|s| known.contains(s))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let reg = registration::register(
            core.http(),
            registration_endpoint,
            &registration::client_metadata(&redirect_uris, &logout_uris, &register_scopes),
        )
        .await
        .map_err(|e| failed(e.into()))?;
        p.client_id.clone_from(&reg.client_id);
        p.token_endpoint_auth_method = match reg.token_endpoint_auth_method.as_deref() {
            Some("client_secret_basic") => Some(ClientAuthMethod::ClientSecretBasic),
            Some("client_secret_post") => Some(ClientAuthMethod::ClientSecretPost),
            _ => None,
        };
        let mut name = provider_name(&url);
        let mut n = 2;
        while config.providers.contains_key(&name) || core.accounts.get(&name).is_some() {
            name = format!("{}-{n}", provider_name(&url));
            n += 1;
        }
        config::validate_provider(&name, &p).map_err(|e| failed(e.into()))?;
        let client_id = p.client_id.clone();
        core.add_provider(NewProvider {
            name: name.clone(),
            config: p,
            client_secret: reg.client_secret,
            replace: false,
            comment: Some(format!(
                "Registered by `authctl login {url}` (RFC 7591 dynamic client registration)."
            )),
            default_routes: Vec::new(),
        })
        .await?;
        tracing::info!(provider = %name, resource = %target, authorization_server = %issuer, %client_id, "registered a client for the resource");
        Ok(name)
    }
}

/// 128 random bits, base64url: a redirect path segment nobody can guess.
fn unpredictable_path_segment() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_host_port_and_path() {
        let n = |u: &str| provider_name(&Url::parse(u).unwrap());
        assert_eq!(n("https://mcp.example.com"), "mcp.example.com");
        assert_eq!(
            n("https://mcp.example.com/v1/mcp/"),
            "mcp.example.com-v1-mcp"
        );
        assert_eq!(n("http://127.0.0.1:8080/mcp"), "127.0.0.1-8080-mcp");
        assert!(config::valid_name(&n("http://[::1]:9/x")));
        assert!(config::valid_name(&n(&format!(
            "https://a.example/{}",
            "p".repeat(200)
        ))));
    }

    #[test]
    fn scopes_from_challenge_else_metadata_plus_offered_oidc_scopes() {
        let server = vec!["openid".to_owned(), "offline_access".to_owned()];
        assert_eq!(
            login_scopes(Some("mcp:read"), &["a".into()], Some(&server)),
            vec!["openid", "offline_access", "mcp:read"]
        );
        assert_eq!(
            login_scopes(None, &["a".into(), "b".into()], None),
            vec!["a", "b"]
        );
        assert_eq!(
            login_scopes(Some(" "), &["a".into()], Some(&["offline_access".into()])),
            vec!["offline_access", "a"]
        );
    }

    #[test]
    fn resource_targets_are_urls() {
        assert!(is_resource("https://mcp.example.com"));
        assert!(is_resource("http://127.0.0.1:1/mcp"));
        assert!(!is_resource("corp"));
    }
}
