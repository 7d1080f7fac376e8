//! Configuration: broken `config.toml` files named by file, line and key; providers added, listed,
//! removed and hand-edited (client secrets kept out of the file); an issuer whose discovery fails.

use authctl_tests::{Idp, IdpOptions, TestEnv, read};

use super::{json, setup};

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
    // The running agent's providers are listed, and the broken file is named (exit code 2).
    let list = env.authctl(&["provider", "list"]);
    list.expect_code(2);
    assert!(list.stdout.contains("corp"), "{}", list.stdout);
    assert!(list.stderr.contains(&path), "{}", list.stderr);
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
