//! Negative cases a login must survive, end to end (real agent, real provider, the scripted
//! browser): forged ID tokens, a provider without RFC 9207, a device code that expires, a callback
//! that comes after the login gave up; and the provider profiles for MCP-style resources
//! (RFC 9728) and dynamic client registration (RFC 7591).

use std::time::{Duration, Instant};

use authctl_tests::http::Request;
use authctl_tests::idp::id_token_fault;
use authctl_tests::{IdpOptions, TestEnv, read};
use serde_json::json;

use super::{setup, setup_with};

/// The accounts `authctl status --json` lists.
fn accounts(env: &TestEnv) -> Vec<serde_json::Value> {
    let status = env.status_json();
    status["accounts"].as_array().cloned().unwrap_or_default()
}

/// Appends a provider table to config.toml and reloads the agent.
fn add_raw_provider(env: &TestEnv, name: &str, body: &str) {
    let mut text = read(&env.config_file());
    text.push_str(&format!("\n[providers.{name}]\n{body}\n"));
    std::fs::write(env.config_file(), text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
}

/// A login whose token response carries an ID token forged as `kind` fails with exit code 7, a
/// message naming the ID token and the problem (one of `words`), and stores no account.
fn a_forged_id_token_fails_the_login(kind: &str, words: &[&str]) {
    let (env, idp) = setup();
    idp.push_faults(json!([{ "id_token": kind, "grant_type": "authorization_code" }]));
    let run = env.authctl(&["login", "corp"]);
    eprintln!("login with a forged ID token ({kind}):\n{}", run.stderr);
    run.expect_code(7);
    assert!(
        idp.log().contains(&format!("forged the ID token: {kind}")),
        "the provider forged nothing; its log:\n{}",
        idp.log()
    );
    assert_eq!(idp.token_calls("authorization_code"), 1);
    let err = run.stderr.to_lowercase();
    assert!(
        err.contains("id token") || err.contains("id_token"),
        "the message names the ID token: {}",
        run.stderr
    );
    assert!(
        words.iter().any(|w| err.contains(w)),
        "the message names the problem ({words:?}): {}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("account corp ("),
        "no login reported: {}",
        run.stdout
    );
    assert!(
        accounts(&env).is_empty(),
        "no account is stored after a refused ID token"
    );
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn an_id_token_with_a_bad_signature_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::BAD_SIGNATURE, &["signature"]);
}

#[test]
fn an_id_token_for_another_audience_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::WRONG_AUD, &["audience"]);
}

#[test]
fn an_id_token_with_a_wrong_nonce_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::WRONG_NONCE, &["nonce"]);
}

#[test]
fn an_expired_id_token_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::EXPIRED, &["expired", "expiry"]);
}

#[test]
fn an_id_token_from_another_issuer_fails_the_login() {
    a_forged_id_token_fails_the_login(id_token_fault::WRONG_ISS, &["issuer"]);
}

