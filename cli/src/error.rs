//! The CLI's one error type. Each kind has an exit code, decided here and documented in README.

use std::process::ExitCode;

use authctl_client::ClientError;
use tonic::Code;

/// Exit codes (also in README.md and `authctl --help`).
pub mod exit {
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_RUNNING: u8 = 3;
    pub const LOGIN_REQUIRED: u8 = 4;
    pub const NOT_FOUND: u8 = 5;
    pub const UNAVAILABLE: u8 = 6;
    pub const LOGIN_FAILED: u8 = 7;
    pub const PERMISSION: u8 = 8;
}

/// A failure with the message to print and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: u8,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code,
        }
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// An exit code and nothing to say (`authctl exec` passing on its child's status).
    pub fn silent(code: u8) -> Self {
        Self::new(code, "")
    }

    pub fn report(&self) -> ExitCode {
        if self.message.is_empty() {
            return ExitCode::from(self.code);
        }
        eprintln!("authctl: {}", self.message);
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
        ExitCode::from(self.code)
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        match &e {
            ClientError::NotRunning { .. } | ClientError::NoSocketPath => {
                Self::new(exit::NOT_RUNNING, e.to_string())
                    .with_hint("start it with `authctl agent start`")
            }
            ClientError::Transport { .. } | ClientError::PermissionDenied { .. } => Self::new(
                exit::PERMISSION,
                e.to_string(),
            )
            .with_hint(
                "the agent admits only its own user; run authctl as the user who started the agent",
            ),
            ClientError::Rpc(s) => {
                let code = match s.code() {
                    Code::FailedPrecondition => exit::LOGIN_REQUIRED,
                    Code::NotFound => exit::NOT_FOUND,
                    Code::Unavailable => exit::UNAVAILABLE,
                    Code::DeadlineExceeded | Code::Aborted => exit::LOGIN_FAILED,
                    Code::InvalidArgument => exit::USAGE,
                    Code::PermissionDenied | Code::Unauthenticated => exit::PERMISSION,
                    _ => exit::FAILURE,
                };
                Self::new(code, s.message())
            }
            _ => Self::new(exit::FAILURE, e.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new(exit::FAILURE, e.to_string())
    }
}
