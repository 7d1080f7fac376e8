//! Logins beyond the loopback basics: the device authorization grant.

use authctl_tests::read;

use super::{json, setup};

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
    let status = json(&env.authctl(&["status", "--json"]).ok().stdout.clone());
    assert_eq!(status["accounts"][0]["has_refresh_token"], true);
    assert_eq!(status["accounts"][0]["subject"], "alice");
    let t = env
        .authctl(&["token", "corp", "--refresh"])
        .ok()
        .stdout
        .trim()
        .to_owned();
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
