//! The connection under [`crate::Client`]: one HTTP/2 connection over the Unix socket, with calls
//! sent straight onto it.
//!
//! tonic's `Channel` puts a buffer task between each call and the connection (one more task
//! wake-up and hand-off per call); a local socket with one peer needs neither its buffer nor its
//! load balancing, so calls go to hyper's `SendRequest` directly. Like a `Channel`, a connection
//! that closed (the agent restarted) is dialled again on the next call.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::Channel;

/// An error of the transport, for tonic to turn into a status.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A dial in progress; in a mutex only so that a `Connection` is `Sync` (it is only ever reached
/// through `&mut`, with `get_mut`, never locked).
type Dial =
    std::sync::Mutex<Pin<Box<dyn Future<Output = Result<SendRequest<Body>, BoxError>> + Send>>>;

/// A connection to the agent (see the module docs). Clones share the HTTP/2 connection.
pub struct Connection {
    state: State,
    /// The socket, to dial again; `None` over a caller's own channel.
    path: Option<Arc<Path>>,
}

enum State {
    Ready(SendRequest<Body>),
    /// Closed: dialled again when a call comes.
    Closed,
    Dialing(Dial),
    /// Dialling failed: the call that waited for it gets the error (tonic keeps a call's error
    /// as the status's source, where the client tells "not running" from other failures; an
    /// error of `poll_ready` would reach the caller as text only).
    Failed(Option<BoxError>),
    /// A caller's own tonic channel ([`crate::from_channel`]).
    Channel(Channel),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Closed => "closed",
            State::Dialing(_) => "dialing",
            State::Failed(_) => "failed",
            State::Channel(_) => "channel",
        };
        f.debug_struct("Connection")
            .field("path", &self.path)
            .field("state", &state)
            .finish()
    }
}

impl Clone for Connection {
    fn clone(&self) -> Self {
        let state = match &self.state {
            State::Ready(send) => State::Ready(send.clone()),
            State::Channel(channel) => State::Channel(channel.clone()),
            State::Closed | State::Dialing(_) | State::Failed(_) => State::Closed,
        };
        Self {
            state,
            path: self.path.clone(),
        }
    }
}

impl Connection {
    /// Dials the agent at `path` and completes the HTTP/2 set-up.
    ///
    /// # Errors
    /// The socket cannot be reached, or a process of another user serves it.
    pub async fn open(path: &Path) -> Result<Self, BoxError> {
        let send = dial(path.to_owned()).await?;
        Ok(Self {
            state: State::Ready(send),
            path: Some(Arc::from(path)),
        })
    }

    /// Over a caller's own channel.
    #[must_use]
    pub fn over(channel: Channel) -> Self {
        Self {
            state: State::Channel(channel),
            path: None,
        }
    }
}

/// Connects, checks that the agent runs as this user before a byte is sent, and starts the
/// connection's task.
async fn dial(path: PathBuf) -> Result<SendRequest<Body>, BoxError> {
    let stream = tokio::net::UnixStream::connect(&path).await?;
    let owner = rustix::process::getuid().as_raw();
    let agent = stream.peer_cred()?.uid();
    if agent != owner {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            crate::ForeignAgent { agent, owner },
        )
        .into());
    }
    let (send, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(async move {
        // Its end (the agent went away) shows in the next call.
        let _ = connection.await;
    });
    Ok(send)
}

impl tower::Service<http::Request<Body>> for Connection {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        loop {
            match &mut self.state {
                State::Ready(send) if !send.is_closed() => {
                    return send.poll_ready(cx).map_err(Into::into);
                }
                State::Channel(channel) => {
                    return tower::Service::poll_ready(channel, cx).map_err(Into::into);
                }
                State::Failed(_) => return Poll::Ready(Ok(())),
                State::Ready(_) | State::Closed => match &self.path {
                    Some(path) => {
                        self.state = State::Dialing(std::sync::Mutex::new(Box::pin(dial(
                            path.to_path_buf(),
                        ))));
                    }
                    None => return Poll::Ready(Err("the connection is closed".into())),
                },
                State::Dialing(dialing) => match dialing
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_mut()
                    .poll(cx)
                {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(send)) => self.state = State::Ready(send),
                    Poll::Ready(Err(e)) => {
                        self.state = State::Failed(Some(e));
                        return Poll::Ready(Ok(()));
                    }
                },
            }
        }
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        match &mut self.state {
            State::Ready(send) => {
                let answer = send.send_request(req);
                Box::pin(async move { Ok(answer.await?.map(Body::new)) })
            }
            State::Channel(channel) => {
                let answer = tower::Service::call(channel, req);
                Box::pin(async move { Ok(answer.await?) })
            }
            State::Failed(e) => {
                let e = e
                    .take()
                    .unwrap_or_else(|| "the connection is closed".into());
                // The next call dials again.
                self.state = State::Closed;
                Box::pin(async { Err(e) })
            }
            State::Closed | State::Dialing(_) => {
                Box::pin(async { Err("call before the connection was ready".into()) })
            }
        }
    }
}
