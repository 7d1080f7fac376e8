//! `authctl route add | list | remove`: which account serves which developer tool's target
//! (config.toml `[[route]]` tables, edited and resolved by the agent), and `--install`, which
//! points the tool itself at authctl.

use std::fmt::Write as _;

use authctl_client::Client;
use authctl_client::proto::{AddRouteRequest, ListRoutesRequest, RemoveRouteRequest, Route};
use clap::{Args, Subcommand, ValueEnum};

use crate::error::CliError;
use crate::output::println_out;

#[derive(Subcommand)]
pub enum RouteCommand {
    /// Route a tool's target to an account (git URL prefix, kubectl cluster, docker registry)
    Add(AddArgs),
    /// List the routes
    List {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Remove the route of a tool for a target
    Remove {
        /// The tool: git, kubectl or docker
        tool: ToolArg,
        /// The target exactly as `authctl route list` shows it
        target: String,
    },
}

/// The tools a route can serve.
#[derive(Clone, Copy, ValueEnum)]
pub enum ToolArg {
    /// git over HTTPS, through `authctl git-credential` (target: a URL prefix)
    Git,
    /// kubectl, through `authctl kubectl-credential` (target: a cluster name or server URL)
    Kubectl,
    /// docker, through `docker-credential-authctl` (target: a registry host[:port])
    Docker,
}

impl ToolArg {
    fn name(self) -> &'static str {
        match self {
            Self::Git => "git",
            Self::Kubectl => "kubectl",
            Self::Docker => "docker",
        }
    }
}

#[derive(Args)]
pub struct AddArgs {
    /// The tool: git, kubectl or docker
    tool: ToolArg,
    /// git: the URL prefix (https://HOST[:PORT][/PATH]); the longest matching route wins.
    /// kubectl: the cluster's name in the kubeconfig, or its API server URL.
    /// docker: the registry's host[:port] (docker.io for Docker Hub)
    target: String,
    /// The account (or a provider with one account) whose tokens the tool gets
    account: String,
    /// Ask for a subset of the account's scopes (repeatable)
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// RFC 8707 resource indicator for the tokens
    #[arg(long, value_name = "URL")]
    resource: Option<String>,
    /// The user name presented beside the token (default: x-access-token for GitHub, else oauth2)
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// Replace a route of the same tool and target
    #[arg(long)]
    replace: bool,
    /// Also configure the tool to ask authctl (git: `git config --global
    /// credential.TARGET.helper '!authctl git-credential'`; kubectl: an exec user
    /// `authctl-ACCOUNT` in the kubeconfig, set on every context of the cluster; docker:
    /// `credHelpers` in ~/.docker/config.json)
    #[arg(long)]
    install: bool,
    /// kubectl with --install: the cluster takes the account's ID token, not its access token
    #[arg(long, requires = "install")]
    id_token: bool,
}

pub async fn run(c: RouteCommand) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    match c {
        RouteCommand::Add(a) => add(&mut client, a).await,
        RouteCommand::List { json } => list(&mut client, json).await,
        RouteCommand::Remove { tool, target } => {
            let r = client
                .raw()
                .remove_route(RemoveRouteRequest {
                    tool: tool.name().into(),
                    target: target.clone(),
                })
                .await
                .map_err(|s| client.error(s))?
                .into_inner();
            eprintln!(
                "removed the {} route for {target} from {}",
                tool.name(),
                r.config_path
            );
            Ok(())
        }
    }
}

async fn add(client: &mut Client, a: AddArgs) -> Result<(), CliError> {
    if a.id_token && !matches!(a.tool, ToolArg::Kubectl) {
        return Err(CliError::usage("--id-token is for kubectl routes"));
    }
    let r = client
        .raw()
        .add_route(AddRouteRequest {
            route: Some(Route {
                tool: a.tool.name().into(),
                target: a.target,
                account: a.account,
                scopes: a.scopes,
                resource: a.resource.unwrap_or_default(),
                username: a.username.unwrap_or_default(),
            }),
            replace: a.replace,
        })
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    let route = r.route.unwrap_or_default();
    eprintln!(
        "added the {} route {} -> {} to {}",
        route.tool, route.target, route.account, r.config_path
    );
    if a.install {
        match a.tool {
            ToolArg::Git => super::git_credential::install(&route.target)?,
            ToolArg::Docker => super::docker_credential::install(&route.target)?,
            ToolArg::Kubectl => {
                super::kubectl_credential::install(&route.target, &route.account, a.id_token)?;
            }
        }
    }
    Ok(())
}

async fn list(client: &mut Client, json: bool) -> Result<(), CliError> {
    let routes = client
        .raw()
        .list_routes(ListRoutesRequest {})
        .await
        .map_err(|s| client.error(s))?
        .into_inner()
        .routes;
    if json {
        let v: Vec<_> = routes
            .iter()
            .map(|r| {
                serde_json::json!({"tool": r.tool, "target": r.target, "account": r.account,
                    "scopes": r.scopes, "resource": r.resource, "username": r.username})
            })
            .collect();
        println_out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if routes.is_empty() {
        eprintln!(
            "no routes; add one with `authctl route add git https://HOST ACCOUNT` or `authctl route add kubectl CLUSTER ACCOUNT`"
        );
    } else {
        for r in routes {
            let mut line = format!(
                "{}\t{}\t{}\tuser {}",
                r.tool, r.target, r.account, r.username
            );
            if !r.scopes.is_empty() {
                let _ = write!(line, "\tscopes [{}]", r.scopes.join(" "));
            }
            if !r.resource.is_empty() {
                let _ = write!(line, "\tresource {}", r.resource);
            }
            println_out(&line);
        }
    }
    Ok(())
}
