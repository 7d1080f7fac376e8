//! Running as a user service: unit files, socket activation, idle exit, SIGHUP reload, autostart,
//! doctor, the launchd plist and the Debian package.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authctl_tests::{Idp, IdpOptions, TestEnv, bin, read, repo_root};

use super::{json, setup};

/// Splits `authctl agent install --print` output into (path, contents).
fn printed_files(out: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("# /") {
            files.push((format!("/{p}"), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    files
}

#[test]
fn unit_files_pass_systemd_analyze_verify_and_install_writes_them() {
    let env = TestEnv::new();
    let out = env
        .authctl(&["agent", "install", "--print"])
        .ok()
        .stdout
        .clone();
    let files = printed_files(&out);
    assert_eq!(files.len(), 2, "{out}");
    let dir = env.path("units");
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths = Vec::new();
    for (path, body) in &files {
        assert!(
            path.starts_with(&env.path("config/systemd/user").display().to_string()),
            "{path}"
        );
        let p = dir.join(Path::new(path).file_name().unwrap());
        std::fs::write(&p, body).unwrap();
        paths.push(p);
    }
    let service = read(&paths[0]);
    assert!(
        service.contains(&format!(
            "ExecStart={}",
            bin("authctl-agent").canonicalize().unwrap().display()
        )),
        "{service}"
    );
    assert!(service.contains("Type=notify"));
    let socket = read(&paths[1]);
    for line in [
        "ListenStream=%t/authctl/agent.sock",
        "SocketMode=0600",
        "DirectoryMode=0700",
    ] {
        assert!(socket.contains(line), "{socket}");
    }
    let verify = |files: &[std::path::PathBuf]| {
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg("--man=no")
            .args(files)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    verify(&paths);
    // The distribution copies in packaging/ verify too (with the agent path they name filled in).
    let pkg = env.path("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let agent = bin("authctl-agent")
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    let svc = read(&repo_root().join("packaging/systemd/authctl-agent.service"))
        .replace("/usr/bin/authctl-agent", &agent);
    std::fs::write(pkg.join("authctl-agent.service"), svc).unwrap();
    std::fs::copy(
        repo_root().join("packaging/systemd/authctl-agent.socket"),
        pkg.join("authctl-agent.socket"),
    )
    .unwrap();
    verify(&[
        pkg.join("authctl-agent.socket"),
        pkg.join("authctl-agent.service"),
    ]);

    // Without a user service manager (this container) install writes the files and says what to do.
    let r = env.authctl(&["agent", "install"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("service files are written") && r.stderr.contains("authctl agent start"),
        "{}",
        r.stderr
    );
    assert!(
        env.path("config/systemd/user/authctl-agent.socket")
            .exists()
    );
    // An installed but stopped service: the CLI says how to start it instead of autostarting.
    let mut env2 = env;
    env2.set("AUTHCTL_NO_AUTOSTART", "");
    let r = env2.authctl(&["provider", "list"]);
    r.expect_code(3);
    assert!(
        r.stderr
            .contains("systemctl --user start authctl-agent.socket"),
        "{}",
        r.stderr
    );
    let r = env2.authctl(&["agent", "uninstall"]);
    r.ok();
    assert!(
        !env2
            .path("config/systemd/user/authctl-agent.socket")
            .exists()
    );
}

#[test]
fn socket_activation_starts_the_agent_on_first_connection_and_idle_exit_stops_it() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new();
    std::fs::create_dir_all(env.config_file().parent().unwrap()).unwrap();
    std::fs::write(env.config_file(), "[agent]\nidle_timeout_seconds = 2\n").unwrap();
    let sock_dir = env.socket().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&sock_dir).unwrap();
    let mut activator = env
        .command(Path::new("systemd-socket-activate"))
        .arg("-l")
        .arg(env.socket())
        // It hands the daemon only the variables named here.
        .args([
            "-E",
            "HOME",
            "-E",
            "XDG_CONFIG_HOME",
            "-E",
            "XDG_DATA_HOME",
            "-E",
            "XDG_STATE_HOME",
        ])
        .args(["-E", "XDG_RUNTIME_DIR", "-E", "AUTHCTL_LOG"])
        .arg(bin("authctl-agent"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("activate.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.socket().exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !read(&env.path("activate.log")).contains("authctl_agent"),
        "not started before a connection"
    );
    // The first connection starts the agent, which serves on the inherited socket.
    let status = env.status_json();
    assert!(status["agent"]["pid"].as_u64().unwrap() > 0);
    env.add_provider("corp", &idp);
    env.authctl(&["login", "corp"]).ok();
    let t = env.token(&["corp"]);
    assert_eq!(idp.introspect(&t)["active"], true);
    assert!(
        read(&env.path("activate.log")).contains("activated=true"),
        "{}",
        read(&env.path("activate.log"))
    );
    // With idle_timeout_seconds, the agent exits once nothing needs it... (the account's
    // supervisor keeps it alive while the token is hot, so log out first).
    env.authctl(&["logout", "corp"]).ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = activator.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "agent did not exit when idle; log:\n{}",
            read(&env.path("activate.log"))
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(read(&env.path("activate.log")).contains("idle; exiting"));
}

#[test]
fn sighup_reload_keeps_cached_tokens_and_picks_up_a_new_provider() {
    let idp = Idp::start(IdpOptions::default());
    let env = TestEnv::new();
    let mut agent = env.spawn_agent();
    env.add_provider("corp", &idp);
    env.authctl(&["login", "corp"]).ok();
    let before = env.token(&["corp"]);
    let mut text = read(&env.config_file());
    text.push_str(&format!(
        "\n[providers.second]\nissuer = \"{}\"\nclient_id = \"authctl-native\"\n",
        idp.issuer
    ));
    std::fs::write(env.config_file(), text).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &agent.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env
        .authctl(&["provider", "list"])
        .ok()
        .stdout
        .contains("second")
    {
        assert!(
            Instant::now() < deadline,
            "reload not seen; log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        env.authctl(&["token", "corp"]).ok().stdout.trim(),
        before,
        "same token after reload"
    );
    assert_eq!(idp.token_calls("refresh_token"), 0);
    assert!(agent.log().contains("configuration reloaded"));
    let s = agent.signal_and_wait("TERM");
    assert!(s.success());
}

#[test]
fn autostart_starts_an_agent_from_a_clean_runtime_directory() {
    let mut env = TestEnv::new();
    env.set("AUTHCTL_NO_AUTOSTART", "");
    assert!(!env.socket().exists());
    let r = env.authctl(&["provider", "list"]);
    r.ok();
    assert!(r.stderr.contains("started the agent"), "{}", r.stderr);
    env.authctl(&["agent", "status"]).ok();
    env.authctl(&["agent", "stop"]).ok();
    // `status` only reports; it never starts an agent.
    env.authctl(&["status"]).expect_code(3);
    // Turned off: exit code 3 and the hint.
    env.set("AUTHCTL_NO_AUTOSTART", "1");
    let r = env.authctl(&["provider", "list"]);
    r.expect_code(3);
    assert!(r.stderr.contains("authctl agent start"), "{}", r.stderr);
}

#[test]
fn doctor_reports_a_missing_keyring_and_a_wrong_socket_permission() {
    use std::os::unix::fs::PermissionsExt;
    let (env, _idp) = setup();
    let r = env.authctl(&["doctor", "--json"]);
    r.ok();
    let d = json(&r.stdout);
    let find = |name: &str| {
        d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name}: {d}"))
    };
    assert_eq!(find("agent")["status"], "ok");
    assert_eq!(find("socket")["status"], "ok");
    let keyring = find("os keyring");
    assert_eq!(keyring["status"], "warn");
    assert!(
        keyring["detail"]
            .as_str()
            .unwrap()
            .contains("no D-Bus session"),
        "{keyring}"
    );
    assert_eq!(find("provider corp")["status"], "ok");
    assert!(
        find("secret store")["detail"]
            .as_str()
            .unwrap()
            .starts_with("file")
    );

    std::fs::set_permissions(
        env.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let r = env.authctl(&["doctor"]);
    r.expect_code(1);
    assert!(
        r.stdout.contains("[FAIL] socket directory") && r.stdout.contains("chmod 700"),
        "{}",
        r.stdout
    );
    std::fs::set_permissions(
        env.socket().parent().unwrap(),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    env.authctl(&["agent", "stop"]).ok();
    // No agent: doctor says so, with the fix.
    let r = env.authctl(&["doctor"]);
    r.expect_code(1);
    assert!(
        r.stdout.contains("[FAIL] agent") && r.stdout.contains("authctl agent start"),
        "{}",
        r.stdout
    );
}

#[test]
fn launchd_plist_parses_and_holds_the_expected_keys() {
    let path = repo_root().join("packaging/launchd/dev.authctl.agent.plist");
    let script =
        "import plistlib,sys,json; d=plistlib.load(open(sys.argv[1],'rb')); print(json.dumps(d))";
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = json(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(d["Label"], "dev.authctl.agent");
    assert!(
        d["ProgramArguments"][0]
            .as_str()
            .unwrap()
            .ends_with("authctl-agent")
    );
    assert_eq!(d["RunAtLoad"], true);
    assert_eq!(d["KeepAlive"]["SuccessfulExit"], false);
}

#[test]
fn the_debian_package_holds_binaries_units_completions_and_man_page() {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(repo_root().join("packaging/build-deb"))
        .args([
            "--bin-dir",
            &authctl_tests::bin_dir().display().to_string(),
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deb = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let list = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for f in [
        "./usr/bin/authctl",
        "./usr/bin/authctl-agent",
        "./usr/bin/authctl-mcp",
        "./usr/lib/systemd/user/authctl-agent.service",
        "./usr/lib/systemd/user/authctl-agent.socket",
        "./usr/share/bash-completion/completions/authctl",
        "./usr/share/zsh/vendor-completions/_authctl",
        "./usr/share/fish/vendor_completions.d/authctl.fish",
        "./usr/share/man/man1/authctl.1.gz",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(f)),
            "{f} missing from:\n{list}"
        );
    }
    assert!(
        list.lines()
            .any(|l| l.ends_with("./usr/bin/docker-credential-authctl -> authctl")),
        "docker's credential helper is authctl under its name:\n{list}"
    );
    let info = Command::new("dpkg-deb")
        .args(["-f", &deb, "Package"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "authctl");
}
