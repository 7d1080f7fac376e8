//! The HTTP client every provider request goes through, and how its failures read.

use std::time::Duration;

/// A request to a provider or resource that got no usable answer. The `reqwest` error is kept (not
/// flattened); its message lists the whole cause chain, since "error sending request" alone tells
/// a person nothing. URLs of endpoints are not secrets, and request bodies never appear in it.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct HttpError(#[from] pub reqwest::Error);

impl HttpError {
    /// The request timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.0.is_timeout()
    }

    /// The answer arrived but its body could not be read or decoded.
    #[must_use]
    pub fn is_body(&self) -> bool {
        self.0.is_decode() || self.0.is_body()
    }
}

/// The largest response body the agent reads from a provider or resource (1 MiB): token
/// responses, metadata documents, JWK sets and registrations are a few kilobytes.
pub const MAX_BODY: usize = 1 << 20;

/// A response body that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Transport(#[from] HttpError),
    #[error("the response body is larger than {limit} bytes; refused")]
    TooLarge { limit: usize },
}

impl From<reqwest::Error> for BodyError {
    fn from(e: reqwest::Error) -> Self {
        Self::Transport(HttpError(e))
    }
}

/// Reads `resp`'s body, at most [`MAX_BODY`] bytes: a larger one is refused as soon as it shows
/// (by its `Content-Length`, or while it streams), never buffered whole.
///
/// # Errors
/// The body is too large, or the connection failed while reading it.
pub async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    read_body_limited(&mut resp, MAX_BODY).await
}

async fn read_body_limited(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    let too_large = BodyError::TooLarge { limit };
    if resp
        .content_length()
        .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > limit))
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A `reqwest` error with its causes, each once.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// The client: rustls, a timeout, no redirects (a token endpoint that redirects is misconfigured,
/// and following it could leak the request body).
///
/// # Panics
/// Never in practice: building a client with these options cannot fail.
#[must_use]
pub fn client(timeout: Duration) -> reqwest::Client {
    #[expect(
        clippy::expect_used,
        reason = "a static configuration that cannot fail"
    )]
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("authctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static reqwest configuration")
}

/// GETs a metadata document at `url`, asking for JSON (a status is not an error here).
///
/// # Errors
/// The request could not be made or answered.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Result<reqwest::Response, HttpError> {
    Ok(http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await?)
}
