//! OAuth 2 / OpenID Connect protocol pieces.
//!
//! `oauth2` supplies PKCE and state, `openidconnect` verifies ID tokens. Discovery and the token
//! endpoint are our own small modules: the libraries parse token responses strictly (a 201, an
//! error sent with HTTP 200, `expires_in` as a string or a form-encoded body all fail there), know
//! no RFC 8414 discovery, and hide the HTTP status and `Retry-After` that our retry policy needs.

pub mod discovery;
pub mod id_token;
pub mod registration;
pub mod resource;
pub mod token;

use std::time::Duration;

/// The HTTP client every provider request goes through: rustls, a timeout, no redirects (a token
/// endpoint that redirects is misconfigured, and following it could leak the request body).
///
/// # Panics
/// Never in practice: building a client with these options cannot fail.
#[must_use]
pub fn http_client(timeout: Duration) -> reqwest::Client {
    #[allow(clippy::expect_used)]
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("authctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static reqwest configuration")
}

/// GETs a metadata document at `url`, asking for JSON; a network failure comes back described.
///
/// # Errors
/// The request could not be made or answered (a status is not an error here).
pub async fn get_json(http: &reqwest::Client, url: &str) -> Result<reqwest::Response, String> {
    http.get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| crate::error::describe_reqwest(&e))
}

/// Joins scopes the way RFC 6749 §3.3 wants them: space-delimited.
#[must_use]
pub fn join_scopes(scopes: &[String]) -> String {
    scopes.join(" ")
}
