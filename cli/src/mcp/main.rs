//! `authctl-mcp`: the stdio bridge behind `authctl mcp URL`, for MCP hosts. The host starts it
//! as a local MCP server and speaks JSON-RPC on its stdin and stdout (one message a line, MCP's
//! stdio transport); the bridge forwards each message to the remote server's Streamable HTTP
//! endpoint with a bearer token from the agent, and writes every response and server-sent event
//! back on stdout. The host never sees a token. stdout carries protocol messages only;
//! diagnostics go to stderr. `authctl mcp` parses the arguments and replaces itself with this
//! program, which carries the HTTP and TLS stack no other command needs.

#![expect(
    clippy::print_stderr,
    reason = "diagnostics of a stdio bridge go to stderr"
)]

mod jsonrpc;
mod tokens;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use authctl_cli::bridge::{CliError, McpArgs, PROTOCOL_VERSION, SESSION, exit};
use authctl_client::secrecy::{ExposeSecret, SecretString};
use authctl_proto::challenge::{Challenge, parse_bearer_challenge};
use authctl_proto::sse;
use clap::Parser;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use self::jsonrpc::MAX_MESSAGE;
use self::tokens::{NoToken, Tokens};

/// Messages forwarded at once; the next line waits for a free slot.
const MAX_IN_FLIGHT: usize = 64;
/// How long requests still running at EOF may take to finish before the bridge ends anyway.
const DRAIN: Duration = Duration::from_secs(10);

/// Bridge an MCP host (stdio) to a remote MCP server (Streamable HTTP), with the agent's tokens
/// (`authctl mcp` runs this program).
#[derive(Parser)]
#[command(name = "authctl mcp", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    args: McpArgs,
}

fn main() -> ExitCode {
    authctl_cli::block_on(run(Cli::parse().args))
}

async fn run(a: McpArgs) -> Result<(), CliError> {
    let url = reqwest::Url::parse(&a.url)
        .map_err(|e| CliError::usage(format!("`{}` is not a URL: {e}", a.url)))?;
    if !secure(&url) {
        return Err(CliError::usage(format!(
            "refusing to send tokens to {url}: use https (plain http only on a loopback address)"
        )));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| CliError::new(exit::FAILURE, format!("no HTTP client: {e}")))?;
    let (out_tx, out_rx) = mpsc::channel::<String>(256);
    let writer = std::thread::spawn(move || write_out(out_rx));
    let (in_tx, mut stdin) = mpsc::channel::<Line>(1);
    std::thread::spawn(move || read_in(&in_tx));
    let bridge = Arc::new(Bridge {
        http,
        extra: a.headers.into_iter().collect(),
        tokens: Tokens::new(url.as_str(), a.account),
        url,
        session: Mutex::new(Session::default()),
        out: out_tx,
    });
    let mut tasks = JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut events: Option<tokio::task::JoinHandle<()>> = None;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let line = tokio::select! {
            l = stdin.recv() => l,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        };
        let Some(line) = line else { break };
        // Finished forwards leave their results in the set until taken.
        while tasks.try_join_next().is_some() {}
        let Some(msg) = bridge.message(line).await else {
            continue;
        };
        let method = jsonrpc::method(&msg).map(str::to_owned);
        match method.as_deref() {
            // The session starts here: later messages need its id and version, so they wait.
            Some("initialize") => bridge.forward(msg).await,
            Some("notifications/initialized") => {
                bridge.forward(msg).await;
                if events.is_none() {
                    events = Some(tokio::spawn(Arc::clone(&bridge).listen()));
                }
            }
            _ => {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                let b = Arc::clone(&bridge);
                tasks.spawn(async move {
                    b.forward(msg).await;
                    drop(slot);
                });
            }
        }
    }
    // EOF (or a signal): let what runs finish, then end the session.
    if tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        eprintln!("authctl mcp: stopped requests still running after {DRAIN:?}");
    }
    tasks.shutdown().await;
    if let Some(e) = events {
        e.abort();
        let _ = e.await;
    }
    bridge.end_session().await;
    // The last sender goes with the bridge: the writer drains what is queued, then ends.
    drop(bridge);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    Ok(())
}

/// Plain http only to a loopback address: a bearer token never crosses a network in clear.
fn secure(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
        }),
        _ => false,
    }
}

enum Line {
    Text(Vec<u8>),
    TooLong,
}

