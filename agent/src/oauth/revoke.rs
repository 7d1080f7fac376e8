//! Token revocation (RFC 7009).

use secrecy::{ExposeSecret, SecretString};

use super::http::HttpError;
use super::token::ClientAuth;

/// Why a revocation did not go through.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("revocation failed: {0}")]
    Transport(#[from] HttpError),
    #[error("revocation failed: the provider answered HTTP {0}")]
    Http(u16),
}

/// Revokes `refresh_token` at `endpoint`.
///
/// # Errors
/// The request failed or the provider answered with an error status.
pub async fn revoke(
    http: &reqwest::Client,
    endpoint: &str,
    auth: &ClientAuth,
    refresh_token: &SecretString,
) -> Result<(), RevokeError> {
    let mut form = vec![
        ("token", refresh_token.expose_secret()),
        ("token_type_hint", "refresh_token"),
    ];
    let req = auth.apply(http.post(endpoint), &mut form);
    let resp = req.form(&form).send().await.map_err(HttpError)?;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(RevokeError::Http(resp.status().as_u16()))
    }
}
