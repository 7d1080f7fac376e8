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

/// A `Bearer` challenge's parameters (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: Option<String>,
    pub scope: Option<String>,
}

/// Parses the `Bearer` challenge out of a `WWW-Authenticate` value, which may hold several
/// challenges (`DPoP algs="ES256", Bearer realm="x", resource_metadata="…"`). `None` when there is
/// no `Bearer` challenge.
#[must_use]
pub fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut in_bearer = false;
    let mut found = None::<Challenge>;
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        if p.done() {
            break;
        }
        let name = p.token();
        if name.is_empty() {
            p.i += 1; // not a token character: skip it
            continue;
        }
        p.skip(|c| c == b' ' || c == b'\t');
        if p.peek() == Some(b'=') && p.peek_at(1) != Some(b'=') {
            // An auth-param of the current challenge.
            p.i += 1;
            p.skip(|c| c == b' ' || c == b'\t');
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token()
            };
            if in_bearer && let Some(ch) = found.as_mut() {
                match name.to_ascii_lowercase().as_str() {
                    "resource_metadata" => ch.resource_metadata = Some(value),
                    "scope" => ch.scope = Some(value),
                    _ => {}
                }
            }
        } else {
            // A new challenge (its scheme), possibly followed by a token68 we ignore.
            in_bearer = name.eq_ignore_ascii_case("bearer") && found.is_none();
            if in_bearer {
                found = Some(Challenge::default());
            }
        }
    }
    found
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.get(self.i + n).copied()
    }
    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }
    /// RFC 9110 token characters (plus `/` and `=` padding of a token68 are not needed here).
    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c));
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> String {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

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
    fn bearer_challenge_with_metadata_and_scope() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="mcp", resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp", scope="files:read files:write""#,
        )
        .unwrap();
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://r.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
    }

    #[test]
    fn bearer_among_other_challenges_and_escapes() {
        let c = parse_bearer_challenge(
            r#"DPoP algs="ES256", resource_metadata="https://wrong", Bearer error="invalid_token", error_description="say \"hi\"", resource_metadata="https://right""#,
        )
        .unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("https://right"));
        assert_eq!(c.scope, None);
        assert_eq!(
            parse_bearer_challenge("bearer").unwrap(),
            Challenge::default()
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge(""), None);
        let c =
            parse_bearer_challenge(r#"Bearer scope=openid, Basic resource_metadata="x""#).unwrap();
        assert_eq!(c.scope.as_deref(), Some("openid"));
        assert_eq!(
            c.resource_metadata, None,
            "a later challenge's params are its own"
        );
    }

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
