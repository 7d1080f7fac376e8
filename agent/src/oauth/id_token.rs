//! ID token verification (OpenID Connect Core §3.1.3.7) with `openidconnect`: signature against
//! the provider's JWKS, `iss`, `aud`, `exp` (with clock skew tolerated) and `nonce`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    ClaimsVerificationError, ClientId, ClientSecret, IssuerUrl, Nonce, SignatureVerificationError,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::http::{BodyError, read_body};

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

/// Why an ID token was refused. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("cannot fetch the provider's signing keys from {url}: {source}")]
    JwksUnreachable { url: String, source: BodyError },
    #[error("cannot fetch the provider's signing keys from {url}: HTTP {status}")]
    JwksStatus { url: String, status: u16 },
    #[error("cannot fetch the provider's signing keys from {url}: not a JWK set ({source})")]
    JwksInvalid {
        url: String,
        source: serde_json::Error,
    },
    #[error("the ID token is invalid: it is not a well-formed JWT")]
    Malformed,
    #[error("the ID token is invalid: the issuer `{issuer}` is not a URL ({source})")]
    Issuer {
        issuer: String,
        source: openidconnect::url::ParseError,
    },
    #[error("the ID token is invalid: {0}")]
    Claims(#[from] ClaimsVerificationError),
    #[error("the ID token is invalid: it names another user than the account's")]
    OtherSubject,
}

/// Fetches the JWKS at `jwks_uri`.
///
/// # Errors
/// Network failure or an invalid document.
pub async fn fetch_jwks(
    http: &reqwest::Client,
    jwks_uri: &str,
) -> Result<CoreJsonWebKeySet, IdTokenError> {
    let unreachable = |source| IdTokenError::JwksUnreachable {
        url: jwks_uri.into(),
        source,
    };
    let resp = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| unreachable(e.into()))?;
    if !resp.status().is_success() {
        return Err(IdTokenError::JwksStatus {
            url: jwks_uri.into(),
            status: resp.status().as_u16(),
        });
    }
    let body = read_body(resp).await.map_err(unreachable)?;
    serde_json::from_slice(&body).map_err(|source| IdTokenError::JwksInvalid {
        url: jwks_uri.into(),
        source,
    })
}

/// What an ID token must say.
#[derive(Clone, Copy)]
pub struct Expected<'a> {
    /// The issuer (empty: a multi-tenant provider whose `iss` cannot be compared).
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// A confidential client's secret: only then may the token be HMAC-signed with it.
    pub client_secret: Option<&'a SecretString>,
    /// The login's `nonce` (none for the device flow and refreshes).
    pub nonce: Option<&'a str>,
    /// The account's subject, for an ID token of a refresh (OIDC Core §12.2: the same `sub`).
    pub subject: Option<&'a str>,
}

/// The signature algorithms real providers use (RS256 by Google, Entra, Okta, Auth0, Keycloak;
/// ES256 by Apple and some Keycloak realms; PS256 and `EdDSA` where configured). Never `none`, and
/// HMAC only with a client secret (never keyed with a public key).
fn allowed_algs(confidential: bool) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    let mut algs = vec![
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ];
    if confidential {
        algs.extend([A::HmacSha256, A::HmacSha384, A::HmacSha512]);
    }
    algs
}

