//! First contact (issue 18): a broken config.toml is named wherever the user looks, with one
//! error (file, line, key) and exit code 2; a keyring that refuses writes loses no login.

use std::time::{Duration, Instant};

use authctl_tests::{AgentProcess, Idp, IdpOptions, TestEnv, bin};

/// A config whose provider table has a bad value on line 5.
const BROKEN: &str =
    "# mine\n[providers.corp]\nclient_id = \"c\"\n\nissuer = \"http://evil.example\"\n";

fn write_config(env: &TestEnv, text: &str) {
    std::fs::create_dir_all(env.config_file().parent().unwrap()).unwrap();
    std::fs::write(env.config_file(), text).unwrap();
}

#[track_caller]
fn names_the_problem(what: &str, text: &str, env: &TestEnv) {
    let file = env.config_file().display().to_string();
    assert!(
        text.contains(&file) && text.contains("line 5") && text.contains("providers.corp.issuer"),
        "{what} does not name the file, line and key:\n{text}"
    );
}

#[test]
fn a_broken_config_is_named_everywhere_with_exit_code_2() {
    let mut env = TestEnv::new();
    write_config(&env, BROKEN);
    // No agent yet: starting it, explicitly or on demand, says what is wrong.
    let r = env.authctl(&["agent", "start"]);
    r.expect_code(2);
    names_the_problem("agent start", &r.stderr, &env);
    assert!(
        !r.stderr.contains("ERROR"),
        "one plain error, not a log line: {}",
        r.stderr
    );
    let r = env.authctl(&["status"]);
    r.expect_code(2);
    names_the_problem("status (no agent)", &r.stderr, &env);
    let r = env.authctl(&["doctor"]);
    r.expect_code(2);
    names_the_problem("doctor (no agent)", &r.stdout, &env);
    env.set("AUTHCTL_NO_AUTOSTART", "0");
    let r = env.authctl(&["provider", "list"]);
    r.expect_code(2);
    names_the_problem("provider list (autostart)", &r.stderr, &env);
    assert!(!r.stdout.contains("no providers") && !r.stderr.contains("no providers"));
    env.set("AUTHCTL_NO_AUTOSTART", "1");

    // A running agent whose file breaks keeps what it loaded, and every surface says so.
    write_config(&env, "# mine\n");
    env.authctl(&["agent", "start"]).ok();
    write_config(&env, BROKEN);
    let r = env.authctl(&["agent", "reload"]);
    r.expect_code(2);
    names_the_problem("agent reload", &r.stderr, &env);
    assert!(
        r.stderr.contains("configuration it loaded before"),
        "{}",
        r.stderr
    );
    let r = env.authctl(&["status"]);
    r.expect_code(2);
    names_the_problem("status (running)", &r.stderr, &env);
    assert!(r.stdout.contains("agent:   running"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("up in"),
        "uptime reads as a span: {}",
        r.stdout
    );
    let r = env.authctl(&["status", "--json"]);
    r.expect_code(2);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    names_the_problem("status --json", j["config_error"].as_str().unwrap(), &env);
    let r = env.authctl(&["provider", "list"]);
    r.expect_code(2);
    names_the_problem("provider list (running)", &r.stderr, &env);
    let r = env.authctl(&["doctor"]);
    r.expect_code(2);
    names_the_problem("doctor (running)", &r.stdout, &env);
    assert!(r.stdout.contains("[FAIL] config:"), "{}", r.stdout);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn help_lists_one_item_a_line_and_presets_have_no_trailing_spaces() {
    let env = TestEnv::new();
    let help = env.authctl(&["--help"]);
    help.ok();
    for item in [
        "  7  the login (or the sign-out at the provider) failed, was denied or timed out",
        "  AUTHCTL_NO_AUTOSTART  =1: never start an agent on demand",
    ] {
        assert!(help.stdout.contains(item), "{}", help.stdout);
    }
    env.authctl(&["agent", "start"]).ok();
    let presets = env.authctl(&["provider", "presets"]);
    presets.ok();
    assert!(
        presets.stdout.lines().all(|l| l == l.trim_end()),
        "{:?}",
        presets.stdout
    );
    env.authctl(&["agent", "stop"]).ok();
}

/// A Secret Service whose collection cannot be written without a prompt (gnome-keyring started
/// with an empty password in a private D-Bus session), and `store = "keyring"`.
fn agent_on_a_keyring_that_refuses_writes(env: &TestEnv) -> AgentProcess {
    write_config(env, "[agent]\nstore = \"keyring\"\n");
    let log = env.path("agent.stderr");
    let child = env
        .command(std::path::Path::new("dbus-run-session"))
        .args([
            "--",
            "sh",
            "-c",
            "printf '' | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec \"$0\"",
        ])
        .arg(bin("authctl-agent"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = AgentProcess { child, log };
    let deadline = Instant::now() + Duration::from_secs(20);
    while env.authctl(&["agent", "status"]).code != 0 {
        assert!(Instant::now() < deadline, "no agent: {}", agent.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

#[test]
fn a_keyring_that_refuses_the_write_loses_no_login_and_says_why() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new();
    let _agent = agent_on_a_keyring_that_refuses_writes(&env);
    env.add_provider("corp", &idp);
    let r = env.authctl(&["login", "corp"]);
    r.ok();
    assert!(
        r.stderr.contains("not saved") && r.stderr.contains("store = \"file\""),
        "the login says what happened and what to do: {}",
        r.stderr
    );
    // The tokens are kept and served, and status says the refresh token is not saved.
    let first = env.token(&["corp"]);
    let refreshed = env.token(&["corp", "--refresh"]);
    assert_ne!(first, refreshed);
    assert_eq!(idp.introspect(&refreshed)["active"], true);
    let status = env.status_json();
    let account = &status["accounts"][0];
    assert_eq!(account["state"], "not_saved", "{status}");
    assert!(
        account["last_error"]
            .as_str()
            .unwrap()
            .contains("unlock the keyring")
    );
    assert_eq!(
        status["secret_store"]["backend"], "keyring",
        "never switched silently"
    );
    assert!(
        !env.data_dir().join("secrets.json").exists(),
        "no file store behind its back"
    );
    // doctor names the condition.
    let d = env.authctl(&["doctor"]);
    d.expect_code(1);
    assert!(d.stdout.contains("[FAIL] os keyring"), "{}", d.stdout);
    env.authctl(&["agent", "stop"]).ok();
}
