//! The world the rows run in: test providers, hermetic authctl environments with their agents
//! (release binaries), logged-in accounts, the echo floor, and oidc-agent holding accounts at the
//! same providers. Everything is a child of this process and is killed when dropped.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use authctl_tests::{Idp, IdpOptions, TestEnv, bin, browser_path};

use crate::echo::EchoProcess;

/// A hermetic `TestEnv` whose spawned binaries log at `info` (the default; the e2e harness turns
/// debug logging on, which would put a log line on every `GetToken`).
#[must_use]
pub fn bench_env() -> TestEnv {
    let mut env = TestEnv::new();
    crate::register_temp(env.root.path());
    env.set("AUTHCTL_LOG", "info");
    env
}

/// Writes `config.toml`: the embedded file store, extra `[agent]` lines, and providers
/// `(name, issuer)` with the test provider's native public client.
///
/// # Errors
/// The file cannot be written.
pub fn write_config(
    env: &TestEnv,
    agent_extra: &str,
    providers: &[(&str, &str)],
) -> anyhow::Result<()> {
    let mut s = format!("[agent]\nstore = \"file\"\n{agent_extra}\n");
    for (name, issuer) in providers {
        s.push_str(&format!(
            "\n[providers.{name}]\nissuer = \"{issuer}\"\nclient_id = \"authctl-native\"\n\
             scopes = [\"openid\", \"email\", \"offline_access\"]\n"
        ));
    }
    let path = env.config_file();
    std::fs::create_dir_all(path.parent().expect("config dir"))?;
    std::fs::write(&path, s)?;
    Ok(())
}

/// `authctl-agent` (release) running in the foreground as our child; killed when dropped.
pub struct Agent {
    child: Child,
    pub log: PathBuf,
}

impl Agent {
    /// Spawns the agent of `env` (stderr to `log`) without waiting.
    ///
    /// # Errors
    /// The binary cannot be started.
    pub fn spawn_nowait(env: &TestEnv, log: &Path) -> anyhow::Result<Self> {
        if crate::STOPPING.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("stopping");
        }
        let child = env
            .command(&bin("authctl-agent"))
            .stdout(Stdio::null())
            .stderr(File::create(log)?)
            .spawn()
            .context("spawn authctl-agent")?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    /// Spawns the agent and waits (at most 20 s) until it answers on its socket.
    ///
    /// # Errors
    /// It exits or does not answer.
    pub fn spawn(env: &TestEnv) -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut agent = Self::spawn_nowait(env, &env.path("agent.stderr"))?;
        agent.wait_ready(&rt, &env.socket(), Duration::from_secs(20))?;
        Ok(agent)
    }

    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls the socket until the agent answers a health check.
    ///
    /// # Errors
    /// The agent exits or does not answer within `limit`.
    pub fn wait_ready(
        &mut self,
        rt: &tokio::runtime::Runtime,
        socket: &Path,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            if socket.exists() && rt.block_on(health(socket)).is_ok() {
                return Ok(start.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "authctl-agent exited ({status}); its log:\n{}",
                    self.log_text()
                );
            }
            if start.elapsed() > limit {
                bail!(
                    "authctl-agent did not answer within {limit:?}; its log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Its stderr so far.
    #[must_use]
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits (at most 10 s, then SIGKILL).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `grpc.health.v1.Health/Check` of the agent's service over a fresh connection.
///
/// # Errors
/// No connection or no SERVING answer.
pub async fn health(socket: &Path) -> anyhow::Result<()> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))?
        .connect()
        .await?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let r = client
        .check(HealthCheckRequest {
            service: "authctl.agent.v1.Agent".into(),
        })
        .await?
        .into_inner();
    if r.status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        bail!("health status {}", r.status)
    }
}

/// Runs `authctl ARGS` and requires exit code 0.
///
/// # Errors
/// Another exit code (the output is in the message).
pub fn authctl_ok(env: &TestEnv, args: &[&str]) -> anyhow::Result<String> {
    let r = env.authctl(args);
    if r.code != 0 {
        bail!(
            "`authctl {}` exited {}: {}{}",
            args.join(" "),
            r.code,
            r.stderr.trim(),
            r.stdout.trim()
        );
    }
    Ok(r.stdout)
}

/// An authctl environment and its agent.
pub struct AgentEnv {
    // Drop order: the agent first, then its directories.
    pub agent: Agent,
    pub env: TestEnv,
}

/// oidc-agent 4.x in the foreground as our child, with its own socket, config directory and an
/// `xdg-open` that is the scripted browser; killed when dropped.
pub struct OidcAgent {
    child: Child,
    pub socket: PathBuf,
    dir: tempfile::TempDir,
    /// The absolute path of `oidc-token`.
    pub oidc_token: PathBuf,
    pub version: String,
}

