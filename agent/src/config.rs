//! `config.toml`: the agent's settings and its providers. Human-edited, so every error names the
//! file, the line and the key, and unknown keys are refused rather than silently ignored.
//!
//! ```toml
//! [agent]
//! store = "auto"            # "auto" | "file" | "keyring"
//!
//! [providers.corp]
//! issuer = "https://idp.example.com"
//! client_id = "my-native-client"
//! scopes = ["openid", "email", "offline_access"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// Which secret store holds refresh tokens and client secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS keyring where one answers, else the embedded file store.
    #[default]
    Auto,
    /// The embedded file store (0600 file in a 0700 directory).
    File,
    /// The OS keyring only; the agent refuses to start without one.
    Keyring,
}

/// The `[agent]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    pub store: StoreKind,
    /// A token is served only if it stays valid at least this long (unless the caller asks more).
    pub min_ttl_seconds: u64,
    /// Timeout of every HTTP request to a provider.
    pub http_timeout_seconds: u64,
    /// How long a loopback login waits for the user, unless the provider says otherwise.
    pub login_timeout_seconds: u64,
    /// Tokens are refreshed ahead of expiry while some client asked for them within this period;
    /// idle accounts are refreshed again on demand.
    pub refresh_idle_seconds: u64,
    /// Exit after this many seconds without a client request (and no account to keep fresh);
    /// 0 = never. For socket-activated services, which start the agent again on the next
    /// connection.
    pub idle_timeout_seconds: u64,
    /// After an on-demand login (`GetToken{interactive}`) fails, no new one starts for this many
    /// seconds for that account: a tool asking in a loop cannot open tab after tab.
    pub interactive_retry_seconds: u64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            store: StoreKind::Auto,
            min_ttl_seconds: 60,
            http_timeout_seconds: 30,
            login_timeout_seconds: 300,
            refresh_idle_seconds: 3600,
            idle_timeout_seconds: 0,
            interactive_retry_seconds: 30,
        }
    }
}

/// The literal loopback host of the redirect URI. Providers compare hosts literally (Entra treats
/// `localhost` and `127.0.0.1` as different), so it must match the client registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum RedirectHost {
    #[default]
    #[serde(rename = "127.0.0.1")]
    Ipv4,
    #[serde(rename = "[::1]")]
    Ipv6,
    #[serde(rename = "localhost")]
    Localhost,
}

