//! The one-shot loopback redirect listener of RFC 8252 §7.3.
//!
//! It binds loopback only (an OS-assigned port, or the first free port of a configured list; for
//! the `localhost` host both `127.0.0.1` and `::1` on the same port, so no other user can take the
//! other stack), and admits only connections of its own user: on Linux the connecting socket's
//! owner is read from the kernel's socket tables before a byte is read, so another local user who
//! learnt the port and `state` (from the browser's command line) can neither abort the login with
//! a forged `error` nor inject a code of their own. It serves only `GET` on the redirect path with
//! the expected `Host`, limits request size, connection count and time, and hands the first
//! callback that carries the right `state` to the login. Anything else is answered with an error
//! page and the login keeps waiting. A valid callback is answered with a redirect (303) to a clean
//! page, so the code and `state` do not stay in the tab's address bar and history.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::config::RedirectHost;
use crate::ratelog::LogGate;

/// Connections served at once; a newer one closes the oldest (a browser sends its request at
/// once, idle connections are the ones to drop).
const MAX_CONNECTIONS: usize = 64;
/// Connections accepted in one batch (one read of the kernel's socket tables per batch).
const MAX_BATCH: usize = 256;
/// How long the login waits for the browser to fetch the clean page it was redirected to.
const DONE_GRACE: Duration = Duration::from_secs(3);
/// Binding attempts for an OS-assigned port that must be free on both stacks.
const DUAL_STACK_ATTEMPTS: usize = 16;

/// Why the listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(
        "none of the fixed redirect ports ({ports}) is free on {host}; close what uses them or change `redirect_ports`"
    )]
    AllPortsBusy { host: String, ports: String },
    #[error("no port is free on both 127.0.0.1 and ::1 (the `localhost` redirect host needs both)")]
    NoDualStackPort,
}

/// The query of a callback that carried the right `state`.
pub struct Callback {
    params: HashMap<String, String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&String> = self.params.keys().collect();
        f.debug_struct("Callback").field("keys", &keys).finish()
    }
}

impl Callback {
    /// A parameter other than the code.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The authorization code (a secret).
    #[must_use]
    pub fn code(&self) -> Option<SecretString> {
        self.params
            .get("code")
            .map(|c| SecretString::from(c.clone()))
    }
}

/// The page the browser is shown for a callback.
pub struct Page {
    pub ok: bool,
    pub title: String,
    pub message: String,
}

type Pending = (Callback, oneshot::Sender<Page>);

/// A bound listener waiting for one callback.
pub struct Loopback {
    listeners: Vec<TcpListener>,
    pub redirect_uri: String,
    host_header: String,
    path: String,
    /// Where `{path}/start` sends the browser, once, if anywhere.
    start: Option<String>,
}

