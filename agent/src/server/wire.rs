//! Conversions between the wire (`authctl.agent.v1`) and the agent's own types. Requests are
//! checked here; nothing here decides anything else.

use std::time::Duration;

use authctl_proto::v1 as pb;
use secrecy::{ExposeSecret, SecretString};

use crate::config::presets::{self, PresetError};
use crate::config::{ProviderConfig, RedirectHost, RouteConfig, Tool};
use crate::core::accounts::AccountRecord;
use crate::core::events::{AccountEvent, EventKind};
use crate::core::{Core, NewProvider};
use crate::login::{LoginRequest, Progress};
use crate::tokens::{Health, Served, TokenRequest, Tokens};

/// A request the wire delivered that the agent cannot take as it is.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Preset(#[from] PresetError),
    #[error("redirect port {0} is not a TCP port")]
    Port(u32),
    #[error("unknown redirect host value {0}")]
    RedirectHost(i32),
    #[error("unknown tool `{0}`; routes serve: git, kubectl, docker")]
    Tool(String),
    #[error("the request names no route")]
    NoRoute,
}

/// A tool's name on the wire.
pub fn tool(name: &str) -> Result<Tool, RequestError> {
    Tool::parse(name).ok_or_else(|| RequestError::Tool(name.to_owned()))
}

/// A configured route on the wire, with its effective user name.
pub fn route(r: &RouteConfig) -> pb::Route {
    pb::Route {
        tool: r.tool.name().to_owned(),
        target: r.target.clone(),
        account: r.account.clone(),
        scopes: r.scopes.clone(),
        resource: r.resource.clone().unwrap_or_default(),
        username: r.username(),
    }
}

/// A route to add.
pub fn new_route(r: Option<pb::Route>) -> Result<RouteConfig, RequestError> {
    let r = r.ok_or(RequestError::NoRoute)?;
    Ok(RouteConfig {
        tool: tool(&r.tool)?,
        target: r.target,
        account: r.account,
        scopes: r.scopes,
        resource: Some(r.resource).filter(|s| !s.is_empty()),
        username: Some(r.username).filter(|s| !s.is_empty()),
    })
}

pub fn token_request(r: pb::GetTokenRequest) -> (TokenRequest, bool) {
    (
        TokenRequest {
            account: r.account,
            scopes: r.scopes,
            resource: r.resource,
            min_ttl: (r.min_ttl_seconds > 0).then_some(u64::from(r.min_ttl_seconds)),
            force_refresh: r.force_refresh,
        },
        r.interactive,
    )
}

pub fn token(s: Served) -> pb::Token {
    pb::Token {
        access_token: s.token.access_token.expose_secret().to_owned(),
        token_type: s.token.token_type.clone(),
        expires_at: s.token.expires_at.unwrap_or(0),
        scopes: s.token.scopes.clone(),
        account: s.account,
        id_token: s
            .token
            .id_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        note: s.note,
    }
}

pub fn login_request(r: pb::LoginRequest) -> LoginRequest {
    LoginRequest {
        target: r.provider,
        account_name: (!r.account_name.is_empty()).then_some(r.account_name),
        scopes: r.scopes,
        timeout: timeout(r.timeout_seconds),
        device: r.device_flow,
        same_subject: false,
        other_user: r.other_user,
    }
}

/// Seconds from the wire: 0 means "the default".
pub fn timeout(seconds: u32) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(u64::from(seconds)))
}

pub fn progress(p: Progress) -> pb::LoginEvent {
    let event = match p {
        Progress::AuthorizeUrl { url, redirect_uri } => {
            pb::login_event::Event::AuthorizeUrl(pb::AuthorizeUrl { url, redirect_uri })
        }
        Progress::DeviceCode {
            verification_uri,
            verification_uri_complete,
            user_code,
            expires_at,
        } => pb::login_event::Event::DeviceCode(pb::DeviceCode {
            verification_uri,
            user_code,
            expires_at,
            verification_uri_complete,
        }),
    };
    pb::LoginEvent { event: Some(event) }
}

pub fn account(tokens: &Tokens, a: &AccountRecord) -> pb::Account {
    let state = match tokens.health(a) {
        Health::Ready => pb::AccountState::Ready,
        Health::Degraded => pb::AccountState::Degraded,
        Health::LoginRequired => pb::AccountState::LoginRequired,
        Health::NotSaved => pb::AccountState::NotSaved,
    };
    pb::Account {
        name: a.name.clone(),
        provider: a.provider.clone(),
        subject: a.subject.clone(),
        display_name: a.display_name.clone(),
        scopes: a.scopes.clone(),
        state: state.into(),
        access_token_expires_at: tokens.expiry(&a.name).unwrap_or(0),
        created_at: a.created_at,
        last_refresh_at: a.last_refresh_at,
        last_error: a.last_error.clone(),
        has_refresh_token: a.has_refresh_token,
    }
}

pub fn provider(core: &Core, name: &str, p: &ProviderConfig, has_secret: bool) -> pb::Provider {
    let accounts = core
        .accounts
        .all()
        .iter()
        .filter(|a| a.provider == name)
        .count();
    pb::Provider {
        name: name.to_owned(),
        issuer: p.issuer.clone().unwrap_or_default(),
        client_id: p.client_id.clone(),
        scopes: p.scopes.clone(),
        has_client_secret: has_secret,
        accounts: u32::try_from(accounts).unwrap_or(u32::MAX),
    }
}

