//! `authctl kubectl-credential [ACCOUNT]`: kubectl's exec credential plugin
//! (client-go "client-go credential plugins"). Prints an `ExecCredential` of the version
//! kubectl asks for in `KUBERNETES_EXEC_INFO` (`client.authentication.k8s.io/v1`, or `v1beta1`
//! as older clients ask) with the token and its `expirationTimestamp`. Without ACCOUNT, the
//! cluster's server (`provideClusterInfo: true`) is resolved through the agent's routes.

use std::io::IsTerminal;
use std::process::Command;

use authctl_client::proto::{GetTokenRequest, ResolveRouteRequest};
use clap::Args;
use secrecy::ExposeSecret;

use crate::error::{CliError, exit};
use crate::output::println_out;

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

#[derive(Args)]
pub struct KubectlCredentialArgs {
    /// Account name, or a provider with one account (default: the route of the cluster's server,
    /// which kubectl passes with `provideClusterInfo: true`)
    account: Option<String>,
    /// Hand out the account's ID token (for clusters that take OIDC ID tokens)
    #[arg(long)]
    id_token: bool,
}

/// What kubectl tells the plugin (`KUBERNETES_EXEC_INFO`).
#[derive(Debug, PartialEq)]
struct ExecInfo {
    api_version: String,
    interactive: bool,
    server: Option<String>,
}

impl ExecInfo {
    /// Parses the variable; absent or unreadable: `v1`, not interactive, no cluster.
    fn parse(text: Option<&str>) -> Result<Self, CliError> {
        let v: serde_json::Value = match text {
            Some(t) if !t.trim().is_empty() => serde_json::from_str(t)
                .map_err(|e| CliError::usage(format!("KUBERNETES_EXEC_INFO is not JSON: {e}")))?,
            _ => serde_json::Value::Null,
        };
        let api_version = v["apiVersion"].as_str().unwrap_or(V1).to_owned();
        if api_version != V1 && api_version != V1BETA1 {
            return Err(CliError::usage(format!(
                "kubectl asks for ExecCredential {api_version}; authctl speaks {V1} and {V1BETA1}"
            )));
        }
        Ok(Self {
            api_version,
            interactive: v["spec"]["interactive"].as_bool().unwrap_or(false),
            server: v["spec"]["cluster"]["server"]
                .as_str()
                .map(ToOwned::to_owned),
        })
    }
}

/// The `ExecCredential` kubectl reads.
fn credential(api_version: &str, token: &str, expires_at: i64) -> serde_json::Value {
    let mut status = serde_json::json!({ "token": token });
    if let Some(t) = chrono::DateTime::from_timestamp(expires_at, 0).filter(|_| expires_at > 0) {
        status["expirationTimestamp"] = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into();
    }
    serde_json::json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": status,
    })
}

pub async fn run(a: KubectlCredentialArgs) -> Result<(), CliError> {
    let info = ExecInfo::parse(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())?;
    let mut client = super::connect().await?;
    let mut req = match (&a.account, &info.server) {
        (Some(account), _) => GetTokenRequest {
            account: account.clone(),
            ..GetTokenRequest::default()
        },
        (None, Some(server)) => {
            let route = client
                .raw()
                .resolve_route(ResolveRouteRequest {
                    tool: "kubectl".into(),
                    target: server.clone(),
                })
                .await
                .map_err(|s| client.error(s))?
                .into_inner();
            GetTokenRequest {
                account: route.account,
                scopes: route.scopes,
                resource: route.resource,
                ..GetTokenRequest::default()
            }
        }
        (None, None) => {
            return Err(CliError::usage(
                "name the account (args: [kubectl-credential, ACCOUNT]), or set `provideClusterInfo: true` so that the cluster's route is used",
            ));
        }
    };
    let account = req.account.clone();
    let mut result = client.get_token_with(req.clone()).await;
    // kubectl says whether the user can answer (interactiveMode and a terminal on stdin).
    let can_ask = info.interactive && std::io::stdin().is_terminal();
    if let Err(e) = &result
        && e.is_login_required()
        && can_ask
    {
        eprintln!(
            "authctl: `{account}` needs a login; the agent is opening your browser — finish the login there"
        );
        req.interactive = true;
        result = client.get_token_with(req).await;
    }
    let t = result.map_err(|e| {
        let login = e.is_login_required();
        let err = CliError::from(e);
        if login {
            err.with_hint(format!("run `authctl login {account}`, then retry kubectl"))
        } else {
            err
        }
    })?;
    let token = if a.id_token {
        t.id_token.ok_or_else(|| {
            CliError::new(
                exit::FAILURE,
                format!("account `{account}` has no ID token (the provider issued none)"),
            )
        })?
    } else {
        t.access_token
    };
    println_out(&credential(&info.api_version, token.expose_secret(), t.expires_at).to_string());
    Ok(())
}

