//! `authctl provider add | list | remove`: edit config.toml through the agent (which keeps client
//! secrets in its secret store, never in the file) and reload it.

use std::io::Read;

use authctl_client::Client;
use authctl_client::proto::{
    AddProviderRequest, Endpoints, ListPresetsRequest, ListProvidersRequest, RedirectHost,
    RemoveProviderRequest,
};
use clap::{Args, Subcommand};

use crate::error::CliError;
use crate::output::println_out;

#[derive(Subcommand)]
pub enum ProviderCommand {
    /// Add a provider (OpenID Connect discovery from --issuer, or a --preset)
    Add(Box<AddArgs>),
    /// List the configured providers
    List {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// List the provider presets (`provider add NAME --preset P`)
    Presets,
    /// Remove a provider (log out its accounts first)
    Remove {
        /// Provider name
        name: String,
    },
}

#[derive(Args)]
pub struct AddArgs {
    /// A name for the provider (letters, digits, '.', '_', '-')
    name: String,
    /// The issuer URL; endpoints are discovered from it (not needed with --preset, or with
    /// --authorization-endpoint and --token-endpoint for providers without discovery)
    #[arg(long, required_unless_present_any = ["preset", "authorization_endpoint"])]
    issuer: Option<String>,
    /// Explicit authorization endpoint (wins over discovery; with --token-endpoint, replaces it)
    #[arg(long, value_name = "URL", requires = "token_endpoint")]
    authorization_endpoint: Option<String>,
    /// Explicit token endpoint
    #[arg(long, value_name = "URL")]
    token_endpoint: Option<String>,
    /// Explicit device authorization endpoint (RFC 8628), for `authctl login --device`
    #[arg(long, value_name = "URL")]
    device_authorization_endpoint: Option<String>,
    /// Explicit revocation endpoint (RFC 7009), used by `authctl logout`
    #[arg(long, value_name = "URL")]
    revocation_endpoint: Option<String>,
    /// Explicit userinfo endpoint
    #[arg(long, value_name = "URL")]
    userinfo_endpoint: Option<String>,
    /// Explicit JWKS URL for ID-token signatures
    #[arg(long, value_name = "URL")]
    jwks_uri: Option<String>,
    /// Explicit end-session endpoint, for `authctl logout --end-session`
    #[arg(long, value_name = "URL")]
    end_session_endpoint: Option<String>,
    /// RFC 8707 resource indicator (the API or MCP server) sent with every token request
    #[arg(long, value_name = "URL")]
    resource: Option<String>,
    /// Loopback host of the redirect URI, as registered: 127.0.0.1 (default), [::1] or localhost
    #[arg(long, value_name = "HOST", value_parser = parse_redirect_host)]
    redirect_host: Option<RedirectHost>,
    /// Fixed redirect port, for servers that match redirect URIs exactly (repeatable; tried in
    /// order)
    #[arg(long = "redirect-port", value_name = "PORT")]
    redirect_ports: Vec<u16>,
    /// Fill endpoints and quirks from a preset: google, microsoft, github, gitlab, okta, auth0,
    /// keycloak (see `authctl provider presets`)
    #[arg(long)]
    preset: Option<String>,
    /// Preset argument: the Entra tenant (id, domain, `organizations` or `common`)
    #[arg(long, requires = "preset")]
    tenant: Option<String>,
    /// Preset argument: the Okta or Auth0 domain
    #[arg(long, requires = "preset")]
    domain: Option<String>,
    /// Preset argument: the Keycloak realm
    #[arg(long, requires = "preset")]
    realm: Option<String>,
    /// Preset argument: the Keycloak or self-managed GitLab base URL
    #[arg(long, requires = "preset")]
    base_url: Option<String>,
    /// Preset argument: the Auth0 API audience
    #[arg(long, requires = "preset")]
    audience: Option<String>,
    /// Preset argument: the Okta authorization server (default `default`)
    #[arg(long, requires = "preset")]
    auth_server: Option<String>,
    /// The OAuth client id registered at the provider (a native/desktop client)
    #[arg(long)]
    client_id: String,
    /// Default scopes for logins (repeatable), e.g. --scope openid --scope offline_access
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Read a client secret from stdin (for providers that insist on one); stored in the secret
    /// store, never in config.toml
    #[arg(long)]
    client_secret_stdin: bool,
    /// Replace a provider of the same name
    #[arg(long)]
    replace: bool,
}

pub async fn run(c: ProviderCommand) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    match c {
        ProviderCommand::Add(a) => add(&mut client, a).await,
        ProviderCommand::List { json } => list(&mut client, json).await,
        ProviderCommand::Presets => presets(&mut client).await,
        ProviderCommand::Remove { name } => remove(&mut client, &name).await,
    }
}