pub fn event(e: AccountEvent) -> pb::WatchEvent {
    let kind = match e.kind {
        EventKind::Refreshed => pb::WatchEventKind::Refreshed,
        EventKind::LoginRequired => pb::WatchEventKind::LoginRequired,
        EventKind::Removed => pb::WatchEventKind::Removed,
        EventKind::LoggedIn => pb::WatchEventKind::LoggedIn,
        EventKind::RefreshFailed => pb::WatchEventKind::RefreshFailed,
    };
    pb::WatchEvent {
        account: e.account,
        kind: kind.into(),
        expires_at: e.expires_at.unwrap_or(0),
        scopes: e.scopes,
        resource: e.resource,
        message: e.message,
    }
}

pub fn store_kind(kind: &str) -> pb::SecretStoreKind {
    match kind {
        "file" => pb::SecretStoreKind::File,
        "keyring" => pb::SecretStoreKind::Keyring,
        _ => pb::SecretStoreKind::Unspecified,
    }
}

/// The provider an `AddProvider` request describes: a preset's or a bare one, with the request's
/// scopes, issuer, endpoints, resource and redirect settings over it.
///
/// # Errors
/// A preset that cannot be built, a redirect port that is not a port, an unknown redirect host.
pub fn new_provider(r: pb::AddProviderRequest) -> Result<NewProvider, RequestError> {
    let mut default_routes = Vec::new();
    let mut p = if r.preset.is_empty() {
        ProviderConfig {
            client_id: r.client_id.clone(),
            ..ProviderConfig::default()
        }
    } else {
        let args = r.preset_args.into_iter().collect();
        default_routes = presets::default_routes(&r.preset, &args);
        presets::build(&r.preset, &args, &r.client_id)?
    };
    if !r.scopes.is_empty() {
        p.scopes = r.scopes;
    }
    if !r.issuer.is_empty() {
        p.issuer = Some(r.issuer);
    }
    if let Some(e) = r.endpoints {
        for (slot, value) in [
            (&mut p.authorization_endpoint, e.authorization_endpoint),
            (&mut p.token_endpoint, e.token_endpoint),
            (
                &mut p.device_authorization_endpoint,
                e.device_authorization_endpoint,
            ),
            (&mut p.revocation_endpoint, e.revocation_endpoint),
            (&mut p.userinfo_endpoint, e.userinfo_endpoint),
            (&mut p.jwks_uri, e.jwks_uri),
            (&mut p.end_session_endpoint, e.end_session_endpoint),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
    }
    if !r.resource.is_empty() {
        p.resource = Some(r.resource);
    }
    p.redirect_host = match pb::RedirectHost::try_from(r.redirect_host) {
        Ok(pb::RedirectHost::Unspecified) => p.redirect_host,
        Ok(pb::RedirectHost::Ipv4) => RedirectHost::Ipv4,
        Ok(pb::RedirectHost::Ipv6) => RedirectHost::Ipv6,
        Ok(pb::RedirectHost::Localhost) => RedirectHost::Localhost,
        Err(_) => return Err(RequestError::RedirectHost(r.redirect_host)),
    };
    if !r.redirect_ports.is_empty() {
        p.redirect_ports = r
            .redirect_ports
            .iter()
            .map(|&port| u16::try_from(port).map_err(|_| RequestError::Port(port)))
            .collect::<Result<_, _>>()?;
    }
    Ok(NewProvider {
        name: r.name,
        config: p,
        client_secret: r
            .client_secret
            .filter(|s| !s.is_empty())
            .map(SecretString::from),
        replace: r.replace,
        comment: None,
        default_routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_provider_request_fills_a_preset_and_overrides_it() {
        let n = new_provider(pb::AddProviderRequest {
            name: "gh".into(),
            client_id: "cid".into(),
            preset: "github".into(),
            endpoints: Some(pb::Endpoints {
                token_endpoint: Some("https://ghe.example/token".into()),
                ..pb::Endpoints::default()
            }),
            redirect_host: pb::RedirectHost::Localhost.into(),
            redirect_ports: vec![8765, 8766],
            client_secret: Some(String::new()),
            ..pb::AddProviderRequest::default()
        })
        .unwrap();
        assert_eq!(n.config.client_id, "cid");
        assert_eq!(
            n.config.authorization_endpoint.as_deref(),
            Some("https://github.com/login/oauth/authorize"),
            "the preset's"
        );
        assert_eq!(
            n.config.token_endpoint.as_deref(),
            Some("https://ghe.example/token"),
            "the request's wins"
        );
        assert_eq!(n.config.redirect_host, RedirectHost::Localhost);
        assert_eq!(n.config.redirect_ports, vec![8765, 8766]);
        assert!(n.client_secret.is_none(), "an empty secret is none");
    }

    #[test]
    fn bad_ports_hosts_and_presets_are_refused() {
        let bad_port = pb::AddProviderRequest {
            redirect_ports: vec![70_000],
            ..pb::AddProviderRequest::default()
        };
        assert!(matches!(
            new_provider(bad_port),
            Err(RequestError::Port(70_000))
        ));
        let bad_host = pb::AddProviderRequest {
            redirect_host: 42,
            ..pb::AddProviderRequest::default()
        };
        assert!(matches!(
            new_provider(bad_host),
            Err(RequestError::RedirectHost(42))
        ));
        let bad_preset = pb::AddProviderRequest {
            preset: "nope".into(),
            ..pb::AddProviderRequest::default()
        };
        assert!(matches!(
            new_provider(bad_preset),
            Err(RequestError::Preset(_))
        ));
    }
}
