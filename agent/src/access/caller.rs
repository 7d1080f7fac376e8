//! Who is calling: the program on the other end of a connection, as the kernel knows it (never a
//! name it declares). Linux: the peer's pid from `SO_PEERCRED`, pinned with a pidfd at accept
//! time; `/proc/PID/exe`, `/proc/PID/cgroup`, `/proc/PID/cmdline` and the start time read; then
//! the pidfd checked to still name that live process, so a recycled PID is never attested as the
//! caller.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A program, as the kernel names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Program {
    pub pid: u32,
    /// `/proc/PID/exe` (empty: unknown).
    pub exe: String,
    /// SHA-256 of the executable, hex (with `hash_executables`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_sha256: Option<String>,
    /// The systemd unit it runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For an interpreter: the script it runs (its first argument that names a file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// When it started, in clock ticks since boot (`/proc/PID/stat`): with the pid, names the
    /// process uniquely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
}

/// The caller of a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    /// The process on the socket.
    pub process: Program,
    /// When that process is the `authctl` CLI: the program that ran it (the request is that
    /// program's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Program>,
    /// The ancestors of the process, nearest first (pid and executable), for the audit log and
    /// prompts.
    pub parents: Parents,
    /// The process ended (or its PID was recycled) before it could be attested.
    pub gone: bool,
}

impl Caller {
    /// The program the request is attributed to: the CLI's caller, else the process itself.
    #[must_use]
    pub fn program(&self) -> &Program {
        self.on_behalf_of.as_ref().unwrap_or(&self.process)
    }

    /// One line for a prompt and the log: `/usr/bin/git (pid 42, unit x.service)`.
    #[must_use]
    pub fn describe(&self) -> String {
        let p = self.program();
        let mut s = format!(
            "{} (pid {}",
            if p.exe.is_empty() { "?" } else { &p.exe },
            p.pid
        );
        if let Some(script) = &p.script {
            let _ = write!(s, ", script {script}");
        }
        if let Some(unit) = &p.unit {
            let _ = write!(s, ", unit {unit}");
        }
        s.push(')');
        if self.on_behalf_of.is_some() {
            let _ = write!(s, " through authctl (pid {})", self.process.pid);
        }
        s
    }
}

/// The ancestors of a caller, nearest first, at most [`MAX_PARENTS`]: those attestation had to
/// read (the program that ran the CLI), then the rest read when first needed — by the audit
/// writer or a prompt, off the request path — since no decision depends on them.
#[derive(Debug, Clone, Default)]
pub struct Parents {
    /// Read at attestation.
    known: Vec<(u32, String)>,
    /// Where the chain goes on from the last known one.
    next: Option<u32>,
    all: std::sync::OnceLock<Vec<(u32, String)>>,
}

/// How many ancestors a caller's chain names.
const MAX_PARENTS: usize = 4;

impl Parents {
    /// The chain (read now, if it was not yet).
    pub fn get(&self) -> &[(u32, String)] {
        self.all.get_or_init(|| {
            let mut all = self.known.clone();
            let mut next = self.next;
            while let Some(pid) = next.filter(|p| *p > 1 && all.len() < MAX_PARENTS) {
                let Some(dir) = ProcDir::open(pid) else { break };
                all.push((pid, dir.exe()));
                next = dir.stat().map(|s| s.ppid);
            }
            all
        })
    }
}

impl Serialize for Parents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl Caller {
    /// The parent chain, nearest first: `/usr/bin/bash (pid 10) ← /usr/sbin/sshd (pid 5)`.
    #[must_use]
    pub fn chain(&self) -> String {
        let parents: Vec<String> = self
            .parents
            .get()
            .iter()
            .map(|(pid, exe)| format!("{} (pid {pid})", if exe.is_empty() { "?" } else { exe }))
            .collect();
        parents.join(" ← ")
    }
}

/// The programs whose requests are their caller's: the CLI and the MCP bridge.
const CLI_PROGRAMS: [&str; 2] = ["authctl", "authctl-mcp"];

/// What attestation needs that does not change per connection.
pub struct Attestor {
    /// The `authctl` CLI executables the agent recognises (canonical paths).
    cli: Vec<PathBuf>,
    /// Digests by (device, inode, modification time) of the executable.
    digests: Mutex<HashMap<(u64, u64, i64), String>>,
}

impl Attestor {
    /// `cli`: the CLI executables to recognise.
    #[must_use]
    pub fn new(cli: Vec<PathBuf>) -> Self {
        Self {
            cli: cli
                .into_iter()
                .filter_map(|p| std::fs::canonicalize(p).ok())
                .collect(),
            digests: Mutex::new(HashMap::new()),
        }
    }

