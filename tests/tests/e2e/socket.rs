//! The agent's socket: its lifecycle (stale socket, second agent, SIGTERM, unsafe directory), a
//! client of another uid refused, and the standard health and reflection services.

use authctl_tests::{Idp, IdpOptions, TestEnv};

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
    // The agent's log is written off the request path: give a loaded machine a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !env
        .agent_log()
        .contains("refused a connection from another user")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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

/// A same-user flood of idle connections fills every place (512): later clients wait in the
/// listen backlog instead of being refused, and the silent connections lose their places after
/// the first-byte timeout (10 s), so `authctl status` answers.
#[test]
fn an_idle_flood_of_the_socket_delays_clients_but_never_locks_them_out() {
    use std::io::Read as _;
    let env = TestEnv::new();
    let agent = env.spawn_agent();
    let flood: Vec<std::os::unix::net::UnixStream> = (0..520)
        .map(|_| std::os::unix::net::UnixStream::connect(env.socket()).unwrap())
        .collect();
    let started = std::time::Instant::now();
    let status = env.authctl(&["status"]);
    let waited = started.elapsed();
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    // Every place was taken: status got in only once the silent ones were closed.
    assert!(waited >= std::time::Duration::from_secs(5), "{waited:?}");
    // Each silent connection is closed 10 s after its accept (they were accepted over a while).
    for s in &flood {
        s.set_nonblocking(true).unwrap();
    }
    let closed = || {
        flood
            .iter()
            .filter(|s| {
                // Past the agent's HTTP/2 settings: end of file (closed) or would block (open).
                loop {
                    match (&**s).read(&mut [0u8; 256]) {
                        Ok(0) => break true,
                        Ok(_) => {}
                        Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
                    }
                }
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut closed_now = closed();
    while closed_now < 512 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        closed_now = closed();
    }
    let closed = closed_now;
    assert!(closed >= 512, "{closed} of the flood's connections closed");
    let log = agent.log();
    assert!(
        log.contains("every client connection place is taken"),
        "{log}"
    );
}

/// A long-lived client outlives an agent restart: the client crate dials the socket again on the
/// next call after its connection closed (as tonic's channel did), and a call while no agent
/// runs is a clear "not running" error, not a hang.
#[test]
fn the_client_crate_dials_again_after_the_agent_restarts() {
    let env = TestEnv::new();
    let mut agent = env.spawn_agent();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut client = authctl_client::connect(&env.socket()).await.unwrap();
        let mut clone = client.clone();
        assert!(client.list_accounts().await.unwrap().is_empty());
        assert!(agent.signal_and_wait("TERM").success());
        // The connection closed; with no agent, the next call says so.
        let err = client.status().await.unwrap_err();
        assert!(
            err.is_not_running() || matches!(err, authctl_client::ClientError::Transport { .. }),
            "{err:?}"
        );
        let err = client.status().await.unwrap_err();
        assert!(err.is_not_running(), "{err:?}");
        let _agent = env.spawn_agent();
        // Both the client and its clone reach the new agent.
        assert!(client.list_accounts().await.unwrap().is_empty());
        assert!(clone.status().await.is_ok());
    });
}
