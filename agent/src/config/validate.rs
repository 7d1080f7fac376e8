//! What makes a provider table valid. Every problem names its key, so the file's line can be found.

use url::Url;

use super::ProviderConfig;

/// A provider table problem: the key (empty for the provider's name) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ProviderInvalid {
    pub key: &'static str,
    pub problem: Problem,
}

/// What is wrong with a provider's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("provider name `{0}` must be 1-64 letters, digits, '.', '_' or '-'")]
    Name(String),
    #[error("client_id must not be empty")]
    EmptyClientId,
    #[error("set `issuer` (for discovery) or both `authorization_endpoint` and `token_endpoint`")]
    NoEndpoints,
    #[error(transparent)]
    Url(#[from] UrlProblem),
    #[error("{0} must start with '/'")]
    Path(&'static str),
    #[error("port 0 is not a fixed port; leave the list empty")]
    PortZero,
    #[error("invalid scope `{0}` (RFC 6749 §3.3)")]
    Scope(String),
    #[error("{value} is out of range: use {min}..={max}")]
    Range { value: u64, min: u64, max: u64 },
    #[error(
        "auth_params may not set `{0}`: the agent sets it for every login (scopes go in `scopes`)"
    )]
    ReservedParam(String),
    #[error(
        "rule {0} names no program: give `exe`, `exe_sha256`, `unit` or `script` (`exe = \"*\"` for every program)"
    )]
    RuleNamesNoProgram(usize),
    #[error("`exe_sha256` of rule {0} is not 64 hex digits")]
    BadDigest(usize),
    #[error(
        "rule {0} names a `script` but not its interpreter: add `exe` (or `exe_sha256`), since any program can be started with a script's path as its first argument"
    )]
    ScriptWithoutInterpreter(usize),
    #[error(
        "`exe` of rule {0} must be an absolute path (a trailing `*` matches any path that starts with the rest), or `*` for every program"
    )]
    RelativeExe(usize),
    #[error("user name `{0}` must be non-empty, without ':' or control characters")]
    Username(String),
    #[error(
        "`{0}` is no route target: give scheme, host and optional path, without user, query or fragment"
    )]
    Target(String),
    #[error("a route for this tool and target is already configured")]
    DuplicateRoute,
}

/// Checks the `[access]` table; on error, its key.
///
/// # Errors
/// A number out of range, a rule that names no program, a malformed digest.
pub fn check_access(a: &super::access::AccessSettings) -> Result<(), (&'static str, Problem)> {
    for (key, value, min, max) in [
        ("prompt_timeout_seconds", a.prompt_timeout_seconds, 1, 600),
        ("remember_seconds", a.remember_seconds, 0, 30 * 86_400),
        (
            "audit_log_max_bytes",
            a.audit_log_max_bytes,
            64 << 10,
            1 << 30,
        ),
    ] {
        if !(min..=max).contains(&value) {
            return Err((key, Problem::Range { value, min, max }));
        }
    }
    for (key, rules) in [("rules", &a.rules), ("admin_rules", &a.admin_rules)] {
        for (i, r) in rules.iter().enumerate() {
            if !r.names_a_program() {
                return Err((key, Problem::RuleNamesNoProgram(i + 1)));
            }
            if r.exe_sha256
                .as_ref()
                .is_some_and(|d| d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err((key, Problem::BadDigest(i + 1)));
            }
            if r.script.is_some() && r.exe.is_none() && r.exe_sha256.is_none() {
                return Err((key, Problem::ScriptWithoutInterpreter(i + 1)));
            }
            if r.exe
                .as_deref()
                .is_some_and(|e| e != "*" && !e.starts_with('/'))
            {
                return Err((key, Problem::RelativeExe(i + 1)));
            }
        }
    }
    Ok(())
}

/// Authorization-request parameters the agent owns: setting them in `auth_params` would break
/// PKCE, `state`, the nonce or the redirect, or send the login elsewhere.
const RESERVED_AUTH_PARAMS: &[&str] = &[
    "state",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "client_id",
    "response_type",
    "scope",
];

