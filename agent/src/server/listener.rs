//! The socket: a private directory, stale-socket recovery that never removes anything but a
//! socket, systemd socket activation, a bounded number of connections, and the peer check that
//! refuses any connection from another uid before a byte of it is read.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::Stream;

use crate::paths::{DirError, ensure_private_dir};
use crate::ratelog::LogGate;

/// Client connections served at once; more wait in the kernel's listen backlog (unread) until one
/// closes, so a burst of clients is served in turn instead of refused.
const MAX_CONNECTIONS: usize = 512;

/// Why the socket could not be set up. Each names the path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("socket path {} has no directory", .0.display())]
    NoDirectory(PathBuf),
    #[error(transparent)]
    Directory(#[from] DirError),
    #[error("another agent is already serving on {}; stop it with `authctl agent stop`", .0.display())]
    InUse(PathBuf),
    #[error(
        "{} exists and is not a socket; the agent removes only a stale socket: move it away yourself",
        .0.display()
    )]
    NotASocket(PathBuf),
    #[error("cannot remove stale socket {}: {source}", path.display())]
    Stale {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot bind socket {}: {source}", path.display())]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set permissions of {}: {source}", path.display())]
    Chmod {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the activated socket (LISTEN_FDS) is not a usable Unix socket: {0}")]
    Activated(std::io::Error),
}

/// The socket the agent bound, which it alone may remove.
pub struct BoundSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundSocket {
    /// Removes the socket, if the path still names the one this agent created (same inode): a
    /// socket a newer agent bound meanwhile, or anything else put there, stays.
    pub fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => {
                let _ = std::fs::remove_file(&self.path);
            }
            Ok(_) => {
                tracing::info!(socket = %self.path.display(), "the socket path now names another file; left alone");
            }
            Err(_) => {}
        }
    }
}

/// Binds the socket at `path`: its directory chain must be private (see
/// [`ensure_private_dir`]); a socket left by a dead agent is replaced; a live one, or any file
/// that is not a socket (a symlink included), is refused.
///
/// # Errors
/// See [`ListenerError`].
pub async fn bind(path: &Path) -> Result<(UnixListener, BoundSocket), ListenerError> {
    let dir = path
        .parent()
        .ok_or_else(|| ListenerError::NoDirectory(path.into()))?;
    ensure_private_dir(dir)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ListenerError::NotASocket(path.into()));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(ListenerError::InUse(path.into()));
        }
        tracing::info!(socket = %path.display(), "removing a stale socket");
        std::fs::remove_file(path).map_err(|source| ListenerError::Stale {
            path: path.into(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ListenerError::Bind {
        path: path.into(),
        source,
    })?;
    let chmod = |source| ListenerError::Chmod {
        path: path.into(),
        source,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(chmod)?;
    let meta = std::fs::symlink_metadata(path).map_err(chmod)?;
    Ok((
        listener,
        BoundSocket {
            path: path.into(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    ))
}

/// A socket handed over by systemd (`LISTEN_FDS`). Taken from the environment before the agent
/// starts any thread ([`take_activated`]), since reading it also clears the variables.
pub struct Activated(Option<std::os::unix::net::UnixListener>);

/// Takes the activated socket, if any. Call it first thing, while the process has one thread.
///
/// # Errors
/// An activated file descriptor that is not a Unix stream socket.
pub fn take_activated() -> Result<Activated, ListenerError> {
    let mut fds = listenfd::ListenFd::from_env();
    fds.take_unix_listener(0)
        .map(Activated)
        .map_err(ListenerError::Activated)
}

impl Activated {
    /// The socket as a tokio listener (inside the runtime).
    ///
    /// # Errors
    /// It cannot be made non-blocking or registered.
    pub fn into_listener(self) -> Result<Option<UnixListener>, ListenerError> {
        let Some(l) = self.0 else {
            return Ok(None);
        };
        l.set_nonblocking(true).map_err(ListenerError::Activated)?;
        UnixListener::from_std(l)
            .map(Some)
            .map_err(ListenerError::Activated)
    }
}

/// How long a new connection may stay silent: one that has sent no byte by then (an idle flood
/// holding the places) is closed, so the clients waiting behind it get in.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);

/// A client connection, holding its place among the [`MAX_CONNECTIONS`] until it closes.
pub struct Conn {
    stream: UnixStream,
    peer: PeerInfo,
    _place: OwnedSemaphorePermit,
    /// Until the first byte arrives: when the connection is closed for its silence.
    silent_until: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What every request of a connection knows of its peer: the kernel's credentials, a pidfd that
/// pins the process from accept time, and the attested caller (computed on the first request that
/// needs it, then kept for the connection's life).
#[derive(Clone)]
pub struct PeerInfo {
    pub uds: tonic::transport::server::UdsConnectInfo,
    pub pidfd: Option<Arc<std::os::fd::OwnedFd>>,
    pub caller: Arc<std::sync::OnceLock<Arc<crate::access::Caller>>>,
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Some(deadline) = self.silent_until.as_mut() {
            match &read {
                Poll::Ready(Ok(())) if buf.filled().len() > before => self.silent_until = None,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client sent nothing within the first-byte timeout",
                    )));
                }
                _ => {}
            }
        }
        read
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
    }
}

