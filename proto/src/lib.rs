//! The wire contract of `authctl-agent`: the gRPC service `authctl.agent.v1.Agent`, its messages,
//! and [`socket_path`], the one function that says where the agent listens.
//!
//! ```no_run
//! let path = authctl_proto::socket_path().expect("no runtime or home directory");
//! println!("the agent listens on {}", path.display());
//! ```

use std::path::PathBuf;

/// Generated from `proto/authctl/agent/v1/agent.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("authctl.agent.v1");
}

/// The encoded `FileDescriptorSet` of the service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/authctl_descriptor.bin"));

/// The version every crate of the workspace shares; the CLI compares it with the agent's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Environment variable that overrides the socket path.
pub const SOCKET_ENV: &str = "AUTHCTL_SOCK";

/// Where the agent's socket lives: `$AUTHCTL_SOCK` if set and not empty; else
/// `$XDG_RUNTIME_DIR/authctl/agent.sock`; else `authctl/agent.sock` under the per-user runtime
/// directory (or, where the platform has none, the cache directory) that `directories` gives.
///
/// Returns `None` only when no home directory can be found.
#[must_use]
pub fn socket_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(dir).join("authctl").join("agent.sock"));
    }
    let dirs = directories::ProjectDirs::from("", "", "authctl")?;
    let base = dirs.runtime_dir().unwrap_or_else(|| dirs.cache_dir());
    Some(base.join("agent.sock"))
}