/// The range each numeric setting may take (seconds).
pub const RANGES: &[(&str, u64, u64)] = &[
    ("min_ttl_seconds", 0, 86_400),
    ("http_timeout_seconds", 1, 600),
    ("login_timeout_seconds", 10, 3_600),
    ("refresh_idle_seconds", 1, 30 * 86_400),
    ("idle_timeout_seconds", 0, 365 * 86_400),
    ("interactive_retry_seconds", 1, 86_400),
];

/// Checks a numeric setting against [`RANGES`].
///
/// # Errors
/// The value is outside its range.
pub fn check_range(key: &str, value: u64) -> Result<(), Problem> {
    match RANGES.iter().find(|(k, _, _)| *k == key) {
        Some(&(_, min, max)) if !(min..=max).contains(&value) => {
            Err(Problem::Range { value, min, max })
        }
        _ => Ok(()),
    }
}

/// Why a URL may not be used as an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("`{value}` is not a valid URL: {source}")]
    Invalid {
        value: String,
        source: url::ParseError,
    },
    #[error("`{0}` must use https (plain http is allowed only on loopback)")]
    PlainHttp(String),
    #[error("`{value}` has unsupported scheme `{scheme}`; use https")]
    Scheme { value: String, scheme: String },
}

/// Checks one provider.
///
/// # Errors
/// The first problem found, with its key.
pub fn validate_provider(name: &str, p: &ProviderConfig) -> Result<(), ProviderInvalid> {
    let err = |key: &'static str, problem: Problem| Err(ProviderInvalid { key, problem });
    let bad_url = |key: &'static str| {
        move |u: UrlProblem| ProviderInvalid {
            key,
            problem: u.into(),
        }
    };
    if !valid_name(name) {
        return err("", Problem::Name(name.to_owned()));
    }
    if p.client_id.trim().is_empty() {
        return err("client_id", Problem::EmptyClientId);
    }
    match &p.issuer {
        Some(issuer) => {
            endpoint_url(issuer).map_err(bad_url("issuer"))?;
        }
        None => {
            if p.authorization_endpoint.is_none() || p.token_endpoint.is_none() {
                return err("issuer", Problem::NoEndpoints);
            }
        }
    }
    for (key, value) in [
        ("authorization_endpoint", &p.authorization_endpoint),
        ("token_endpoint", &p.token_endpoint),
        ("revocation_endpoint", &p.revocation_endpoint),
        (
            "device_authorization_endpoint",
            &p.device_authorization_endpoint,
        ),
        ("userinfo_endpoint", &p.userinfo_endpoint),
        ("jwks_uri", &p.jwks_uri),
        ("end_session_endpoint", &p.end_session_endpoint),
        ("resource", &p.resource),
    ] {
        if let Some(v) = value {
            endpoint_url(v).map_err(bad_url(key))?;
        }
    }
    if !p.redirect_path().starts_with('/') {
        return err("redirect_path", Problem::Path("redirect_path"));
    }
    if !p.post_logout_redirect_path().starts_with('/') {
        return err(
            "post_logout_redirect_path",
            Problem::Path("post_logout_redirect_path"),
        );
    }
    if p.redirect_ports.contains(&0) {
        return err("redirect_ports", Problem::PortZero);
    }
    if let Some(t) = p.login_timeout_seconds {
        check_range("login_timeout_seconds", t).or_else(|p| err("login_timeout_seconds", p))?;
    }
    if let Some(k) = p
        .auth_params
        .keys()
        .find(|k| RESERVED_AUTH_PARAMS.contains(&k.as_str()))
    {
        return err("auth_params", Problem::ReservedParam(k.clone()));
    }
    for scope in &p.scopes {
        if scope.is_empty()
            || scope
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            return err("scopes", Problem::Scope(scope.clone()));
        }
    }
    Ok(())
}

/// Provider and account names: safe in file names, keyring entries and command lines.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Parses an endpoint URL: https, or plain http on loopback only (RFC 8252 §8.3).
///
/// # Errors
/// Not a URL, plain http off loopback, or another scheme.
pub fn endpoint_url(value: &str) -> Result<Url, UrlProblem> {
    let url = Url::parse(value).map_err(|source| UrlProblem::Invalid {
        value: value.to_owned(),
        source,
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(UrlProblem::PlainHttp(value.to_owned())),
        other => Err(UrlProblem::Scheme {
            value: value.to_owned(),
            scheme: other.to_owned(),
        }),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}