async fn add(client: &mut Client, a: Box<AddArgs>) -> Result<(), CliError> {
    let client_secret = if a.client_secret_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        let s = s.trim().to_owned();
        if s.is_empty() {
            return Err(CliError::usage(
                "--client-secret-stdin given but stdin was empty",
            ));
        }
        Some(s)
    } else {
        None
    };
    let r = client
        .raw()
        .add_provider(AddProviderRequest {
            name: a.name.clone(),
            issuer: a.issuer.unwrap_or_default(),
            client_id: a.client_id,
            scopes: a.scopes,
            client_secret,
            replace: a.replace,
            preset: a.preset.unwrap_or_default(),
            preset_args: given([
                ("tenant", a.tenant),
                ("domain", a.domain),
                ("realm", a.realm),
                ("base_url", a.base_url),
                ("audience", a.audience),
                ("auth_server", a.auth_server),
            ]),
            resource: a.resource.unwrap_or_default(),
            endpoints: Some(Endpoints {
                authorization_endpoint: a.authorization_endpoint,
                token_endpoint: a.token_endpoint,
                device_authorization_endpoint: a.device_authorization_endpoint,
                revocation_endpoint: a.revocation_endpoint,
                userinfo_endpoint: a.userinfo_endpoint,
                jwks_uri: a.jwks_uri,
                end_session_endpoint: a.end_session_endpoint,
            }),
            redirect_host: a.redirect_host.unwrap_or_default().into(),
            redirect_ports: a.redirect_ports.into_iter().map(u32::from).collect(),
        })
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    eprintln!("added provider `{}` to {}", a.name, r.config_path);
    eprintln!("log in with: authctl login {}", a.name);
    Ok(())
}

async fn list(client: &mut Client, json: bool) -> Result<(), CliError> {
    let r = client
        .raw()
        .list_providers(ListProvidersRequest {})
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    if json {
        let v: Vec<_> = r
            .providers
            .iter()
            .map(|p| {
                serde_json::json!({"name": p.name, "issuer": p.issuer, "client_id": p.client_id,
                "scopes": p.scopes, "has_client_secret": p.has_client_secret, "accounts": p.accounts})
            })
            .collect();
        println_out(&serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if r.providers.is_empty() {
        eprintln!(
            "no providers; add one with `authctl provider add NAME --issuer URL --client-id ID`"
        );
    } else {
        for p in r.providers {
            println_out(&format!(
                "{}\t{}\tclient {}\tscopes [{}]{}\t{} account(s)",
                p.name,
                p.issuer,
                p.client_id,
                p.scopes.join(" "),
                if p.has_client_secret {
                    "\tsecret stored"
                } else {
                    ""
                },
                p.accounts
            ));
        }
    }
    // The list is what the running agent loaded: say so when the file says otherwise now.
    super::status::config_error(&client.status().await?)
}

async fn presets(client: &mut Client) -> Result<(), CliError> {
    let r = client
        .raw()
        .list_presets(ListPresetsRequest {})
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    for p in r.presets {
        let mut args: Vec<String> = p
            .required_args
            .iter()
            .map(|a| format!("--{}", a.replace('_', "-")))
            .collect();
        args.extend(
            p.optional_args
                .iter()
                .map(|a| format!("[--{}]", a.replace('_', "-"))),
        );
        println_out(format!("{:<10} {}  {}", p.name, p.description, args.join(" ")).trim_end());
        println_out(&format!("{:<10} note: {}", "", p.note));
    }
    Ok(())
}

async fn remove(client: &mut Client, name: &str) -> Result<(), CliError> {
    let r = client
        .raw()
        .remove_provider(RemoveProviderRequest {
            name: name.to_owned(),
        })
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    eprintln!("removed provider `{name}` from {}", r.config_path);
    Ok(())
}

/// `--redirect-host`: the literal host of the registered redirect URI.
fn parse_redirect_host(s: &str) -> Result<RedirectHost, String> {
    match s {
        "127.0.0.1" => Ok(RedirectHost::Ipv4),
        "[::1]" | "::1" => Ok(RedirectHost::Ipv6),
        "localhost" => Ok(RedirectHost::Localhost),
        other => Err(format!(
            "`{other}` is not a loopback redirect host; use 127.0.0.1, [::1] or localhost"
        )),
    }
}

/// The named values that were given, for a request's map.
fn given<const N: usize>(
    pairs: [(&str, Option<String>); N],
) -> std::collections::HashMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
        .collect()
}