/// The next line of `r` without its ending, at most [`MAX_MESSAGE`] bytes (a longer one is
/// consumed and reported); `None` at EOF.
fn read_line(r: &mut impl BufRead) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((!line.is_empty() || too_long).then_some(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            }));
        }
        let (part, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long && line.len() + part.len() <= MAX_MESSAGE {
            line.extend_from_slice(part);
        } else {
            too_long = true;
            line = Vec::new();
        }
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            }));
        }
    }
}

/// Reads stdin on a thread of its own (a blocking read cannot be cancelled); the channel closes at
/// EOF or on a read error.
fn read_in(tx: &mpsc::Sender<Line>) {
    let mut stdin = std::io::stdin().lock();
    loop {
        match read_line(&mut stdin) {
            Ok(Some(line)) => {
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                eprintln!("authctl mcp: reading stdin: {e}");
                return;
            }
        }
    }
}

/// The only writer of stdout: one message a line, in the order they were emitted.
fn write_out(mut rx: mpsc::Receiver<String>) {
    let mut out = std::io::stdout();
    while let Some(mut line) = rx.blocking_recv() {
        line.push('\n');
        if out.write_all(line.as_bytes()).is_err() || out.flush().is_err() {
            // The host closed our stdout: nobody is listening any more.
            std::process::exit(0);
        }
    }
}

#[derive(Default)]
struct Session {
    id: Option<HeaderValue>,
    version: Option<HeaderValue>,
}

/// What went wrong forwarding one message.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    NoToken(#[from] NoToken),
    #[error("the MCP server at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the MCP server at {url} refused the token after a refresh (HTTP {status}{detail})")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("the MCP server at {url} still needs scope `{scope}` after a login that asked for it")]
    Scope { url: String, scope: String },
    #[error("the MCP server at {url} answered HTTP {status}{detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("the MCP server at {url} sent {what}")]
    Bad { url: String, what: String },
}

impl Failure {
    fn code(&self) -> i64 {
        match self {
            Self::NoToken(_) => jsonrpc::NO_TOKEN,
            Self::Unreachable { .. } => jsonrpc::UNREACHABLE,
            Self::Refused { .. } | Self::Scope { .. } => jsonrpc::REFUSED,
            Self::Status { .. } | Self::Bad { .. } => jsonrpc::BAD_ANSWER,
        }
    }
}

struct Bridge {
    http: reqwest::Client,
    url: reqwest::Url,
    extra: HeaderMap,
    tokens: Tokens,
    session: Mutex<Session>,
    out: mpsc::Sender<String>,
}

impl Bridge {
    /// The JSON-RPC message on a line of stdin; a line that is not one is answered with a parse
    /// error (a blank line is skipped).
    async fn message(&self, line: Line) -> Option<Value> {
        let problem = match line {
            Line::TooLong => format!("a message longer than {MAX_MESSAGE} bytes was dropped"),
            Line::Text(t) if t.iter().all(u8::is_ascii_whitespace) => return None,
            Line::Text(t) => match serde_json::from_slice(&t) {
                Ok(v) => return Some(v),
                Err(e) => format!("stdin carried a line that is not JSON ({e})"),
            },
        };
        eprintln!("authctl mcp: {problem}");
        let reply = jsonrpc::error(&Value::Null, jsonrpc::PARSE_ERROR, "parse error");
        self.emit(reply).await;
        None
    }

    /// Queues one line for stdout (the writer ends only when stdout is gone, and the process
    /// with it).
    async fn emit(&self, line: String) {
        let _ = self.out.send(line).await;
    }

    /// Forwards one message; every request in it that gets no answer gets an error response.
    async fn forward(&self, msg: Value) {
        let mut pending = jsonrpc::request_ids(&msg);
        let init_id = (jsonrpc::method(&msg) == Some("initialize"))
            .then(|| msg.get("id").cloned())
            .flatten();
        let result = self.post(&msg, init_id.as_ref(), &mut pending).await;
        let failure = match result {
            Ok(()) if pending.is_empty() => return,
            Ok(()) => Failure::Bad {
                url: self.url.to_string(),
                what: "no answer before it closed the stream".into(),
            },
            Err(f) => f,
        };
        eprintln!("authctl mcp: {failure}");
        for id in &pending {
            self.emit(jsonrpc::error(
                id,
                failure.code(),
                &format!("authctl: {failure}"),
            ))
            .await;
        }
    }

