//! The token lifecycle, unit-tested without a provider process: a scripted token endpoint (the
//! [`TokenEndpoint`] seam), the memory store, and tokio's paused clock, so hours of token life
//! run in milliseconds.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::config::{Config, ProviderConfig};
use crate::core::events::EventKind;
use crate::oauth::token::{ClientAuth, TokenEndpoint, TokenError};
use crate::store::memory::MemoryStore;

/// One answer of the scripted endpoint.
#[derive(Clone)]
enum Answer {
    /// A rotated token set valid this long (`None`: no `expires_in`).
    Rotate(Option<u64>),
    Fail(TokenError),
}

/// A request the endpoint received.
#[derive(Debug, Clone)]
struct Call {
    grant: String,
    refresh_token: String,
    scope: Option<String>,
    resource: Option<String>,
}

/// The token endpoint, scripted: queued answers first, then `default`.
struct Script {
    /// Answers given before `default` (for scripted sequences).
    queue: Mutex<VecDeque<Answer>>,
    default: Mutex<Answer>,
    calls: Mutex<Vec<Call>>,
    /// How long the "provider" takes (on tokio's clock).
    delay: Duration,
}

impl Script {
    fn new(default: Answer) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            calls: Mutex::new(Vec::new()),
            delay: Duration::from_millis(20),
        })
    }

    fn set_default(&self, a: Answer) {
        *self.default.lock().unwrap() = a;
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

impl TokenEndpoint for Script {
    fn request<'a>(
        &'a self,
        _endpoint: &'a str,
        _auth: &'a ClientAuth,
        params: &'a [(&'a str, &'a str)],
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<TokenSet, TokenError>> + Send + 'a>> {
        Box::pin(async move {
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| (*v).to_owned())
            };
            let n = {
                let mut calls = self.calls.lock().unwrap();
                calls.push(Call {
                    grant: get("grant_type").unwrap_or_default(),
                    refresh_token: get("refresh_token").unwrap_or_default(),
                    scope: get("scope"),
                    resource: get("resource"),
                });
                calls.len()
            };
            tokio::time::sleep(self.delay).await;
            let answer = self
                .queue
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| self.default.lock().unwrap().clone());
            match answer {
                Answer::Rotate(expires_in) => Ok(TokenSet {
                    access_token: SecretString::from(format!("at{n}")),
                    token_type: "Bearer".into(),
                    expires_in,
                    refresh_token: Some(SecretString::from(format!("rt{n}"))),
                    id_token: None,
                    scope: None,
                }),
                Answer::Fail(e) => Err(e),
            }
        })
    }
}

fn config() -> Config {
    let mut c = Config::default();
    c.providers.insert(
        "p".into(),
        ProviderConfig {
            client_id: "c".into(),
            authorization_endpoint: Some("https://idp.example/authorize".into()),
            token_endpoint: Some("https://idp.example/token".into()),
            ..ProviderConfig::default()
        },
    );
    c
}

struct World {
    tokens: Arc<Tokens>,
    store: Arc<MemoryStore>,
    script: Arc<Script>,
}

impl World {
    fn new(default: Answer) -> Self {
        let store = Arc::new(MemoryStore::default());
        let script = Script::new(default);
        let core = Core::for_tests(config(), Arc::clone(&store) as _, Arc::clone(&script) as _);
        Self {
            tokens: Tokens::new(core),
            store,
            script,
        }
    }

    /// Logs account `a` in at provider `p` with a token valid `expires_in` seconds and the
    /// refresh token `rt0`.
    async fn login(&self, expires_in: u64) {
        let _ = self
            .tokens
            .store_login(NewLogin {
                provider: "p".into(),
                account: "a".into(),
                scopes: vec!["openid".into(), "offline_access".into()],
                tokens: TokenSet {
                    access_token: SecretString::from("at0"),
                    token_type: "Bearer".into(),
                    expires_in: Some(expires_in),
                    refresh_token: Some(SecretString::from("rt0")),
                    id_token: None,
                    scope: None,
                },
                subject: "alice".into(),
                display_name: "alice@example".into(),
                keep_id_token: false,
                issuer: String::new(),
                token_endpoint: "https://idp.example/token".into(),
            })
            .await
            .unwrap();
    }

