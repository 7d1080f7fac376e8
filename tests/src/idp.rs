//! Test fixture for the local OpenID provider (`tests/idp/server.mjs`) and the
//! scripted browser (`tests/browser/headless-browser`).
//!
//! The provider's control endpoints (`/__test/...`) are spoken to with the raw
//! HTTP/1.1 client of [`crate::http`] (`Connection: close`).
//!
//! Requires Node.js >= 20.18 (see [`node_program`]) and `npm ci` run once in
//! `tests/idp/`; `make test` sees to both.

// Not every test binary uses every helper.
#![allow(dead_code, clippy::all)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::{Request, Response};

/// How long [`Idp::start`] waits for the provider's ready line.
// A start takes ~0.6 s (a few seconds on a loaded 2-core machine). A stalled node process (main
// thread parked on a futex before its ready line, seen in about 1 of 30 starts in CI) never
// recovers, so it is replaced rather than waited for.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Starts tried before giving up (see [`Idp::start`]).
const START_ATTEMPTS: usize = 4;
/// Connect/read/write timeout of one control request.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// A running test OpenID provider; killed when dropped.
pub struct Idp {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub issuer: String,
    pub port: u16,
    child: Child,
    log_path: PathBuf,
}

/// Options for [`Idp::start`]; `Default` gives the provider's defaults
/// (OS-assigned port, access tokens valid 3600 s, device codes 600 s, RFC 9207 on).
#[derive(Debug, Clone, Default)]
pub struct IdpOptions {
    /// `IDP_ACCESS_TOKEN_TTL` in seconds.
    pub access_token_ttl: Option<u64>,
    /// `IDP_PORT`; `None` lets the OS pick a free port.
    pub port: Option<u16>,
    /// `IDP_DEVICE_CODE_TTL` in seconds: the device code's lifetime (and the
    /// `expires_in` of the device authorization response).
    pub device_code_ttl: Option<u64>,
    /// `IDP_ISS_PARAMETER`: `Some(false)` turns RFC 9207 off (no
    /// `authorization_response_iss_parameter_supported` in discovery, no `iss`
    /// in authorization responses). `None`/`Some(true)`: on.
    pub iss_parameter: Option<bool>,
    /// `IDP_EXTRA_SCOPES`: the provider also knows (and grants) scopes `x-1` … `x-N`.
    pub extra_scopes: Option<u32>,
}

/// ID-token forgeries for [`Idp::push_faults`]: `json!([{"id_token": KIND,
/// "grant_type": "authorization_code"}])` lets the provider answer the next
/// matching token request normally, then replaces its `id_token` by one where
/// only KIND is wrong. All but `bad_signature` are signed with the provider's
/// real key (kid `authctl-test-rs256`); `bad_signature` keeps the header and
/// claims but signs with another RSA key.
pub mod id_token_fault {
    /// Signed by a stranger's RSA key under the provider's `kid`.
    pub const BAD_SIGNATURE: &str = "bad_signature";
    /// `aud` is `some-other-client`.
    pub const WRONG_AUD: &str = "wrong_aud";
    /// `nonce` is a random value that the client never sent.
    pub const WRONG_NONCE: &str = "wrong_nonce";
    /// `iat` two hours and `exp` one hour in the past.
    pub const EXPIRED: &str = "expired";
    /// `iss` is `https://evil.example`.
    pub const WRONG_ISS: &str = "wrong_iss";
    /// `alg: none` and no signature.
    pub const ALG_NONE: &str = "alg_none";
    /// HS256 keyed with the provider's public key (PEM): the algorithm-confusion attack.
    pub const HS256_PUBLIC_KEY: &str = "hs256_public_key";
    /// Signed by a second RSA key under a new `kid` (`authctl-test-rs256-2`), which the JWKS
    /// publishes only after [`super::Idp::rotate_keys`].
    pub const ROTATED_KEY: &str = "rotated_key";
    /// All of them.
    pub const ALL: [&str; 5] = [BAD_SIGNATURE, WRONG_AUD, WRONG_NONCE, EXPIRED, WRONG_ISS];
}

/// The repository root: the parent of this test crate's manifest directory.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("..");
    root.canonicalize().unwrap_or(root)
}

/// `<repo>/tests/browser/headless-browser`, to be used as `$BROWSER`.
pub fn browser_path() -> PathBuf {
    repo_root()
        .join("tests")
        .join("browser")
        .join("headless-browser")
}

/// The Node.js that runs the provider: `$AUTHCTL_TEST_NODE` when set; else the one
/// `tests/deps/ensure` fetched into `tests/idp/.node` because the system's was too old for
/// oidc-provider (Debian 12's is 18; delete that directory to use the system's again); else the
/// `node` on `PATH`.
pub fn node_program() -> std::ffi::OsString {
    if let Some(node) = std::env::var_os("AUTHCTL_TEST_NODE").filter(|n| !n.is_empty()) {
        return node;
    }
    let fetched = repo_root().join("tests/idp/.node/node_modules/.bin/node");
    if fetched.is_file() {
        return fetched.into_os_string();
    }
    "node".into()
}

