//! MCP hosts (issue 16): `authctl mcp URL` between a real MCP host and a real remote MCP server,
//! both from the official Python SDK (`mcp` on PyPI): the server (`tests/mcp/server.py`, Streamable
//! HTTP) checks every bearer against the test provider's JWKS with audience = its resource URL;
//! the host (`tests/mcp/client.py`) is the SDK's stdio client, which starts `authctl mcp URL` as
//! its MCP server and initializes, lists and calls tools. The Python packages come from
//! `make interop-deps`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use authctl_tests::{Idp, IdpOptions, Run, TestEnv, bin, repo_root};
use serde_json::{Value, json};

use super::json;

/// The interop virtual environment's Python (`AUTHCTL_TEST_PYTHON` overrides it).
fn python() -> PathBuf {
    let p = std::env::var_os("AUTHCTL_TEST_PYTHON").map_or_else(
        || repo_root().join("target/interop/venv/bin/python"),
        PathBuf::from,
    );
    assert!(
        p.exists(),
        "{} is missing: run `make interop-deps` (it installs the Python test packages)",
        p.display()
    );
    p
}

/// The test MCP server, stopped on drop.
struct McpServer {
    child: Child,
    url: String,
}

impl McpServer {
    fn start(idp: &Idp) -> Self {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/mcp/server.py"))
            .arg(&idp.issuer)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the test MCP server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the test MCP server did not start in 30 s");
        let url = json(line.trim())["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no url in the ready line {line:?}"))
            .to_owned();
        Self { child, url }
    }

    fn stats(&self) -> Value {
        let base = self.url.trim_end_matches("/mcp");
        let r = authctl_tests::http::Request::new("GET", &format!("{base}/__test/stats"))
            .send()
            .expect("the test MCP server's stats");
        r.json()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the host with `steps` (see `tests/mcp/client.py`), `authctl mcp URL` under it.
fn spawn_host(env: &TestEnv, url: &str, steps: &[&str]) -> Child {
    env.command(&python())
        .arg(repo_root().join("tests/mcp/client.py"))
        .arg(bin("authctl"))
        .arg(url)
        .args(steps)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the MCP host")
}

/// Waits for a host: its report, and its stderr (the bridge's diagnostics are in it).
fn host_report(env: &TestEnv, host: Child) -> (Value, String) {
    let out = host.wait_with_output().expect("wait for the MCP host");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the MCP host failed ({}); stderr:\n{stderr}\nagent log:\n{}",
        out.status,
        env.agent_log()
    );
    (json(String::from_utf8_lossy(&out.stdout).trim()), stderr)
}

fn run_host(env: &TestEnv, url: &str, steps: &[&str]) -> (Value, String) {
    host_report(env, spawn_host(env, url, steps))
}

/// The report of step `i`, which must have succeeded.
#[track_caller]
fn ok_step(report: &Value, i: usize) -> &Value {
    let s = &report["steps"][i];
    assert_eq!(s["ok"], true, "step {i} failed: {report}");
    s
}

/// An IdP and an agent (no provider: the MCP server's is found by zero-config).
fn agent(browser_action: &str) -> (TestEnv, Idp) {
    let idp = Idp::start(IdpOptions::default());
    let mut env = TestEnv::new();
    env.set("HEADLESS_BROWSER_ACTION", browser_action);
    env.authctl(&["agent", "start"]).ok();
    (env, idp)
}

