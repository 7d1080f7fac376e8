//! Wall-clock time in Unix seconds, which token expiries are measured in. The agent reads the
//! system clock (a laptop that slept must see its tokens expired); unit tests read tokio's paused
//! clock, so hours of token lifecycle run in milliseconds.

/// Where "now" comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system's wall clock.
    System,
    /// `base_unix` plus the time tokio's (paused) clock has advanced since `base`.
    #[cfg(test)]
    Tokio {
        base_unix: i64,
        base: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock starting at `base_unix` that follows tokio's clock (pause it with
    /// `tokio::time::pause` or `#[tokio::test(start_paused = true)]`).
    #[cfg(test)]
    #[must_use]
    pub fn tokio(base_unix: i64) -> Self {
        Self::Tokio {
            base_unix,
            base: tokio::time::Instant::now(),
        }
    }

    /// Unix seconds now.
    #[must_use]
    pub fn now(self) -> i64 {
        match self {
            Self::System => now_unix(),
            #[cfg(test)]
            Self::Tokio { base_unix, base } => {
                base_unix + i64::try_from(base.elapsed().as_secs()).unwrap_or(i64::MAX)
            }
        }
    }
}

/// Unix seconds now, by the system clock.
#[must_use]
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
