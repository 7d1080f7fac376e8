//! Hostile servers (issue 11), one attack per item against the real binaries: an authorization
//! server that bounces the browser to an honest one (mix-up), login targets that try to write
//! into `config.toml`, plain-http and exotic endpoints in discovered metadata, unbounded bodies, a
//! refresh token asked to go elsewhere, forged ID tokens and key rotation, and provider text that
//! carries terminal escapes and tokens.
//!
//! The hostile side is `tests/hostile/server.py` (resource metadata, authorization-server
//! metadata, dynamic registration, an authorization endpoint and a token endpoint that records
//! every request); the honest side is the test IdP with its faults.

use std::time::{Duration, Instant};

use authctl_tests::hostile::{Hostile, proc_status_kb};
use authctl_tests::http::Request;
use authctl_tests::idp::id_token_fault;
use authctl_tests::{Idp, IdpOptions, TestEnv, read};
use serde_json::json;

use super::{json as parse, setup};

/// The accounts `authctl status --json` lists.
fn accounts(env: &TestEnv) -> Vec<serde_json::Value> {
    env.status_json()["accounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A background agent with no provider and no IdP.
fn agent_only() -> TestEnv {
    let env = TestEnv::new();
    env.authctl(&["agent", "start"]).ok();
    env
}

/// `(port, path)` of a loopback redirect URI `http://127.0.0.1:PORT/PATH`.
fn port_and_path(redirect_uri: &str) -> (u16, String) {
    let rest = redirect_uri
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a 127.0.0.1 redirect URI: {redirect_uri}"));
    let (port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (port.parse().unwrap(), path.to_owned())
}

/// A URL's query parameter, percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The refresh token in the file store.
fn stored_refresh_token(env: &TestEnv, account: &str) -> String {
    let text = read(&env.data_dir().join("secrets.json"));
    if text.is_empty() {
        return String::new();
    }
    parse(&text)[format!("account/{account}/refresh_token")]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The browser's first hop: the hostile authorization endpoint answers the agent's authorization
/// URL with a redirect; returns where it sends the browser.
fn hostile_redirect(authorization_url: &str) -> String {
    let r = Request::new("GET", authorization_url).send().unwrap();
    assert_eq!(r.status, 302, "{}", r.body);
    r.header("location").unwrap().to_owned()
}

/// Issue 11.1: the hostile AS registers (RFC 7591) and then bounces the browser to the honest
/// IdP with the agent's `redirect_uri`, `state` and `code_challenge` under a client id whose
/// registration there accepts any loopback port. (A) Unchanged, the redirect URI's path is the
/// agent's unpredictable per-registration one, which the honest IdP refuses. (B) Rewritten to the
/// plain `/callback` path the honest client allows, the honest IdP logs the user in and sends a
/// real code there: the listener serves only its own path (404) and keeps waiting. (C) The
/// hostile side sends a callback with the right `state` to `/callback` itself: 404. No code and no
/// verifier ever reach a token endpoint, hostile or honest; the login times out; nothing stored.
#[test]
fn mix_up_a_hostile_as_bouncing_the_browser_to_an_honest_one_gets_no_code() {
    let (env, idp) = setup();
    let evil = Hostile::start();
    evil.configure(&json!({
        "authorize": "bounce",
        "honest_authorize": idp.url("/auth"),
        "honest_client_id": "authctl-native",
    }));
    let target = evil.url("/mcp");
    let login = env.start_login(&[&target, "--timeout", "10"]);

    // The registration the agent made: an unpredictable redirect path of its own.
    let regs = evil.requests_to("/register");
    assert_eq!(regs.len(), 1, "{regs:?}");
    let meta = parse(regs[0]["body"].as_str().unwrap());
    let redirect = meta["redirect_uris"][0].as_str().unwrap().to_owned();
    let tag = redirect
        .strip_prefix("http://127.0.0.1/callback/")
        .unwrap_or_else(|| panic!("{meta}"))
        .to_owned();
    assert!(
        tag.len() == 22
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "22 base64url characters (128 random bits): {tag}"
    );
    assert_eq!(
        meta["post_logout_redirect_uris"][0],
        format!("http://127.0.0.1/logout/{tag}")
    );
    let (port, path) = port_and_path(&login.redirect_uri);
    assert_eq!(path, format!("/callback/{tag}"));
    assert!(
        read(&env.config_file()).contains(&format!("redirect_path = \"/callback/{tag}\"")),
        "{}",
        read(&env.config_file())
    );

    // (A) The bounce as it comes: the honest IdP refuses the unregistered path.
    let to_honest = hostile_redirect(&login.url);
    assert!(to_honest.starts_with(&idp.url("/auth?")), "{to_honest}");
    assert_eq!(
        query_param(&to_honest, "redirect_uri").as_deref(),
        Some(login.redirect_uri.as_str())
    );
    assert_eq!(
        query_param(&to_honest, "state").as_deref(),
        Some(login.state.as_str())
    );
    assert!(query_param(&to_honest, "code_challenge").is_some());
    assert_eq!(env.browse(&to_honest), 7, "{}", env.browser_log());
    let blog = env.browser_log();
    assert!(
        blog.contains("invalid_redirect_uri") && !blog.contains("CALLBACK"),
        "the honest IdP refused the redirect URI and sent nothing to the listener: {blog}"
    );

    // (B) Rewritten to the plain path: a real code from the honest IdP meets a 404.
    evil.configure(&json!({"authorize": "bounce_plain"}));
    let to_honest = hostile_redirect(&login.url);
    assert_eq!(
        query_param(&to_honest, "redirect_uri"),
        Some(format!("http://127.0.0.1:{port}/callback"))
    );
    assert_eq!(env.browse(&to_honest), 1, "{}", env.browser_log());
    let blog = env.browser_log();
    assert!(
        blog.contains(&format!("GET http://127.0.0.1:{port}/callback?code="))
            && blog.contains("CALLBACK status=404"),
        "the honest IdP's code reached the plain path and was not served: {blog}"
    );

    // (C) The hostile side's own callback, right state, plain path.
    let forged = format!(
        "http://127.0.0.1:{port}/callback?code=hostile-code&state={}",
        login.state
    );
    assert_eq!(Request::new("GET", &forged).send().unwrap().status, 404);

    let run = login.finish();
    run.expect_code(7);
    assert!(
        run.stderr.contains("not completed within 10 seconds"),
        "{}",
        run.stderr
    );
    let token_posts = evil.requests_to("/token");
    assert!(
        token_posts.is_empty(),
        "nothing (no code, no code_verifier) reached the hostile token endpoint: {token_posts:?}"
    );
    assert_eq!(
        idp.token_calls("authorization_code"),
        0,
        "no code exchange at the honest IdP"
    );
    assert!(accounts(&env).is_empty());
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.1 (RFC 9207): a hostile AS that advertises `iss` in authorization responses cannot
/// complete a login with a callback that lacks it; its token endpoint sees nothing.
#[test]
fn mix_up_a_callback_without_iss_is_refused_when_the_hostile_as_advertises_it() {
    let env = agent_only();
    let evil = Hostile::start();
    evil.configure(&json!({
        "authorize": "callback",
        "as_metadata": {"authorization_response_iss_parameter_supported": true},
    }));
    // The scripted browser opens the hostile authorization URL, which sends it straight back to
    // the listener with the right state and a code, but no `iss`.
    let run = env.authctl(&["login", &evil.url("/mcp"), "--timeout", "10"]);
    run.expect_code(7);
    assert!(
        run.stderr.contains("RFC 9207") && run.stderr.contains("iss"),
        "{}",
        run.stderr
    );
    assert!(
        env.browser_log().contains("CALLBACK status=400"),
        "{}",
        env.browser_log()
    );
    assert!(evil.requests_to("/token").is_empty());
    assert!(accounts(&env).is_empty());
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.2: a login target with CR/LF/TAB is refused before anything is fetched or written;
/// `config.toml` (a provider table, comments) stays byte-identical.
#[test]
fn a_login_target_with_control_characters_never_reaches_config_toml() {
    let (env, idp) = setup();
    let mut text = read(&env.config_file());
    text = format!("# My providers, by hand.\n{text}\n# The end.\n");
    std::fs::write(env.config_file(), &text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
    let before = std::fs::read(env.config_file()).unwrap();
    let resource = idp.mcp_resource();
    for target in [
        format!("{resource}\n[providers.corp]\nclient_id = \"evil\""),
        format!("{resource}\r\n[providers.corp]\r\nclient_id = \"evil\""),
        format!("{resource}\t[providers.corp]"),
        format!("{resource}\tclient_id = \"evil\""),
    ] {
        let run = env.authctl(&["login", &target, "--no-browser", "--timeout", "2"]);
        run.expect_code(2);
        assert!(
            run.stderr.contains("control characters"),
            "{target:?}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(env.config_file()).unwrap(),
            before,
            "{target:?}: config.toml changed:\n{}",
            read(&env.config_file())
        );
    }
    assert_eq!(idp.registrations(), 0, "nothing was registered");
    assert_eq!(idp.counters()["mcp"]["unauthorized"], 0, "nothing fetched");
    let list = env.authctl(&["provider", "list"]).ok().stdout.clone();
    assert!(!list.contains("evil"), "{list}");
    env.authctl(&["agent", "stop"]).ok();
}

/// A zero-config login that must fail before the browser: `(exit code, stderr)`.
fn failed_login(env: &TestEnv, target: &str) -> (i32, String) {
    let run = env.authctl(&["login", target, "--no-browser", "--timeout", "2"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        !run.stderr.contains("/authorize?"),
        "no authorization URL: {}",
        run.stderr
    );
    (run.code, run.stderr.clone())
}

/// Issue 11.3: discovered endpoints are checked like configured ones: plain http off loopback and
/// other schemes are refused naming the endpoint, before any registration; a `file:` metadata
/// URL in a challenge is never fetched (the well-known URL is used, and when it is missing too
/// the error lists the refused URL); a plain-http authorization server or target is refused.
#[test]
fn discovered_endpoints_must_be_https_off_loopback() {
    let env = agent_only();
    let evil = Hostile::start();
    let target = evil.url("/mcp");

    // (a) A plain-http token endpoint off loopback.
    evil.configure(&json!({"as_metadata": {"token_endpoint": "http://evil.example/token"}}));
    let (code, err) = failed_login(&env, &target);
    eprintln!("plain-http token_endpoint: exit {code}: {err}");
    assert!(
        err.contains("token_endpoint") && err.contains("http://evil.example/token"),
        "{err}"
    );
    assert!(evil.requests_to("/register").is_empty(), "no registration");

    // (b) A javascript: authorization endpoint.
    evil.configure(&json!({"as_metadata": {
        "token_endpoint": "{base}/token",
        "authorization_endpoint": "javascript:alert(1)",
    }}));
    let (code, err) = failed_login(&env, &target);
    eprintln!("javascript: authorization_endpoint: exit {code}: {err}");
    assert!(err.contains("authorization_endpoint"), "{err}");
    assert!(evil.requests_to("/register").is_empty(), "no registration");

    // (c) A challenge naming a file: URL: never fetched, the well-known URL is used instead (this
    // registration is refused, to end the login there).
    let well_known = "/.well-known/oauth-protected-resource/mcp";
    let fetched = evil.requests_to(well_known).len();
    evil.configure(&json!({
        "as_metadata": {"authorization_endpoint": "{base}/authorize"},
        "challenge": "Bearer resource_metadata=\"file:///etc/passwd\"",
        "register_status": 400,
    }));
    let (code, err) = failed_login(&env, &target);
    eprintln!("file: resource_metadata, well-known used: exit {code}: {err}");
    assert!(err.contains("refused by the hostile server"), "{err}");
    assert_eq!(
        evil.requests_to(well_known).len(),
        fetched + 1,
        "the well-known URL was used"
    );
    assert_eq!(evil.requests_to("/register").len(), 1);
    // …and with no metadata at the well-known URLs either, the error lists the refused URL.
    evil.configure(&json!({"resource_metadata": null}));
    let (code, err) = failed_login(&env, &target);
    eprintln!("file: resource_metadata, no well-known: exit {code}: {err}");
    assert!(
        err.contains("file:///etc/passwd") && err.contains("no protected-resource metadata"),
        "{err}"
    );

    // (d) Resource metadata naming a plain-http authorization server off loopback.
    evil.configure(&json!({
        "challenge": "Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"",
        "resource_metadata": {"authorization_servers": ["http://evil.example"]},
    }));
    let (code, err) = failed_login(&env, &target);
    eprintln!("plain-http authorization server: exit {code}: {err}");
    assert!(
        err.contains("http://evil.example") && err.contains("refused"),
        "{err}"
    );

    // (e) The target itself.
    let (code, err) = failed_login(&env, "http://evil.example/mcp");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("http://evil.example"), "{err}");

    assert_eq!(
        evil.requests_to("/register").len(),
        1,
        "only the one of (c)"
    );
    assert!(evil.requests_to("/token").is_empty());
    assert!(accounts(&env).is_empty());
    assert!(
        !read(&env.config_file()).contains("evil"),
        "{}",
        read(&env.config_file())
    );
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.3, the exit code: a zero-config login whose discovered metadata names a plain-http
/// endpoint off loopback or a non-web scheme is refused like the same value in `config.toml` or a
/// plain-http target: a usage error, exit 2.
#[test]
fn a_discovered_insecure_endpoint_is_a_usage_error() {
    let env = agent_only();
    let evil = Hostile::start();
    for config in [
        json!({"as_metadata": {"token_endpoint": "http://evil.example/token"}}),
        json!({"as_metadata": {"token_endpoint": "{base}/token", "authorization_endpoint": "javascript:alert(1)"}}),
        json!({
            "as_metadata": {"authorization_endpoint": "{base}/authorize"},
            "resource_metadata": {"authorization_servers": ["http://evil.example"]},
        }),
    ] {
        evil.configure(&config);
        let (code, err) = failed_login(&env, &evil.url("/mcp"));
        assert_eq!(code, 2, "{config}: {err}");
    }
    env.authctl(&["agent", "stop"]).ok();
}

/// `(VmRSS, VmHWM)` of a process in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    (
        proc_status_kb(pid, "VmRSS").unwrap(),
        proc_status_kb(pid, "VmHWM").unwrap(),
    )
}

/// Issue 11.4 (a): authorization-server metadata of 5 MB, streamed chunked without a
/// Content-Length, is refused past 1 MiB without being buffered.
#[test]
fn a_huge_metadata_document_is_refused_past_one_mib_with_memory_bounded() {
    let env = agent_only();
    let evil = Hostile::start();
    let pid = env.agent_pid();
    // A first failed login warms the agent's HTTP client up.
    evil.configure(&json!({"as_metadata": null}));
    let (_, err) = failed_login(&env, &evil.url("/mcp"));
    assert!(err.contains("discovery"), "{err}");
    let (rss0, hwm0) = memory_kb(pid);

    evil.configure(&json!({"as_metadata": {}, "huge_metadata_mb": 5}));
    let (_, err) = failed_login(&env, &evil.url("/mcp"));
    assert!(err.contains("larger than 1048576 bytes"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, hwm1) = memory_kb(pid);
    let streamed: Vec<u64> = evil
        .requests()
        .iter()
        .filter(|r| r["method"] == "STREAMED")
        .filter_map(|r| r["bytes"].as_u64())
        .collect();
    eprintln!(
        "huge metadata: VmRSS {rss0} -> {rss1} kB, VmHWM {hwm0} -> {hwm1} kB; the server got \
         {streamed:?} bytes out before the agent hung up"
    );
    assert!(
        rss1.saturating_sub(rss0) < 4096,
        "VmRSS grew {} kB",
        rss1 - rss0
    );
    assert!(
        hwm1.saturating_sub(hwm0) < 4096,
        "VmHWM grew {} kB",
        hwm1 - hwm0
    );
    assert!(evil.requests_to("/register").is_empty());
    env.authctl(&["agent", "stop"]).ok();
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

/// Issue 11.4 (b): the honest IdP answers a refresh with a 20 MB body: refused (exit 6), the
/// refresh token kept and usable, the agent's memory bounded.
#[test]
fn a_huge_token_response_is_refused_and_the_refresh_token_kept() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let pid = env.agent_pid();
    let _ = env.token(&["corp", "--refresh"]); // warm up the refresh path
    let rt = stored_refresh_token(&env, "corp");
    let (rss0, hwm0) = memory_kb(pid);
    idp.push_faults(json!([{"huge_body_mb": 20, "grant_type": "refresh_token"}]));
    let run = env.authctl(&["token", "corp", "--refresh"]);
    run.expect_code(6);
    assert!(run.stderr.contains("1048576"), "{}", run.stderr);
    assert!(
        run.stderr.contains("refresh token is kept"),
        "{}",
        run.stderr
    );
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, hwm1) = memory_kb(pid);
    eprintln!("huge token response: VmRSS {rss0} -> {rss1} kB, VmHWM {hwm0} -> {hwm1} kB");
    assert!(idp.log().contains("(client hung up)"), "{}", idp.log());
    assert!(
        rss1.saturating_sub(rss0) < 4096,
        "VmRSS grew {} kB",
        rss1 - rss0
    );
    assert!(
        hwm1.saturating_sub(hwm0) < 4096,
        "VmHWM grew {} kB",
        hwm1 - hwm0
    );
    assert_eq!(stored_refresh_token(&env, "corp"), rt, "refresh token kept");
    let t = refresh_until_ok(&env);
    assert_eq!(idp.introspect(&t)["active"], true);
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.5: the account remembers the issuer and token endpoint it logged in with. A hand edit
/// that points only the token endpoint at another IdP, then `provider add --replace` that points
/// the provider at another issuer: each time the refresh token goes to neither endpoint, the
/// account is login required saying why, and a new login repairs it.
#[test]
fn a_refresh_token_goes_only_to_the_token_endpoint_it_came_from() {
    let (env, idp1) = setup();
    env.authctl(&["login", "corp"]).ok();
    let idp2 = Idp::start(IdpOptions::default());
    let original = read(&env.config_file());
    let assert_login_required = |names: &str| {
        let run = env.authctl(&["token", "corp", "--refresh"]);
        run.expect_code(4);
        assert!(
            run.stderr.contains(names) && run.stderr.contains("not sent"),
            "{}",
            run.stderr
        );
        env.authctl(&["token", "corp"]).expect_code(4);
        assert_eq!(
            idp2.token_calls("refresh_token"),
            0,
            "nothing sent to IdP 2"
        );
        assert_eq!(idp1.token_calls("refresh_token"), 0, "nor to IdP 1");
        let acc = &accounts(&env)[0];
        assert_eq!(acc["state"], "login_required", "{acc}");
        assert!(
            acc["last_error"]
                .as_str()
                .is_some_and(|r| r.contains(names)),
            "{acc}"
        );
    };

    // An edited file: same issuer, the token endpoint of another server.
    let edited = original.replace(
        "client_id = \"authctl-native\"",
        &format!(
            "client_id = \"authctl-native\"\ntoken_endpoint = \"{}\"",
            idp2.url("/token")
        ),
    );
    assert_ne!(edited, original);
    std::fs::write(env.config_file(), edited).unwrap();
    env.authctl(&["agent", "reload"]).ok();
    assert_login_required(&idp2.url("/token"));
    std::fs::write(env.config_file(), &original).unwrap();
    env.authctl(&["agent", "reload"]).ok();
    env.authctl(&["login", "corp"]).ok();

    // `provider add --replace` with another issuer.
    env.authctl(&[
        "provider",
        "add",
        "corp",
        "--replace",
        "--issuer",
        &idp2.issuer,
        "--client-id",
        "authctl-native",
        "--scope",
        "openid",
        "--scope",
        "offline_access",
    ])
    .ok();
    assert_login_required(&idp2.issuer);

    // A login at the new IdP repairs the account in place.
    env.authctl(&["login", "corp"]).ok();
    let _ = env.token(&["corp", "--refresh"]);
    assert_eq!(idp2.token_calls("refresh_token"), 1);
    assert_eq!(idp1.token_calls("refresh_token"), 0);
    env.authctl(&["agent", "stop"]).ok();
}

/// A login whose ID token is forged as `kind` fails (exit 7) and stores nothing.
fn a_forged_id_token_fails_the_login(kind: &str) {
    let (env, idp) = setup();
    idp.push_faults(json!([{"id_token": kind, "grant_type": "authorization_code"}]));
    let run = env.authctl(&["login", "corp"]);
    run.expect_code(7);
    assert!(
        idp.log().contains(&format!("forged the ID token: {kind}")),
        "{}",
        idp.log()
    );
    assert!(
        run.stderr.to_lowercase().contains("id token"),
        "{}",
        run.stderr
    );
    assert!(accounts(&env).is_empty(), "nothing stored");
    assert!(
        stored_refresh_token(&env, "corp").is_empty(),
        "no refresh token stored"
    );
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.6: `alg: none` is never accepted.
#[test]
fn an_unsigned_alg_none_id_token_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::ALG_NONE);
}

/// Issue 11.6: HS256 keyed with the provider's public key (algorithm confusion) is refused.
#[test]
fn an_hs256_id_token_keyed_with_the_public_key_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::HS256_PUBLIC_KEY);
}

/// `authctl token corp --refresh --json`, parsed.
fn refresh_json(env: &TestEnv) -> serde_json::Value {
    let run = env.authctl(&["token", "corp", "--refresh", "--json"]);
    run.ok();
    parse(&run.stdout)
}

/// Issue 11.6: the provider rotates its keys; a refresh's ID token signed with the new key (an
/// unknown `kid`) makes the agent fetch the JWKS again and is served. The agent refetches at most
/// once per 30 s, and the JWKS it holds was fetched at the login: the rotation comes 31 s later.
#[test]
fn a_jwks_key_rotation_is_picked_up_on_an_unknown_kid() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let logged_in = Instant::now();
    std::thread::sleep(Duration::from_secs(31).saturating_sub(logged_in.elapsed()));
    idp.rotate_keys();
    idp.push_faults(
        json!([{"id_token": id_token_fault::ROTATED_KEY, "grant_type": "refresh_token"}]),
    );
    let t = refresh_json(&env);
    assert!(
        idp.log().contains("forged the ID token: rotated_key"),
        "{}",
        idp.log()
    );
    assert!(
        t["id_token"]
            .as_str()
            .is_some_and(|s| s.split('.').count() == 3),
        "the ID token signed with the rotated key is served: {t}"
    );
    assert!(
        env.agent_log().contains("fetching the keys again"),
        "{}",
        env.agent_log()
    );
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.6: a refresh's ID token that fails verification (a key the JWKS does not publish, a
/// wrong audience) is not served; the access token still is.
#[test]
fn an_unverifiable_id_token_of_a_refresh_is_not_served() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let t = refresh_json(&env);
    assert!(t["id_token"].is_string(), "a genuine one is served: {t}");
    for kind in [id_token_fault::ROTATED_KEY, id_token_fault::WRONG_AUD] {
        idp.push_faults(json!([{"id_token": kind, "grant_type": "refresh_token"}]));
        let t = refresh_json(&env);
        assert!(
            idp.log().contains(&format!("forged the ID token: {kind}")),
            "{}",
            idp.log()
        );
        assert!(
            t["access_token"].as_str().is_some_and(|s| !s.is_empty()),
            "{kind}: {t}"
        );
        assert!(t["id_token"].is_null(), "{kind}: not served: {t}");
    }
    assert!(
        env.agent_log()
            .contains("the ID token of a refresh failed verification"),
        "{}",
        env.agent_log()
    );
    env.authctl(&["agent", "stop"]).ok();
}

/// Issue 11.7: an error description with ANSI escapes and a token-looking value reaches neither
/// the terminal nor `status` as such: control characters stripped, the token `[redacted]`; a
/// 10 kB description is cut to about 300 characters.
#[test]
fn provider_text_is_cleaned_of_escapes_and_tokens_and_capped() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
    idp.push_faults(json!([{
        "error_body": {
            "error": "invalid_scope",
            "error_description": format!("\u{1b}[31mEVIL\u{1b}[0m token {jwt}"),
        },
        "status": 400,
        "grant_type": "refresh_token",
    }]));
    let run = env.authctl(&["token", "corp", "--scope", "openid"]);
    run.expect_code(2);
    assert!(run.stderr.contains("invalid_scope"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    assert!(!run.stderr.contains(jwt), "{}", run.stderr);
    assert!(run.stderr.contains("[redacted]"), "{}", run.stderr);
    let status = env.authctl(&["status", "--json"]);
    status.ok();
    assert!(
        !status.stdout.contains(jwt)
            && !status.stdout.contains('\u{1b}')
            && !status.stdout.contains("\\u001b"),
        "{}",
        status.stdout
    );
    let log = env.agent_log();
    assert!(!log.contains(jwt) && !log.contains('\u{1b}'), "{log}");

    let long = "lorem ipsum dolor sit amet ".repeat(380);
    assert!(long.len() > 10_000);
    idp.push_faults(json!([{
        "error_body": {"error": "invalid_scope", "error_description": long},
        "status": 400,
        "grant_type": "refresh_token",
    }]));
    let run = env.authctl(&["token", "corp", "--scope", "email"]);
    run.expect_code(2);
    let shown = run.stderr.matches("lorem").count();
    eprintln!(
        "a 10 kB error_description: {shown} of 380 repetitions shown, stderr {} bytes",
        run.stderr.len()
    );
    assert!(
        (5..=12).contains(&shown) && run.stderr.len() < 1500,
        "{}",
        run.stderr
    );
    env.authctl(&["agent", "stop"]).ok();
}
