//! The audit log: one JSON line per token handed out or refused, and per administrative call, in
//! `$XDG_STATE_HOME/authctl/access.log` (0600; rotated to `access.log.1` past a size). Written by
//! a thread of its own, so a request never waits for the disk.
//!
//! The same request repeated by the same process with the same result within a second (a client
//! in a loop, or one flooding the agent to rotate evidence away) is one line, then one summary
//! line carrying `repeated`: the count of the copies not written. Every hand-out is counted; the
//! log does not grow with a flood from one process.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Serialize, Serializer};

use super::caller::Caller;

/// The log in the state directory `state_dir`.
#[must_use]
pub fn path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("access.log")
}

/// One line.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// RFC 3339, UTC, seconds.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// `token` or `admin`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// For `admin`: what was asked (`add provider corp`, `logout corp`, …).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action: String,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// What decided: `rule 2`, `default`, `grant 5`, `prompt: allow once`, …
    pub by: String,
    /// What became of the request: `handed out`, `refused`, or the error.
    pub outcome: String,
    /// On a summary line: how many more times the line before it happened.
    #[serde(skip_serializing_if = "is_zero")]
    pub repeated: u64,
    #[serde(serialize_with = "inner")]
    pub caller: Arc<Caller>,
}

#[expect(clippy::trivially_copy_pass_by_ref, reason = "serde's signature")]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn inner<S: Serializer>(c: &Arc<Caller>, s: S) -> Result<S::Ok, S::Error> {
    c.as_ref().serialize(s)
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(
        &chrono::DateTime::<chrono::Utc>::from(*t)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

impl Entry {
    /// Whether `other` is the same request of the same process with the same result.
    fn same(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.account == other.account
            && self.scopes == other.scopes
            && self.resource == other.resource
            && self.action == other.action
            && self.decision == other.decision
            && self.by == other.by
            && self.outcome == other.outcome
            && (Arc::ptr_eq(&self.caller, &other.caller)
                || (self.caller.process.pid == other.caller.process.pid
                    && self.caller.process.start_time == other.caller.process.start_time
                    && !self.caller.gone))
    }
}

/// Where lines go.
#[derive(Clone)]
pub struct Audit {
    tx: QueueTx,
    /// The last line sent and its repeats, shared with the writer.
    state: Arc<Mutex<State>>,
    /// Warnings about dropped lines, at most one a second.
    dropped: Arc<Mutex<crate::ratelog::LogGate>>,
}

/// A line for the writer: the entry, the size past which the log rotates, and its number (0: a
/// summary line).
type Line = (Entry, u64, u64);

/// The line last sent: repeats of it within [`WINDOW`] are counted here, by the requests
/// themselves, and never reach the writer (a flood costs no thread wake-up per request).
#[derive(Default)]
struct State {
    last: Option<Last>,
    sent: u64,
}

struct Last {
    entry: Entry,
    at: Instant,
    copies: u64,
    seq: u64,
}

/// Lines waiting for the writer; more are dropped (with a warning in the agent's log).
const QUEUE: usize = 4096;

/// The writer's queue, bounded by hand to [`QUEUE`] lines: a list that grows and shrinks with the
/// lines in it. (std's bounded channel allocates and touches all its slots up front: about 1 MB
/// resident for the agent's whole life, bench rows 7a–h.)
#[derive(Clone)]
struct QueueTx {
    tx: Sender<Line>,
    len: Arc<AtomicUsize>,
}

struct QueueRx {
    rx: Receiver<Line>,
    len: Arc<AtomicUsize>,
}

fn queue() -> (QueueTx, QueueRx) {
    let (tx, rx) = channel();
    let len = Arc::new(AtomicUsize::new(0));
    (
        QueueTx {
            tx,
            len: Arc::clone(&len),
        },
        QueueRx { rx, len },
    )
}

impl QueueTx {
    /// Queues `line` unless [`QUEUE`] lines are waiting (or the writer is gone): whether it was.
    fn try_send(&self, line: Line) -> bool {
        if self.len.fetch_add(1, Ordering::AcqRel) < QUEUE && self.tx.send(line).is_ok() {
            return true;
        }
        self.len.fetch_sub(1, Ordering::AcqRel);
        false
    }
}

impl QueueRx {
    fn taken<E>(&self, r: Result<Line, E>) -> Result<Line, E> {
        if r.is_ok() {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        r
    }

    fn recv(&self) -> Result<Line, std::sync::mpsc::RecvError> {
        self.taken(self.rx.recv())
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<Line, RecvTimeoutError> {
        self.taken(self.rx.recv_timeout(timeout))
    }

    fn try_recv(&self) -> Result<Line, TryRecvError> {
        self.taken(self.rx.try_recv())
    }
}

/// Identical lines within this window are counted, not written.
const WINDOW: Duration = Duration::from_secs(1);

impl Audit {
    /// Starts the writer thread for `path`.
    #[must_use]
    pub fn start(path: PathBuf) -> Self {
        Self::spawn(path).0
    }

    /// Starts the writer thread for `path`; its handle, when it started.
    fn spawn(path: PathBuf) -> (Self, Option<std::thread::JoinHandle<()>>) {
        let (tx, rx) = queue();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let spawned = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || run(&rx, &shared, Writer::new(path, 4 << 20)));
        let handle = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the audit log writer; nothing will be logged");
                None
            }
        };
        let audit = Self {
            tx,
            state,
            dropped: Arc::new(Mutex::new(crate::ratelog::LogGate::new())),
        };
        (audit, handle)
    }

    /// A writer that drops everything (unit tests).
    #[cfg(test)]
    #[must_use]
    pub fn discard() -> Self {
        let (tx, rx) = queue();
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Self {
            tx,
            state: Arc::default(),
            dropped: Arc::new(Mutex::new(crate::ratelog::LogGate::new())),
        }
    }

    /// Records `entry`, rotating the log past `max_bytes`. Never waits for the disk: a repeat of
    /// the line before is only counted, a new line is queued for the writer (a full queue drops
    /// it with a warning).
    pub fn record(&self, entry: Entry, max_bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = &mut state.last
            && last.at.elapsed() < WINDOW
            && last.entry.same(&entry)
        {
            last.copies += 1;
            last.entry.time = entry.time;
            return;
        }
        let summary = summary(state.last.take());
        state.sent += 1;
        let seq = state.sent;
        state.last = Some(Last {
            entry: entry.clone(),
            at: Instant::now(),
            copies: 0,
            seq,
        });
        // Sent under the lock, so that lines reach the writer in the order they were counted.
        if let Some(summary) = summary {
            self.send((summary, max_bytes, 0));
        }
        self.send((entry, max_bytes, seq));
    }

    fn send(&self, line: Line) {
        if !self.tx.try_send(line)
            && let Some(n) = self
                .dropped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .admit()
        {
            tracing::warn!(
                suppressed = n,
                "the audit log cannot keep up; a line was dropped"
            );
        }
    }
}

