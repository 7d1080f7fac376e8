//! `authctl mcp URL`: the stdio bridge for MCP hosts. Its arguments are parsed here, so `authctl
//! mcp --help` and argument errors come from `authctl` itself; then `authctl` replaces itself with
//! the bridge, the `authctl-mcp` program installed beside it (same process, same standard streams,
//! same parent: the MCP host). The bridge is a program of its own because it carries an HTTP and
//! TLS stack that no other command needs and every `authctl` start would otherwise load.

use std::ffi::OsString;

use clap::Args;
use tonic::codegen::http::header::{self, HeaderName, HeaderValue};

use crate::error::{CliError, exit};

/// The bridge's program name.
pub const PROGRAM: &str = "authctl-mcp";

/// The session header a Streamable HTTP server assigns (MCP 2025-06-18 §Session Management).
pub const SESSION: &str = "mcp-session-id";
/// The negotiated protocol version, sent on every request after `initialize`.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";

#[derive(Args)]
pub struct McpArgs {
    /// The remote MCP server's Streamable HTTP endpoint (https, or http on a loopback address)
    #[arg(value_name = "URL")]
    pub url: String,
    /// The account whose tokens to send (default: the provider the zero-config login to URL
    /// remembered; with none yet, the first request logs in)
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// An extra HTTP header for every request to the server, as `Name: value` (repeatable)
    #[arg(long = "header", value_name = "K:V", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// `Name: value` (or `Name:value`) as a header; the bridge's own headers cannot be replaced.
fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not `Name: value`"))?;
    let name = HeaderName::from_bytes(k.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a header name", k.trim()))?;
    if [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT].contains(&name)
        || name == SESSION
        || name == PROTOCOL_VERSION
    {
        return Err(format!("`{name}` is the bridge's own header"));
    }
    let mut value = HeaderValue::from_str(v.trim())
        .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// Becomes the bridge, with `args` (what followed `mcp` on the command line, already checked by
/// the parser). Returns only if the bridge cannot be started.
pub fn exec(args: impl IntoIterator<Item = OsString>) -> CliError {
    use std::os::unix::process::CommandExt;

    let bridge = crate::commands::agent::companion(PROGRAM);
    let e = std::process::Command::new(&bridge).args(args).exec();
    CliError::new(
        exit::FAILURE,
        format!("cannot start the MCP bridge {}: {e}", bridge.display()),
    )
    .with_hint(format!("install {PROGRAM} beside authctl or on PATH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_the_bridge_keeps_its_own() {
        let (k, v) = parse_header("X-Tenant: blue").unwrap();
        assert_eq!(k.as_str(), "x-tenant");
        assert_eq!(v.to_str().unwrap(), "blue");
        assert!(v.is_sensitive(), "a header may carry a key: never printed");
        assert!(parse_header("no colon").is_err());
        for own in [
            "Authorization: Bearer x",
            "mcp-session-id: 1",
            "Accept: */*",
        ] {
            assert!(
                parse_header(own).unwrap_err().contains("own header"),
                "{own}"
            );
        }
        assert!(parse_header("X-A: a\u{7f}b").is_err());
    }
}