    /// A request to the server with the token and the session's headers.
    fn request(&self, method: Method, token: &SecretString) -> reqwest::RequestBuilder {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer -"));
        bearer.set_sensitive(true);
        let mut rb = self
            .http
            .request(method, self.url.clone())
            .headers(self.extra.clone())
            .header(header::AUTHORIZATION, bearer);
        let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = &session.id {
            rb = rb.header(SESSION, id.clone());
        }
        if let Some(v) = &session.version {
            rb = rb.header(PROTOCOL_VERSION, v.clone());
        }
        rb
    }

    /// Sends `build`'s request with a token. A `401` gets one refreshed token and one retry; an
    /// `insufficient_scope` naming the scope gets one step-up login and one retry. Never more.
    async fn send_authorized(
        &self,
        build: impl Fn(&SecretString) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Failure> {
        let mut rejected: Option<SecretString> = None;
        let (mut refreshed, mut stepped_up) = (false, false);
        loop {
            let token = self.tokens.get(rejected.as_ref(), true).await?;
            let resp = build(&token)
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            let status = resp.status();
            if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
                return Ok(resp);
            }
            let challenge = challenge(&resp).unwrap_or_default();
            if challenge.is_insufficient_scope()
                && let Some(scope) = challenge.scope.clone()
            {
                // A refresh gives no new scope: the login has to ask for it.
                if stepped_up {
                    return Err(Failure::Scope {
                        url: self.url.to_string(),
                        scope,
                    });
                }
                eprintln!("authctl mcp: the server needs scope `{scope}`; logging in again");
                self.tokens.step_up(&scope).await?;
                stepped_up = true;
                rejected = None;
                continue;
            }
            if status == StatusCode::FORBIDDEN {
                return Ok(resp);
            }
            if refreshed {
                let detail = challenge
                    .error
                    .map(|e| format!(", {}", clean(&e)))
                    .unwrap_or_default();
                return Err(Failure::Refused {
                    url: self.url.to_string(),
                    status: status.as_u16(),
                    detail,
                });
            }
            eprintln!(
                "authctl mcp: the server refused the token; asking the agent for a fresh one"
            );
            rejected = Some(token);
            refreshed = true;
        }
    }

    /// POSTs `msg` and relays the answer: a JSON body, or an event stream until it ends.
    async fn post(
        &self,
        msg: &Value,
        init_id: Option<&Value>,
        pending: &mut Vec<Value>,
    ) -> Result<(), Failure> {
        let body = msg.to_string();
        let resp = self
            .send_authorized(|t| {
                self.request(Method::POST, t)
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(header::ACCEPT, "application/json, text/event-stream")
                    .body(body.clone())
            })
            .await?;
        let status = resp.status();
        if init_id.is_some()
            && let Some(id) = resp.headers().get(SESSION)
        {
            self.session
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .id = Some(id.clone());
        }
        if status == StatusCode::ACCEPTED {
            return Ok(());
        }
        if !status.is_success() {
            return Err(self.status_failure(resp).await);
        }
        if is_event_stream(&resp) {
            let until_answered = !pending.is_empty();
            return self.relay(resp, init_id, pending, until_answered).await;
        }
        let bytes = self.body(resp).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let answer: Value = serde_json::from_slice(&bytes).map_err(|e| Failure::Bad {
            url: self.url.to_string(),
            what: format!("a body that is not JSON ({e})"),
        })?;
        self.deliver(answer, init_id, pending).await;
        Ok(())
    }

    /// Writes one message from the server to the host, noting what it answers.
    async fn deliver(&self, msg: Value, init_id: Option<&Value>, pending: &mut Vec<Value>) {
        let answered = jsonrpc::answered_ids(&msg);
        pending.retain(|id| !answered.contains(id));
        if let Some(init) = init_id
            && let Some(v) = jsonrpc::negotiated_version(&msg, init)
            && let Ok(v) = HeaderValue::from_str(&v)
        {
            self.session
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .version = Some(v);
        }
        self.emit(msg.to_string()).await;
    }

