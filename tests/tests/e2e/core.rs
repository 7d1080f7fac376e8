//! The core: agent, socket, login, token, status, logout, configs, stores.

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
fn forged_callback_gets_an_error_page_and_the_login_keeps_waiting() {
    let (env, idp) = setup();
    let login = env.start_login(&["corp"]);
    let cb = &login.redirect_uri;
    assert!(
        cb.starts_with("http://127.0.0.1:") && cb.ends_with("/callback"),
        "{cb}"
    );

    // A forged callback (wrong state), a wrong path, a wrong method, a wrong Host: error pages.
    let (status, body) =
        authctl_tests::http("GET", &format!("{cb}?code=forged&state=forged"), None).unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("wrong state"), "{body}");
    assert!(!body.contains("forged"), "the page never echoes the code");
    let base = cb.trim_end_matches("/callback");
    assert_eq!(
        authctl_tests::http("GET", &format!("{base}/other?state={}", login.state), None)
            .unwrap()
            .0,
        404
    );
    assert_eq!(authctl_tests::http("POST", cb, None).unwrap().0, 405);
    assert_eq!(
        authctl_tests::http(
            "GET",
            &format!("{cb}?code=x&state={}", login.state),
            Some("evil.example:80")
        )
        .unwrap()
        .0,
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

    // Replaying the callback finds the listener closed.
    assert!(
        authctl_tests::http("GET", &format!("{cb}?code=replayed&state={state}"), None).is_err()
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
fn an_issuer_whose_discovery_fails_gives_a_clear_error() {
    let (env, _idp) = setup();
    // A loopback port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    env.authctl(&[
        "provider",
        "add",
        "dead",
        "--issuer",
        &issuer,
        "--client-id",
        "x",
    ])
    .ok();
    let run = env.authctl(&["login", "dead"]);
    run.expect_code(6);
    assert!(
        run.stderr.contains("discovery for issuer") && run.stderr.contains(&issuer),
        "{}",
        run.stderr
    );
    // A server that answers, but is no OpenID provider.
    let idp2 = Idp::start(IdpOptions::default());
    env.authctl(&[
        "provider",
        "add",
        "wrong",
        "--issuer",
        &format!("{}/nothing", idp2.issuer),
        "--client-id",
        "x",
    ])
    .ok();
    let run = env.authctl(&["login", "wrong"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("discovery for issuer"),
        "{}",
        run.stderr
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn bad_configs_are_refused_naming_file_line_and_key() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.config_file().parent().unwrap()).unwrap();
    let cases = [
        ("[providers.corp\nissuer = 1\n", "line 1"),
        (
            "[providers.corp]\nissuer = \"https://a.example\"\nclient_id = \"x\"\nscope = [\"a\"]\n",
            "line 4",
        ),
        (
            "[providers.corp]\nclient_id = \"x\"\nissuer = \"http://idp.example.com\"\n",
            "providers.corp.issuer",
        ),
        ("[agent]\nstore = \"vault\"\n", "store"),
    ];
    let path = env.config_file().display().to_string();
    for (text, expect) in cases {
        std::fs::write(env.config_file(), text).unwrap();
        let run = env.authctl(&["agent", "start"]);
        assert_ne!(run.code, 0, "{text}");
        assert!(
            run.stderr.contains(&path) && run.stderr.contains(expect),
            "{text}: {}",
            run.stderr
        );
    }
    // A running agent keeps its configuration when a reload finds a broken file.
    std::fs::write(
        env.config_file(),
        "[providers.corp]\nclient_id = \"x\"\nissuer = \"https://a.example\"\n",
    )
    .unwrap();
    env.authctl(&["agent", "start"]).ok();
    std::fs::write(env.config_file(), "[providers.corp]\nclient_id = \n").unwrap();
    let run = env.authctl(&["agent", "reload"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&path) && run.stderr.contains("line 2"),
        "{}",
        run.stderr
    );
    assert!(
        env.authctl(&["provider", "list"])
            .ok()
            .stdout
            .contains("corp")
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn provider_add_list_remove_and_client_secret_stays_out_of_the_config() {
    let (env, idp) = setup();
    let run = env.authctl_stdin(
        &[
            "provider",
            "add",
            "conf",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "authctl-basic",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--client-secret-stdin",
        ],
        "basic-secret\n",
    );
    run.ok();
    let config = read(&env.config_file());
    assert!(
        config.contains("[providers.conf]") && !config.contains("basic-secret"),
        "{config}"
    );
    let list = env
        .authctl(&["provider", "list", "--json"])
        .ok()
        .stdout
        .clone();
    let list = json(&list);
    let conf = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "conf")
        .unwrap();
    assert_eq!(conf["has_client_secret"], true);
    // A confidential client (client_secret_basic) logs in with the stored secret.
    env.authctl(&["login", "conf"]).ok();
    env.authctl(&["token", "conf", "--refresh"]).ok();
    assert_eq!(idp.token_calls("refresh_token"), 1);
    // Adding twice is refused; removing a provider with accounts is refused.
    env.authctl(&[
        "provider",
        "add",
        "conf",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "x",
    ])
    .expect_code(2);
    env.authctl(&["provider", "remove", "conf"]).expect_code(2);
    env.authctl(&["logout", "conf"]).ok();
    env.authctl(&["provider", "remove", "conf"]).ok();
    assert!(!read(&env.config_file()).contains("[providers.conf]"));
    env.authctl(&["provider", "remove", "conf"]).expect_code(5);
    // A hand edit plus `agent reload`.
    let mut text = read(&env.config_file());
    text.push_str(&format!(
        "\n[providers.hand]\nissuer = \"{}\"\nclient_id = \"authctl-native\"\n",
        idp.issuer
    ));
    std::fs::write(env.config_file(), text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
    assert!(
        env.authctl(&["provider", "list"])
            .ok()
            .stdout
            .contains("hand")
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn socket_lifecycle_stale_socket_second_agent_and_sigterm() {
    let env = TestEnv::new();
    // A stale socket left by a crashed agent is replaced.
    std::fs::create_dir_all(env.socket().parent().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        env.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(env.socket()).unwrap());
    assert!(env.socket().exists());
    let mut agent = env.spawn_agent();

    // A second agent on the same store exits at once, naming the running one.
    let second = env
        .command(&authctl_tests::bin("authctl-agent"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains(&format!("pid {}", agent.child.id())), "{err}");

    // SIGTERM drains and removes the socket.
    let status = agent.signal_and_wait("TERM");
    assert!(status.success(), "{status:?}\n{}", agent.log());
    assert!(!env.socket().exists());

    // A directory others can write is refused.
    std::fs::set_permissions(
        env.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let out = env
        .command(&authctl_tests::bin("authctl-agent"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 700"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_client_of_another_uid_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new();
    env.authctl(&["agent", "start"]).ok();
    env.add_provider("corp", &idp);
    env.authctl(&["login", "corp"]).ok();
    // Let uid 65534 reach the socket path at all: only the socket's own mode and the peer check
    // stand in its way now.
    std::fs::set_permissions(env.root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let authctl = authctl_tests::bin("authctl");
    let as_nobody = |args: &[&str]| {
        let mut c = env.command(std::path::Path::new("setpriv"));
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&authctl)
            .args(args);
        authctl_tests::Run::from(c.output().unwrap())
    };
    let run = as_nobody(&["token", "corp"]);
    run.expect_code(8);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("permission denied") || run.stderr.contains("its own user"),
        "{}",
        run.stderr
    );

    // Even with the socket opened up, the peer-uid check refuses the connection before any request.
    for dir in [
        env.path("run"),
        env.socket().parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = as_nobody(&["token", "corp"]);
    run.expect_code(8);
    assert!(
        run.stdout.is_empty(),
        "no token for another user: {}",
        run.stdout
    );
    assert!(
        env.agent_log()
            .contains("refused a connection from another user"),
        "{}",
        env.agent_log()
    );
    for dir in [
        env.path("run"),
        env.socket().parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn health_and_reflection_are_served() {
    let env = TestEnv::new();
    env.authctl(&["agent", "start"]).ok();
    let socket = env.socket();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "authctl.agent.v1.Agent".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        let mut client = authctl_client::from_channel(ch);
        assert!(client.list_accounts().await.unwrap().is_empty());
    });
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
