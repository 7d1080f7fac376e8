//! OAuth 2 / OpenID Connect protocol pieces: requests and responses, no agent state.
//!
//! `oauth2` supplies PKCE and state, `openidconnect` verifies ID tokens. Discovery and the token
//! endpoint are our own small modules: the libraries parse token responses strictly (a 201, an
//! error sent with HTTP 200, `expires_in` as a string or a form-encoded body all fail there), know
//! no RFC 8414 discovery, and hide the HTTP status and `Retry-After` that our retry policy needs.

pub mod authorize;
pub mod device;
pub mod discovery;
pub mod http;
pub mod id_token;
pub mod registration;
pub mod resource;
pub mod revoke;
pub mod text;
pub mod token;

/// Joins scopes the way RFC 6749 §3.3 wants them: space-delimited.
#[must_use]
pub fn join_scopes(scopes: &[String]) -> String {
    scopes.join(" ")
}
