//! Front-channel URLs the browser is sent to: the authorization request (RFC 6749 §4.1.1,
//! RFC 7636 §4.3, OpenID Connect Core §3.1.2.1) and the end-session request (OpenID Connect
//! RP-Initiated Logout 1.0 §2).

use std::collections::BTreeMap;

use url::Url;

/// What an authorization request carries besides the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    /// The CSRF `state` (RFC 6749 §10.12).
    pub state: &'a str,
    /// The PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: &'a str,
    /// The OpenID `nonce`, for OpenID logins.
    pub nonce: Option<&'a str>,
    /// Provider-specific parameters (`auth_params`, the RFC 8707 `resource`).
    pub extra: &'a BTreeMap<String, String>,
}

/// Builds the authorization request URL; the endpoint's own query is kept.
#[must_use]
pub fn authorization_url(endpoint: &Url, r: &AuthorizationRequest<'_>) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", r.client_id);
        q.append_pair("redirect_uri", r.redirect_uri);
        if !r.scopes.is_empty() {
            q.append_pair("scope", &super::join_scopes(r.scopes));
        }
        q.append_pair("state", r.state);
        q.append_pair("code_challenge", r.code_challenge);
        q.append_pair("code_challenge_method", "S256");
        if let Some(n) = r.nonce {
            q.append_pair("nonce", n);
        }
        // OIDC Core §11: offline_access is granted only with prompt=consent (unless the provider
        // is configured with its own prompt or uses another convention, e.g. Google's access_type).
        if r.scopes.iter().any(|s| s == "offline_access") && !r.extra.contains_key("prompt") {
            q.append_pair("prompt", "consent");
        }
        for (k, v) in r.extra {
            q.append_pair(k, v);
        }
    }
    url
}

/// Builds the end-session URL (RP-Initiated Logout 1.0 §2).
#[must_use]
pub fn end_session_url(
    endpoint: &Url,
    client_id: &str,
    post_logout_redirect_uri: &str,
    state: &str,
    id_token_hint: Option<&str>,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", client_id);
        if let Some(hint) = id_token_hint {
            q.append_pair("id_token_hint", hint);
        }
        q.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
        q.append_pair("state", state);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(scopes: &[&str], extra: &[(&str, &str)]) -> Url {
        let extra: BTreeMap<String, String> = extra
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).into()).collect();
        authorization_url(
            &Url::parse("https://idp.example.com/authorize?tenant=x").unwrap(),
            &AuthorizationRequest {
                client_id: "cid",
                redirect_uri: "http://127.0.0.1:5555/callback",
                scopes: &scopes,
                state: "st",
                code_challenge: "chal",
                nonce: Some("n"),
                extra: &extra,
            },
        )
    }

    fn q(u: &Url) -> BTreeMap<String, String> {
        u.query_pairs().into_owned().collect()
    }

    #[test]
    fn has_pkce_state_nonce_and_keeps_existing_query() {
        let q = q(&url(&["openid"], &[]));
        assert_eq!(q["tenant"], "x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], "chal");
        assert_eq!(q["state"], "st");
        assert_eq!(q["nonce"], "n");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5555/callback");
        assert!(!q.contains_key("prompt"));
    }

    #[test]
    fn offline_access_adds_prompt_consent() {
        let q = q(&url(&["openid", "offline_access"], &[]));
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["scope"], "openid offline_access");
    }

    #[test]
    fn configured_prompt_wins() {
        let u = url(&["openid", "offline_access"], &[("prompt", "login")]);
        let prompts: Vec<_> = u.query_pairs().filter(|(k, _)| k == "prompt").collect();
        assert_eq!(prompts.len(), 1);
        assert_eq!(prompts[0].1, "login");
    }

    #[test]
    fn end_session_url_has_client_hint_redirect_and_state_and_keeps_the_query() {
        let u = end_session_url(
            &Url::parse("https://idp.example.com/logout?p=1").unwrap(),
            "cid",
            "http://127.0.0.1:5555/logout",
            "st",
            Some("idt"),
        );
        let q: BTreeMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["p"], "1");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["id_token_hint"], "idt");
        assert_eq!(
            q["post_logout_redirect_uri"],
            "http://127.0.0.1:5555/logout"
        );
        assert_eq!(q["state"], "st");
        let u = end_session_url(&Url::parse("https://i/e").unwrap(), "c", "r", "s", None);
        assert!(!u.query_pairs().any(|(k, _)| k == "id_token_hint"));
    }
}
