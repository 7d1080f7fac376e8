//! A minimal client of oidc-agent's IPC (its documented IPC-API, oidc-agent 4.x), for row 1e.
//!
//! oidc-agent listens on a UNIX `SOCK_STREAM` socket and serves **one request per connection**:
//! the client connects and writes one JSON object (no delimiter); the agent writes one JSON
//! object back and closes the connection. Its own clients (liboidc-agent, `oidc-token`) work the
//! same way, one connection per request, and read the answer in one piece (`select`, `FIONREAD`,
//! `read`); they also wrap the request in a key exchange and encryption (libsodium), which this
//! plain-JSON client leaves out: what it measures is the agent's cheapest round trip.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context as _, bail};

/// The JSON request for a cached access token of `account` (`min_valid_period` 0).
#[must_use]
pub fn access_token_request(account: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "request": "access_token",
        "account": account,
        "min_valid_period": 0,
        "application_hint": "authctl-bench",
    }))
    .expect("a JSON object serializes")
}

/// One request on a new connection: connects, writes `request`, reads until the bytes received
/// form one complete JSON object (or the agent closes the connection), and returns the answer.
/// `buf` is reused between calls.
///
/// # Errors
/// No connection, an I/O error, or an answer that is not JSON.
pub fn call(socket: &Path, request: &[u8], buf: &mut Vec<u8>) -> anyhow::Result<serde_json::Value> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connect to oidc-agent at {}", socket.display()))?;
    s.write_all(request)?;
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Ok(v) = serde_json::from_slice(buf) {
            return Ok(v);
        }
    }
    if buf.is_empty() {
        bail!("oidc-agent closed the connection without an answer");
    }
    serde_json::from_slice(buf).context("oidc-agent's answer is not one JSON object")
}

/// Whether `answer` is a success carrying a non-empty access token.
#[must_use]
pub fn has_token(answer: &serde_json::Value) -> bool {
    answer["status"] == "success"
        && answer["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_connection() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            for answer in [
                &b"{\"status\":\"success\",\"access_token\":\"t\"}"[..],
                b"{}",
            ] {
                let (mut c, _) = listener.accept().unwrap();
                let mut req = [0u8; 512];
                let n = c.read(&mut req).unwrap();
                let v: serde_json::Value = serde_json::from_slice(&req[..n]).unwrap();
                assert_eq!(v["account"], "a");
                // In two pieces, then the connection closes.
                c.write_all(&answer[..1]).unwrap();
                c.write_all(&answer[1..]).unwrap();
            }
        });
        let req = access_token_request("a");
        let mut buf = Vec::new();
        assert!(has_token(&call(&sock, &req, &mut buf).unwrap()));
        assert!(!has_token(&call(&sock, &req, &mut buf).unwrap()));
        server.join().unwrap();
    }
}
