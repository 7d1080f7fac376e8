//! `authctl doctor`: checks the set-up and explains each problem with a fix.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use authctl_client::proto::{Check, DiagnoseRequest};
use clap::Args;

use crate::error::{CliError, exit};
use crate::output::println_out;

#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON for scripts
    #[arg(long)]
    json: bool,
}

fn check(name: &str, status: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: status.into(),
        detail: detail.into(),
        fix: fix.into(),
    }
}

#[allow(unsafe_code)]
fn uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The socket path and the permissions of it and its directory.
fn socket_checks() -> Vec<Check> {
    let Some(path) = authctl_proto::socket_path() else {
        return vec![check(
            "socket",
            "fail",
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
            "fail",
            format!("{} is owned by uid {}, not you", dir.display(), m.uid()),
            "remove it, or point AUTHCTL_SOCK elsewhere",
        )),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(check(
            "socket directory",
            "fail",
            format!(
                "{} has mode {:o}; others can reach the socket",
                dir.display(),
                m.permissions().mode() & 0o777
            ),
            format!("chmod 700 {}", dir.display()),
        )),
        Ok(_) => out.push(check(
            "socket directory",
            "ok",
            format!("{} (0700, yours)", dir.display()),
            "",
        )),
        Err(_) => out.push(check(
            "socket directory",
            "warn",
            format!("{} does not exist yet", dir.display()),
            "start the agent: `authctl agent start`",
        )),
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => out.push(check(
            "socket",
            "fail",
            format!(
                "{} has mode {:o}",
                path.display(),
                m.permissions().mode() & 0o777
            ),
            format!("chmod 600 {} (or restart the agent)", path.display()),
        )),
        Ok(_) => out.push(check("socket", "ok", path.display().to_string(), "")),
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
            "ok",
            format!("BROWSER={}", b.to_string_lossy()),
            "",
        );
    }
    if cfg!(target_os = "macos") {
        return check("browser", "ok", "the system browser (open)", "");
    }
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    let opener = ["xdg-open", "x-www-browser", "gio", "sensible-browser"]
        .iter()
        .find(|n| on_path(n));
    match (display, opener) {
        (true, Some(o)) => check("browser", "ok", format!("a display and `{o}`"), ""),
        _ => check(
            "browser",
            "warn",
            if display {
                "no browser opener (xdg-open, x-www-browser) on PATH".to_owned()
            } else {
                "no display (DISPLAY/WAYLAND_DISPLAY unset): no browser will open".to_owned()
            },
            "`authctl login` prints the URL to open elsewhere (it must reach this machine's 127.0.0.1, e.g. over `ssh -L`); or set BROWSER",
        ),
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
                    "ok",
                    format!("running, pid {}, version {}", status.pid, status.version),
                    "",
                )
            } else {
                check(
                    "agent",
                    "warn",
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
            checks.push(check(
                "agent",
                "fail",
                e.message.clone(),
                e.hint.clone().unwrap_or_default(),
            ));
        }
    }
    checks.push(check("service", "ok", crate::service::state(), ""));
    checks.push(browser_check());
    failed |= checks.iter().any(|c| c.status == "fail");
    if a.json {
        let v: Vec<_> = checks
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix}))
            .collect();
        println_out(
            &serde_json::to_string_pretty(&serde_json::json!({"ok": !failed, "checks": v}))
                .unwrap_or_default(),
        );
    } else {
        for c in &checks {
            let mark = match c.status.as_str() {
                "ok" => "ok  ",
                "warn" => "WARN",
                _ => "FAIL",
            };
            println_out(&format!("[{mark}] {}: {}", c.name, c.detail));
            if !c.fix.is_empty() && c.status != "ok" {
                println_out(&format!("       fix: {}", c.fix));
            }
        }
    }
    if failed {
        Err(CliError::new(
            exit::FAILURE,
            "some checks failed (see above)",
        ))
    } else {
        Ok(())
    }
}
