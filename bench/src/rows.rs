//! The rows of issue 6, one function each. Every function returns its table rows; an error or a
//! panic becomes a failed row in `main`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use authctl_client::proto::GetTokenRequest;
use authctl_client::secrecy::ExposeSecret;
use authctl_client::{Client, connect};

use crate::proc::{hyperfine, output_ok, raw_refresh, time_ms, token_path};
use crate::setup::{Agent, OIDC_60, OIDC_MAIN, World, authctl_ok, bench_env, write_config};
use crate::stats::{median, min_max, percentile};
use crate::table::{Row, num};

/// Rounds and sizes; `--quick` shrinks them.
pub struct Params {
    // Row 1: cache-hit latency.
    pub latency_warmup_calls: usize,
    pub latency_rounds: usize,
    pub latency_calls: usize,
    pub latency_connects: usize,
    // Row 2: cache-hit throughput.
    pub throughput_rounds: usize,
    pub throughput_round: Duration,
    // Row 3: whole-process token.
    pub process_pairs: usize,
    pub process_warmup: usize,
    pub process_hyperfine_runs: usize,
    // Row 4: stale-token burst.
    pub burst_rounds: usize,
    // Row 5: min_ttl above the provider's lifetime.
    pub min_ttl_calls_authctl: usize,
    pub min_ttl_calls_oidc: usize,
    // Row 6: forced refresh with rotation.
    pub refresh_rounds: usize,
    // Row 7: memory and start-up.
    pub memory_rounds: usize,
    pub memory_settle: Duration,
    // Row 8: login overhead.
    pub login_rounds: usize,
}

impl Params {
    #[must_use]
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                latency_warmup_calls: 500,
                latency_rounds: 3,
                latency_calls: 1000,
                latency_connects: 50,
                throughput_rounds: 2,
                throughput_round: Duration::from_millis(250),
                process_pairs: 40,
                process_warmup: 3,
                process_hyperfine_runs: 20,
                burst_rounds: 1,
                min_ttl_calls_authctl: 100,
                min_ttl_calls_oidc: 10,
                refresh_rounds: 4,
                memory_rounds: 2,
                memory_settle: Duration::from_millis(300),
                login_rounds: 3,
            }
        } else {
            Self {
                latency_warmup_calls: 2000,
                latency_rounds: 10,
                latency_calls: 5000,
                latency_connects: 300,
                throughput_rounds: 5,
                throughput_round: Duration::from_secs(1),
                process_pairs: 300,
                process_warmup: 10,
                process_hyperfine_runs: 100,
                burst_rounds: 3,
                min_ttl_calls_authctl: 100,
                min_ttl_calls_oidc: 100,
                refresh_rounds: 20,
                memory_rounds: 5,
                memory_settle: Duration::from_secs(1),
                login_rounds: 10,
            }
        }
    }
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The bench's client side for concurrent rows: 2 workers, as many as the machine has cores.
pub fn multi_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `n` sequential cache-hit calls; latencies in µs.
async fn sequential(c: &mut Client, account: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.get_token(account).await?;
        v.push(us(t.elapsed()));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Row 1: cache-hit latency

/// `n` sequential access-token requests to oidc-agent over its own IPC, one connection each
/// (how it serves them): latencies in µs, and whether every answer carried a token.
fn oidc_sequential(socket: &Path, request: &[u8], n: usize) -> anyhow::Result<(Vec<f64>, bool)> {
    let mut v = Vec::with_capacity(n);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut ok = true;
    for _ in 0..n {
        let t = Instant::now();
        let answer = crate::oidc_ipc::call(socket, request, &mut buf)?;
        v.push(us(t.elapsed()));
        ok &= crate::oidc_ipc::has_token(&answer);
    }
    Ok((v, ok))
}

/// Row 1: sequential cache-hit `GetToken` through the client crate, against the raw tonic echo
/// and oidc-agent's own IPC round trip, rounds rotating the three.
///
/// # Errors
/// A call fails.
#[allow(clippy::too_many_lines)]
pub fn cache_hit_latency(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let rt = current_thread()?;
    // oidc-agent is optional here: without it, row 1e fails and 1a has no target to meet.
    let oidc = w.oidc();
    let oidc_request = crate::oidc_ipc::access_token_request(OIDC_MAIN);
    rt.block_on(async {
        let sock = w.main.env.socket();
        let mut agent = connect(&sock).await?;
        let mut echo = connect(&w.echo.socket).await?;
        let a = agent.get_token("corp").await?;
        let e = echo.get_token("corp").await?;
        let same = a.access_token.expose_secret() == e.access_token.expose_secret();
        sequential(&mut agent, "corp", p.latency_warmup_calls).await?;
        sequential(&mut echo, "corp", p.latency_warmup_calls).await?;
        let mut oidc_ok = true;
        if let Ok(o) = &oidc {
            oidc_ok &= oidc_sequential(&o.socket, &oidc_request, p.latency_warmup_calls)?.1;
        }
        let (mut all_a, mut all_e, mut all_o) = (Vec::new(), Vec::new(), Vec::new());
        let (mut med_a, mut med_e, mut med_o, mut ratios) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..p.latency_rounds {
            // Rotate agent, echo and oidc-agent so that each takes each place in turn.
            let (mut la, mut le) = (Vec::new(), Vec::new());
            for k in 0..3 {
                match (round + k) % 3 {
                    0 => la = sequential(&mut agent, "corp", p.latency_calls).await?,
                    1 => le = sequential(&mut echo, "corp", p.latency_calls).await?,
                    _ => {
                        if let Ok(o) = &oidc {
                            let (lo, ok) =
                                oidc_sequential(&o.socket, &oidc_request, p.latency_calls)?;
                            oidc_ok &= ok;
                            med_o.push(median(&lo));
                            all_o.extend(lo);
                        }
                    }
                }
            }
            let (ma, me) = (median(&la), median(&le));
            med_a.push(ma);
            med_e.push(me);
            ratios.push(ma / me);
            all_a.extend(la);
            all_e.extend(le);
        }
        // A new connection and one call: the socket share of every short-lived client (the CLI).
        let (mut conn_a, mut conn_e) = (Vec::new(), Vec::new());
        for i in 0..p.latency_connects {
            for target in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
                let path = if target == 0 { &sock } else { &w.echo.socket };
                let t = Instant::now();
                let mut c = connect(path).await?;
                c.get_token("corp").await?;
                let d = us(t.elapsed());
                drop(c);
                if target == 0 {
                    conn_a.push(d)
                } else {
                    conn_e.push(d)
                }
            }
        }
        let p50a = percentile(&all_a, 50.0);
        let p99a = percentile(&all_a, 99.0);
        let p50o = percentile(&all_o, 50.0);
        let (lo_a, hi_a) = min_max(&med_a);
        let (lo_e, hi_e) = min_max(&med_e);
        let (lo_r, hi_r) = min_max(&ratios);
        let ratio = median(&ratios);
        let calls = format!(
            "{} rounds × {} calls, one connection, current-thread client",
            p.latency_rounds, p.latency_calls
        );
        let row_1e = match &oidc {
            Ok(o) => {
                let (lo_o, hi_o) = min_max(&med_o);
                Row::value(
                    "1e",
                    "peer: oidc-agent's own IPC round trip for a cached token (new connection + JSON request + answer)",
                    "µs",
                    p50o,
                )
                .p99(percentile(&all_o, 99.0))
                .range(lo_o, hi_o)
                .reference("peer")
                .note(format!(
                    "{} rounds × {} calls, rounds rotating with 1a and 1b; one connection per request, \
                     as oidc-agent serves them (it closes after each answer); plain-JSON IPC-API \
                     (`oidc-token` adds a key exchange and encryption); {}",
                    p.latency_rounds, p.latency_calls, o.version
                ))
                .check(oidc_ok, "every answer is a success carrying an access token")
            }
            Err(e) => Row::failed(
                "1e",
                "peer: oidc-agent's own IPC round trip for a cached token",
                &e.to_string(),
            ),
        };
        Ok(vec![
            Row::value(
                "1a",
                "cache-hit `GetToken` latency, client crate, sequential calls",
                "µs",
                p50a,
            )
            .p99(p99a)
            .range(lo_a, hi_a)
            .target("p50 ≤ 1e, p99 ≤ 250", p50a <= p50o && p99a <= 250.0)
            .note(format!("{calls}; 1a / 1e = {}", num(p50a / p50o))),
            Row::value(
                "1b",
                "floor: the same calls' latency at a raw tonic echo, same socket kind and client",
                "µs",
                percentile(&all_e, 50.0),
            )
            .p99(percentile(&all_e, 99.0))
            .range(lo_e, hi_e)
            .reference("floor")
            .note(format!("{calls}; same `Token` bytes as the agent"))
            .check(same, "the echo floor must answer the agent's token"),
            Row::value("1c", "ratio 1a / 1b (per-round p50s)", "×", ratio)
                .range(lo_r, hi_r)
                .target("≤ 1.5×", ratio <= 1.5),
            Row::from_samples(
                "1d",
                "latency of a new connection + its first `GetToken` (agent)",
                "µs",
                &conn_a,
            )
            .reference("info")
            .note(format!(
                "echo floor {} µs; the socket share of every `authctl` process",
                num(median(&conn_e))
            )),
            row_1e,
        ])
    })
}

