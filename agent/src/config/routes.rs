//! `[[route]]` tables: which account serves which developer tool's target. The agent resolves
//! them (`ResolveRoute`), so `authctl git-credential` and the other helpers read one source of
//! truth: the configuration the agent loaded.
//!
//! ```toml
//! [[route]]
//! tool = "git"
//! target = "https://git.example.com/team"   # URL prefix: scheme, host[:port], optional path
//! account = "corp"
//! scopes = ["read_repository"]             # optional: a downscoped token
//! resource = "https://git.example.com"     # optional: RFC 8707 resource indicator
//! username = "oauth2"                      # optional: the user name the host expects
//! ```

use serde::{Deserialize, Serialize};
use url::Url;

use super::validate::{Problem, valid_name};

/// The developer tools a route can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    /// git over smart HTTP, through `authctl git-credential`; the target is a URL prefix.
    Git,
    /// kubectl's exec credential plugin, `authctl kubectl-credential`; the target is a cluster's
    /// name or its API server URL.
    Kubectl,
    /// docker's credential helper, `docker-credential-authctl`; the target is a registry's
    /// host\[:port\].
    Docker,
}

impl Tool {
    /// The name used in `config.toml` and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Git => "git",
            Self::Kubectl => "kubectl",
            Self::Docker => "docker",
        }
    }

    /// Parses a tool name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "git" => Some(Self::Git),
            "kubectl" => Some(Self::Kubectl),
            "docker" => Some(Self::Docker),
            _ => None,
        }
    }
}

/// One `[[route]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub tool: Tool,
    /// git: a URL prefix (`https://host[:port][/path]`).
    pub target: String,
    /// The account (or a provider with exactly one account) whose tokens the tool gets.
    pub account: String,
    /// A subset of the account's scopes (empty: the account's scopes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// RFC 8707 resource indicator for the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The user name handed to the tool beside the token (default: [`default_username`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A route problem: the key and what is wrong with it.
pub type RouteInvalid = (&'static str, Problem);

impl RouteConfig {
    /// Checks the route; on error, its key and the problem.
    ///
    /// # Errors
    /// A target that is no https URL (plain http only on loopback), a bad account name, scope,
    /// resource or user name.
    pub fn validate(&self) -> Result<(), RouteInvalid> {
        match self.tool {
            Tool::Git => {
                git_target(&self.target).map_err(|p| ("target", p))?;
            }
            Tool::Kubectl | Tool::Docker => {
                normalize_target(self.tool, &self.target).map_err(|p| ("target", p))?;
            }
        }
        if !valid_name(&self.account) {
            return Err(("account", Problem::Name(self.account.clone())));
        }
        if let Some(s) = self.scopes.iter().find(|s| {
            s.is_empty()
                || s.chars()
                    .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        }) {
            return Err(("scopes", Problem::Scope(s.clone())));
        }
        if let Some(r) = &self.resource {
            super::endpoint_url(r).map_err(|p| ("resource", Problem::Url(p)))?;
        }
        if let Some(u) = &self.username
            && (u.is_empty() || u.chars().any(|c| c.is_control() || c == ':'))
        {
            return Err(("username", Problem::Username(u.clone())));
        }
        Ok(())
    }

    /// The user name the tool presents beside the token: the route's `username`, else what the
    /// host is known to expect.
    #[must_use]
    pub fn username(&self) -> String {
        self.username
            .clone()
            .unwrap_or_else(|| default_username(&self.target).to_owned())
    }
}

/// The user name a git host expects beside an OAuth token when the route names none: GitHub
/// takes `x-access-token`; GitLab, Gitea, Bitbucket and most others take `oauth2`.
#[must_use]
pub fn default_username(target: &str) -> &'static str {
    let host = Url::parse(target)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match host.as_deref() {
        Some(h) if h == "github.com" || h.ends_with(".github.com") || h.ends_with(".ghe.com") => {
            "x-access-token"
        }
        _ => "oauth2",
    }
}

/// Parses a git route's target: https (or http on loopback), a host, no credentials, query or
/// fragment. The token is handed to any URL under it, so the prefix must be exact.
///
/// # Errors
/// What is wrong with it.
pub fn git_target(target: &str) -> Result<Url, Problem> {
    let url = super::endpoint_url(target).map_err(Problem::Url)?;
    if url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(Problem::Target(target.to_owned()));
    }
    Ok(url)
}

