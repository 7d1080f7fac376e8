//! Thin gRPC handlers over the agent's modules.

use std::pin::Pin;

use authctl_proto::v1 as pb;
use authctl_proto::v1::agent_server::Agent;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::accounts::AccountRecord;
use crate::config::{self, ConfigError, ProviderConfig};
use crate::error::AgentError;
use crate::login::{self, InFlight, Progress};
use crate::refresh::{self, TokenRequest};
use crate::state::AgentHandle;
use crate::store;

/// The service.
pub struct AgentService {
    pub state: AgentHandle,
}

fn peer(req: &Request<impl Sized>) -> String {
    req.extensions()
        .get::<tonic::transport::server::UdsConnectInfo>()
        .and_then(|i| i.peer_cred)
        .map(|c| {
            let pid = c.pid().map_or_else(|| "?".to_owned(), |p| p.to_string());
            let exe = c
                .pid()
                .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("pid={pid} uid={} exe={exe}", c.uid())
        })
        .unwrap_or_default()
}

fn account_pb(state: &AgentHandle, a: &AccountRecord) -> pb::Account {
    let state_enum = if a.login_required
        || !a.has_refresh_token
            && state
                .cache
                .account_expiry(&a.name)
                .is_none_or(|e| e <= crate::state::now_unix())
    {
        pb::AccountState::LoginRequired
    } else if a.last_error.is_empty() {
        pb::AccountState::Ready
    } else {
        pb::AccountState::Degraded
    };
    pb::Account {
        name: a.name.clone(),
        provider: a.provider.clone(),
        subject: a.subject.clone(),
        display_name: a.display_name.clone(),
        scopes: a.scopes.clone(),
        state: state_enum.into(),
        access_token_expires_at: state.cache.account_expiry(&a.name).unwrap_or(0),
        created_at: a.created_at,
        last_refresh_at: a.last_refresh_at,
        last_error: a.last_error.clone(),
        has_refresh_token: a.has_refresh_token,
    }
}

