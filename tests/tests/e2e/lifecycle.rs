//! The token lifecycle: coalesced refreshes, faults survived, rotation, invalid_grant, SIGKILL
//! cycles, downscoped tokens, Watch.

use std::time::{Duration, Instant};

use authctl_client::proto::{GetTokenRequest, WatchEventKind};
use authctl_client::secrecy::ExposeSecret;
use authctl_tests::{IdpOptions, TestEnv, read};
use serde_json::json as j;

use super::{json, setup, setup_with};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn stored_refresh_token(env: &TestEnv, account: &str) -> String {
    json(&read(&env.data_dir().join("secrets.json")))[format!("account/{account}/refresh_token")]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Retries a forced refresh until the backoff from an earlier failure has passed.
fn refresh_until_ok(env: &TestEnv) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = env.authctl(&["token", "corp", "--refresh"]);
        if r.code == 0 {
            return r.stdout.trim().to_owned();
        }
        assert_eq!(r.code, 6, "only 'unavailable' while backing off: {r:?}");
        assert!(Instant::now() < deadline, "never recovered: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_burst_of_500_callers_on_a_stale_token_makes_one_token_call() {
    let (env, idp) = setup_with(
        IdpOptions {
            access_token_ttl: Some(2),
            ..IdpOptions::default()
        },
        "",
    );
    env.authctl(&["login", "corp"]).ok();
    std::thread::sleep(Duration::from_millis(2100)); // the login's token has expired
    assert_eq!(idp.token_calls("refresh_token"), 0);
    let tokens: Vec<String> = runtime().block_on(async {
        let client = authctl_client::connect(&env.socket()).await.unwrap();
        let calls = (0..500).map(|_| {
            let mut c = client.clone();
            tokio::spawn(async move {
                let t = c
                    .get_token_with(GetTokenRequest {
                        account: "corp".into(),
                        min_ttl_seconds: 1,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                t.access_token.expose_secret().to_owned()
            })
        });
        let mut out = Vec::new();
        for c in calls.collect::<Vec<_>>() {
            out.push(c.await.unwrap());
        }
        out
    });
    assert_eq!(
        idp.token_calls("refresh_token"),
        1,
        "exactly one token-endpoint call for 500 callers"
    );
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "every caller got the same fresh token"
    );
    eprintln!(
        "burst: 500 callers, {} token-endpoint call(s)",
        idp.token_calls("refresh_token")
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn transient_faults_are_survived_and_the_refresh_token_is_kept() {
    let (env, idp) = setup_with(IdpOptions::default(), "http_timeout_seconds = 2");
    env.authctl(&["login", "corp"]).ok();
    let mut cached = env.token(&["corp"]);
    let faults = [
        (
            j!({"status": 500, "grant_type": "refresh_token"}),
            "HTTP 500",
        ),
        (
            j!({"status": 503, "grant_type": "refresh_token"}),
            "HTTP 503",
        ),
        (
            j!({"status": 429, "retry_after": 1, "grant_type": "refresh_token"}),
            "HTTP 429",
        ),
        // A server that hangs past our timeout (and never processes the request).
        (
            j!({"delay_ms": 4000, "drop": true, "grant_type": "refresh_token"}),
            "in time",
        ),
        (
            j!({"garbage": true, "grant_type": "refresh_token"}),
            "malformed",
        ),
        (
            j!({"drop": true, "grant_type": "refresh_token"}),
            "unreachable",
        ),
    ];
    for (fault, expect) in faults {
        let rt_before = stored_refresh_token(&env, "corp");
        idp.push_faults(j!([fault]));
        let r = env.authctl(&["token", "corp", "--refresh"]);
        r.expect_code(6);
        assert!(r.stderr.contains(expect), "{fault}: {}", r.stderr);
        assert!(r.stderr.contains("refresh token is kept"), "{}", r.stderr);
        if fault.get("retry_after").is_some() {
            // Retry-After is honoured: no new token call goes out before it has passed.
            let calls = idp.token_calls("refresh_token");
            env.authctl(&["token", "corp", "--refresh"]).expect_code(6);
            assert_eq!(
                idp.token_calls("refresh_token"),
                calls,
                "no call during Retry-After"
            );
        }
        // A plain request keeps being served the still-valid cached token meanwhile.
        let r = env.authctl(&["token", "corp"]);
        r.ok();
        assert_eq!(r.stdout.trim(), cached, "{fault}");
        assert_eq!(
            stored_refresh_token(&env, "corp"),
            rt_before,
            "{fault}: refresh token kept"
        );
        let status = env.status_json();
        assert_eq!(status["accounts"][0]["state"], "degraded", "{fault}");
        // Once the fault is gone, the same refresh token works.
        let fresh = refresh_until_ok(&env);
        assert_ne!(fresh, cached);
        assert_eq!(idp.introspect(&fresh)["active"], true);
        let status = env.status_json();
        assert_eq!(status["accounts"][0]["state"], "ready", "{fault}");
        cached = fresh;
    }
    // A 201 with a valid body is success.
    idp.push_faults(j!([{"status_201": true, "grant_type": "refresh_token"}]));
    let t = env.token(&["corp", "--refresh"]);
    assert_eq!(idp.introspect(&t)["active"], true);

    // The provider rotates, then the answer is lost: the old refresh token is now a reused one,
    // which the provider answers by revoking the grant. The account must say "login required",
    // never stay silently broken.
    idp.push_faults(j!([{"drop_after": true, "grant_type": "refresh_token"}]));
    env.authctl(&["token", "corp", "--refresh"]).expect_code(6);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = env.authctl(&["token", "corp", "--refresh"]);
        if r.code == 4 {
            break;
        }
        assert_eq!(r.code, 6, "{r:?}");
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = env.status_json();
    assert_eq!(status["accounts"][0]["state"], "login_required");
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_caller_with_nothing_valid_is_retried_through_a_blip() {
    let (env, idp) = setup_with(
        IdpOptions {
            access_token_ttl: Some(2),
            ..IdpOptions::default()
        },
        "",
    );
    env.authctl(&["login", "corp"]).ok();
    std::thread::sleep(Duration::from_millis(2100));
    idp.push_faults(j!([{"status": 502, "grant_type": "refresh_token"}]));
    let t = env.token(&["corp", "--min-ttl", "1"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    assert_eq!(
        idp.token_calls("refresh_token"),
        2,
        "one failed call, one retry"
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn invalid_grant_marks_login_required_and_login_repairs_in_place() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    idp.push_faults(j!([{"invalid_grant": true, "grant_type": "refresh_token"}]));
    let r = env.authctl(&["token", "corp", "--refresh"]);
    r.expect_code(4);
    assert!(
        r.stderr.contains("authctl login corp") && r.stderr.contains("invalid_grant"),
        "{}",
        r.stderr
    );
    let status = env.status_json();
    let acc = &status["accounts"][0];
    assert_eq!(acc["state"], "login_required");
    assert!(
        acc["last_error"]
            .as_str()
            .unwrap()
            .contains("forced by test"),
        "{acc}"
    );
    // Non-interactive callers get "login required" at once, without a token call.
    let calls = idp.token_calls("refresh_token");
    env.authctl(&["token", "corp"]).expect_code(4);
    assert_eq!(idp.token_calls("refresh_token"), calls);
    // `authctl login corp` logs the same account in again, in place.
    env.authctl(&["login", "corp"]).ok();
    let status = env.status_json();
    assert_eq!(status["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(status["accounts"][0]["name"], "corp");
    assert_eq!(status["accounts"][0]["state"], "ready");
    env.authctl(&["token", "corp", "--refresh"]).ok();
    // GitHub style: the error arrives with HTTP 200.
    idp.push_faults(j!([{"error_200": "invalid_grant", "grant_type": "refresh_token"}]));
    env.authctl(&["token", "corp", "--refresh"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn rotation_is_durable_and_downscoped_tokens_have_their_own_key() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let rt0 = stored_refresh_token(&env, "corp");
    let full = env.token(&["corp"]);
    let narrow = env.token(&["corp", "--scope", "openid"]);
    assert_ne!(narrow, full);
    let rt1 = stored_refresh_token(&env, "corp");
    assert_ne!(rt1, rt0, "the rotated refresh token was stored");
    assert_eq!(idp.introspect(&narrow)["scope"], "openid");
    // Each key is cached on its own.
    assert_eq!(
        env.authctl(&["token", "corp", "--scope", "openid"])
            .ok()
            .stdout
            .trim(),
        narrow
    );
    assert_eq!(env.authctl(&["token", "corp"]).ok().stdout.trim(), full);
    assert_eq!(idp.token_calls("refresh_token"), 1);
    // A scope the grant does not hold is refused with the provider's reason.
    let r = env.authctl(&["token", "corp", "--scope", "admin"]);
    r.expect_code(2);
    assert!(r.stderr.contains("invalid_scope"), "{}", r.stderr);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn watch_streams_refresh_login_required_and_removed_events_and_fresh_token_follows() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    runtime().block_on(async {
        let mut client = authctl_client::connect(&env.socket()).await.unwrap();
        let mut fresh = client
            .fresh_token(GetTokenRequest {
                account: "corp".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let first = fresh.current();
        let mut events = client.watch("corp").await.unwrap();
        let mut forced = client.clone();
        forced
            .get_token_with(GetTokenRequest {
                account: "corp".into(),
                force_refresh: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, WatchEventKind::Refreshed as i32);
        assert_eq!(ev.account, "corp");
        assert!(ev.expires_at > 0);
        // The fresh-token handle picked the new token up by itself.
        let next = tokio::time::timeout(Duration::from_secs(10), fresh.changed())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            next.access_token.expose_secret(),
            first.access_token.expose_secret()
        );

        idp.push_faults(j!([{"invalid_grant": true, "grant_type": "refresh_token"}]));
        let e = forced
            .get_token_with(GetTokenRequest {
                account: "corp".into(),
                force_refresh: true,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(e.is_login_required());
        let ev = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, WatchEventKind::LoginRequired as i32);
    });
    env.authctl(&["logout", "corp"]).ok();
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn proactive_refresh_keeps_a_used_token_fresh_without_callers_waiting() {
    // 4 s tokens: the supervisor refreshes a hot key at half-life, so a caller later finds a
    // fresh token in the cache.
    let (env, idp) = setup_with(
        IdpOptions {
            access_token_ttl: Some(4),
            ..IdpOptions::default()
        },
        "",
    );
    env.authctl(&["login", "corp"]).ok();
    env.authctl(&["token", "corp", "--min-ttl", "1"]).ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.token_calls("refresh_token") == 0 {
        assert!(Instant::now() < deadline, "the supervisor never refreshed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls = idp.token_calls("refresh_token");
    let t = env.token(&["corp", "--min-ttl", "1"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    assert_eq!(
        idp.token_calls("refresh_token"),
        calls,
        "served from the cache"
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn sigkill_during_refresh_cycles_never_leaves_a_silently_broken_account() {
    let idp = authctl_tests::Idp::start(IdpOptions::default());
    let env = TestEnv::new();
    let mut agent = env.spawn_agent();
    env.add_provider("corp", &idp);
    env.authctl(&["login", "corp"]).ok();
    let mut seed: u64 = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    let (mut survived, mut relogins) = (0, 0);
    let cycles = 15;
    for _ in 0..cycles {
        // Hammer forced refreshes from a second process while the agent is killed at a random
        // moment.
        let hammer = {
            let mut c = env.command(&authctl_tests::bin("authctl"));
            c.args(["token", "corp", "--refresh"]);
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let _ = c.output();
                }
            })
        };
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 200));
        let _ = agent.signal_and_wait("KILL");
        hammer.join().unwrap();
        agent = env.spawn_agent();
        let r = env.authctl(&["token", "corp", "--refresh"]);
        match r.code {
            0 => survived += 1,
            4 => {
                // The kill fell between the provider's rotation and our durable write: the
                // account says so, and a login repairs it.
                let status = env.status_json();
                assert_eq!(status["accounts"][0]["state"], "login_required");
                relogins += 1;
                env.authctl(&["login", "corp"]).ok();
                env.authctl(&["token", "corp", "--refresh"]).ok();
            }
            _ => panic!("a kill left the account broken: {r:?}"),
        }
    }
    eprintln!(
        "sigkill: {cycles} cycles, {survived} kept their refresh token, {relogins} needed a login"
    );
    assert_eq!(survived + relogins, cycles);
    drop(agent);
}

#[test]
fn several_accounts_at_one_provider_are_independent() {
    let (mut env, idp) = setup();
    env.authctl(&["login", "corp", "--account", "alice-at-corp"])
        .ok();
    // With one account, the provider name finds it.
    env.authctl(&["token", "corp"]).ok();
    env.set("HEADLESS_BROWSER_USER", "bob");
    env.set("HEADLESS_BROWSER_PASSWORD", "bob-password");
    let r = env.authctl(&["login", "corp", "--account", "bob-at-corp"]);
    r.ok();
    assert!(r.stdout.contains("account bob-at-corp"), "{r:?}");
    // With two, the provider name is ambiguous and the error lists the accounts.
    let r = env.authctl(&["token", "corp"]);
    r.expect_code(2);
    assert!(
        r.stderr.contains("several accounts") && r.stderr.contains("bob-at-corp"),
        "{}",
        r.stderr
    );
    let status = env.status_json();
    let subjects: Vec<&str> = status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(
        subjects.contains(&"alice") && subjects.contains(&"bob"),
        "{subjects:?}"
    );
    // One account's failure is that account's only.
    idp.push_faults(j!([{"invalid_grant": true, "grant_type": "refresh_token"}]));
    env.authctl(&["token", "bob-at-corp", "--refresh"])
        .expect_code(4);
    env.authctl(&["token", "alice-at-corp", "--refresh"]).ok();
    let status = env.status_json();
    for acc in status["accounts"].as_array().unwrap() {
        let want = if acc["name"] == "bob-at-corp" {
            "login_required"
        } else {
            "ready"
        };
        assert_eq!(acc["state"], want, "{acc}");
    }
    env.authctl(&["agent", "stop"]).ok();
}
