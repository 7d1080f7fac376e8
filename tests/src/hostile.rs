//! Hostile peers for the attack tests: the hostile resource and authorization server
//! (`tests/hostile/server.py`), a connection flooder (`tests/hostile/flood.py`), another local
//! user (uid 65534 through `setpriv`), and what `/proc` says about a process (memory, CPU time).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::http::Request;
use crate::repo_root;

/// The uid (and gid) the tests act as when they play another local user.
pub const OTHER_UID: u32 = 65534;

/// The Python that runs the helper scripts: Debian's `/usr/bin/python3` where it exists (another
/// user can run it; a `python3` from a per-user install under `/root` may not be reachable), else
/// the one on `PATH`.
#[must_use]
pub fn python() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    if system.is_file() {
        system.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// `<repo>/tests/hostile/NAME`.
#[must_use]
pub fn script(name: &str) -> PathBuf {
    repo_root().join("tests").join("hostile").join(name)
}

/// `program` run as uid/gid [`OTHER_UID`] with no supplementary groups, from `/`, with an empty
/// environment but `PATH`.
#[must_use]
pub fn as_other_user(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={OTHER_UID}"),
        &format!("--regid={OTHER_UID}"),
        "--clear-groups",
    ])
    .arg(program)
    .current_dir("/")
    .env_clear()
    .env("PATH", "/usr/local/bin:/usr/bin:/bin")
    .stdin(Stdio::null());
    c
}

/// A running hostile server; killed when dropped.
pub struct Hostile {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub port: u16,
    child: Child,
}

impl Hostile {
    /// Starts `tests/hostile/server.py` and waits (at most 10 s) for its ready line.
    ///
    /// # Panics
    /// The server does not start.
    #[must_use]
    pub fn start() -> Self {
        let mut child = Command::new(python())
            .arg(script("server.py"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the hostile server");
        let line = read_line_within(
            child.stdout.take().expect("stdout"),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|| panic!("the hostile server printed no ready line"));
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line");
        Self {
            base: ready["base"].as_str().expect("base").to_owned(),
            port: u16::try_from(ready["port"].as_u64().expect("port")).expect("port"),
            child,
        }
    }

    /// `base + path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Merges `config` into the server's configuration (see `tests/hostile/server.py`).
    pub fn configure(&self, config: &serde_json::Value) {
        let r = Request::local("POST", self.port, "/__hostile/config")
            .header("Content-Type", "application/json")
            .body(config.to_string())
            .send()
            .expect("configure the hostile server");
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Every request the server received so far (control requests aside).
    #[must_use]
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let r = Request::local("GET", self.port, "/__hostile/requests")
            .send()
            .expect("the hostile server's requests");
        r.json().as_array().cloned().unwrap_or_default()
    }

    /// The requests to `path` (any method).
    #[must_use]
    pub fn requests_to(&self, path: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"] == path)
            .collect()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one line from `out` on a thread, giving up after `within`; the thread then keeps
/// draining so the writer never blocks.
fn read_line_within(out: ChildStdout, within: Duration) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    rx.recv_timeout(within)
        .ok()
        .filter(|l| !l.trim().is_empty())
}

/// Idle connections held open by `tests/hostile/flood.py`; the process is killed when dropped.
pub struct Flood {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The flooder's first report: `{"connected", "failed", "first_error", "seconds"}`.
    pub opened: serde_json::Value,
}

impl Flood {
    /// Opens `count` connections to `host:port`, as this user or (with `other_user`) as uid
    /// [`OTHER_UID`], and returns once they are all open (or failed).
    ///
    /// # Panics
    /// The flooder does not start or report within 60 s.
    #[must_use]
    pub fn open(host: &str, port: u16, count: usize, other_user: bool) -> Self {
        let mut cmd = if other_user {
            as_other_user(&python())
        } else {
            let mut c = Command::new(python());
            c.current_dir("/");
            c
        };
        let mut child = cmd
            .arg(script("flood.py"))
            .args([host, &port.to_string(), &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the flooder");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the flooder's report");
        let opened =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("flooder report {line:?}: {e}"));
        Self {
            child,
            stdin,
            stdout,
            opened,
        }
    }

    /// Connections that were opened.
    #[must_use]
    pub fn connected(&self) -> u64 {
        self.opened["connected"].as_u64().unwrap_or(0)
    }

    /// Looks at every connection, keeping them open: `{"open", "closed_by_peer",
    /// "answered_bytes"}`.
    #[must_use]
    pub fn report(&mut self) -> serde_json::Value {
        self.command("report")
    }

    /// Looks at every connection a last time and closes them all (same report).
    #[must_use]
    pub fn finish(mut self) -> serde_json::Value {
        let report = self.command("close");
        self.stdin = None;
        let _ = self.child.wait();
        report
    }

    fn command(&mut self, command: &str) -> serde_json::Value {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{command}");
            let _ = stdin.flush();
        }
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the flooder's report");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("flooder report {line:?}: {e}"))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/PID/status` in kB (`VmRSS`, `VmHWM`, …).
#[must_use]
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// User plus system CPU time of a process so far, in seconds (`/proc/PID/stat`).
#[must_use]
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: the fields after it start past the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 after the name and state.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some((utime + stime) as f64 / clock_ticks())
}

/// `sysconf(_SC_CLK_TCK)`, through `getconf` (100 on Linux in practice).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Sends `request` on a new connection to `host:port` (with `other_user`, as uid
/// [`OTHER_UID`]) and reports how the server answered: `{"outcome": "eof"|"reset"|"timeout"|
/// "refused", "bytes", "answer", "send_error"}` (`tests/hostile/probe.py`).
///
/// # Panics
/// The probe does not run or report.
#[must_use]
pub fn probe(host: &str, port: u16, request: &str, other_user: bool) -> serde_json::Value {
    let mut cmd = if other_user {
        as_other_user(&python())
    } else {
        let mut c = Command::new(python());
        c.current_dir("/");
        c
    };
    let out = cmd
        .arg(script("probe.py"))
        .args([host, &port.to_string(), request])
        .output()
        .expect("run the probe");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "probe report {text:?}: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A fake agent (`tests/hostile/fake_agent.py`) listening on a Unix socket as uid
/// [`OTHER_UID`], counting the bytes clients send; killed when dropped.
pub struct FakeAgent {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl FakeAgent {
    /// Binds `socket` (its directory must belong to [`OTHER_UID`] and be reachable) and waits for
    /// it to listen.
    ///
    /// # Panics
    /// The fake agent does not start.
    #[must_use]
    pub fn start(socket: &Path) -> Self {
        let mut child = as_other_user(&python())
            .arg(script("fake_agent.py"))
            .arg(socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the fake agent");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the fake agent's ready line");
        assert_eq!(line.trim(), "ready", "the fake agent did not start");
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Stops it: `{"accepted": connections, "bytes": bytes received}`.
    #[must_use]
    pub fn finish(mut self) -> serde_json::Value {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the fake agent's report");
        let _ = self.child.wait();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("fake agent report {line:?}: {e}"))
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
