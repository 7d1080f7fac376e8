//! OAuth 2.0 Dynamic Client Registration (RFC 7591) of a public native client: loopback redirect
//! URIs without a port (RFC 8252 §7.3: the server must accept any port), PKCE, no secret.

use secrecy::SecretString;
use serde::Deserialize;

use super::http::{BodyError, read_body};

/// What the server registered.
#[derive(Deserialize)]
pub struct Registered {
    pub client_id: String,
    /// Only if the server insisted on a confidential client.
    #[serde(default, deserialize_with = "secret")]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|s| !s.is_empty())
        .map(SecretString::from))
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .finish()
    }
}

/// The registration request's metadata (RFC 7591 §2).
#[must_use]
pub fn client_metadata(
    redirect_uris: &[String],
    post_logout_redirect_uris: &[String],
    scopes: &[String],
) -> serde_json::Value {
    let mut m = serde_json::json!({
        "client_name": "authctl",
        "application_type": "native",
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if !scopes.is_empty() {
        m["scope"] = serde_json::Value::String(scopes.join(" "));
    }
    m
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{endpoint} is unreachable ({source})")]
    Unreachable { endpoint: String, source: BodyError },
    #[error("the registration endpoint refused: `{error}`{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        error: String,
        description: Option<String>,
    },
    #[error("the registration endpoint answered HTTP {0}")]
    Status(u16),
    #[error("the registration endpoint's answer is not a registration ({0})")]
    Invalid(serde_json::Error),
}

/// Registers a client at `endpoint`.
///
/// # Errors
/// The server refused (its `error` and `error_description`, RFC 7591 §3.2.2) or answered
/// something that is not a registration.
pub async fn register(
    http: &reqwest::Client,
    endpoint: &str,
    metadata: &serde_json::Value,
) -> Result<Registered, RegistrationError> {
    let unreachable = |source| RegistrationError::Unreachable {
        endpoint: endpoint.into(),
        source,
    };
    let resp = http
        .post(endpoint)
        .header("accept", "application/json")
        .json(metadata)
        .send()
        .await
        .map_err(|e| unreachable(e.into()))?;
    let status = resp.status();
    let body = read_body(resp).await.map_err(unreachable)?;
    if !status.is_success() {
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }
        return Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => RegistrationError::Refused {
                error: super::text::clean(&e.error),
                description: super::text::clean_opt(e.error_description),
            },
            Err(_) => RegistrationError::Status(status.as_u16()),
        });
    }
    serde_json::from_slice(&body).map_err(RegistrationError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_a_public_native_client() {
        let m = client_metadata(
            &["http://127.0.0.1/callback".into()],
            &["http://127.0.0.1/logout".into()],
            &["openid".into(), "offline_access".into()],
        );
        assert_eq!(m["application_type"], "native");
        assert_eq!(m["token_endpoint_auth_method"], "none");
        assert_eq!(m["redirect_uris"][0], "http://127.0.0.1/callback");
        assert_eq!(m["scope"], "openid offline_access");
        assert_eq!(m["post_logout_redirect_uris"][0], "http://127.0.0.1/logout");
        assert!(client_metadata(&[], &[], &[]).get("scope").is_none());
    }

    #[test]
    fn a_returned_secret_never_shows_in_debug() {
        let r: Registered =
            serde_json::from_str(r#"{"client_id":"c1","client_secret":"s3cr3t"}"#).unwrap();
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }
}