/// `route add kubectl TARGET ACCOUNT --install`: an exec user `authctl-ACCOUNT` in the kubeconfig
/// (through `kubectl config`, so every kubeconfig layout stays valid), set as the user of every
/// context whose cluster is TARGET (by name, or by server URL).
pub fn install(target: &str, account: &str, id_token: bool) -> Result<(), CliError> {
    let user = format!("authctl-{account}");
    // kubectl before 1.22 (Debian 12's kubernetes-client is 1.20) knows only v1beta1.
    let api = if kubectl_minor().is_some_and(|m| m < 22) {
        V1BETA1
    } else {
        V1
    };
    let mut args = vec![
        "config".to_owned(),
        "set-credentials".into(),
        user.clone(),
        "--exec-command=authctl".into(),
        format!("--exec-api-version={api}"),
        "--exec-arg=kubectl-credential".into(),
        format!("--exec-arg={account}"),
    ];
    if id_token {
        args.push("--exec-arg=--id-token".into());
    }
    if api == V1 {
        // v1 requires interactiveMode; kubectl versions without the flag write a default.
        let mut with_mode = args.clone();
        with_mode.push("--exec-interactive-mode=IfAvailable".into());
        if let Err(e) = kubectl(&with_mode) {
            if !e.message.contains("unknown flag") {
                return Err(e);
            }
            kubectl(&args)?;
        }
    } else {
        kubectl(&args)?;
    }
    let view = kubectl(&["config".into(), "view".into(), "-o".into(), "json".into()])?;
    let v: serde_json::Value = serde_json::from_str(&view)
        .map_err(|e| CliError::new(exit::FAILURE, format!("kubectl config view: {e}")))?;
    let servers: Vec<(&str, &str)> = v["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?, c["cluster"]["server"].as_str()?)))
        .collect();
    let wanted = |cluster: &str| {
        cluster == target
            || servers
                .iter()
                .any(|(n, s)| *n == cluster && s.trim_end_matches('/') == target)
    };
    let contexts: Vec<String> = v["contexts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["context"]["cluster"].as_str().is_some_and(wanted))
        .filter_map(|c| c["name"].as_str().map(ToOwned::to_owned))
        .collect();
    if contexts.is_empty() {
        return Err(CliError::new(
            exit::NOT_FOUND,
            format!(
                "kubeconfig user `{user}` added, but no context uses cluster `{target}`; set one with `kubectl config set-context NAME --cluster=CLUSTER --user={user}`"
            ),
        ));
    }
    for c in &contexts {
        kubectl(&[
            "config".into(),
            "set-context".into(),
            c.clone(),
            format!("--user={user}"),
        ])?;
        eprintln!("kubectl context `{c}` now gets its credentials from authctl (user `{user}`)");
    }
    Ok(())
}

/// The minor version of the `kubectl` on `PATH` (`"32+"` is 32).
fn kubectl_minor() -> Option<u32> {
    let out = kubectl(&[
        "version".into(),
        "--client".into(),
        "-o".into(),
        "json".into(),
    ])
    .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let minor = v["clientVersion"]["minor"].as_str()?;
    minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()
}

fn kubectl(args: &[String]) -> Result<String, CliError> {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .map_err(|e| CliError::new(exit::FAILURE, format!("cannot run kubectl: {e}")))?;
    if !out.status.success() {
        return Err(CliError::new(
            exit::FAILURE,
            format!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_info_versions_interactive_and_cluster() {
        let i = ExecInfo::parse(Some(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1",
               "spec":{"interactive":true,"cluster":{"server":"https://k:6443"}}}"#,
        ))
        .unwrap();
        assert_eq!(i.api_version, V1BETA1);
        assert!(i.interactive);
        assert_eq!(i.server.as_deref(), Some("https://k:6443"));
        let none = ExecInfo::parse(None).unwrap();
        assert_eq!(none.api_version, V1);
        assert!(!none.interactive);
        assert!(
            ExecInfo::parse(Some(r#"{"apiVersion":"client.authentication.k8s.io/v9"}"#)).is_err()
        );
    }

    #[test]
    fn exec_credential_json_as_documented() {
        assert_eq!(
            credential(V1, "tok", 1_700_000_000),
            serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {"token": "tok", "expirationTimestamp": "2023-11-14T22:13:20Z"}
            })
        );
        assert_eq!(
            credential(V1BETA1, "t", 0)["status"],
            serde_json::json!({"token": "t"})
        );
    }
}
