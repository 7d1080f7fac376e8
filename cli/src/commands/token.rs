//! `authctl token`: prints only the access token, so `$(authctl token corp)` works.

use authctl_client::proto::GetTokenRequest;
use clap::Args;
use secrecy::ExposeSecret;

use crate::error::CliError;
use crate::output::println_out;

#[derive(Args)]
pub struct TokenArgs {
    /// Account name, or a provider with exactly one account
    account: String,
    /// Ask for a subset of the account's scopes (repeatable); cached under its own key
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// RFC 8707 resource indicator (audience) for the token
    #[arg(long, value_name = "URL")]
    resource: Option<String>,
    /// The token must stay valid at least this many seconds (default: the agent's min_ttl_seconds)
    #[arg(long, value_name = "SECONDS")]
    min_ttl: Option<u32>,
    /// Refresh now even if the cached token is still valid
    #[arg(long)]
    refresh: bool,
    /// If the account needs a login (or does not exist yet but a provider of that name does),
    /// have the agent open the browser and wait for it; concurrent callers share one login
    #[arg(long)]
    interactive: bool,
    /// Print a JSON object (access_token, token_type, expires_at, scopes, account) instead
    #[arg(long)]
    json: bool,
}

pub async fn run(a: TokenArgs) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    let mut req = GetTokenRequest {
        account: a.account.clone(),
        scopes: a.scopes,
        resource: a.resource.unwrap_or_default(),
        min_ttl_seconds: a.min_ttl.unwrap_or(0),
        interactive: false,
        force_refresh: a.refresh,
    };
    // Ask without a login first, so the user hears why the call waits when one is needed.
    let mut result = client.get_token_with(req.clone()).await;
    if a.interactive
        && let Err(e) = &result
        && (e.is_login_required() || e.is_not_found())
    {
        eprintln!(
            "authctl: `{}` needs a login; the agent is opening your browser — finish the login there (Ctrl-C to stop waiting)",
            a.account
        );
        req.interactive = true;
        result = client.get_token_with(req).await;
    }
    let t = result.map_err(|e| {
        let login = e.is_login_required();
        let err = CliError::from(e);
        if login {
            err.with_hint(format!("run `authctl login {}`", a.account))
        } else {
            err
        }
    })?;
    if let Some(note) = &t.note {
        eprintln!("authctl: note: {note}");
    }
    if a.json {
        let v = serde_json::json!({
            "access_token": t.access_token.expose_secret(),
            "token_type": t.token_type,
            "expires_at": t.expires_at,
            "scopes": t.scopes,
            "account": t.account,
            "id_token": t.id_token.as_ref().map(|s| s.expose_secret().to_owned()),
            "note": t.note,
        });
        println_out(&v.to_string());
    } else {
        println_out(t.access_token.expose_secret());
    }
    Ok(())
}
