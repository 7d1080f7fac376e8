//! `authctl-bench`: the benchmark suite of issue 6 — authctl side by side with oidc-agent on the
//! same machine, the same test provider and in the same run. See `bench/README.md`.
//!
//! ```text
//! authctl-bench [--quick] [--out FILE] [--only 1,3,...]
//! ```
//!
//! It starts the test providers, two agents (release binaries, found beside this executable),
//! oidc-agent, logs in through the normal loopback flow, runs the rows, prints a Markdown table
//! and writes it to `--out`. Exit code 1 when a row produced no number or a behaviour check
//! failed (missed performance targets are findings, not failures).

mod echo;
mod oidc_ipc;
mod proc;
mod rows;
mod setup;
mod stats;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::rows::Params;
use crate::setup::World;
use crate::table::Row;

type RowFn = fn(&World, &Params) -> anyhow::Result<Vec<Row>>;

const ROWS: &[(&str, &str, RowFn)] = &[
    ("1", "cache-hit latency", rows::cache_hit_latency),
    ("2", "cache-hit throughput", rows::cache_hit_throughput),
    ("3", "whole-process token", rows::whole_process_token),
    ("4", "stale-token burst", rows::stale_token_burst),
    (
        "5",
        "min_ttl above the provider's lifetime",
        rows::min_ttl_above_lifetime,
    ),
    ("6", "forced refresh with rotation", rows::forced_refresh),
    ("7", "memory and start-up", rows::memory_and_startup),
    ("8", "login overhead", rows::login_overhead),
    ("9", "per-application authorization", rows::access_overhead),
];

/// Temporary files and directories of this run, removed by the signal handler (destructors do
/// not run when a signal ends the process).
static TEMP_PATHS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Set when a signal stops the run: nothing new is spawned after it.
pub static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers a temporary path for removal on a signal.
pub fn register_temp(path: &std::path::Path) {
    TEMP_PATHS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(path.to_owned());
}

/// The text of a panic payload.
pub fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".into())
}

struct Opts {
    quick: bool,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: authctl-bench [--quick] [--out FILE] [--only 1,2,...]\n\
         Runs the benchmark suite (see bench/README.md); `bench/run` builds and runs it."
    );
    ExitCode::from(2)
}

/// Kills our child processes (providers, agents, oidc-agent) when we are stopped by a signal,
/// since destructors do not run then.
fn install_signal_cleanup() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {}
            }
            eprintln!("authctl-bench: interrupted; stopping child processes");
            STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
            kill_children();
            // Once more, for anything spawned while the first signal was on its way.
            std::thread::sleep(std::time::Duration::from_millis(300));
            kill_children();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let paths = TEMP_PATHS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            for p in paths {
                let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
            }
            std::process::exit(130);
        });
    });
}

/// SIGTERM to every child; a child leading its own process group (oidc-agent and its workers)
/// gets it as a group.
fn kill_children() {
    let targets: Vec<String> = children()
        .into_iter()
        .map(|pid| {
            if group_leader(&pid) {
                format!("-{pid}")
            } else {
                pid
            }
        })
        .collect();
    if !targets.is_empty() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg("--")
            .args(&targets)
            .status();
    }
}

/// Our direct children, from `/proc/self/task/*/children`.
fn children() -> Vec<String> {
    let mut pids = Vec::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                pids.extend(s.split_whitespace().map(str::to_owned));
            }
        }
    }
    pids
}

