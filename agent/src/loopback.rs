//! The one-shot loopback redirect listener of RFC 8252 §7.3.
//!
//! It binds a loopback address only (an OS-assigned port, or the first free port of a configured
//! list), serves only `GET` on the redirect path with the expected `Host`, limits request size, and
//! hands the first callback that carries the right `state` to the login. Anything else is answered
//! with an error page and the login keeps waiting. It never echoes the code.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::config::RedirectHost;

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
    listener: TcpListener,
    pub redirect_uri: String,
    host_header: String,
    path: String,
}

impl Loopback {
    /// Binds `host` on an OS-assigned port, or on the first free port of `ports`.
    ///
    /// # Errors
    /// The address cannot be bound, or every fixed port is busy.
    pub async fn bind(
        host: RedirectHost,
        ports: &[u16],
        path: &str,
    ) -> Result<Self, LoopbackError> {
        let ip = host.bind_ip();
        let listener = if ports.is_empty() {
            let addr = SocketAddr::new(ip, 0);
            TcpListener::bind(addr)
                .await
                .map_err(|source| LoopbackError::Bind {
                    addr: addr.to_string(),
                    source,
                })?
        } else {
            let mut bound = None;
            for &port in ports {
                match TcpListener::bind(SocketAddr::new(ip, port)).await {
                    Ok(l) => {
                        bound = Some(l);
                        break;
                    }
                    Err(e) => {
                        tracing::info!(port, error = %e, "fixed redirect port busy; trying the next")
                    }
                }
            }
            bound.ok_or_else(|| LoopbackError::AllPortsBusy {
                host: ip.to_string(),
                ports: ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
        };
        let port = listener
            .local_addr()
            .map_err(|source| LoopbackError::Bind {
                addr: ip.to_string(),
                source,
            })?
            .port();
        let host_header = format!("{}:{port}", host.uri_host());
        Ok(Self {
            listener,
            redirect_uri: format!("http://{host_header}{path}"),
            host_header,
            path: path.to_owned(),
        })
    }

    /// Serves until the first callback with `state` arrives, then passes it to `finish`, shows
    /// the page `finish` returns, and closes. Gives up after `timeout` (returns `None`).
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
        let expected = Expected {
            host: self.host_header.clone(),
            path: self.path.clone(),
            state: state.clone(),
        };
        let listener = self.listener;
        let accept = tokio::spawn(async move {
            let expected = std::sync::Arc::new(expected);
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                if !peer.ip().is_loopback() {
                    continue; // cannot happen on a loopback bind; belt and braces
                }
                let tx = tx.clone();
                let expected = std::sync::Arc::clone(&expected);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(req, std::sync::Arc::clone(&expected), tx.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .max_buf_size(16 * 1024)
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        let outcome = tokio::time::timeout(timeout, rx.recv()).await;
        let result = match outcome {
            Ok(Some((callback, reply))) => {
                let (value, page) = finish(callback).await;
                let _ = reply.send(page);
                Some(value)
            }
            _ => None,
        };
        // Stop accepting, and wait until the port is closed (the next login may want it):
        // connections already accepted, such as the one showing the page, run in their own tasks.
        accept.abort();
        let _ = accept.await;
        result
    }
}

struct Expected {
    host: String,
    path: String,
    state: SecretString,
}

async fn handle(
    req: Request<Incoming>,
    expected: std::sync::Arc<Expected>,
    tx: mpsc::Sender<Pending>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET {
        return Ok(page(
            StatusCode::METHOD_NOT_ALLOWED,
            &error_page(
                "Method not allowed",
                "This address only accepts the provider's redirect.",
            ),
        ));
    }
    let host_ok = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case(&expected.host));
    if !host_ok {
        return Ok(page(
            StatusCode::BAD_REQUEST,
            &error_page(
                "Wrong host",
                "This request was not addressed to the login listener.",
            ),
        ));
    }
    if req.uri().path() != expected.path {
        return Ok(page(
            StatusCode::NOT_FOUND,
            &error_page("Not found", "This is not the login callback address."),
        ));
    }
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let state_ok = params.get("state").is_some_and(|s| {
        bool::from(
            s.as_bytes()
                .ct_eq(expected.state.expose_secret().as_bytes()),
        )
    });
    if !state_ok {
        tracing::warn!("loopback callback with a missing or wrong state; ignored");
        return Ok(page(
            StatusCode::BAD_REQUEST,
            &error_page(
                "Not your login",
                "This callback does not belong to the login in progress (wrong state). The login keeps waiting; finish it in the tab the agent opened.",
            ),
        ));
    }
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
    let status = if p.ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(page(status, &render(&p)))
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
    fn escapes_provider_text() {
        assert_eq!(escape("<b>\"x\"&'"), "&lt;b&gt;&quot;x&quot;&amp;&#39;");
    }

    #[tokio::test]
    async fn binds_os_assigned_port_on_loopback() {
        let l = Loopback::bind(RedirectHost::Ipv4, &[], "/callback")
            .await
            .unwrap();
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
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains(&pa.to_string()), "{e}");
        drop(b);
        let l = Loopback::bind(RedirectHost::Ipv4, &[pa, pb], "/cb")
            .await
            .unwrap();
        assert_eq!(l.redirect_uri, format!("http://127.0.0.1:{pb}/cb"));
    }
}