/// The writer thread: writes lines as they come, flushes whenever the queue is empty, and once
/// the window of the last line written has passed, writes the summary of its repeats.
fn run(rx: &QueueRx, state: &Mutex<State>, mut writer: Writer) {
    let mut failing = crate::ratelog::LogGate::new();
    let mut report = |r: std::io::Result<()>, w: &Writer| {
        if let Err(e) = r
            && let Some(n) = failing.admit()
        {
            tracing::warn!(path = %w.path.display(), error = %e, suppressed = n, "could not write the audit log");
        }
    };
    // The number of the last line written, and when its window ends.
    let mut watching: Option<(u64, Instant)> = None;
    // A line already taken off the queue (while looking whether it was empty).
    let mut pending = None;
    loop {
        let next = match (pending.take(), watching) {
            (Some(line), _) => Ok(line),
            (None, Some((_, until))) => {
                rx.recv_timeout(until.saturating_duration_since(Instant::now()))
            }
            (None, None) => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok((entry, max_bytes, seq)) => {
                writer.max_bytes = max_bytes;
                if seq > 0 {
                    watching = Some((seq, Instant::now() + WINDOW));
                }
                let r = writer.write(&entry);
                report(r, &writer);
                // Nothing more waiting: the lines reach the file now.
                if let Ok(line) = rx.try_recv() {
                    pending = Some(line);
                } else {
                    let r = writer.flush();
                    report(r, &writer);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let Some((seq, _)) = watching else { continue };
                let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
                match &shared.last {
                    // Its window has passed: its repeats are summed up; the next copy is a new
                    // line.
                    Some(last) if last.seq == seq && last.at.elapsed() >= WINDOW => {
                        let done = summary(shared.last.take());
                        drop(shared);
                        watching = None;
                        if let Some(summary) = done {
                            let r = writer.write(&summary).and_then(|()| writer.flush());
                            report(r, &writer);
                        }
                    }
                    Some(last) if last.seq == seq => {
                        watching = Some((seq, last.at + WINDOW));
                    }
                    // A newer line is on its way.
                    _ => watching = None,
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let done = summary(
                    state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .last
                        .take(),
                );
                if let Some(summary) = done {
                    let r = writer.write(&summary);
                    report(r, &writer);
                }
                let r = writer.flush();
                report(r, &writer);
                return;
            }
        }
    }
}

/// The summary line of the copies not written, if any.
fn summary(last: Option<Last>) -> Option<Entry> {
    let last = last?;
    (last.copies > 0).then(|| {
        let mut entry = last.entry;
        entry.repeated = last.copies;
        entry
    })
}

/// The open log file and its size; reopened after a rotation (or a write error).
struct Writer {
    path: PathBuf,
    max_bytes: u64,
    file: Option<(std::io::BufWriter<std::fs::File>, u64)>,
}

impl Writer {
    fn new(path: PathBuf, max_bytes: u64) -> Self {
        Self {
            path,
            max_bytes,
            file: None,
        }
    }

    fn write(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self
            .file
            .as_ref()
            .is_some_and(|(_, len)| *len > self.max_bytes)
        {
            self.flush()?;
            self.file = None;
            std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
        }
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                crate::paths::ensure_private_dir(dir).map_err(std::io::Error::other)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)?;
            let len = file.metadata()?.len();
            self.file = Some((std::io::BufWriter::new(file), len));
        }
        let Some((file, len)) = &mut self.file else {
            return Ok(());
        };
        let written = file.write_all(&line);
        if written.is_err() {
            self.file = None;
            return written;
        }
        *len += line.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some((file, _)) => {
                let r = file.flush();
                if r.is_err() {
                    self.file = None;
                }
                r
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            time: SystemTime::now(),
            kind: "token",
            account: format!("a{n}"),
            scopes: Vec::new(),
            resource: String::new(),
            action: String::new(),
            decision: "allow",
            by: "default".into(),
            outcome: "handed out".into(),
            repeated: 0,
            caller: Arc::new(Caller::default()),
        }
    }

    #[test]
    fn the_queue_holds_at_most_queue_lines_and_frees_a_place_per_line_taken() {
        let (tx, rx) = queue();
        for n in 0..QUEUE {
            assert!(tx.try_send((entry(n), 0, 1)), "line {n}");
        }
        assert!(!tx.try_send((entry(QUEUE), 0, 1)), "a full queue refuses");
        assert_eq!(
            rx.try_recv().unwrap().0.account,
            "a0",
            "first in, first out"
        );
        assert!(tx.try_send((entry(QUEUE + 1), 0, 1)), "one place again");
        assert!(!tx.try_send((entry(QUEUE + 2), 0, 1)));
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.len.load(Ordering::Acquire), 0);
        drop(rx);
        assert!(!tx.try_send((entry(0), 0, 1)), "no writer: refused");
        assert_eq!(
            tx.len.load(Ordering::Acquire),
            0,
            "a refused line holds no place"
        );
    }

    #[test]
    fn lines_are_json_in_a_private_file_rotated_by_size() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("access.log");
        let mut w = Writer::new(path.clone(), 4096);
        for n in 0..200 {
            w.write(&entry(n)).unwrap();
        }
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() < 4096 + 1024, "rotated");
        assert!(path.with_extension("log.1").exists());
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["decision"], "allow");
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }

    #[test]
    fn a_flood_of_one_request_is_one_line_and_a_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (audit, writer) = Audit::spawn(path.clone());
        let caller = Arc::new(Caller::default());
        let e = |account: &str| Entry {
            account: account.into(),
            caller: Arc::clone(&caller),
            ..entry(0)
        };
        for _ in 0..1000 {
            audit.record(e("a"), 4 << 20);
        }
        // The repeats were counted by the callers: the writer got one line.
        assert_eq!(audit.state.lock().unwrap().sent, 1);
        audit.record(e("b"), 4 << 20);
        drop(audit);
        writer.unwrap().join().unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(
            (&lines[0]["account"], &lines[0]["repeated"]),
            (&"a".into(), &serde_json::Value::Null)
        );
        assert_eq!(
            (&lines[1]["account"], &lines[1]["repeated"]),
            (&"a".into(), &999.into())
        );
        assert_eq!(lines[2]["account"], "b");
    }

    #[test]
    fn repeats_are_summed_up_when_their_window_passes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let (audit, writer) = Audit::spawn(path.clone());
        let caller = Arc::new(Caller::default());
        let e = || Entry {
            caller: Arc::clone(&caller),
            ..entry(7)
        };
        for _ in 0..5 {
            audit.record(e(), 4 << 20);
        }
        // The writer writes the summary on its own once the window has passed.
        let deadline = Instant::now() + Duration::from_secs(10);
        let lines = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() >= 2 || Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let lines: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[1]["repeated"], 4);
        // The next copy, after the window, is a line of its own again.
        audit.record(e(), 4 << 20);
        drop(audit);
        writer.unwrap().join().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.lines().last().unwrap().contains("repeated"));
    }
}