/// After a signal, the handler thread cleans up and exits: the main thread only waits for it.
fn wait_if_stopping() {
    while STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// Whether process `pid` leads its own process group (`/proc/PID/stat` field 5).
fn group_leader(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().nth(2).map(|g| g == pid)
        })
        .unwrap_or(false)
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn header(opts: &Opts, world: Option<&World>, secs: f64) -> String {
    let root = authctl_tests::repo_root();
    let root_s = root.display().to_string();
    let commit = command_line("git", &["-C", &root_s, "rev-parse", "--short", "HEAD"]);
    let dirty = !command_line(
        "git",
        &[
            "-C",
            &root_s,
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_empty();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let peer = world
        .and_then(|w| w.oidc.as_ref().ok())
        .map_or_else(|| "unavailable".to_owned(), |o| o.version.clone());
    format!(
        "## authctl benchmarks\n\n\
         - run: {} UTC, {} mode (`bench/run{}`), {:.0} s\n\
         - machine: {cores} CPUs ({cpu}), Linux {kernel}\n\
         - commit: {commit}{}\n\
         - peer: {peer}; provider: tests/idp (oidc-provider) on 127.0.0.1; agents: release build, file store\n\
         - statistics: median, p99 and min–max over samples, except rows 1a/1b (median and p99 over all calls \
           pooled, min–max of the per-round medians) and ratios (median and min–max of pairwise or per-round ratios)\n\n",
        command_line("date", &["-u", "+%Y-%m-%d %H:%M"]),
        if opts.quick { "quick" } else { "full" },
        if opts.quick { " --quick" } else { "" },
        secs,
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        },
    )
}

/// `authctl-bench load SOCKET ACCOUNT CLIENTS SECONDS`: cache-hit load on a running agent (for
/// profiling it with `perf record -p`); prints calls per second.
fn load(args: &[String]) -> ExitCode {
    let [sock, account, clients, secs] = args else {
        eprintln!("usage: authctl-bench load SOCKET ACCOUNT CLIENTS SECONDS");
        return ExitCode::from(2);
    };
    let (Ok(clients), Ok(secs)) = (clients.parse::<usize>(), secs.parse::<f64>()) else {
        eprintln!("authctl-bench load: CLIENTS and SECONDS must be numbers");
        return ExitCode::from(2);
    };
    let result = rows::multi_thread().and_then(|rt| {
        rt.block_on(rows::throughput(
            sock.as_ref(),
            account,
            clients,
            std::time::Duration::from_secs_f64(secs),
        ))
    });
    match result {
        Ok((rate, lat)) => {
            println!(
                "{} calls/s; latency p50 {} µs, p99 {} µs",
                table::num(rate),
                table::num(stats::percentile(&lat, 50.0)),
                table::num(stats::percentile(&lat, 99.0))
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("authctl-bench load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("echo-server") {
        let (Some(sock), Some(token)) = (args.get(1), args.get(2)) else {
            return usage();
        };
        return match echo::serve(sock.as_ref(), token.as_ref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("echo-server: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("load") {
        return load(&args[1..]);
    }
    let mut opts = Opts {
        quick: false,
        out: None,
        only: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--out" => match it.next() {
                Some(p) => opts.out = Some(p.into()),
                None => return usage(),
            },
            "--only" => match it.next() {
                Some(list) => {
                    opts.only = Some(list.split(',').map(|s| s.trim().to_owned()).collect())
                }
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    install_signal_cleanup();
    let start = Instant::now();
    let log = |msg: &str| eprintln!("[bench {:6.1} s] {msg}", start.elapsed().as_secs_f64());
    let params = Params::new(opts.quick);

    let built = std::panic::catch_unwind(|| World::build(&log));
    let (world, mut rows) = match built {
        Ok(Ok(w)) => (Some(w), Vec::new()),
        Ok(Err(e)) => (
            None,
            vec![Row::failed(
                "setup",
                "providers, agents, logins",
                &format!("{e:#}"),
            )],
        ),
        Err(p) => (
            None,
            vec![Row::failed(
                "setup",
                "providers, agents, logins",
                &panic_text(&*p),
            )],
        ),
    };
    if let Some(w) = &world {
        for (id, name, f) in ROWS {
            wait_if_stopping();
            if opts
                .only
                .as_ref()
                .is_some_and(|o| !o.iter().any(|x| x == id))
            {
                continue;
            }
            log(&format!("row {id}: {name}"));
            let t = Instant::now();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(w, &params)));
            match result {
                Ok(Ok(r)) => rows.extend(r),
                Ok(Err(e)) => rows.push(Row::failed(id, name, &format!("{e:#}"))),
                Err(p) => rows.push(Row::failed(id, name, &panic_text(&*p))),
            }
            log(&format!(
                "row {id} done in {:.1} s",
                t.elapsed().as_secs_f64()
            ));
        }
    }
    wait_if_stopping();
    let secs = start.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        header(&opts, world.as_ref(), secs),
        table::render(&rows)
    );
    drop(world);
    println!("{text}");
    if let Some(out) = &opts.out {
        if let Some(dir) = out.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(out, &text) {
            eprintln!("authctl-bench: cannot write {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
        log(&format!("table written to {}", out.display()));
    }
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.is_failure())
        .map(|r| r.id.as_str())
        .collect();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("authctl-bench: failed rows: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
