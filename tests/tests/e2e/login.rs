//! Logins beyond the loopback basics: the device authorization grant.

use authctl_tests::read;

use super::setup;

#[test]
fn device_flow_login_completes_through_the_browser_and_yields_a_refresh_token() {
    let (env, idp) = setup();
    let r = env.authctl(&["login", "corp", "--device"]);
    r.ok();
    assert!(r.stderr.contains("enter the code"), "{}", r.stderr);
    assert!(
        r.stdout.contains("account corp (alice@example.test)"),
        "{}",
        r.stdout
    );
    let status = env.status_json();
    assert_eq!(status["accounts"][0]["has_refresh_token"], true);
    assert_eq!(status["accounts"][0]["subject"], "alice");
    let t = env.token(&["corp", "--refresh"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    assert!(idp.token_calls("urn:ietf:params:oauth:grant-type:device_code") >= 1);
    assert!(
        !read(&env.agent_log_path()).contains(&t),
        "no token in the log"
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn device_flow_denied_or_abandoned_fails_clearly() {
    let (mut env, _idp) = setup();
    env.set("HEADLESS_BROWSER_ACTION", "deny");
    let r = env.authctl(&["login", "corp", "--device"]);
    r.expect_code(7);
    assert!(r.stderr.contains("denied"), "{}", r.stderr);
    let r = env.authctl(&[
        "login",
        "corp",
        "--device",
        "--no-browser",
        "--timeout",
        "2",
    ]);
    r.expect_code(7);
    assert!(
        r.stderr.contains("not completed within 2 seconds"),
        "{}",
        r.stderr
    );
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

/// Writes a provider table by hand and reloads the agent.
fn add_raw_provider(env: &authctl_tests::TestEnv, name: &str, body: &str) {
    let mut text = read(&env.config_file());
    text.push_str(&format!("\n[providers.{name}]\n{body}\n"));
    std::fs::write(env.config_file(), text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
}

#[test]
fn redirect_hosts_ipv6_and_localhost_are_used_literally() {
    let (env, idp) = setup();
    for (name, host, expect) in [
        ("v6", "[::1]", "http://[::1]:"),
        ("named", "localhost", "http://localhost:"),
    ] {
        add_raw_provider(
            &env,
            name,
            &format!(
                "issuer = \"{}\"\nclient_id = \"authctl-native\"\nscopes = [\"openid\", \"offline_access\"]\nredirect_host = \"{host}\"",
                idp.issuer
            ),
        );
        let login = env.start_login(&[name]);
        assert!(
            login.redirect_uri.starts_with(expect),
            "{}",
            login.redirect_uri
        );
        assert_eq!(env.browse(&login.url), 0, "{}", env.browser_log());
        login.finish().ok();
        env.authctl(&["token", name]).ok();
    }
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn fixed_redirect_ports_are_tried_in_order_and_all_busy_is_a_clear_error() {
    let (env, idp) = setup();
    add_raw_provider(
        &env,
        "fixed",
        &format!(
            "issuer = \"{}\"\nclient_id = \"authctl-fixed\"\nscopes = [\"openid\", \"offline_access\"]\nredirect_ports = [18765, 18766]",
            idp.issuer
        ),
    );
    // The first port is busy: the login falls to the next one, which the server matches exactly.
    let busy = std::net::TcpListener::bind("127.0.0.1:18765").unwrap();
    let r = env.authctl(&["login", "fixed"]);
    r.ok();
    assert!(
        r.stderr.contains("127.0.0.1%3A18766") || r.stderr.contains("127.0.0.1:18766"),
        "{}",
        r.stderr
    );
    // Both busy: a clear error naming the ports.
    let busy2 = std::net::TcpListener::bind("127.0.0.1:18766").unwrap();
    let r = env.authctl(&["login", "fixed"]);
    r.expect_code(7);
    assert!(
        r.stderr.contains("18765, 18766") && r.stderr.contains("redirect_ports"),
        "{}",
        r.stderr
    );
    drop((busy, busy2));
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn presets_fill_endpoints_and_quirks_and_name_missing_arguments() {
    let (env, _idp) = setup();
    let list = env.authctl(&["provider", "presets"]).ok().stdout.clone();
    for p in [
        "google",
        "microsoft",
        "github",
        "gitlab",
        "okta",
        "auth0",
        "keycloak",
    ] {
        assert!(list.contains(p), "{list}");
    }
    env.authctl(&[
        "provider",
        "add",
        "work",
        "--preset",
        "microsoft",
        "--tenant",
        "organizations",
        "--client-id",
        "cid",
    ])
    .ok();
    let config = read(&env.config_file());
    assert!(
        config.contains("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"),
        "{config}"
    );
    assert!(config.contains("redirect_host = \"localhost\""), "{config}");
    env.authctl(&[
        "provider",
        "add",
        "gh",
        "--preset",
        "github",
        "--client-id",
        "Iv1.abc",
    ])
    .ok();
    assert!(read(&env.config_file()).contains("https://github.com/login/device/code"));
    let r = env.authctl(&[
        "provider",
        "add",
        "o",
        "--preset",
        "okta",
        "--client-id",
        "x",
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("--domain"), "{}", r.stderr);
    // Neither --issuer nor --preset: a usage error from the CLI itself.
    env.authctl(&["provider", "add", "x", "--client-id", "x"])
        .expect_code(2);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_callback_from_another_issuer_is_refused_rfc9207() {
    let (env, idp) = setup();
    let login = env.start_login(&["corp"]);
    let url = format!(
        "{}?code=stolen&state={}&iss=http%3A%2F%2Fevil.example",
        login.redirect_uri, login.state
    );
    let (r, shown_at) = authctl_tests::visit_callback(&url).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.body.contains("RFC 9207"), "{}", r.body);
    assert!(
        !shown_at.contains("stolen") && !shown_at.contains(&login.state),
        "the outcome is shown under a clean URL: {shown_at}"
    );
    let r = login.finish();
    r.expect_code(7);
    assert!(
        r.stderr.contains("http://evil.example") && r.stderr.contains("mix-up"),
        "{}",
        r.stderr
    );
    assert_eq!(
        idp.token_calls("authorization_code"),
        0,
        "no code exchange for a mixed-up response"
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn confidential_clients_with_client_secret_post_log_in() {
    let (env, idp) = setup();
    env.authctl_stdin(
        &[
            "provider",
            "add",
            "post",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "authctl-post",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--client-secret-stdin",
        ],
        "post-secret",
    )
    .ok();
    let text = read(&env.config_file()).replace(
        "client_id = \"authctl-post\"",
        "client_id = \"authctl-post\"\ntoken_endpoint_auth_method = \"client_secret_post\"",
    );
    std::fs::write(env.config_file(), text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
    env.authctl(&["login", "post"]).ok();
    let t = env.token(&["post", "--refresh"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    assert!(!read(&env.config_file()).contains("post-secret"));
    env.authctl(&["agent", "stop"]).ok();
}

/// Runs `authctl token ARGS` in `n` threads at once.
fn concurrent_tokens(
    env: &authctl_tests::TestEnv,
    n: usize,
    args: &[&str],
) -> Vec<authctl_tests::Run> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|_| s.spawn(|| env.authctl(args))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn interactive_token_calls_share_one_on_demand_login_opened_by_the_agent() {
    let (mut env, idp) = setup();
    // No account yet: non-interactive callers are told at once.
    env.authctl(&["token", "corp"]).expect_code(4);
    // Five tools ask at once: one login, one browser, the same token for all.
    let runs = concurrent_tokens(&env, 5, &["token", "corp", "--interactive"]);
    for r in &runs {
        r.ok();
    }
    let tokens: std::collections::BTreeSet<_> = runs.iter().map(|r| r.stdout.trim()).collect();
    assert_eq!(tokens.len(), 1, "one login serves every caller");
    assert_eq!(idp.token_calls("authorization_code"), 1);
    assert_eq!(
        env.browser_log().matches("START").count(),
        1,
        "{}",
        env.browser_log()
    );
    assert!(
        runs.iter()
            .any(|r| r.stderr.contains("opening your browser")),
        "the waiting caller is told why"
    );
    let status = env.status_json();
    assert_eq!(status["accounts"][0]["name"], "corp");
    assert_eq!(status["accounts"][0]["subject"], "alice");

    // The provider revokes the grant: login required, repaired on demand in place (after the
    // cool-down of the first on-demand login, which a restart ends).
    env.authctl(&["agent", "stop"]).ok();
    env.authctl(&["agent", "start"]).ok();
    idp.push_faults(serde_json::json!([{"invalid_grant": true}]));
    env.authctl(&["token", "corp", "--refresh"]).expect_code(4);
    let r = env.authctl(&["token", "corp", "--interactive"]);
    r.ok();
    assert_eq!(idp.token_calls("authorization_code"), 2);
    assert_eq!(env.browser_log().matches("START").count(), 2);
    env.authctl(&["token", "corp"]).ok();

    // A failed on-demand login is not retried for a while: no tab storm.
    env.authctl(&["agent", "stop"]).ok();
    env.set("HEADLESS_BROWSER_ACTION", "deny");
    env.authctl(&["agent", "start"]).ok();
    idp.push_faults(serde_json::json!([{"invalid_grant": true}]));
    env.authctl(&["token", "corp", "--refresh"]).expect_code(4);
    let runs = concurrent_tokens(&env, 3, &["token", "corp", "--interactive"]);
    let denied = runs.iter().filter(|r| r.code == 7).count();
    assert!(denied >= 1, "{runs:?}");
    for r in &runs {
        assert!(r.code == 7 || r.code == 4, "{r:?}");
    }
    let r = env.authctl(&["token", "corp", "--interactive"]);
    r.expect_code(4);
    assert!(r.stderr.contains("starts no new one"), "{}", r.stderr);
    assert_eq!(
        env.browser_log().matches("START").count(),
        3,
        "{}",
        env.browser_log()
    );
    env.authctl(&["agent", "stop"]).ok();

    // An on-demand re-login that comes back as another user changes nothing.
    env.set("HEADLESS_BROWSER_ACTION", "approve");
    env.set("HEADLESS_BROWSER_USER", "bob");
    env.set("HEADLESS_BROWSER_PASSWORD", "bob-password");
    env.authctl(&["agent", "start"]).ok();
    let r = env.authctl(&["token", "corp", "--interactive"]);
    r.expect_code(7);
    assert!(r.stderr.contains("another user"), "{}", r.stderr);
    let status = env.status_json();
    assert_eq!(status["accounts"][0]["subject"], "alice");
    assert_eq!(status["accounts"][0]["state"], "login_required");
    env.authctl(&["agent", "stop"]).ok();

    // No browser to open: a clear error naming what to do, not a hang.
    env.set("BROWSER", "false");
    env.authctl(&["agent", "start"]).ok();
    let r = env.authctl(&["token", "corp", "--interactive"]);
    r.expect_code(7);
    assert!(
        r.stderr.contains("could not open a browser") && r.stderr.contains("authctl login corp"),
        "{}",
        r.stderr
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn logout_end_session_signs_out_at_the_provider_through_a_loopback_redirect() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    // The ID token for the hint survives a restart of the agent.
    env.authctl(&["agent", "stop"]).ok();
    env.authctl(&["agent", "start"]).ok();
    let r = env.authctl(&["logout", "corp", "--end-session"]);
    r.ok();
    assert!(
        r.stderr.contains("/session/end") && r.stderr.contains("post_logout_redirect_uri"),
        "the end-session URL is printed: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Signed out at the provider"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("logged out of `corp`"), "{}", r.stderr);
    let log = env.browser_log();
    assert!(
        log.contains("/logout?state=") || log.contains("/logout?"),
        "the browser came back to the loopback post_logout_redirect_uri: {log}"
    );
    assert!(
        !r.stderr.contains("id_token_hint"),
        "no ID token in the URL unless the provider needs the hint: {}",
        r.stderr
    );
    assert!(
        !env.agent_log().contains("id_token_hint=ey"),
        "the agent never logs the end-session URL: {}",
        env.agent_log()
            .lines()
            .filter(|l| l.contains("id_token_hint=ey"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let status = env.status_json();
    assert_eq!(status["accounts"].as_array().unwrap().len(), 0);
    assert_eq!(idp.counters()["revocation"], 1);

    // A provider that needs the hint (end_session_id_token_hint, as Okta): the ID token kept from
    // the login goes to the browser after a restart of the agent, never to the terminal.
    add_raw_provider(
        &env,
        "hinted",
        &format!(
            "issuer = \"{}\"\nclient_id = \"authctl-native\"\nscopes = [\"openid\", \"offline_access\"]\n\
             end_session_id_token_hint = true",
            idp.issuer
        ),
    );
    env.authctl(&["login", "hinted"]).ok();
    env.authctl(&["agent", "stop"]).ok();
    env.authctl(&["agent", "start"]).ok();
    let r = env.authctl(&["logout", "hinted", "--end-session"]);
    r.ok();
    // The hint never appears in a command line (the browser's is readable by every user): the
    // browser opens the agent's loopback start URL, which redirects it to the provider.
    assert!(!r.stderr.contains("id_token_hint"), "{}", r.stderr);
    assert!(r.stderr.contains("/logout/start"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Signed out at the provider"),
        "{}",
        r.stderr
    );
    let log = env.browser_log();
    assert!(
        log.contains("/logout/start -> 303") && log.contains("id_token_hint=REDACTED"),
        "the start URL sent the browser on to the provider with the hint: {log}"
    );
    assert!(
        log.lines()
            .filter(|l| l.contains("START "))
            .all(|l| !l.contains("id_token_hint")),
        "never in the browser's command line: {log}"
    );

    // A provider without an end_session_endpoint: a clear error, and the local logout still done.
    add_raw_provider(
        &env,
        "raw",
        &format!(
            "client_id = \"authctl-native\"\nscopes = [\"openid\", \"offline_access\"]\n\
             authorization_endpoint = \"{0}/auth\"\ntoken_endpoint = \"{0}/token\"\n\
             jwks_uri = \"{0}/jwks\"",
            idp.issuer
        ),
    );
    env.authctl(&["login", "raw"]).ok();
    let r = env.authctl(&["logout", "raw", "--end-session"]);
    r.expect_code(7);
    assert!(r.stderr.contains("no end_session_endpoint"), "{}", r.stderr);
    assert!(r.stderr.contains("logged out of `raw`"), "{}", r.stderr);
    env.authctl(&["token", "raw"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

/// The account name `authctl login` printed ("account NAME (who)").
fn logged_in_account(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("account "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no account in {stdout}"))
        .to_owned()
}

#[test]
fn zero_config_login_to_a_protected_resource_registers_a_client_and_remembers_it() {
    let (env, idp) = setup();
    let resource = idp.mcp_resource();
    // RFC 9728 metadata from the 401's WWW-Authenticate, RFC 8414/OIDC discovery, RFC 7591.
    let r = env.authctl(&["login", &resource]);
    r.ok();
    let name = logged_in_account(&r.stdout);
    assert_eq!(idp.registrations(), 1);
    let config = read(&env.config_file());
    assert!(
        config.contains(&format!("resource = \"{resource}\""))
            && config.contains("Registered by `authctl login"),
        "{config}"
    );
    let use_token = |token: &str, path: &str| {
        let bearer = format!("Bearer {token}");
        idp.request("GET", path, &[("Authorization", &bearer)], None)
    };
    let t = env.token(&[&name]);
    let r = use_token(&t, "/mcp");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sub"], "alice");
    // Refreshes keep the resource (RFC 8707), so the new token is still for it.
    let t2 = env.token(&[&name, "--refresh"]);
    assert_ne!(t, t2);
    assert_eq!(use_token(&t2, "/mcp").status, 200);
    // The registration is remembered: logging in again registers nothing.
    let r = env.authctl(&["login", &resource]);
    r.ok();
    assert_eq!(logged_in_account(&r.stdout), name);
    assert_eq!(idp.registrations(), 1);

    // A bare `Bearer` challenge: the well-known URL is used instead.
    let plain = idp.mcp_plain_resource();
    let r = env.authctl(&["login", &plain]);
    r.ok();
    let plain_name = logged_in_account(&r.stdout);
    assert_ne!(plain_name, name);
    assert_eq!(idp.registrations(), 2);
    let t = env.token(&[&plain_name]);
    assert_eq!(use_token(&t, "/mcp-plain").status, 200);

    // No metadata anywhere: a clear error, nothing registered.
    let r = env.authctl(&["login", &idp.url("/nothing-here")]);
    r.expect_code(7);
    assert!(
        r.stderr
            .contains("no protected-resource metadata (RFC 9728)"),
        "{}",
        r.stderr
    );
    assert_eq!(idp.registrations(), 2);
    env.authctl(&["agent", "stop"]).ok();
}
