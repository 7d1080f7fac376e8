//! `authctl agent start | stop | status | reload`.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use authctl_client::proto::{ReloadRequest, ShutdownRequest};
use clap::Subcommand;

use crate::error::{CliError, exit};

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Start authctl-agent in the background and wait until it answers
    Start,
    /// Stop the running agent (it drains requests and removes its socket)
    Stop,
    /// Show whether the agent runs, and its pid, version and paths
    Status,
    /// Make the agent re-read config.toml (as SIGHUP does)
    Reload,
    /// Install and start the user service (systemd socket + service units, or a launchd agent)
    Install {
        /// Print the files instead of writing them
        #[arg(long)]
        print: bool,
    },
    /// Stop and remove the user service
    Uninstall,
}

pub async fn run(c: AgentCommand) -> Result<(), CliError> {
    match c {
        AgentCommand::Start => start(false).await,
        AgentCommand::Install { print } => install(print),
        AgentCommand::Uninstall => uninstall(),
        AgentCommand::Stop => stop().await,
        AgentCommand::Status => {
            let mut client = super::connect_existing().await?;
            let s = client.status().await?;
            println!(
                "running: pid {} version {} socket {} store {}",
                s.pid,
                s.version,
                s.socket_path,
                crate::output::store_name(s.secret_store())
            );
            if s.version != authctl_proto::VERSION {
                eprintln!(
                    "authctl: warning: the agent is version {}, this CLI is {}; restart it with `authctl agent stop && authctl agent start`",
                    s.version,
                    authctl_proto::VERSION
                );
            }
            Ok(())
        }
        AgentCommand::Reload => {
            let mut client = super::connect_existing().await?;
            let r = client
                .raw()
                .reload(ReloadRequest {})
                .await
                .map_err(|s| client.error(s))?
                .into_inner();
            eprintln!("configuration reloaded ({} provider(s))", r.providers);
            Ok(())
        }
    }
}

/// The agent binary: `$AUTHCTL_AGENT_BIN`, else beside this executable, else on `PATH`.
pub fn agent_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("AUTHCTL_AGENT_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    companion("authctl-agent")
}

/// A program of authctl's installation: beside this executable, else on `PATH`, else the bare
/// name (which the error of running it then names).
pub fn companion(name: &str) -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        let beside = exe.with_file_name(name);
        if beside.is_file() {
            return beside;
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn install(print: bool) -> Result<(), CliError> {
    let agent = agent_binary();
    let agent = agent.canonicalize().map_err(|e| {
        CliError::new(
            exit::FAILURE,
            format!("cannot find the agent binary {}: {e}", agent.display()),
        )
        .with_hint("install authctl-agent beside authctl or on PATH, or set AUTHCTL_AGENT_BIN")
    })?;
    let files = crate::service::files(&agent)?;
    if print {
        for f in &files {
            println!("# {}\n{}", f.path.display(), f.contents);
        }
        return Ok(());
    }
    for f in &files {
        if let Some(dir) = f.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&f.path, &f.contents)?;
        eprintln!("wrote {}", f.path.display());
    }
    let steps: Vec<Vec<String>> = if cfg!(target_os = "macos") {
        let uid = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        vec![vec![
            "launchctl".into(),
            "bootstrap".into(),
            format!("gui/{uid}"),
            files[0].path.display().to_string(),
        ]]
    } else {
        vec![
            vec!["systemctl".into(), "--user".into(), "daemon-reload".into()],
            vec![
                "systemctl".into(),
                "--user".into(),
                "enable".into(),
                "--now".into(),
                "authctl-agent.socket".into(),
            ],
        ]
    };
    for step in steps {
        let args: Vec<&str> = step.iter().map(String::as_str).collect();
        if let Err(e) = crate::service::manager(&args) {
            return Err(CliError::new(exit::FAILURE, format!("the service files are written, but {e}"))
                .with_hint("without a user service manager (containers, SSH sessions without lingering), use `authctl agent start`"));
        }
    }
    eprintln!("the agent service is installed and will start on first use (and with your session)");
    Ok(())
}

