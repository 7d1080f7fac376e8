//! The socket: the listener and its peer check, the gRPC service (`authctl.agent.v1`, plus
//! `grpc.health.v1` and server reflection), and the drain at a stop.

mod diagnose;
mod listener;
mod reflection;
mod rpc;
mod status;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use authctl_proto::v1::agent_server::AgentServer;
use tokio::net::UnixListener;

pub use self::listener::{Activated, ListenerError, bind, take_activated};
use crate::access::Access;
use crate::login::Logins;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// How long a stop waits for clients to finish before closing their connections.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Serves on `listener` until a stop begins, then drains: requests in flight get
/// [`DRAIN_GRACE`], but a client that keeps an idle connection (or a `Watch` stream) open never
/// holds a stop up.
///
/// # Errors
/// The server could not be built or failed.
pub async fn serve(
    logins: Arc<Logins>,
    access: Arc<Access>,
    listener: UnixListener,
) -> Result<(), ServerError> {
    let core = Arc::clone(logins.core());
    let incoming = listener::incoming(listener, crate::hardening::current_uid());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<AgentServer<rpc::AgentService>>()
        .await;
    let served = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection::OnFirstCall::new(reflection::v1))
        .add_service(reflection::OnFirstCall::new(reflection::v1alpha))
        .add_service(AgentServer::new(rpc::AgentService::new(logins, access)))
        .serve_with_incoming_shutdown(incoming, core.stopped());
    let grace = {
        let stopped = core.stopped();
        async move {
            stopped.await;
            tokio::time::sleep(DRAIN_GRACE).await;
        }
    };
    tokio::select! {
        r = served => Ok(r?),
        () = grace => {
            tracing::info!("closing client connections still open");
            Ok(())
        }
    }
}