/// The canonical form of a target, as stored and compared: git URLs without a trailing slash.
///
/// # Errors
/// An invalid target.
pub fn normalize_target(tool: Tool, target: &str) -> Result<String, Problem> {
    match tool {
        Tool::Git => {
            let url = git_target(target)?;
            Ok(url.as_str().trim_end_matches('/').to_owned())
        }
        Tool::Kubectl if target.contains("://") => {
            let url = super::endpoint_url(target).map_err(Problem::Url)?;
            Ok(url.as_str().trim_end_matches('/').to_owned())
        }
        Tool::Docker => registry_host(target).ok_or_else(|| Problem::Target(target.to_owned())),
        // A kubeconfig cluster name: anything printable (EKS names are ARNs, GKE's have '_').
        Tool::Kubectl => {
            if target.is_empty()
                || target.len() > 253
                || target.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Problem::Target(target.to_owned()));
            }
            Ok(target.to_owned())
        }
    }
}

/// A docker registry as docker names it (`registry.example.com`, `localhost:5000`,
/// `https://index.docker.io/v1/`), reduced to its lower-case host\[:port\]; Docker Hub's names
/// are `index.docker.io`.
fn registry_host(target: &str) -> Option<String> {
    let rest = target
        .strip_prefix("https://")
        .or_else(|| target.strip_prefix("http://"))
        .unwrap_or(target);
    let host = rest.split('/').next()?.to_ascii_lowercase();
    let url = Url::parse(&format!("https://{host}/")).ok()?;
    if host.is_empty() || url.host_str().is_none() || !url.username().is_empty() {
        return None;
    }
    Some(match host.as_str() {
        "docker.io" | "registry-1.docker.io" => "index.docker.io".to_owned(),
        _ => host,
    })
}

/// The route that serves `target` for `tool`: for git, the longest URL prefix that matches the
/// scheme, host and port exactly and the path on whole segments.
#[must_use]
pub fn resolve<'a>(routes: &'a [RouteConfig], tool: Tool, target: &str) -> Option<&'a RouteConfig> {
    match tool {
        Tool::Git => {
            let want = Url::parse(target).ok()?;
            routes
                .iter()
                .filter(|r| r.tool == Tool::Git)
                .filter_map(|r| {
                    let have = Url::parse(&r.target).ok()?;
                    git_prefix_len(&have, &want).map(|n| (n, r))
                })
                .max_by_key(|(n, _)| *n)
                .map(|(_, r)| r)
        }
        // kubectl: the cluster's name or its server URL; docker: the registry host; exactly.
        Tool::Kubectl | Tool::Docker => {
            let want = normalize_target(tool, target).ok()?;
            routes.iter().find(|r| {
                r.tool == tool && normalize_target(tool, &r.target).is_ok_and(|t| t == want)
            })
        }
    }
}

