//! The loopback callback: forged, stray and replayed requests get error pages while the login
//! keeps waiting; a provider's error ends it with its message; an abandoned login times out.

use authctl_tests::http::Request;

use super::setup;

#[test]
fn forged_callback_gets_an_error_page_and_the_login_keeps_waiting() {
    let (env, idp) = setup();
    let login = env.start_login(&["corp"]);
    let cb = &login.redirect_uri;
    assert!(
        cb.starts_with("http://127.0.0.1:") && cb.ends_with("/callback"),
        "{cb}"
    );

    // A forged callback (wrong state), a wrong path, a wrong method, a wrong Host: error pages.
    let get = |url: &str| Request::new("GET", url).send().unwrap();
    let r = get(&format!("{cb}?code=forged&state=forged"));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("wrong state"), "{}", r.body);
    assert!(!r.body.contains("forged"), "the page never echoes the code");
    let base = cb.trim_end_matches("/callback");
    assert_eq!(
        get(&format!("{base}/other?state={}", login.state)).status,
        404
    );
    assert_eq!(Request::new("POST", cb).send().unwrap().status, 405);
    assert_eq!(
        Request::new("GET", &format!("{cb}?code=x&state={}", login.state))
            .host("evil.example:80")
            .send()
            .unwrap()
            .status,
        400
    );

    // The real login still completes.
    assert_eq!(
        env.browse(&login.url),
        0,
        "browser log:\n{}",
        env.browser_log()
    );
    let url = login.url.clone();
    let state = login.state.clone();
    let cb = login.redirect_uri.clone();
    let run = login.finish();
    run.ok();
    assert!(run.stdout.contains("account corp"), "{run:?}");
    let _ = url;

    // Replaying the callback finds the listener closed (a connection error, not a bad answer).
    let replay = Request::new("GET", &format!("{cb}?code=replayed&state={state}")).send();
    assert!(
        replay
            .as_ref()
            .is_err_and(|e| e.kind() != std::io::ErrorKind::InvalidData),
        "{replay:?}"
    );
    assert_eq!(idp.token_calls("authorization_code"), 1);
    env.authctl(&["token", "corp"]).ok();
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn provider_error_on_the_callback_ends_the_login_with_its_message() {
    let (mut env, _idp) = setup();
    env.set("HEADLESS_BROWSER_ACTION", "deny");
    let run = env.authctl(&["login", "corp"]);
    run.expect_code(7);
    assert!(run.stderr.contains("access_denied"), "{}", run.stderr);
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn abandoned_login_times_out_with_a_clear_message() {
    let (env, _idp) = setup();
    let run = env.authctl(&["login", "corp", "--no-browser", "--timeout", "1"]);
    run.expect_code(7);
    assert!(
        run.stderr.contains("not completed within 1 seconds"),
        "{}",
        run.stderr
    );
    let status = env.status_json();
    assert_eq!(status["accounts"].as_array().unwrap().len(), 0);
    env.authctl(&["agent", "stop"]).ok();
}