/// `authctl login URL` through the approving browser: the account's name.
fn login(env: &TestEnv, url: &str) -> String {
    let out = env
        .command(&bin("authctl"))
        .args(["login", url])
        .env("HEADLESS_BROWSER_ACTION", "approve")
        .output()
        .expect("run authctl login");
    let r = Run::from(out);
    r.ok();
    r.stdout
        .lines()
        .find_map(|l| l.strip_prefix("account "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no account in {}", r.stdout))
        .to_owned()
}

#[test]
fn first_use_logs_in_once_then_the_host_calls_tools_and_outlives_an_expired_token() {
    let (env, idp) = agent("approve");
    let server = McpServer::start(&idp);
    // Two hosts start at once with no account: one registration, one login for both.
    let hosts: Vec<Child> = (0..2)
        .map(|_| spawn_host(&env, &server.url, &["list", "whoami"]))
        .collect();
    for host in hosts {
        let (report, stderr) = host_report(&env, host);
        assert_eq!(report["server"], "authctl-test-mcp", "{report}");
        assert_eq!(
            ok_step(&report, 0)["tools"],
            json!(["countdown", "whoami"]),
            "{report}"
        );
        let me = &ok_step(&report, 1)["result"];
        assert_eq!(me["sub"], "alice", "{report}");
        assert_eq!(me["aud"], server.url.as_str(), "audience = the resource");
        assert!(
            !stderr.contains("eyJ"),
            "no token in diagnostics either: {stderr}"
        );
    }
    assert_eq!(idp.registrations(), 1, "{}", env.agent_log());
    assert_eq!(
        idp.token_calls("authorization_code"),
        1,
        "one login for both hosts: {}",
        env.browser_log()
    );

    // A session whose token expires (the server refuses it from then on) between two calls:
    // the next call succeeds after exactly one refresh. The countdown's progress notifications
    // stream through on the request's event stream.
    let refreshes = idp.token_calls("refresh_token");
    let (report, stderr) = run_host(
        &env,
        &server.url,
        &["whoami", "countdown", "expire", "whoami"],
    );
    assert_eq!(ok_step(&report, 1)["result"], "liftoff");
    assert_eq!(ok_step(&report, 1)["progress"], json!(["3", "2", "1"]));
    assert_eq!(ok_step(&report, 2)["expired"], 1, "{report}");
    assert_eq!(ok_step(&report, 3)["result"]["sub"], "alice");
    assert_eq!(idp.token_calls("refresh_token"), refreshes + 1, "{stderr}");
    assert!(
        stderr.contains("asking the agent for a fresh one"),
        "{stderr}"
    );
    assert_eq!(
        idp.token_calls("authorization_code"),
        1,
        "no login for an expiry"
    );
    // Every session was ended at the server (DELETE at EOF), and its event stream opened.
    let stats = server.stats();
    assert_eq!(stats["delete"], 3, "{stats}");
    assert!(stats["get"].as_u64() >= Some(3), "{stats}");

    // The server starts to require `mcp:write`: its `insufficient_scope` gets one step-up login
    // (the bridge opens the browser, as `authctl login` does) asking it, then the call goes on.
    let (report, stderr) = run_host(&env, &server.url, &["require-write", "whoami"]);
    assert_eq!(
        ok_step(&report, 0)["required"],
        json!(["mcp:read", "mcp:write"])
    );
    let scope = ok_step(&report, 1)["result"]["scope"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(scope.split(' ').any(|s| s == "mcp:write"), "{scope}");
    assert!(
        stderr.contains("needs scope `mcp:read mcp:write`"),
        "{stderr}"
    );
    assert_eq!(
        idp.token_calls("authorization_code"),
        2,
        "one step-up login"
    );
    assert_eq!(server.stats()["insufficient_scope"], 1);

    // Per-application authorization saw the bridge (`authctl mcp` became `authctl-mcp`, the same
    // process) asking for the host (Python),
    // and the first login as the administrative call a zero-config set-up is.
    let r = env.authctl(&["access", "log", "--json"]);
    r.ok();
    let lines: Vec<Value> = r.stdout.lines().map(json).collect();
    let handed = lines
        .iter()
        .find(|l| l["kind"] == "token" && l["outcome"] == "handed out")
        .unwrap_or_else(|| panic!("no token handed out in {}", r.stdout));
    let bridge = std::fs::canonicalize(bin("authctl-mcp")).unwrap();
    assert_eq!(handed["caller"]["process"]["exe"], bridge.to_str().unwrap());
    let host = handed["caller"]["on_behalf_of"]["exe"].as_str().unwrap();
    assert!(host.contains("python"), "{handed}");
    assert!(
        lines.iter().any(|l| l["kind"] == "admin"
            && l["action"]
                .as_str()
                .is_some_and(|a| a.contains("zero-configuration"))
            && l["outcome"] == "done"),
        "{}",
        r.stdout
    );
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn a_revoked_login_is_a_json_rpc_error_after_one_refresh_not_a_hang_or_a_loop() {
    // The agent's browser refuses any new login: a revoked login cannot be quietly renewed.
    let (env, idp) = agent("deny");
    let server = McpServer::start(&idp);
    login(&env, &server.url);
    idp.push_faults(
        json!([{"invalid_grant": true, "grant_type": "refresh_token", "repeat": true}]),
    );
    let (report, stderr) = run_host(&env, &server.url, &["whoami", "expire", "whoami", "list"]);
    assert_eq!(ok_step(&report, 0)["result"]["sub"], "alice");
    for i in [2, 3] {
        let failed = &report["steps"][i];
        assert_eq!(failed["ok"], false, "{report}");
        assert_eq!(failed["code"], -32001, "{report}");
        let message = failed["error"].as_str().unwrap();
        assert!(
            message.starts_with("authctl: no token for") && message.contains(&server.url),
            "{message}"
        );
    }
    assert!(
        stderr.contains("needs a login"),
        "the login the bridge asked for is named: {stderr}"
    );
    assert_eq!(
        idp.token_calls("refresh_token"),
        1,
        "one refresh, never a loop"
    );
    assert_eq!(idp.token_calls("authorization_code"), 1, "the denied login");
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn raw_json_rpc_lines_ends_at_eof_and_unreachable_servers_are_errors_not_hangs() {
    let (env, idp) = agent("approve");
    let server = McpServer::start(&idp);
    let account = login(&env, &server.url);
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#;
    let input = format!(
        "{init}\n{}\nnot json\n\n{}\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":"two","method":"tools/list"}"#
    );
    let r = env.authctl_stdin(&["mcp", &server.url, "--header", "X-Test: 1"], &input);
    r.ok();
    let lines: Vec<Value> = r.stdout.lines().map(json).collect();
    assert_eq!(
        lines.len(),
        3,
        "only protocol messages on stdout: {}",
        r.stdout
    );
    assert_eq!(lines[0]["id"], 1);
    assert_eq!(lines[0]["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(lines[1]["id"], Value::Null);
    assert_eq!(lines[1]["error"]["code"], -32700);
    assert_eq!(lines[2]["id"], "two");
    assert_eq!(
        lines[2]["result"]["tools"].as_array().map(Vec::len),
        Some(2)
    );
    let token = env.token(&[&account]);
    assert!(!r.stdout.contains(&token) && !r.stderr.contains(&token));
    assert_eq!(server.stats()["delete"], 1, "the session ended at EOF");

    // A plain-http URL off loopback gets no token.
    let r = env.authctl_stdin(&["mcp", "http://mcp.example.com/mcp"], "");
    r.expect_code(2);
    assert!(r.stderr.contains("refusing to send tokens"), "{}", r.stderr);

    // The server goes away: each request gets an error response, and EOF still ends the bridge.
    let url = server.url.clone();
    drop(server);
    let input = format!(
        "{init}\n{}\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#
    );
    let r = env.authctl_stdin(&["mcp", &url], &input);
    r.ok();
    let lines: Vec<Value> = r.stdout.lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    for (line, id) in lines.iter().zip([json!(1), json!(2)]) {
        assert_eq!(line["id"], id);
        assert_eq!(line["error"]["code"], -32002, "{line}");
        assert!(
            line["error"]["message"]
                .as_str()
                .unwrap()
                .contains("is unreachable"),
            "{line}"
        );
    }
    assert!(r.stderr.contains("is unreachable"), "{}", r.stderr);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn authctl_mcp_checks_its_arguments_then_becomes_the_bridge_program_and_names_a_missing_one() {
    let env = TestEnv::new();
    // The arguments are authctl's: its help, its usage errors (exit 2), before any bridge runs.
    let r = env.authctl(&["mcp", "--help"]);
    r.ok();
    assert!(
        r.stdout.contains("Usage: authctl mcp") && r.stdout.contains("--header <K:V>"),
        "{}",
        r.stdout
    );
    let r = env.authctl(&[
        "mcp",
        "https://mcp.example.com/mcp",
        "--header",
        "Authorization: x",
    ]);
    r.expect_code(2);
    assert!(r.stderr.contains("the bridge's own header"), "{}", r.stderr);
    let r = env.authctl(&["mcp"]);
    r.expect_code(2);
    assert!(r.stderr.contains("<URL>"), "{}", r.stderr);

    // The bridge program answers for itself too, under the command's name.
    let o = env
        .command(&bin("authctl-mcp"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("authctl mcp "));

    // `authctl` installed without its bridge (and none on PATH): a clear error naming it, exit 1,
    // and nothing on stdout for the host to misread as protocol.
    let lone = tempfile::tempdir().unwrap();
    let authctl = lone.path().join("authctl");
    std::fs::copy(bin("authctl"), &authctl).unwrap();
    let o = env
        .command(&authctl)
        .args(["mcp", "https://mcp.example.com/mcp"])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    let r = Run::from(o);
    r.expect_code(1);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("cannot start the MCP bridge")
            && r.stderr.contains("install authctl-mcp"),
        "{}",
        r.stderr
    );
}
