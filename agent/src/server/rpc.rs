//! The gRPC handlers: each converts the request ([`super::wire`]), delegates to the agent's
//! workflows, and converts the answer back.

use std::pin::Pin;
use std::sync::Arc;

use authctl_proto::v1 as pb;
use authctl_proto::v1::agent_server::Agent;
use tokio::sync::mpsc;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::listener::PeerInfo;
use super::wire;
use crate::access::{Access, Ask, Caller};
use crate::core::Core;
use crate::login::{LoginError, Logins, Progress};
use crate::store;
use crate::tokens::{Revocation, Tokens};

/// `Watch` streams open at once; more are refused (`RESOURCE_EXHAUSTED`).
const MAX_WATCHERS: usize = 256;

/// The service.
pub struct AgentService {
    logins: Arc<Logins>,
    access: Arc<Access>,
    watchers: Arc<tokio::sync::Semaphore>,
}

impl AgentService {
    pub fn new(logins: Arc<Logins>, access: Arc<Access>) -> Self {
        Self {
            logins,
            access,
            watchers: Arc::new(tokio::sync::Semaphore::new(MAX_WATCHERS)),
        }
    }

    /// The attested caller of `req`: attested on the connection's first request that needs it,
    /// then kept for the connection's life.
    fn caller(&self, req: &Request<impl Sized>) -> Arc<Caller> {
        let Some(peer) = req.extensions().get::<PeerInfo>() else {
            // Not over the socket (in-process tests): nobody to attest.
            return Arc::new(Caller {
                gone: true,
                ..Caller::default()
            });
        };
        Arc::clone(peer.caller.get_or_init(|| {
            let cred = peer.uds.peer_cred;
            Arc::new(self.access.attest(
                cred.and_then(|c| c.pid()),
                cred.map_or((u32::MAX, u32::MAX), |c| (c.uid(), c.gid())),
                peer.pidfd.as_deref(),
            ))
        }))
    }

    /// Runs the administrative call `action` when the `[access]` admin policy lets `caller`, and
    /// writes its audit line.
    async fn admin<T>(
        &self,
        caller: &Arc<Caller>,
        action: &str,
        run: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let ask = Ask::Admin { action };
        let verdict = self.access.authorize(caller, ask).await;
        if !verdict.allowed {
            tracing::warn!(caller = %caller.describe(), %action, by = %verdict.by, "administrative call refused");
            self.access.record(caller, ask, &verdict, "refused".into());
            return Err(Access::denied(caller, ask, &verdict).into());
        }
        let result = run.await;
        let outcome = match &result {
            Ok(_) => "done".to_owned(),
            Err(e) => format!("failed: {}", e.message()),
        };
        self.access.record(caller, ask, &verdict, outcome);
        result
    }

    fn core(&self) -> &Arc<Core> {
        self.logins.core()
    }

