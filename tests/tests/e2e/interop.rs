//! Interop: third-party gRPC stacks at their default settings against the real agent, logged in
//! to the test provider. Each calls health, reflection (v1 and v1alpha), `ListAccounts`,
//! `GetToken`, and receives a `Watch` event.
//!
//! - Python `grpcio` with `unix:PATH` and `unix://PATH` (it sends the percent-encoded socket path
//!   as `:authority`), through `tests/interop/grpcio_client.py`;
//! - Node `@grpc/grpc-js` with `unix:PATH`, through `tests/interop/node/grpc_js_client.mjs`;
//! - HTTP/2 requests whose `:authority` is the raw socket path (as grpc-java and grpc-swift send
//!   it) or absent, from `h2`'s own codec ([`authctl_tests::rawh2`]).
//!
//! And the snippets of README.md's "For programs" section (Rust, Python, Node, Go, shell) run as they
//! are written there.
//!
//! The Python virtual environment and the Node modules come from `make interop-deps` (which
//! `make test` runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use authctl_proto::v1 as pb;
use authctl_tests::rawh2::{Authority, Conn, Outcome};
use authctl_tests::{Idp, TestEnv, repo_root};
use prost::Message as _;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::{json, setup};

/// An agent logged in to the test provider as account `corp`.
fn logged_in() -> (TestEnv, Idp) {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    (env, idp)
}

