//! A gRPC client written at the HTTP/2 frame level with `h2`'s own codec, for requests that no
//! high-level client can send: an `:authority` that is the raw socket path (as grpc-java and
//! grpc-swift send it, and which `http::uri::Authority` cannot even represent), or none at all.
//!
//! It speaks just enough HTTP/2 for the tests: one connection, client streams opened one after
//! another, every frame read into per-stream buffers, SETTINGS and PING acknowledged, and flow
//! control opened wide once so that no WINDOW_UPDATE is ever needed.

use std::collections::HashMap;
use std::path::Path;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use h2::Codec;
use h2::frame::{self, BytesStr, Frame, Pseudo, StreamId};
use http::{HeaderMap, HeaderValue, Method};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// The window every connection and stream starts with (RFC 9113 §6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

/// What `:authority` the requests carry.
#[derive(Debug, Clone)]
pub enum Authority {
    /// This exact value, unvalidated (e.g. `/run/user/1000/authctl/agent.sock`).
    Raw(String),
    /// No `:authority` pseudo-header at all.
    Absent,
}

/// How a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Trailers with `grpc-status` (and `grpc-message`).
    Status(u32, String),
    /// `RST_STREAM` with this HTTP/2 error code (1 is `PROTOCOL_ERROR`).
    Reset(u32),
}

#[derive(Default)]
struct StreamState {
    headers: bool,
    data: BytesMut,
    end: Option<Outcome>,
}

/// One HTTP/2 connection to a gRPC server on a Unix socket.
pub struct Conn {
    codec: Codec<UnixStream, Bytes>,
    authority: Authority,
    next_id: u32,
    streams: HashMap<u32, StreamState>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

impl Conn {
    /// Connects, sends the preface and our SETTINGS, and opens the connection window.
    ///
    /// # Errors
    /// The socket cannot be reached.
    pub async fn connect(path: &Path, authority: Authority) -> Result<Self, Error> {
        let mut io = UnixStream::connect(path).await?;
        io.write_all(PREFACE).await?;
        let mut codec = Codec::new(io);
        let mut settings = frame::Settings::default();
        settings.set_initial_window_size(Some(MAX_WINDOW));
        codec.send(settings.into()).await?;
        codec
            .send(frame::WindowUpdate::new(StreamId::zero(), MAX_WINDOW - DEFAULT_WINDOW).into())
            .await?;
        Ok(Self {
            codec,
            authority,
            next_id: 1,
            streams: HashMap::new(),
        })
    }

    /// Opens a gRPC call to `path` (`/package.Service/Method`) and sends `messages` as its whole
    /// request; returns the stream id.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn open(&mut self, path: &str, messages: &[Vec<u8>]) -> Result<u32, Error> {
        let id = self.next_id;
        self.next_id += 2;
        let mut pseudo = Pseudo::request(Method::POST, http::Uri::from_static("/"), None);
        pseudo.scheme = Some(BytesStr::try_from(Bytes::from_static(b"http"))?);
        pseudo.path = Some(BytesStr::try_from(Bytes::copy_from_slice(path.as_bytes()))?);
        pseudo.authority = match &self.authority {
            Authority::Raw(a) => Some(BytesStr::try_from(Bytes::copy_from_slice(a.as_bytes()))?),
            Authority::Absent => None,
        };
        let mut fields = HeaderMap::new();
        fields.insert("content-type", HeaderValue::from_static("application/grpc"));
        fields.insert("te", HeaderValue::from_static("trailers"));
        let headers = frame::Headers::new(StreamId::from(id), pseudo, fields);
        self.codec.send(headers.into()).await?;
        let mut body = BytesMut::new();
        for m in messages {
            body.put_u8(0);
            body.put_u32(u32::try_from(m.len())?);
            body.put_slice(m);
        }
        let mut data = frame::Data::new(StreamId::from(id), body.freeze());
        data.set_end_stream(true);
        self.codec.send(data.into()).await?;
        self.streams.insert(id, StreamState::default());
        Ok(id)
    }

    /// Reads one frame from the server and files it.
    async fn pump(&mut self) -> Result<(), Error> {
        let frame = self
            .codec
            .next()
            .await
            .ok_or("the server closed the connection")?
            .map_err(|e| format!("HTTP/2 connection error: {e:?}"))?;
        match frame {
            Frame::Settings(s) if !s.is_ack() => {
                self.codec.send(frame::Settings::ack().into()).await?;
            }
            Frame::Ping(p) if !p.is_ack() => {
                self.codec
                    .send(frame::Ping::pong(p.into_payload()).into())
                    .await?;
            }
            Frame::Headers(h) => {
                let id = u32::from(h.stream_id());
                let end = h.is_end_stream();
                let (_, fields) = h.into_parts();
                let st = self.streams.entry(id).or_default();
                st.headers = true;
                if end {
                    let status = fields
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .ok_or("trailers without grpc-status")?;
                    let message = fields
                        .get("grpc-message")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    st.end = Some(Outcome::Status(status, message));
                }
            }
            Frame::Data(d) => {
                let id = u32::from(d.stream_id());
                let st = self.streams.entry(id).or_default();
                st.data.extend_from_slice(d.payload());
            }
            Frame::Reset(r) => {
                let st = self.streams.entry(u32::from(r.stream_id())).or_default();
                st.end = Some(Outcome::Reset(u32::from(r.reason())));
            }
            Frame::GoAway(g) => {
                return Err(format!("GOAWAY {:?}", g.reason()).into());
            }
            _ => {}
        }
        Ok(())
    }

    /// Waits until stream `id` has its response headers (or has ended).
    ///
    /// # Errors
    /// The connection failed.
    pub async fn headers(&mut self, id: u32) -> Result<(), Error> {
        while !self
            .streams
            .get(&id)
            .is_some_and(|s| s.headers || s.end.is_some())
        {
            self.pump().await?;
        }
        Ok(())
    }

    /// The next whole message of stream `id`, or how the stream ended when it has no more.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn message(&mut self, id: u32) -> Result<Result<Bytes, Outcome>, Error> {
        loop {
            let st = self.streams.entry(id).or_default();
            if st.data.len() >= 5 {
                let len = usize::try_from(u32::from_be_bytes([
                    st.data[1], st.data[2], st.data[3], st.data[4],
                ]))?;
                if st.data.len() >= 5 + len {
                    st.data.advance(5);
                    return Ok(Ok(st.data.split_to(len).freeze()));
                }
            }
            if let Some(end) = &st.end {
                return Ok(Err(end.clone()));
            }
            self.pump().await?;
        }
    }

    /// A unary call: the response message, or how the call ended without one.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn unary(
        &mut self,
        path: &str,
        request: Vec<u8>,
    ) -> Result<Result<Bytes, Outcome>, Error> {
        let id = self.open(path, &[request]).await?;
        let reply = self.message(id).await?;
        // Read on to the trailers, which say whether the call succeeded.
        match self.message(id).await? {
            Err(Outcome::Status(0, _)) => Ok(reply),
            Err(end) => Ok(Err(end)),
            Ok(_) => Err("a unary call answered with two messages".into()),
        }
    }
}