#[test]
fn a_login_succeeds_at_a_provider_without_rfc9207() {
    let (env, idp) = setup_with(
        IdpOptions {
            iss_parameter: Some(false),
            ..IdpOptions::default()
        },
        "",
    );
    let discovery = idp
        .request("GET", "/.well-known/openid-configuration", &[], None)
        .json();
    assert!(
        discovery
            .get("authorization_response_iss_parameter_supported")
            .is_none(),
        "{discovery}"
    );
    let run = env.authctl(&["login", "corp"]);
    run.ok();
    assert!(
        run.stdout.contains("account corp (alice@example.test)"),
        "{}",
        run.stdout
    );
    let blog = env.browser_log();
    let callbacks: Vec<&str> = blog
        .lines()
        .filter(|l| l.contains("GET http://127.0.0.1:") && l.contains("/callback?"))
        .collect();
    assert!(!callbacks.is_empty(), "{blog}");
    assert!(
        callbacks.iter().all(|l| !l.contains("iss=")),
        "the provider sent no iss: {blog}"
    );
    assert_eq!(idp.token_calls("authorization_code"), 1);
    env.authctl(&["token", "corp"]).ok();
    assert_eq!(accounts(&env).len(), 1);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_callback_without_iss_is_refused_when_the_provider_advertises_rfc9207() {
    let (env, idp) = setup();
    let login = env.start_login(&["corp"]);
    let url = format!("{}?code=stripped&state={}", login.redirect_uri, login.state);
    let (r, _) = authctl_tests::visit_callback(&url).unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        !r.body.contains("stripped"),
        "the page never echoes the code"
    );
    let run = login.finish();
    run.expect_code(7);
    assert!(
        run.stderr.contains("RFC 9207") && run.stderr.contains("iss"),
        "{}",
        run.stderr
    );
    assert_eq!(idp.token_calls("authorization_code"), 0, "no code exchange");
    assert!(accounts(&env).is_empty());
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_device_code_that_expires_fails_the_login_clearly() {
    let (env, _idp) = setup_with(
        IdpOptions {
            device_code_ttl: Some(3),
            ..IdpOptions::default()
        },
        "",
    );
    // --no-browser: the scripted browser never enters the code.
    let started = Instant::now();
    let run = env.authctl(&["login", "corp", "--device", "--no-browser"]);
    run.expect_code(7);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the login gave up near the code's 3 s lifetime, not later"
    );
    assert!(run.stderr.contains("enter the code"), "{}", run.stderr);
    assert!(
        run.stderr.contains("device code") && run.stderr.contains("expired"),
        "the message says the device code expired: {}",
        run.stderr
    );
    assert!(accounts(&env).is_empty());
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_callback_after_the_login_timed_out_is_refused() {
    let (env, idp) = setup();
    let login = env.start_login(&["corp", "--timeout", "2"]);
    let url = login.url.clone();
    let cb = login.redirect_uri.clone();
    let state = login.state.clone();
    let run = login.finish();
    run.expect_code(7);
    assert!(
        run.stderr.contains("not completed within 2 seconds"),
        "{}",
        run.stderr
    );

    // The user finishes at the provider afterwards: its redirect finds no listener (or an error
    // page), and the code is never exchanged.
    let code = env.browse(&url);
    let blog = env.browser_log();
    eprintln!("browser after the timeout (exit {code}):\n{blog}");
    assert_ne!(code, 0, "the late callback was accepted: {blog}");
    assert!(
        blog.contains("network error at callback") || blog.contains("CALLBACK status=4"),
        "{blog}"
    );
    match Request::new("GET", &format!("{cb}?code=late&state={state}")).send() {
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::InvalidData, "{e}"),
        Ok(r) => assert!(r.status >= 400, "{} {}", r.status, r.body),
    }
    assert_eq!(idp.token_calls("authorization_code"), 0);
    assert!(accounts(&env).is_empty());
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn the_mcp_resource_profile_and_dynamic_registration_work_with_the_agent() {
    let (env, idp) = setup();

    // RFC 9728: the 401 names the metadata (or, for /mcp-plain, says only `Bearer`).
    let r = idp.request("GET", "/mcp", &[], None);
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap_or_default().to_owned();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(&format!(
                "resource_metadata=\"{}\"",
                idp.resource_metadata_url("/mcp")
            ))
            && challenge.contains("scope=\""),
        "{challenge}"
    );
    let r = idp.request("GET", "/mcp-plain", &[], None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for path in ["/mcp", "/mcp-plain"] {
        let meta = idp
            .request(
                "GET",
                &format!("/.well-known/oauth-protected-resource{path}"),
                &[],
                None,
            )
            .json();
        assert_eq!(meta["resource"], idp.url(path));
        assert_eq!(meta["authorization_servers"], json!([idp.issuer]));
        assert_eq!(meta["bearer_methods_supported"], json!(["header"]));
        assert!(
            meta["scopes_supported"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
    }

    // A login whose authorization request names the resource yields tokens it accepts.
    add_raw_provider(
        &env,
        "mcp",
        &format!(
            "issuer = \"{}\"\nclient_id = \"authctl-native\"\nscopes = [\"openid\", \"offline_access\", \"mcp:read\"]\nauth_params = {{ resource = \"{}\" }}",
            idp.issuer,
            idp.mcp_resource()
        ),
    );
    env.authctl(&["login", "mcp"]).ok();
    let token = env.token(&["mcp", "--resource", &idp.mcp_resource()]);
    let bearer = format!("Bearer {token}");
    let r = idp.request("GET", "/mcp", &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["ok"], true);
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["aud"], idp.mcp_resource());
    // …and only at that resource.
    let r = idp.request("GET", "/mcp-plain", &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.contains("invalid_token")),
        "{:?}",
        r.headers
    );
    assert_eq!(idp.counters()["mcp"]["ok"], 1);

    // RFC 7591: a public native client registers and logs in on any loopback port.
    let reg = idp.request(
        "POST",
        "/reg",
        &[("Content-Type", "application/json")],
        Some(
            &json!({
                "application_type": "native",
                "token_endpoint_auth_method": "none",
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "client_name": "authctl",
            })
            .to_string(),
        ),
    );
    assert_eq!(reg.status, 201, "{}", reg.body);
    let client_id = reg.json()["client_id"].as_str().unwrap().to_owned();
    assert_eq!(idp.registrations(), 1);
    add_raw_provider(
        &env,
        "dcr",
        &format!(
            "issuer = \"{}\"\nclient_id = \"{client_id}\"\nscopes = [\"openid\", \"email\", \"offline_access\"]",
            idp.issuer
        ),
    );
    let login = env.start_login(&["dcr"]);
    assert!(
        login.redirect_uri.starts_with("http://127.0.0.1:")
            && login.redirect_uri.ends_with("/callback"),
        "{}",
        login.redirect_uri
    );
    assert_eq!(env.browse(&login.url), 0, "{}", env.browser_log());
    let run = login.finish();
    run.ok();
    assert!(run.stdout.contains("alice@example.test"), "{}", run.stdout);
    let t = env.token(&["dcr", "--refresh"]);
    let info = idp.introspect(&t);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["client_id"], client_id.as_str(), "{info}");
    env.authctl(&["agent", "stop"]).ok();
}
