//! A thin async client for `authctl-agent`'s local socket.
//!
//! ```no_run
//! # async fn demo() -> Result<(), authctl_client::ClientError> {
//! use secrecy::ExposeSecret;
//! let mut agent = authctl_client::connect_default().await?;
//! match agent.get_token("corp").await {
//!     Ok(token) => println!("Authorization: Bearer {}", token.access_token.expose_secret()),
//!     Err(e) if e.is_login_required() => eprintln!("run `authctl login corp` first"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

mod conn;

use std::path::{Path, PathBuf};

pub use authctl_proto::v1 as proto;
use authctl_proto::v1::agent_client::AgentClient;
pub use conn::Connection;
/// Re-exported so callers can `expose_secret()` a token without a direct dependency.
pub use secrecy;
use secrecy::SecretString;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// What can go wrong talking to the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No socket path could be derived (no `AUTHCTL_SOCK`, runtime or home directory).
    #[error("no socket path: set AUTHCTL_SOCK or XDG_RUNTIME_DIR")]
    NoSocketPath,
    /// Nothing listens on the socket.
    #[error("the agent is not running (no answer on {path}): {reason}")]
    NotRunning { path: PathBuf, reason: String },
    /// The socket exists but this user may not use it (it belongs to another user).
    #[error(
        "permission denied on the agent's socket {path}: {reason}; the agent admits only its own user"
    )]
    PermissionDenied { path: PathBuf, reason: String },
    /// The agent closed the connection (for example, because it runs as another user).
    #[error("the agent at {path} closed the connection: {reason}")]
    Transport { path: PathBuf, reason: String },
    /// The agent answered with an error.
    #[error("{}", .0.message())]
    Rpc(#[from] Status),
}

impl ClientError {
    /// No agent answers on the socket.
    #[must_use]
    pub fn is_not_running(&self) -> bool {
        matches!(self, Self::NotRunning { .. } | Self::NoSocketPath)
    }

    /// The account needs `authctl login` (its refresh token is missing or was rejected).
    #[must_use]
    pub fn is_login_required(&self) -> bool {
        self.code() == Some(Code::FailedPrecondition)
    }

    /// No such account or provider.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }

    /// The provider is unreachable or failing; retrying later may help.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.code() == Some(Code::Unavailable)
    }

    /// The gRPC status code, when the agent answered.
    #[must_use]
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Rpc(s) => Some(s.code()),
            _ => None,
        }
    }
}

/// An access token. `access_token` and `id_token` are secrets: redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct Token {
    pub access_token: SecretString,
    pub token_type: String,
    /// Unix seconds; 0 when the provider gave no lifetime.
    pub expires_at: i64,
    pub scopes: Vec<String>,
    pub account: String,
    pub id_token: Option<SecretString>,
    /// Why the token may not meet what was asked (e.g. a capped `min_ttl`).
    pub note: Option<String>,
}

impl From<proto::Token> for Token {
    fn from(t: proto::Token) -> Self {
        Self {
            access_token: SecretString::from(t.access_token),
            token_type: t.token_type,
            expires_at: t.expires_at,
            scopes: t.scopes,
            account: t.account,
            id_token: t.id_token.map(SecretString::from),
            note: t.note,
        }
    }
}

/// A connection to the agent. Cheap to clone; clones share the connection. A connection that
/// closed (the agent restarted) is dialled again on the next call.
#[derive(Debug, Clone)]
pub struct Client {
    inner: AgentClient<Connection>,
    path: PathBuf,
}

/// Connects to the agent at the default socket path ([`authctl_proto::socket_path`]).
///
/// # Errors
/// No socket path, or no agent answers.
pub async fn connect_default() -> Result<Client, ClientError> {
    let path = authctl_proto::socket_path().ok_or(ClientError::NoSocketPath)?;
    connect(&path).await
}

