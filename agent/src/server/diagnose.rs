//! The agent's half of `authctl doctor`: what only the agent can check (its secret store and the
//! OS keyring as the agent's environment sees them, each provider's discovery).

use authctl_proto::v1::{Check, CheckStatus};

use crate::core::Core;
use crate::oauth::discovery;
use crate::store::{StoreError, Trouble};

fn check(name: &str, status: CheckStatus, detail: String, fix: &str) -> Check {
    Check {
        name: name.into(),
        status: status.into(),
        detail,
        fix: fix.into(),
        cause: String::new(),
    }
}

/// Runs every check.
pub async fn run(state: &Core) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(match state.config_problem() {
        None => check(
            "config",
            CheckStatus::Ok,
            state.paths.config_file.display().to_string(),
            "",
        ),
        Some(e) => check(
            "config",
            CheckStatus::Fail,
            e.to_string(),
            "fix the file (the running agent keeps the configuration it loaded before), then `authctl agent reload`",
        ),
    });
    let kind = state.secrets.kind();
    let mut store = check(
        "secret store",
        CheckStatus::Ok,
        format!("{kind} ({})", state.secrets.reason),
        "",
    );
    store.cause.clone_from(&state.secrets.detail);
    checks.push(store);
    checks.push(
        match crate::store::probe_keyring_write(&state.paths.data_dir).await {
            Ok(()) => check(
                "os keyring",
                CheckStatus::Ok,
                "the Secret Service answers and takes writes".into(),
                "",
            ),
            Err(e) => {
                let trouble = match &e {
                    StoreError::Keyring(k) => k.trouble,
                    _ => Trouble::Other,
                };
                // Without a keyring the file store serves: a warning. A keyring in use that
                // refuses writes loses logins: a failure.
                let status = if kind == "keyring" {
                    CheckStatus::Fail
                } else {
                    CheckStatus::Warn
                };
                let mut c = check("os keyring", status, trouble.short().into(), trouble.fix());
                c.cause = e.to_string();
                c
            }
        },
    );
    for (name, p) in &state.config().providers {
        let c = match discovery::resolve(state.http(), p).await {
            Ok(ep) => check(
                &format!("provider {name}"),
                CheckStatus::Ok,
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
                CheckStatus::Fail,
                e.to_string(),
                "check the issuer URL and network access, or set the endpoints in config.toml",
            ),
        };
        checks.push(c);
    }
    checks
}