// ---------------------------------------------------------------------------------------------
// Row 2: cache-hit throughput

/// `clients` connections hammering cache hits for `dur`: (calls per second, latencies in µs).
pub async fn throughput(
    sock: &Path,
    account: &str,
    clients: usize,
    dur: Duration,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut c = connect(sock).await?;
        c.get_token(account).await?;
        conns.push(c);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let account: Arc<str> = account.into();
    let mut tasks = Vec::with_capacity(clients);
    for mut c in conns {
        let barrier = Arc::clone(&barrier);
        let account = Arc::clone(&account);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let end = Instant::now() + dur;
            let mut lat = Vec::with_capacity(4096);
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                c.get_token(&account).await?;
                lat.push(us(t.elapsed()));
            }
            Ok::<_, authctl_client::ClientError>((lat, Instant::now()))
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut all = Vec::new();
    let mut last = start;
    for t in tasks {
        let (lat, done) = t.await??;
        all.extend(lat);
        last = last.max(done);
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = all.len() as f64 / (last - start).as_secs_f64();
    Ok((rate, all))
}

/// Row 2: cache-hit throughput with 1, 8, 64 and 256 concurrent clients (one connection each).
///
/// # Errors
/// A call fails.
pub fn cache_hit_throughput(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let rt = multi_thread()?;
    let mut rows = Vec::new();
    for (id, clients) in [("2a", 1usize), ("2b", 8), ("2c", 64), ("2d", 256)] {
        let (rates_a, rates_e, lat_a) = rt.block_on(async {
            let (mut ra, mut re, mut la) = (Vec::new(), Vec::new(), Vec::new());
            for round in 0..p.throughput_rounds {
                for which in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
                    if which == 0 {
                        let (r, l) =
                            throughput(&w.main.env.socket(), "corp", clients, p.throughput_round)
                                .await?;
                        ra.push(r);
                        la.extend(l);
                    } else {
                        let (r, _) =
                            throughput(&w.echo.socket, "corp", clients, p.throughput_round).await?;
                        re.push(r);
                    }
                }
            }
            Ok::<_, anyhow::Error>((ra, re, la))
        })?;
        let m = median(&rates_a);
        let me = median(&rates_e);
        let mut row = Row::from_samples(
            id,
            &format!(
                "cache-hit throughput, {clients} concurrent client{}",
                if clients == 1 { "" } else { "s" }
            ),
            "calls/s",
            &rates_a,
        );
        row.p99 = None;
        row = row.note(format!(
            "echo floor {} calls/s ({}× of it); call latency p50 {} µs, p99 {} µs; {} rounds × {} ms",
            num(me),
            num(m / me),
            num(percentile(&lat_a, 50.0)),
            num(percentile(&lat_a, 99.0)),
            p.throughput_rounds,
            p.throughput_round.as_millis()
        ));
        rows.push(if clients == 64 {
            row.target("≥ 50,000", m >= 50_000.0)
        } else {
            row.reference("info")
        });
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Row 3: whole-process token

/// Row 3: whole-process `authctl token corp` against `oidc-token bench-main`, alternating.
///
/// # Errors
/// A command fails or oidc-agent is unavailable.
pub fn whole_process_token(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let oidc = w.oidc()?;
    let authctl = authctl_tests::bin("authctl");
    let mut ours = w.main.env.command(&authctl);
    ours.args(["token", "corp"]);
    let mut peer = oidc.command(&oidc.oidc_token);
    peer.arg(OIDC_MAIN);
    let mut floor = w.main.env.command(Path::new("/bin/true"));
    let mut version = w.main.env.command(&authctl);
    version.arg("--version");
    // Behaviour: both print a token.
    let t_ours = output_ok(&mut ours)?;
    let t_peer = output_ok(&mut peer)?;
    let printed = t_ours.trim().len() > 10 && t_peer.trim().len() > 10;
    for _ in 0..p.process_warmup {
        time_ms(&mut ours)?;
        time_ms(&mut peer)?;
    }
    let (mut a, mut b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut f, mut v) = (Vec::new(), Vec::new());
    for i in 0..p.process_pairs {
        let (ta, tb) = if i % 2 == 0 {
            let ta = time_ms(&mut ours)?;
            (ta, time_ms(&mut peer)?)
        } else {
            let tb = time_ms(&mut peer)?;
            (time_ms(&mut ours)?, tb)
        };
        a.push(ta);
        b.push(tb);
        ratios.push(ta / tb);
        if i % 3 == 0 {
            f.push(time_ms(&mut floor)?);
            v.push(time_ms(&mut version)?);
        }
    }
    let ratio = median(&ratios);
    let (lo, hi) = min_max(&ratios);
    let pairs = format!("{} alternating pairs", p.process_pairs);
    let mut rows = vec![
        Row::from_samples(
            "3a",
            "`authctl token corp` (cached token), whole-process wall time",
            "ms",
            &a,
        )
        .reference("info")
        .note(pairs.clone())
        .check(printed, "both commands print a token"),
        Row::from_samples(
            "3b",
            &format!(
                "`oidc-token {OIDC_MAIN}` (cached token), whole-process wall time (oidc-agent)"
            ),
            "ms",
            &b,
        )
        .reference("peer")
        .note(format!("{pairs}; {}", oidc.version)),
        Row::value(
            "3c",
            "ratio 3a / 3b (median of pairwise ratios)",
            "×",
            ratio,
        )
        .range(lo, hi)
        .target("≤ 1.0×", ratio <= 1.0),
        Row::from_samples("3d", "floor: `/bin/true`, whole-process wall time", "ms", &f)
            .reference("floor")
            .note(format!(
                "the 3c target, 1.0 × 3b = {} ms, leaves {} ms above this floor for all of `authctl token`",
                num(median(&b)),
                num(median(&b) - median(&f))
            )),
    ];
    rows.push(
        Row::from_samples(
            "3e",
            "`authctl --version`, whole-process wall time (start-up without the socket)",
            "ms",
            &v,
        )
        .reference("info")
        .note(format!(
            "3a − 3e = {} ms: the agent round trip on a new connection (1d) and the token command",
            num(median(&a) - median(&v))
        )),
    );
    // Cross-check with hyperfine (sequential blocks, not alternating).
    match crate::setup::which("hyperfine") {
        Some(hf) => {
            let dir = tempfile::tempdir()?;
            crate::register_temp(dir.path());
            let json = dir.path().join("hyperfine.json");
            let mut base = oidc.command(&hf);
            for (k, v) in w.main.env.command(&authctl).get_envs() {
                if let Some(v) = v {
                    base.env(k, v);
                }
            }
            let cmds = [
                format!("{} token corp", authctl.display()),
                format!("{} {OIDC_MAIN}", oidc.oidc_token.display()),
            ];
            let r = hyperfine(
                &mut base,
                &cmds,
                p.process_warmup,
                p.process_hyperfine_runs,
                &json,
            )?;
            let (ma, mb) = (r[0].median_ms, r[1].median_ms);
            let mut row = Row::value(
                "3f",
                "cross-check: ratio of `hyperfine -N` medians, `authctl token` / `oidc-token`",
                "×",
                ma / mb,
            )
            .reference("info")
            .note(format!(
                "medians {} ms / {} ms, p99 {} / {} ms, {} runs each",
                num(ma),
                num(mb),
                num(percentile(&r[0].times_ms, 99.0)),
                num(percentile(&r[1].times_ms, 99.0)),
                p.process_hyperfine_runs
            ));
            row.p99 = None;
            rows.push(row);
        }
        None => rows.push(Row::failed(
            "3f",
            "cross-check: ratio of `hyperfine -N` medians",
            "hyperfine is not installed",
        )),
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Row 4: stale-token burst

/// The expiry (Unix seconds, 0 for none) of `account`'s default token, read without asking for
/// the token (which would make it hot).
async fn expiry(c: &mut Client, account: &str) -> anyhow::Result<i64> {
    c.list_accounts()
        .await?
        .iter()
        .find(|a| a.name == account)
        .map(|a| a.access_token_expires_at)
        .ok_or_else(|| anyhow!("no account {account}"))
}

/// Waits until `account`'s default token has expired and no refresh is in flight: it stays
/// expired, and the provider sees no refresh, for 1.5 s (the agent's refresh supervisor ends
/// once the key is idle for `refresh_idle_seconds` = 1). At most `limit`.
async fn wait_stale_and_quiet(
    c: &mut Client,
    account: &str,
    idp: &authctl_tests::Idp,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let exp = expiry(c, account).await?;
        let now = now_unix();
        if exp == 0 || now >= exp {
            let calls = idp.token_calls("refresh_token");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let exp = expiry(c, account).await?;
            if (exp == 0 || now_unix() >= exp) && idp.token_calls("refresh_token") == calls {
                return Ok(());
            }
        } else {
            let left = u64::try_from(exp - now).unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(left).min(Duration::from_secs(1))).await;
        }
        if Instant::now() > deadline {
            bail!("the token of {account} did not go stale and quiet within {limit:?}");
        }
    }
}

/// `n` callers released at once on a stale token: (latencies in ms, whether every caller got the
/// same token, burst wall time in ms).
async fn burst(sock: &Path, account: &str, n: usize) -> anyhow::Result<(Vec<f64>, bool, f64)> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(connect(sock).await?);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(n + 1));
    let mut tasks = Vec::with_capacity(n);
    for mut c in conns {
        let barrier = Arc::clone(&barrier);
        let account = account.to_owned();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let t = Instant::now();
            let tok = c
                .get_token_with(GetTokenRequest {
                    account,
                    min_ttl_seconds: 1,
                    ..Default::default()
                })
                .await?;
            Ok::<_, authctl_client::ClientError>((
                ms(t.elapsed()),
                tok.access_token.expose_secret().to_owned(),
            ))
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let (l, tok) = t.await??;
        lat.push(l);
        tokens.insert(tok);
    }
    Ok((lat, tokens.len() == 1, ms(start.elapsed())))
}

