//! Developer tools in front of the agent, driven as the tools drive them: real `git clone` and
//! `git push` over smart HTTP (`git http-backend` behind `tests/tools/git-http-server`, which
//! admits only tokens the test provider says are active) through `authctl git-credential`; and
//! real `kubectl get pods` against `tests/tools/fake-kube-apiserver` (https, checks the bearer) through
//! `authctl kubectl-credential`, and the other ExecCredential version against its documented JSON;
//! the docker credential-helper protocol driven as docker drives it; `authctl exec` with children that read the token from their environment or from a file kept
//! fresh past the token's lifetime.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use authctl_tests::{IdpOptions, Run, TestEnv, bin, bin_dir, repo_root};

use super::{setup, setup_with};

/// The git remote; killed when dropped.
struct GitServer {
    child: Child,
    base: String,
    log: PathBuf,
}

impl GitServer {
    fn start(env: &TestEnv, issuer: &str) -> Self {
        let root = env.path("repos");
        let log = env.path("git-server.log");
        std::fs::create_dir_all(&root).unwrap();
        let mut child = Command::new(repo_root().join("tests/tools/git-http-server"))
            .args(["--root", root.to_str().unwrap(), "--idp", issuer])
            .args(["--log", log.to_str().unwrap()])
            .args(["--deny", env.path("git-server.deny").to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/tools/git-http-server (python3)");
        let port = announced_port(&mut child);
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The port a test server (`tests/tools/*`) announces as its first stdout line, `PORT N`.
fn announced_port(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("PORT ")
        .expect("PORT line")
        .to_owned()
}

impl Drop for GitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git ARGS` in `dir` with the test's HOME (its global config), `authctl` first on `PATH`, no
/// system config and no terminal prompts.
fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    git_stdin(env, dir, args, "")
}

fn git_stdin(env: &TestEnv, dir: &Path, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut c = env.command(Path::new("git"));
    c.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.test")
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run git");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}

/// The test environment with `authctl` (the binary under test) first on `PATH`.
fn with_authctl_on_path(env: &mut TestEnv) {
    let path = std::env::var("PATH").unwrap_or_default();
    env.set("PATH", &format!("{}:{path}", bin_dir().display()));
}

/// A bare repository `r.git` under the server's root with one commit, pushable over HTTP.
fn seed_repository(env: &TestEnv) {
    let root = env.path("repos");
    std::fs::create_dir_all(&root).unwrap();
    git(env, &root, &["init", "--bare", "-q", "-b", "main", "r.git"]).ok();
    git(
        env,
        &root.join("r.git"),
        &["config", "http.receivepack", "true"],
    )
    .ok();
    let seed = env.path("seed");
    git(env, &env.path(""), &["init", "-q", "-b", "main", "seed"]).ok();
    std::fs::write(seed.join("README"), "hello\n").unwrap();
    git(env, &seed, &["add", "README"]).ok();
    git(env, &seed, &["commit", "-q", "-m", "first"]).ok();
    let bare = root.join("r.git");
    git(env, &seed, &["push", "-q", bare.to_str().unwrap(), "main"]).ok();
}

#[test]
fn git_clone_and_push_through_the_credential_helper_with_erase_and_retry() {
    let (mut env, idp) = setup();
    with_authctl_on_path(&mut env);
    env.authctl(&["login", "corp"]).ok();
    seed_repository(&env);
    let server = GitServer::start(&env, &idp.issuer);
    let remote = format!("{}/r.git", server.base);

    // No route yet: git gets nothing from the helper, and the user is told what to run.
    let clone_dir = env.path("work");
    let refused = git(&env, &env.path(""), &["clone", "-q", &remote, "work"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(!server.log().contains("auth=Bearer"), "{}", server.log());

    // The README's set-up line, exercised: route add … --install writes git's config.
    let added = env.authctl(&["route", "add", "git", &server.base, "corp", "--install"]);
    added.ok();
    let key = format!("credential.{}.helper", server.base);
    let helpers = git(
        &env,
        &env.path(""),
        &["config", "--global", "--get-all", &key],
    );
    helpers.ok();
    assert_eq!(
        helpers.stdout, "\n!authctl git-credential\n",
        "an empty helper resets others, then authctl: {helpers:?}"
    );

    let _ = std::fs::remove_dir_all(&clone_dir);
    git(&env, &env.path(""), &["clone", "-q", &remote, "work"]).ok();
    assert_eq!(
        std::fs::read_to_string(clone_dir.join("README")).unwrap(),
        "hello\n"
    );
    // git ≥ 2.46 announces `capability[]=authtype`: the helper answers with a bearer token.
    assert!(
        server.log().contains("auth=Bearer -> 200"),
        "{}",
        server.log()
    );

    // The server stops accepting the token the agent serves: the push fails, git erases the
    // credential, the agent refreshes, and the retry goes through.
    let t1 = env.token(&["corp"]);
    std::fs::write(env.path("git-server.deny"), format!("{t1}\n")).unwrap();
    std::fs::write(clone_dir.join("CHANGES"), "more\n").unwrap();
    git(&env, &clone_dir, &["add", "CHANGES"]).ok();
    git(&env, &clone_dir, &["commit", "-q", "-m", "second"]).ok();
    let rejected = git(&env, &clone_dir, &["push", "-q", "origin", "main"]);
    assert_ne!(rejected.code, 0, "{rejected:?}");
    assert!(
        rejected.stderr.contains("refreshed it"),
        "erase refreshed: {rejected:?}"
    );
    assert!(
        server.log().contains("auth=Bearer -> 401"),
        "{}",
        server.log()
    );
    let t2 = env.token(&["corp"]);
    assert_ne!(t1, t2, "erase made the agent refresh");
    assert_eq!(idp.introspect(&t2)["active"], true);
    git(&env, &clone_dir, &["push", "-q", "origin", "main"]).ok();
    let log = git(
        &env,
        &env.path("repos/r.git"),
        &["log", "--format=%s", "main"],
    );
    assert_eq!(log.ok().stdout, "second\nfirst\n");

    // The agent attests the helper's requests as the CLI's, on behalf of the program that ran it
    // (the shell git starts for a `!` helper; the audit log's JSON has the whole parent chain).
    let audit = env.authctl(&["access", "log", "--json"]);
    let handed: Vec<serde_json::Value> = audit
        .ok()
        .stdout
        .lines()
        .map(super::json)
        .filter(|l| l["outcome"] == "handed out")
        .filter(|l| {
            l["caller"]["parents"]
                .to_string()
                .contains("/git-remote-http")
        })
        .collect();
    assert!(!handed.is_empty(), "{}", audit.stdout);
    assert!(
        handed.iter().all(|l| l["caller"]["process"]["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("/authctl"))),
        "{}",
        audit.stdout
    );

    // No token, and no part of one, reaches the server's log or git's output.
    for t in [&t1, &t2] {
        assert!(!server.log().contains(t.as_str()));
        assert!(!rejected.stderr.contains(t.as_str()));
    }
}

#[test]
fn git_credential_protocol_basic_answers_unrouted_hosts_store_and_routes() {
    let (mut env, idp) = setup();
    with_authctl_on_path(&mut env);
    env.authctl(&["login", "corp"]).ok();
    let server = GitServer::start(&env, &idp.issuer);
    // The README's manual set-up line: a route, and git's config pointing at the helper.
    env.authctl(&[
        "route",
        "add",
        "git",
        &format!("{}/team", server.base),
        "corp",
        "--username",
        "me",
    ])
    .ok();
    let key = format!("credential.{}.helper", server.base);
    git(
        &env,
        &env.path(""),
        &["config", "--global", &key, "!authctl git-credential"],
    )
    .ok();
    git(
        &env,
        &env.path(""),
        &[
            "config",
            "--global",
            &format!("credential.{}.useHttpPath", server.base),
            "true",
        ],
    )
    .ok();

    // git without the authtype capability (as git < 2.46 asks): user name and token as password.
    let host = server.base.trim_start_matches("http://");
    let fill = git_stdin(
        &env,
        &env.path(""),
        &["credential", "fill"],
        &format!("protocol=http\nhost={host}\npath=team/r.git\n\n"),
    );
    fill.ok();
    let token = env.token(&["corp"]);
    assert!(fill.stdout.contains("username=me\n"), "{fill:?}");
    assert!(
        fill.stdout.contains(&format!("password={token}\n")),
        "{fill:?}"
    );
    assert!(fill.stdout.contains("password_expiry_utc="), "{fill:?}");
    // The server takes it as Basic.
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    let basic = authctl_tests::http::Request::local(
        "GET",
        port,
        "/r.git/info/refs?service=git-upload-pack",
    )
    .header(
        "Authorization",
        &format!("Basic {}", b64(&format!("me:{token}"))),
    )
    .send()
    .unwrap();
    // The repository does not exist here, but the token got past the check.
    assert!(
        server.log().contains("auth=Basic:me -> "),
        "{basic:?} {}",
        server.log()
    );
    assert!(
        !server.log().contains("auth=Basic:me -> 401"),
        "{}",
        server.log()
    );

    // Outside the route's path, and on another host: no token, a message naming the fix.
    for input in [
        format!("protocol=http\nhost={host}\npath=other/r.git\n"),
        "protocol=https\nhost=elsewhere.example\n".to_owned(),
    ] {
        let r = env.authctl_stdin(&["git-credential", "get"], &input);
        r.expect_code(5);
        assert_eq!(r.stdout, "", "never a token for an unrouted host");
        assert!(r.stderr.contains("authctl route add git"), "{r:?}");
    }
    // store is a no-op; erase of a token the agent no longer serves changes nothing.
    env.authctl_stdin(
        &["git-credential", "store"],
        &format!("protocol=http\nhost={host}\npath=team/r.git\nusername=me\npassword={token}\n"),
    )
    .ok();
    env.authctl_stdin(
        &["git-credential", "erase"],
        &format!("protocol=http\nhost={host}\npath=team/r.git\nusername=me\npassword=stale\n"),
    )
    .ok();
    assert_eq!(env.token(&["corp"]), token, "no refresh for a stale token");

    // route list / remove.
    let list = env.authctl(&["route", "list", "--json"]);
    let routes = super::json(&list.ok().stdout);
    assert_eq!(routes[0]["target"], format!("{}/team", server.base));
    assert_eq!(routes[0]["username"], "me");
    env.authctl(&[
        "route",
        "add",
        "git",
        &format!("{}/team/", server.base),
        "other",
    ])
    .expect_code(2);
    env.authctl(&["route", "remove", "git", &format!("{}/team", server.base)])
        .ok();
    env.authctl(&["route", "remove", "git", &format!("{}/team", server.base)])
        .expect_code(5);
    let r = env.authctl_stdin(
        &["git-credential", "get"],
        &format!("protocol=http\nhost={host}\npath=team/r.git\n"),
    );
    assert_eq!(r.stdout, "");
}

/// Standard base64 with padding (RFC 4648 §4), for a Basic header.
fn b64(s: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn exec_passes_the_token_in_the_environment_and_the_exit_status_back() {
    let (env, _idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let token = env.token(&["corp"]);
    let r = env.authctl(&[
        "exec",
        "corp",
        "--",
        "sh",
        "-c",
        "printf %s \"$AUTHCTL_TOKEN\"",
    ]);
    assert_eq!(r.ok().stdout, token);
    let r = env.authctl(&[
        "exec",
        "corp",
        "--env",
        "GH_TOKEN",
        "--",
        "sh",
        "-c",
        "printf %s \"$GH_TOKEN\"",
    ]);
    assert_eq!(r.ok().stdout, token);
    let r = env.authctl(&["exec", "corp", "--", "sh", "-c", "exit 7"]);
    r.expect_code(7);
    assert_eq!(r.stderr, "", "the child's status, no words of ours");
    env.authctl(&["exec", "corp", "--", "/nonexistent/program"])
        .expect_code(127);
    env.authctl(&["exec", "nobody", "--", "true"])
        .expect_code(5);
}

#[test]
fn exec_keeps_a_token_file_fresh_for_a_child_that_outlives_the_token() {
    let opts = IdpOptions {
        access_token_ttl: Some(8),
        ..IdpOptions::default()
    };
    let (env, idp) = setup_with(opts, "min_ttl_seconds = 4");
    env.authctl(&["login", "corp"]).ok();
    let dir = env.path("tok");
    let file = dir.join("token");
    // The child reads the file at once and again after the first token has expired.
    let script = "cat \"$AUTHCTL_TOKEN_FILE\" > \"$OUT/first\"; \
                  stat -c %a \"$AUTHCTL_TOKEN_FILE\" > \"$OUT/mode\"; sleep 10; \
                  cat \"$AUTHCTL_TOKEN_FILE\" > \"$OUT/second\"";
    let out = env.path("");
    let r: Run = env
        .command(&bin("authctl"))
        .env("OUT", &out)
        .args([
            "exec",
            "corp",
            "--token-file",
            file.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap()
        .into();
    r.ok();
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    let (first, second) = (read("first"), read("second"));
    assert_eq!(read("mode").trim(), "600");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_ne!(first, second, "rewritten with a refreshed token");
    assert_eq!(
        idp.introspect(&first)["active"],
        false,
        "the first token expired meanwhile"
    );
    assert_eq!(idp.introspect(&second)["active"], true, "{r:?}");
    assert!(!file.exists(), "the token file is removed at exit");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file left"
    );
}

#[test]
fn exec_forwards_signals_to_the_child() {
    let (env, _idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let mut child = env
        .command(&bin("authctl"))
        .args(["exec", "corp", "--", "sh", "-c"])
        .arg("trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.1; done")
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // Should the signal not reach the child (authctl ended by it instead), the child would hold
    // stdout open forever: the whole group goes after a minute, and the test fails, not hangs.
    let group = child.id();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "got-term\n");
    assert_eq!(child.wait().unwrap().code(), Some(3));
}

/// The fake API server; killed when dropped.
struct KubeServer {
    child: Child,
    server: String,
    log: PathBuf,
}

impl KubeServer {
    fn start(env: &TestEnv, issuer: &str) -> Self {
        let (cert, key, log) = (
            env.path("kube.crt"),
            env.path("kube.key"),
            env.path("kube.log"),
        );
        let made = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(made.success(), "openssl req failed");
        let mut child = Command::new(repo_root().join("tests/tools/fake-kube-apiserver"))
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--idp", issuer, "--log", log.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/tools/fake-kube-apiserver (python3)");
        let port = announced_port(&mut child);
        Self {
            child,
            server: format!("https://127.0.0.1:{port}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kubectl ARGS` with the test's HOME and KUBECONFIG, and `authctl` first on `PATH`.
fn kubectl(env: &TestEnv, args: &[&str]) -> Run {
    env.command(Path::new("kubectl"))
        .env("KUBECONFIG", env.path("kubeconfig"))
        .args(args)
        .output()
        .expect("run kubectl (Debian kubernetes-client)")
        .into()
}

#[test]
fn kubectl_gets_pods_with_the_exec_plugin_installed_by_route_add() {
    let (mut env, idp) = setup();
    with_authctl_on_path(&mut env);
    env.authctl(&["login", "corp"]).ok();
    let server = KubeServer::start(&env, &idp.issuer);
    std::fs::write(
        env.path("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    \
             insecure-skip-tls-verify: true\ncontexts:\n- name: test\n  context:\n    cluster: test\n    \
             user: nobody\ncurrent-context: test\nusers:\n- name: nobody\n  user: {{}}\n",
            server.server
        ),
    )
    .unwrap();
    // Without credentials the server refuses.
    assert_ne!(kubectl(&env, &["get", "pods", "-o", "name"]).code, 0);

    let mut route_add = env.command(&bin("authctl"));
    let added: Run = route_add
        .env("KUBECONFIG", env.path("kubeconfig"))
        .args(["route", "add", "kubectl", "test", "corp", "--install"])
        .output()
        .unwrap()
        .into();
    added.ok();
    let user = kubectl(
        &env,
        &[
            "config",
            "view",
            "-o",
            "jsonpath={.users[?(@.name=='authctl-corp')].user.exec}",
        ],
    );
    let exec = super::json(&user.ok().stdout);
    assert_eq!(exec["command"], "authctl");
    assert_eq!(
        exec["args"],
        serde_json::json!(["kubectl-credential", "corp"])
    );
    // v1 for kubectl ≥ 1.22 (with interactiveMode), v1beta1 for older ones (Debian 12's 1.20).
    if exec["apiVersion"] == "client.authentication.k8s.io/v1" {
        assert_eq!(exec["interactiveMode"], "IfAvailable");
    } else {
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
    }

    let pods = kubectl(&env, &["get", "pods", "-o", "name"]);
    assert_eq!(pods.ok().stdout, "pod/hello\n", "{}", server.log());
    assert!(
        server
            .log()
            .contains("GET /api/v1/namespaces/default/pods auth=Bearer -> 200"),
        "{}",
        server.log()
    );
    let token = env.token(&["corp"]);
    assert!(!server.log().contains(&token));
}

#[test]
fn kubectl_credential_speaks_v1beta1_resolves_servers_and_says_when_a_login_is_needed() {
    let (mut env, _idp) = setup();
    // Not logged in, no terminal: a clear message, no browser.
    let need = env
        .command(&bin("authctl"))
        .args(["kubectl-credential", "corp"])
        .output()
        .unwrap();
    let need: Run = need.into();
    need.expect_code(4);
    assert!(need.stderr.contains("authctl login corp"), "{need:?}");
    assert_eq!(env.browser_log(), "", "no login started without a terminal");
    env.authctl(&["login", "corp"]).ok();

    // v1beta1, the cluster resolved by its server (provideClusterInfo) through a route.
    env.authctl(&[
        "route",
        "add",
        "kubectl",
        "https://k8s.example.test:6443",
        "corp",
    ])
    .ok();
    env.set(
        "KUBERNETES_EXEC_INFO",
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false,"cluster":{"server":"https://k8s.example.test:6443/"}}}"#,
    );
    let r = env.authctl(&["kubectl-credential"]);
    let cred = super::json(&r.ok().stdout);
    let t = super::json(&env.authctl(&["token", "corp", "--json"]).ok().stdout);
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(cred["kind"], "ExecCredential");
    assert_eq!(cred["status"]["token"], t["access_token"]);
    let expiry = cred["status"]["expirationTimestamp"].as_str().unwrap();
    assert!(
        expiry.ends_with('Z') && expiry.len() == 20,
        "RFC 3339 UTC: {expiry}"
    );
    // --id-token hands out the login's ID token.
    let id = super::json(
        &env.authctl(&["kubectl-credential", "corp", "--id-token"])
            .ok()
            .stdout,
    );
    assert_eq!(id["status"]["token"], t["id_token"]);

    // Another server: no route, no token, the fix named.
    env.set(
        "KUBERNETES_EXEC_INFO",
        r#"{"apiVersion":"client.authentication.k8s.io/v1","spec":{"cluster":{"server":"https://other.example.test"}}}"#,
    );
    let r = env.authctl(&["kubectl-credential"]);
    r.expect_code(5);
    assert_eq!(r.stdout, "");
    assert!(r.stderr.contains("authctl route add kubectl"), "{r:?}");
}

/// Runs `docker-credential-authctl OPERATION` (a symlink to `authctl`, as installed) with `input`
/// on stdin, as docker does.
fn docker_helper(env: &TestEnv, operation: &str, input: &str) -> Run {
    use std::io::Write;
    let link = env.path("bin/docker-credential-authctl");
    if !link.exists() {
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(bin("authctl"), &link).unwrap();
    }
    let mut child = env
        .command(&link)
        .arg(operation)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}

#[test]
fn docker_credential_helper_get_list_store_erase() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    env.authctl(&[
        "route",
        "add",
        "docker",
        "registry.example.test:5000",
        "corp",
        "--install",
    ])
    .ok();
    let config =
        super::json(&std::fs::read_to_string(env.path("home/.docker/config.json")).unwrap());
    assert_eq!(
        config["credHelpers"]["registry.example.test:5000"],
        "authctl"
    );

    // get: what docker reads, with a token the provider holds.
    let r = docker_helper(&env, "get", "registry.example.test:5000\n");
    let got = super::json(&r.ok().stdout);
    assert_eq!(got["ServerURL"], "registry.example.test:5000");
    assert_eq!(got["Username"], "oauth2");
    let secret = got["Secret"].as_str().unwrap();
    assert_eq!(secret, env.token(&["corp"]));
    assert_eq!(idp.introspect(secret)["active"], true);

    // An unrouted registry: docker's not-found answer, no token.
    let r = docker_helper(&env, "get", "https://index.docker.io/v1/");
    r.expect_code(1);
    assert_eq!(r.stdout.trim(), "credentials not found in native keychain");
    assert!(r.stderr.contains("authctl route add docker"), "{r:?}");

    // list: the routed registries and their user names.
    let r = docker_helper(&env, "list", "");
    assert_eq!(
        super::json(&r.ok().stdout),
        serde_json::json!({"registry.example.test:5000": "oauth2"})
    );

    // store/erase: a no-op for routed registries, refused for others.
    let stored = r#"{"ServerURL":"registry.example.test:5000","Username":"u","Secret":"s"}"#;
    docker_helper(&env, "store", stored).ok();
    docker_helper(&env, "erase", "registry.example.test:5000").ok();
    let other = r#"{"ServerURL":"other.example.test","Username":"u","Secret":"s"}"#;
    let r = docker_helper(&env, "store", other);
    r.expect_code(1);
    assert!(
        r.stdout
            .contains("cannot store credentials for `other.example.test`"),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("authctl route add docker other.example.test ACCOUNT"),
        "{r:?}"
    );
    let r = docker_helper(&env, "erase", "other.example.test\n");
    r.expect_code(1);
    assert!(r.stdout.contains("cannot erase"), "{r:?}");

    // The agent attests the helper as the authctl CLI.
    let audit = env.authctl(&["access", "log", "--json"]);
    assert!(audit.ok().stdout.lines().map(super::json).any(|l| {
        l["outcome"] == "handed out"
            && l["caller"]["process"]["exe"]
                .as_str()
                .is_some_and(|e| e.ends_with("/authctl"))
    }));
}

/// The forge presets know where they serve git: `provider add --preset github` routes
/// `https://github.com` to the new provider (its one account, once logged in), unless a route for
/// that target exists; git gets no token while nobody has logged in.
#[test]
fn forge_presets_route_git_to_their_forge_unless_a_route_exists() {
    let env = TestEnv::new();
    let _agent = env.spawn_agent();
    let routes =
        |env: &TestEnv| super::json(&env.authctl(&["route", "list", "--json"]).ok().stdout);
    env.authctl(&[
        "provider",
        "add",
        "gh",
        "--preset",
        "github",
        "--client-id",
        "Iv1.0123456789abcdef",
    ])
    .ok();
    let r = routes(&env);
    assert_eq!(r.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(
        (&r[0]["tool"], &r[0]["target"], &r[0]["account"]),
        (&"git".into(), &"https://github.com".into(), &"gh".into()),
        "{r}"
    );
    // A second GitHub provider does not take the route over.
    env.authctl(&[
        "provider",
        "add",
        "gh-work",
        "--preset",
        "github",
        "--client-id",
        "Iv1.fedcba9876543210",
    ])
    .ok();
    let again = routes(&env);
    assert_eq!(again, r, "the first route stays");
    // git asks before any login: no password, and a message on stderr.
    let ask = env.authctl_stdin(
        &["git-credential", "get"],
        "protocol=https\nhost=github.com\npath=o/r.git\n",
    );
    assert!(!ask.stdout.contains("password="), "{}", ask.stdout);
    assert!(!ask.stderr.trim().is_empty());
}
