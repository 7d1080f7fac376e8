//! Rate-limited warnings: a flood (of connections, of failing accepts) must not flood the log.

use std::time::Duration;

/// One warning a second at most, however many there are: a flood must not flood the log.
pub struct LogGate {
    last: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl LogGate {
    pub const fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(number suppressed since the last one)` when a line may be logged now.
    pub fn admit(&mut self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}