fn uninstall() -> Result<(), CliError> {
    let files = crate::service::files(&agent_binary())?;
    let stop = if cfg!(target_os = "macos") {
        let uid = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        crate::service::manager(&[
            "launchctl",
            "bootout",
            &format!("gui/{uid}/{}", crate::service::LAUNCHD_LABEL),
        ])
    } else {
        crate::service::manager(&[
            "systemctl",
            "--user",
            "disable",
            "--now",
            "authctl-agent.socket",
            "authctl-agent.service",
        ])
    };
    if let Err(e) = stop {
        eprintln!("authctl: note: {e}");
    }
    let mut removed = 0;
    for f in &files {
        if f.path.exists() {
            std::fs::remove_file(&f.path)?;
            eprintln!("removed {}", f.path.display());
            removed += 1;
        }
    }
    if !cfg!(target_os = "macos") {
        let _ = crate::service::manager(&["systemctl", "--user", "daemon-reload"]);
    }
    if removed == 0 {
        eprintln!("no service files were installed");
    }
    Ok(())
}

/// Where a background agent's log goes.
fn log_file() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "authctl")?;
    let dir = dirs
        .state_dir()
        .unwrap_or_else(|| dirs.data_dir())
        .to_path_buf();
    // Private: the log names accounts, providers and paths.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    Some(dir.join("agent.log"))
}

/// What `config.toml` says to the agent that would start: `Err` (exit code 2) with the agent's
/// own message (file, line, key) when it would not load. An agent binary that cannot be run says
/// nothing here; starting it reports that.
///
/// # Errors
/// The config file is broken.
pub fn check_config() -> Result<(), CliError> {
    let Ok(out) = std::process::Command::new(agent_binary())
        .arg("--check-config")
        .stdin(Stdio::null())
        .output()
    else {
        return Ok(());
    };
    if out.status.code() == Some(2) {
        let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(CliError::usage(message).with_hint(
            "fix config.toml; a running agent keeps the configuration it loaded before",
        ));
    }
    Ok(())
}

/// Starts the agent in the background and waits until it answers (`quiet`: one line only, for
/// autostart).
pub async fn start(quiet: bool) -> Result<(), CliError> {
    if let Ok(mut c) = authctl_client::connect_default().await
        && let Ok(s) = c.status().await
    {
        if !quiet {
            eprintln!(
                "the agent is already running (pid {}, socket {})",
                s.pid, s.socket_path
            );
        }
        return Ok(());
    }
    // A broken config.toml is said as one error (file, line, key), exit code 2.
    check_config()?;
    let bin = agent_binary();
    let log = log_file();
    let stderr = match &log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
            .map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    };
    let mut cmd = std::process::Command::new(&bin);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // Its own process group: a Ctrl-C in this terminal must not stop the agent.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| {
        CliError::new(
            exit::FAILURE,
            format!("cannot start {}: {e}", bin.display()),
        )
        .with_hint("install it beside authctl or on PATH, or set AUTHCTL_AGENT_BIN")
    })?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut c) = authctl_client::connect_default().await
            && let Ok(s) = c.status().await
        {
            if quiet {
                eprintln!(
                    "authctl: started the agent (pid {}); `authctl agent install` makes it a service",
                    s.pid
                );
            } else {
                eprintln!("agent started (pid {}, socket {})", s.pid, s.socket_path);
                if let Some(l) = &log {
                    eprintln!("log: {}", l.display());
                }
            }
            // The agent lives on; reap nothing (it is in its own group and outlives us).
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log.as_ref().map(|p| tail(p)).unwrap_or_default();
            return Err(CliError::new(
                exit::FAILURE,
                format!(
                    "the agent exited at start ({status}){}",
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(":\n{tail}")
                    }
                ),
            ));
        }
        if Instant::now() > deadline {
            return Err(
                CliError::new(exit::FAILURE, "the agent did not answer within 15 s").with_hint(
                    log.map(|l| format!("see its log: {}", l.display()))
                        .unwrap_or_default(),
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn tail(p: &std::path::Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

async fn stop() -> Result<(), CliError> {
    let mut client = super::connect_existing().await?;
    let socket = authctl_proto::socket_path().unwrap_or_default();
    let pid = client.status().await?.pid;
    client
        .raw()
        .shutdown(ShutdownRequest {})
        .await
        .map_err(|s| client.error(s))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while socket.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The socket is gone before the process ends; wait for the process too (its lock).
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!("agent stopped (pid {pid})");
    Ok(())
}

/// Whether `pid` still runs (a zombie, waiting for its parent to reap it, has stopped).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