    /// The CLI the agent's own installation ships: `authctl` and the MCP bridge `authctl-mcp`
    /// (which `authctl mcp` becomes), beside the agent and on `PATH`.
    #[must_use]
    pub fn default_cli() -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|me| me.parent().map(PathBuf::from))
        {
            dirs.push(dir);
        }
        if let Some(path) = std::env::var_os("PATH") {
            dirs.extend(std::env::split_paths(&path));
        }
        let mut out: Vec<PathBuf> = dirs
            .iter()
            .flat_map(|d| CLI_PROGRAMS.iter().map(move |p| d.join(p)))
            .collect();
        out.retain(|p| p.is_file());
        out
    }

    /// Attests the process `pid` (of `uid`, `gid`), pinned by `pidfd` when there is one; `hash`:
    /// compute the executables' SHA-256.
    ///
    /// A process that ended before it was read (or whose PID now names another process) is
    /// `gone`, with no identity: no rule that names a program can match it.
    #[must_use]
    pub fn attest(
        &self,
        pid: Option<i32>,
        (uid, gid): (u32, u32),
        pidfd: Option<&OwnedFd>,
        hash: bool,
    ) -> Caller {
        let Some(pid) = pid.and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0) else {
            return Caller {
                uid,
                gid,
                gone: true,
                ..Caller::default()
            };
        };
        let (process, mut next) = self.program(pid, hash);
        let before = process.start_time;
        let mut known = Vec::new();
        let mut on_behalf_of = None;
        // The CLI's requests are its caller's: that one is read now, the rest of the chain later.
        if let Some(parent) = next.filter(|p| *p > 1)
            && self.is_cli(&process.exe)
        {
            let (program, grandparent) = self.program(parent, hash);
            known.push((parent, program.exe.clone()));
            on_behalf_of = Some(program);
            next = grandparent;
        }
        let parents = Parents {
            known,
            next,
            all: std::sync::OnceLock::new(),
        };
        // The PID still names the process that connected: the pidfd says it has not exited (and
        // so its PID was not recycled); without one, its start time is still the one read first.
        let gone = before.is_none()
            || match pidfd {
                Some(fd) => exited(fd),
                None => before != stat_of(pid).map(|s| s.start_time),
            };
        if gone {
            return Caller {
                uid,
                gid,
                process: Program {
                    pid,
                    ..Program::default()
                },
                gone: true,
                ..Caller::default()
            };
        }
        Caller {
            uid,
            gid,
            process,
            on_behalf_of,
            parents,
            gone,
        }
    }

    fn is_cli(&self, exe: &str) -> bool {
        !exe.is_empty() && self.cli.iter().any(|c| c.as_os_str() == exe)
    }

    /// The program `pid` runs, and its parent's pid.
    fn program(&self, pid: u32, hash: bool) -> (Program, Option<u32>) {
        let Some(dir) = ProcDir::open(pid) else {
            return (
                Program {
                    pid,
                    ..Program::default()
                },
                None,
            );
        };
        let exe = dir.exe();
        let stat = dir.stat();
        let program = Program {
            pid,
            exe_sha256: if hash { self.digest(&dir) } else { None },
            unit: dir.unit(),
            script: dir.script(&exe),
            start_time: stat.map(|s| s.start_time),
            exe,
        };
        (program, stat.map(|s| s.ppid))
    }

    /// The executable's SHA-256, read through `/proc/PID/exe` (the very file that runs, even if
    /// its path was replaced since), cached by inode and modification time.
    fn digest(&self, dir: &ProcDir) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        // Through the process's directory, as its other files: a PID recycled since cannot hand
        // over another program's executable.
        let mut file = dir.file("exe")?;
        let meta = file.metadata().ok()?;
        let key = (meta.dev(), meta.ino(), meta.mtime());
        if let Some(d) = self
            .digests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Some(d.clone());
        }
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).ok()?;
        let hex = hasher
            .finalize()
            .iter()
            .fold(String::with_capacity(64), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            });
        self.digests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, hex.clone());
        Some(hex)
    }
}

/// A process's `/proc/PID` directory, opened once: its files are then looked up relative to it
/// (no path walk through `/proc` per file), read with one `read` each into a small buffer.
struct ProcDir(OwnedFd);

impl ProcDir {
    fn open(pid: u32) -> Option<Self> {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        rustix::fs::open(format!("/proc/{pid}"), flags, Mode::empty())
            .ok()
            .map(Self)
    }