    fn stored_rt(&self) -> Option<String> {
        crate::store::SecretStore::get(&*self.store, &store::refresh_token_key("a"))
            .unwrap()
            .map(|s| s.expose_secret().to_owned())
    }

    async fn get(&self, req: TokenRequest) -> Result<Served, ServeError> {
        self.tokens.get(&req).await
    }
}

fn req(min_ttl: Option<u64>) -> TokenRequest {
    TokenRequest {
        account: "a".into(),
        min_ttl,
        ..TokenRequest::default()
    }
}

fn at(s: &Served) -> String {
    s.token.access_token.expose_secret().to_owned()
}

async fn advance(secs: u64) {
    tokio::time::advance(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn a_cached_token_is_served_without_a_provider_call() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(3600).await;
    for _ in 0..100 {
        assert_eq!(at(&w.get(req(None)).await.unwrap()), "at0");
    }
    assert_eq!(w.script.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_on_a_stale_token_share_one_refresh() {
    let w = Arc::new(World::new(Answer::Rotate(Some(3600))));
    w.login(120).await;
    advance(100).await; // 20 s left: stale for the 60 s default min_ttl
    let mut callers = Vec::new();
    for _ in 0..50 {
        let w = Arc::clone(&w);
        callers.push(tokio::spawn(
            async move { at(&w.get(req(None)).await.unwrap()) },
        ));
    }
    for c in callers {
        assert_eq!(
            c.await.unwrap(),
            "at1",
            "every caller gets the one refreshed token"
        );
    }
    let calls = w.script.calls();
    assert_eq!(calls.len(), 1, "one refresh for 50 callers: {calls:?}");
    assert_eq!(calls[0].grant, "refresh_token");
    assert_eq!(calls[0].refresh_token, "rt0");
}

#[tokio::test(start_paused = true)]
async fn the_rotated_refresh_token_is_durable_before_the_new_token_is_served() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(120).await;
    advance(100).await;
    let served = w.get(req(None)).await.unwrap();
    assert_eq!(at(&served), "at1");
    assert_eq!(
        w.stored_rt().as_deref(),
        Some("rt1"),
        "stored before it was served"
    );
    // The next refresh sends the rotated one.
    w.get(TokenRequest {
        force_refresh: true,
        ..req(None)
    })
    .await
    .unwrap();
    assert_eq!(w.script.calls()[1].refresh_token, "rt1");
    assert_eq!(w.stored_rt().as_deref(), Some("rt2"));
}

#[tokio::test(start_paused = true)]
async fn a_store_that_refuses_the_write_loses_no_rotated_token() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(120).await;
    advance(100).await;
    w.store.refuse_writes.store(true, Ordering::Relaxed);
    let served = w.get(req(None)).await.unwrap();
    assert_eq!(at(&served), "at1", "served from memory");
    assert_eq!(
        w.stored_rt().as_deref(),
        Some("rt0"),
        "the store kept the old one"
    );
    let record = w.tokens.core().accounts.get("a").unwrap();
    assert!(
        record.last_error.contains("held in memory only"),
        "{}",
        record.last_error
    );
    // The next refresh uses the rotated token held in memory, not the store's stale one.
    w.get(TokenRequest {
        force_refresh: true,
        ..req(None)
    })
    .await
    .unwrap();
    assert_eq!(w.script.calls()[1].refresh_token, "rt1");
    // Once the store takes writes again, the newest token is made durable.
    w.store.refuse_writes.store(false, Ordering::Relaxed);
    w.get(TokenRequest {
        force_refresh: true,
        ..req(None)
    })
    .await
    .unwrap();
    assert_eq!(w.script.calls()[2].refresh_token, "rt2");
    assert_eq!(w.stored_rt().as_deref(), Some("rt3"));
}

#[tokio::test(start_paused = true)]
async fn a_failing_provider_is_retried_briefly_then_backed_off_without_hammering() {
    let unavailable = Answer::Fail(TokenError::Http {
        status: 503,
        retry_after: None,
    });
    let w = World::new(unavailable);
    w.login(60).await;
    advance(61).await; // expired: nothing valid to serve
    let e = w.get(req(None)).await.unwrap_err();
    assert!(matches!(e, ServeError::ProviderUnavailable { .. }), "{e:?}");
    assert_eq!(w.script.count(), 3, "two quick foreground retries");
    // Backing off: callers fail fast and the provider is not asked.
    for _ in 0..20 {
        assert!(w.get(req(None)).await.is_err());
    }
    assert_eq!(w.script.count(), 3, "no request while backing off");
    assert_eq!(
        w.stored_rt().as_deref(),
        Some("rt0"),
        "the refresh token is kept"
    );
    // After the backoff the provider is asked again, and a success clears the failure.
    w.script.set_default(Answer::Rotate(Some(3600)));
    advance(5 * 60).await;
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at4");
    assert!(
        w.tokens
            .core()
            .accounts
            .get("a")
            .unwrap()
            .last_error
            .is_empty()
    );
}

#[tokio::test(start_paused = true)]
async fn a_still_valid_token_is_served_while_the_provider_fails() {
    let w = World::new(Answer::Fail(TokenError::Http {
        status: 429,
        retry_after: Some(Duration::from_secs(30)),
    }));
    w.login(120).await;
    advance(100).await; // 20 s left: stale for min_ttl 60, but still valid
    let s = w.get(req(None)).await.unwrap();
    assert_eq!(at(&s), "at0");
    assert!(s.note.unwrap().contains("still valid"));
    assert_eq!(w.script.count(), 1, "one attempt, no foreground retry");
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_ends_the_login_keeps_the_account_and_drops_the_refresh_token() {
    let w = World::new(Answer::Fail(TokenError::Rejected {
        error: "invalid_grant".into(),
        description: Some("revoked".into()),
    }));
    w.login(60).await;
    let mut events = w.tokens.core().subscribe();
    advance(61).await;
    let e = w.get(req(None)).await.unwrap_err();
    assert!(matches!(e, ServeError::LoginRequired { .. }), "{e:?}");
    assert!(e.to_string().contains("authctl login a"), "{e}");
    let record = w.tokens.core().accounts.get("a").unwrap();
    assert!(record.login_required && !record.has_refresh_token);
    assert!(record.last_error.contains("invalid_grant"));
    assert_eq!(w.stored_rt(), None, "the dead refresh token is gone");
    let ev = loop {
        let ev = events.recv().await.unwrap();
        if ev.kind != EventKind::RefreshFailed {
            break ev;
        }
    };
    assert_eq!(ev.kind, EventKind::LoginRequired);
    // Later callers are told at once, without asking the provider.
    assert!(w.get(req(None)).await.unwrap_err().needs_login());
    assert_eq!(w.script.count(), 1);
    // A login repairs the account in place.
    w.login(3600).await;
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at0");
}

#[tokio::test(start_paused = true)]
async fn a_transient_error_never_ends_a_login() {
    for e in [
        TokenError::Http {
            status: 500,
            retry_after: None,
        },
        TokenError::Network("reset".into()),
        TokenError::Timeout,
        TokenError::Malformed("truncated".into()),
        TokenError::Rejected {
            error: "temporarily_unavailable".into(),
            description: None,
        },
    ] {
        let w = World::new(Answer::Fail(e.clone()));
        w.login(60).await;
        advance(61).await;
        assert!(matches!(
            w.get(req(None)).await,
            Err(ServeError::ProviderUnavailable { .. })
        ));
        assert!(!w.tokens.core().accounts.get("a").unwrap().login_required);
        assert_eq!(w.stored_rt().as_deref(), Some("rt0"), "{e}");
    }
}

#[tokio::test(start_paused = true)]
async fn min_ttl_above_the_issued_lifetime_refreshes_once_per_token_not_per_call() {
    let w = World::new(Answer::Rotate(Some(60)));
    w.login(60).await;
    for second in 0..120 {
        let s = w.get(req(Some(3600))).await.unwrap();
        assert!(
            s.note.is_some(),
            "the caller is told the lifetime is capped"
        );
        let _ = second;
        advance(1).await;
    }
    // 120 s of calls with 60 s tokens: at most one refresh per issued token (at half life).
    assert!(w.script.count() <= 4, "{} refreshes", w.script.count());
    assert!(w.script.count() >= 2, "{} refreshes", w.script.count());
}

#[tokio::test(start_paused = true)]
async fn the_supervisor_refreshes_a_used_token_before_it_expires_and_stops_when_idle() {
    let w = World::new(Answer::Rotate(Some(120)));
    w.login(120).await;
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at0"); // makes the account hot
    // 120 s tokens, min_ttl 60: the lead is capped at half the life, so due at 60 s.
    advance(55).await;
    tokio::task::yield_now().await;
    assert_eq!(w.script.count(), 0, "not before it is due");
    for _ in 0..10 {
        advance(1).await;
        tokio::task::yield_now().await;
    }
    assert_eq!(
        w.script.count(),
        1,
        "refreshed ahead of expiry without a caller"
    );
    // A caller now finds a fresh token and waits for nothing.
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at1");
    // The agent counts as busy while it keeps an account fresh...
    assert!(w.tokens.core().idleness().1);
    // ...until nobody asked for refresh_idle_seconds (3600): then it stops refreshing.
    let before = w.script.count();
    advance(2 * 3600).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let during = w.script.count() - before;
    assert!(during <= 61, "{during} refreshes in two idle hours");
    advance(3600).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let settled = w.script.count();
    advance(3600).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        w.script.count(),
        settled,
        "an idle account is not refreshed"
    );
    assert!(!w.tokens.core().idleness().1, "no longer busy");
}

#[tokio::test(start_paused = true)]
async fn logout_forgets_everything_and_ends_the_supervisor() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(3600).await;
    w.get(req(None)).await.unwrap();
    assert!(w.tokens.core().idleness().1);
    let mut events = w.tokens.core().subscribe();
    let (name, revocation) = w.tokens.logout("p", false).await.unwrap();
    assert_eq!(name, "a", "a provider of one account names it");
    assert!(matches!(revocation, Revocation::NotAsked));
    assert!(w.tokens.core().accounts.get("a").is_none());
    assert_eq!(w.stored_rt(), None);
    assert_eq!(w.tokens.expiry("a"), None);
    assert_eq!(events.recv().await.unwrap().kind, EventKind::Removed);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!w.tokens.core().idleness().1, "the supervisor ended");
    assert!(matches!(
        w.get(req(None)).await,
        Err(ServeError::Core(CoreError::NoSuchAccount(_)))
    ));
    let by_provider = TokenRequest {
        account: "p".into(),
        ..req(None)
    };
    let e = w.get(by_provider).await.unwrap_err();
    assert!(
        e.needs_login(),
        "a provider without an account needs a first login: {e}"
    );
}

