//! OAuth 2.0 Protected Resource Metadata (RFC 9728): which authorization server guards a
//! resource (an MCP server, an API), found from the `resource_metadata` parameter of the
//! resource's `WWW-Authenticate: Bearer` challenge on a 401, else at its well-known URL.

use serde::Deserialize;
use url::Url;

use super::http::{HttpError, read_body};
use super::text;
use crate::config::{UrlProblem, endpoint_url};

/// The metadata document (RFC 9728 §2), the fields a client needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
}

pub use authctl_proto::challenge::parse_bearer_challenge;

/// The well-known metadata URLs for `resource` (RFC 9728 §3.1): the suffix inserted between the
/// host and the path, then (for a resource with a path) the host's root document.
#[must_use]
pub fn well_known_urls(resource: &Url) -> Vec<String> {
    let mut origin = resource.clone();
    origin.set_path("");
    origin.set_query(None);
    origin.set_fragment(None);
    let origin = origin.as_str().trim_end_matches('/').to_owned();
    let path = resource.path().trim_end_matches('/');
    let mut urls = vec![format!(
        "{origin}/.well-known/oauth-protected-resource{path}"
    )];
    if !path.is_empty() {
        urls.push(format!("{origin}/.well-known/oauth-protected-resource"));
    }
    urls
}

/// Whether the metadata's `resource` names `asked` (RFC 9728 §3.3; a trailing slash forgiven).
#[must_use]
pub fn same_resource(asked: &str, metadata: &str) -> bool {
    asked.trim_end_matches('/') == metadata.trim_end_matches('/')
}

/// Why a resource's metadata could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{resource} is unreachable ({source})")]
    Unreachable { resource: String, source: HttpError },
    #[error(
        "the metadata at {url} is for resource `{named}`, not `{resource}`; refusing it (RFC 9728 §3.3)"
    )]
    OtherResource {
        url: String,
        named: String,
        resource: String,
    },
    #[error("the metadata at {0} names no authorization_servers")]
    NoAuthorizationServer(String),
    #[error("the metadata at {url} names an authorization server that is refused: {problem}")]
    Insecure { url: String, problem: UrlProblem },
    #[error("no protected-resource metadata (RFC 9728) found: {}", .0.join("; "))]
    NotFound(Vec<String>),
}

/// Finds the metadata of `resource` and the scope its challenge asked for, if any.
///
/// # Errors
/// See [`ResourceError`]; `NotFound` names everything that was tried.
pub async fn discover(
    http: &reqwest::Client,
    resource: &Url,
) -> Result<(ResourceMetadata, Option<String>), ResourceError> {
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    let mut scope = None;
    // A request without a token: a protected resource answers 401 with its challenge.
    let resp =
        http.get(resource.as_str())
            .send()
            .await
            .map_err(|e| ResourceError::Unreachable {
                resource: resource.to_string(),
                source: HttpError(e),
            })?;
    let challenge = resp
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_bearer_challenge);
    if let Some(ch) = challenge {
        scope = ch.scope;
        candidates.extend(ch.resource_metadata);
    } else {
        tried.push(format!(
            "{resource} answered HTTP {} without a Bearer challenge",
            resp.status().as_u16()
        ));
    }
    candidates.extend(well_known_urls(resource));
    for url in candidates {
        // A challenge may name any URL: only https (or http on loopback) is fetched.
        if let Err(problem) = endpoint_url(&url) {
            tried.push(format!("{}: {problem}", text::clean(&url)));
            continue;
        }
        let resp = match super::http::get_json(http, &url).await {
            Ok(r) => r,
            Err(e) => {
                tried.push(format!("{url}: {e}"));
                continue;
            }
        };
        if !resp.status().is_success() {
            tried.push(format!("{url} answered HTTP {}", resp.status().as_u16()));
            continue;
        }
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(e) => {
                tried.push(format!("{url}: {e}"));
                continue;
            }
        };
        let md: ResourceMetadata = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                tried.push(format!("{url} is not protected-resource metadata ({e})"));
                continue;
            }
        };
        // RFC 9728 §3.3 / §7.3: metadata naming another resource must not be used.
        if !same_resource(resource.as_str(), &md.resource) {
            return Err(ResourceError::OtherResource {
                url,
                named: super::text::clean(&md.resource),
                resource: resource.to_string(),
            });
        }
        let Some(server) = md.authorization_servers.first() else {
            return Err(ResourceError::NoAuthorizationServer(url));
        };
        endpoint_url(server).map_err(|problem| ResourceError::Insecure {
            url: url.clone(),
            problem,
        })?;
        return Ok((md, scope));
    }
    Err(ResourceError::NotFound(tried))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_inserted_between_host_and_path() {
        let u = Url::parse("https://r.example:8443/mcp/v1?x=1").unwrap();
        assert_eq!(
            well_known_urls(&u),
            vec![
                "https://r.example:8443/.well-known/oauth-protected-resource/mcp/v1",
                "https://r.example:8443/.well-known/oauth-protected-resource",
            ]
        );
        let u = Url::parse("https://r.example/").unwrap();
        assert_eq!(
            well_known_urls(&u),
            vec!["https://r.example/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn resource_identity_forgives_only_a_trailing_slash() {
        assert!(same_resource(
            "https://r.example/mcp",
            "https://r.example/mcp/"
        ));
        assert!(!same_resource(
            "https://r.example/mcp",
            "https://evil.example/mcp"
        ));
    }
}
