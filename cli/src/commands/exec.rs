//! `authctl exec ACCOUNT -- CMD ARGS…`: runs a program with a token, in an environment variable
//! or, for long-running programs, in a 0600 file kept fresh (atomically rewritten when the agent
//! refreshes, before expiry) and removed at exit. Signals are forwarded; the exit status is the
//! child's.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use authctl_client::proto::GetTokenRequest;
use clap::Args;
use rustix::process::Signal;
use secrecy::{ExposeSecret, SecretString};
use tokio::signal::unix::{SignalKind, signal};

use crate::error::{CliError, exit};

#[derive(Args)]
pub struct ExecArgs {
    /// Account name, or a provider with exactly one account
    account: String,
    /// The environment variable that carries the token (default AUTHCTL_TOKEN)
    #[arg(
        long,
        value_name = "NAME",
        default_value = "AUTHCTL_TOKEN",
        conflicts_with = "token_file"
    )]
    env: String,
    /// Write the token to this file instead (mode 0600; a missing directory is made 0700),
    /// rewrite it whenever the agent refreshes the token, and remove it when the child exits;
    /// the child gets its path in AUTHCTL_TOKEN_FILE
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Ask for a subset of the account's scopes (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// RFC 8707 resource indicator (audience) for the token
    #[arg(long, value_name = "URL")]
    resource: Option<String>,
    /// The program and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

/// The signals passed on to the child.
const FORWARDED: [Signal; 6] = [
    Signal::HUP,
    Signal::INT,
    Signal::QUIT,
    Signal::TERM,
    Signal::USR1,
    Signal::USR2,
];

pub async fn run(a: ExecArgs) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let req = GetTokenRequest {
        account: a.account.clone(),
        scopes: a.scopes,
        resource: a.resource.unwrap_or_default(),
        ..GetTokenRequest::default()
    };
    let failed = |e: authctl_client::ClientError| {
        let login = e.is_login_required();
        let err = CliError::from(e);
        if login {
            err.with_hint(format!("run `authctl login {}`", a.account))
        } else {
            err
        }
    };
    // Only a token file is kept fresh; a variable cannot change under a running child.
    let mut fresh = None;
    let token = if a.token_file.is_some() {
        let f = client.fresh_token(req).await.map_err(failed)?;
        let t = f.current().access_token;
        fresh = Some(f);
        t
    } else {
        client
            .get_token_with(req)
            .await
            .map_err(failed)?
            .access_token
    };
    let (program, args) = a
        .command
        .split_first()
        .ok_or_else(|| CliError::usage("no command"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    if let Some(path) = &a.token_file {
        write_token_file(path, &token)?;
        cmd.env("AUTHCTL_TOKEN_FILE", path);
    } else {
        cmd.env(&a.env, token.expose_secret());
    }
    let result = supervise(cmd, fresh.as_mut(), a.token_file.as_deref()).await;
    if let Some(path) = &a.token_file {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Runs the child to its end: forwards signals, rewrites the token file on every new token,
/// and exits with the child's status (128 + N for a child killed by signal N, as shells do).
async fn supervise(
    mut cmd: tokio::process::Command,
    mut fresh: Option<&mut authctl_client::FreshToken>,
    token_file: Option<&Path>,
) -> Result<(), CliError> {
    // Hooked before the child exists: a signal sent once it runs (it may say so at once) must
    // reach it, not end this process with the child left running.
    let mut streams = Vec::new();
    for n in FORWARDED {
        streams.push((n, signal(SignalKind::from_raw(n.as_raw()))?));
    }
    let mut child = cmd.spawn().map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        };
        CliError::new(code, format!("cannot run the command: {e}"))
    })?;
    let pid = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(i32::try_from(p).unwrap_or(0)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (n, mut s) in streams {
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(n).is_err() {
                    return;
                }
            }
        });
    }
    let mut refreshing = fresh.is_some() && token_file.is_some();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            Some(n) = rx.recv() => {
                if let Some(pid) = pid {
                    let _ = rustix::process::kill_process(pid, n);
                }
            }
            t = async {
                match fresh.as_mut() {
                    Some(f) => f.changed().await,
                    None => std::future::pending().await,
                }
            }, if refreshing => {
                if let (Ok(t), Some(path)) = (t, token_file) {
                    if let Err(e) = write_token_file(path, &t.access_token) {
                        eprintln!("authctl: {}", e.message);
                    }
                } else {
                    eprintln!("authctl: the token file is no longer kept fresh (the agent is gone)");
                    refreshing = false;
                }
            },
        }
    };
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::FAILURE);
    // The child spoke for itself: no message of ours, only its status.
    Err(CliError::silent(code))
}

/// Writes the token to `path` atomically: a 0600 temporary file beside it, renamed over it.
fn write_token_file(path: &Path, token: &SecretString) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::new(
            exit::FAILURE,
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail("create the directory of", e))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| fail("inspect the directory of", e))?;
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(CliError::usage(format!(
            "the directory of the token file {} is writable by others; use a private directory",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(token.expose_secret().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write the token file", e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_private_and_replaced_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/token");
        write_token_file(&path, &SecretString::from("one")).unwrap();
        write_token_file(&path, &SecretString::from("two")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp left"
        );
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(write_token_file(&dir.path().join("t"), &SecretString::from("x")).is_err());
    }
}
