//! `authctl logout`: revoke (RFC 7009) and forget an account.

use authctl_client::proto::LogoutRequest;
use clap::Args;

use crate::error::CliError;

#[derive(Args)]
pub struct LogoutArgs {
    /// Account name, or a provider with exactly one account
    account: String,
    /// Do not revoke the refresh token at the provider; only delete it here
    #[arg(long)]
    no_revoke: bool,
}

pub async fn run(a: LogoutArgs) -> Result<(), CliError> {
    let mut client = super::connect().await?;
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
    Ok(())
}
