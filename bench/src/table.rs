//! The result table: one [`Row`] per measured figure, rendered as Markdown.

use std::fmt::Write as _;

use crate::stats;

/// How a row stands against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target is met.
    Met,
    /// The target is missed (a finding, not a failure of the suite).
    Missed,
    /// A reference figure without a target (floors, the peer).
    Info,
    /// No number, or a behaviour check failed: the suite fails.
    Failed,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "**missed**",
            Self::Info => "—",
            Self::Failed => "**FAILED**",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub what: String,
    pub unit: &'static str,
    pub median: Option<f64>,
    pub p99: Option<f64>,
    pub range: Option<(f64, f64)>,
    pub target: String,
    pub verdict: Verdict,
    pub note: String,
}

impl Row {
    /// A row with the median, p99 and min–max of `samples`.
    #[must_use]
    pub fn from_samples(id: &str, what: &str, unit: &'static str, samples: &[f64]) -> Self {
        let (lo, hi) = stats::min_max(samples);
        Self {
            id: id.into(),
            what: what.into(),
            unit,
            median: Some(stats::median(samples)),
            p99: Some(stats::percentile(samples, 99.0)),
            range: Some((lo, hi)),
            target: String::new(),
            verdict: Verdict::Info,
            note: String::new(),
        }
    }

    /// A row with a single figure.
    #[must_use]
    pub fn value(id: &str, what: &str, unit: &'static str, v: f64) -> Self {
        Self {
            id: id.into(),
            what: what.into(),
            unit,
            median: Some(v),
            p99: None,
            range: None,
            target: String::new(),
            verdict: Verdict::Info,
            note: String::new(),
        }
    }

    /// A row that produced no number.
    #[must_use]
    pub fn failed(id: &str, what: &str, why: &str) -> Self {
        Self {
            id: id.into(),
            what: what.into(),
            unit: "",
            median: None,
            p99: None,
            range: None,
            target: String::new(),
            verdict: Verdict::Failed,
            note: why.replace('\n', " ").replace('|', "/"),
        }
    }

    /// Sets the target text and the verdict from `met`.
    #[must_use]
    pub fn target(mut self, text: &str, met: bool) -> Self {
        self.target = text.into();
        if self.verdict != Verdict::Failed {
            self.verdict = if met { Verdict::Met } else { Verdict::Missed };
        }
        self
    }

    /// Sets an informational target text (no verdict).
    #[must_use]
    pub fn reference(mut self, text: &str) -> Self {
        self.target = text.into();
        self
    }

    #[must_use]
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.note = text.into();
        self
    }

    /// Replaces the p99 (e.g. with a p99 over pooled calls rather than over rounds).
    #[must_use]
    pub fn p99(mut self, v: f64) -> Self {
        self.p99 = Some(v);
        self
    }

    /// Replaces the min–max.
    #[must_use]
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    /// Marks a failed behaviour check (the number stays).
    #[must_use]
    pub fn check(mut self, ok: bool, what: &str) -> Self {
        if !ok {
            self.verdict = Verdict::Failed;
            if !self.note.is_empty() {
                self.note.push_str("; ");
            }
            let _ = write!(self.note, "behaviour check failed: {what}");
        }
        self
    }

    /// Whether this row makes the suite fail.
    #[must_use]
    pub fn is_failure(&self) -> bool {
        self.verdict == Verdict::Failed || self.median.is_none_or(|m| !m.is_finite())
    }
}

/// Formats a number with a precision that suits its size.
#[must_use]
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let a = v.abs();
    if a >= 10_000.0 {
        #[allow(clippy::cast_possible_truncation)]
        let n = v.round() as i64;
        let s = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else if a >= 100.0 || (a - a.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The Markdown table.
#[must_use]
pub fn render(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| # | measurement | median | p99 | min–max | unit | target | verdict | notes |\n");
    s.push_str("|---|---|---:|---:|---:|---|---|---|---|\n");
    for r in rows {
        let median = r.median.map_or_else(|| "**none**".to_owned(), num);
        let p99 = r.p99.map_or_else(|| "—".to_owned(), num);
        let range = r.range.map_or_else(
            || "—".to_owned(),
            |(lo, hi)| format!("{}–{}", num(lo), num(hi)),
        );
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.what,
            median,
            p99,
            range,
            r.unit,
            if r.target.is_empty() {
                "—"
            } else {
                &r.target
            },
            r.verdict.label(),
            r.note
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(52_310.4), "52,310");
        assert_eq!(num(1_234_567.0), "1,234,567");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(f64::NAN), "n/a");
    }

    #[test]
    fn failure_detection() {
        assert!(Row::failed("1", "x", "boom").is_failure());
        assert!(!Row::value("1", "x", "µs", 3.0).is_failure());
        assert!(Row::value("1", "x", "µs", f64::NAN).is_failure());
        assert!(
            Row::value("1", "x", "µs", 3.0)
                .check(false, "count")
                .is_failure()
        );
        assert!(
            !Row::value("1", "x", "µs", 3.0)
                .target("≤ 1", false)
                .is_failure()
        );
    }
}