/// The interop virtual environment's Python (`AUTHCTL_TEST_PYTHON` overrides it).
fn python_bin() -> PathBuf {
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

fn node_dir() -> PathBuf {
    let dir = repo_root().join("tests/interop/node");
    assert!(
        dir.join("node_modules/@grpc/grpc-js").is_dir(),
        "the Node interop client's packages are missing: run `make interop-deps` (npm ci in {})",
        dir.display()
    );
    dir
}

/// Runs one interop client to completion and parses the JSON object it prints.
fn run_client(env: &TestEnv, mut cmd: Command) -> serde_json::Value {
    let out = cmd
        .env("HOME", env.path("home"))
        .output()
        .expect("spawn the interop client");
    assert!(
        out.status.success(),
        "the interop client failed ({}); stderr:\n{}\nagent log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        env.agent_log()
    );
    json(String::from_utf8_lossy(&out.stdout).trim())
}

/// What every stack must have seen: the services, the account, a live token, a Watch event.
fn check_report(stack: &str, report: &serde_json::Value, idp: &Idp) {
    assert_eq!(report["health"], "SERVING", "{stack}: {report}");
    for (key, own) in [
        ("reflection_v1", "grpc.reflection.v1.ServerReflection"),
        (
            "reflection_v1alpha",
            "grpc.reflection.v1alpha.ServerReflection",
        ),
    ] {
        let services: Vec<&str> = report[key]
            .as_array()
            .unwrap_or_else(|| panic!("{stack}: no {key} in {report}"))
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        assert!(
            services.contains(&"authctl.agent.v1.Agent") && services.contains(&own),
            "{stack} {key}: {services:?}"
        );
    }
    assert_eq!(report["accounts"], serde_json::json!(["corp"]), "{stack}");
    assert_eq!(report["token_account"], "corp", "{stack}");
    let token = report["token"].as_str().expect("token");
    assert_eq!(
        idp.introspect(token)["active"],
        true,
        "{stack}: a live token"
    );
    assert_eq!(
        report["watch"],
        serde_json::json!({"account": "corp", "kind": "WATCH_EVENT_KIND_REFRESHED"}),
        "{stack}"
    );
}

#[test]
fn grpcio_at_its_defaults_with_unix_and_unix_slashes_targets() {
    let (env, idp) = logged_in();
    let socket = env.socket();
    for target in [
        format!("unix:{}", socket.display()),
        format!("unix://{}", socket.display()),
    ] {
        let mut cmd = Command::new(python_bin());
        cmd.arg(repo_root().join("tests/interop/grpcio_client.py"))
            .args([target.as_str(), "corp"])
            .arg(repo_root().join("proto/proto"));
        let report = run_client(&env, cmd);
        check_report(&format!("grpcio {target}"), &report, &idp);
        // Its descriptor database (v1alpha) resolved the whole service.
        let methods = report["reflected_methods"].to_string();
        assert!(
            methods.contains("\"GetToken\"") && methods.contains("\"Watch\""),
            "{methods}"
        );
    }
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn grpc_js_at_its_defaults_with_a_unix_target() {
    let (env, idp) = logged_in();
    let dir = node_dir();
    let node = std::env::var_os("AUTHCTL_TEST_NODE").unwrap_or_else(|| "node".into());
    let mut cmd = Command::new(node);
    cmd.current_dir(&dir)
        .arg(dir.join("grpc_js_client.mjs"))
        .arg(format!("unix:{}", env.socket().display()))
        .arg("corp")
        .arg(repo_root().join("proto/proto"));
    let report = run_client(&env, cmd);
    check_report("grpc-js", &report, &idp);
    env.authctl(&["agent", "stop"]).ok();
}

/// The whole tour over a connection whose requests carry `authority`, as a report like the
/// scripts print.
async fn h2_tour(socket: &Path, authority: Authority) -> serde_json::Value {
    let mut conn = Conn::connect(socket, authority.clone()).await.unwrap();
    let ok = |r: Result<bytes::Bytes, Outcome>, what: &str| {
        r.unwrap_or_else(|end| panic!("{what} with {authority:?} ended without an answer: {end:?}"))
    };

    let health = ok(
        conn.unary(
            "/grpc.health.v1.Health/Check",
            HealthCheckRequest {
                service: "authctl.agent.v1.Agent".into(),
            }
            .encode_to_vec(),
        )
        .await
        .unwrap(),
        "health",
    );
    let health = HealthCheckResponse::decode(health).unwrap();
    let health = health.status().as_str_name().to_owned();

    let mut reflection = serde_json::Map::new();
    {
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};
        // The messages of v1 and v1alpha are the same on the wire; only the service differs.
        for version in ["v1", "v1alpha"] {
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let reply = ok(
                conn.unary(
                    &format!("/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"),
                    request.encode_to_vec(),
                )
                .await
                .unwrap(),
                version,
            );
            let Some(MessageResponse::ListServicesResponse(list)) =
                ServerReflectionResponse::decode(reply)
                    .unwrap()
                    .message_response
            else {
                panic!("reflection {version}: not a service list");
            };
            let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            reflection.insert(format!("reflection_{version}"), names.into());
        }
    }

    let accounts = ok(
        conn.unary(
            "/authctl.agent.v1.Agent/ListAccounts",
            pb::ListAccountsRequest {}.encode_to_vec(),
        )
        .await
        .unwrap(),
        "ListAccounts",
    );
    let accounts: Vec<String> = pb::ListAccountsResponse::decode(accounts)
        .unwrap()
        .accounts
        .into_iter()
        .map(|a| a.name)
        .collect();
    let get_token = |force_refresh| {
        pb::GetTokenRequest {
            account: "corp".into(),
            force_refresh,
            ..Default::default()
        }
        .encode_to_vec()
    };
    let token = ok(
        conn.unary("/authctl.agent.v1.Agent/GetToken", get_token(false))
            .await
            .unwrap(),
        "GetToken",
    );
    let token = pb::Token::decode(token).unwrap();

    let watch = conn
        .open(
            "/authctl.agent.v1.Agent/Watch",
            &[pb::WatchRequest {
                account: "corp".into(),
            }
            .encode_to_vec()],
        )
        .await
        .unwrap();
    // The agent subscribed before it answered with headers: now a forced refresh is seen.
    conn.headers(watch).await.unwrap();
    ok(
        conn.unary("/authctl.agent.v1.Agent/GetToken", get_token(true))
            .await
            .unwrap(),
        "forced GetToken",
    );
    let event = ok(
        tokio::time::timeout(Duration::from_secs(15), conn.message(watch))
            .await
            .expect("a Watch event within 15 s")
            .unwrap(),
        "Watch",
    );
    let event = pb::WatchEvent::decode(event).unwrap();

    let mut report = serde_json::json!({
        "health": health,
        "accounts": accounts,
        "token": token.access_token,
        "token_account": token.account,
        "watch": {"account": event.account, "kind": event.kind().as_str_name()},
    });
    report.as_object_mut().unwrap().extend(reflection);
    report
}

#[test]
fn h2_requests_with_a_raw_path_authority_or_none_are_served() {
    let (env, idp) = logged_in();
    let socket = env.socket();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for authority in [
        Authority::Raw(socket.display().to_string()),
        Authority::Absent,
    ] {
        let report = rt.block_on(h2_tour(&socket, authority.clone()));
        check_report(&format!("h2 {authority:?}"), &report, &idp);
    }
    env.authctl(&["agent", "stop"]).ok();
}

/// The part of a program between its `// README: begin` and `// README: end` lines (indented by
/// `indent`), without that indentation: the text of one of README.md's snippets.
fn marked_part(file: &str, indent: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
    text.split_once(&format!("{indent}// README: begin\n"))
        .and_then(|(_, rest)| rest.split_once(&format!("{indent}// README: end\n")))
        .unwrap_or_else(|| panic!("README markers in {file}"))
        .0
        .lines()
        .map(|l| l.strip_prefix(indent).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fenced blocks of README.md's "For programs" section, by language (first of each).
fn readme_snippet(lang: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## For programs\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a For programs section");
    let fence = format!("  ```{lang}\n");
    let body = section
        .split_once(&fence)
        .and_then(|(_, rest)| rest.split_once("  ```\n"))
        .unwrap_or_else(|| panic!("no {lang} snippet in For programs"))
        .0;
    body.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn readme_snippets_for_programs_run() {
    let (env, idp) = logged_in();
    let userinfo = idp.url("/me");
    let run = |mut cmd: Command, what: &str| {
        let out = cmd
            .current_dir(repo_root())
            .env("API_URL", &userinfo)
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "the README's {what} snippet failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let dir = tempfile::tempdir().unwrap();

    // Rust: README's text is client/examples/readme.rs between its markers, and that program runs.
    assert_eq!(
        readme_snippet("rust"),
        marked_part("client/examples/readme.rs", "    "),
        "README's Rust snippet is client/examples/readme.rs between the markers: copy it again"
    );
    let out = run(
        env.command(&authctl_tests::bin_dir().join("examples/readme")),
        "Rust",
    );
    assert!(out.starts_with("expires at "), "{out}");

    let python = dir.path().join("snippet.py");
    std::fs::write(&python, readme_snippet("python")).unwrap();
    let mut cmd = env.command(&python_bin());
    cmd.arg(&python);
    assert!(run(cmd, "Python").starts_with("expires at "));

    // Node: beside a link to the interop client's node_modules, run from the repository root
    // (the snippet names proto/proto relative to a checkout).
    let node_modules = node_dir().join("node_modules");
    std::os::unix::fs::symlink(&node_modules, dir.path().join("node_modules")).unwrap();
    let js = dir.path().join("snippet.mjs");
    std::fs::write(&js, readme_snippet("js")).unwrap();
    let node = std::env::var_os("AUTHCTL_TEST_NODE").unwrap_or_else(|| "node".into());
    let mut cmd = env.command(Path::new(&node));
    cmd.arg(&js);
    assert!(run(cmd, "Node").starts_with("expires at "));

    // Shell: the userinfo endpoint of the provider is the API; it answers with the subject.
    let mut cmd = env.command(Path::new("bash"));
    let path = format!(
        "{}:{}",
        authctl_tests::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .args(["-euo", "pipefail", "-c", &readme_snippet("sh")]);
    let out = run(cmd, "shell");
    assert_eq!(json(&out)["sub"], "alice", "{out}");
    env.authctl(&["agent", "stop"]).ok();
}

/// The Go snippet: `tests/interop/go/readme.go`, whose marked part is the README's text, built
/// with Debian's Go toolchain and grpc-go against stubs generated from `proto/` at test time
/// (protoc with protoc-gen-go and protoc-gen-go-grpc, as a Go user would), then run against a
/// logged-in agent; it gets a token with grpc-go's default settings and calls the provider's
/// userinfo endpoint with it.
#[test]
fn readme_go_snippet_runs() {
    assert_eq!(
        readme_snippet("go"),
        marked_part("tests/interop/go/readme.go", "\t"),
        "README's Go snippet is tests/interop/go/readme.go between the markers: copy it again"
    );
    // Runs a build step; `needs` names the Debian packages that `make test-deps` installs for it.
    let step = |cmd: &mut Command, what: &str, needs: &str| {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e} (Debian packages {needs}; `make test-deps`)"));
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let gopath = tempfile::tempdir().unwrap();
    let src = gopath.path().join("src");
    std::fs::create_dir_all(src.join("readme")).unwrap();
    std::fs::copy(
        repo_root().join("tests/interop/go/readme.go"),
        src.join("readme/main.go"),
    )
    .unwrap();
    let mapping = "Mauthctl/agent/v1/agent.proto=authctl.dev/agent/v1;agentv1";
    step(
        Command::new("protoc")
            .current_dir(repo_root().join("proto/proto"))
            .arg(format!("--go_out={}", src.display()))
            .arg(format!("--go_opt={mapping}"))
            .arg(format!("--go-grpc_out={}", src.display()))
            .arg(format!("--go-grpc_opt={mapping}"))
            .arg("authctl/agent/v1/agent.proto"),
        "protoc",
        "protobuf-compiler, protoc-gen-go, protoc-gen-go-grpc",
    );
    // GOPATH mode over Debian's Go sources (golang-google-grpc-dev & co. in /usr/share/gocode):
    // no module proxy is needed. The build cache lives under target/ for the next run.
    let binary = gopath.path().join("readme");
    step(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg("readme")
            .env("GO111MODULE", "off")
            .env(
                "GOPATH",
                format!("{}:/usr/share/gocode", gopath.path().display()),
            )
            .env("GOCACHE", repo_root().join("target/interop/gocache"))
            .env("GOFLAGS", ""),
        "go build",
        "golang-go, golang-google-grpc-dev, golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev",
    );

    let (env, idp) = logged_in();
    let run = || {
        env.command(&binary)
            .env("API_URL", idp.url("/me"))
            .output()
            .unwrap()
    };
    let out = run();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("expires at "),
        "the README's Go snippet failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    // Logged out, the snippet exits 4 with the agent's message, as `authctl token` does.
    env.authctl(&["logout", "corp"]).ok();
    let out = run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("authctl login corp"), "{stderr}");
    env.authctl(&["agent", "stop"]).ok();
}
