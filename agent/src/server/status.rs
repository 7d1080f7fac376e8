//! The only place errors become gRPC statuses. The code is what a client acts on
//! (`FAILED_PRECONDITION` means exactly "login required"); the message is the error's own.

use tonic::{Code, Status};

use super::wire::RequestError;
use crate::core::CoreError;
use crate::login::{LoginError, LoginFailure, Refusal};
use crate::tokens::ServeError;

fn core_code(e: &CoreError) -> Code {
    match e {
        CoreError::NoSuchProvider(_) | CoreError::NoSuchAccount(_) | CoreError::NoRoute { .. } => {
            Code::NotFound
        }
        CoreError::Config(c) if matches!(**c, crate::config::ConfigError::NoSuchRoute { .. }) => {
            Code::NotFound
        }
        CoreError::NoAccountYet(_) => Code::FailedPrecondition,
        CoreError::Discovery(d) if d.is_transient() => Code::Unavailable,
        CoreError::Store(_) => Code::Unavailable,
        // A wrong issuer, an invalid provider: the request or the configuration must change.
        CoreError::AmbiguousAccount { .. }
        | CoreError::ProviderInUse { .. }
        | CoreError::Discovery(_)
        | CoreError::Config(_)
        | CoreError::Reload(_) => Code::InvalidArgument,
        CoreError::Accounts(_) => Code::Internal,
    }
}

fn serve_code(e: &ServeError) -> Code {
    match e {
        ServeError::Core(c) => core_code(c),
        ServeError::LoginRequired { .. } => Code::FailedPrecondition,
        ServeError::ProviderUnavailable { .. } | ServeError::Stopping => Code::Unavailable,
        // A provider refusing the request's scope or resource.
        ServeError::ProviderRefused { .. } | ServeError::KeyRefused(_) => Code::InvalidArgument,
        ServeError::IdToken(_) => Code::Aborted,
        ServeError::RefreshTask(_) => Code::Internal,
    }
}

fn login_code(e: &LoginError) -> Code {
    match e {
        LoginError::Core(c) => core_code(c),
        LoginError::Serve(s) => serve_code(s),
        LoginError::Shared(inner) => login_code(inner),
        LoginError::CoolingDown { .. } => Code::FailedPrecondition,
        LoginError::BadAccountName(_)
        | LoginError::AccountElsewhere { .. }
        | LoginError::NameTaken(_)
        | LoginError::NoDeviceEndpoint(_)
        | LoginError::BadEndpoint { .. }
        | LoginError::BadTarget { .. }
        | LoginError::ControlCharacters(_)
        | LoginError::InsecureTarget(_) => Code::InvalidArgument,
        LoginError::Timeout(_) => Code::DeadlineExceeded,
        LoginError::Failed(LoginFailure::Resource { reason, .. }) => match reason.refusal() {
            Some(Refusal::Insecure) => Code::InvalidArgument,
            Some(Refusal::Unavailable) => Code::Unavailable,
            None => Code::Aborted,
        },
        LoginError::IdToken(_) | LoginError::Failed(_) | LoginError::EndSession(_) => Code::Aborted,
        LoginError::Task(_) => Code::Internal,
    }
}

impl From<CoreError> for Status {
    fn from(e: CoreError) -> Self {
        Status::new(core_code(&e), e.to_string())
    }
}

impl From<ServeError> for Status {
    fn from(e: ServeError) -> Self {
        Status::new(serve_code(&e), e.to_string())
    }
}

impl From<LoginError> for Status {
    fn from(e: LoginError) -> Self {
        Status::new(login_code(&e), e.to_string())
    }
}

impl From<crate::access::Denied> for Status {
    fn from(e: crate::access::Denied) -> Self {
        Status::new(Code::PermissionDenied, e.to_string())
    }
}

impl From<RequestError> for Status {
    fn from(e: RequestError) -> Self {
        Status::new(Code::InvalidArgument, e.to_string())
    }
}

impl From<crate::config::ConfigError> for Status {
    fn from(e: crate::config::ConfigError) -> Self {
        CoreError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::token::TokenError;
    use std::sync::Arc;

    #[test]
    fn login_required_is_failed_precondition_however_it_arrives() {
        let direct = Status::from(ServeError::LoginRequired {
            account: "a".into(),
            reason: String::new(),
        });
        assert_eq!(direct.code(), Code::FailedPrecondition);
        assert_eq!(
            Status::from(CoreError::NoAccountYet("p".into())).code(),
            Code::FailedPrecondition
        );
        let shared = LoginError::Shared(Arc::new(LoginError::Serve(ServeError::LoginRequired {
            account: "a".into(),
            reason: String::new(),
        })));
        assert_eq!(Status::from(shared).code(), Code::FailedPrecondition);
    }

    #[test]
    fn provider_trouble_is_unavailable_and_refusals_are_invalid_argument() {
        let e = |status| ServeError::ProviderUnavailable {
            provider: "p".into(),
            source: TokenError::Http {
                status,
                retry_after: None,
            },
        };
        assert_eq!(Status::from(e(503)).code(), Code::Unavailable);
        let refused = ServeError::ProviderRefused {
            provider: "p".into(),
            source: TokenError::Rejected {
                error: "invalid_scope".into(),
                description: None,
            },
        };
        assert_eq!(Status::from(refused).code(), Code::InvalidArgument);
        assert_eq!(
            Status::from(LoginError::Timeout(5)).code(),
            Code::DeadlineExceeded
        );
    }
}
