//! The step every login flow ends with: the ID token verified, the user checked, and the tokens
//! handed to [`Tokens`] to store (the refresh token durably first).

use std::time::Instant;

use super::error::{LoginError, LoginFailure};
use super::{LoginOutcome, LoginRequest, Target};
use crate::config::ProviderConfig;
use crate::core::Core;
use crate::oauth::discovery::Endpoints;
use crate::oauth::id_token::{Expected, Identity};
use crate::oauth::token::{ClientAuth, TokenSet};
use crate::tokens::{NewLogin, Tokens};

/// What a flow obtained: the tokens, who they are for, and when the provider's answer arrived.
pub(super) struct Obtained {
    pub tokens: TokenSet,
    pub identity: Identity,
    pub received: Instant,
    /// The issuer and token endpoint the tokens came from.
    pub issuer: String,
    pub token_endpoint: String,
}

/// Verifies the ID token of a token response, if there is one, and returns who it names.
///
/// # Errors
/// The provider has no JWKS, or the ID token fails a check.
pub(super) async fn identify(
    core: &Core,
    endpoints: &Endpoints,
    provider: &ProviderConfig,
    auth: &ClientAuth,
    set: &TokenSet,
    nonce: Option<&str>,
) -> Result<Identity, LoginError> {
    let Some(idt) = &set.id_token else {
        return Ok(Identity::default());
    };
    let jwks_uri = endpoints
        .jwks_uri
        .as_deref()
        .ok_or(LoginFailure::NoJwksUri)?;
    let expected = Expected {
        issuer: endpoints
            .issuer
            .as_deref()
            .or(provider.issuer.as_deref())
            .unwrap_or_default(),
        client_id: &auth.client_id,
        client_secret: auth.secret.as_ref(),
        nonce,
        subject: None,
    };
    Ok(core
        .jwks
        .verify(core.http(), jwks_uri, idt, &expected)
        .await?)
}

/// Stores what a flow obtained as the login of `target`.
///
/// # Errors
/// A re-login that must stay with its user came back as another, or the store failed.
pub(super) async fn finish(
    tokens: &Tokens,
    req: &LoginRequest,
    target: Target,
    obtained: Obtained,
) -> Result<LoginOutcome, LoginError> {
    let core = tokens.core();
    let Obtained {
        tokens: set,
        identity,
        received,
        issuer,
        token_endpoint,
    } = obtained;
    let account = target.account_name;
    if req.same_subject
        && let Some(existing) = core.accounts.get(&account)
        && !existing.subject.is_empty()
        && !identity.subject.is_empty()
        && existing.subject != identity.subject
    {
        return Err(LoginFailure::OtherUser {
            account,
            got: identity.subject,
            existing: existing.subject,
        }
        .into());
    }
    let mut warnings = Vec::new();
    if set.refresh_token.is_none() {
        warnings.push("the provider issued no refresh token, so this login lasts only as long as its access token; \
             ask for offline access (scope `offline_access` for OpenID providers, `access_type=offline` \
             for Google) in the provider's scopes or auth_params and log in again".to_owned());
    }
    let (record, refused) = tokens
        .store_login(NewLogin {
            provider: target.provider_name,
            account: account.clone(),
            scopes: target.scopes,
            tokens: set,
            subject: identity.subject,
            display_name: identity.display_name,
            keep_id_token: target.provider.end_session_id_token_hint,
            issuer,
            token_endpoint,
        })
        .await?;
    if refused.is_some() {
        warnings.push(record.last_error.clone());
    }
    // The agent's own share of a login (code exchange, ID-token check, durable store), for the
    // benchmark suite: callback received → tokens stored.
    tracing::info!(
        %account,
        callback_to_stored_us = u64::try_from(received.elapsed().as_micros()).unwrap_or(u64::MAX),
        "login stored"
    );
    Ok(LoginOutcome {
        account: record,
        warnings,
    })
}
