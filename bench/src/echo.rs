//! The floor of row 1 and 2: a raw tonic server on a Unix socket that answers
//! `authctl.agent.v1.Agent/GetToken` with a constant `Token` (the bytes the real agent returned),
//! with no agent logic at all. It runs in its own process on a 2-worker runtime, like the agent,
//! and is called through the same `authctl-client` code, so the difference between the two is
//! the agent's own work per call.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use authctl_proto::v1 as pb;
use prost::Message;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};

#[derive(Clone)]
struct Echo(Arc<pb::Token>);

impl NamedService for Echo {
    const NAME: &'static str = "authctl.agent.v1.Agent";
}

struct GetTokenSvc(Arc<pb::Token>);

impl UnaryService<pb::GetTokenRequest> for GetTokenSvc {
    type Response = pb::Token;
    type Future = BoxFuture<tonic::Response<pb::Token>, tonic::Status>;

    fn call(&mut self, _request: tonic::Request<pb::GetTokenRequest>) -> Self::Future {
        // The agent clones its cached token into each response; so does the floor.
        let token = pb::Token::clone(&self.0);
        Box::pin(async move { Ok(tonic::Response::new(token)) })
    }
}

impl<B> Service<http::Request<B>> for Echo
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == "/authctl.agent.v1.Agent/GetToken" {
            let svc = GetTokenSvc(Arc::clone(&self.0));
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(svc, req).await)
            })
        } else {
            Box::pin(async move {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    tonic::Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            })
        }
    }
}

/// `authctl-bench echo-server SOCKET TOKEN_FILE`: serves until killed.
///
/// # Errors
/// The token file is unreadable or the socket cannot be bound.
pub fn serve(socket: &Path, token_file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(token_file).context("read the token file")?;
    let token = pb::Token::decode(bytes.as_slice()).context("decode the token")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket)
            .with_context(|| format!("bind {}", socket.display()))?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(Echo(Arc::new(token)))
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    })
}

/// The echo server as a child process; killed when dropped.
pub struct EchoProcess {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl EchoProcess {
    /// Starts `current_exe() echo-server` answering with `token`, and waits for its socket.
    ///
    /// # Errors
    /// It could not be started or did not bind within 10 s.
    pub fn spawn(token: &pb::Token) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("authctl-echo-").tempdir()?;
        crate::register_temp(dir.path());
        let token_file = dir.path().join("token.bin");
        std::fs::write(&token_file, token.encode_to_vec())?;
        let socket = dir.path().join("echo.sock");
        let child = Command::new(std::env::current_exe()?)
            .arg("echo-server")
            .arg(&socket)
            .arg(&token_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("spawn the echo server")?;
        let mut me = Self {
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !me.socket.exists() {
            if let Some(status) = me.child.try_wait()? {
                bail!("the echo server exited: {status}");
            }
            if Instant::now() > deadline {
                bail!("the echo server did not bind its socket within 10 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(me)
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