    fn tokens(&self) -> &Arc<Tokens> {
        self.logins.tokens()
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::LoginEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    async fn get_token(
        &self,
        request: Request<pb::GetTokenRequest>,
    ) -> Result<Response<pb::Token>, Status> {
        self.core().touch();
        let caller = self.caller(&request);
        let (mut req, interactive) = wire::token_request(request.into_inner());
        // A resource URL (`authctl mcp URL`) names the provider its zero-configuration login
        // remembered. A first login for it (no provider yet, or one with no account) is shared
        // under the URL however the callers race; setting up a provider is an administrative
        // call, as `Login` with a URL is.
        let mut first_login = None;
        if crate::login::is_resource(&req.account) {
            let url = std::mem::take(&mut req.account);
            let provider = self.logins.provider_of_resource(&url);
            req.account = match provider {
                Some(p) => {
                    if interactive && self.core().resolve_account(&p).is_err() {
                        first_login = Some(url);
                    }
                    p
                }
                None if interactive => {
                    let action = format!("log in to {url} (zero-configuration)");
                    let logins = Arc::clone(&self.logins);
                    self.admin(&caller, &action, async move {
                        logins.resource_login(&url).await.map_err(Status::from)
                    })
                    .await?
                }
                None => return Err(crate::core::CoreError::NoAccountYet(url).into()),
            };
        }
        // Rules name accounts; a provider with one account is that account.
        let account = self
            .core()
            .resolve_account(&req.account)
            .map_or_else(|_| req.account.clone(), |a| a.name);
        let ask = Ask::Token {
            account: &account,
            scopes: &req.scopes,
            resource: &req.resource,
        };
        let verdict = self.access.authorize(&caller, ask).await;
        tracing::debug!(%account, caller = %caller.describe(), allowed = verdict.allowed, by = %verdict.by, "GetToken");
        if !verdict.allowed {
            self.access.record(&caller, ask, &verdict, "refused".into());
            return Err(Access::denied(&caller, ask, &verdict).into());
        }
        // The token rules allowed it: a first login to a known resource may start.
        let served = match first_login {
            Some(url) => match self.logins.resource_login(&url).await {
                Ok(_) => self.logins.token(&req, interactive).await,
                Err(e) => Err(e),
            },
            None => self.logins.token(&req, interactive).await,
        };
        let outcome = match &served {
            Ok(_) => "handed out".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        self.access.record(&caller, ask, &verdict, outcome);
        Ok(Response::new(wire::token(served?)))
    }

    type LoginStream = EventStream;

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.core().touch();
        let caller = self.caller(&request);
        let req = wire::login_request(request.into_inner());
        // A zero-configuration login adds a provider found through a URL: an administrative call.
        if crate::login::is_resource(&req.target) {
            let action = format!("log in to {} (zero-configuration)", req.target);
            self.admin(&caller, &action, async { Ok(()) }).await?;
        }
        let logins = Arc::clone(&self.logins);
        Ok(Response::new(progress_stream(move |progress| async move {
            let o = logins.login(req, progress).await?;
            Ok(pb::LoginCompleted {
                account: Some(wire::account(logins.tokens(), &o.account)),
                warnings: o.warnings,
            })
        })))
    }

    type EndSessionStream = EventStream;

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.core().touch();
        let r = request.into_inner();
        let account = self.core().resolve_account(&r.account)?;
        let timeout = wire::timeout(r.timeout_seconds);
        let logins = Arc::clone(&self.logins);
        Ok(Response::new(progress_stream(move |progress| async move {
            logins.end_session(&account, timeout, progress).await?;
            Ok(pb::LoginCompleted {
                account: Some(wire::account(logins.tokens(), &account)),
                warnings: Vec::new(),
            })
        })))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        self.core().touch();
        let caller = self.caller(&request);
        let r = request.into_inner();
        let action = format!("log out of account {}", r.account);
        let (account, revocation) = self
            .admin(&caller, &action, async {
                Ok(self.tokens().logout(&r.account, r.revoke).await?)
            })
            .await?;
        let (revoked, revocation_note) = match revocation {
            Revocation::Revoked => (true, String::new()),
            Revocation::NotAsked => (false, String::new()),
            Revocation::Skipped(why) => (false, why.to_string()),
        };
        Ok(Response::new(pb::LogoutResponse {
            account,
            revoked,
            revocation_note,
        }))
    }

    async fn list_accounts(
        &self,
        _r: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.core().touch();
        let accounts = self
            .core()
            .accounts
            .all()
            .iter()
            .map(|a| wire::account(self.tokens(), a))
            .collect();
        Ok(Response::new(pb::ListAccountsResponse { accounts }))
    }

    async fn list_providers(
        &self,
        _r: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let core = self.core();
        core.touch();
        let mut providers = Vec::new();
        for (name, p) in &core.config().providers {
            let has = core
                .secrets
                .get(&store::client_secret_key(name))
                .await
                .ok()
                .flatten()
                .is_some();
            providers.push(wire::provider(core, name, p, has));
        }
        Ok(Response::new(pb::ListProvidersResponse { providers }))
    }

    async fn add_provider(
        &self,
        request: Request<pb::AddProviderRequest>,
    ) -> Result<Response<pb::AddProviderResponse>, Status> {
        let core = self.core();
        core.touch();
        let caller = self.caller(&request);
        let new = wire::new_provider(request.into_inner())?;
        let (name, config) = (new.name.clone(), new.config.clone());
        let verb = if core.config().providers.contains_key(&name) {
            "replace"
        } else {
            "add"
        };
        let action = format!("{verb} provider {name}");
        let has_secret = self
            .admin(&caller, &action, async {
                Ok(core.add_provider(new).await?)
            })
            .await?;
        Ok(Response::new(pb::AddProviderResponse {
            provider: Some(wire::provider(core, &name, &config, has_secret)),
            config_path: core.paths.config_file.display().to_string(),
        }))
    }