impl RedirectHost {
    /// The host as written in the redirect URI.
    #[must_use]
    pub fn uri_host(self) -> &'static str {
        match self {
            Self::Ipv4 => "127.0.0.1",
            Self::Ipv6 => "[::1]",
            Self::Localhost => "localhost",
        }
    }

    /// The address the listener binds: always a loopback address, never a wildcard.
    #[must_use]
    pub fn bind_ip(self) -> std::net::IpAddr {
        match self {
            Self::Ipv4 | Self::Localhost => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            Self::Ipv6 => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        }
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// Public client: `client_id` in the body, no secret.
    None,
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// One `[providers.NAME]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The issuer; its discovery document supplies the endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// OpenID Connect RP-Initiated Logout (`authctl logout --end-session`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub redirect_host: RedirectHost,
    /// Fixed ports tried in order, for servers that match redirect URIs exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_ports: Vec<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_path: Option<String>,
    /// Path of the loopback `post_logout_redirect_uri` (same host and ports as logins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_path: Option<String>,
    /// Send the login's ID token as `id_token_hint` at `logout --end-session` (Okta requires it).
    /// Off by default: the hint travels in the URL handed to the browser, and the agent then keeps
    /// the ID token in the secret store.
    #[serde(default, skip_serializing_if = "is_default")]
    pub end_session_id_token_hint: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_timeout_seconds: Option<u64>,
    /// Extra authorization-request parameters (`prompt`, `login_hint`, `access_type`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<ClientAuthMethod>,
    /// RFC 8707 resource indicator sent on the authorization, code-exchange and refresh requests
    /// (the API or MCP server the tokens are for). Set by `authctl login https://RESOURCE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl ProviderConfig {
    /// The redirect path, `/callback` unless configured.
    #[must_use]
    pub fn redirect_path(&self) -> &str {
        self.redirect_path.as_deref().unwrap_or("/callback")
    }

    /// The post-logout redirect path, `/logout` unless configured.
    #[must_use]
    pub fn post_logout_redirect_path(&self) -> &str {
        self.post_logout_redirect_path
            .as_deref()
            .unwrap_or("/logout")
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub agent: AgentSettings,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// A config problem, always naming the file (and line and key where there is one).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write config file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid config file {path}, line {line}, key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("invalid provider: {0}")]
    BadProvider(String),
}

impl Config {
    /// Loads and validates the file; a missing file is an empty config (no provider yet).
    ///
    /// # Errors
    /// Unreadable file, TOML syntax, unknown keys, wrong types, or invalid values.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        Self::parse(&text, path)
    }

    /// Parses and validates `text`, reporting errors against `path`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        for (name, provider) in &config.providers {
            if let Err((key, message)) = validate_provider(name, provider) {
                let dotted = format!("providers.{name}.{key}");
                let line = line_of(text, &["providers", name, key.as_str()])
                    .or_else(|| line_of(text, &["providers", name]))
                    .unwrap_or(1);
                return Err(ConfigError::Invalid {
                    path: path.into(),
                    line,
                    key: dotted,
                    message,
                });
            }
        }
        Ok(config)
    }

    /// Serialises the config to TOML (used to write a fresh file; edits go through
    /// [`edit_providers`] to keep a human's comments).
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// The 1-based line where the key at `keys` is defined, if it is.
fn line_of(text: &str, keys: &[&str]) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item = doc.as_item();
    for key in keys {
        item = item.get(key)?;
    }
    let span = item.span().or_else(|| {
        // Tables report their header's span through the key in the parent.
        let (parent, last) = keys.split_at(keys.len() - 1);
        let mut p = doc.as_item();
        for k in parent {
            p = p.get(k)?;
        }
        p.as_table_like()?.get_key_value(last[0])?.0.span()
    })?;
    Some(text[..span.start].matches('\n').count() + 1)
}

/// Checks one provider; on error returns the offending key and a message.
///
/// # Errors
/// `(key, message)` for the first problem found.
pub fn validate_provider(name: &str, p: &ProviderConfig) -> Result<(), (String, String)> {
    let err = |k: &str, m: String| Err((k.to_owned(), m));
    if !valid_name(name) {
        return err(
            "",
            format!("provider name `{name}` must be 1-64 letters, digits, '.', '_' or '-'"),
        );
    }
    if p.client_id.trim().is_empty() {
        return err("client_id", "client_id must not be empty".into());
    }
    match &p.issuer {
        Some(issuer) => check_url(issuer).or_else(|m| err("issuer", m))?,
        None => {
            if p.authorization_endpoint.is_none() || p.token_endpoint.is_none() {
                return err(
                    "issuer",
                    "set `issuer` (for discovery) or both `authorization_endpoint` and \
                     `token_endpoint`"
                        .into(),
                );
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
            check_url(v).or_else(|m| err(key, m))?;
        }
    }
    if !p.redirect_path().starts_with('/') {
        return err("redirect_path", "redirect_path must start with '/'".into());
    }
    if !p.post_logout_redirect_path().starts_with('/') {
        return err(
            "post_logout_redirect_path",
            "post_logout_redirect_path must start with '/'".into(),
        );
    }
    if p.redirect_ports.contains(&0) {
        return err(
            "redirect_ports",
            "port 0 is not a fixed port; leave the list empty".into(),
        );
    }
    for scope in &p.scopes {
        if scope.is_empty()
            || scope
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            return err("scopes", format!("invalid scope `{scope}` (RFC 6749 §3.3)"));
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

/// Endpoints must be https, except on loopback (RFC 8252 §8.3 allows no plain http elsewhere).
fn check_url(value: &str) -> Result<(), String> {
    let url = Url::parse(value).map_err(|e| format!("`{value}` is not a valid URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "`{value}` must use https (plain http is allowed only on loopback)"
        )),
        other => Err(format!(
            "`{value}` has unsupported scheme `{other}`; use https"
        )),
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

/// Rewrites the `[providers]` tables of the file at `path` with `edit`, keeping everything else
/// (comments, order, the `[agent]` table) as the human wrote it, and writes atomically.
///
/// # Errors
/// Unreadable or invalid file, or a failed write.
pub fn edit_providers(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::Table) -> Result<(), ConfigError>,
) -> Result<Config, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.into(),
                source,
            });
        }
    };
    // Refuse to edit a file that is already broken: the human must see their error first.
    Config::parse(&text, path)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigError::Syntax {
                path: path.into(),
                message: e.to_string(),
            })?;
    let providers = doc
        .entry("providers")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| ConfigError::Syntax {
            path: path.into(),
            message: "`providers` must be a table".into(),
        })?;
    edit(providers)?;
    let new_text = doc.to_string();
    let config = Config::parse(&new_text, path)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ConfigError::Write {
            path: path.into(),
            source,
        })?;
    }
    crate::fsutil::write_atomic(path, new_text.as_bytes(), 0o600).map_err(|source| {
        ConfigError::Write {
            path: path.into(),
            source,
        }
    })?;
    Ok(config)
}

