//! Output helpers: data to stdout (a closed pipe is a clean exit), progress to stderr.

use std::io::Write;

/// Writes `text` and a newline to stdout; a broken pipe exits quietly (like ripgrep).
pub fn println_out(text: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// A Unix time as a short relative phrase ("in 59m", "3h ago").
pub fn relative(ts: i64, now: i64) -> String {
    if ts <= 0 {
        return "-".into();
    }
    let d = ts - now;
    let span = span(d);
    if d >= 0 {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A length of time in seconds as a short phrase ("0s", "59m", "3h12m", "2d"); the sign is
/// ignored.
pub fn span(seconds: i64) -> String {
    let a = seconds.unsigned_abs();
    if a < 60 {
        format!("{a}s")
    } else if a < 3600 {
        format!("{}m", a / 60)
    } else if a < 86_400 {
        format!("{}h{}m", a / 3600, (a % 3600) / 60)
    } else {
        format!("{}d", a / 86_400)
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// The secret store's name as `status` and `agent status` print it.
pub fn store_name(kind: authctl_client::proto::SecretStoreKind) -> &'static str {
    use authctl_client::proto::SecretStoreKind;
    match kind {
        SecretStoreKind::File => "file",
        SecretStoreKind::Keyring => "keyring",
        SecretStoreKind::Unspecified => "unknown",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn relative_times() {
        assert_eq!(super::relative(160, 100), "in 1m");
        assert_eq!(super::relative(100, 3700), "1h0m ago");
        assert_eq!(super::relative(0, 5), "-");
    }
}