/// Row 4: 10, 100 and 1000 concurrent requests on a stale token (2 s access tokens).
///
/// # Errors
/// A call fails.
pub fn stale_token_burst(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let rt = multi_thread()?;
    let sock = w.life.env.socket();
    let mut rows = Vec::new();
    for (id, n) in [("4a", 10usize), ("4b", 100), ("4c", 1000)] {
        let (lat, deltas, same, walls) = rt.block_on(async {
            let mut probe = connect(&sock).await?;
            let (mut lat, mut deltas, mut same, mut walls) =
                (Vec::new(), Vec::new(), true, Vec::new());
            for _ in 0..p.burst_rounds {
                wait_stale_and_quiet(&mut probe, "short", &w.short_idp, Duration::from_secs(30))
                    .await?;
                let before = w.short_idp.token_calls("refresh_token");
                let (l, s, wall) = burst(&sock, "short", n).await?;
                let after = w.short_idp.token_calls("refresh_token");
                lat.extend(l);
                deltas.push(after - before);
                same &= s;
                walls.push(wall);
            }
            Ok::<_, anyhow::Error>((lat, deltas, same, walls))
        })?;
        let exact = deltas.iter().all(|&d| d == 1);
        let deltas_text = deltas
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(
            Row::from_samples(
                id,
                &format!("{n} concurrent `GetToken` on a stale token: caller latency"),
                "ms",
                &lat,
            )
            .target("1 token call per burst", exact)
            .note(format!(
                "token-endpoint calls per burst: {deltas_text}; burst wall {} ms; {} round{}",
                num(median(&walls)),
                p.burst_rounds,
                if p.burst_rounds == 1 { "" } else { "s" }
            ))
            .check(
                exact,
                "exactly 1 token-endpoint call per stale key per burst",
            )
            .check(same, "every caller got the same new token"),
        );
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Row 5: min_ttl above the provider's lifetime

/// Row 5: callers asking more lifetime (3600 s) than the provider issues (60 s).
///
/// # Errors
/// A call fails.
pub fn min_ttl_above_lifetime(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let rt = current_thread()?;
    let (delta, noted, elapsed) = rt.block_on(async {
        let mut c = connect(&w.life.env.socket()).await?;
        let before = w.medium_idp.token_calls("refresh_token");
        let t = Instant::now();
        let mut noted = true;
        for _ in 0..p.min_ttl_calls_authctl {
            let tok = c
                .get_token_with(GetTokenRequest {
                    account: "medium".into(),
                    min_ttl_seconds: 3600,
                    ..Default::default()
                })
                .await?;
            noted &= tok.note.is_some();
        }
        let elapsed = t.elapsed();
        let after = w.medium_idp.token_calls("refresh_token");
        Ok::<_, anyhow::Error>((after - before, noted, elapsed))
    })?;
    // One refresh per issued token at most: the token may have entered its second half already.
    let allowed = 1 + (elapsed.as_secs() / 30);
    let mut rows = vec![
        Row::value(
            "5a",
            &format!(
                "min_ttl 3600 s > 60 s tokens, {} calls: provider token calls (authctl)",
                p.min_ttl_calls_authctl
            ),
            "calls",
            delta as f64,
        )
        .target("≤ 1 (one per issued token)", delta <= allowed)
        .note(format!(
            "{} ms for all calls; every answer carried the capped-min_ttl note: {}",
            num(ms(elapsed)),
            if noted { "yes" } else { "no" }
        ))
        .check(delta <= allowed, "never more refreshes than issued tokens")
        .check(noted, "each answer says the token cannot meet min_ttl"),
    ];
    rows.push(match w.oidc() {
        Ok(oidc) => {
            let mut cmd = oidc.command(&oidc.oidc_token);
            cmd.args(["--time=3600", OIDC_60]);
            let before = w.medium_idp.token_calls("refresh_token");
            let mut times = Vec::new();
            for _ in 0..p.min_ttl_calls_oidc {
                times.push(time_ms(&mut cmd)?);
            }
            let d = w.medium_idp.token_calls("refresh_token") - before;
            Row::value(
                "5b",
                &format!(
                    "same, {} calls: provider token calls (oidc-agent `oidc-token --time=3600`)",
                    p.min_ttl_calls_oidc
                ),
                "calls",
                d as f64,
            )
            .reference("peer")
            .note(format!("{} ms per call (median)", num(median(&times))))
        }
        Err(e) => Row::failed(
            "5b",
            "same: provider token calls (oidc-agent)",
            &e.to_string(),
        ),
    });
    Ok(rows)
}

// ---------------------------------------------------------------------------------------------
// Row 6: forced refresh with rotation

/// Row 6: a forced refresh with rotation, whole process, against oidc-agent and the provider.
///
/// # Errors
/// A command fails or oidc-agent is unavailable.
pub fn forced_refresh(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let oidc = w.oidc()?;
    let idp = &w.main_idp;
    let mut ours = w.main.env.command(&authctl_tests::bin("authctl"));
    ours.args(["token", "corp", "--refresh"]);
    let mut peer = oidc.command(&oidc.oidc_token);
    peer.args(["--force-new", OIDC_MAIN]);
    let path = token_path(idp.port)?;
    let mut rt = w.floor_rt.clone();
    let (mut a, mut b, mut f) = (Vec::new(), Vec::new(), Vec::new());
    let (mut da, mut db, mut df) = (Vec::new(), Vec::new(), Vec::new());
    let calls = || idp.token_calls("refresh_token");
    for i in 0..=p.refresh_rounds {
        for k in 0..3 {
            let which = (i + k) % 3;
            let before = calls();
            let t = match which {
                0 => time_ms(&mut ours)?,
                1 => time_ms(&mut peer)?,
                _ => raw_refresh(idp.port, &path, &mut rt)?,
            };
            let d = calls() - before;
            if i == 0 {
                continue; // warm-up
            }
            match which {
                0 => {
                    a.push(t);
                    da.push(d);
                }
                1 => {
                    b.push(t);
                    db.push(d);
                }
                _ => {
                    f.push(t);
                    df.push(d);
                }
            }
        }
    }
    let ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
    let (lo, hi) = min_max(&ratios);
    let one_each = da.iter().all(|&d| d == 1);
    let m = median(&a);
    let rounds = format!("{} rounds, rotation on every refresh", p.refresh_rounds);
    Ok(vec![
        Row::from_samples(
            "6a",
            "forced refresh `authctl token corp --refresh`, whole-process wall time",
            "ms",
            &a,
        )
        .target("≤ 15", m <= 15.0)
        .note(rounds.clone())
        .check(one_each, "exactly 1 token-endpoint call per forced refresh"),
        Row::from_samples(
            "6b",
            &format!(
                "forced refresh `oidc-token --force-new {OIDC_MAIN}`, whole-process wall time"
            ),
            "ms",
            &b,
        )
        .reference("peer")
        .note(format!(
            "{rounds}; token calls per run: {}",
            db.iter().copied().max().unwrap_or(0)
        )),
        Row::from_samples(
            "6c",
            "floor: the provider's refresh grant, raw HTTP on a new connection (wall time)",
            "ms",
            &f,
        )
        .reference("floor")
        .note(format!(
            "token calls per run: {}",
            df.iter().copied().max().unwrap_or(0)
        )),
        Row::value(
            "6d",
            "ratio 6a / 6b (median of pairwise ratios)",
            "×",
            median(&ratios),
        )
        .range(lo, hi)
        .reference("info"),
    ])
}

// ---------------------------------------------------------------------------------------------
// Row 7: memory and start-up

/// Fills the store of `env` with `n` synthetic accounts `a1…an` at provider `corp`.
fn synthetic_store(env: &authctl_tests::TestEnv, n: usize) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = env.data_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let accounts: Vec<serde_json::Value> = (1..=n)
        .map(|i| {
            serde_json::json!({
                "name": format!("a{i}"), "provider": "corp", "subject": format!("s{i}"),
                "display_name": format!("user{i}@example.test"), "scopes": ["openid", "email", "offline_access"],
                "created_at": 0, "last_refresh_at": 0, "login_required": false, "last_error": "",
                "has_refresh_token": true
            })
        })
        .collect();
    let secrets: serde_json::Map<String, serde_json::Value> = (1..=n)
        .map(|i| {
            (
                format!("account/a{i}/refresh_token"),
                serde_json::Value::String(format!(
                    "synthetic-refresh-token-{i:08}-{}",
                    "x".repeat(32)
                )),
            )
        })
        .collect();
    for (file, v) in [
        (
            "accounts.json",
            serde_json::json!({"version": 1, "accounts": accounts}),
        ),
        ("secrets.json", serde_json::Value::Object(secrets)),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, serde_json::to_vec(&v)?)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn vm_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))?;
    Ok(kb / 1024.0)
}