#[tokio::test(start_paused = true)]
async fn downscoped_and_resource_tokens_have_their_own_keys_and_parameters() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(3600).await;
    let scoped = w
        .get(TokenRequest {
            scopes: vec!["b".into(), "a".into()],
            ..req(None)
        })
        .await
        .unwrap();
    let resource = w
        .get(TokenRequest {
            resource: "https://api.example".into(),
            ..req(None)
        })
        .await
        .unwrap();
    assert_ne!(at(&scoped), at(&resource));
    let calls = w.script.calls();
    assert_eq!(calls[0].scope.as_deref(), Some("a b"));
    assert_eq!(calls[1].resource.as_deref(), Some("https://api.example"));
    // Each is cached under its own key; the account's own token is untouched.
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at0");
    w.get(TokenRequest {
        scopes: vec!["a".into(), "b".into()],
        ..req(None)
    })
    .await
    .unwrap();
    assert_eq!(
        w.script.count(),
        2,
        "the same scope set in another order is a hit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_is_never_sent_to_another_token_endpoint_than_its_own() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(60).await;
    // The provider is replaced (`provider add --replace`, an edited file) by one pointing elsewhere.
    let mut moved = config();
    moved.providers.get_mut("p").unwrap().token_endpoint =
        Some("https://evil.example/token".into());
    w.tokens.core().set_config(moved);
    advance(61).await;
    let e = w.get(req(None)).await.unwrap_err();
    assert!(e.needs_login(), "{e}");
    assert!(e.to_string().contains("https://evil.example/token"), "{e}");
    assert_eq!(
        w.script.count(),
        0,
        "the refresh token was not sent anywhere"
    );
    let record = w.tokens.core().accounts.get("a").unwrap();
    assert!(
        record.login_required,
        "the account says why it needs a login"
    );
    assert_eq!(w.stored_rt(), None);
}

