//! `authctl git-credential get|store|erase`: git's credential-helper protocol
//! (gitcredentials(7), git-credential(1)) in front of the agent. `get` resolves the remote's URL
//! through the agent's `[[route]]` tables and answers with the route's user name and a fresh
//! token (or, where git announces `capability[]=authtype`, git ≥ 2.46, with `authtype=Bearer`
//! and `credential=`), plus `password_expiry_utc`. `erase` of the token the agent holds makes it
//! refresh, so the next `get` hands out a new one. `store` is a no-op: the agent owns the
//! tokens. A host without a route gets nothing on stdout, ever.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::Command;

use authctl_client::Client;
use authctl_client::proto::{GetTokenRequest, ResolveRouteRequest, Route};
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::error::CliError;

/// git's requests are a few lines; more is not git.
const MAX_INPUT: u64 = 64 * 1024;

#[derive(Args)]
pub struct GitCredentialArgs {
    /// The operation git asks for
    operation: Operation,
}

#[derive(Clone, Copy, ValueEnum)]
enum Operation {
    /// Answer with the user name and a fresh token for a routed URL
    Get,
    /// Nothing to keep: the agent owns the tokens
    Store,
    /// git's server rejected the token: refresh it, so the next `get` hands out a new one
    Erase,
}

/// What git sent: the attributes a helper uses. Secrets stay secret.
#[derive(Default)]
struct CredentialRequest {
    protocol: String,
    host: String,
    path: String,
    /// `password=` or, with `authtype`, `credential=`: the token git was rejected with.
    secret: Option<SecretString>,
    /// git understands `authtype`/`credential` answers.
    authtype_capable: bool,
}

impl CredentialRequest {
    /// Parses git's `key=value` lines, up to an empty line or the end.
    fn parse(text: &str) -> Self {
        let mut r = Self::default();
        for line in text.lines() {
            if line.is_empty() {
                break;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "protocol" => value.clone_into(&mut r.protocol),
                "host" => value.clone_into(&mut r.host),
                "path" => value.clone_into(&mut r.path),
                "password" | "credential" => r.secret = Some(value.to_owned().into()),
                "capability[]" if value == "authtype" => r.authtype_capable = true,
                _ => {}
            }
        }
        r
    }

    /// The remote's URL, for http(s) remotes with a host.
    fn url(&self) -> Option<String> {
        if !matches!(self.protocol.as_str(), "https" | "http") || self.host.is_empty() {
            return None;
        }
        let path = self.path.trim_start_matches('/');
        Some(format!("{}://{}/{path}", self.protocol, self.host))
    }
}

/// The answer to `get`: `None` when the token cannot travel in git's line protocol.
fn answer(route: &Route, token: &SecretString, expires_at: i64, authtype: bool) -> Option<String> {
    let t = token.expose_secret();
    if t.is_empty() || t.contains(['\n', '\r', '\0']) {
        return None;
    }
    let mut out = if authtype {
        format!("capability[]=authtype\nauthtype=Bearer\ncredential={t}\n")
    } else {
        format!("username={}\npassword={t}\n", route.username)
    };
    if expires_at > 0 {
        let _ = writeln!(out, "password_expiry_utc={expires_at}");
    }
    Some(out)
}

pub async fn run(a: GitCredentialArgs) -> Result<(), CliError> {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut input)?;
    let req = CredentialRequest::parse(&input);
    let Some(url) = req.url() else {
        return Ok(()); // not an HTTP remote: not ours
    };
    match a.operation {
        Operation::Store => Ok(()),
        Operation::Get => get(&req, &url).await,
        Operation::Erase => erase(&req, &url).await,
    }
}

async fn resolve(client: &mut Client, url: &str) -> Result<Route, CliError> {
    Ok(client
        .raw()
        .resolve_route(ResolveRouteRequest {
            tool: "git".into(),
            target: url.to_owned(),
        })
        .await
        .map_err(|s| client.error(s))?
        .into_inner())
}

fn token_request(route: &Route, force_refresh: bool) -> GetTokenRequest {
    GetTokenRequest {
        account: route.account.clone(),
        scopes: route.scopes.clone(),
        resource: route.resource.clone(),
        force_refresh,
        ..GetTokenRequest::default()
    }
}

async fn get(req: &CredentialRequest, url: &str) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let route = resolve(&mut client, url).await?;
    let t = client
        .get_token_with(token_request(&route, false))
        .await
        .map_err(|e| {
            let login = e.is_login_required();
            let err = CliError::from(e);
            if login {
                err.with_hint(format!("run `authctl login {}`", route.account))
            } else {
                err
            }
        })?;
    let out =
        answer(&route, &t.access_token, t.expires_at, req.authtype_capable).ok_or_else(|| {
            CliError::new(
                crate::error::exit::FAILURE,
                "the token cannot be passed to git",
            )
        })?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

