//! The `Bearer` challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1, RFC 6750 §3,
//! RFC 9728 §5.1): shared by the agent (zero-configuration logins find a resource's metadata
//! through it) and the CLI (`authctl mcp` tells an expired token from a missing scope by it).
//! It parses what a server sends, so it never panics and never allocates more than its input.

/// A `Bearer` challenge's parameters (RFC 6750 §3, RFC 9728 §5.1).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// RFC 9728 §5.1: where the resource's protected-resource metadata is.
    pub resource_metadata: Option<String>,
    /// RFC 6750 §3: the scope the resource needs.
    pub scope: Option<String>,
    /// RFC 6750 §3.1: `invalid_token`, `insufficient_scope`, `invalid_request`.
    pub error: Option<String>,
}

impl Challenge {
    /// RFC 6750 §3.1: the token lacks a scope the request needs (a step-up, not a refresh).
    #[must_use]
    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

/// Parses the `Bearer` challenge out of a `WWW-Authenticate` value, which may hold several
/// challenges (`DPoP algs="ES256", Bearer realm="x", resource_metadata="…"`). `None` when there is
/// no `Bearer` challenge.
#[must_use]
pub fn parse_bearer_challenge(header: &str) -> Option<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut in_bearer = false;
    let mut found = None::<Challenge>;
    loop {
        p.skip(|c| c == b' ' || c == b'\t' || c == b',');
        if p.done() {
            break;
        }
        let name = p.token();
        if name.is_empty() {
            p.i += 1; // not a token character: skip it
            continue;
        }
        p.skip(|c| c == b' ' || c == b'\t');
        if p.peek() == Some(b'=') && p.peek_at(1) != Some(b'=') {
            // An auth-param of the current challenge.
            p.i += 1;
            p.skip(|c| c == b' ' || c == b'\t');
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token()
            };
            if in_bearer && let Some(ch) = found.as_mut() {
                match name.to_ascii_lowercase().as_str() {
                    "resource_metadata" => ch.resource_metadata = Some(value),
                    "scope" => ch.scope = Some(value),
                    "error" => ch.error = Some(value),
                    _ => {}
                }
            }
        } else {
            // A new challenge (its scheme), possibly followed by a token68 we ignore.
            in_bearer = name.eq_ignore_ascii_case("bearer") && found.is_none();
            if in_bearer {
                found = Some(Challenge::default());
            }
        }
    }
    found
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn peek_at(&self, n: usize) -> Option<u8> {
        self.s.get(self.i + n).copied()
    }
    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }
    /// RFC 9110 token characters (plus `/` and `=` padding of a token68 are not needed here).
    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c));
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn quoted(&mut self) -> String {
        self.i += 1; // opening quote
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_metadata_and_scope() {
        let c = parse_bearer_challenge(
            r#"Bearer realm="mcp", resource_metadata="https://r.example/.well-known/oauth-protected-resource/mcp", scope="files:read files:write""#,
        )
        .unwrap();
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("https://r.example/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(c.scope.as_deref(), Some("files:read files:write"));
        assert!(!c.is_insufficient_scope());
    }

    #[test]
    fn bearer_among_other_challenges_and_escapes() {
        let c = parse_bearer_challenge(
            r#"DPoP algs="ES256", resource_metadata="https://wrong", Bearer error="invalid_token", error_description="say \"hi\"", resource_metadata="https://right""#,
        )
        .unwrap();
        assert_eq!(c.resource_metadata.as_deref(), Some("https://right"));
        assert_eq!(c.scope, None);
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            parse_bearer_challenge("bearer").unwrap(),
            Challenge::default()
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="x""#), None);
        assert_eq!(parse_bearer_challenge(""), None);
        let c =
            parse_bearer_challenge(r#"Bearer scope=openid, Basic resource_metadata="x""#).unwrap();
        assert_eq!(c.scope.as_deref(), Some("openid"));
        assert_eq!(
            c.resource_metadata, None,
            "a later challenge's params are its own"
        );
    }

    #[test]
    fn insufficient_scope_names_the_scope_to_ask() {
        let c = parse_bearer_challenge(
            r#"Bearer error="insufficient_scope", scope="mcp:write", error_description="Required scope: mcp:write""#,
        )
        .unwrap();
        assert!(c.is_insufficient_scope());
        assert_eq!(c.scope.as_deref(), Some("mcp:write"));
    }

    #[test]
    fn unterminated_quotes_and_stray_bytes_end_without_panic() {
        for h in [
            "Bearer error=\"",
            "Bearer error=\"\\",
            "Bearer ==,,=\"x",
            "\u{0}\u{ff} Bearer scope",
        ] {
            let _ = parse_bearer_challenge(h);
        }
    }
}
