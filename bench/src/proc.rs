//! Whole-process timing, hyperfine, and the provider floor's raw refresh grant.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use authctl_tests::http::Request;

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

/// The token endpoint's path at a test provider, from its discovery document.
///
/// # Errors
/// Discovery fails.
pub fn token_path(port: u16) -> anyhow::Result<String> {
    let r = Request::local("GET", port, "/.well-known/openid-configuration")
        .header("Accept", "application/json")
        .send()?;
    if r.status != 200 {
        bail!("discovery answered {}", r.status);
    }
    let v: serde_json::Value = serde_json::from_str(&r.body)?;
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
    let r = Request::local("POST", port, path)
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (status, body) = (r.status, r.body);
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
}
