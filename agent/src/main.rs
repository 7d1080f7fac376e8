//! `authctl-agent`: runs the agent in the foreground (for service managers and `authctl agent
//! start`). Configuration comes from the environment: `AUTHCTL_SOCK`, `AUTHCTL_CONFIG`,
//! `AUTHCTL_LOG`, and the XDG base directories.

use std::process::ExitCode;

#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "--version and --help print before logging exists"
)]
fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if let Some(arg) = args.next() {
        match arg.as_str() {
            "--check-config" => {
                // For `authctl`: the one error a broken config.toml gives, as a plain line.
                return match authctl_agent::Paths::from_env()
                    .map_err(|e| e.to_string())
                    .and_then(|p| authctl_agent::check_config(&p).map_err(|e| e.to_string()))
                {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("{e}");
                        ExitCode::from(2)
                    }
                };
            }
            "--version" | "-V" => {
                println!("authctl-agent {}", authctl_proto::VERSION);
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!(
                    "authctl-agent {}: the authctl credential agent (runs in the foreground)\n\n\
                     Usage: authctl-agent [--check-config]\n\n\
                     --check-config   only load config.toml and say what is wrong with it (exit 2)\n\n\
                     Environment:\n  AUTHCTL_SOCK     socket path (default $XDG_RUNTIME_DIR/authctl/agent.sock)\n  \
                     AUTHCTL_CONFIG   config file (default $XDG_CONFIG_HOME/authctl/config.toml)\n  \
                     AUTHCTL_LOG      log filter, e.g. debug or authctl_agent=trace (default info)\n  \
                     XDG_DATA_HOME    accounts and the embedded secret store live in $XDG_DATA_HOME/authctl\n\n\
                     Usually started with `authctl agent start` or as a systemd/launchd user service.",
                    authctl_proto::VERSION
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!(
                    "authctl-agent: unexpected argument `{other}`; see `authctl-agent --help`"
                );
                return ExitCode::from(2);
            }
        }
    }
    // First, while this process has one thread: reading LISTEN_FDS also clears it from the
    // environment, which is only sound before any other thread exists.
    let activated = authctl_agent::take_activated();
    authctl_agent::init_logging();
    let activated = match activated {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let paths = match authctl_agent::Paths::from_env() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(authctl_agent::run(paths, activated)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(if e.is_config() { 2 } else { 1 })
        }
    }
}