/// How much of `want` the route URL `have` covers, if it covers it at all.
fn git_prefix_len(have: &Url, want: &Url) -> Option<usize> {
    if have.scheme() != want.scheme()
        || have.host_str().map(str::to_ascii_lowercase)
            != want.host_str().map(str::to_ascii_lowercase)
        || have.port_or_known_default() != want.port_or_known_default()
    {
        return None;
    }
    let segments = |u: &Url| -> Vec<String> {
        u.path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(ToOwned::to_owned)
            .collect()
    };
    let (h, w) = (segments(have), segments(want));
    // git names a repository `team/repo.git` or `team/repo`: a route for either covers both.
    let strip = |s: &str| s.strip_suffix(".git").unwrap_or(s).to_owned();
    (h.len() <= w.len() && h.iter().zip(&w).all(|(a, b)| strip(a) == strip(b))).then_some(h.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(target: &str, account: &str) -> RouteConfig {
        RouteConfig {
            tool: Tool::Git,
            target: target.into(),
            account: account.into(),
            scopes: Vec::new(),
            resource: None,
            username: None,
        }
    }

    #[test]
    fn git_routes_match_by_host_then_longest_path_on_segments() {
        let routes = [
            route("https://git.example.com", "all"),
            route("https://git.example.com/team", "team"),
            route("https://git.example.com/team/secret.git", "secret"),
            route("http://127.0.0.1:8080", "local"),
        ];
        let who = |t: &str| resolve(&routes, Tool::Git, t).map(|r| r.account.as_str());
        assert_eq!(who("https://git.example.com/other/repo.git"), Some("all"));
        assert_eq!(who("https://git.example.com/team/repo.git"), Some("team"));
        assert_eq!(
            who("https://GIT.example.com:443/team/secret"),
            Some("secret")
        );
        assert_eq!(who("https://git.example.com/teamster/repo"), Some("all"));
        assert_eq!(who("http://127.0.0.1:8080/r.git"), Some("local"));
        assert_eq!(who("http://127.0.0.1:8081/r.git"), None);
        assert_eq!(
            who("http://git.example.com/team"),
            None,
            "scheme must match"
        );
        assert_eq!(who("https://git.example.com.evil.test/team"), None);
        assert_eq!(who("https://evil.test/git.example.com"), None);
    }

    #[test]
    fn targets_are_refused_when_a_token_could_leak() {
        for bad in [
            "http://git.example.com",
            "ftp://git.example.com",
            "https://user@git.example.com",
            "https://git.example.com/?x=1",
            "not a url",
        ] {
            assert!(route(bad, "a").validate().is_err(), "{bad}");
        }
        assert!(
            route("https://git.example.com/team", "a")
                .validate()
                .is_ok()
        );
        assert!(
            route("https://git.example.com", "bad name")
                .validate()
                .is_err()
        );
        let mut r = route("https://git.example.com", "a");
        r.username = Some("a:b".into());
        assert_eq!(r.validate().unwrap_err().0, "username");
    }

    #[test]
    fn usernames_default_per_host() {
        assert_eq!(
            route("https://github.com", "a").username(),
            "x-access-token"
        );
        assert_eq!(route("https://gitlab.com/g", "a").username(), "oauth2");
        let mut r = route("https://github.com", "a");
        r.username = Some("me".into());
        assert_eq!(r.username(), "me");
    }

    #[test]
    fn kubectl_routes_match_a_cluster_name_or_server_exactly() {
        let mut by_name = route("prod", "ops");
        by_name.tool = Tool::Kubectl;
        let mut by_server = route("https://k8s.example.com:6443/", "dev");
        by_server.tool = Tool::Kubectl;
        let routes = [
            by_name,
            by_server,
            route("https://k8s.example.com:6443", "git"),
        ];
        let who = |t: &str| resolve(&routes, Tool::Kubectl, t).map(|r| r.account.as_str());
        assert_eq!(who("prod"), Some("ops"));
        assert_eq!(who("https://k8s.example.com:6443"), Some("dev"));
        assert_eq!(who("https://k8s.example.com:6443/x"), None);
        assert_eq!(who("production"), None);
        assert!(routes[0].validate().is_ok());
        let mut bad = route("http://k8s.example.com", "a");
        bad.tool = Tool::Kubectl;
        assert!(bad.validate().is_err(), "plain http off loopback");
    }

    #[test]
    fn docker_registries_match_by_host_and_port() {
        let mut hub = route("docker.io", "hub");
        hub.tool = Tool::Docker;
        let mut local = route("localhost:5000", "local");
        local.tool = Tool::Docker;
        let routes = [hub, local];
        let who = |t: &str| resolve(&routes, Tool::Docker, t).map(|r| r.account.as_str());
        assert_eq!(who("https://index.docker.io/v1/"), Some("hub"));
        assert_eq!(who("LOCALHOST:5000"), Some("local"));
        assert_eq!(who("localhost:5001"), None);
        assert_eq!(who("user@localhost:5000"), None);
        assert!(routes[1].validate().is_ok());
    }

    #[test]
    fn targets_normalize_without_trailing_slash() {
        assert_eq!(
            normalize_target(Tool::Git, "https://Git.Example.com/team/").unwrap(),
            "https://git.example.com/team"
        );
        assert_eq!(
            normalize_target(Tool::Git, "https://git.example.com").unwrap(),
            "https://git.example.com"
        );
    }
}
