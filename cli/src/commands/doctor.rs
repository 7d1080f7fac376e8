//! `authctl doctor`: checks the set-up and explains each problem with a fix.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use authctl_client::proto::{Check, CheckStatus, DiagnoseRequest};
use clap::Args;

use crate::error::{CliError, exit};
use crate::output::println_out;

#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON for scripts (with each problem's underlying error in full)
    #[arg(long)]
    json: bool,
    /// Also print each problem's underlying error in full
    #[arg(long, short)]
    verbose: bool,
}

fn check(
    name: &str,
    status: CheckStatus,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Check {
    Check {
        name: name.into(),
        status: status.into(),
        detail: detail.into(),
        fix: fix.into(),
        cause: String::new(),
    }
}

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The socket path and the permissions of it and its directory.
fn socket_checks() -> Vec<Check> {
    let Some(path) = authctl_proto::socket_path() else {
        return vec![check(
            "socket",
            CheckStatus::Fail,
            "no socket path can be derived",
            "set AUTHCTL_SOCK or XDG_RUNTIME_DIR",
        )];
    };
    let mut out = Vec::new();
    let dir = path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    match std::fs::metadata(&dir) {
        Ok(m) if m.uid() != uid() => out.push(check(
            "socket directory",
            CheckStatus::Fail,
            format!("{} is owned by uid {}, not you", dir.display(), m.uid()),
            "remove it, or point AUTHCTL_SOCK elsewhere",
        )),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(check(
            "socket directory",
            CheckStatus::Fail,
            format!(
                "{} has mode {:o}; others can reach the socket",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
            format!("chmod 700 {}", dir.display()),
        )),
        Ok(_) => out.push(check(
            "socket directory",
            CheckStatus::Ok,
            format!("{} (0700, yours)", dir.display()),
            "",
        )),
        Err(_) => out.push(check(
            "socket directory",
            CheckStatus::Warn,
            format!("{} does not exist yet", dir.display()),
            "start the agent: `authctl agent start`",
        )),
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(check(
            "socket",
            CheckStatus::Fail,
            format!(
                "{} has mode {:o}",
                path.display(),
                m.permissions().mode() & 0o777
            ),
            format!("chmod 600 {} (or restart the agent)", path.display()),
        )),
        Ok(_) => out.push(check(
            "socket",
            CheckStatus::Ok,
            path.display().to_string(),
            "",
        )),
        Err(_) => {}
    }
    out
}

fn browser_check() -> Check {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .any(|d| d.join(name).is_file())
    };
    if let Some(b) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        return check(
            "browser",
            CheckStatus::Ok,
            format!("BROWSER={}", b.to_string_lossy()),
            "",
        );
    }
    if cfg!(target_os = "macos") {
        return check("browser", CheckStatus::Ok, "the system browser (open)", "");
    }
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = ["xdg-open", "x-www-browser", "gio", "sensible-browser"]
        .iter()
        .find(|n| on_path(n));
    match (display, opener) {
        (true, Some(o)) => check(
            "browser",
            CheckStatus::Ok,
            format!("a display and `{o}`"),
            "",
        ),
        _ => check(
            "browser",
            CheckStatus::Warn,
            if display {
                "no browser opener (xdg-open, x-www-browser) on PATH".to_owned()
            } else {
                "no display (DISPLAY/WAYLAND_DISPLAY unset): no browser will open".to_owned()
            },
            "`authctl login` prints the URL to open elsewhere (it must reach this machine's 127.0.0.1, e.g. over `ssh -L`); or set BROWSER",
        ),
    }
}

/// The word `--json` prints for a status.
fn status_word(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Ok => "ok",
        CheckStatus::Warn => "warn",
        CheckStatus::Fail | CheckStatus::Unspecified => "fail",
    }
}

/// Prints the checks (`--json`, or one line each with the fix and, with `--verbose`, the cause).
fn print(checks: &[Check], a: &DoctorArgs, failed: bool) {
    if a.json {
        let v: Vec<_> = checks
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "status": status_word(c.status()), "detail": c.detail, "fix": c.fix, "cause": c.cause}))
            .collect();
        println_out(
            &serde_json::to_string_pretty(&serde_json::json!({"ok": !failed, "checks": v}))
                .unwrap_or_default(),
        );
    } else {
        for c in checks {
            let mark = match c.status() {
                CheckStatus::Ok => "ok  ",
                CheckStatus::Warn => "WARN",
                CheckStatus::Fail | CheckStatus::Unspecified => "FAIL",
            };
            println_out(&format!("[{mark}] {}: {}", c.name, c.detail));
            if !c.fix.is_empty() && c.status() != CheckStatus::Ok {
                println_out(&format!("       fix: {}", c.fix));
            }
            if a.verbose && !c.cause.is_empty() && c.status() != CheckStatus::Ok {
                println_out(&format!("       cause: {}", c.cause));
            }
        }
    }
}

pub async fn run(a: DoctorArgs) -> Result<(), CliError> {
    let mut checks = socket_checks();
    let mut failed = false;
    match super::connect_existing().await {
        Ok(mut client) => {
            let status = client.status().await?;
            checks.push(if status.version == authctl_proto::VERSION {
                check(
                    "agent",
                    CheckStatus::Ok,
                    format!("running, pid {}, version {}", status.pid, status.version),
                    "",
                )
            } else {
                check(
                    "agent",
                    CheckStatus::Warn,
                    format!(
                        "running version {}, but this CLI is {}",
                        status.version,
                        authctl_proto::VERSION
                    ),
                    "restart it: `authctl agent stop && authctl agent start`",
                )
            });
            let d = client
                .raw()
                .diagnose(DiagnoseRequest {})
                .await
                .map_err(|s| client.error(s))?;
            checks.extend(d.into_inner().checks);
        }
        Err(e) => {
            failed = true;
            // Without an agent, the config check is ours: it says why a start would fail.
            let config = super::agent::check_config().err();
            checks.push(check(
                "agent",
                CheckStatus::Fail,
                e.message.clone(),
                if config.is_some() {
                    "fix config.toml (see the config check), then `authctl agent start`".into()
                } else {
                    e.hint.clone().unwrap_or_default()
                },
            ));
            checks.push(match config {
                Some(c) => check(
                    "config",
                    CheckStatus::Fail,
                    c.message,
                    "fix the file it names, at the line and key it names",
                ),
                None => check("config", CheckStatus::Ok, "loads".to_owned(), ""),
            });
        }
    }
    checks.push(check(
        "service",
        CheckStatus::Ok,
        crate::service::state(),
        "",
    ));
    checks.push(browser_check());
    failed |= checks.iter().any(|c| c.status() == CheckStatus::Fail);
    print(&checks, &a, failed);
    let config_broken = checks
        .iter()
        .any(|c| c.name == "config" && c.status() == CheckStatus::Fail);
    if config_broken {
        Err(CliError::usage(
            "config.toml has an error (see the config check)",
        ))
    } else if failed {
        Err(CliError::new(
            exit::FAILURE,
            "some checks failed (see above)",
        ))
    } else {
        Ok(())
    }
}
