//! The user service: systemd user units (with socket activation) on Linux, a launchd agent on
//! macOS. The files are the ones in `packaging/`, with the agent's real path filled in, so the
//! distribution files and what `authctl agent install` writes cannot drift apart.

use std::path::{Path, PathBuf};

use crate::error::{CliError, exit};

pub const SYSTEMD_SERVICE: &str = include_str!("../../packaging/systemd/authctl-agent.service");
pub const SYSTEMD_SOCKET: &str = include_str!("../../packaging/systemd/authctl-agent.socket");
pub const LAUNCHD_PLIST: &str = include_str!("../../packaging/launchd/dev.authctl.agent.plist");
pub const LAUNCHD_LABEL: &str = "dev.authctl.agent";

/// One file of the service: where it goes and what it holds.
pub struct UnitFile {
    pub path: PathBuf,
    pub contents: String,
}

fn home() -> Result<PathBuf, CliError> {
    directories::BaseDirs::new()
        .map(|b| b.home_dir().to_path_buf())
        .ok_or_else(|| CliError::new(exit::FAILURE, "no home directory: set HOME"))
}

/// The systemd user unit directory: `$XDG_CONFIG_HOME/systemd/user`.
fn systemd_dir() -> Result<PathBuf, CliError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || home().map(|h| h.join(".config")),
            |v| Ok(PathBuf::from(v)),
        )?;
    Ok(base.join("systemd").join("user"))
}

/// The files for this platform, with `agent` as the agent binary.
///
/// # Errors
/// No home directory.
pub fn files(agent: &Path) -> Result<Vec<UnitFile>, CliError> {
    let agent = agent.display().to_string();
    if cfg!(target_os = "macos") {
        let home = home()?;
        let log = home.join("Library/Logs/authctl-agent.log");
        let contents = LAUNCHD_PLIST
            .replace("/usr/local/bin/authctl-agent", &agent)
            .replace("/tmp/authctl-agent.log", &log.display().to_string());
        return Ok(vec![UnitFile {
            path: home
                .join("Library/LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist")),
            contents,
        }]);
    }
    let dir = systemd_dir()?;
    Ok(vec![
        UnitFile {
            path: dir.join("authctl-agent.service"),
            contents: SYSTEMD_SERVICE.replace("/usr/bin/authctl-agent", &agent),
        },
        UnitFile {
            path: dir.join("authctl-agent.socket"),
            contents: SYSTEMD_SOCKET.to_owned(),
        },
    ])
}

/// Whether the service files are installed for this user.
#[must_use]
pub fn installed() -> bool {
    files(Path::new("authctl-agent")).is_ok_and(|f| f.iter().all(|u| u.path.exists()))
}

/// How to start the installed service.
#[must_use]
pub fn start_hint() -> &'static str {
    if cfg!(target_os = "macos") {
        "the service is installed but not running: run `launchctl kickstart gui/$(id -u)/dev.authctl.agent`"
    } else {
        "the service is installed but not running: run `systemctl --user start authctl-agent.socket`"
    }
}

/// Runs a service-manager command; returns its error output on failure.
pub fn manager(args: &[&str]) -> Result<(), String> {
    let (program, args) = args.split_first().ok_or_else(String::new)?;
    match std::process::Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `{program}`: {e}")),
    }
}

/// The state of the service as its manager reports it (for `doctor`).
#[must_use]
pub fn state() -> String {
    if !installed() {
        return "not installed".into();
    }
    let out = if cfg!(target_os = "macos") {
        std::process::Command::new("launchctl")
            .args(["list", LAUNCHD_LABEL])
            .output()
    } else {
        std::process::Command::new("systemctl")
            .args(["--user", "is-active", "authctl-agent.socket"])
            .output()
    };
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if o.status.success() {
                format!(
                    "installed, {}",
                    if text.is_empty() { "loaded" } else { &text }
                )
            } else {
                format!("installed, not active ({text})")
            }
        }
        Err(e) => format!("installed; the service manager cannot be asked ({e})"),
    }
}