/// Connects to the agent listening on `path`.
///
/// The agent must run as this user: the socket's peer credentials are checked before a byte is
/// sent, so a fake agent listening on the path (another user's process) never sees a request, a
/// client secret or a token.
///
/// # Errors
/// No agent answers there, the socket is not ours, or the agent runs as another user.
pub async fn connect(path: &Path) -> Result<Client, ClientError> {
    let connection = Connection::open(path)
        .await
        .map_err(|e| classify(path, &*e))?;
    Ok(Client {
        inner: with_origin(connection),
        path: path.to_owned(),
    })
}

/// The socket is not an HTTP origin: the authority only has to be valid.
fn with_origin(connection: Connection) -> AgentClient<Connection> {
    AgentClient::with_origin(
        connection,
        tonic::codegen::http::Uri::from_static("http://localhost"),
    )
}

/// The process listening on the socket runs as another user.
#[derive(Debug, thiserror::Error)]
#[error("the process serving this socket runs as uid {agent}, not as you (uid {owner})")]
pub(crate) struct ForeignAgent {
    agent: u32,
    owner: u32,
}

/// What a failed connection means, from the I/O error under it (never from message text).
fn classify(path: &Path, e: &(dyn std::error::Error + 'static)) -> ClientError {
    let reason = source_chain(e);
    let path = path.to_owned();
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    ClientError::PermissionDenied { path, reason }
                }
                // Something accepted the connection, then hung up: an agent refusing our uid.
                std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof => ClientError::Transport { path, reason },
                _ => ClientError::NotRunning { path, reason },
            };
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_closed() || h.is_incomplete_message() || h.is_canceled())
        {
            return ClientError::Transport { path, reason };
        }
        cause = err.source();
    }
    ClientError::NotRunning { path, reason }
}

/// Whether `e` is a failed dial: nothing listens on the socket (any more).
fn redial_failed(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            );
        }
        match e.source() {
            Some(next) => e = next,
            None => return false,
        }
    }
}

/// Wraps an existing channel (for custom transports or tests).
#[must_use]
pub fn from_channel(channel: Channel) -> Client {
    Client {
        inner: with_origin(Connection::over(channel)),
        path: PathBuf::new(),
    }
}

/// An error and its causes, each said once (wrappers often repeat their source's text).
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        src = s.source();
    }
    text
}

impl Client {
    /// The socket this client talks to.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn map(&self, s: Status) -> ClientError {
        // A status tonic made up locally for a dropped connection carries the transport error as
        // its source; a status the agent sent has none.
        let transport = std::error::Error::source(&s).is_some()
            && matches!(
                s.code(),
                Code::Unknown | Code::Unavailable | Code::Cancelled
            );
        match std::error::Error::source(&s) {
            // Dialling again after the connection closed found no agent.
            Some(source) if transport && redial_failed(source) => classify(&self.path, source),
            _ if transport => ClientError::Transport {
                path: self.path.clone(),
                reason: s.message().to_owned(),
            },
            _ => ClientError::Rpc(s),
        }
    }

    /// A token for `account` (an account name, or a provider with exactly one account).
    ///
    /// # Errors
    /// See [`ClientError`]; [`ClientError::is_login_required`] tells when a login is needed.
    pub async fn get_token(&mut self, account: &str) -> Result<Token, ClientError> {
        self.get_token_with(proto::GetTokenRequest {
            account: account.into(),
            ..Default::default()
        })
        .await
    }

    /// A token with every option of the request (scopes, resource, `min_ttl`, forced refresh).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn get_token_with(
        &mut self,
        req: proto::GetTokenRequest,
    ) -> Result<Token, ClientError> {
        match self.inner.get_token(req).await {
            Ok(r) => Ok(r.into_inner().into()),
            Err(s) => Err(self.map(s)),
        }
    }

    /// Every account and its state.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn list_accounts(&mut self) -> Result<Vec<proto::Account>, ClientError> {
        match self
            .inner
            .list_accounts(proto::ListAccountsRequest {})
            .await
        {
            Ok(r) => Ok(r.into_inner().accounts),
            Err(s) => Err(self.map(s)),
        }
    }

    /// The agent's own status.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn status(&mut self) -> Result<proto::StatusResponse, ClientError> {
        match self.inner.status(proto::StatusRequest {}).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.map(s)),
        }
    }

    /// The generated gRPC client, for every other call.
    pub fn raw(&mut self) -> &mut AgentClient<Connection> {
        &mut self.inner
    }

    /// Maps a status from a [`Client::raw`] call the way this client does.
    #[must_use]
    pub fn error(&self, s: Status) -> ClientError {
        self.map(s)
    }
}

