//! The token endpoint (RFC 6749 §3.2, §4.1.3, §6), parsed leniently the way real providers answer:
//! any 2xx with a valid body is success (RFC 6749 says 200, some answer 201), an `error` body is an
//! error whatever the status (GitHub sends them with 200), `expires_in` may be a string, the body
//! may be form-encoded, and a missing `token_type` means Bearer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::http::HttpError;
use crate::config::ClientAuthMethod;

/// How the client identifies itself at the token endpoint.
#[derive(Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<SecretString>,
    pub method: ClientAuthMethod,
}

impl ClientAuth {
    /// Authenticates a request to the token or revocation endpoint (RFC 6749 §2.3.1): HTTP Basic
    /// for `client_secret_basic`, form fields for `client_secret_post`, else `client_id` alone.
    pub fn apply<'a>(
        &'a self,
        req: reqwest::RequestBuilder,
        form: &mut Vec<(&'a str, &'a str)>,
    ) -> reqwest::RequestBuilder {
        match (self.method, &self.secret) {
            (ClientAuthMethod::ClientSecretBasic, Some(secret)) => {
                // The id and secret are form-urlencoded before the Basic encoding.
                let user = form_urlencode(&self.client_id);
                let pass = form_urlencode(secret.expose_secret());
                let cred =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                req.header("authorization", format!("Basic {cred}"))
            }
            (ClientAuthMethod::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose_secret()));
                req
            }
            _ => {
                form.push(("client_id", &self.client_id));
                req
            }
        }
    }
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("method", &self.method)
            .finish()
    }
}

/// A successful token response. Every token is a secret.
pub struct TokenSet {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// The granted scope, when the server says (RFC 6749 §5.1: omitted means as requested).
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| "[REDACTED]"))
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A token-endpoint failure. Carries no secret: provider messages only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// An OAuth error response (RFC 6749 §5.2).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
    },
    /// A non-2xx answer without an OAuth error body.
    #[error("the token endpoint answered HTTP {status}{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Http {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the token endpoint is unreachable: {0}")]
    Network(String),
    #[error("the token endpoint did not answer in time")]
    Timeout,
    #[error("the token endpoint sent a malformed response: {0}")]
    Malformed(String),
}

impl TokenError {
    /// Only these end a login (RFC 6749 §5.2): the grant or the client is no longer valid.
    #[must_use]
    pub fn is_definitive(&self) -> bool {
        matches!(self, Self::Rejected { error, .. } if error == "invalid_grant" || error == "invalid_client" || error == "unauthorized_client")
    }

    /// Worth retrying later with the same refresh token.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::Network(_) | Self::Timeout | Self::Malformed(_) => true,
            Self::Rejected { error, .. } => {
                error == "temporarily_unavailable"
                    || error == "server_error"
                    || error == "slow_down"
            }
        }
    }

    /// The server's `Retry-After`, if it sent one.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The token endpoint as the agent's workflows see it: the provider over HTTP in the agent
/// ([`HttpTokenEndpoint`]), a script in unit tests. The one seam between the token lifecycle and
/// the network.
pub trait TokenEndpoint: Send + Sync {
    /// Posts a token request with `params` (the grant) to `endpoint` and parses the answer.
    fn request<'a>(
        &'a self,
        endpoint: &'a str,
        auth: &'a ClientAuth,
        params: &'a [(&'a str, &'a str)],
    ) -> Pin<Box<dyn Future<Output = Result<TokenSet, TokenError>> + Send + 'a>>;
}

/// The real token endpoint, over the agent's HTTP client (built on first use: loading the root
/// certificates is the costliest part of start-up, and a cache hit never needs it).
pub struct HttpTokenEndpoint {
    timeout: Duration,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl HttpTokenEndpoint {
    /// A client with `timeout` per request, built on first use.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            client: std::sync::OnceLock::new(),
        }
    }

    /// The HTTP client, for the other provider requests.
    pub fn client(&self) -> &reqwest::Client {
        self.client
            .get_or_init(|| super::http::client(self.timeout))
    }
}

impl TokenEndpoint for HttpTokenEndpoint {
    fn request<'a>(
        &'a self,
        endpoint: &'a str,
        auth: &'a ClientAuth,
        params: &'a [(&'a str, &'a str)],
    ) -> Pin<Box<dyn Future<Output = Result<TokenSet, TokenError>> + Send + 'a>> {
        Box::pin(request(self.client(), endpoint, auth, params))
    }
}

/// Posts a token request with `params` (the grant) and parses the answer.
///
/// # Errors
/// See [`TokenError`].
pub async fn request(
    http: &reqwest::Client,
    endpoint: &str,
    auth: &ClientAuth,
    params: &[(&str, &str)],
) -> Result<TokenSet, TokenError> {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    let req = auth.apply(
        http.post(endpoint).header("accept", "application/json"),
        &mut form,
    );
    let resp = req.form(&form).send().await.map_err(classify)?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = super::http::read_body(resp).await.map_err(|e| match e {
        super::http::BodyError::Transport(t) => classify(t.0),
        too_large @ super::http::BodyError::TooLarge { .. } => {
            TokenError::Malformed(too_large.to_string())
        }
    })?;
    parse_response(status, retry_after, &body)
}

fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn classify(e: reqwest::Error) -> TokenError {
    let e = HttpError(e);
    if e.is_timeout() {
        TokenError::Timeout
    } else if e.is_body() {
        TokenError::Malformed(e.to_string())
    } else {
        TokenError::Network(e.to_string())
    }
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3); an HTTP date is read as a short wait.
#[must_use]
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    (!v.is_empty()).then(|| Duration::from_secs(5))
}

/// Parses a token-endpoint answer (pure; unit-tested).
///
/// # Errors
/// See [`TokenError`].
pub fn parse_response(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<TokenSet, TokenError> {
    let fields = parse_body(body);
    let Some(fields) = fields else {
        return Err(if (200..300).contains(&status) {
            TokenError::Malformed("the body is neither JSON nor form-encoded".into())
        } else {
            TokenError::Http {
                status,
                retry_after,
            }
        });
    };
    let get = |k: &str| -> Option<String> {
        match fields.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    if let Some(error) = get("error") {
        if status == 429 || status >= 500 {
            // A 5xx/429 is transient whatever its body says; keep the status for backoff.
            return Err(TokenError::Http {
                status,
                retry_after,
            });
        }
        return Err(TokenError::Rejected {
            error: super::text::clean(&error),
            description: super::text::clean_opt(get("error_description")),
        });
    }
    if !(200..300).contains(&status) {
        return Err(TokenError::Http {
            status,
            retry_after,
        });
    }
    let access_token = get("access_token")
        .ok_or_else(|| TokenError::Malformed("no access_token in the response".into()))?;
    // A negative lifetime is read as 0 (the token layer gives such tokens a short floor); a value
    // that is no number at all is a malformed response.
    let expires_in = match get("expires_in") {
        None => None,
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "clamped to at least 0; `as` saturates at u64::MAX"
                    )]
                    let secs = f.max(0.0) as u64;
                    secs
                })
                .ok_or_else(|| {
                    TokenError::Malformed(format!("expires_in `{v}` is not a number"))
                })?,
        ),
    };
    Ok(TokenSet {
        access_token: SecretString::from(access_token),
        token_type: get("token_type").unwrap_or_else(|| "Bearer".into()),
        expires_in,
        refresh_token: get("refresh_token").map(SecretString::from),
        id_token: get("id_token").map(SecretString::from),
        scope: get("scope"),
    })
}

pub fn parse_body(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.starts_with('{') {
        return match serde_json::from_str::<Value>(text).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        };
    }
    if text.is_empty() || !text.contains('=') {
        return None;
    }
    Some(
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(status: u16, body: &str) -> TokenSet {
        parse_response(status, None, body.as_bytes()).unwrap()
    }
    fn err(status: u16, body: &str) -> TokenError {
        parse_response(status, None, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn standard_json() {
        let t = ok(
            200,
            r#"{"access_token":"a","token_type":"Bearer","expires_in":60,"refresh_token":"r","scope":"openid"}"#,
        );
        assert_eq!(t.access_token.expose_secret(), "a");
        assert_eq!(t.expires_in, Some(60));
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "r");
        assert_eq!(t.scope.as_deref(), Some("openid"));
    }

    #[test]
    fn status_201_is_success() {
        assert_eq!(ok(201, r#"{"access_token":"a"}"#).token_type, "Bearer");
    }

    #[test]
    fn expires_in_as_string() {
        assert_eq!(
            ok(200, r#"{"access_token":"a","expires_in":"3599"}"#).expires_in,
            Some(3599)
        );
    }

    #[test]
    fn absurd_lifetimes_are_read_safely() {
        assert_eq!(
            ok(200, r#"{"access_token":"a","expires_in":-5}"#).expires_in,
            Some(0)
        );
        assert_eq!(
            ok(200, r#"{"access_token":"a","expires_in":1e300}"#).expires_in,
            Some(u64::MAX)
        );
        assert!(matches!(
            err(200, r#"{"access_token":"a","expires_in":"soon"}"#),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn form_encoded_body() {
        let t = ok(200, "access_token=gho_x&scope=repo&token_type=bearer");
        assert_eq!(t.access_token.expose_secret(), "gho_x");
    }

    #[test]
    fn error_with_http_200_is_an_error() {
        let e = err(
            200,
            r#"{"error":"bad_verification_code","error_description":"gone"}"#,
        );
        assert!(
            matches!(e, TokenError::Rejected { ref error, .. } if error == "bad_verification_code")
        );
    }

    #[test]
    fn invalid_grant_is_definitive() {
        let e = err(400, r#"{"error":"invalid_grant"}"#);
        assert!(e.is_definitive());
        assert!(!e.is_transient());
    }

    #[test]
    fn server_errors_are_transient_and_keep_retry_after() {
        let e = parse_response(429, Some(Duration::from_secs(7)), b"busy").unwrap_err();
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = err(503, r#"{"error":"server_error"}"#);
        assert!(e.is_transient() && !e.is_definitive());
    }

    #[test]
    fn garbage_with_200_is_malformed_and_transient() {
        let e = err(200, r#"{"access_token":"#);
        assert!(matches!(e, TokenError::Malformed(_)));
        assert!(e.is_transient());
    }

    #[test]
    fn missing_access_token_is_malformed() {
        assert!(matches!(
            err(200, r#"{"token_type":"Bearer"}"#),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn errors_and_debug_never_show_tokens() {
        let t = ok(
            200,
            r#"{"access_token":"SECRET1","refresh_token":"SECRET2","id_token":"SECRET3"}"#,
        );
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(parse_retry_after(""), None);
    }
}