/// Row 7: resident memory idle and start-to-first-answer with 0, 100 and 10,000 accounts.
///
/// # Errors
/// The agent does not start.
pub fn memory_and_startup(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let mut rss_rows = Vec::new();
    let mut start_rows = Vec::new();
    for (k, n) in [0usize, 100, 10_000].into_iter().enumerate() {
        let env = bench_env();
        write_config(&env, "", &[("corp", &w.main_idp.issuer)])?;
        synthetic_store(&env, n)?;
        let (mut rss, mut starts, mut listed) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..p.memory_rounds {
            let log = env.path(&format!("agent-{round}.stderr"));
            let rt = current_thread()?;
            let t = Instant::now();
            let mut agent = Agent::spawn_nowait(&env, &log)?;
            agent.wait_ready(&rt, &env.socket(), Duration::from_secs(20))?;
            drop(rt);
            starts.push(ms(t.elapsed()));
            std::thread::sleep(p.memory_settle);
            rss.push(vm_rss_mb(agent.pid())?);
            // A runtime per round: dropping it closes the connection, which the agent's
            // graceful stop would otherwise wait for.
            listed.push(current_thread()?.block_on(async {
                let mut c = connect(&env.socket()).await?;
                Ok::<_, anyhow::Error>(c.list_accounts().await?.len())
            })?);
            agent.stop();
        }
        let loaded = listed.iter().all(|&l| l == n);
        let id_rss = ["7a", "7b", "7c"][k];
        let id_start = ["7d", "7e", "7f"][k];
        let label = if n == 10_000 {
            "10,000".to_owned()
        } else {
            n.to_string()
        };
        let mut row = Row::from_samples(
            id_rss,
            &format!("agent resident memory, idle, {label} accounts"),
            "MB",
            &rss,
        )
        .note(format!(
            "VmRSS {} ms after the first answer; {} rounds",
            p.memory_settle.as_millis(),
            p.memory_rounds
        ))
        .check(loaded, "the agent lists every synthetic account");
        row = match n {
            100 => row.target("≤ 10", median(&rss) <= 10.0),
            10_000 => row.target("≤ 50", median(&rss) <= 50.0),
            _ => row.reference("info"),
        };
        rss_rows.push(row);
        start_rows.push(
            Row::from_samples(
                id_start,
                &format!("agent start → first answer, {label} accounts"),
                "ms",
                &starts,
            )
            .target("≤ 20", median(&starts) <= 20.0)
            .note("spawn to a served `grpc.health.v1` Check on a new connection (100 µs polling)"),
        );
    }
    rss_rows.extend(start_rows);
    for (id, synthetic, limit) in [("7g", 0usize, 10.0), ("7h", 99, 12.0)] {
        rss_rows.push(rss_after_use(w, p, id, synthetic, limit)?);
    }
    Ok(rss_rows)
}

