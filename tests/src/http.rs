//! The one raw HTTP/1.1 client of the tests and the benchmarks: a request on a new TCP connection
//! (`Connection: close`), the whole answer read to the end and parsed.
//!
//! Raw on purpose: the tests speak to listeners that must be probed with requests a normal client
//! would not send (a forged `Host`, a wrong method), and the benchmark's floor row times one
//! connection and one request with nothing else in the way.
//!
//! ```no_run
//! use authctl_tests::http::Request;
//! let r = Request::new("GET", "http://127.0.0.1:8080/callback?state=x")
//!     .header("Accept", "text/html")
//!     .send()?;
//! assert_eq!(r.status, 400);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Connect, read and write timeout unless [`Request::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 request, built step by step and sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    /// Where to connect: `host:port` (`[::1]:port` for IPv6).
    addr: String,
    /// `Host` header value: the URL's authority unless overridden.
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
}

impl Request {
    /// A request for an `http://` URL. The path defaults to `/` and the port to 80. The host
    /// `localhost` is dialled as `127.0.0.1` (the `Host` header still says `localhost`), the
    /// address family every loopback listener of the agent binds first.
    ///
    /// # Panics
    /// `url` is not an `http://` URL (a mistake in the test, not a condition to test).
    #[must_use]
    #[track_caller]
    pub fn new(method: &str, url: &str) -> Self {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
        let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.contains(']'));
        let addr = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addr = match addr.strip_prefix("localhost:") {
            Some(port) => format!("127.0.0.1:{port}"),
            None => addr,
        };
        Self::build(method, addr, authority.to_owned(), path)
    }

    /// A request to `127.0.0.1:port` (with `Host: 127.0.0.1:port`).
    #[must_use]
    pub fn local(method: &str, port: u16, path: &str) -> Self {
        let authority = format!("127.0.0.1:{port}");
        Self::build(method, authority.clone(), authority, path.to_owned())
    }

    fn build(method: &str, addr: String, host: String, path: String) -> Self {
        Self {
            method: method.to_owned(),
            addr,
            host,
            path,
            headers: Vec::new(),
            body: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds a header (sent in the order added, after `Host` and `Connection`).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body, sent with its `Content-Length`.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sends this `Host` header instead of the URL's authority (to test a listener's check).
    #[must_use]
    pub fn host(mut self, host: &str) -> Self {
        host.clone_into(&mut self.host);
        self
    }

    /// The connect, read and write timeout (each; default [`DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bytes put on the wire.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.method, self.path, self.host
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = &self.body {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_deref().unwrap_or_default());
        out
    }

    /// Connects, sends, reads the answer until the server closes, and parses it.
    ///
    /// # Errors
    /// The I/O error when the connection fails (e.g. `ConnectionRefused` once a listener has
    /// closed) or times out; `InvalidData` when the answer is no HTTP/1.1 response.
    pub fn send(&self) -> io::Result<Response> {
        let mut stream = self.connect()?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        stream.write_all(&self.to_bytes())?;
        stream.flush()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Response::parse(&raw)
    }

    /// The first address that accepts, else the last error.
    fn connect(&self) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in self.addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{} resolves to no address", self.addr),
            )
        }))
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked, as text (invalid UTF-8 replaced).
    pub body: String,
    /// Trailer fields of a chunked body, as `headers`.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// The body is not JSON (with the body in the message).
    #[must_use]
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Parses a whole response, as read up to the server's close. The body is framed by
    /// `Transfer-Encoding: chunked` (RFC 9112 §7.1: extensions ignored, trailers kept), else by
    /// `Content-Length` (bytes after it are ignored), else by the close; a 1xx, 204 or 304 has
    /// none.
    ///
    /// # Errors
    /// `InvalidData`: no end of the header section, a bad status line or header, a bad or short
    /// chunked body, a body shorter than its `Content-Length`.
    pub fn parse(raw: &[u8]) -> io::Result<Self> {
        let split = find(raw, b"\r\n\r\n").ok_or_else(|| bad("no end of the header section"))?;
        let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("header not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = parse_status_line(status_line)
            .ok_or_else(|| bad(&format!("bad status line {status_line:?}")))?;
        let headers = lines.map(parse_field).collect::<io::Result<Vec<_>>>()?;
        let rest = &raw[split + 4..];

        let field = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let chunked = field("transfer-encoding").is_some_and(|v| {
            v.rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        let (body, trailers) = if (100..200).contains(&status) || matches!(status, 204 | 304) {
            (Vec::new(), Vec::new())
        } else if chunked {
            dechunk(rest)?
        } else if let Some(len) = field("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(&format!("bad Content-Length {len:?}")))?;
            let body = rest.get(..len).ok_or_else(|| {
                bad(&format!(
                    "body of {} bytes, Content-Length {len}",
                    rest.len()
                ))
            })?;
            (body.to_vec(), Vec::new())
        } else {
            (rest.to_vec(), Vec::new())
        };
        Ok(Self {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            trailers,
        })
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `HTTP/1.x SSS[ reason]` → `SSS`.
fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    (version.starts_with("HTTP/1.") && code.len() == 3)
        .then(|| code.parse().ok())
        .flatten()
}

/// `Name: value` → `(name lower-cased, value trimmed)`.
fn parse_field(line: &str) -> io::Result<(String, String)> {
    let (k, v) = line
        .split_once(':')
        .filter(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace))
        .ok_or_else(|| bad(&format!("bad header line {line:?}")))?;
    Ok((k.to_ascii_lowercase(), v.trim().to_owned()))
}

type Fields = Vec<(String, String)>;

/// A chunked body (RFC 9112 §7.1): `(data, trailer fields)`.
fn dechunk(mut data: &[u8]) -> io::Result<(Vec<u8>, Fields)> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or_else(|| bad("chunk size line not ended"))?;
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| bad("chunk size not UTF-8"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| bad(&format!("bad chunk size line {line:?}")))?;
        data = &data[eol + 2..];
        if size == 0 {
            break;
        }
        let chunk = data
            .get(..size)
            .ok_or_else(|| bad(&format!("chunk of {size} bytes cut short")))?;
        out.extend_from_slice(chunk);
        data = data
            .get(size..)
            .and_then(|d| d.strip_prefix(b"\r\n"))
            .ok_or_else(|| bad("chunk data not followed by CRLF"))?;
    }
    let mut trailers = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or_else(|| bad("trailer section not ended"))?;
        if eol == 0 {
            return Ok((out, trailers));
        }
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| bad("trailer not UTF-8"))?;
        trailers.push(parse_field(line)?);
        data = &data[eol + 2..];
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    fn parse(raw: &str) -> io::Result<Response> {
        Response::parse(raw.as_bytes())
    }

    fn kind(raw: &str) -> ErrorKind {
        parse(raw).expect_err("must not parse").kind()
    }

    #[test]
    fn status_line() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\n\r\n").unwrap().status, 200);
        assert_eq!(
            parse("HTTP/1.0 404 Not Found Here\r\n\r\n").unwrap().status,
            404
        );
        // The reason phrase may be empty or absent.
        assert_eq!(parse("HTTP/1.1 303 \r\n\r\n").unwrap().status, 303);
        assert_eq!(parse("HTTP/1.1 400\r\n\r\n").unwrap().status, 400);
        for bad in [
            "HTTP/1.1\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 OK 200\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "",
        ] {
            assert_eq!(kind(bad), ErrorKind::InvalidData, "{bad:?}");
        }
    }

    #[test]
    fn headers_lower_cased_trimmed_in_order() {
        let r = parse(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate:  Bearer scope=\"a:b\" \r\n\
             Set-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            r.headers,
            [
                ("www-authenticate", "Bearer scope=\"a:b\""),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("x-empty", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(r.header("Set-Cookie"), Some("a=1"));
        assert_eq!(r.header("www-AUTHENTICATE"), Some("Bearer scope=\"a:b\""));
        assert_eq!(r.header("location"), None);
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nno colon\r\n\r\n"),
            ErrorKind::InvalidData
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
            ErrorKind::InvalidData
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nHost: cut"),
            ErrorKind::InvalidData,
            "no end of the header section"
        );
    }

    #[test]
    fn content_length_frames_the_body() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(r.body, "hello");
        // Bytes past the length are not the body.
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhello").unwrap();
        assert_eq!(r.body, "he");
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(r.body, "");
        // A body cut short is an error, not a shorter body.
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"a\":"),
            ErrorKind::InvalidData
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            ErrorKind::InvalidData
        );
    }

    #[test]
    fn without_framing_the_body_runs_to_the_close() {
        let r = parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall\r\nof it\r\n\r\n").unwrap();
        assert_eq!(r.body, "all\r\nof it\r\n\r\n");
        assert_eq!(r.header("connection"), Some("close"));
    }

    #[test]
    fn statuses_without_a_body() {
        for status in [204, 304] {
            let r = parse(&format!("HTTP/1.1 {status} X\r\nContent-Length: 3\r\n\r\n")).unwrap();
            assert_eq!((r.status, r.body.as_str()), (status, ""));
        }
    }

    #[test]
    fn chunked_bodies() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, "abcde");
        assert!(r.trailers.is_empty());
        // Hex sizes in either case, CRLF inside the data, and Content-Length ignored.
        let r = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\ntransfer-encoding: Chunked\r\n\r\n\
             A\r\n0123\r\n5678\r\na\r\nabcdefghij\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, "0123\r\n5678abcdefghij");
        // Only a final `chunked` coding frames the body.
        let r = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(r.unwrap().body, "");
    }

    #[test]
    fn chunk_extensions_are_ignored_and_trailers_kept() {
        let r = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             4;name=value;other\r\nwiki\r\n5 ; ext=\"q\"\r\npedia\r\n0;last\r\n\
             Expires: never\r\nX-Sum: 9\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, "wikipedia");
        assert_eq!(
            r.trailers,
            [("expires", "never"), ("x-sum", "9")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(r.header("expires"), None, "trailers are not headers");
    }

    #[test]
    fn broken_chunked_bodies_are_errors() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            "",                      // nothing
            "3\r\nabc\r\n",          // no last chunk
            "5\r\nabc\r\n0\r\n\r\n", // a chunk cut short
            "3\r\nabcX\r\n0\r\n\r\n",
            "zz\r\nabc\r\n0\r\n\r\n", // not hex
            "3\r\nabc\r\n0\r\n",      // no end of the trailer section
            "0\r\nbroken trailer\r\n\r\n",
        ] {
            assert_eq!(
                kind(&format!("{head}{body}")),
                ErrorKind::InvalidData,
                "{body:?}"
            );
        }
    }

    #[test]
    fn json_helper() {
        let r = parse("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n").unwrap();
        assert_eq!(r.json()["a"], 1);
        let r = parse("HTTP/1.1 200 OK\r\n\r\nnot json").unwrap();
        let panic = std::panic::catch_unwind(|| r.json()).expect_err("must panic");
        let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("not json"), "{text}");
    }

    #[test]
    fn requests_on_the_wire() {
        let r = Request::new("POST", "http://127.0.0.1:8080/__test/faults?x=1")
            .header("Content-Type", "application/json")
            .body("{}");
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "POST /__test/faults?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        let r = Request::new("GET", "http://localhost:9/cb").host("evil.example:80");
        assert_eq!(r.addr, "127.0.0.1:9");
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "GET /cb HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n"
        );
        let r = Request::new("GET", "http://localhost:9");
        assert_eq!((r.host.as_str(), r.path.as_str()), ("localhost:9", "/"));
        let r = Request::new("GET", "http://[::1]:7/callback?state=s");
        assert_eq!(
            (r.addr.as_str(), r.host.as_str(), r.path.as_str()),
            ("[::1]:7", "[::1]:7", "/callback?state=s")
        );
        let r = Request::new("GET", "http://example.test?q");
        assert_eq!(
            (r.addr.as_str(), r.path.as_str()),
            ("example.test:80", "/?q")
        );
        let r = Request::new("GET", "http://[::1]/x");
        assert_eq!(r.addr, "[::1]:80");
        let r = Request::local("GET", 5, "/.well-known/openid-configuration");
        assert_eq!(
            (r.addr.as_str(), r.host.as_str()),
            ("127.0.0.1:5", "127.0.0.1:5")
        );
    }

    #[test]
    fn a_round_trip_over_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while find(&req, b"\r\n\r\nping").is_none() {
                let n = s.read(&mut buf).unwrap();
                assert_ne!(n, 0, "client closed early");
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(
                b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\npo\r\n2\r\nng\r\n0\r\n\r\n",
            )
            .unwrap();
            String::from_utf8(req).unwrap()
        });
        let r = Request::local("PUT", port, "/x")
            .body("ping")
            .timeout(Duration::from_secs(5))
            .send()
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "pong"));
        let req = server.join().unwrap();
        assert!(
            req.starts_with(&format!("PUT /x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n")),
            "{req}"
        );
    }

    #[test]
    fn a_closed_port_is_the_io_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = Request::local("GET", port, "/").send().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    }

    #[test]
    fn a_server_that_closes_at_once_is_no_response() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let e = Request::local("GET", port, "/").send().unwrap_err();
        server.join().unwrap();
        // The client's request may meet a reset before it reads the close.
        assert!(
            matches!(
                e.kind(),
                ErrorKind::InvalidData | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
            ),
            "{e}"
        );
    }
}
