//! `authctl`: log in once, then get fresh OAuth access tokens from the authctl agent.
//! A thin client of the agent's socket; one module per subcommand. The `authctl` program is
//! [`main`]; `authctl-mcp` (the MCP bridge, `src/mcp`) uses the same connection, login and error
//! handling.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: its output is its interface"
)]
#![expect(
    clippy::doc_markdown,
    reason = "doc comments are the --help text, shown as written"
)]
#![allow(
    rustdoc::broken_intra_doc_links,
    reason = "doc comments are the --help text: `[::1]` is a host, not a link"
)]

mod commands;
mod error;
mod output;
mod service;

/// What `authctl-mcp` shares with `authctl`: its arguments, the connection to the agent (started
/// on demand), the login a token may need, and the errors with their exit codes.
pub mod bridge {
    pub use crate::commands::connect;
    pub use crate::commands::login::follow;
    pub use crate::commands::mcp::{McpArgs, PROTOCOL_VERSION, SESSION};
    pub use crate::error::{CliError, exit};
}

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::CliError;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  other failure
  2  usage error or invalid configuration (config.toml names the file, line and key)
  3  the agent is not running
  4  login required
  5  no such account or provider
  6  the provider is unavailable (retry later)
  7  the login (or the sign-out at the provider) failed, was denied or timed out
  8  permission denied: the socket is another user's, or [access] refused the request

Environment:
  AUTHCTL_SOCK          the agent's socket
  AUTHCTL_CONFIG        the config file
  AUTHCTL_LOG           the agent's log filter
  AUTHCTL_AGENT_BIN     the agent binary `agent start` and autostart run
  AUTHCTL_NO_AUTOSTART  =1: never start an agent on demand
  BROWSER               the browser for logins
  XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR, NO_COLOR";

/// Log in once, then get fresh OAuth/OIDC access tokens from the authctl agent.
#[derive(Parser)]
#[command(
    name = "authctl",
    version,
    after_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Log in to a provider through the system browser (loopback redirect, PKCE)
    Login(commands::login::LoginArgs),
    /// Print a valid access token for an account (only the token, on stdout)
    Token(commands::token::TokenArgs),
    /// Show the agent, its secret store and every account
    Status(commands::status::StatusArgs),
    /// Forget an account: revoke its refresh token at the provider and delete its secrets
    Logout(commands::logout::LogoutArgs),
    /// Bridge an MCP host (stdio) to a remote MCP server (Streamable HTTP), with the agent's
    /// tokens: `"command": "authctl", "args": ["mcp", "https://mcp.example.com/mcp"]`
    Mcp(commands::mcp::McpArgs),
    /// Add, list or remove identity providers in config.toml
    #[command(subcommand)]
    Provider(commands::provider::ProviderCommand),
    /// Run a command with a token in its environment, or in a file kept fresh
    Exec(commands::exec::ExecArgs),
    /// Which account serves which developer tool's target (git URLs)
    #[command(subcommand)]
    Route(commands::route::RouteCommand),
    /// git credential helper: `git config credential.https://HOST.helper '!authctl git-credential'`
    GitCredential(commands::git_credential::GitCredentialArgs),
    /// kubectl exec credential plugin: prints an ExecCredential (`users[].user.exec`)
    KubectlCredential(commands::kubectl_credential::KubectlCredentialArgs),
    /// Which programs may have tokens: remembered grants and the audit log
    #[command(subcommand)]
    Access(commands::access::AccessCommand),
    /// Start, stop, reload, inspect, install or uninstall the agent
    #[command(subcommand)]
    Agent(commands::agent::AgentCommand),
    /// Check the set-up (socket, agent, secret store, keyring, service, browser, providers)
    Doctor(commands::doctor::DoctorArgs),
    /// Generate shell completions or the man page
    #[command(subcommand, hide = true)]
    Generate(commands::generate::GenerateCommand),
}

/// `authctl`.
#[must_use]
pub fn main() -> ExitCode {
    // `docker-credential-authctl` is this program under docker's helper name.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == commands::docker_credential::PROGRAM)
    {
        let operation = std::env::args().nth(1);
        return match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => {
                ExitCode::from(rt.block_on(commands::docker_credential::main(operation.as_deref())))
            }
            Err(e) => CliError::new(error::exit::FAILURE, format!("cannot start: {e}")).report(),
        };
    }
    // `authctl token` is what scripts run most: its arguments are parsed without building the
    // whole command tree (help and errors still come from the full parser below).
    if std::env::args_os().nth(1).is_some_and(|a| a == "token")
        && let Ok(t) = TokenOnly::try_parse_from(std::env::args_os().skip(1))
    {
        return run(Command::Token(t.args));
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                error::exit::USAGE
            } else {
                0
            });
        }
    };
    run(cli.command)
}

/// `authctl token` alone (see `main`).
#[derive(Parser)]
#[command(name = "token")]
struct TokenOnly {
    #[command(flatten)]
    args: commands::token::TokenArgs,
}

/// Runs `command` to its end on a one-thread runtime: its exit code, its error reported on stderr.
/// `authctl-mcp` runs the same way.
pub fn block_on(command: impl Future<Output = Result<(), CliError>>) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(error::exit::FAILURE, format!("cannot start: {e}")))
        .and_then(|rt| rt.block_on(command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

fn run(command: Command) -> ExitCode {
    block_on(async {
        match command {
            Command::Login(a) => commands::login::run(a).await,
            Command::Token(a) => commands::token::run(a).await,
            Command::Status(a) => commands::status::run(a).await,
            Command::Logout(a) => commands::logout::run(a).await,
            // The parser checked the arguments; the bridge takes them as given.
            Command::Mcp(_) => Err(commands::mcp::exec(std::env::args_os().skip(2))),
            Command::Provider(c) => commands::provider::run(c).await,
            Command::Exec(a) => commands::exec::run(a).await,
            Command::Route(c) => commands::route::run(c).await,
            Command::GitCredential(a) => commands::git_credential::run(a).await,
            Command::KubectlCredential(a) => commands::kubectl_credential::run(a).await,
            Command::Access(c) => commands::access::run(c).await,
            Command::Agent(c) => commands::agent::run(c).await,
            Command::Doctor(a) => commands::doctor::run(a).await,
            Command::Generate(c) => {
                commands::generate::run(&c);
                Ok(())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, TokenOnly};

    #[test]
    fn the_token_fast_path_accepts_exactly_what_the_full_parser_does() {
        TokenOnly::command().debug_assert();
        Cli::command().debug_assert();
        for args in [
            &["token", "corp"][..],
            &["token", "corp", "--scope", "a", "--scope=b", "--json"],
            &[
                "token",
                "--min-ttl",
                "60",
                "corp",
                "--refresh",
                "--interactive",
            ],
            &[
                "token",
                "https://mcp.example.com/mcp",
                "--resource",
                "https://r",
            ],
            &["token"],
            &["token", "corp", "extra"],
            &["token", "corp", "--min-ttl", "-1"],
            &["token", "corp", "--unknown"],
            &["token", "--help"],
            &["token", "corp", "--version"],
        ] {
            let fast = TokenOnly::try_parse_from(args).is_ok();
            let full = Cli::try_parse_from(std::iter::once(&"authctl").chain(args.iter())).is_ok();
            assert_eq!(fast, full, "{args:?}");
        }
    }
}