/// How long after the last call rows 7g and 7h read `VmRSS`.
const AFTER_USE_SETTLE: Duration = Duration::from_secs(1);

/// Rows 7g/7h: `VmRSS` of a fresh agent after real use: account `corp` logged in through the
/// loopback flow (beside `synthetic` accounts), then 10 × (100 cache-hit `GetToken` + 1 forced
/// refresh) on one connection; read [`AFTER_USE_SETTLE`] after the last call. The note says
/// what holds the memory (the last round's `/proc/PID/smaps`).
fn rss_after_use(
    w: &World,
    p: &Params,
    id: &str,
    synthetic: usize,
    limit_mb: f64,
) -> anyhow::Result<Row> {
    const BATCHES: usize = 10;
    const HITS_PER_BATCH: usize = 100;
    let (mut rss, mut listed_ok, mut refresh_ok) = (Vec::new(), true, true);
    let mut parts = Err(anyhow!("no round"));
    for _ in 0..p.memory_rounds {
        let env = bench_env();
        write_config(&env, "", &[("corp", &w.main_idp.issuer)])?;
        if synthetic > 0 {
            synthetic_store(&env, synthetic)?;
        }
        let mut agent = Agent::spawn(&env)?;
        authctl_ok(&env, &["login", "corp", "--account", "corp"]).context("log in `corp`")?;
        let before = w.main_idp.token_calls("refresh_token");
        // A runtime per round: dropping it closes the connection before the agent stops.
        let listed = current_thread()?.block_on(async {
            let mut c = connect(&env.socket()).await?;
            let listed = c.list_accounts().await?.len();
            for _ in 0..BATCHES {
                sequential(&mut c, "corp", HITS_PER_BATCH).await?;
                c.get_token_with(GetTokenRequest {
                    account: "corp".into(),
                    force_refresh: true,
                    ..Default::default()
                })
                .await?;
            }
            Ok::<_, anyhow::Error>(listed)
        })?;
        let refreshes = w.main_idp.token_calls("refresh_token") - before;
        std::thread::sleep(AFTER_USE_SETTLE);
        rss.push(vm_rss_mb(agent.pid())?);
        parts = RssParts::read(agent.pid());
        agent.stop();
        listed_ok &= listed == synthetic + 1;
        refresh_ok &= refreshes == BATCHES as u64;
    }
    let accounts = if synthetic == 0 {
        "1 account".to_owned()
    } else {
        format!(
            "{} accounts (1 logged in + {synthetic} synthetic)",
            synthetic + 1
        )
    };
    let m = median(&rss);
    Ok(Row::from_samples(
        id,
        &format!(
            "agent resident memory after use, {accounts}: {} cache-hit `GetToken` + {BATCHES} forced refreshes",
            BATCHES * HITS_PER_BATCH
        ),
        "MB",
        &rss,
    )
    .target(&format!("≤ {}", num(limit_mb)), m <= limit_mb)
    .note(format!(
        "fresh agent, loopback login; VmRSS {} ms after the last call; {} round{}; {}",
        AFTER_USE_SETTLE.as_millis(),
        p.memory_rounds,
        if p.memory_rounds == 1 { "" } else { "s" },
        match parts {
            Ok(parts) => parts.describe(),
            Err(e) => format!("no /proc/PID/smaps breakdown ({e:#})"),
        }
    ))
    .check(listed_ok, "the agent lists every account")
    .check(refresh_ok, "exactly 1 token-endpoint call per forced refresh"))
}

