//! ID token verification (OpenID Connect Core §3.1.3.7) with `openidconnect`: signature against
//! the provider's JWKS, `iss`, `aud`, `exp` (with clock skew tolerated) and `nonce`.

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};
use secrecy::{ExposeSecret, SecretString};

/// Clock difference tolerated between us and the provider (OIDC Core §3.1.3.7 allows "a small
/// leeway").
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// Who logged in, from a verified ID token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    /// The email, else `preferred_username`, else `name`.
    pub display_name: String,
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("cannot fetch the provider's signing keys from {url}: {detail}")]
    Jwks { url: String, detail: String },
    #[error("the ID token is invalid: {0}")]
    Invalid(String),
}

/// Fetches the JWKS at `jwks_uri`.
///
/// # Errors
/// Network failure or an invalid document.
pub async fn fetch_jwks(
    http: &reqwest::Client,
    jwks_uri: &str,
) -> Result<CoreJsonWebKeySet, IdTokenError> {
    let err = |detail: String| IdTokenError::Jwks {
        url: jwks_uri.into(),
        detail,
    };
    let resp = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| err(crate::error::describe_reqwest(&e)))?;
    if !resp.status().is_success() {
        return Err(err(format!("HTTP {}", resp.status().as_u16())));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| err(crate::error::describe_reqwest(&e)))?;
    serde_json::from_slice(&body).map_err(|e| err(format!("not a JWK set ({e})")))
}

/// Verifies `id_token` and returns who it names.
///
/// # Errors
/// Any failed check; the message never contains the token.
pub fn verify(
    id_token: &SecretString,
    issuer: &str,
    client_id: &str,
    client_secret: Option<&SecretString>,
    jwks: CoreJsonWebKeySet,
    nonce: Option<&str>,
) -> Result<Identity, IdTokenError> {
    let invalid = |e: &dyn std::fmt::Display| IdTokenError::Invalid(e.to_string());
    // A provider configured without an issuer (multi-tenant endpoints) cannot have its `iss`
    // compared; signature, audience, expiry and nonce are still checked.
    let check_issuer = !issuer.is_empty();
    let issuer = IssuerUrl::new(if check_issuer {
        issuer.to_owned()
    } else {
        "https://issuer.invalid".into()
    })
    .map_err(|e| invalid(&e))?;
    let client_id = ClientId::new(client_id.to_owned());
    let verifier = match client_secret {
        Some(s) => CoreIdTokenVerifier::new_confidential_client(
            client_id,
            ClientSecret::new(s.expose_secret().to_owned()),
            issuer,
            jwks,
        ),
        None => CoreIdTokenVerifier::new_public_client(client_id, issuer, jwks),
    }
    .set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW)
    .require_issuer_match(check_issuer);
    let token: CoreIdToken = id_token
        .expose_secret()
        .parse()
        .map_err(|_| IdTokenError::Invalid("it is not a well-formed JWT".into()))?;
    // OIDC Core §3.1.3.7 item 11: the nonce is checked when one was sent (the device flow sends none).
    let claims = match nonce {
        Some(n) => token.claims(&verifier, &Nonce::new(n.to_owned())),
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(|e| invalid(&e))?;
    let display_name = claims
        .email()
        .map(|e| e.as_str().to_owned())
        .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
        .or_else(|| {
            claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned())
        })
        .unwrap_or_default();
    Ok(Identity {
        subject: claims.subject().as_str().to_owned(),
        display_name,
    })
}
