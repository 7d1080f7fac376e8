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
            if a.json {
                println_out(
                    &serde_json::json!({"agent": {"running": false, "socket": socket}}).to_string(),
                );
            } else {
                println_out(&format!("agent: not running (socket {})", socket.display()));
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if a.json {
        print_json(&status);
    } else {
        print_text(&status);
    }
    Ok(())
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
        "secret_store": {"backend": s.secret_store, "detail": s.secret_store_detail},
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
        relative(s.started_at, now).trim_end_matches(" ago")
    ));
    println_out(&format!("socket:  {}", s.socket_path));
    println_out(&format!("config:  {}", s.config_path));
    println_out(&format!(
        "store:   {} ({})",
        s.secret_store, s.secret_store_detail
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
        let mut l = String::from(" ");
        for (c, w) in cells.iter().zip(widths) {
            l.push_str(&format!(" {c:<w$}"));
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
