//! The agent's half of `authctl doctor`: what only the agent can check (its secret store and the
//! OS keyring as the agent's environment sees them, each provider's discovery).

use authctl_proto::v1::Check;

use crate::oauth::discovery;
use crate::state::AgentState;

fn check(name: &str, status: &str, detail: String, fix: &str) -> Check {
    Check {
        name: name.into(),
        status: status.into(),
        detail,
        fix: fix.into(),
    }
}

/// Runs every check.
pub async fn run(state: &AgentState) -> Vec<Check> {
    let mut checks = Vec::new();
    let kind = state.secrets.kind();
    checks.push(check(
        "secret store",
        "ok",
        format!("{kind}: {}", state.secrets.detail),
        "",
    ));
    checks.push(match crate::store::probe_keyring().await {
        Ok(_) => check("os keyring", "ok", "the Secret Service answers".into(), ""),
        Err(e) => {
            let (detail, fix) = explain_keyring(&e.to_string());
            // Without a keyring the file store serves; that is a warning, not a failure.
            check("os keyring", "warn", detail, &fix)
        }
    });
    for (name, p) in &state.config().providers {
        let c = match discovery::resolve(state.http(), p).await {
            Ok(ep) => check(
                &format!("provider {name}"),
                "ok",
                format!(
                    "authorization {} · token {}{}",
                    ep.authorization_endpoint,
                    ep.token_endpoint,
                    if ep.device_authorization_endpoint.is_some() {
                        " · device flow"
                    } else {
                        ""
                    }
                ),
                "",
            ),
            Err(e) => check(
                &format!("provider {name}"),
                "fail",
                e.to_string(),
                "check the issuer URL and network access, or set the endpoints in config.toml",
            ),
        };
        checks.push(c);
    }
    checks
}

/// Why the keyring does not answer, in words a person can act on.
#[must_use]
pub fn explain_keyring(error: &str) -> (String, String) {
    let no_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|v| v.is_empty());
    if cfg!(target_os = "linux") && (no_bus || error.contains("Failed to connect")) {
        (
            format!("no D-Bus session bus, so no Secret Service ({error}); secrets go to the embedded file store"),
            "fine on headless machines; for a keyring run the agent inside a desktop session (or dbus-run-session with gnome-keyring-daemon)".into(),
        )
    } else if error.to_lowercase().contains("locked") || error.to_lowercase().contains("prompt") {
        (
            format!("the keyring's default collection is locked ({error})"),
            "unlock it (log in to the desktop, or `gnome-keyring-daemon --unlock`)".into(),
        )
    } else {
        (
            format!("the OS keyring does not answer: {error}"),
            "see `authctl status` for the store in use".into(),
        )
    }
}