/// The absolute path of `name` on `PATH`.
#[must_use]
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

impl OidcAgent {
    /// Starts `oidc-agent -d --socket-path=…` and waits for its socket.
    ///
    /// # Errors
    /// oidc-agent is not installed or does not start.
    pub fn start() -> anyhow::Result<Self> {
        let agent = which("oidc-agent").ok_or_else(|| {
            anyhow!(
                "oidc-agent is not installed (Debian package oidc-agent-cli; bench/run installs it)"
            )
        })?;
        let oidc_token =
            which("oidc-token").ok_or_else(|| anyhow!("oidc-token is not installed"))?;
        which("oidc-gen").ok_or_else(|| anyhow!("oidc-gen is not installed"))?;
        let version = Command::new(&agent)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .unwrap_or_default();
        let dir = tempfile::Builder::new()
            .prefix("authctl-bench-oidc-")
            .tempdir()?;
        crate::register_temp(dir.path());
        for d in ["home", "config", "tmp", "shim"] {
            std::fs::create_dir_all(dir.path().join(d))?;
        }
        // oidc-gen completes its code flow by running `xdg-open URL`.
        let shim = dir.path().join("shim").join("xdg-open");
        std::fs::write(
            &shim,
            format!("#!/bin/sh\nexec '{}' \"$@\"\n", browser_path().display()),
        )?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755))?;
        }
        let socket = dir.path().join("oidc-agent.sock");
        let log = File::create(dir.path().join("agent.log"))?;
        // Its own process group: oidc-agent forks workers, and all of them must go at the end.
        let child = oidc_command(dir.path(), &socket, &agent)
            .process_group(0)
            .arg("-d")
            .arg(format!("--socket-path={}", socket.display()))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawn oidc-agent")?;
        let mut me = Self {
            child,
            socket,
            dir,
            oidc_token,
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !me.socket.exists() {
            if let Some(status) = me.child.try_wait()? {
                bail!("oidc-agent exited ({status}): {}", me.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "oidc-agent did not create its socket within 10 s: {}",
                    me.log()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(me)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// A command with a cleared environment that reaches this oidc-agent.
    #[must_use]
    pub fn command(&self, program: &Path) -> Command {
        oidc_command(self.dir.path(), &self.socket, program)
    }

    /// Creates account `name` at `issuer` through oidc-gen's own authorization-code flow
    /// (confidential client `authctl-basic`, redirect `http://localhost:PORT/callback`), completed
    /// by the scripted browser. At most 60 s.
    ///
    /// # Errors
    /// oidc-gen fails or times out.
    pub fn add_account(&self, name: &str, issuer: &str) -> anyhow::Result<()> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let gen_bin = which("oidc-gen").ok_or_else(|| anyhow!("oidc-gen is not installed"))?;
        let out_path = self.dir.path().join(format!("gen-{name}.log"));
        let out = File::create(&out_path)?;
        let mut child = self
            .command(&gen_bin)
            .args([
                &format!("--iss={issuer}"),
                "--client-id=authctl-basic",
                "--client-secret=basic-secret",
                &format!("--redirect-uri=http://localhost:{port}/callback"),
                "--flow=code",
                "--scope=openid offline_access profile",
                "--pw-env",
                "--confirm-default",
                "--prompt=none",
                name,
            ])
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("spawn oidc-gen")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("oidc-gen {name} did not finish within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut text = String::new();
        File::open(&out_path)?.read_to_string(&mut text)?;
        if !status.success() || !text.contains("successfully added") {
            bail!("oidc-gen {name} failed ({status}): {}", text.trim());
        }
        Ok(())
    }
}

impl Drop for OidcAgent {
    fn drop(&mut self) {
        // The whole group: the agent and the workers it forked.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command with a cleared environment for the oidc-agent living in `dir`.
fn oidc_command(dir: &Path, socket: &Path, program: &Path) -> Command {
    let path = format!(
        "{}:{}",
        dir.join("shim").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", path)
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("tmp"))
        .env("OIDC_SOCK", socket)
        .env("OIDC_CONFIG_DIR", dir.join("config"))
        .env("OIDC_ENCRYPTION_PW", "authctl-bench-password")
        .env("HEADLESS_BROWSER_LOG", dir.join("browser.log"))
        .stdin(Stdio::null());
    c
}

/// The oidc-agent account at the main provider (rows 3 and 6).
pub const OIDC_MAIN: &str = "bench-main";
/// The oidc-agent account at the 60 s provider (row 5).
pub const OIDC_60: &str = "bench-60";

/// Everything the rows share.
pub struct World {
    // Drop order matters a little: clients' processes first, providers last.
    pub echo: EchoProcess,
    pub oidc: Result<OidcAgent, String>,
    /// Main agent (defaults but the file store): provider and account `corp` at `main_idp`.
    pub main: AgentEnv,
    /// Lifecycle agent (`refresh_idle_seconds = 1`): accounts `short` (2 s tokens) and `medium`
    /// (60 s tokens).
    pub life: AgentEnv,
    /// A refresh token of a grant nobody else uses, for the provider floor of row 6.
    pub floor_rt: String,
    pub main_idp: Idp,
    pub short_idp: Idp,
    pub medium_idp: Idp,
}

fn start_idps() -> anyhow::Result<(Idp, Idp, Idp)> {
    let spawn = |ttl: Option<u64>| {
        std::thread::spawn(move || {
            std::panic::catch_unwind(|| {
                let idp = Idp::start(IdpOptions {
                    access_token_ttl: ttl,
                    ..IdpOptions::default()
                });
                crate::register_temp(idp.log_path());
                idp
            })
            .map_err(|e| crate::panic_text(&*e))
        })
    };
    let (a, b, c) = (spawn(None), spawn(Some(2)), spawn(Some(60)));
    let join = |h: std::thread::JoinHandle<Result<Idp, String>>| {
        h.join()
            .map_err(|_| anyhow!("provider thread died"))?
            .map_err(|e| anyhow!("test provider: {e}"))
    };
    Ok((join(a)?, join(b)?, join(c)?))
}

impl World {
    /// Builds the world; `log` reports progress.
    ///
    /// # Errors
    /// A provider, an agent or a login of ours failed (oidc-agent failures are kept in
    /// [`World::oidc`] instead, so that our rows still run).
    pub fn build(log: &dyn Fn(&str)) -> anyhow::Result<Self> {
        log("starting 3 test providers (access tokens valid 3600 s, 2 s, 60 s)");
        let (main_idp, short_idp, medium_idp) = start_idps()?;

        log("starting the main agent and logging in `corp` through the loopback flow");
        let env = bench_env();
        write_config(&env, "", &[("corp", &main_idp.issuer)])?;
        let agent = Agent::spawn(&env)?;
        // A grant for the provider floor of row 6: log in a second account, take its refresh
        // token, and make the agent forget it without revoking, so that only we rotate it.
        authctl_ok(&env, &["login", "corp", "--account", "floor"])?;
        let secrets: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            env.data_dir().join("secrets.json"),
        )?)?;
        let floor_rt = secrets["account/floor/refresh_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no refresh token stored for account floor"))?
            .to_owned();
        authctl_ok(&env, &["logout", "floor", "--no-revoke"])?;
        authctl_ok(&env, &["login", "corp"])?;
        let main = AgentEnv { agent, env };

        log(
            "starting the lifecycle agent (refresh_idle_seconds = 1) with accounts `short` and `medium`",
        );
        let env = bench_env();
        write_config(
            &env,
            "refresh_idle_seconds = 1",
            &[("short", &short_idp.issuer), ("medium", &medium_idp.issuer)],
        )?;
        let agent = Agent::spawn(&env)?;
        authctl_ok(&env, &["login", "short"])?;
        authctl_ok(&env, &["login", "medium"])?;
        // Warm both providers' refresh grant (a provider's first one is slow: lazy loading in
        // node), so that row 4's first burst measures the agent, not the provider's warm-up.
        authctl_ok(&env, &["token", "short", "--refresh"])?;
        authctl_ok(&env, &["token", "medium", "--refresh"])?;
        let life = AgentEnv { agent, env };

        log("starting the echo floor");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let token = rt.block_on(async {
            let mut c = authctl_client::connect(&main.env.socket()).await?;
            let t = c
                .raw()
                .get_token(authctl_client::proto::GetTokenRequest {
                    account: "corp".into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            Ok::<_, anyhow::Error>(t)
        })?;
        let echo = EchoProcess::spawn(&token)?;

        log("starting oidc-agent and creating its accounts through oidc-gen's code flow");
        let oidc = OidcAgent::start().and_then(|o| {
            o.add_account(OIDC_MAIN, &main_idp.issuer)?;
            o.add_account(OIDC_60, &medium_idp.issuer)?;
            Ok(o)
        });
        let oidc = oidc.map_err(|e| {
            let msg = format!("{e:#}");
            log(&format!("oidc-agent is unavailable: {msg}"));
            msg
        });
        Ok(Self {
            echo,
            oidc,
            main,
            life,
            floor_rt,
            main_idp,
            short_idp,
            medium_idp,
        })
    }

    /// oidc-agent, or the reason it is unavailable.
    ///
    /// # Errors
    /// It did not start.
    pub fn oidc(&self) -> anyhow::Result<&OidcAgent> {
        self.oidc
            .as_ref()
            .map_err(|e| anyhow!("oidc-agent unavailable: {e}"))
    }
}