async fn erase(req: &CredentialRequest, url: &str) -> Result<(), CliError> {
    let Some(rejected) = &req.secret else {
        return Ok(());
    };
    let mut client = super::connect().await?;
    // git erases with every helper; a host without a route is none of ours.
    let Ok(route) = resolve(&mut client, url).await else {
        return Ok(());
    };
    let current = client.get_token_with(token_request(&route, false)).await?;
    // Only the token the agent still serves needs replacing; a newer one is already there.
    if current.access_token.expose_secret() == rejected.expose_secret() {
        client.get_token_with(token_request(&route, true)).await?;
        eprintln!(
            "authctl: the server refused the token of `{}`; refreshed it",
            route.account
        );
    }
    Ok(())
}

/// The helper value for git's config: `!authctl git-credential` when `authctl` on `PATH` is this
/// program, else its absolute path.
fn helper_value() -> String {
    let me = std::env::current_exe().ok();
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("authctl"))
            .find(|c| c.is_file())
    });
    let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    match (&me, &on_path) {
        (Some(me), Some(found)) if canon(me) == canon(found) => "!authctl git-credential".into(),
        (Some(me), _) => format!(
            "!'{}' git-credential",
            me.display().to_string().replace('\'', r"'\''")
        ),
        (None, _) => "!authctl git-credential".into(),
    }
}

/// `route add git … --install`: makes git ask authctl, and only authctl, for `target` (in the
/// user's global git config). An empty helper first clears helpers configured more generally;
/// a target with a path needs `useHttpPath` so that git sends the path.
pub fn install(target: &str) -> Result<(), CliError> {
    let key = format!("credential.{target}.helper");
    let git = |args: &[&str]| -> Result<i32, CliError> {
        let status = Command::new("git")
            .args(["config", "--global"])
            .args(args)
            .status()
            .map_err(|e| {
                CliError::new(crate::error::exit::FAILURE, format!("cannot run git: {e}"))
            })?;
        Ok(status.code().unwrap_or(-1))
    };
    // Exit code 5: nothing to unset.
    if !matches!(git(&["--unset-all", &key])?, 0 | 5) {
        return Err(CliError::new(
            crate::error::exit::FAILURE,
            format!("git config --unset-all {key} failed"),
        ));
    }
    let helper = helper_value();
    for args in [["--add", &key, ""], ["--add", &key, &helper]] {
        if git(&args)? != 0 {
            return Err(CliError::new(
                crate::error::exit::FAILURE,
                format!("git config {key} failed"),
            ));
        }
    }
    let has_path = url_has_path(target);
    if has_path && git(&[&format!("credential.{target}.useHttpPath"), "true"])? != 0 {
        return Err(CliError::new(
            crate::error::exit::FAILURE,
            "git config useHttpPath failed",
        ));
    }
    eprintln!("git now asks authctl for {target}: git config --global {key} '{helper}'");
    Ok(())
}

fn url_has_path(target: &str) -> bool {
    target
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/').contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Route {
        Route {
            tool: "git".into(),
            target: "https://git.example.com".into(),
            account: "corp".into(),
            username: "oauth2".into(),
            ..Route::default()
        }
    }

    #[test]
    fn parses_what_git_sends() {
        let r = CredentialRequest::parse(
            "capability[]=authtype\nprotocol=https\nhost=git.example.com:8443\npath=team/r.git\n\
             wwwauth[]=Basic realm=\"x\"\npassword=old\n\nprotocol=ignored\n",
        );
        assert!(r.authtype_capable);
        assert_eq!(r.url().unwrap(), "https://git.example.com:8443/team/r.git");
        assert_eq!(r.secret.unwrap().expose_secret(), "old");
        assert_eq!(
            CredentialRequest::parse("protocol=https\nhost=h\n")
                .url()
                .unwrap(),
            "https://h/"
        );
        assert!(
            CredentialRequest::parse("protocol=ssh\nhost=h\n")
                .url()
                .is_none()
        );
        assert!(CredentialRequest::parse("protocol=https\n").url().is_none());
    }

    #[test]
    fn answers_basic_or_bearer_with_expiry() {
        let t = SecretString::from("tok");
        assert_eq!(
            answer(&route(), &t, 1_700_000_000, false).unwrap(),
            "username=oauth2\npassword=tok\npassword_expiry_utc=1700000000\n"
        );
        assert_eq!(
            answer(&route(), &t, 0, true).unwrap(),
            "capability[]=authtype\nauthtype=Bearer\ncredential=tok\n"
        );
        assert!(answer(&route(), &SecretString::from("a\nhost=evil"), 0, false).is_none());
    }

    #[test]
    fn paths_in_targets() {
        assert!(url_has_path("https://h/team"));
        assert!(!url_has_path("https://h"));
        assert!(!url_has_path("https://h/"));
    }
}