    async fn remove_provider(
        &self,
        request: Request<pb::RemoveProviderRequest>,
    ) -> Result<Response<pb::RemoveProviderResponse>, Status> {
        let core = self.core();
        core.touch();
        let caller = self.caller(&request);
        let name = request.into_inner().name;
        let action = format!("remove provider {name}");
        self.admin(&caller, &action, async {
            Ok(core.remove_provider(&name).await?)
        })
        .await?;
        Ok(Response::new(pb::RemoveProviderResponse {
            config_path: core.paths.config_file.display().to_string(),
        }))
    }

    async fn list_presets(
        &self,
        _r: Request<pb::ListPresetsRequest>,
    ) -> Result<Response<pb::ListPresetsResponse>, Status> {
        let presets = crate::config::presets::PRESETS
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
        request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        self.core().touch();
        let caller = self.caller(&request);
        let n = self
            .admin(&caller, "reload the configuration", async {
                Ok(self.core().reload()?)
            })
            .await?;
        Ok(Response::new(pb::ReloadResponse {
            providers: u32::try_from(n).unwrap_or(u32::MAX),
        }))
    }

    async fn status(
        &self,
        _r: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let core = self.core();
        core.touch();
        Ok(Response::new(pb::StatusResponse {
            version: authctl_proto::VERSION.into(),
            pid: std::process::id(),
            socket_path: core.paths.socket.display().to_string(),
            config_path: core.paths.config_file.display().to_string(),
            data_dir: core.paths.data_dir.display().to_string(),
            secret_store: wire::store_kind(core.secrets.kind()).into(),
            secret_store_detail: core.secrets.detail.clone(),
            secret_store_reason: core.secrets.reason.clone(),
            config_error: core
                .config_problem()
                .map(|e| e.to_string())
                .unwrap_or_default(),
            started_at: core.started_at,
            audit_log: self.access.audit_path().display().to_string(),
            accounts: core
                .accounts
                .all()
                .iter()
                .map(|a| wire::account(self.tokens(), a))
                .collect(),
        }))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let core = self.core();
        core.touch();
        let filter = request.into_inner().account;
        if !filter.is_empty() && core.accounts.get(&filter).is_none() {
            return Err(crate::core::CoreError::NoSuchAccount(filter).into());
        }
        let Ok(place) = Arc::clone(&self.watchers).try_acquire_owned() else {
            return Err(Status::resource_exhausted(format!(
                "too many Watch streams are open (at most {MAX_WATCHERS}); close some and retry"
            )));
        };
        let stream =
            tokio_stream::wrappers::BroadcastStream::new(core.subscribe()).filter_map(move |ev| {
                // The stream holds its place among the watchers until it is dropped.
                let _held = &place;
                match ev {
                    Ok(ev) if filter.is_empty() || ev.account == filter => {
                        Some(Ok(wire::event(ev)))
                    }
                    Ok(_) => None,
                    // A slow watcher that fell behind is told so in the log, and keeps receiving.
                    Err(BroadcastStreamRecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "a Watch client fell behind");
                        None
                    }
                }
            });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn diagnose(
        &self,
        _r: Request<pb::DiagnoseRequest>,
    ) -> Result<Response<pb::DiagnoseResponse>, Status> {
        self.core().touch();
        Ok(Response::new(pb::DiagnoseResponse {
            checks: super::diagnose::run(self.core()).await,
        }))
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.core().touch();
        let caller = self.caller(&request);
        self.admin(&caller, "stop the agent", async { Ok(()) })
            .await?;
        tracing::info!(caller = %caller.describe(), "shutdown requested over the socket");
        self.core().stop();
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn list_grants(
        &self,
        _r: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        self.core().touch();
        Ok(Response::new(pb::ListGrantsResponse {
            grants: self.access.grants().into_iter().map(grant).collect(),
        }))
    }

    async fn revoke_grants(
        &self,
        request: Request<pb::RevokeGrantsRequest>,
    ) -> Result<Response<pb::RevokeGrantsResponse>, Status> {
        self.core().touch();
        let r = request.into_inner();
        if !r.all && r.ids.is_empty() {
            return Err(Status::invalid_argument(
                "name the grants to revoke (see `authctl access list`), or revoke all",
            ));
        }
        let revoked = self.access.revoke((!r.all).then_some(r.ids.as_slice()));
        Ok(Response::new(pb::RevokeGrantsResponse {
            revoked: u32::try_from(revoked).unwrap_or(u32::MAX),
        }))
    }

    async fn resolve_route(
        &self,
        request: Request<pb::ResolveRouteRequest>,
    ) -> Result<Response<pb::Route>, Status> {
        self.core().touch();
        let r = request.into_inner();
        let route = self.core().resolve_route(wire::tool(&r.tool)?, &r.target)?;
        Ok(Response::new(wire::route(&route)))
    }

    async fn list_routes(
        &self,
        _r: Request<pb::ListRoutesRequest>,
    ) -> Result<Response<pb::ListRoutesResponse>, Status> {
        self.core().touch();
        let routes = self
            .core()
            .config()
            .routes
            .iter()
            .map(wire::route)
            .collect();
        Ok(Response::new(pb::ListRoutesResponse { routes }))
    }

    async fn add_route(
        &self,
        request: Request<pb::AddRouteRequest>,
    ) -> Result<Response<pb::AddRouteResponse>, Status> {
        let core = self.core();
        core.touch();
        let caller = self.caller(&request);
        let r = request.into_inner();
        let route = wire::new_route(r.route)?;
        let action = format!(
            "add {} route {} -> {}",
            route.tool.name(),
            route.target,
            route.account
        );
        let (tool, account) = (route.tool, route.account.clone());
        self.admin(&caller, &action, async {
            Ok(core.add_route(route, r.replace)?)
        })
        .await?;
        // The stored form (canonical target) of the route just written.
        let stored = core
            .config()
            .routes
            .iter()
            .rev()
            .find(|x| x.tool == tool && x.account == account)
            .map(wire::route);
        Ok(Response::new(pb::AddRouteResponse {
            route: stored,
            config_path: core.paths.config_file.display().to_string(),
        }))
    }

    async fn remove_route(
        &self,
        request: Request<pb::RemoveRouteRequest>,
    ) -> Result<Response<pb::RemoveRouteResponse>, Status> {
        let core = self.core();
        core.touch();
        let caller = self.caller(&request);
        let r = request.into_inner();
        let tool = wire::tool(&r.tool)?;
        let action = format!("remove {} route {}", tool.name(), r.target);
        self.admin(&caller, &action, async {
            Ok(core.remove_route(tool, &r.target)?)
        })
        .await?;
        Ok(Response::new(pb::RemoveRouteResponse {
            config_path: core.paths.config_file.display().to_string(),
        }))
    }
}

/// A grant on the wire.
fn grant(g: crate::access::Grant) -> pb::Grant {
    pb::Grant {
        id: g.id,
        exe: g.exe,
        exe_sha256: g.exe_sha256.unwrap_or_default(),
        unit: g.unit.unwrap_or_default(),
        script: g.script.unwrap_or_default(),
        account: g.account,
        scopes: g.scopes,
        resource: g.resource,
        granted_at: g.granted_at,
        expires_at: g.expires_at,
    }
}

/// Runs a browser flow (`run`, given a progress channel) in its own task and streams its progress
/// and outcome as `LoginEvent`s. A caller that goes away (Ctrl-C) cancels it, which closes its
/// loopback listener.
fn progress_stream<F, Fut>(run: F) -> EventStream
where
    F: FnOnce(mpsc::Sender<Progress>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<pb::LoginCompleted, LoginError>> + Send,
{
    let (tx, rx) = mpsc::channel::<Result<pb::LoginEvent, Status>>(4);
    tokio::spawn(async move {
        let (ptx, mut prx) = mpsc::channel::<Progress>(4);
        let forward = {
            let tx = tx.clone();
            async move {
                while let Some(p) = prx.recv().await {
                    let _ = tx.send(Ok(wire::progress(p))).await;
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
                tracing::info!("a login or sign-out was cancelled by the client");
                return;
            }
        };
        let ev = match result {
            Ok(done) => pb::login_event::Event::Completed(done),
            Err(e) if e.is_outcome() => {
                tracing::warn!(error = %e, "a login or sign-out failed");
                pb::login_event::Event::Failed(pb::LoginFailed {
                    reason: e.to_string(),
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "a login or sign-out failed");
                let _ = tx.send(Err(Status::from(e))).await;
                return;
            }
        };
        let _ = tx.send(Ok(pb::LoginEvent { event: Some(ev) })).await;
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
