//! The everyday path end to end: log in, get tokens, check status, restart, log out — with the
//! file store and with the OS keyring — and the first errors a user meets (an unknown name, a
//! login without offline access, a token too close to its expiry).

use std::time::Duration;

use authctl_tests::{Idp, IdpOptions, TestEnv, read};

use super::{json, setup};

#[test]
fn login_token_status_restart_token_logout() {
    let (env, idp) = setup();

    let login = env.authctl(&["login", "corp"]);
    login.ok();
    assert!(
        login.stderr.contains("http://127.0.0.1:"),
        "URL printed: {}",
        login.stderr
    );
    assert!(
        login.stdout.contains("account corp (alice@example.test)"),
        "{}",
        login.stdout
    );
    assert!(
        env.browser_log().contains("RESULT exit=0"),
        "{}",
        env.browser_log()
    );

    // The authorization request asked for offline access the OIDC way, with PKCE S256.
    let blog = env.browser_log();
    assert!(blog.contains("code_challenge_method=S256"), "{blog}");
    assert!(blog.contains("prompt=consent"), "{blog}");

    let t1 = env.authctl(&["token", "corp"]);
    t1.ok();
    let token = t1.stdout.trim().to_owned();
    assert!(
        !token.is_empty() && !token.contains(' '),
        "only the token on stdout: {:?}",
        t1.stdout
    );
    assert_eq!(idp.introspect(&token)["active"], true);
    assert_eq!(
        idp.token_calls("refresh_token"),
        0,
        "the login's token is served from the cache"
    );

    let status = env.status_json();
    assert_eq!(status["agent"]["running"], true);
    assert_eq!(status["secret_store"]["backend"], "file");
    let acc = &status["accounts"][0];
    assert_eq!(acc["name"], "corp");
    assert_eq!(acc["provider"], "corp");
    assert_eq!(acc["subject"], "alice");
    assert_eq!(acc["state"], "ready");
    assert_eq!(acc["has_refresh_token"], true);
    assert!(acc["access_token_expires_at"].as_i64().unwrap() > 0);
    let text = env.authctl(&["status"]).ok().stdout.clone();
    assert!(
        text.contains("corp") && text.contains("alice@example.test") && text.contains("ready"),
        "{text}"
    );

    // Files: private, and the refresh token is only in the secret store.
    use std::os::unix::fs::PermissionsExt;
    for f in ["accounts.json", "secrets.json"] {
        let mode = std::fs::metadata(env.data_dir().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    let dir_mode = std::fs::metadata(env.data_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let socket_mode = std::fs::metadata(env.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(socket_mode, 0o600);
    let secrets = json(&read(&env.data_dir().join("secrets.json")));
    let rt = secrets["account/corp/refresh_token"]
        .as_str()
        .expect("refresh token stored")
        .to_owned();
    assert!(!read(&env.data_dir().join("accounts.json")).contains(&rt));
    assert!(!read(&env.config_file()).contains(&rt));

    // Restart: the refresh token was persisted, so a token is still served (by a refresh).
    env.authctl(&["agent", "stop"]).ok();
    assert!(!env.socket().exists(), "socket removed on stop");
    env.authctl(&["agent", "start"]).ok();
    let t2 = env.token(&["corp"]);
    assert!(!t2.is_empty());
    assert_ne!(t2, token, "a new access token after restart");
    assert_eq!(idp.token_calls("refresh_token"), 1);
    assert_eq!(idp.introspect(&t2)["active"], true);

    // No secret in the agent's log, even at debug level.
    let log = env.agent_log();
    for secret in [&token, &t2, &rt] {
        assert!(
            !log.contains(secret.as_str()),
            "a token leaked into the agent log"
        );
    }

    // Logout revokes at the provider (RFC 7009) and forgets the account.
    let rt_now = json(&read(&env.data_dir().join("secrets.json")))["account/corp/refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(idp.introspect(&rt_now)["active"], true);
    let out = env.authctl(&["logout", "corp"]);
    out.ok();
    assert!(out.stderr.contains("revoked"), "{}", out.stderr);
    assert_eq!(
        idp.introspect(&rt_now)["active"],
        false,
        "refresh token revoked"
    );
    assert!(!read(&env.data_dir().join("secrets.json")).contains(&rt_now));
    let status = env.status_json();
    assert_eq!(status["accounts"].as_array().unwrap().len(), 0);
    env.authctl(&["token", "corp"]).expect_code(4);
    env.authctl(&["agent", "stop"]).ok();
}

/// The OS keyring (Secret Service): run under `dbus-run-session -- tests/keyring/with-keyring`.
#[test]
#[ignore = "requires a Secret Service (run by `make test` under dbus-run-session + gnome-keyring)"]
fn keyring_store_login_restart_token_logout() {
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .expect("DBUS_SESSION_BUS_ADDRESS: run under dbus-run-session");
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new();
    env.set("DBUS_SESSION_BUS_ADDRESS", &bus);
    std::fs::create_dir_all(env.config_file().parent().unwrap()).unwrap();
    std::fs::write(env.config_file(), "[agent]\nstore = \"keyring\"\n").unwrap();
    env.authctl(&["agent", "start"]).ok();
    env.add_provider("corp", &idp);
    env.authctl(&["login", "corp"]).ok();
    let status = env.status_json();
    assert_eq!(status["secret_store"]["backend"], "keyring");
    assert!(
        !env.data_dir().join("secrets.json").exists(),
        "nothing in the file store"
    );

    env.authctl(&["agent", "stop"]).ok();
    env.authctl(&["agent", "start"]).ok();
    let t = env.token(&["corp"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    assert_eq!(
        idp.token_calls("refresh_token"),
        1,
        "the refresh token came back from the keyring"
    );

    // `auto` picks the keyring too when one answers.
    env.authctl(&["logout", "corp"]).ok();
    env.authctl(&["agent", "stop"]).ok();
    std::fs::write(
        env.config_file(),
        read(&env.config_file()).replace("store = \"keyring\"", "store = \"auto\""),
    )
    .unwrap();
    env.authctl(&["agent", "start"]).ok();
    let status = env.status_json();
    assert_eq!(status["secret_store"]["backend"], "keyring");
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn unknown_provider_and_account_are_not_found() {
    let (env, _idp) = setup();
    let run = env.authctl(&["login", "nope"]);
    run.expect_code(5);
    assert!(
        run.stderr.contains("no provider named `nope`"),
        "{}",
        run.stderr
    );
    let run = env.authctl(&["token", "nope"]);
    run.expect_code(5);
    assert!(
        run.stderr.contains("no account named `nope`"),
        "{}",
        run.stderr
    );
    // A provider with no account yet: login required, naming the command.
    let run = env.authctl(&["token", "corp"]);
    run.expect_code(4);
    assert!(run.stderr.contains("authctl login corp"), "{}", run.stderr);
    env.authctl(&["logout", "nope"]).expect_code(5);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_login_without_offline_access_says_there_is_no_refresh_token() {
    let (env, idp) = setup();
    let run = env.authctl(&["login", "corp", "--scope", "openid", "--scope", "email"]);
    run.ok();
    assert!(
        run.stderr.contains("issued no refresh token"),
        "{}",
        run.stderr
    );
    assert!(
        !env.browser_log().contains("prompt=consent"),
        "no prompt=consent without offline_access"
    );
    // The access token works while it lasts; the account shows it has no refresh token.
    let t = env.token(&["corp"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    let status = env.status_json();
    assert_eq!(status["accounts"][0]["has_refresh_token"], false);
    // A forced refresh is impossible: login required, naming the command.
    let run = env.authctl(&["token", "corp", "--refresh"]);
    run.expect_code(4);
    assert!(run.stderr.contains("authctl login corp"), "{}", run.stderr);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn token_refreshes_when_too_close_to_expiry_and_caps_min_ttl_above_the_lifetime() {
    let idp = Idp::start(IdpOptions {
        access_token_ttl: Some(4),
        ..IdpOptions::default()
    });
    let env = TestEnv::new();
    env.authctl(&["agent", "start"]).ok();
    env.add_provider("corp", &idp);
    env.authctl(&["login", "corp"]).ok();
    let first = env.token(&["corp", "--min-ttl", "1"]);
    assert_eq!(idp.token_calls("refresh_token"), 0);

    // Asking more than the provider ever issues: the freshest token, with a note, no refresh.
    let run = env.authctl(&["token", "corp", "--min-ttl", "3600"]);
    run.ok();
    assert_eq!(run.stdout.trim(), first);
    assert!(run.stderr.contains("freshest token"), "{}", run.stderr);
    assert_eq!(idp.token_calls("refresh_token"), 0);

    // Past half its life the token no longer meets --min-ttl 3: one refresh, a new token.
    std::thread::sleep(Duration::from_millis(2200));
    let second = env.token(&["corp", "--min-ttl", "3"]);
    assert_ne!(second, first);
    assert_eq!(idp.token_calls("refresh_token"), 1);
    // And it is cached: asking again does not refresh.
    assert_eq!(
        env.authctl(&["token", "corp", "--min-ttl", "3"])
            .ok()
            .stdout
            .trim(),
        second
    );
    assert_eq!(idp.token_calls("refresh_token"), 1);
    let j = json(
        &env.authctl(&["token", "corp", "--json"])
            .ok()
            .stdout
            .clone(),
    );
    assert_eq!(j["access_token"], second.as_str());
    assert_eq!(j["account"], "corp");
    assert!(j["expires_at"].as_i64().unwrap() > 0);
    env.authctl(&["agent", "stop"]).ok();
}

/// A damaged `accounts.json` or file store stops the agent at start, naming the file and where it
/// is wrong, and the file is left as it was (the agent checks both whole before it answers and
/// reads them into memory only after).
#[test]
fn a_damaged_account_file_or_file_store_stops_the_agent_naming_it_and_is_kept() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    std::fs::create_dir_all(env.config_file().parent().unwrap()).unwrap();
    std::fs::write(env.config_file(), "[agent]\nstore = \"file\"\n").unwrap();
    let data = env.data_dir();
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let good_accounts = r#"{"version": 1, "accounts": [{"name": "a", "provider": "p"}]}"#;
    let cases = [
        (
            "accounts.json",
            // The second record's scopes are not a list of strings.
            "{\"version\": 1, \"accounts\": [{\"name\": \"a\", \"provider\": \"p\"},\n{\"name\": \"b\", \"provider\": \"p\", \"scopes\": [\"openid\", 7]}]}",
            "line 2",
        ),
        (
            "accounts.json",
            r#"{"version": 9, "accounts": []}"#,
            "unknown format version 9",
        ),
        (
            "secrets.json",
            r#"{"account/a/refresh_token": "rt-a", "account/b/refresh_token": null}"#,
            "not a valid store",
        ),
    ];
    for (file, text, expect) in cases {
        for (name, content) in [("accounts.json", good_accounts), ("secrets.json", "{}")] {
            let path = data.join(name);
            std::fs::write(&path, if name == file { text } else { content }).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let path = data.join(file);
        let run = env.authctl(&["agent", "start"]);
        assert_ne!(run.code, 0, "{file}: {text}");
        assert!(
            run.stderr.contains(&path.display().to_string()) && run.stderr.contains(expect),
            "{file}: {text}: {}",
            run.stderr
        );
        assert_eq!(read(&path), text, "{file} was changed");
    }
    // Mended, the agent starts and lists the account.
    std::fs::write(
        data.join("secrets.json"),
        r#"{"account/a/refresh_token": "rt-a"}"#,
    )
    .unwrap();
    env.authctl(&["agent", "start"]).ok();
    let status = env.authctl(&["status", "--json"]);
    status.ok();
    assert!(status.stdout.contains("\"a\""), "{}", status.stdout);
    env.authctl(&["agent", "stop"]).ok();
}
