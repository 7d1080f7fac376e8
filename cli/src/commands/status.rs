//! `authctl status`: the agent, its secret store, and every account with its state.

use authctl_client::proto::{Account, AccountState, StatusResponse};
use clap::Args;

use crate::error::{CliError, exit};
use crate::output::{now, println_out, relative};

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

pub fn state_name(a: &Account) -> &'static str {
    match AccountState::try_from(a.state).unwrap_or(AccountState::Unspecified) {
        AccountState::Ready => "ready",
        AccountState::LoginRequired => "login required",
        AccountState::Degraded => "degraded",
        AccountState::NotSaved => "not saved",
        AccountState::Unspecified => "unknown",
    }
}

fn account_json(a: &Account) -> serde_json::Value {
    serde_json::json!({
        "name": a.name,
        "provider": a.provider,
        "subject": a.subject,
        "display_name": a.display_name,
        "scopes": a.scopes,
        "state": state_name(a).replace(' ', "_"),
        "access_token_expires_at": a.access_token_expires_at,
        "created_at": a.created_at,
        "last_refresh_at": a.last_refresh_at,
        "has_refresh_token": a.has_refresh_token,
        "last_error": a.last_error,
    })
}

pub async fn run(a: StatusArgs) -> Result<(), CliError> {
    let socket = authctl_proto::socket_path().unwrap_or_default();
    let status = match super::connect_existing().await {
        Ok(mut c) => c.status().await?,
        Err(e) if e.code == exit::NOT_RUNNING => {
            // Say also why an `agent start` would fail, rather than advise it in vain.
            let config = super::agent::check_config().err();
            if a.json {
                println_out(
                    &serde_json::json!({"agent": {"running": false, "socket": socket},
                        "config_error": config.as_ref().map(|c| c.message.clone())})
                    .to_string(),
                );
            } else {
                println_out(&format!("agent: not running (socket {})", socket.display()));
            }
            return Err(config.unwrap_or(e));
        }
        Err(e) => return Err(e),
    };
    if a.json {
        print_json(&status);
    } else {
        print_text(&status);
    }
    config_error(&status)
}

/// A running agent whose config.toml no longer loads: exit code 2, with the file's error.
pub fn config_error(s: &StatusResponse) -> Result<(), CliError> {
    if s.config_error.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "{}; the running agent keeps the configuration it loaded before",
        s.config_error
    ))
    .with_hint("fix the file, then `authctl agent reload`"))
}

fn print_json(s: &StatusResponse) {
    let v = serde_json::json!({
        "agent": {
            "running": true,
            "version": s.version,
            "pid": s.pid,
            "socket": s.socket_path,
            "config": s.config_path,
            "data_dir": s.data_dir,
            "started_at": s.started_at,
        },
        "secret_store": {"backend": crate::output::store_name(s.secret_store()), "reason": s.secret_store_reason, "detail": s.secret_store_detail},
        "config_error": (!s.config_error.is_empty()).then_some(&s.config_error),
        "accounts": s.accounts.iter().map(account_json).collect::<Vec<_>>(),
    });
    println_out(&serde_json::to_string_pretty(&v).unwrap_or_default());
}

fn print_text(s: &StatusResponse) {
    let now = now();
    println_out(&format!(
        "agent:   running (pid {}, version {}, up {})",
        s.pid,
        s.version,
        crate::output::span(now - s.started_at)
    ));
    println_out(&format!("socket:  {}", s.socket_path));
    println_out(&format!("config:  {}", s.config_path));
    if !s.config_error.is_empty() {
        println_out(
            "         the file has an error (below); the agent runs on the configuration it loaded before",
        );
    }
    println_out(&format!(
        "store:   {} ({})",
        crate::output::store_name(s.secret_store()),
        s.secret_store_reason
    ));
    if s.accounts.is_empty() {
        println_out(
            "accounts: none (add a provider with `authctl provider add`, then `authctl login PROVIDER`)",
        );
        return;
    }
    println_out("accounts:");
    let rows: Vec<[String; 5]> = s
        .accounts
        .iter()
        .map(|a| {
            let who = if a.display_name.is_empty() {
                a.subject.clone()
            } else {
                a.display_name.clone()
            };
            [
                a.name.clone(),
                a.provider.clone(),
                if who.is_empty() { "-".into() } else { who },
                relative(a.access_token_expires_at, now),
                state_name(a).to_owned(),
            ]
        })
        .collect();
    let header = ["NAME", "PROVIDER", "USER", "TOKEN EXPIRES", "STATE"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        use std::fmt::Write as _;
        let mut l = String::from(" ");
        for (c, w) in cells.iter().zip(widths) {
            let _ = write!(l, " {c:<w$}");
        }
        l.trim_end().to_owned()
    };
    println_out(&line(header));
    for (r, a) in rows.iter().zip(&s.accounts) {
        println_out(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
        if !a.last_error.is_empty() {
            println_out(&format!("    last error: {}", a.last_error));
        }
    }
}
