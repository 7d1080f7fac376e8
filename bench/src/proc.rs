//! Whole-process timing, hyperfine, and a minimal HTTP/1.1 client for the provider floor.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

/// Runs `cmd` to completion with stdout and stderr on `/dev/null` and returns its wall time in
/// milliseconds, from just before the spawn to the reaped exit (what `hyperfine -N` measures).
///
/// # Errors
/// It cannot be spawned or exits non-zero.
pub fn time_ms(cmd: &mut Command) -> anyhow::Result<f64> {
    if crate::STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        bail!("stopping");
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        bail!(
            "`{} {}` exited with {status}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(ms)
}

/// Runs `cmd` and returns its stdout, requiring exit code 0.
///
/// # Errors
/// It cannot be spawned or exits non-zero.
pub fn output_ok(cmd: &mut Command) -> anyhow::Result<String> {
    let o = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    if !o.status.success() {
        bail!(
            "{:?} exited with {}: {}",
            cmd.get_program(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// One hyperfine result: the median and every run's wall time, in milliseconds.
pub struct HyperfineResult {
    pub median_ms: f64,
    pub times_ms: Vec<f64>,
}

/// Runs `hyperfine -N` on `commands` (each a whitespace-separated command line) with the
/// environment of `base` (a cleared-environment command whose variables are reused).
///
/// # Errors
/// hyperfine is missing or fails.
pub fn hyperfine(
    base: &mut Command,
    commands: &[String],
    warmup: usize,
    runs: usize,
    json: &Path,
) -> anyhow::Result<Vec<HyperfineResult>> {
    base.args([
        "-N",
        "--style",
        "none",
        "--warmup",
        &warmup.to_string(),
        "--runs",
        &runs.to_string(),
        "--export-json",
    ])
    .arg(json)
    .args(commands);
    output_ok(base)?;
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json)?)?;
    let results = v["results"]
        .as_array()
        .ok_or_else(|| anyhow!("hyperfine JSON without results"))?;
    results
        .iter()
        .map(|r| {
            let median_ms = r["median"]
                .as_f64()
                .ok_or_else(|| anyhow!("hyperfine JSON without a median"))?
                * 1e3;
            let times_ms = r["times"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(serde_json::Value::as_f64)
                        .map(|x| x * 1e3)
                        .collect()
                })
                .unwrap_or_default();
            Ok(HyperfineResult {
                median_ms,
                times_ms,
            })
        })
        .collect()
}

/// `application/x-www-form-urlencoded` / RFC 3986 percent-encoding of everything but unreserved
/// characters.
#[must_use]
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A minimal HTTP/1.1 request to `127.0.0.1:port` on a new connection (`Connection: close`):
/// `(status, body)`.
///
/// # Errors
/// Connection, I/O or a malformed answer.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    let body = form.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if form.is_some() {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line"))?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body).ok_or_else(|| anyhow!("bad chunked body"))?;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..eol])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The token endpoint's path at a test provider, from its discovery document.
///
/// # Errors
/// Discovery fails.
pub fn token_path(port: u16) -> anyhow::Result<String> {
    let (status, body) = http(port, "GET", "/.well-known/openid-configuration", None)?;
    if status != 200 {
        bail!("discovery answered {status}");
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    let ep = v["token_endpoint"]
        .as_str()
        .ok_or_else(|| anyhow!("no token_endpoint"))?;
    let rest = ep
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("token endpoint {ep} is not http"))?;
    Ok(rest[rest.find('/').unwrap_or(rest.len())..].to_owned())
}

/// One refresh-token grant straight at the provider (public client `authctl-native`), rotating
/// `rt`; returns the wall time in milliseconds (connect, request, full answer).
///
/// # Errors
/// The provider refuses.
pub fn raw_refresh(port: u16, path: &str, rt: &mut String) -> anyhow::Result<f64> {
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id=authctl-native",
        form_encode(rt)
    );
    let t = Instant::now();
    let (status, body) = http(port, "POST", path, Some(&form))?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if status != 200 {
        bail!("the provider answered {status}: {body}");
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    if let Some(new) = v["refresh_token"].as_str() {
        new.clone_into(rt);
    }
    if v["access_token"].as_str().is_none() {
        bail!("no access_token in {body}");
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(form_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(form_encode("a b/+="), "a%20b%2F%2B%3D");
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
    }
}