impl Client {
    /// Streams account events as they happen (empty `account`: every account).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn watch(
        &mut self,
        account: &str,
    ) -> Result<tonic::Streaming<proto::WatchEvent>, ClientError> {
        match self
            .inner
            .watch(proto::WatchRequest {
                account: account.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner()),
            Err(s) => Err(self.map(s)),
        }
    }

    /// A handle that always holds a fresh token for `req`, for long-running programs: it follows
    /// the agent's `Watch` stream and re-asks when the token is refreshed or nears expiry (the
    /// model is SPIFFE's Workload API sources).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), authctl_client::ClientError> {
    /// use secrecy::ExposeSecret;
    /// let agent = authctl_client::connect_default().await?;
    /// let mut fresh = agent.fresh_token(authctl_client::proto::GetTokenRequest {
    ///     account: "corp".into(),
    ///     ..Default::default()
    /// }).await?;
    /// loop {
    ///     let token = fresh.current();
    ///     println!("use {}", token.access_token.expose_secret().len());
    ///     fresh.changed().await?;
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// The first token cannot be had.
    pub async fn fresh_token(
        &self,
        req: proto::GetTokenRequest,
    ) -> Result<FreshToken, ClientError> {
        let mut me = self.clone();
        let first = me.get_token_with(req.clone()).await?;
        let account = first.account.clone();
        let (tx, rx) = tokio::sync::watch::channel(first);
        let task = tokio::spawn(async move {
            let mut events = me.watch(&account).await.ok();
            loop {
                let expires_at = tx.borrow().expires_at;
                // Re-ask a minute before expiry even if no event arrives.
                let wait = if expires_at > 0 {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
                    std::time::Duration::from_secs(
                        u64::try_from((expires_at - now - 60).max(1)).unwrap_or(1),
                    )
                } else {
                    std::time::Duration::from_secs(300)
                };
                let refreshed = async {
                    match events.as_mut() {
                        Some(s) => loop {
                            match s.message().await {
                                Ok(Some(ev))
                                    if ev.kind == proto::WatchEventKind::Refreshed as i32
                                        || ev.kind == proto::WatchEventKind::LoggedIn as i32 =>
                                {
                                    return true;
                                }
                                Ok(Some(_)) => {}
                                _ => return false,
                            }
                        },
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    alive = refreshed => if !alive {
                        // The stream ended (agent restarted): resubscribe after a pause.
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        events = me.watch(&account).await.ok();
                    },
                    () = tokio::time::sleep(wait) => {}
                    () = tx.closed() => return,
                }
                if let Ok(t) = me.get_token_with(req.clone()).await {
                    let changed = {
                        use secrecy::ExposeSecret;
                        t.access_token.expose_secret() != tx.borrow().access_token.expose_secret()
                    };
                    if changed {
                        let _ = tx.send(t);
                    }
                }
            }
        });
        Ok(FreshToken { rx, task })
    }
}

/// A token kept fresh in the background; see [`Client::fresh_token`].
#[derive(Debug)]
pub struct FreshToken {
    rx: tokio::sync::watch::Receiver<Token>,
    task: tokio::task::JoinHandle<()>,
}

impl FreshToken {
    /// The freshest token known.
    #[must_use]
    pub fn current(&self) -> Token {
        self.rx.borrow().clone()
    }

    /// Waits until a new token arrives, and returns it.
    ///
    /// # Errors
    /// The background task ended.
    pub async fn changed(&mut self) -> Result<Token, ClientError> {
        self.rx
            .changed()
            .await
            .map_err(|_| ClientError::Transport {
                path: PathBuf::new(),
                reason: "the refresh task ended".into(),
            })?;
        Ok(self.rx.borrow_and_update().clone())
    }
}

impl Drop for FreshToken {
    fn drop(&mut self) {
        self.task.abort();
    }
}
