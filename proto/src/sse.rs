//! An incremental parser of `text/event-stream` (the HTML Living Standard's "server-sent events",
//! §9.2.6 "Interpreting an event stream"), as MCP's Streamable HTTP transport sends them.
//!
//! It reads what a remote server sends, so every size is bounded: a line longer than
//! [`MAX_LINE`] or an event's data longer than [`MAX_EVENT`] is an error, not an allocation.
//! Bytes go in as they arrive, in chunks of any size (a line ending may be split between
//! chunks); complete events come out.

/// The longest line accepted (field name, colon and value), in bytes.
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// The most data one event may carry (its `data` lines joined), in bytes.
pub const MAX_EVENT: usize = 8 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event` field; empty means the default type, `message`.
    pub event: String,
    /// The `data` lines, joined with `\n`.
    pub data: String,
    /// The `id` field of this event, if it had one (the last event ID to resume from).
    pub id: Option<String>,
    /// The `retry` field: the reconnection time in milliseconds the server asks for.
    pub retry: Option<u64>,
}

impl Event {
    /// Whether this is a `message` event (MCP's JSON-RPC messages are).
    #[must_use]
    pub fn is_message(&self) -> bool {
        self.event.is_empty() || self.event == "message"
    }
}

/// The stream broke a bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event-stream line is longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("an event carries more than {MAX_EVENT} bytes of data")]
    EventTooLarge,
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to that ending.
    after_cr: bool,
    /// A line has ended (the stream's leading BOM, dropped from the first line, is behind).
    first_line_done: bool,
    data: String,
    has_data: bool,
    event: String,
    id: Option<String>,
    retry: Option<u64>,
}

impl Parser {
    /// A parser at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream; returns the events they completed, in order.
    ///
    /// # Errors
    /// A line or an event's data over the bounds; the stream cannot be trusted after that.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut out = Vec::new();
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while !chunk.is_empty() {
            let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.push_line_bytes(chunk)?;
                break;
            };
            self.push_line_bytes(&chunk[..end])?;
            let mut next = end + 1;
            if chunk[end] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            chunk = &chunk[next..];
            let line = std::mem::take(&mut self.line);
            if let Some(ev) = self.line_done(&line)? {
                out.push(ev);
            }
        }
        Ok(out)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(SseError::LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Interprets one complete line; a blank line dispatches the event being built.
    fn line_done(&mut self, line: &[u8]) -> Result<Option<Event>, SseError> {
        let line = if self.first_line_done {
            line
        } else {
            self.first_line_done = true;
            line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line)
        };
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None); // a comment (keep-alive)
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"data" => {
                let extra = value.len() + usize::from(self.has_data);
                if self.data.len() + extra > MAX_EVENT {
                    return Err(SseError::EventTooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = value.into_owned(),
            // An id holding NUL is ignored, as the standard says.
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        let id = self.id.take();
        let retry = self.retry.take();
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            // No data: nothing is dispatched (an id or retry alone still updates the reader, so
            // hand those on in an empty event only when they came).
            return (id.is_some() || retry.is_some()).then(|| Event {
                event,
                data: String::new(),
                id,
                retry,
            });
        }
        self.has_data = false;
        Some(Event {
            event,
            data: std::mem::take(&mut self.data),
            id,
            retry,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<Event> {
        Parser::new().feed(input).unwrap()
    }

    #[test]
    fn messages_with_ids_types_and_multiline_data() {
        let evs = all(b"id: 1\ndata: {\"a\":1}\n\nevent: ping\ndata: x\ndata:y\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[0].id.as_deref(), Some("1"));
        assert!(evs[0].is_message());
        assert_eq!(evs[1].event, "ping");
        assert_eq!(evs[1].data, "x\ny");
        assert!(!evs[1].is_message());
    }

    #[test]
    fn comments_unknown_fields_and_an_unfinished_event_dispatch_nothing() {
        assert!(all(b": keep-alive\n\nfoo: bar\n\ndata: not yet\n").is_empty());
        let evs = all(b"retry: 3000\n\n");
        assert_eq!(evs[0].retry, Some(3000));
        assert!(evs[0].data.is_empty());
    }

    #[test]
    fn every_line_ending_and_every_split_gives_the_same_events() {
        let text = "\u{feff}data: one\r\n\r\nevent: message\rdata: two\r\rdata: three\n\n";
        let whole = all(text.as_bytes());
        assert_eq!(
            whole.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
            ["one", "two", "three"]
        );
        for size in 1..8 {
            let mut p = Parser::new();
            let mut got = Vec::new();
            for c in text.as_bytes().chunks(size) {
                got.extend(p.feed(c).unwrap());
            }
            assert_eq!(got, whole, "chunks of {size}");
        }
    }

    #[test]
    fn lines_and_events_over_the_bounds_are_errors() {
        let mut p = Parser::new();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=(MAX_LINE / chunk.len()) {
            result = p.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::LineTooLong));

        let mut p = Parser::new();
        let line = format!("data: {}\n", "b".repeat(1024 * 1024));
        let mut result = Ok(Vec::new());
        for _ in 0..=(MAX_EVENT / (1024 * 1024)) {
            result = p.feed(line.as_bytes());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(SseError::EventTooLarge));
    }
}
