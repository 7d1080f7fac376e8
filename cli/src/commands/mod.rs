//! One module per subcommand.

pub mod agent;
pub mod login;
pub mod logout;
pub mod provider;
pub mod status;
pub mod token;

use authctl_client::Client;

use crate::error::CliError;

/// Connects to the running agent.
pub async fn connect() -> Result<Client, CliError> {
    Ok(authctl_client::connect_default().await?)
}