/// The TOML table for one provider, as `authctl provider add` writes it.
#[must_use]
pub fn provider_table(p: &ProviderConfig) -> toml_edit::Table {
    let text = toml::to_string(p).unwrap_or_default();
    let doc: toml_edit::DocumentMut = text.parse().unwrap_or_default();
    let mut table = doc.as_table().clone();
    table.set_implicit(false);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/x/config.toml"))
    }

    #[test]
    fn empty_file_is_a_valid_config_with_no_provider() {
        let c = parse("").unwrap();
        assert!(c.providers.is_empty());
        assert_eq!(c.agent.store, StoreKind::Auto);
    }

    #[test]
    fn provider_round_trips() {
        let c = parse(
            "[providers.corp]\nissuer = \"https://idp.example.com\"\nclient_id = \"abc\"\n\
             scopes = [\"openid\", \"offline_access\"]\nredirect_host = \"[::1]\"\n\
             redirect_ports = [8765, 8766]\n",
        )
        .unwrap();
        let p = &c.providers["corp"];
        assert_eq!(p.redirect_host, RedirectHost::Ipv6);
        assert_eq!(p.redirect_ports, vec![8765, 8766]);
        assert_eq!(p.redirect_path(), "/callback");
        let again = parse(&c.to_toml()).unwrap();
        assert_eq!(&again.providers["corp"], p);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse(
            "[providers.corp]\nissuer = \"https://a.example\"\nclient_id = \"x\"\ncliend = 1\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/x/config.toml"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("cliend"), "{e}");
    }

    #[test]
    fn plain_http_issuer_off_loopback_is_refused_with_line_and_key() {
        let e =
            parse("\n[providers.corp]\nclient_id = \"x\"\nissuer = \"http://idp.example.com\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("providers.corp.issuer"), "{e}");
        assert!(e.contains("https"), "{e}");
    }

    #[test]
    fn loopback_http_is_allowed() {
        parse("[providers.t]\nclient_id = \"x\"\nissuer = \"http://127.0.0.1:3000\"\n").unwrap();
    }

    #[test]
    fn missing_issuer_and_endpoints_is_refused() {
        let e = parse("[providers.gh]\nclient_id = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers.gh.issuer"), "{e}");
    }

    #[test]
    fn bad_provider_name_is_refused() {
        let e = parse("[providers.\"a b\"]\nclient_id = \"x\"\nissuer = \"https://a.example\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("provider name"), "{e}");
    }

    #[test]
    fn edit_keeps_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# my comment\n[agent]\nstore = \"file\"\n").unwrap();
        let p = ProviderConfig {
            issuer: Some("https://idp.example.com".into()),
            client_id: "abc".into(),
            ..ProviderConfig::default()
        };
        let c = edit_providers(&path, |t| {
            t.insert("corp", toml_edit::Item::Table(provider_table(&p)));
            Ok(())
        })
        .unwrap();
        assert_eq!(c.providers["corp"], p);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my comment"), "{text}");
        assert!(text.contains("[providers.corp]"), "{text}");
    }
}