fn bind_std(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Binds `port` (0: OS-assigned) on every address of `host`; for `localhost` both stacks on one
/// port. `Ok(None)`: the port is busy on one of them.
fn bind_all(host: RedirectHost, port: u16) -> Result<Option<Vec<TcpListener>>, LoopbackError> {
    let bind_err = |addr: SocketAddr, source| LoopbackError::Bind {
        addr: addr.to_string(),
        source,
    };
    let first = SocketAddr::new(host.bind_ip(), port);
    let v4 = match bind_std(first) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => return Ok(None),
        Err(e) => return Err(bind_err(first, e)),
    };
    let mut listeners = vec![v4];
    if host == RedirectHost::Localhost {
        let port = listeners[0]
            .local_addr()
            .map_err(|e| bind_err(first, e))?
            .port();
        let v6 = SocketAddr::new(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), port);
        match bind_std(v6) {
            Ok(l) => listeners.push(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Ok(None),
            // No IPv6 loopback on this machine: nobody can take it either.
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                tracing::debug!("no ::1 on this machine; the localhost listener is IPv4 only");
            }
            Err(e) => return Err(bind_err(v6, e)),
        }
    }
    listeners
        .into_iter()
        .map(|l| TcpListener::from_std(l).map_err(|e| bind_err(first, e)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

impl Loopback {
    /// Binds `host` on an OS-assigned port, or on the first free port of `ports`.
    ///
    /// # Errors
    /// The address cannot be bound, or every fixed port is busy.
    pub fn bind(host: RedirectHost, ports: &[u16], path: &str) -> Result<Self, LoopbackError> {
        let listeners = if ports.is_empty() {
            let mut bound = None;
            for _ in 0..DUAL_STACK_ATTEMPTS {
                if let Some(l) = bind_all(host, 0)? {
                    bound = Some(l);
                    break;
                }
            }
            bound.ok_or(LoopbackError::NoDualStackPort)?
        } else {
            let mut bound = None;
            for &port in ports {
                if let Some(l) = bind_all(host, port)? {
                    bound = Some(l);
                    break;
                }
                tracing::info!(port, "fixed redirect port busy; trying the next");
            }
            bound.ok_or_else(|| LoopbackError::AllPortsBusy {
                host: host.uri_host().to_owned(),
                ports: ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
        };
        let port = listeners[0]
            .local_addr()
            .map_err(|source| LoopbackError::Bind {
                addr: host.uri_host().to_owned(),
                source,
            })?
            .port();
        let host_header = format!("{}:{port}", host.uri_host());
        Ok(Self {
            listeners,
            redirect_uri: format!("http://{host_header}{path}"),
            host_header,
            path: path.to_owned(),
            start: None,
        })
    }

    /// Redirects `{path}/start` to `location`, once, and returns that start URL: the browser is
    /// launched with it instead of `location`, which then never appears in a command line (where
    /// other users can read it in `/proc`). Only this user's browser can fetch it.
    pub fn redirect_start_to(&mut self, location: String) -> String {
        self.start = Some(location);
        format!("{}/start", self.redirect_uri.trim_end_matches('/'))
    }

    /// Serves until the first callback with `state` arrives, then passes it to `finish`, shows
    /// the page `finish` returns (through a redirect to a clean URL), and closes. Gives up after
    /// `timeout` (returns `None`).
    pub async fn wait<F, Fut, T>(
        self,
        state: &SecretString,
        timeout: Duration,
        finish: F,
    ) -> Option<T>
    where
        F: FnOnce(Callback) -> Fut,
        Fut: std::future::Future<Output = (T, Page)>,
    {
        let (tx, mut rx) = mpsc::channel::<Pending>(1);
        let shared = Arc::new(Shared {
            routes: Routes::new(&self.host_header, &self.path, state.clone()),
            start: Mutex::new(self.start),
            done: Mutex::new(None),
            done_served: Notify::new(),
            uid: crate::hardening::current_uid(),
        });
        let accept = tokio::spawn(accept_loop(self.listeners, Arc::clone(&shared), tx));
        let outcome = tokio::time::timeout(timeout, rx.recv()).await;
        let result = match outcome {
            Ok(Some((callback, reply))) => {
                let (value, page) = finish(callback).await;
                let served = shared.done_served.notified();
                tokio::pin!(served);
                served.as_mut().enable();
                if reply.send(page).is_ok() {
                    let _ = tokio::time::timeout(DONE_GRACE, served).await;
                }
                Some(value)
            }
            _ => None,
        };
        // Stop accepting and close every connection, and wait until the port is closed (the next
        // login may want it).
        accept.abort();
        let _ = accept.await;
        result
    }
}

/// What every connection of one listener shares.
struct Shared {
    routes: Routes,
    /// The page of the callback, until the browser fetches it.
    done: Mutex<Option<Page>>,
    /// Where the start URL leads, until the browser follows it.
    start: Mutex<Option<String>>,
    done_served: Notify,
    /// The only user whose connections are served.
    uid: u32,
}

/// Accepts connections in batches, admits only this user's, and serves each in its own task
/// (at most [`MAX_CONNECTIONS`]; a newer one closes the oldest). Accept errors (EMFILE) back off
/// instead of spinning.
async fn accept_loop(listeners: Vec<TcpListener>, shared: Arc<Shared>, tx: mpsc::Sender<Pending>) {
    let mut conns = JoinSet::new();
    let mut order = VecDeque::new();
    let mut refused = LogGate::new();
    let mut failed = LogGate::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        let first = accept_any(&listeners).await;
        let mut batch = match first {
            Ok(c) => {
                backoff = Duration::from_millis(10);
                vec![c]
            }
            Err(e) => {
                if let Some(n) = failed.admit() {
                    tracing::warn!(error = %e, suppressed = n, "loopback accept failed; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        // Whatever else is already waiting joins this batch.
        let mut cx = Context::from_waker(Waker::noop());
        'drain: while batch.len() < MAX_BATCH {
            let mut got = false;
            for l in &listeners {
                if let Poll::Ready(Ok((stream, peer))) = l.poll_accept(&mut cx) {
                    if let Ok(local) = stream.local_addr() {
                        batch.push((stream, peer, local));
                    }
                    got = true;
                }
            }
            if !got {
                break 'drain;
            }
        }
        let owners = if cfg!(target_os = "linux") {
            Some(super::peer::read_tables())
        } else {
            None
        };
        for (stream, peer, local) in batch {
            let mine = peer.ip().is_loopback()
                && owners
                    .as_ref()
                    .is_none_or(|o| super::peer::owner(o, local, peer) == Some(shared.uid));
            if !mine {
                if let Some(n) = refused.admit() {
                    tracing::warn!(%peer, suppressed = n, "refused a loopback connection of another user");
                }
                drop(stream);
                continue;
            }
            while let Some(Ok((id, ()))) = conns.try_join_next_with_id() {
                order.retain(|(i, _)| *i != id);
            }
            if order.len() >= MAX_CONNECTIONS
                && let Some((_, oldest)) = order.pop_front()
            {
                tokio::task::AbortHandle::abort(&oldest);
            }
            let handle = conns.spawn(serve(stream, Arc::clone(&shared), tx.clone()));
            order.push_back((handle.id(), handle));
        }
    }
}

/// Accepts on whichever listener has a connection first.
async fn accept_any(
    listeners: &[TcpListener],
) -> std::io::Result<(TcpStream, SocketAddr, SocketAddr)> {
    let (stream, peer) = std::future::poll_fn(|cx| {
        for l in listeners {
            if let Poll::Ready(r) = l.poll_accept(cx) {
                return Poll::Ready(r);
            }
        }
        Poll::Pending
    })
    .await?;
    let local = stream.local_addr()?;
    Ok((stream, peer, local))
}

/// Serves one connection; tells the login when it served the done page.
async fn serve(stream: TcpStream, shared: Arc<Shared>, tx: mpsc::Sender<Pending>) {
    let served_done = Arc::new(AtomicBool::new(false));
    let svc = {
        let (shared, served_done) = (Arc::clone(&shared), Arc::clone(&served_done));
        hyper::service::service_fn(move |req| {
            handle(
                req,
                Arc::clone(&shared),
                tx.clone(),
                Arc::clone(&served_done),
            )
        })
    };
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(16 * 1024)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
    if served_done.load(Ordering::Relaxed) {
        shared.done_served.notify_one();
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Pending>,
    served_done: Arc<AtomicBool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .map(hyper::header::HeaderValue::as_bytes);
    let params = match judge(
        req.method().as_str(),
        host,
        req.uri().path(),
        req.uri().query(),
        &shared.routes,
    ) {
        Verdict::Reject(status, title, message) => {
            if status == StatusCode::BAD_REQUEST && title == NOT_YOUR_LOGIN {
                tracing::warn!("loopback callback with a missing or wrong state; ignored");
            }
            return Ok(page(status, &error_page(title, message)));
        }
        Verdict::Start => return Ok(start(&shared)),
        Verdict::Done => return Ok(done(&shared, &served_done)),
        Verdict::Callback(params) => params,
    };
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.try_send((Callback { params }, reply_tx)).is_err() {
        return Ok(page(
            StatusCode::CONFLICT,
            &error_page(
                "Already handled",
                "This login has already received its callback.",
            ),
        ));
    }
    let p = reply_rx.await.unwrap_or_else(|_| Page {
        ok: false,
        title: "Login ended".into(),
        message: "The login ended before this callback was handled.".into(),
    });
    // The outcome is shown under a clean URL: the code and state leave the address bar.
    *shared.done.lock().unwrap_or_else(PoisonError::into_inner) = Some(p);
    let mut r = page(StatusCode::SEE_OTHER, "");
    if let Ok(location) = hyper::header::HeaderValue::from_str(&shared.routes.done_path) {
        r.headers_mut().insert(hyper::header::LOCATION, location);
    }
    Ok(r)
}

/// What the listener answers: its `Host`, its paths, the login's `state`.
pub struct Routes {
    pub host: String,
    pub path: String,
    /// Where a valid callback is redirected to, to show its page under a clean URL.
    pub done_path: String,
    /// Where the browser starts when the flow must not start from a URL on a command line.
    pub start_path: String,
    pub state: SecretString,
}

impl Routes {
    /// The routes of a listener for `host` (`127.0.0.1:PORT`) and the redirect `path`.
    #[must_use]
    pub fn new(host: &str, path: &str, state: SecretString) -> Self {
        let base = path.trim_end_matches('/');
        Self {
            host: host.to_owned(),
            path: path.to_owned(),
            done_path: format!("{base}/done"),
            start_path: format!("{base}/start"),
            state,
        }
    }
}

/// The title of the page for a callback that belongs to no login in progress.
const NOT_YOUR_LOGIN: &str = "Not your login";

/// What a request is, from its request line and `Host`.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An error page: the status, title and message.
    Reject(StatusCode, &'static str, &'static str),
    Start,
    Done,
    /// A callback with the right `state`: its query.
    Callback(HashMap<String, String>),
}

/// Judges a request (pure; fuzzed): only `GET` with the expected `Host`, on the redirect path
/// (or the start and done paths), with the login's `state` (compared in constant time).
#[must_use]
pub fn judge(
    method: &str,
    host: Option<&[u8]>,
    path: &str,
    query: Option<&str>,
    routes: &Routes,
) -> Verdict {
    if method != "GET" {
        return Verdict::Reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This address only accepts the provider's redirect.",
        );
    }
    let host_ok = host
        .and_then(|h| std::str::from_utf8(h).ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(&routes.host));
    if !host_ok {
        return Verdict::Reject(
            StatusCode::BAD_REQUEST,
            "Wrong host",
            "This request was not addressed to the login listener.",
        );
    }
    if path == routes.start_path {
        return Verdict::Start;
    }
    if path == routes.done_path {
        return Verdict::Done;
    }
    if path != routes.path {
        return Verdict::Reject(
            StatusCode::NOT_FOUND,
            "Not found",
            "This is not the login callback address.",
        );
    }
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let state_ok = params
        .get("state")
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(routes.state.expose_secret().as_bytes())));
    if !state_ok {
        return Verdict::Reject(
            StatusCode::BAD_REQUEST,
            NOT_YOUR_LOGIN,
            "This callback does not belong to the login in progress (wrong state). The login keeps waiting; finish it in the tab the agent opened.",
        );
    }
    Verdict::Callback(params)
}

/// The start URL: a redirect to where the flow begins, once.
fn start(shared: &Shared) -> Response<Full<Bytes>> {
    let location = shared
        .start
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .and_then(|l| hyper::header::HeaderValue::from_str(&l).ok());
    match location {
        Some(location) => {
            let mut r = page(StatusCode::SEE_OTHER, "");
            r.headers_mut().insert(hyper::header::LOCATION, location);
            r
        }
        None => page(
            StatusCode::NOT_FOUND,
            &error_page("Nothing to show", "This address was used already."),
        ),
    }
}

/// The clean page a valid callback redirects to: its outcome, once.
fn done(shared: &Shared, served_done: &AtomicBool) -> Response<Full<Bytes>> {
    let done = shared
        .done
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match done {
        Some(p) => {
            served_done.store(true, Ordering::Relaxed);
            let status = if p.ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            page(status, &render(&p))
        }
        None => page(
            StatusCode::NOT_FOUND,
            &error_page("Nothing to show", "This login has nothing more to show."),
        ),
    }
}

fn error_page(title: &str, message: &str) -> String {
    render(&Page {
        ok: false,
        title: title.into(),
        message: message.into(),
    })
}

/// Renders a small self-contained page (no external resources).
#[must_use]
pub fn render(p: &Page) -> String {
    let (mark, color) = if p.ok {
        ("&#10003;", "#1a7f37")
    } else {
        ("&#10007;", "#cf222e")
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>authctl: {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;background:#f6f8fa;display:flex;\
         align-items:center;justify-content:center;height:100vh;margin:0}}main{{background:#fff;\
         border:1px solid #d0d7de;border-radius:12px;padding:2em 3em;max-width:32em;text-align:center}}\
         .m{{font-size:3em;color:{color}}}h1{{font-size:1.4em}}p{{color:#57606a}}</style></head>\
         <body><main><div class=\"m\">{mark}</div><h1>{title}</h1><p>{message}</p></main></body></html>",
        title = escape(&p.title),
        message = escape(&p.message),
    )
}

fn page(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    h.insert(
        "referrer-policy",
        hyper::header::HeaderValue::from_static("no-referrer"),
    );
    r
}

/// HTML-escapes provider-supplied text.
#[must_use]
pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge_admits_only_get_with_host_path_and_state() {
        let r = Routes::new("127.0.0.1:5", "/callback", SecretString::from("s3"));
        let host = Some(&b"127.0.0.1:5"[..]);
        assert!(matches!(
            judge("GET", host, "/callback", Some("code=c&state=s3"), &r),
            Verdict::Callback(p) if p["code"] == "c"
        ));
        assert!(matches!(
            judge("POST", host, "/callback", Some("state=s3"), &r),
            Verdict::Reject(StatusCode::METHOD_NOT_ALLOWED, ..)
        ));
        assert!(matches!(
            judge(
                "GET",
                Some(b"evil.example"),
                "/callback",
                Some("state=s3"),
                &r
            ),
            Verdict::Reject(StatusCode::BAD_REQUEST, "Wrong host", _)
        ));
        assert!(matches!(
            judge("GET", None, "/callback", Some("state=s3"), &r),
            Verdict::Reject(StatusCode::BAD_REQUEST, "Wrong host", _)
        ));
        assert!(matches!(
            judge("GET", host, "/other", Some("state=s3"), &r),
            Verdict::Reject(StatusCode::NOT_FOUND, ..)
        ));
        for q in [None, Some("state=s4"), Some("state=s"), Some("code=c")] {
            assert!(matches!(
                judge("GET", host, "/callback", q, &r),
                Verdict::Reject(StatusCode::BAD_REQUEST, NOT_YOUR_LOGIN, _)
            ));
        }
        assert_eq!(
            judge("GET", host, "/callback/done", None, &r),
            Verdict::Done
        );
        assert_eq!(
            judge("GET", host, "/callback/start", None, &r),
            Verdict::Start
        );
    }

    #[test]
    fn escapes_provider_text() {
        assert_eq!(escape("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
    }

    #[tokio::test]
    async fn binds_os_assigned_port_on_loopback() {
        let l = Loopback::bind(RedirectHost::Ipv4, &[], "/callback").unwrap();
        assert!(l.redirect_uri.starts_with("http://127.0.0.1:"));
        assert!(l.redirect_uri.ends_with("/callback"));
    }

    #[tokio::test]
    async fn busy_fixed_port_falls_to_the_next_and_all_busy_is_an_error() {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        let e = Loopback::bind(RedirectHost::Ipv4, &[pa, pb], "/cb")
            .err()
            .unwrap();
        assert!(e.to_string().contains(&pa.to_string()), "{e}");
        drop(b);
        let l = Loopback::bind(RedirectHost::Ipv4, &[pa, pb], "/cb").unwrap();
        assert_eq!(l.redirect_uri, format!("http://127.0.0.1:{pb}/cb"));
    }
}
