//! `authctl logout`: optionally sign out at the provider (RP-initiated logout), then revoke
//! (RFC 7009) and forget an account.

use authctl_client::proto::{EndSessionRequest, LogoutRequest};
use clap::Args;

use crate::error::CliError;

#[derive(Args)]
pub struct LogoutArgs {
    /// Account name, or a provider with exactly one account
    account: String,
    /// Do not revoke the refresh token at the provider; only delete it here
    #[arg(long)]
    no_revoke: bool,
    /// Also end the browser session at the provider (OpenID Connect RP-initiated logout): opens
    /// its end_session_endpoint and waits for it to redirect back to a loopback address
    #[arg(long)]
    end_session: bool,
    /// With --end-session: only print the URL; do not open a browser
    #[arg(long, requires = "end_session")]
    no_browser: bool,
    /// With --end-session: seconds to wait for the provider to redirect back (default: the
    /// provider's login_timeout_seconds, at most 120)
    #[arg(long, value_name = "SECONDS", requires = "end_session")]
    timeout: Option<u32>,
}

pub async fn run(a: LogoutArgs) -> Result<(), CliError> {
    let mut client = super::connect().await?;
    // The provider's session first, while the agent still holds the account (and its ID token
    // for `id_token_hint`); the local logout happens whatever its outcome.
    let mut end_session_failed = None;
    if a.end_session {
        let stream = client
            .raw()
            .end_session(EndSessionRequest {
                account: a.account.clone(),
                timeout_seconds: a.timeout.unwrap_or(0),
            })
            .await
            .map_err(|s| client.error(s))?
            .into_inner();
        let prompt = "To sign out at the provider, open this URL in a browser:";
        match super::login::follow(&client, stream, a.no_browser, prompt).await {
            Ok(_) => eprintln!("Signed out at the provider."),
            Err(e) => end_session_failed = Some(e),
        }
    }
    let r = client
        .raw()
        .logout(LogoutRequest {
            account: a.account,
            revoke: !a.no_revoke,
        })
        .await
        .map_err(|s| client.error(s))?
        .into_inner();
    if !r.revocation_note.is_empty() {
        eprintln!("authctl: {}", r.revocation_note);
    }
    eprintln!(
        "logged out of `{}`{}",
        r.account,
        if r.revoked {
            " (refresh token revoked at the provider)"
        } else {
            ""
        }
    );
    match end_session_failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
