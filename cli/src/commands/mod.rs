//! One module per subcommand.

pub mod access;
pub mod agent;
pub mod docker_credential;
pub mod doctor;
pub mod exec;
pub mod generate;
pub mod git_credential;
pub mod kubectl_credential;
pub mod login;
pub mod logout;
pub mod mcp;
pub mod provider;
pub mod route;
pub mod status;
pub mod token;

use authctl_client::Client;

use crate::error::CliError;

/// Connects to the running agent, starting one when none answers: unless `AUTHCTL_NO_AUTOSTART=1`,
/// and unless a user service is installed (then the service manager should start it, and the
/// error says how).
///
/// # Errors
/// No agent answers (and none could be started), or the socket is another user's.
pub async fn connect() -> Result<Client, CliError> {
    match authctl_client::connect_default().await {
        Ok(c) => Ok(c),
        Err(e) if e.is_not_running() => {
            let disabled =
                std::env::var_os("AUTHCTL_NO_AUTOSTART").is_some_and(|v| !v.is_empty() && v != "0");
            if crate::service::installed() {
                return Err(CliError::from(e).with_hint(crate::service::start_hint()));
            }
            if disabled {
                return Err(e.into());
            }
            agent::start(true).await?;
            Ok(authctl_client::connect_default().await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Connects without starting an agent (for commands that only report).
pub async fn connect_existing() -> Result<Client, CliError> {
    Ok(authctl_client::connect_default().await?)
}
