//! Token revocation (RFC 7009).

use secrecy::ExposeSecret;

use crate::accounts::AccountRecord;
use crate::state::AgentState;
use crate::store;

/// Revokes the account's refresh token where the provider offers a revocation endpoint.
/// Returns whether it was revoked, and a note when it was not.
pub async fn revoke(state: &AgentState, account: &AccountRecord) -> (bool, String) {
    let endpoints = match state.endpoints(&account.provider).await {
        Ok(e) => e,
        Err(e) => return (false, format!("not revoked: {e}")),
    };
    let Some(endpoint) = endpoints.revocation_endpoint.clone() else {
        return (
            false,
            "not revoked: the provider has no revocation endpoint".into(),
        );
    };
    let rt = match state
        .secrets
        .get(&store::refresh_token_key(&account.name))
        .await
    {
        Ok(Some(rt)) => rt,
        Ok(None) => return (false, "not revoked: no refresh token is stored".into()),
        Err(e) => return (false, format!("not revoked: {e}")),
    };
    let auth = match state.client_auth(&account.provider).await {
        Ok(a) => a,
        Err(e) => return (false, format!("not revoked: {e}")),
    };
    let mut form = vec![
        ("token", rt.expose_secret()),
        ("token_type_hint", "refresh_token"),
    ];
    let req = auth.apply(state.http().post(&endpoint), &mut form);
    match req.form(&form).send().await {
        // RFC 7009 §2.2: 200 whether or not the token was valid.
        Ok(r) if r.status().is_success() => (true, String::new()),
        Ok(r) => (
            false,
            format!(
                "revocation failed: the provider answered HTTP {}",
                r.status().as_u16()
            ),
        ),
        Err(e) => (
            false,
            format!("revocation failed: {}", crate::error::describe_reqwest(&e)),
        ),
    }
}