fn provider_pb(
    state: &AgentHandle,
    name: &str,
    p: &ProviderConfig,
    has_secret: bool,
) -> pb::Provider {
    let accounts = state
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

type LoginStream = Pin<Box<dyn Stream<Item = Result<pb::LoginEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    async fn get_token(
        &self,
        request: Request<pb::GetTokenRequest>,
    ) -> Result<Response<pb::Token>, Status> {
        self.state.touch_activity();
        // Naming the caller costs a readlink per call: only when the line is logged.
        if tracing::enabled!(tracing::Level::DEBUG) {
            let peer = peer(&request);
            tracing::debug!(account = %request.get_ref().account, %peer, "GetToken");
        }
        let r = request.into_inner();
        let req = TokenRequest {
            account: r.account,
            scopes: r.scopes,
            resource: r.resource,
            min_ttl: (r.min_ttl_seconds > 0).then_some(u64::from(r.min_ttl_seconds)),
            force_refresh: r.force_refresh,
        };
        let s = match refresh::get_token(&self.state, &req).await {
            Err(e)
                if r.interactive && crate::ondemand::needs_login(&self.state, &req.account, &e) =>
            {
                crate::ondemand::login(&self.state, &req.account).await?;
                refresh::get_token(&self.state, &req).await?
            }
            other => other?,
        };
        Ok(Response::new(pb::Token {
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
        }))
    }

    type LoginStream = LoginStream;

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<LoginStream>, Status> {
        self.state.touch_activity();
        let r = request.into_inner();
        let req = login::LoginRequest {
            target: r.provider,
            account_name: (!r.account_name.is_empty()).then_some(r.account_name),
            scopes: r.scopes,
            timeout: (r.timeout_seconds > 0)
                .then(|| std::time::Duration::from_secs(u64::from(r.timeout_seconds))),
            device: r.device_flow,
            same_subject: false,
        };
        let state = AgentHandle::clone(&self.state);
        Ok(Response::new(progress_stream(
            &self.state,
            "login",
            move |progress| async move {
                let o = login::login(&state, req, progress).await?;
                Ok(pb::LoginCompleted {
                    account: Some(account_pb(&state, &o.account)),
                    warnings: o.warnings,
                })
            },
        )))
    }

    type EndSessionStream = LoginStream;

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<LoginStream>, Status> {
        self.state.touch_activity();
        let r = request.into_inner();
        let account = self.state.resolve_account(&r.account)?;
        let timeout = (r.timeout_seconds > 0)
            .then(|| std::time::Duration::from_secs(u64::from(r.timeout_seconds)));
        let state = AgentHandle::clone(&self.state);
        Ok(Response::new(progress_stream(
            &self.state,
            "end-session",
            move |progress| async move {
                crate::endsession::end_session(&state, &account, timeout, progress).await?;
                Ok(pb::LoginCompleted {
                    account: Some(account_pb(&state, &account)),
                    warnings: Vec::new(),
                })
            },
        )))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        self.state.touch_activity();
        let r = request.into_inner();
        let account = self.state.resolve_account(&r.account)?;
        let name = account.name.clone();
        // Take the refresh lock so no refresh rotates the token while we delete it.
        let lock = self.state.cache.refresh_lock(&name);
        let _guard = lock.lock().await;
        let (revoked, note) = if r.revoke {
            crate::revoke::revoke(&self.state, &account).await
        } else {
            (false, String::new())
        };
        self.state.forget_tokens(&name);
        self.state
            .secrets
            .delete(&store::refresh_token_key(&name))
            .await
            .map_err(AgentError::from)?;
        if let Err(e) = self.state.secrets.delete(&store::id_token_key(&name)).await {
            tracing::warn!(account = %name, error = %e, "could not delete the kept ID token");
        }
        self.state
            .accounts
            .update(|m| m.remove(&name))
            .await
            .map_err(AgentError::from)?;
        self.state.clear_failure(&name);
        self.state.emit(&name, pb::WatchEventKind::Removed, |_| {});
        tracing::info!(account = %name, revoked, "logged out");
        Ok(Response::new(pb::LogoutResponse {
            account: name,
            revoked,
            revocation_note: note,
        }))
    }

    async fn list_accounts(
        &self,
        _r: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.state.touch_activity();
        let accounts = self
            .state
            .accounts
            .all()
            .iter()
            .map(|a| account_pb(&self.state, a))
            .collect();
        Ok(Response::new(pb::ListAccountsResponse { accounts }))
    }

    async fn list_providers(
        &self,
        _r: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        self.state.touch_activity();
        let config = self.state.config();
        let mut providers = Vec::new();
        for (name, p) in &config.providers {
            let has = self
                .state
                .secrets
                .get(&store::client_secret_key(name))
                .await
                .ok()
                .flatten()
                .is_some();
            providers.push(provider_pb(&self.state, name, p, has));
        }
        Ok(Response::new(pb::ListProvidersResponse { providers }))
    }

    async fn add_provider(
        &self,
        request: Request<pb::AddProviderRequest>,
    ) -> Result<Response<pb::AddProviderResponse>, Status> {
        self.state.touch_activity();
        let r = request.into_inner();
        let p = if r.preset.is_empty() {
            ProviderConfig {
                issuer: (!r.issuer.is_empty()).then(|| r.issuer.clone()),
                client_id: r.client_id.clone(),
                scopes: r.scopes.clone(),
                ..ProviderConfig::default()
            }
        } else {
            let args = r.preset_args.clone().into_iter().collect();
            let mut p = crate::presets::build(&r.preset, &args, &r.client_id)
                .map_err(AgentError::InvalidArgument)?;
            if !r.scopes.is_empty() {
                p.scopes.clone_from(&r.scopes);
            }
            if !r.issuer.is_empty() {
                p.issuer = Some(r.issuer.clone());
            }
            p
        };
        let p = apply_overrides(p, &r)?;
        config::validate_provider(&r.name, &p).map_err(|(key, msg)| {
            AgentError::InvalidArgument(if key.is_empty() {
                msg
            } else {
                format!("{key}: {msg}")
            })
        })?;
        let path = self.state.paths.config_file.clone();
        let name = r.name.clone();
        let replace = r.replace;
        let config = config::edit_providers(&path, |t| {
            if t.contains_key(&name) && !replace {
                return Err(ConfigError::BadProvider(format!(
                    "provider `{name}` already exists; remove it first or pass --replace"
                )));
            }
            t.insert(&name, toml_edit::Item::Table(config::provider_table(&p)));
            Ok(())
        })
        .map_err(AgentError::from)?;
        let key = store::client_secret_key(&r.name);
        let has_secret = match r.client_secret {
            Some(s) if !s.is_empty() => {
                self.state
                    .secrets
                    .set(&key, SecretString::from(s))
                    .await
                    .map_err(AgentError::from)?;
                true
            }
            _ => {
                self.state
                    .secrets
                    .delete(&key)
                    .await
                    .map_err(AgentError::from)?;
                false
            }
        };
        self.state.set_config(config);
        tracing::info!(provider = %r.name, "provider added");
        Ok(Response::new(pb::AddProviderResponse {
            provider: Some(provider_pb(&self.state, &r.name, &p, has_secret)),
            config_path: path.display().to_string(),
        }))
    }

    async fn remove_provider(
        &self,
        request: Request<pb::RemoveProviderRequest>,
    ) -> Result<Response<pb::RemoveProviderResponse>, Status> {
        self.state.touch_activity();
        let name = request.into_inner().name;
        let users: Vec<String> = self
            .state
            .accounts
            .all()
            .into_iter()
            .filter(|a| a.provider == name)
            .map(|a| a.name)
            .collect();
        if !users.is_empty() {
            return Err(AgentError::InvalidArgument(format!(
                "provider `{name}` still has accounts ({}); log them out first with `authctl logout`",
                users.join(", ")
            ))
            .into());
        }
        let path = self.state.paths.config_file.clone();
        let config = config::edit_providers(&path, |t| {
            t.remove(&name)
                .map(|_| ())
                .ok_or_else(|| ConfigError::BadProvider(format!("no provider named `{name}`")))
        })
        .map_err(|e| match e {
            ConfigError::BadProvider(_) => AgentError::NoSuchProvider(name.clone()),
            e => AgentError::from(e),
        })?;
        self.state
            .secrets
            .delete(&store::client_secret_key(&name))
            .await
            .map_err(AgentError::from)?;
        self.state.set_config(config);
        Ok(Response::new(pb::RemoveProviderResponse {
            config_path: path.display().to_string(),
        }))
    }

    async fn list_presets(
        &self,
        _r: Request<pb::ListPresetsRequest>,
    ) -> Result<Response<pb::ListPresetsResponse>, Status> {
        let presets = crate::presets::PRESETS
            .iter()
            .map(|p| pb::PresetInfo {
                name: p.name.into(),
                description: p.description.into(),
                required_args: p.required.iter().map(|a| (*a).to_owned()).collect(),
                optional_args: p.optional.iter().map(|a| (*a).to_owned()).collect(),
                note: p.note.into(),
            })
            .collect();
        Ok(Response::new(pb::ListPresetsResponse { presets }))
    }

    async fn reload(
        &self,
        _r: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        self.state.touch_activity();
        let n = self.state.reload()?;
        Ok(Response::new(pb::ReloadResponse {
            providers: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn status(
        &self,
        _r: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.state.touch_activity();
        let s = &self.state;
        Ok(Response::new(pb::StatusResponse {
            version: authctl_proto::VERSION.into(),
            pid: std::process::id(),
            socket_path: s.paths.socket.display().to_string(),
            config_path: s.paths.config_file.display().to_string(),
            data_dir: s.paths.data_dir.display().to_string(),
            secret_store: s.secrets.kind().into(),
            secret_store_detail: s.secrets.detail.clone(),
            started_at: s.started_at,
            accounts: s.accounts.all().iter().map(|a| account_pb(s, a)).collect(),
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.state.touch_activity();
        let filter = request.into_inner().account;
        if !filter.is_empty() && self.state.accounts.get(&filter).is_none() {
            return Err(AgentError::NoSuchAccount(filter).into());
        }
        let rx = self.state.events.subscribe();
        let stream =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |ev| match ev {
                Ok(ev) if filter.is_empty() || ev.account == filter => Some(Ok(ev)),
                Ok(_) => None,
                // A slow watcher that fell behind is told so, and keeps receiving.
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a Watch client fell behind");
                    None
                }
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn diagnose(
        &self,
        _r: Request<pb::DiagnoseRequest>,
    ) -> Result<Response<pb::DiagnoseResponse>, Status> {
        self.state.touch_activity();
        Ok(Response::new(pb::DiagnoseResponse {
            checks: crate::diagnose::run(&self.state).await,
        }))
    }

    async fn shutdown(
        &self,
        _r: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.state.touch_activity();
        tracing::info!("shutdown requested over the socket");
        let _ = self.state.shutdown.send(true);
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}

/// Runs a browser flow (`run`, given a progress channel) in its own task and streams its progress
/// and outcome as `LoginEvent`s. A caller that goes away (Ctrl-C) cancels it, which closes its
/// loopback listener.
fn progress_stream<F, Fut>(state: &AgentHandle, what: &'static str, run: F) -> LoginStream
where
    F: FnOnce(mpsc::Sender<Progress>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<pb::LoginCompleted, AgentError>> + Send,
{
    let (tx, rx) = mpsc::channel::<Result<pb::LoginEvent, Status>>(4);
    let state = AgentHandle::clone(state);
    tokio::spawn(async move {
        let _in_flight = InFlight::new(&state);
        let (ptx, mut prx) = mpsc::channel::<Progress>(4);
        let forward = {
            let tx = tx.clone();
            async move {
                while let Some(p) = prx.recv().await {
                    let ev = match p {
                        Progress::AuthorizeUrl { url, redirect_uri } => {
                            pb::login_event::Event::AuthorizeUrl(pb::AuthorizeUrl {
                                url,
                                redirect_uri,
                            })
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
                    let _ = tx.send(Ok(pb::LoginEvent { event: Some(ev) })).await;
                }
            }
        };
        let both = async {
            let (result, ()) = tokio::join!(run(ptx), forward);
            result
        };
        let result = tokio::select! {
            r = both => r,
            () = tx.closed() => {
                tracing::info!("{what} cancelled by the client");
                return;
            }
        };
        let ev = match result {
            Ok(done) => pb::login_event::Event::Completed(done),
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed");
                if matches!(
                    e,
                    AgentError::LoginFailed(_)
                        | AgentError::LoginTimeout(_)
                        | AgentError::IdToken(_)
                        | AgentError::EndSession(_)
                ) {
                    pb::login_event::Event::Failed(pb::LoginFailed {
                        reason: e.to_string(),
                    })
                } else {
                    let _ = tx.send(Err(Status::new(e.code(), e.to_string()))).await;
                    return;
                }
            }
        };
        let _ = tx.send(Ok(pb::LoginEvent { event: Some(ev) })).await;
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// Applies `AddProvider`'s explicit endpoints, resource and redirect settings to `p`.
fn apply_overrides(
    mut p: ProviderConfig,
    r: &pb::AddProviderRequest,
) -> Result<ProviderConfig, AgentError> {
    for (key, value) in &r.endpoints {
        let slot = match key.as_str() {
            "authorization_endpoint" => &mut p.authorization_endpoint,
            "token_endpoint" => &mut p.token_endpoint,
            "device_authorization_endpoint" => &mut p.device_authorization_endpoint,
            "revocation_endpoint" => &mut p.revocation_endpoint,
            "userinfo_endpoint" => &mut p.userinfo_endpoint,
            "jwks_uri" => &mut p.jwks_uri,
            "end_session_endpoint" => &mut p.end_session_endpoint,
            other => {
                return Err(AgentError::InvalidArgument(format!(
                    "unknown endpoint `{other}`"
                )));
            }
        };
        *slot = Some(value.clone());
    }
    if !r.resource.is_empty() {
        p.resource = Some(r.resource.clone());
    }
    p.redirect_host = match r.redirect_host.as_str() {
        "" => p.redirect_host,
        "127.0.0.1" => config::RedirectHost::Ipv4,
        "[::1]" | "::1" => config::RedirectHost::Ipv6,
        "localhost" => config::RedirectHost::Localhost,
        other => {
            return Err(AgentError::InvalidArgument(format!(
                "redirect host `{other}` must be 127.0.0.1, [::1] or localhost"
            )));
        }
    };
    if !r.redirect_ports.is_empty() {
        p.redirect_ports = r
            .redirect_ports
            .iter()
            .map(|&port| {
                u16::try_from(port).map_err(|_| {
                    AgentError::InvalidArgument(format!("redirect port {port} is not a TCP port"))
                })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(p)
}
