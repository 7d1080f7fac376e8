//! The device authorization grant (RFC 8628) for machines without a browser: the agent asks for a
//! user code, streams it to the caller, and polls the token endpoint at the interval the server
//! asks, honouring `authorization_pending`, `slow_down`, `expired_token` and `access_denied`, also
//! when they arrive with HTTP 200 (GitHub).

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::mpsc;

use super::error::{LoginError, LoginFailure};
use super::finish::{Obtained, identify};
use super::{LoginRequest, Progress, Target};
use crate::core::Core;
use crate::oauth::device::{PollStep, poll_step, request_authorization};

/// Runs a device-flow login at `target`: returns the verified tokens.
///
/// # Errors
/// No device endpoint, the provider's refusal, denial, expiry or the caller's timeout.
pub(super) async fn run(
    core: &Core,
    req: &LoginRequest,
    target: &Target,
    progress: &mpsc::Sender<Progress>,
) -> Result<Obtained, LoginError> {
    let Target {
        provider_name,
        provider,
        account_name,
        scopes,
    } = target;
    let endpoints = core.endpoints(provider_name).await?;
    let endpoint = endpoints
        .device_authorization_endpoint
        .as_deref()
        .ok_or_else(|| LoginError::NoDeviceEndpoint(provider_name.clone()))?;
    let auth = core.client_auth(provider_name).await?;
    let da = request_authorization(
        core.http(),
        endpoint,
        &auth,
        &crate::oauth::join_scopes(scopes),
        provider.resource.as_deref(),
    )
    .await
    .map_err(LoginFailure::from)?;
    let lifetime = Duration::from_secs(da.expires_in);
    let limit = req.timeout.map_or(lifetime, |t| t.min(lifetime));
    let _ = progress
        .send(Progress::DeviceCode {
            verification_uri: da.verification_uri.clone(),
            verification_uri_complete: da.verification_uri_complete.clone().unwrap_or_default(),
            user_code: da.user_code.clone(),
            expires_at: core
                .now()
                .saturating_add(i64::try_from(da.expires_in).unwrap_or(i64::MAX)),
        })
        .await;
    tracing::info!(provider = %provider_name, account = %account_name, "device login started");
    let deadline = Instant::now() + limit;
    let mut interval = Duration::from_secs(da.interval);
    let mut params = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", da.device_code.expose_secret()),
    ];
    if let Some(r) = &provider.resource {
        params.push(("resource", r));
    }
    let tokens = loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            if limit < lifetime {
                return Err(LoginError::Timeout(limit.as_secs()));
            }
            // The code's own lifetime ran out: the provider would answer `expired_token`.
            return Err(LoginFailure::DeviceCodeExpired(lifetime.as_secs()).into());
        }
        match core
            .token_endpoint()
            .request(&endpoints.token_endpoint, &auth, &params)
            .await
        {
            Ok(set) => break set,
            Err(e) => match poll_step(&e) {
                PollStep::Wait(extra) => {
                    if e.is_transient() {
                        tracing::warn!(error = %e, "device flow poll failed; polling on");
                    }
                    tokio::time::sleep(extra.min(Duration::from_secs(60))).await;
                }
                PollStep::SlowDown => interval += Duration::from_secs(5),
                PollStep::Fail(f) => return Err(LoginFailure::from(f).into()),
            },
        }
    };
    let received = Instant::now();
    let identity = identify(core, &endpoints, provider, &auth, &tokens, None).await?;
    Ok(Obtained {
        tokens,
        identity,
        received,
        issuer: endpoints
            .issuer
            .clone()
            .or_else(|| provider.issuer.clone())
            .unwrap_or_default(),
        token_endpoint: endpoints.token_endpoint.clone(),
    })
}
