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

pub mod access;
mod edit;
pub mod presets;
pub mod routes;
mod validate;

pub use edit::{edit_document, edit_providers, provider_table, route_table};
pub use routes::{RouteConfig, Tool};
pub use validate::{
    Problem, ProviderInvalid, UrlProblem, endpoint_url, valid_name, validate_provider,
};

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

impl AgentSettings {
    /// Every numeric setting, by key.
    #[must_use]
    pub fn numbers(&self) -> [(&'static str, u64); 6] {
        [
            ("min_ttl_seconds", self.min_ttl_seconds),
            ("http_timeout_seconds", self.http_timeout_seconds),
            ("login_timeout_seconds", self.login_timeout_seconds),
            ("refresh_idle_seconds", self.refresh_idle_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("interactive_retry_seconds", self.interactive_retry_seconds),
        ]
    }
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

    /// How long a browser flow at this provider waits for the user: its own
    /// `login_timeout_seconds`, else the agent's.
    #[must_use]
    pub fn login_timeout(&self, agent: &AgentSettings) -> std::time::Duration {
        std::time::Duration::from_secs(
            self.login_timeout_seconds
                .unwrap_or(agent.login_timeout_seconds),
        )
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
    /// Per-application authorization.
    #[serde(default)]
    pub access: access::AccessSettings,
    /// `[[route]]` tables: which account serves which developer tool's target.
    #[serde(default, rename = "route", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteConfig>,
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
    #[error("invalid config file {path}: {}", indent(&source.to_string()))]
    Syntax {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid config file {path}: {}", indent(&source.to_string()))]
    Document {
        path: PathBuf,
        source: toml_edit::TomlError,
    },
    #[error("invalid config file {path}: `providers` must be a table")]
    ProvidersNotATable { path: PathBuf },
    #[error("invalid config file {path}, line {line}, key `{key}`: {problem}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        problem: Problem,
    },
    #[error("invalid provider: {0}")]
    Provider(#[from] ProviderInvalid),
    #[error("config file {path} is refused: it belongs to uid {owner}, neither you nor root")]
    Owner { path: PathBuf, owner: u32 },
    #[error(
        "config file {path} is refused: group or others can write it (mode {mode:o}); run `chmod go-w {path}`"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("provider `{0}` already exists; remove it first or pass --replace")]
    ProviderExists(String),
    #[error(
        "no provider named `{0}`; see `authctl provider list`, or add one with `authctl provider add`"
    )]
    NoSuchProvider(String),
    #[error("invalid route: {key}: {problem}")]
    Route { key: &'static str, problem: Problem },
    #[error("invalid config file {path}: `route` must be an array of tables (`[[route]]`)")]
    RoutesNotAnArray { path: PathBuf },
    #[error("a {tool} route for `{target}` already exists; remove it first or pass --replace")]
    RouteExists { tool: &'static str, target: String },
    #[error("no {tool} route for `{target}`; see `authctl route list`")]
    NoSuchRoute { tool: &'static str, target: String },
}

/// Refuses a config file another user could have written: it names the endpoints refresh tokens
/// are sent to.
fn check_private(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // missing: an empty config; unreadable: `load` says so
    };
    let uid = crate::hardening::current_uid();
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(ConfigError::Owner {
            path: path.into(),
            owner: meta.uid(),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ConfigError::Writable {
            path: path.into(),
            mode: meta.mode() & 0o777,
        });
    }
    Ok(())
}

/// A multi-line parser message, indented under the line that names the file.
fn indent(message: &str) -> String {
    message.trim_end().replace('\n', "\n  ")
}

impl Config {
    /// Loads and validates the file; a missing file is an empty config (no provider yet).
    ///
    /// # Errors
    /// Unreadable file, TOML syntax, unknown keys, wrong types, or invalid values.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        check_private(path)?;
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
        let config: Self = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            path: path.into(),
            source,
        })?;
        for (key, value) in config.agent.numbers() {
            if let Err(problem) = validate::check_range(key, value) {
                return Err(ConfigError::Invalid {
                    path: path.into(),
                    line: line_of(text, &["agent", key])
                        .or_else(|| line_of(text, &["agent"]))
                        .unwrap_or(1),
                    key: format!("agent.{key}"),
                    problem,
                });
            }
        }
        if let Err((key, problem)) = validate::check_access(&config.access) {
            return Err(ConfigError::Invalid {
                path: path.into(),
                line: line_of(text, &["access", key])
                    .or_else(|| line_of(text, &["access"]))
                    .unwrap_or(1),
                key: format!("access.{key}"),
                problem,
            });
        }
        for (name, provider) in &config.providers {
            if let Err(ProviderInvalid { key, problem }) = validate_provider(name, provider) {
                let dotted = format!("providers.{name}.{key}");
                let line = line_of(text, &["providers", name, key])
                    .or_else(|| line_of(text, &["providers", name]))
                    .unwrap_or(1);
                return Err(ConfigError::Invalid {
                    path: path.into(),
                    line,
                    key: dotted,
                    problem,
                });
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, route) in config.routes.iter().enumerate() {
            let checked = route.validate().and_then(|()| {
                let target = routes::normalize_target(route.tool, &route.target)
                    .map_err(|p| ("target", p))?;
                if seen.insert((route.tool.name(), target)) {
                    Ok(())
                } else {
                    Err(("target", Problem::DuplicateRoute))
                }
            });
            if let Err((key, problem)) = checked {
                return Err(ConfigError::Invalid {
                    path: path.into(),
                    line: route_line(text, i, key).unwrap_or(1),
                    key: format!("route[{}].{key}", i + 1),
                    problem,
                });
            }
        }
        Ok(config)
    }

    /// Serialises the config to TOML (used to write a fresh file; edits go through
    /// [`edit_providers`] to keep a human's comments).
    #[cfg(test)]
    #[must_use]
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// The 1-based line of `key` in the `index`th `[[route]]` table (else of its header).
fn route_line(text: &str, index: usize, key: &str) -> Option<usize> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let table = doc.get("route")?.as_array_of_tables()?.get(index)?;
    let span = table
        .get_key_value(key)
        .and_then(|(k, _)| k.span())
        .or_else(|| table.span())?;
    Some(text[..span.start].matches('\n').count() + 1)
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
    fn routes_parse_and_their_errors_name_line_and_key() {
        let c = parse(
            "[[route]]\ntool = \"git\"\ntarget = \"https://git.example.com\"\naccount = \"corp\"\n",
        )
        .unwrap();
        assert_eq!(c.routes[0].tool, Tool::Git);
        let e = parse(
            "[[route]]\ntool = \"git\"\ntarget = \"https://a.example\"\naccount = \"corp\"\n\
             [[route]]\ntool = \"git\"\naccount = \"corp\"\ntarget = \"http://a.example\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 8"), "{e}");
        assert!(e.contains("route[2].target"), "{e}");
        let dup = parse(
            "[[route]]\ntool = \"git\"\ntarget = \"https://a.example/\"\naccount = \"a\"\n\
             [[route]]\ntool = \"git\"\ntarget = \"https://a.example\"\naccount = \"b\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(dup.contains("already configured"), "{dup}");
        let unknown = parse("[[route]]\ntool = \"svn\"\ntarget = \"x\"\naccount = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("line 2"), "{unknown}");
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
    fn an_access_table_parses_and_weak_rules_are_refused_with_line_and_key() {
        let c = parse(
            "[access]\ndefault = \"ask\"\nadmin_default = \"deny\"\n\n[[access.rules]]\n\
             exe = \"/usr/bin/git\"\naccount = \"github\"\ndecision = \"allow\"\n",
        )
        .unwrap();
        assert_eq!(c.access.default, access::Decision::Ask);
        assert_eq!(c.access.admin_default, access::Decision::Deny);
        assert_eq!(c.access.rules[0].exe.as_deref(), Some("/usr/bin/git"));
        for (text, words) in [
            (
                "[access]\n[[access.rules]]\naccount = \"corp\"\ndecision = \"allow\"\n",
                &["access.rules", "names no program"][..],
            ),
            (
                "[access]\n[[access.rules]]\nscript = \"/home/a/x.sh\"\ndecision = \"allow\"\n",
                &["access.rules", "interpreter"][..],
            ),
            (
                "[access]\n[[access.rules]]\nexe = \"git\"\ndecision = \"allow\"\n",
                &["access.rules", "absolute"][..],
            ),
            (
                "[access]\nprompt_timeout_seconds = 0\n",
                &["line 2", "access.prompt_timeout_seconds"][..],
            ),
            (
                "[access]\ndefault = \"maybe\"\n",
                &["line 2", "default"][..],
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            for w in words {
                assert!(e.contains(w), "{text}: `{w}` missing in {e}");
            }
        }
    }
}
