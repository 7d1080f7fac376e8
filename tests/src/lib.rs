//! The end-to-end harness: a hermetic environment per test (temporary HOME, XDG directories and
//! socket; a cleared environment for every spawned binary), the real `authctl` and
//! `authctl-agent` binaries, a real OpenID provider ([`idp`]) and a scripted browser; [`http`] is
//! the raw HTTP/1.1 client of the tests and the benchmarks; [`hostile`] has the hostile peers of
//! the attack tests (a hostile server, a connection flooder, another local user).
//!
//! The binaries must be built first (`cargo build --workspace`); `make test` does it.

pub mod hostile;
pub mod http;
pub mod idp;
pub mod rawh2;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use idp::{Idp, IdpOptions, browser_path, repo_root};

/// `target/debug` (or wherever this test binary's profile directory is).
#[must_use]
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("deps dir");
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A workspace binary, checked to exist.
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// One test's private world.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    /// Extra variables for spawned binaries.
    pub vars: Vec<(String, String)>,
}

impl Drop for TestEnv {
    /// Stops a background agent the test left running (a test that panicked before its
    /// `agent stop`), so no agent outlives its temporary directories.
    fn drop(&mut self) {
        if self.socket().exists() {
            let _ = self
                .command(&bin("authctl"))
                .args(["agent", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The result of running a command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh environment with private runtime, config, data and state directories.
    #[must_use]
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("authctl-e2e-")
            .tempdir()
            .expect("tempdir");
        for d in ["home", "config", "data", "state", "run"] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        Self {
            root,
            vars: Vec::new(),
        }
    }

    #[must_use]
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// The agent's socket.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.path("run/authctl/agent.sock")
    }

    /// `config.toml`.
    #[must_use]
    pub fn config_file(&self) -> PathBuf {
        self.path("config/authctl/config.toml")
    }

    /// The agent's data directory.
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.path("data/authctl")
    }

    /// The background agent's log (`authctl agent start`).
    #[must_use]
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.path("state/authctl/agent.log")).unwrap_or_default()
    }

    /// The path of the background agent's log.
    #[must_use]
    pub fn agent_log_path(&self) -> PathBuf {
        self.path("state/authctl/agent.log")
    }

    /// The scripted browser's log.
    #[must_use]
    pub fn browser_log(&self) -> String {
        std::fs::read_to_string(self.path("browser.log")).unwrap_or_default()
    }

    /// Adds a variable for every spawned binary.
    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.retain(|(key, _)| key != k);
        self.vars.push((k.into(), v.into()));
    }

    /// A command with a cleared, hermetic environment.
    #[must_use]
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("BROWSER", browser_path())
            .env("HEADLESS_BROWSER_LOG", self.path("browser.log"))
            .env("AUTHCTL_LOG", "info,authctl_agent=debug")
            .env("NO_COLOR", "1")
            // Tests start agents explicitly; the autostart test turns this off.
            .env("AUTHCTL_NO_AUTOSTART", "1")
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs `authctl ARGS` to completion.
    #[must_use]
    pub fn authctl(&self, args: &[&str]) -> Run {
        self.command(&bin("authctl"))
            .args(args)
            .output()
            .expect("run authctl")
            .into()
    }

    /// `authctl token ARGS`, which must succeed: the printed token.
    #[must_use]
    pub fn token(&self, args: &[&str]) -> String {
        let mut all = vec!["token"];
        all.extend_from_slice(args);
        self.authctl(&all).ok().stdout.trim().to_owned()
    }

    /// `authctl status --json`, parsed (the command must succeed).
    #[must_use]
    pub fn status_json(&self) -> serde_json::Value {
        let r = self.authctl(&["status", "--json"]);
        r.ok();
        serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {}", r.stdout))
    }

    /// The running agent's pid (`authctl status --json`, `agent.pid`).
    #[must_use]
    pub fn agent_pid(&self) -> u32 {
        let status = self.status_json();
        status["agent"]["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no agent.pid in {status}"))
    }

    /// Runs `authctl ARGS` with `input` on stdin.
    #[must_use]
    pub fn authctl_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(&bin("authctl"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn authctl");
        // A program may end without reading its input (a refused connection before the secret
        // on stdin is wanted): what it did is in its exit code and output, not in this write.
        match child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
        {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
            _ => {}
        }
        child.wait_with_output().expect("wait authctl").into()
    }

    /// Starts `authctl-agent` in the foreground as a child of the test (stderr to `agent.stderr`).
    #[must_use]
    pub fn spawn_agent(&self) -> AgentProcess {
        let log = self.path("agent.stderr");
        let child = self
            .command(&bin("authctl-agent"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"))
            .spawn()
            .expect("spawn agent");
        let p = AgentProcess { child, log };
        self.wait_for_agent(&p);
        p
    }

    fn wait_for_agent(&self, p: &AgentProcess) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.authctl(&["agent", "status"]).code == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent did not answer; its log:\n{}", p.log());
    }

    /// Adds the test provider's native public client as provider `name`.
    pub fn add_provider(&self, name: &str, idp: &Idp) {
        self.authctl(&[
            "provider",
            "add",
            name,
            "--issuer",
            &idp.issuer,
            "--client-id",
            "authctl-native",
            "--scope",
            "openid",
            "--scope",
            "email",
            "--scope",
            "offline_access",
        ])
        .ok();
    }
}

/// An agent running as a child of the test; killed when dropped.
pub struct AgentProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl AgentProcess {
    /// Its stderr so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal and waits for the exit (at most 15 s).
    pub fn signal_and_wait(&mut self, sig: &str) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "agent did not exit after SIG{sig}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a file of the agent's store (for checks that secrets never leak elsewhere).
#[must_use]
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A running `authctl login … --no-browser` whose authorization URL has been read.
pub struct PendingLogin {
    pub child: Child,
    pub url: String,
    pub redirect_uri: String,
    pub state: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl TestEnv {
    /// Starts `authctl login ARGS --no-browser` and waits for the URL it prints.
    #[must_use]
    pub fn start_login(&self, args: &[&str]) -> PendingLogin {
        use std::io::BufRead;
        let mut child = self
            .command(&bin("authctl"))
            .arg("login")
            .args(args)
            .arg("--no-browser")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn login");
        let stderr = child.stderr.take().expect("stderr");
        let collected = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&collected);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.trim_start().starts_with("http") {
                    let _ = tx.send(line.trim().to_owned());
                }
                sink.lock().expect("lock").push_str(&(line + "\n"));
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "no authorization URL printed; stderr:\n{}",
                    collected.lock().expect("lock")
                )
            });
        let q: std::collections::HashMap<String, String> = url
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), percent_decode(v)))
            .collect();
        PendingLogin {
            child,
            redirect_uri: q.get("redirect_uri").cloned().expect("redirect_uri"),
            state: q.get("state").cloned().expect("state"),
            url,
            stderr: collected,
        }
    }

    /// Runs the scripted browser on `url` (as `$BROWSER` would) and returns its exit code.
    #[must_use]
    pub fn browse(&self, url: &str) -> i32 {
        self.command(&browser_path())
            .arg(url)
            .output()
            .expect("browser")
            .status
            .code()
            .unwrap_or(-1)
    }
}

impl PendingLogin {
    /// Waits for the login command to end.
    pub fn finish(mut self) -> Run {
        let status = self.child.wait().expect("wait login");
        let mut stdout = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            use std::io::Read;
            let _ = o.read_to_string(&mut stdout);
        }
        std::thread::sleep(Duration::from_millis(50));
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: self.stderr.lock().expect("lock").clone(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A browser's visit to a loopback callback URL: the request, and the redirect to the clean page
/// the agent answers a valid callback with (its `Location` is relative to the listener). Returns
/// the final answer and the URL it came from.
///
/// # Errors
/// Connection or I/O failure.
pub fn visit_callback(url: &str) -> std::io::Result<(http::Response, String)> {
    let first = http::Request::new("GET", url).send()?;
    if first.status != 303 {
        return Ok((first, url.to_owned()));
    }
    let location = first.header("location").unwrap_or_default().to_owned();
    let origin_end = url["http://".len()..]
        .find('/')
        .map_or(url.len(), |i| i + "http://".len());
    let next = format!("{}{location}", &url[..origin_end]);
    Ok((http::Request::new("GET", &next).send()?, next))
}