/// Accepted connections whose peer has our uid, at most [`MAX_CONNECTIONS`] at once (no accept
/// while every place is taken: later clients wait in the backlog, and a connection silent for
/// [`FIRST_BYTE_TIMEOUT`] loses its place); others are closed unread, with one warning a second at
/// most. Accept errors (EMFILE) back off instead of spinning.
pub fn incoming(
    listener: UnixListener,
    uid: u32,
) -> impl Stream<Item = std::io::Result<Conn>> + Send + 'static {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let places = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let (mut refused, mut full, mut failed) = (LogGate::new(), LogGate::new(), LogGate::new());
        let mut backoff = Duration::from_millis(10);
        loop {
            let place = if let Ok(place) = Arc::clone(&places).try_acquire_owned() {
                place
            } else {
                if let Some(n) = full.admit() {
                    tracing::warn!(
                        limit = MAX_CONNECTIONS,
                        suppressed = n,
                        "every client connection place is taken; new clients wait until one closes"
                    );
                }
                tokio::select! {
                    p = Arc::clone(&places).acquire_owned() => match p {
                        Ok(place) => place,
                        Err(_) => return,
                    },
                    () = tx.closed() => return,
                }
            };
            let stream = tokio::select! {
                r = listener.accept() => r,
                () = tx.closed() => return,
            };
            let stream = match stream {
                Ok((s, _)) => {
                    backoff = Duration::from_millis(10);
                    s
                }
                Err(e) => {
                    if let Some(n) = failed.admit() {
                        tracing::warn!(error = %e, suppressed = n, "accept failed; backing off");
                    }
                    drop(place);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == uid => {}
                Ok(cred) => {
                    if let Some(n) = refused.admit() {
                        tracing::warn!(peer_uid = cred.uid(), peer_pid = ?cred.pid(), suppressed = n, "refused a connection from another user");
                    }
                    continue;
                }
                Err(e) => {
                    if let Some(n) = refused.admit() {
                        tracing::warn!(error = %e, suppressed = n, "refused a connection whose peer credentials are unknown");
                    }
                    continue;
                }
            }
            // Pinned now, while the peer is surely the process that connected.
            let pidfd = crate::access::caller::pin(stream.peer_cred().ok().and_then(|c| c.pid()));
            let peer = PeerInfo {
                uds: tonic::transport::server::Connected::connect_info(&stream),
                pidfd: pidfd.map(Arc::new),
                caller: Arc::new(std::sync::OnceLock::new()),
            };
            let conn = Conn {
                stream,
                peer,
                _place: place,
                silent_until: Some(Box::pin(tokio::time::sleep(FIRST_BYTE_TIMEOUT))),
            };
            if tx.send(Ok(conn)).await.is_err() {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
