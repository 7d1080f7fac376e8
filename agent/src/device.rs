//! The device authorization grant (RFC 8628) for machines without a browser: the agent asks for a
//! user code, streams it to the caller, and polls the token endpoint at the interval the server
//! asks, honouring `authorization_pending`, `slow_down`, `expired_token` and `access_denied`, also
//! when they arrive with HTTP 200 (GitHub).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::AgentError;
use crate::login::{LoginOutcome, LoginRequest, Progress};
use crate::oauth::token::{self, TokenError};
use crate::state::{AgentState, now_unix};

/// A device authorization response (RFC 8628 §3.2). `Debug` redacts the device code.
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub device_code: SecretString,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
}

/// Parses a device authorization response (pure; unit-tested).
///
/// # Errors
/// An error body, a non-2xx status, or missing fields.
pub fn parse_authorization(status: u16, body: &[u8]) -> Result<DeviceAuthorization, String> {
    let fields =
        token::parse_body(body).ok_or_else(|| format!("HTTP {status} with an unreadable body"))?;
    let get = |k: &str| -> Option<String> {
        match fields.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    if let Some(e) = get("error") {
        return Err(format!(
            "{e}{}",
            get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ));
    }
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    let num = |k: &str, default: u64| {
        get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    Ok(DeviceAuthorization {
        device_code: SecretString::from(
            get("device_code").ok_or("no device_code in the response")?,
        ),
        user_code: get("user_code").ok_or("no user_code in the response")?,
        // Google names it verification_url.
        verification_uri: get("verification_uri")
            .or_else(|| get("verification_url"))
            .ok_or("no verification_uri in the response")?,
        verification_uri_complete: get("verification_uri_complete"),
        expires_in: num("expires_in", 600),
        interval: num("interval", 5).max(1), // RFC 8628 §3.2: default 5 s
    })
}

/// What one poll's failure means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum PollStep {
    /// Keep polling after this extra delay.
    Wait(Duration),
    /// Poll more slowly from now on (RFC 8628 §3.5: +5 s).
    SlowDown,
    /// Give up with this message.
    Fail(String),
}

/// Decides what a failed poll means (pure; unit-tested).
#[must_use]
pub fn poll_step(e: &TokenError) -> PollStep {
    match e {
        TokenError::Rejected { error, .. } if error == "authorization_pending" => {
            PollStep::Wait(Duration::ZERO)
        }
        TokenError::Rejected { error, .. } if error == "slow_down" => PollStep::SlowDown,
        TokenError::Rejected { error, .. } if error == "expired_token" => PollStep::Fail(
            "the device code expired before the login was completed; run the login again".into(),
        ),
        TokenError::Rejected { error, .. } if error == "access_denied" => {
            PollStep::Fail("the login was denied at the provider (access_denied)".into())
        }
        e if e.is_transient() => PollStep::Wait(e.retry_after().unwrap_or(Duration::ZERO)),
        e => PollStep::Fail(e.to_string()),
    }
}

/// Runs a device-flow login.
///
/// # Errors
/// No device endpoint, the provider's refusal, denial, expiry or the caller's timeout.
pub async fn login(
    state: &AgentState,
    req: &LoginRequest,
    provider_name: &str,
    account_name: &str,
    scopes: &[String],
    progress: &mpsc::Sender<Progress>,
) -> Result<LoginOutcome, AgentError> {
    let provider = state.provider(provider_name)?;
    let endpoints = state.endpoints(provider_name).await?;
    let endpoint = endpoints
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| {
            AgentError::InvalidArgument(format!(
                "provider `{provider_name}` has no device authorization endpoint; set \
             `device_authorization_endpoint` in config.toml, or log in without --device"
            ))
        })?;
    let auth = state.client_auth(provider_name).await?;
    let scope = crate::oauth::join_scopes(scopes);
    let mut form: Vec<(&str, &str)> = Vec::new();
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    // RFC 8707 for a resource provider, as in the loopback login.
    if let Some(r) = &provider.resource {
        form.push(("resource", r));
    }
    let http_req = auth.apply(
        state
            .http()
            .post(&endpoint)
            .header("accept", "application/json"),
        &mut form,
    );
    let resp = http_req.form(&form).send().await.map_err(|e| {
        AgentError::LoginFailed(format!(
            "the device authorization request failed: {}",
            crate::error::describe_reqwest(&e)
        ))
    })?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    let da = parse_authorization(status, &body).map_err(|e| {
        AgentError::LoginFailed(format!(
            "the provider refused the device authorization: {e}"
        ))
    })?;
    let lifetime = Duration::from_secs(da.expires_in);
    let limit = req.timeout.map_or(lifetime, |t| t.min(lifetime));
    let _ = progress
        .send(Progress::DeviceCode {
            verification_uri: da.verification_uri.clone(),
            verification_uri_complete: da.verification_uri_complete.clone().unwrap_or_default(),
            user_code: da.user_code.clone(),
            expires_at: now_unix() + i64::try_from(da.expires_in).unwrap_or(0),
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
    let set = loop {
        tokio::time::sleep(interval).await;
        if Instant::now() >= deadline {
            if limit < lifetime {
                return Err(AgentError::LoginTimeout(limit.as_secs()));
            }
            // The code's own lifetime ran out: the provider would answer `expired_token`.
            return Err(AgentError::LoginFailed(format!(
                "the device code expired after {} seconds before the login was completed; run the login again",
                lifetime.as_secs()
            )));
        }
        match token::request(state.http(), &endpoints.token_endpoint, &auth, &params).await {
            Ok(set) => break set,
            Err(e) => match poll_step(&e) {
                PollStep::Wait(extra) => {
                    if e.is_transient() {
                        tracing::warn!(error = %e, "device flow poll failed; polling on");
                    }
                    tokio::time::sleep(extra.min(Duration::from_secs(60))).await;
                }
                PollStep::SlowDown => interval += Duration::from_secs(5),
                PollStep::Fail(m) => return Err(AgentError::LoginFailed(m)),
            },
        }
    };
    let identity = crate::login::identify(state, &endpoints, &provider, &auth, &set, None).await?;
    crate::login::store_account(state, provider_name, account_name, scopes, set, identity).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc8628_and_google_style_responses() {
        let d = parse_authorization(
            200,
            br#"{"device_code":"dc","user_code":"ABCD-EFGH","verification_uri":"https://x/device","verification_uri_complete":"https://x/device?user_code=ABCD-EFGH","expires_in":900,"interval":7}"#,
        )
        .unwrap();
        assert_eq!(d.user_code, "ABCD-EFGH");
        assert_eq!(d.interval, 7);
        assert_eq!(d.expires_in, 900);
        let g = parse_authorization(200, br#"{"device_code":"dc","user_code":"U","verification_url":"https://www.google.com/device","expires_in":"1800"}"#).unwrap();
        assert_eq!(g.verification_uri, "https://www.google.com/device");
        assert_eq!(g.interval, 5, "default interval");
        assert_eq!(g.expires_in, 1800);
        let gh = parse_authorization(200, b"device_code=dc&user_code=U&verification_uri=https%3A%2F%2Fgithub.com%2Flogin%2Fdevice&expires_in=899&interval=5").unwrap();
        assert_eq!(gh.verification_uri, "https://github.com/login/device");
    }

    #[test]
    fn errors_in_device_authorization() {
        assert!(
            parse_authorization(200, br#"{"error":"unauthorized_client"}"#)
                .unwrap_err()
                .contains("unauthorized_client")
        );
        assert!(parse_authorization(500, b"oops").is_err());
        assert!(parse_authorization(200, br#"{"user_code":"U"}"#).is_err());
    }

    fn rejected(e: &str) -> TokenError {
        TokenError::Rejected {
            error: e.into(),
            description: None,
        }
    }

    #[test]
    fn poll_decisions() {
        assert_eq!(
            poll_step(&rejected("authorization_pending")),
            PollStep::Wait(Duration::ZERO)
        );
        assert_eq!(poll_step(&rejected("slow_down")), PollStep::SlowDown);
        assert!(
            matches!(poll_step(&rejected("expired_token")), PollStep::Fail(m) if m.contains("expired"))
        );
        assert!(
            matches!(poll_step(&rejected("access_denied")), PollStep::Fail(m) if m.contains("denied"))
        );
        assert_eq!(
            poll_step(&TokenError::Http {
                status: 429,
                retry_after: Some(Duration::from_secs(3))
            }),
            PollStep::Wait(Duration::from_secs(3))
        );
        assert_eq!(
            poll_step(&TokenError::Network("down".into())),
            PollStep::Wait(Duration::ZERO)
        );
        assert!(matches!(
            poll_step(&rejected("invalid_client")),
            PollStep::Fail(_)
        ));
    }
}