    /// The target of the link `name` (`exe`, `cwd`).
    fn link(&self, name: &str) -> Option<PathBuf> {
        let target = rustix::fs::readlinkat(&self.0, name, Vec::new()).ok()?;
        Some(PathBuf::from(std::ffi::OsString::from_vec(
            target.into_bytes(),
        )))
    }

    /// The executable (empty: unknown).
    fn exe(&self) -> String {
        self.link("exe")
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// The file `name`, opened for reading.
    fn file(&self, name: &str) -> Option<std::fs::File> {
        use rustix::fs::{Mode, OFlags};
        rustix::fs::openat(
            &self.0,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(std::fs::File::from)
    }

    /// The file `name`, whole (procfs files of one record come in one `read`).
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let fd = self.file(name)?;
        let mut buf = vec![0; 4096];
        let mut len = 0;
        loop {
            let n = rustix::io::read(&fd, &mut buf[len..]).ok()?;
            len += n;
            // A short read of a procfs file is its end.
            if n == 0 || len < buf.len() {
                break;
            }
            buf.resize(buf.len() * 2, 0);
        }
        buf.truncate(len);
        Some(buf)
    }

    fn stat(&self) -> Option<Stat> {
        Stat::parse(&String::from_utf8_lossy(&self.read("stat")?))
    }

    fn unit(&self) -> Option<String> {
        unit_from_cgroup(&String::from_utf8_lossy(&self.read("cgroup")?))
    }

    /// For an interpreter (`exe`): the script it runs.
    fn script(&self, exe: &str) -> Option<String> {
        family(exe)?;
        let raw = self.read("cmdline")?;
        let text = String::from_utf8_lossy(&raw);
        let args: Vec<&str> = text.split('\0').filter(|a| !a.is_empty()).collect();
        script_from_args(exe, &args, &self.link("cwd")?)
    }
}

/// What the agent reads of `/proc/PID/stat`.
#[derive(Clone, Copy)]
struct Stat {
    /// Field 4.
    ppid: u32,
    /// Field 22: clock ticks since boot.
    start_time: u64,
}

impl Stat {
    /// The fields are counted after the command name (which may hold spaces and parentheses).
    fn parse(text: &str) -> Option<Self> {
        let mut fields = text[text.rfind(')')? + 1..].split_ascii_whitespace();
        Some(Self {
            ppid: fields.nth(1)?.parse().ok()?,
            start_time: fields.nth(17)?.parse().ok()?,
        })
    }
}

/// `/proc/PID/stat`, read once.
fn stat_of(pid: u32) -> Option<Stat> {
    ProcDir::open(pid)?.stat()
}

/// The systemd unit from the cgroup path (`…/app-foo.service`), if any.
#[must_use]
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    path.rsplit('/')
        .find(|c| {
            std::path::Path::new(c)
                .extension()
                .is_some_and(|e| e == "service" || e == "scope")
        })
        .map(str::to_owned)
}

/// The interpreters whose script is attributed, each with its options that take a value (the
/// next argument, or the rest of the same one) and those that run code given inline (then there
/// is no script).
const INTERPRETERS: &[(&[&str], &str, &str)] = &[
    (&["sh", "bash", "dash", "zsh", "ksh", "mksh"], "oO", "c"),
    (&["python", "pypy"], "WXQ", "cm"),
    (&["perl"], "IMmlx0dD", "eE"),
    (&["ruby"], "IrCEx0FTW", "e"),
    (&["node", "nodejs", "bun", "deno"], "r", "ep"),
    (&["php"], "cdz", "rRBEF"),
    (&["lua", "luajit"], "l", "e"),
];

/// The family of an interpreter's executable name (`python3.11` is `python`).
fn family(exe: &str) -> Option<(&'static str, &'static str)> {
    let name = Path::new(exe).file_name()?.to_str()?;
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS
        .iter()
        .find(|(names, _, _)| names.contains(&base))
        .map(|(_, value, inline)| (*value, *inline))
}

/// The script an interpreter (`exe`, one of [`INTERPRETERS`]) runs, from its arguments: the
/// first argument after its options, resolved against `cwd`, when it names a file. `None` when
/// the program is no known interpreter, when code is given inline (`-c`, `-e`), or when an option
/// is not understood (a long option): attribution fails closed, never to a path an argument
/// merely mentions.
#[must_use]
pub fn script_from_args(exe: &str, args: &[&str], cwd: &Path) -> Option<String> {
    let (takes_value, inline) = family(exe)?;
    let mut rest = args.iter().skip(1);
    let script = loop {
        let arg = *rest.next()?;
        if arg == "--" {
            break *rest.next()?;
        }
        if arg.starts_with("--") {
            return None;
        }
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break arg;
        };
        for (i, c) in letters.char_indices() {
            if inline.contains(c) {
                return None;
            }
            if takes_value.contains(c) {
                // The value is the rest of this argument, or the next one.
                if i + c.len_utf8() == letters.len() {
                    rest.next()?;
                }
                break;
            }
        }
    };
    let path = cwd.join(script);
    path.is_file()
        .then(|| std::fs::canonicalize(path).ok())
        .flatten()
        .map(|p| p.display().to_string())
}

