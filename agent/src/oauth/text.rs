//! Text that comes from a provider or a resource (error codes and descriptions, issuer names) is
//! data, not terminal control and not a place for secrets: before it reaches a log, `status`, an
//! error message or a terminal, control characters (ANSI escapes included) and bidirectional
//! overrides are removed, its length is capped, and anything that looks like a token is redacted.

/// The longest provider text kept, in characters.
pub const MAX_CHARS: usize = 300;

/// A run this long of token characters is taken for a token (JWTs, opaque tokens, codes).
const TOKEN_LIKE: usize = 32;

/// `s`, safe to show.
#[must_use]
pub fn clean(s: &str) -> String {
    let visible: String = s
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect();
    let mut out = String::with_capacity(visible.len().min(MAX_CHARS * 4));
    for (i, word) in visible.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if looks_like_token(word) {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
    }
    if out.chars().count() > MAX_CHARS {
        out = out.chars().take(MAX_CHARS).collect();
        out.push('…');
    }
    out
}

/// [`clean`] for an optional text.
#[must_use]
pub fn clean_opt(s: Option<String>) -> Option<String> {
    s.map(|s| clean(&s))
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A long run of base64url/base64/JWT characters: what access, refresh and ID tokens, codes and
/// secrets look like.
fn looks_like_token(word: &str) -> bool {
    let mut run = 0;
    for c in word.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=') {
            run += 1;
            if run >= TOKEN_LIKE && !word.contains("://") {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_is_removed() {
        assert_eq!(
            clean("bad\x1b[31mred\x1b[0m\r\nnext"),
            "bad[31mred[0m  next"
        );
        assert_eq!(clean("a\u{202e}b\u{2066}c"), "abc");
        assert_eq!(clean("tab\there"), "tab here");
    }

    #[test]
    fn long_text_is_capped() {
        let s = clean(&"word ".repeat(200));
        assert_eq!(s.chars().count(), MAX_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn token_looking_values_are_redacted() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert_eq!(
            clean(&format!("refresh token {jwt} is invalid")),
            "refresh token [redacted] is invalid"
        );
        assert_eq!(
            clean("token=QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk"),
            "[redacted]"
        );
        // Ordinary words, short ids and URLs stay.
        assert_eq!(
            clean(
                "invalid_grant: grant expired (see https://idp.example.com/docs/errors/invalid_grant_expired_tokens)"
            ),
            "invalid_grant: grant expired (see https://idp.example.com/docs/errors/invalid_grant_expired_tokens)"
        );
    }
}
