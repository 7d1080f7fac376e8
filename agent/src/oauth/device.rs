//! The device authorization grant (RFC 8628), protocol half: the device authorization request and
//! its response, and what each poll answer means. GitHub answers errors with HTTP 200 and may send
//! a form-encoded body; Google names the URI `verification_url` and sends numbers as strings.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::http::{BodyError, read_body};
use super::token::{self, ClientAuth, TokenError};

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

/// The longest device-code lifetime honoured (seconds).
pub const MAX_CODE_LIFETIME: u64 = 86_400;
/// The longest polling interval honoured (seconds).
pub const MAX_INTERVAL: u64 = 60;

/// Why the device authorization request failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("the device authorization request failed: {0}")]
    Transport(#[from] BodyError),
    #[error("the provider refused the device authorization: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        error: String,
        description: Option<String>,
    },
    #[error("the provider refused the device authorization: HTTP {status}")]
    Http { status: u16 },
    #[error("the provider refused the device authorization: HTTP {status} with an unreadable body")]
    Unreadable { status: u16 },
    #[error("the provider refused the device authorization: no {0} in the response")]
    Missing(&'static str),
}

/// Asks `endpoint` for a device and user code (RFC 8628 §3.1).
///
/// # Errors
/// See [`DeviceError`].
pub async fn request_authorization(
    http: &reqwest::Client,
    endpoint: &str,
    auth: &ClientAuth,
    scope: &str,
    resource: Option<&str>,
) -> Result<DeviceAuthorization, DeviceError> {
    let mut form: Vec<(&str, &str)> = Vec::new();
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    // RFC 8707 for a resource provider, as in the loopback login.
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let req = auth.apply(
        http.post(endpoint).header("accept", "application/json"),
        &mut form,
    );
    let resp = req.form(&form).send().await.map_err(BodyError::from)?;
    let status = resp.status().as_u16();
    let body = read_body(resp).await?;
    parse_authorization(status, &body)
}

/// Parses a device authorization response (pure; unit-tested).
///
/// # Errors
/// An error body, a non-2xx status, or missing fields.
pub fn parse_authorization(status: u16, body: &[u8]) -> Result<DeviceAuthorization, DeviceError> {
    let fields = token::parse_body(body).ok_or(DeviceError::Unreadable { status })?;
    let get = |k: &str| -> Option<String> {
        match fields.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    if let Some(error) = get("error") {
        return Err(DeviceError::Rejected {
            error: super::text::clean(&error),
            description: super::text::clean_opt(get("error_description")),
        });
    }
    if !(200..300).contains(&status) {
        return Err(DeviceError::Http { status });
    }
    let num = |k: &str, default: u64| {
        get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    Ok(DeviceAuthorization {
        device_code: SecretString::from(
            get("device_code").ok_or(DeviceError::Missing("device_code"))?,
        ),
        user_code: get("user_code").ok_or(DeviceError::Missing("user_code"))?,
        // Google names it verification_url.
        verification_uri: get("verification_uri")
            .or_else(|| get("verification_url"))
            .ok_or(DeviceError::Missing("verification_uri"))?,
        verification_uri_complete: get("verification_uri_complete"),
        // Bounded whatever the server says: a huge lifetime or interval must not park a login
        // (or overflow a deadline), a zero interval must not make a hot polling loop.
        expires_in: num("expires_in", 600).clamp(1, MAX_CODE_LIFETIME),
        interval: num("interval", 5).clamp(1, MAX_INTERVAL), // RFC 8628 §3.2: default 5 s
    })
}

/// What one poll's failure means for the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum PollStep {
    /// Keep polling after this extra delay.
    Wait(Duration),
    /// Poll more slowly from now on (RFC 8628 §3.5: +5 s).
    SlowDown,
    /// Give up: the login is over.
    Fail(PollFailure),
}

/// Why polling ends without tokens.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PollFailure {
    #[error("the device code expired before the login was completed; run the login again")]
    Expired,
    #[error("the login was denied at the provider (access_denied)")]
    Denied,
    #[error("{0}")]
    Refused(String),
}

/// Decides what a failed poll means (pure; unit-tested).
#[must_use]
pub fn poll_step(e: &TokenError) -> PollStep {
    match e {
        TokenError::Rejected { error, .. } if error == "authorization_pending" => {
            PollStep::Wait(Duration::ZERO)
        }
        TokenError::Rejected { error, .. } if error == "slow_down" => PollStep::SlowDown,
        TokenError::Rejected { error, .. } if error == "expired_token" => {
            PollStep::Fail(PollFailure::Expired)
        }
        TokenError::Rejected { error, .. } if error == "access_denied" => {
            PollStep::Fail(PollFailure::Denied)
        }
        e if e.is_transient() => PollStep::Wait(e.retry_after().unwrap_or(Duration::ZERO)),
        e => PollStep::Fail(PollFailure::Refused(e.to_string())),
    }
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
    fn absurd_lifetimes_and_intervals_are_bounded() {
        let d = parse_authorization(
            200,
            br#"{"device_code":"dc","user_code":"U","verification_uri":"https://x","expires_in":18446744073709551615,"interval":0}"#,
        )
        .unwrap();
        assert_eq!(d.expires_in, MAX_CODE_LIFETIME);
        assert_eq!(d.interval, 1);
        let d = parse_authorization(
            200,
            br#"{"device_code":"dc","user_code":"U","verification_uri":"https://x","expires_in":0,"interval":99999999}"#,
        )
        .unwrap();
        assert_eq!((d.expires_in, d.interval), (1, MAX_INTERVAL));
    }

    #[test]
    fn errors_in_device_authorization() {
        assert!(
            parse_authorization(200, br#"{"error":"unauthorized_client"}"#)
                .unwrap_err()
                .to_string()
                .contains("unauthorized_client")
        );
        assert!(matches!(
            parse_authorization(500, b"oops"),
            Err(DeviceError::Unreadable { status: 500 })
        ));
        assert!(matches!(
            parse_authorization(200, br#"{"user_code":"U"}"#),
            Err(DeviceError::Missing("device_code"))
        ));
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
        assert_eq!(
            poll_step(&rejected("expired_token")),
            PollStep::Fail(PollFailure::Expired)
        );
        assert_eq!(
            poll_step(&rejected("access_denied")),
            PollStep::Fail(PollFailure::Denied)
        );
        assert!(PollFailure::Expired.to_string().contains("expired"));
        assert!(PollFailure::Denied.to_string().contains("denied"));
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
            PollStep::Fail(PollFailure::Refused(_))
        ));
    }
}