/// One mapping of `/proc/PID/smaps`.
struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    path: String,
    rss_kb: u64,
}

/// The size of a glibc malloc heap (`HEAP_MAX_SIZE` on 64-bit: 64 MiB, and aligned to it).
const ARENA_HEAP: u64 = 64 << 20;

/// What holds a process's resident memory, from `/proc/PID/smaps`: `Rss` in kB by kind.
#[derive(Default)]
struct RssParts {
    exe: u64,
    libs: u64,
    other_files: u64,
    heap: u64,
    arenas: u64,
    arena_count: usize,
    stacks: u64,
    threads: usize,
    other_anon: u64,
    total: u64,
}

impl RssParts {
    /// Reads `/proc/PID/smaps` (needs access: the agent is not dumpable, so only its user when
    /// root, or root) and the threads' stack pointers (`/proc/PID/task/*/syscall`).
    fn read(pid: u32) -> anyhow::Result<Self> {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
            .with_context(|| format!("read /proc/{pid}/smaps"))?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?
            .to_string_lossy()
            .into_owned();
        let (sps, threads) = stack_pointers(pid);
        Ok(Self::classify(&parse_smaps(&smaps), &exe, &sps, threads))
    }

    fn classify(maps: &[Mapping], exe: &str, sps: &[u64], threads: usize) -> Self {
        let mut r = Self {
            threads,
            ..Self::default()
        };
        for (i, m) in maps.iter().enumerate() {
            r.total += m.rss_kb;
            let anon = m.path.is_empty();
            // A malloc heap of a non-main arena: 64 MiB-aligned, read-write, and with the
            // inaccessible rest of its reservation right after it, 64 MiB in all.
            let arena = anon
                && m.perms.starts_with("rw")
                && m.start % ARENA_HEAP == 0
                && (m.end - m.start == ARENA_HEAP
                    || maps.get(i + 1).is_some_and(|n| {
                        n.path.is_empty()
                            && n.perms.starts_with("---")
                            && n.start == m.end
                            && n.end - m.start == ARENA_HEAP
                    }));
            let stack = m.path == "[stack]" || sps.iter().any(|&sp| m.start <= sp && sp < m.end);
            if m.path == exe {
                r.exe += m.rss_kb;
            } else if m.path == "[heap]" {
                r.heap += m.rss_kb;
            } else if stack {
                r.stacks += m.rss_kb;
            } else if arena {
                r.arenas += m.rss_kb;
                r.arena_count += 1;
            } else if m.path.starts_with('/') && m.path.contains(".so") {
                r.libs += m.rss_kb;
            } else if m.path.starts_with('/') {
                r.other_files += m.rss_kb;
            } else {
                r.other_anon += m.rss_kb;
            }
        }
        r
    }