    /// Relays a `text/event-stream` response's messages until it ends.
    async fn relay(
        &self,
        mut resp: reqwest::Response,
        init_id: Option<&Value>,
        pending: &mut Vec<Value>,
        until_answered: bool,
    ) -> Result<(), Failure> {
        let mut parser = sse::Parser::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
            let events = parser.feed(&chunk).map_err(|e| Failure::Bad {
                url: self.url.to_string(),
                what: format!("a broken event stream ({e})"),
            })?;
            for ev in events {
                if !ev.is_message() || ev.data.is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&ev.data) {
                    Ok(m) => self.deliver(m, init_id, pending).await,
                    Err(e) => eprintln!("authctl mcp: skipped an event that is not JSON ({e})"),
                }
            }
            if until_answered && pending.is_empty() {
                // Every request is answered: a server that keeps the stream open holds nothing
                // more for them (and `initialize` must not hold up the session).
                break;
            }
        }
        Ok(())
    }

    /// The server's own stream (GET), for requests and notifications outside any request, when
    /// the server offers one. Ends when the server ends it; the host's requests go on without.
    async fn listen(self: Arc<Self>) {
        let resp = self
            .send_authorized(|t| {
                self.request(Method::GET, t)
                    .header(header::ACCEPT, "text/event-stream")
            })
            .await;
        let resp = match resp {
            Ok(r) if r.status().is_success() && is_event_stream(&r) => r,
            // 405: the server offers no stream of its own.
            Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => return,
            Ok(r) => {
                eprintln!(
                    "authctl mcp: the server's event stream is unavailable: {}",
                    self.status_failure(r).await
                );
                return;
            }
            Err(e) => {
                eprintln!("authctl mcp: the server's event stream is unavailable: {e}");
                return;
            }
        };
        if let Err(e) = self.relay(resp, None, &mut Vec::new(), false).await {
            eprintln!("authctl mcp: the server's event stream ended: {e}");
        }
    }

    /// Ends the session at the server (`DELETE`), if it gave one.
    async fn end_session(&self) {
        if self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id
            .is_none()
        {
            return;
        }
        // Ending a session is no reason to open a browser.
        let delete = async {
            let token = self.tokens.get(None, false).await.ok()?;
            self.request(Method::DELETE, &token).send().await.ok()
        };
        match tokio::time::timeout(Duration::from_secs(5), delete).await {
            Ok(Some(r))
                if r.status().is_success() || r.status() == StatusCode::METHOD_NOT_ALLOWED => {}
            Ok(Some(r)) => eprintln!(
                "authctl mcp: ending the session: HTTP {}",
                r.status().as_u16()
            ),
            Ok(None) | Err(_) => eprintln!("authctl mcp: could not end the session at the server"),
        }
    }

    /// A JSON body, at most [`MAX_MESSAGE`] bytes.
    async fn body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
            if out.len() + chunk.len() > MAX_MESSAGE {
                return Err(Failure::Bad {
                    url: self.url.to_string(),
                    what: format!("a body over {MAX_MESSAGE} bytes"),
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    async fn status_failure(&self, resp: reqwest::Response) -> Failure {
        let status = resp.status().as_u16();
        let body = self.body(resp).await.unwrap_or_default();
        let text = clean(&String::from_utf8_lossy(&body[..body.len().min(300)]));
        Failure::Status {
            url: self.url.to_string(),
            status,
            detail: if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            },
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> Failure {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        Failure::Unreachable {
            url: self.url.to_string(),
            reason,
        }
    }
}

fn challenge(resp: &reqwest::Response) -> Option<Challenge> {
    resp.headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_bearer_challenge)
}

fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Server text for a message: control characters dropped, one line.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_only_over_https_or_to_loopback() {
        let ok = |u: &str| secure(&reqwest::Url::parse(u).unwrap());
        assert!(ok("https://mcp.example.com/mcp"));
        assert!(ok("http://127.0.0.1:8080/mcp"));
        assert!(ok("http://[::1]:8080/mcp"));
        assert!(ok("http://localhost/mcp"));
        assert!(!ok("http://mcp.example.com/mcp"));
        assert!(!ok("ftp://127.0.0.1/mcp"));
    }

    #[test]
    fn lines_are_read_whole_and_an_overlong_one_is_dropped() {
        let big = "x".repeat(MAX_MESSAGE + 1);
        let input = format!("{{\"a\":1}}\r\n{big}\nlast");
        let mut r = std::io::BufReader::with_capacity(7, input.as_bytes());
        let mut got = Vec::new();
        while let Some(l) = read_line(&mut r).unwrap() {
            got.push(match l {
                Line::Text(t) => String::from_utf8(t).unwrap(),
                Line::TooLong => "<too long>".into(),
            });
        }
        assert_eq!(got, ["{\"a\":1}\r", "<too long>", "last"]);
    }
}
