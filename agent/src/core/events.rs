//! Account events: what happened to an account, for the `Watch` RPC and for workflows that wait
//! on each other (a refresh supervisor stops when its account is removed).

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A new access token was obtained.
    Refreshed,
    /// The refresh token was rejected: a login is needed.
    LoginRequired,
    /// The account was logged out.
    Removed,
    /// A login completed.
    LoggedIn,
    /// A refresh failed transiently; the agent retries.
    RefreshFailed,
}

/// One event of one account. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEvent {
    pub account: String,
    pub kind: EventKind,
    /// The new token's expiry (Unix seconds), for `Refreshed`.
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    /// The RFC 8707 resource of the refreshed key (empty: none).
    pub resource: String,
    /// Why, for `LoginRequired` and `RefreshFailed`.
    pub message: String,
}

impl AccountEvent {
    /// An event with nothing but its account and kind.
    #[must_use]
    pub fn new(account: &str, kind: EventKind) -> Self {
        Self {
            account: account.to_owned(),
            kind,
            expires_at: None,
            scopes: Vec::new(),
            resource: String::new(),
            message: String::new(),
        }
    }
}