    /// The note text, in MB.
    fn describe(&self) -> String {
        #[allow(clippy::cast_precision_loss)]
        let mb = |kb: u64| num(kb as f64 / 1024.0);
        let mut s = format!(
            "smaps Rss {} MB (last round): executable {}, shared libraries {}",
            mb(self.total),
            mb(self.exe),
            mb(self.libs)
        );
        if self.other_files > 0 {
            let _ = write!(s, ", other files {}", mb(self.other_files));
        }
        let _ = write!(
            s,
            ", [heap] {}, malloc arenas {} ({} arena{} besides the main one), thread stacks {} ({} threads), other anonymous {}",
            mb(self.heap),
            mb(self.arenas),
            self.arena_count,
            if self.arena_count == 1 { "" } else { "s" },
            mb(self.stacks),
            self.threads,
            mb(self.other_anon)
        );
        s
    }
}

/// The mappings of a `/proc/PID/smaps` text.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16))
        {
            let perms = fields.next().unwrap_or_default().to_owned();
            // offset, device, inode, then the path (which may hold spaces).
            let path = fields.skip(3).collect::<Vec<_>>().join(" ");
            maps.push(Mapping {
                start,
                end,
                perms,
                path,
                rss_kb: 0,
            });
        } else if first == "Rss:"
            && let (Some(m), Some(kb)) = (maps.last_mut(), fields.next())
        {
            m.rss_kb = kb.parse().unwrap_or(0);
        }
    }
    maps
}

/// The stack pointers of `pid`'s threads that are in a system call (from
/// `/proc/PID/task/TID/syscall`: `NR args… SP PC`), and the number of threads.
fn stack_pointers(pid: u32) -> (Vec<u64>, usize) {
    let mut sps = Vec::new();
    let mut threads = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            threads += 1;
            let Ok(s) = std::fs::read_to_string(t.path().join("syscall")) else {
                continue;
            };
            let f: Vec<&str> = s.split_whitespace().collect();
            if f.len() >= 3
                && let Some(sp) = f[f.len() - 2].strip_prefix("0x")
                && let Ok(sp) = u64::from_str_radix(sp, 16)
            {
                sps.push(sp);
            }
        }
    }
    (sps, threads)
}

// ---------------------------------------------------------------------------------------------
// Row 8: login overhead

fn stored_samples(log: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains("login stored"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("callback_to_stored_us="))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .collect()
}

/// Row 8: the agent's share of a loopback login, callback received → tokens stored.
///
/// # Errors
/// A login fails.
pub fn login_overhead(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let before = stored_samples(&w.main.agent.log_text()).len();
    let mut walls = Vec::new();
    for _ in 0..p.login_rounds {
        let t = Instant::now();
        authctl_ok(&w.main.env, &["login", "corp"]).context("log in again")?;
        walls.push(ms(t.elapsed()));
    }
    std::thread::sleep(Duration::from_millis(100));
    let samples: Vec<f64> = stored_samples(&w.main.agent.log_text())
        .into_iter()
        .skip(before)
        .map(|us| us / 1e3)
        .collect();
    if samples.len() != p.login_rounds {
        bail!(
            "expected {} `login stored … callback_to_stored_us=` lines in the agent's log, found {}",
            p.login_rounds,
            samples.len()
        );
    }
    Ok(vec![
        Row::from_samples("8", "login inside the agent: callback received → tokens stored", "ms", &samples)
            .reference("info")
            .note(format!(
                "code exchange, ID-token check, durable store; {} logins; whole `authctl login` with the scripted browser {} ms",
                p.login_rounds,
                num(median(&walls))
            )),
    ])
}

// ---------------------------------------------------------------------------------------------
// Row 9: per-application authorization

/// Where row 9's `[access]` table starts in the main agent's `config.toml`.
const ACCESS_MARK: &str = "\n# bench row 9\n";

/// Replaces the main agent's `[access]` table with `table` (empty: none, the default policy) and
/// reloads it.
fn set_access(env: &authctl_tests::TestEnv, table: &str) -> anyhow::Result<()> {
    let path = env.config_file();
    let text = std::fs::read_to_string(&path)?;
    let base = text.split(ACCESS_MARK).next().unwrap_or_default();
    std::fs::write(&path, format!("{base}{ACCESS_MARK}{table}"))?;
    authctl_ok(env, &["agent", "reload"]).context("reload the [access] table")?;
    Ok(())
}

/// `n` new connections, each timed from connect through its first cache-hit `GetToken` (the
/// call that attests the caller), in µs.
async fn first_calls(sock: &Path, account: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut c = connect(sock).await?;
        c.get_token(account).await?;
        v.push(us(t.elapsed()));
    }
    Ok(v)
}

/// Attestations of a live process (a `sleep` child of ours) in process, in µs: `hash` computes
/// the executable's SHA-256 (cached by inode and mtime after the first). Also the reading of each
/// one's parent chain, which the agent does later, off the request path (by the audit writer).
fn attestations(n: usize, hash: bool) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
    let pid = i32::try_from(child.id())?;
    let me = std::fs::metadata("/proc/self")?;
    let attestor =
        authctl_agent::bench::Attestor::new(authctl_agent::bench::Attestor::default_cli());
    let pidfd = authctl_agent::bench::pin(Some(pid));
    let mut v = Vec::with_capacity(n);
    let mut chains = Vec::with_capacity(n);
    let mut named = true;
    for _ in 0..n {
        let t = Instant::now();
        let caller = attestor.attest(Some(pid), (me.uid(), me.gid()), pidfd.as_ref(), hash);
        v.push(us(t.elapsed()));
        named &= !caller.gone && caller.process.exe.ends_with("sleep");
        let t = Instant::now();
        // The chain starts at this bench process, the child's parent.
        named &= caller.parents.get().first().map(|p| p.0) == Some(std::process::id());
        chains.push(us(t.elapsed()));
    }
    let _ = child.kill();
    let _ = child.wait();
    if !named {
        bail!("the attestation did not name the live `sleep` process and its parents");
    }
    Ok((v, chains))
}

