//! `docker-credential-authctl get|store|erase|list`: docker's credential-helper protocol
//! (docker-credential-helpers) in front of the agent's `docker` routes. `docker-credential-authctl`
//! is `authctl` under another name (a symlink that `make install` and the Debian package make), so
//! the agent attests its requests as the CLI's, on behalf of docker.
//!
//! docker reads a helper's answer, and its errors, from stdout; "credentials not found in native
//! keychain" is how a helper says it has nothing for a registry.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use authctl_client::Client;
use authctl_client::proto::{GetTokenRequest, ListRoutesRequest, ResolveRouteRequest, Route};
use secrecy::ExposeSecret;

use crate::error::{CliError, exit};

/// The message docker takes for "no credentials here".
const NOT_FOUND: &str = "credentials not found in native keychain";
/// docker sends a registry name or a small JSON object.
const MAX_INPUT: u64 = 64 * 1024;

/// The name under which `authctl` speaks docker's protocol.
pub const PROGRAM: &str = "docker-credential-authctl";

/// Runs one operation; every failure is printed to stdout, where docker looks for it.
pub async fn main(operation: Option<&str>) -> u8 {
    match run(operation).await {
        Ok(()) => 0,
        Err(e) => {
            println!("{}", e.message);
            if let Some(h) = &e.hint {
                eprintln!("hint: {h}");
            }
            exit::FAILURE
        }
    }
}

async fn run(operation: Option<&str>) -> Result<(), CliError> {
    let mut input = String::new();
    if operation != Some("list") {
        std::io::stdin()
            .take(MAX_INPUT)
            .read_to_string(&mut input)?;
    }
    match operation {
        Some("get") => get(input.trim()).await,
        Some("store") => {
            let v: serde_json::Value = serde_json::from_str(&input)
                .map_err(|e| CliError::usage(format!("store expects docker's JSON: {e}")))?;
            let server = v["ServerURL"].as_str().unwrap_or_default();
            keep_out(server, "store").await
        }
        Some("erase") => keep_out(input.trim(), "erase").await,
        Some("list") => list().await,
        _ => Err(CliError::usage(format!(
            "usage: {PROGRAM} get|store|erase|list (docker runs it; see `authctl route add docker`)"
        ))),
    }
}

async fn resolve(client: &mut Client, server: &str) -> Result<Route, CliError> {
    Ok(client
        .raw()
        .resolve_route(ResolveRouteRequest {
            tool: "docker".into(),
            target: server.to_owned(),
        })
        .await
        .map_err(|s| client.error(s))?
        .into_inner())
}

/// The JSON docker reads from `get`.
fn answer(server: &str, username: &str, secret: &str) -> String {
    serde_json::json!({"ServerURL": server, "Username": username, "Secret": secret}).to_string()
}

async fn get(server: &str) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let route = match resolve(&mut client, server).await {
        Ok(r) => r,
        Err(e) if e.code == exit::NOT_FOUND => {
            eprintln!("{PROGRAM}: {}", e.message);
            return Err(CliError::new(exit::NOT_FOUND, NOT_FOUND));
        }
        Err(e) => return Err(e),
    };
    let t = client
        .get_token_with(GetTokenRequest {
            account: route.account.clone(),
            scopes: route.scopes.clone(),
            resource: route.resource.clone(),
            ..GetTokenRequest::default()
        })
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
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        answer(server, &route.username, t.access_token.expose_secret())
    )?;
    out.flush()?;
    Ok(())
}

/// `store` and `erase`: the agent owns the tokens of routed registries, so there is nothing to
/// keep or forget; any other registry is refused, so that `docker login` does not silently lose
/// a password.
async fn keep_out(server: &str, operation: &str) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    match resolve(&mut client, server).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == exit::NOT_FOUND => Err(CliError::new(
            exit::NOT_FOUND,
            format!(
                "{PROGRAM} cannot {operation} credentials for `{server}`: it serves only routed registries, from the authctl agent; add a route with `authctl route add docker {server} ACCOUNT`, or use another credential helper for this registry"
            ),
        )),
        Err(e) => Err(e),
    }
}

async fn list() -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let routes = client
        .raw()
        .list_routes(ListRoutesRequest {})
        .await
        .map_err(|s| client.error(s))?
        .into_inner()
        .routes;
    let map: serde_json::Map<String, serde_json::Value> = routes
        .into_iter()
        .filter(|r| r.tool == "docker")
        .map(|r| (r.target, r.username.into()))
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::Value::Object(map))?;
    out.flush()?;
    Ok(())
}

/// The key docker looks `registry` up by in `credHelpers`: Docker Hub's is its v1 URL.
fn cred_helpers_key(registry: &str) -> String {
    if registry == "index.docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        registry.into()
    }
}

/// `route add docker REGISTRY ACCOUNT --install`: `"credHelpers": {REGISTRY: "authctl"}` in
/// docker's `config.json` (`$DOCKER_CONFIG`, else `~/.docker`), other keys kept; written
/// atomically, 0600.
pub fn install(registry: &str) -> Result<(), CliError> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))
        .ok_or_else(|| CliError::new(exit::FAILURE, "neither DOCKER_CONFIG nor HOME is set"))?;
    let path = dir.join("config.json");
    let fail = |e: &dyn std::fmt::Display| {
        CliError::new(
            exit::FAILURE,
            format!("cannot update {}: {e}", path.display()),
        )
    };
    let mut config: serde_json::Value = match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t).map_err(|e| fail(&e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(fail(&e)),
    };
    let helpers = config
        .as_object_mut()
        .ok_or_else(|| fail(&"not a JSON object"))?
        .entry("credHelpers")
        .or_insert_with(|| serde_json::json!({}));
    let helpers = helpers
        .as_object_mut()
        .ok_or_else(|| fail(&"credHelpers is not an object"))?;
    let key = cred_helpers_key(registry);
    helpers.insert(key.clone(), "authctl".into());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| fail(&e))?;
    let text = serde_json::to_string_pretty(&config).map_err(|e| fail(&e))?;
    let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(&e)
        })?;
    eprintln!(
        "docker now asks {PROGRAM} for {key} (credHelpers in {})",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_answers_as_docker_reads_it() {
        let v: serde_json::Value =
            serde_json::from_str(&answer("registry.example.com", "oauth2", "tok")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ServerURL": "registry.example.com", "Username": "oauth2", "Secret": "tok"})
        );
    }
}