/// Whether the pidfd's process has exited (its pidfd polls readable then).
fn exited(fd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&zero)), Ok(n) if n > 0)
}

/// Pins `pid` with a pidfd (Linux), at accept time.
#[must_use]
pub fn pin(pid: Option<i32>) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid?)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_cgroup_path() {
        assert_eq!(
            unit_from_cgroup(
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.service\n"
            )
            .as_deref(),
            Some("app-foo.service")
        );
        assert_eq!(
            unit_from_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(unit_from_cgroup("0::/\n"), None);
        assert_eq!(unit_from_cgroup("garbage"), None);
    }

    #[test]
    fn scripts_are_attributed_only_where_the_interpreter_surely_runs_them() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["s.sh", "allowed.py", "evil.py"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let real = |f: &str| {
            Some(
                std::fs::canonicalize(dir.path().join(f))
                    .unwrap()
                    .display()
                    .to_string(),
            )
        };
        let d = dir.path();
        assert_eq!(
            script_from_args("/usr/bin/bash", &["bash", "-e", "s.sh", "x"], d),
            real("s.sh")
        );
        assert_eq!(
            script_from_args("/usr/bin/bash", &["/bin/bash", "./s.sh"], d),
            real("s.sh")
        );
        assert_eq!(
            script_from_args(
                "/usr/bin/python3.11",
                &["python3", "-u", "--", "evil.py"],
                d
            ),
            real("evil.py")
        );
        // An option's value is not the script: python runs evil.py here.
        assert_eq!(
            script_from_args(
                "/usr/bin/python3",
                &["python3", "-W", "allowed.py", "evil.py"],
                d
            ),
            real("evil.py")
        );
        assert_eq!(
            script_from_args(
                "/usr/bin/python3",
                &["python3", "-Wallowed.py", "evil.py"],
                d
            ),
            real("evil.py")
        );
        // Inline code, long options and programs that are no interpreter: no script.
        for (exe, args) in [
            (
                "/usr/bin/bash",
                &["bash", "-c", "authctl token x", "s.sh"][..],
            ),
            (
                "/usr/bin/bash",
                &["bash", "-ec", "authctl token x", "s.sh"][..],
            ),
            (
                "/usr/bin/python3",
                &["python3", "-c", "pass", "allowed.py"][..],
            ),
            (
                "/usr/bin/bash",
                &["bash", "--rcfile", "s.sh", "evil.py"][..],
            ),
            ("/usr/bin/perl", &["perl", "-e", "1", "s.sh"][..]),
            ("/tmp/evil", &["/tmp/evil", "s.sh"][..]),
            ("/usr/bin/git", &["git", "s.sh"][..]),
        ] {
            assert_eq!(script_from_args(exe, args, d), None, "{args:?}");
        }
        assert_eq!(
            script_from_args("/usr/bin/bash", &["bash", "missing.sh"], d),
            None
        );
    }

    #[test]
    fn this_process_is_attested_and_its_cli_parent_is_not_confused() {
        let a = Attestor::new(Vec::new());
        let me = i32::try_from(std::process::id()).unwrap();
        let fd = pin(Some(me));
        let c = a.attest(Some(me), (0, 0), fd.as_ref(), true);
        if cfg!(target_os = "linux") {
            assert!(!c.gone);
            assert_eq!(
                c.process.exe,
                std::fs::canonicalize(std::env::current_exe().unwrap())
                    .unwrap()
                    .display()
                    .to_string()
            );
            assert_eq!(c.process.exe_sha256.as_ref().map(String::len), Some(64));
            assert!(c.on_behalf_of.is_none());
            assert!(!c.parents.get().is_empty());
        }
    }

    #[test]
    fn a_process_that_exited_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let fd = pin(Some(pid));
        child.wait().unwrap();
        let c = Attestor::new(Vec::new()).attest(Some(pid), (0, 0), fd.as_ref(), false);
        assert!(c.gone);
        assert!(
            c.process.exe.is_empty() && c.on_behalf_of.is_none(),
            "no identity"
        );
    }
}