#[tokio::test(start_paused = true)]
async fn zero_lifetime_tokens_never_make_a_hot_loop() {
    let w = Arc::new(World::new(Answer::Rotate(Some(0))));
    w.login(0).await;
    // A busy client asking every 100 ms for a minute, and the supervisor behind it.
    for _ in 0..600 {
        let s = w.get(req(None)).await.unwrap();
        assert!(!at(&s).is_empty());
        advance_ms(100).await;
    }
    // Each counts as valid for 10 s and is refreshed at half that life: about 12 a minute.
    let calls = w.script.count();
    assert!(
        (6..=14).contains(&calls),
        "{calls} token requests in a minute of zero-lifetime tokens"
    );
}

async fn advance_ms(ms: u64) {
    tokio::time::advance(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_downscoped_key_fails_alone_and_is_not_asked_again_at_once() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(3600).await;
    let scoped = TokenRequest {
        scopes: vec!["Files.Read".into()],
        ..req(None)
    };
    // Entra answers invalid_grant when a resource needs consent or MFA.
    w.script
        .queue
        .lock()
        .unwrap()
        .push_back(Answer::Fail(TokenError::Rejected {
            error: "invalid_grant".into(),
            description: Some("AADSTS65001: consent required".into()),
        }));
    let e = w.get(scoped.clone()).await.unwrap_err();
    assert!(matches!(e, ServeError::KeyRefused(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS65001"), "{e}");
    assert!(e.to_string().contains("Files.Read"), "{e}");
    // The login stands: the account, its refresh token and its own token are untouched.
    let record = w.tokens.core().accounts.get("a").unwrap();
    assert!(!record.login_required);
    assert_eq!(w.stored_rt().as_deref(), Some("rt0"));
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at0");
    // Asking again at once fails fast, without a provider call.
    for _ in 0..10 {
        assert!(matches!(
            w.get(scoped.clone()).await,
            Err(ServeError::KeyRefused(_))
        ));
    }
    assert_eq!(w.script.count(), 1);
    // After the cooldown it is asked again (and granted now).
    advance(61).await;
    assert!(w.get(scoped).await.is_ok());
    assert_eq!(w.script.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn downscoped_keys_per_account_are_bounded() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.login(3600).await;
    for i in 0..100 {
        w.get(TokenRequest {
            scopes: vec![format!("s{i}")],
            ..req(None)
        })
        .await
        .unwrap();
    }
    let kept = w.tokens.cache.keys_of("a");
    assert_eq!(
        kept,
        cache::MAX_KEYS_PER_ACCOUNT + 1,
        "the cap plus the account's own"
    );
    assert_eq!(
        at(&w.get(req(None)).await.unwrap()),
        "at0",
        "its own token stays"
    );
}

#[tokio::test(start_paused = true)]
async fn a_login_the_store_refuses_is_kept_in_memory_served_and_saved_later() {
    let w = World::new(Answer::Rotate(Some(3600)));
    w.store.refuse_writes.store(true, Ordering::Relaxed);
    let (record, refused) = w
        .tokens
        .store_login(NewLogin {
            provider: "p".into(),
            account: "a".into(),
            scopes: vec!["openid".into()],
            tokens: TokenSet {
                access_token: SecretString::from("at0"),
                token_type: "Bearer".into(),
                expires_in: Some(60),
                refresh_token: Some(SecretString::from("rt0")),
                id_token: None,
                scope: None,
            },
            subject: "alice".into(),
            display_name: String::new(),
            keep_id_token: false,
            issuer: String::new(),
            token_endpoint: "https://idp.example/token".into(),
        })
        .await
        .unwrap();
    assert!(refused.is_some());
    assert!(
        record.last_error.contains("not saved"),
        "{}",
        record.last_error
    );
    assert!(
        record.last_error.contains("store = \"file\""),
        "{}",
        record.last_error
    );
    assert_eq!(w.tokens.health(&record), Health::NotSaved);
    assert_eq!(at(&w.get(req(None)).await.unwrap()), "at0", "served");
    // Its refresh uses the token held in memory.
    advance(61).await;
    w.get(req(None)).await.unwrap();
    assert_eq!(w.script.calls()[0].refresh_token, "rt0");
    // The store takes writes again: the background retry saves the newest token.
    w.store.refuse_writes.store(false, Ordering::Relaxed);
    tokio::spawn(Arc::clone(&w.tokens).retry_unsaved());
    tokio::task::yield_now().await;
    advance(31).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(w.stored_rt().as_deref(), Some("rt1"));
    let record = w.tokens.core().accounts.get("a").unwrap();
    assert_eq!(w.tokens.health(&record), Health::Ready);
}
