//! The socket: a private directory, stale-socket recovery, systemd socket activation, and the
//! peer check that refuses any connection from another uid before a byte of it is read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::{UnixListener, UnixStream};
use tokio_stream::{Stream, StreamExt};

use crate::paths::ensure_private_dir;

/// Binds the socket at `path`: the directory must be private; a socket file left by a dead
/// agent is replaced; a live one is refused.
///
/// # Errors
/// A message naming the path and the fix.
pub async fn bind(path: &Path) -> Result<UnixListener, String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("socket path {} has no directory", path.display()))?;
    ensure_private_dir(dir)?;
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(format!(
                "another agent is already serving on {}; stop it with `authctl agent stop`",
                path.display()
            ));
        }
        tracing::info!(socket = %path.display(), "removing a stale socket");
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot bind socket {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot set permissions of {}: {e}", path.display()))?;
    Ok(listener)
}

/// A socket handed over by systemd (`LISTEN_FDS`), if any.
///
/// # Errors
/// An activated file descriptor that is not a Unix stream socket.
pub fn activated() -> Result<Option<UnixListener>, String> {
    let mut fds = listenfd::ListenFd::from_env();
    match fds.take_unix_listener(0) {
        Ok(Some(l)) => {
            l.set_nonblocking(true)
                .map_err(|e| format!("activated socket: {e}"))?;
            UnixListener::from_std(l)
                .map(Some)
                .map_err(|e| format!("activated socket: {e}"))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(format!(
            "the activated socket (LISTEN_FDS) is not a Unix socket: {e}"
        )),
    }
}

/// Accepted connections whose peer has our uid; others are logged and closed unread.
pub fn incoming(
    listener: UnixListener,
    uid: u32,
) -> impl Stream<Item = std::io::Result<UnixStream>> {
    tokio_stream::wrappers::UnixListenerStream::new(listener).filter(move |conn| match conn {
        Ok(stream) => match stream.peer_cred() {
            Ok(cred) if cred.uid() == uid => true,
            Ok(cred) => {
                tracing::warn!(peer_uid = cred.uid(), peer_pid = ?cred.pid(), "refused a connection from another user");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a connection whose peer credentials are unknown");
                false
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
            false
        }
    })
}