/// Verifies `id_token` against `jwks` and returns who it names.
///
/// # Errors
/// Any failed check; the message never contains the token.
pub fn verify(
    id_token: &SecretString,
    expected: &Expected<'_>,
    jwks: CoreJsonWebKeySet,
) -> Result<Identity, IdTokenError> {
    // A provider configured without an issuer (multi-tenant endpoints) cannot have its `iss`
    // compared; signature, audience, expiry and nonce are still checked.
    let check_issuer = !expected.issuer.is_empty();
    let issuer_text = if check_issuer {
        expected.issuer.to_owned()
    } else {
        "https://issuer.invalid".into()
    };
    let issuer = IssuerUrl::new(issuer_text.clone()).map_err(|source| IdTokenError::Issuer {
        issuer: issuer_text,
        source,
    })?;
    let client_id = ClientId::new(expected.client_id.to_owned());
    let verifier = match expected.client_secret {
        Some(s) => CoreIdTokenVerifier::new_confidential_client(
            client_id,
            ClientSecret::new(s.expose_secret().to_owned()),
            issuer,
            jwks,
        ),
        None => CoreIdTokenVerifier::new_public_client(client_id, issuer, jwks),
    }
    .set_allowed_algs(allowed_algs(expected.client_secret.is_some()))
    .set_time_fn(|| chrono::Utc::now() - CLOCK_SKEW)
    .require_issuer_match(check_issuer);
    let token: CoreIdToken = id_token
        .expose_secret()
        .parse()
        .map_err(|_| IdTokenError::Malformed)?;
    // OIDC Core §3.1.3.7 item 11: the nonce is checked when one was sent (the device flow and
    // refreshes send none).
    let claims = match expected.nonce {
        Some(n) => token.claims(&verifier, &Nonce::new(n.to_owned())),
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }?;
    let subject = claims.subject().as_str();
    if let Some(want) = expected.subject
        && !want.is_empty()
        && want != subject
    {
        return Err(IdTokenError::OtherSubject);
    }
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
        subject: subject.to_owned(),
        display_name,
    })
}

/// How long a fetched JWK set is used before it is fetched again.
const JWKS_MAX_AGE: Duration = Duration::from_secs(600);
/// The soonest a JWK set is fetched again for a token signed with a key it does not hold.
const JWKS_REFETCH_GAP: Duration = Duration::from_secs(30);

/// The providers' JWK sets, by URL: fetched once, kept for [`JWKS_MAX_AGE`], and fetched again
/// when a token names a key they do not hold (the provider rotated its keys), at most once per
/// [`JWKS_REFETCH_GAP`], so forged tokens cannot make the agent hammer the provider.
#[derive(Default)]
pub struct JwksCache {
    sets: Mutex<HashMap<String, (CoreJsonWebKeySet, Instant)>>,
}

impl JwksCache {
    /// Verifies `id_token` with the keys at `jwks_uri`.
    ///
    /// # Errors
    /// The keys cannot be fetched, or a check fails.
    pub async fn verify(
        &self,
        http: &reqwest::Client,
        jwks_uri: &str,
        id_token: &SecretString,
        expected: &Expected<'_>,
    ) -> Result<Identity, IdTokenError> {
        let (set, fresh) = self.get(http, jwks_uri, false).await?;
        match verify(id_token, expected, set) {
            Err(IdTokenError::Claims(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ))) if !fresh && self.may_refetch(jwks_uri) => {
                tracing::info!(%jwks_uri, "an ID token names a key the agent does not hold; fetching the keys again");
                let (set, _) = self.get(http, jwks_uri, true).await?;
                verify(id_token, expected, set)
            }
            other => other,
        }
    }

    fn may_refetch(&self, jwks_uri: &str) -> bool {
        self.lock()
            .get(jwks_uri)
            .is_none_or(|(_, at)| at.elapsed() >= JWKS_REFETCH_GAP)
    }

    /// The set, fetched when missing, too old or `force`d; `true` when it was just fetched.
    async fn get(
        &self,
        http: &reqwest::Client,
        jwks_uri: &str,
        force: bool,
    ) -> Result<(CoreJsonWebKeySet, bool), IdTokenError> {
        if !force
            && let Some((set, at)) = self.lock().get(jwks_uri)
            && at.elapsed() < JWKS_MAX_AGE
        {
            return Ok((set.clone(), false));
        }
        let set = fetch_jwks(http, jwks_uri).await?;
        self.lock()
            .insert(jwks_uri.to_owned(), (set.clone(), Instant::now()));
        Ok((set, true))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (CoreJsonWebKeySet, Instant)>> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