/// Row 9: the cost of per-application authorization: cache hits and new connections with no
/// `[access]` table (default `allow`) against a `deny` default with a matching `exe` rule and
/// executable hashing, alternating in one run; and the attestation itself, in process.
///
/// # Errors
/// A call fails, or the rule did not decide.
pub fn access_overhead(w: &World, p: &Params) -> anyhow::Result<Vec<Row>> {
    let env = &w.main.env;
    let exe = std::fs::canonicalize(std::env::current_exe()?)?;
    let rule = format!(
        "[access]\ndefault = \"deny\"\nhash_executables = true\n\n[[access.rules]]\n\
         exe = {exe:?}\naccount = \"corp\"\ndecision = \"allow\"\n"
    );
    let sock = env.socket();
    let rt = current_thread()?;
    let (mut hit, mut conn) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 0..p.latency_rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            set_access(env, if k == 0 { "" } else { &rule })?;
            rt.block_on(async {
                conn[k].extend(first_calls(&sock, "corp", p.latency_connects).await?);
                let mut c = connect(&sock).await?;
                sequential(&mut c, "corp", p.latency_warmup_calls / 4).await?;
                hit[k].extend(sequential(&mut c, "corp", p.latency_calls).await?);
                Ok::<_, anyhow::Error>(())
            })?;
        }
    }
    // The rule decided (not the default), and the default was in force without it.
    let log_path = rt.block_on(async {
        let mut c = connect(&sock).await?;
        Ok::<_, anyhow::Error>(c.status().await?.audit_log)
    })?;
    set_access(env, "")?;
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let ruled = log.contains("\"by\":\"rule 1\"") && log.contains("\"by\":\"default\"");
    let (plain, chains) = attestations(p.latency_calls, false)?;
    let (hashed_first, _) = attestations(1, true)?;
    let (hashed, _) = attestations(p.latency_calls, true)?;
    let (p50_0, p50_1) = (median(&hit[0]), median(&hit[1]));
    let (c0, c1) = (median(&conn[0]), median(&conn[1]));
    let attest = median(&plain);
    let calls = format!(
        "{} rounds × {} calls, alternating the two policies, current-thread client",
        p.latency_rounds, p.latency_calls
    );
    Ok(vec![
        Row::from_samples(
            "9a",
            "cache-hit `GetToken`, no `[access]` table (default `allow`)",
            "µs",
            &hit[0],
        )
        .p99(percentile(&hit[0], 99.0))
        .reference("info")
        .note(calls.clone()),
        Row::from_samples(
            "9b",
            "cache-hit `GetToken`, default `deny` + a matching `exe` rule, hashing on",
            "µs",
            &hit[1],
        )
        .p99(percentile(&hit[1], 99.0))
        .target(
            "≤ 9a + 5 (nothing per call after the first)",
            p50_1 <= p50_0 + 5.0,
        )
        .note(format!("9b − 9a = {} µs; {calls}", num(p50_1 - p50_0)))
        .check(
            ruled,
            "the audit log shows both `rule 1` and `default` decisions",
        ),
        Row::from_samples(
            "9c",
            "new connection + first `GetToken`, no `[access]` table",
            "µs",
            &conn[0],
        )
        .reference("info")
        .note("the first call of a connection attests its caller (always: the audit log names it)"),
        Row::from_samples(
            "9d",
            "new connection + first `GetToken`, `deny` + `exe` rule, hashing on",
            "µs",
            &conn[1],
        )
        .target("≤ 9c + 20", c1 <= c0 + 20.0)
        .note(format!(
            "9d − 9c = {} µs (digest cached by inode and mtime)",
            num(c1 - c0)
        )),
        Row::from_samples(
            "9e",
            "caller attestation in process (pidfd, /proc: exe, stat, cgroup, cmdline)",
            "µs",
            &plain,
        )
        .p99(percentile(&plain, 99.0))
        .target("≤ 20", attest <= 20.0)
        .note(format!(
            "a live `sleep` child, {} attestations; with hashing {} µs (first, uncached: {} µs); its parent chain, read off the request path by the audit writer, {} µs",
            plain.len(),
            num(median(&hashed)),
            num(hashed_first[0]),
            num(median(&chains))
        )),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_smaps() {
        let text = "\
55d000000000-55d000100000 r-xp 00000000 08:01 42    /usr/bin/authctl-agent
Rss:                1000 kB
55d000200000-55d000300000 rw-p 00000000 00:00 0     [heap]
Rss:                 200 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Rss:                 100 kB
7f0000021000-7f0004000000 ---p 00000000 00:00 0
Rss:                   0 kB
7f1000000000-7f1000001000 ---p 00000000 00:00 0
Rss:                   0 kB
7f1000001000-7f1000201000 rw-p 00000000 00:00 0
Rss:                  16 kB
7f2000000000-7f2000100000 r-xp 00000000 08:01 43    /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 300 kB
7f3000000000-7f3000010000 rw-p 00000000 00:00 0
AnonHugePages:         0 kB
Rss:                  40 kB
";
        let maps = parse_smaps(text);
        assert_eq!(maps.len(), 8);
        let r = RssParts::classify(&maps, "/usr/bin/authctl-agent", &[0x7f10_0010_0000], 3);
        assert_eq!(
            (
                r.exe,
                r.heap,
                r.arenas,
                r.arena_count,
                r.stacks,
                r.libs,
                r.other_anon,
                r.total
            ),
            (1000, 200, 100, 1, 16, 300, 40, 1656)
        );
    }

    #[test]
    fn parses_login_lines() {
        let log = "2026 INFO authctl_agent::login: login stored account=corp callback_to_stored_us=96986\n\
                   other line callback_to_stored_us=5\n";
        assert_eq!(stored_samples(log), vec![96986.0]);
    }
}