fn temp_log_path() -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "authctl-idp-{}-{}-{}.log",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        nanos
    ))
}

impl Idp {
    /// Spawns `node <repo>/tests/idp/server.mjs` and waits (at most 15 s, up to 4 attempts) for
    /// its ready line. Panics with the provider's stderr if it does not come up.
    pub fn start(opts: IdpOptions) -> Idp {
        // A node process has been seen, rarely, to stall before its ready line while others
        // started fine: record what it was doing (for a look later) and start another.
        let mut stalls = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&opts) {
                Ok(idp) => return idp,
                Err(diagnosis) => {
                    let _ = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(std::env::temp_dir().join("authctl-idp-stalls.log"))
                        .and_then(|mut f| writeln!(f, "{diagnosis}"));
                    stalls.push(diagnosis);
                }
            }
        }
        panic!(
            "test IdP did not start in {START_ATTEMPTS} attempts:\n{}",
            stalls.join("\n")
        );
    }

    fn start_once(opts: &IdpOptions) -> Result<Idp, String> {
        let root = repo_root();
        let script = root.join("tests").join("idp").join("server.mjs");
        let modules = root
            .join("tests")
            .join("idp")
            .join("node_modules")
            .join("oidc-provider");
        if !modules.is_dir() {
            panic!(
                "test IdP dependencies missing: run `npm ci` in {}",
                root.join("tests").join("idp").display()
            );
        }
        let node = node_program();

        let log_path = temp_log_path();
        let log_file = File::create(&log_path)
            .unwrap_or_else(|e| panic!("cannot create IdP log {}: {e}", log_path.display()));

        let mut cmd = Command::new(&node);
        cmd.arg(&script)
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .env("IDP_PORT", opts.port.unwrap_or(0).to_string());
        if let Some(ttl) = opts.access_token_ttl {
            cmd.env("IDP_ACCESS_TOKEN_TTL", ttl.to_string());
        }
        if let Some(ttl) = opts.device_code_ttl {
            cmd.env("IDP_DEVICE_CODE_TTL", ttl.to_string());
        }
        if let Some(on) = opts.iss_parameter {
            cmd.env("IDP_ISS_PARAMETER", if on { "1" } else { "0" });
        }
        if let Some(n) = opts.extra_scopes {
            cmd.env("IDP_EXTRA_SCOPES", n.to_string());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {:?} {}: {e}", node, script.display()));

        // Read the ready line on a thread so that the wait can time out; keep
        // draining stdout afterwards so the provider never blocks on it.
        let stdout = child.stdout.take().expect("child stdout is piped");
        let (tx, rx) = mpsc::channel::<Option<String>>();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 => {
                    let _ = tx.send(Some(line));
                }
                _ => {
                    let _ = tx.send(None);
                    return;
                }
            }
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });

        let fail = |child: &mut Child, why: String| -> ! {
            let _ = child.kill();
            let status = child.wait().ok();
            let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!(
                "test IdP did not start: {why} (exit status {status:?}); stderr ({}):\n{stderr}",
                log_path.display()
            );
        };

        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) => fail(&mut child, "stdout closed before the ready line".into()),
            Err(_) => {
                let diagnosis = format!(
                    "no ready line within {READY_TIMEOUT:?}: {}; stderr: {}",
                    process_state(child.id()),
                    std::fs::read_to_string(&log_path)
                        .unwrap_or_default()
                        .trim()
                );
                let _ = child.kill();
                let _ = child.wait();
                return Err(diagnosis);
            }
        };
        let ready: serde_json::Value = match serde_json::from_str(line.trim()) {
            Ok(v) => v,
            Err(e) => fail(&mut child, format!("bad ready line {line:?}: {e}")),
        };
        let issuer = ready["issuer"].as_str().map(str::to_owned);
        let port = ready["port"].as_u64().and_then(|p| u16::try_from(p).ok());
        let (issuer, port) = match (issuer, port) {
            (Some(i), Some(p)) => (i, p),
            _ => fail(
                &mut child,
                format!("ready line lacks issuer/port: {line:?}"),
            ),
        };

        Ok(Idp {
            issuer,
            port,
            child,
            log_path,
        })
    }

    /// `issuer + path`, e.g. `idp.url("/.well-known/openid-configuration")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// Path of the file that receives the provider's stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The provider's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET /__test/counters`:
    /// `{"token":{"authorization_code":n,"refresh_token":n,"urn:ietf:params:oauth:grant-type:device_code":n},
    ///   "revocation":n,"introspection":n,"registration":n,
    ///   "mcp":{"ok":n,"unauthorized":n,"metadata":n}}`.
    /// `registration` counts `POST /reg` (dynamic client registration);
    /// `mcp` counts answers of `/mcp` and `/mcp-plain` (200 / 401) and of their
    /// protected-resource metadata documents.
    pub fn counters(&self) -> serde_json::Value {
        self.control("GET", "/__test/counters", None)
    }

    /// Token-endpoint requests seen for `grant_type` (faulted ones included).
    pub fn token_calls(&self, grant_type: &str) -> u64 {
        self.counters()["token"][grant_type].as_u64().unwrap_or(0)
    }

    /// Queues faults for the next token-endpoint requests. Accepts either the
    /// array (`json!([{"status":500}])`) or the whole body
    /// (`json!({"faults":[...]})`).
    pub fn push_faults(&self, faults: serde_json::Value) {
        let body = if faults.is_array() {
            serde_json::json!({ "faults": faults })
        } else {
            faults
        };
        self.control("POST", "/__test/faults", Some(&body));
    }

    /// `issuer + "/mcp"`: the MCP-style protected resource whose 401 names its
    /// metadata (`WWW-Authenticate: Bearer resource_metadata="…", scope="mcp:read"`).
    pub fn mcp_resource(&self) -> String {
        self.url("/mcp")
    }

    /// `issuer + "/mcp-plain"`: the same, with a bare `WWW-Authenticate: Bearer`.
    pub fn mcp_plain_resource(&self) -> String {
        self.url("/mcp-plain")
    }

    /// The RFC 9728 metadata URL of a resource path (`"/mcp"` →
    /// `issuer/.well-known/oauth-protected-resource/mcp`).
    pub fn resource_metadata_url(&self, path: &str) -> String {
        self.url(&format!("/.well-known/oauth-protected-resource{path}"))
    }

    /// Registered clients so far (`POST /reg`, dynamic client registration).
    pub fn registrations(&self) -> u64 {
        self.counters()["registration"].as_u64().unwrap_or(0)
    }

    /// Any request to the provider's server, e.g.
    /// `idp.request("GET", "/mcp", &[("Authorization", &format!("Bearer {t}"))], None)`.
    /// Panics on a connection failure.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        let mut req = Request::local(method, self.port, path).timeout(CONTROL_TIMEOUT);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        req.send().unwrap_or_else(|e| {
            panic!(
                "IdP request {method} {path} failed: {e}\nIdP log:\n{}",
                self.log()
            )
        })
    }

    /// `POST /__test/rotate-keys`: the JWKS publishes a second signing key (kid
    /// `authctl-test-rs256-2`, the key of the `rotated_key` ID-token fault) beside the first.
    pub fn rotate_keys(&self) {
        self.control("POST", "/__test/rotate-keys", Some(&serde_json::json!({})));
    }

    /// Clears queued faults and counters.
    pub fn reset(&self) {
        self.control("POST", "/__test/reset", Some(&serde_json::json!({})));
    }

    /// Looks a token up in the provider's store:
    /// `{"active":bool,"kind":"refresh_token"|"access_token","consumed":bool,...}`.
    pub fn introspect(&self, token: &str) -> serde_json::Value {
        self.control(
            "POST",
            "/__test/introspect",
            Some(&serde_json::json!({ "token": token })),
        )
    }

    fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        let mut req = Request::local(method, self.port, path)
            .timeout(CONTROL_TIMEOUT)
            .header("Accept", "application/json");
        // A POST always carries a (JSON) body, if only an empty one.
        let payload = body
            .map(ToString::to_string)
            .or_else(|| (method == "POST").then(String::new));
        if let Some(p) = payload {
            req = req.header("Content-Type", "application/json").body(p);
        }
        let r = req.send().unwrap_or_else(|e| {
            panic!(
                "IdP control {method} {path} failed: {e}\nIdP log:\n{}",
                self.log()
            )
        });
        let (status, text) = (r.status, r.body);
        if status != 200 {
            panic!("IdP control {method} {path} answered {status}: {text}");
        }
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("IdP control {method} {path}: bad JSON {text:?}: {e}"))
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("test IdP log kept at {}", self.log_path.display());
        } else {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// What a process and its threads are doing, from /proc (for a stalled start).
fn process_state(pid: u32) -> String {
    let read = |p: String| std::fs::read_to_string(p).unwrap_or_default();
    let state = read(format!("/proc/{pid}/status"))
        .lines()
        .find(|l| l.starts_with("State:"))
        .unwrap_or("State: ?")
        .to_owned();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|t| {
                    let tid = t.file_name().to_string_lossy().into_owned();
                    format!(
                        "{tid}:{}@{}",
                        read(format!("/proc/{pid}/task/{tid}/comm")).trim(),
                        read(format!("/proc/{pid}/task/{tid}/wchan")).trim()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!("pid {pid} {state}; threads {}", threads.join(" "))
}
