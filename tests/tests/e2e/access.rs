//! Per-application authorization (issue 13), against the real binaries: programs are told apart
//! by what the kernel says of them (copies of a client at different paths, a script and its
//! interpreter), `ask` goes through a scripted pinentry the agent starts itself, "allow for a
//! while" is remembered and expires, concurrent requests share one prompt, administrative calls
//! have their own policy, and every decision is in the audit log.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use authctl_tests::{Run, TestEnv, bin};

use super::{json, setup};

/// The canonical path of `p` as a string (what `/proc/PID/exe` says).
fn real(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

/// A copy of the `authctl` binary at `rel` in the test's directory: a client program the agent
/// does not take for its own CLI, so requests are attributed to the copy itself.
fn client_copy(env: &TestEnv, rel: &str) -> PathBuf {
    let path = env.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::copy(bin("authctl"), &path).unwrap();
    path
}

fn run(env: &TestEnv, program: &Path, args: &[&str]) -> Run {
    env.command(program)
        .args(args)
        .output()
        .expect("run the client")
        .into()
}

/// Appends `table` (an `[access]` table) to config.toml and reloads the agent.
fn set_access(env: &TestEnv, table: &str) {
    let mut text = std::fs::read_to_string(env.config_file()).unwrap();
    text.push('\n');
    text.push_str(table);
    std::fs::write(env.config_file(), text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
}

/// A pinentry for the agent to start: it counts its runs in `prompts`, keeps each description in
/// `desc`, and at `CONFIRM` answers as the file `answer` says (`allow`: OK, "allow for a while";
/// `once`: the third button; `deny`: Cancel; `silent`: never), after `delay` seconds.
struct Pinentry {
    dir: PathBuf,
    path: PathBuf,
}

impl Pinentry {
    fn new(env: &TestEnv, delay: &str) -> Self {
        let dir = env.path("pinentry");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pinentry-scripted");
        let d = dir.display();
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n\
                 echo run >> '{d}/prompts'\n\
                 echo 'OK Pleased to meet you'\n\
                 while read -r cmd rest; do\n\
                 \x20 case $cmd in\n\
                 \x20   SETDESC) printf '%s\\n' \"$rest\" >> '{d}/desc'; echo OK ;;\n\
                 \x20   CONFIRM) sleep {delay}\n\
                 \x20     case $(cat '{d}/answer') in\n\
                 \x20       allow) echo OK ;;\n\
                 \x20       once) echo 'ERR 83886194 Not confirmed <Pinentry>' ;;\n\
                 \x20       deny) echo 'ERR 83886179 Operation cancelled <Pinentry>' ;;\n\
                 \x20       *) sleep 60 ;;\n\
                 \x20     esac ;;\n\
                 \x20   BYE) echo OK; exit 0 ;;\n\
                 \x20   *) echo OK ;;\n\
                 \x20 esac\n\
                 done\n"
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", path.to_str().unwrap()])
            .status()
            .unwrap();
        let p = Self { dir, path };
        p.answer("deny");
        p
    }

    fn answer(&self, a: &str) {
        std::fs::write(self.dir.join("answer"), a).unwrap();
    }

    fn prompts(&self) -> usize {
        std::fs::read_to_string(self.dir.join("prompts")).map_or(0, |s| s.lines().count())
    }

    fn descriptions(&self) -> String {
        std::fs::read_to_string(self.dir.join("desc")).unwrap_or_default()
    }
}

/// The audit log's entries.
fn audit(env: &TestEnv) -> Vec<serde_json::Value> {
    // Written by a task of the agent's own: wait for the line of the last request.
    std::thread::sleep(Duration::from_millis(200));
    std::fs::read_to_string(env.path("state/authctl/access.log"))
        .unwrap_or_default()
        .lines()
        .map(json)
        .collect()
}

#[test]
fn two_copies_of_a_client_are_told_apart_by_the_kernel_not_by_their_names() {
    let (env, _idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let allowed = client_copy(&env, "apps/allowed/client");
    let denied = client_copy(&env, "apps/denied/client");
    set_access(
        &env,
        &format!(
            "[access]\ndefault = \"deny\"\n\n[[access.rules]]\nexe = \"{}\"\naccount = \"corp\"\ndecision = \"allow\"\n",
            real(&allowed)
        ),
    );

    let child = env
        .command(&allowed)
        .args(["token", "corp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let allowed_pid = child.id();
    let r: Run = child.wait_with_output().unwrap().into();
    r.ok();
    assert!(!r.stdout.trim().is_empty());

    let r = run(&env, &denied, &["token", "corp"]);
    r.expect_code(8);
    assert!(r.stderr.contains("access denied"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&real(&denied)),
        "names the program: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains("`corp`") && r.stderr.contains("default"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("ey"), "no token: {}", r.stdout);

    // A name it gives itself changes nothing: argv[0] of the allowed program.
    let r: Run = env
        .command(Path::new("/bin/bash"))
        .args([
            "-c",
            &format!(
                "exec -a '{}' '{}' token corp",
                real(&allowed),
                denied.display()
            ),
        ])
        .output()
        .unwrap()
        .into();
    r.expect_code(8);
    // The rule is for account corp only.
    let r = run(&env, &allowed, &["token", "nope"]);
    r.expect_code(8);

    // The audit log, field by field.
    let lines = audit(&env);
    let handed = lines
        .iter()
        .find(|l| l["caller"]["process"]["pid"] == allowed_pid)
        .unwrap_or_else(|| panic!("no line for pid {allowed_pid}: {lines:?}"));
    let time = handed["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z'),
        "RFC 3339 UTC: {time}"
    );
    assert_eq!(handed["kind"], "token");
    assert_eq!(handed["account"], "corp");
    assert_eq!(handed["decision"], "allow");
    assert_eq!(handed["by"], "rule 1");
    assert_eq!(handed["outcome"], "handed out");
    let caller = &handed["caller"];
    let me = std::fs::metadata(env.path("home")).unwrap();
    assert_eq!(caller["uid"], me.uid());
    assert_eq!(caller["gid"], me.gid());
    assert_eq!(caller["gone"], false);
    assert_eq!(caller["process"]["exe"], real(&allowed).as_str());
    assert!(
        caller["process"]["start_time"].as_u64().is_some(),
        "{caller}"
    );
    assert!(caller["on_behalf_of"].is_null(), "a copy is not the CLI");
    // Its parent: this test.
    assert_eq!(caller["parents"][0][0], std::process::id());
    assert_eq!(
        caller["parents"][0][1],
        real(&std::env::current_exe().unwrap()).as_str()
    );
    let refused: Vec<_> = lines.iter().filter(|l| l["decision"] == "deny").collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    for (l, exe, account) in [
        (refused[0], &denied, "corp"),
        (refused[1], &denied, "corp"),
        (refused[2], &allowed, "nope"),
    ] {
        assert_eq!(l["outcome"], "refused");
        assert_eq!(l["by"], "default");
        assert_eq!(l["account"], account);
        assert_eq!(l["caller"]["process"]["exe"], real(exe).as_str());
    }

    // The log is private, and `access log` reads it.
    let log = env.path("state/authctl/access.log");
    assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(log.parent().unwrap()).unwrap().mode() & 0o777,
        0o700
    );
    let r = env.authctl(&["access", "log", "--denied", "--json"]);
    r.ok();
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    let r = env.authctl(&["access", "log", "--since", "10m"]);
    r.ok();
    assert!(
        r.stdout
            .contains(&format!("{} (pid {allowed_pid})", real(&allowed))),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("[rule 1]  handed out"), "{}", r.stdout);
    let r = env.authctl(&[
        "access",
        "log",
        "--since",
        "2000-01-01T00:00:00Z",
        "--account",
        "nope",
    ]);
    r.ok();
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn ask_goes_through_the_prompt_and_allow_for_a_while_is_remembered_until_it_expires() {
    let (env, _idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let app = client_copy(&env, "apps/app");
    let pin = Pinentry::new(&env, "0");
    set_access(
        &env,
        &format!(
            "[access]\ndefault = \"ask\"\nprompt_program = \"{}\"\nprompt_timeout_seconds = 2\nremember_seconds = 3\n",
            pin.path.display()
        ),
    );

    // Deny.
    let r = run(&env, &app, &["token", "corp"]);
    r.expect_code(8);
    assert!(r.stderr.contains("prompt: denied"), "{}", r.stderr);
    assert_eq!(pin.prompts(), 1);
    let desc = pin.descriptions();
    assert!(desc.contains(&real(&app)), "names the program: {desc}");
    assert!(desc.contains("pid ") && desc.contains("`corp`"), "{desc}");
    assert!(
        desc.contains("Started by:"),
        "names the parent chain: {desc}"
    );

    // Allow once: asked each time.
    pin.answer("once");
    run(&env, &app, &["token", "corp"]).ok();
    run(&env, &app, &["token", "corp"]).ok();
    assert_eq!(pin.prompts(), 3);
    assert!(
        env.authctl(&["access", "list", "--json"])
            .stdout
            .contains("[]")
    );

    // Allow for a while: remembered, listed, not asked again until it expires.
    pin.answer("allow");
    run(&env, &app, &["token", "corp"]).ok();
    pin.answer("deny");
    run(&env, &app, &["token", "corp"]).ok();
    assert_eq!(pin.prompts(), 4, "the grant answered");
    let grants = json(&env.authctl(&["access", "list", "--json"]).stdout);
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants[0]["exe"], real(&app).as_str());
    assert_eq!(grants[0]["account"], "corp");
    let granted = grants[0]["granted_at"].as_i64().unwrap();
    assert_eq!(grants[0]["expires_at"].as_i64().unwrap() - granted, 3);
    let id = grants[0]["id"].to_string();
    assert!(
        audit(&env)
            .iter()
            .any(|l| l["by"] == format!("grant {id}") && l["outcome"] == "handed out"),
        "the grant is named in the log"
    );
    // Another program is asked (and denied).
    let other = client_copy(&env, "apps/other");
    run(&env, &other, &["token", "corp"]).expect_code(8);
    assert_eq!(pin.prompts(), 5);
    // Expired: asked again.
    std::thread::sleep(Duration::from_millis(3200));
    run(&env, &app, &["token", "corp"]).expect_code(8);
    assert_eq!(pin.prompts(), 6);
    assert!(
        env.authctl(&["access", "list", "--json"])
            .stdout
            .contains("[]")
    );

    // A revoked grant is asked again at once.
    pin.answer("allow");
    run(&env, &app, &["token", "corp"]).ok();
    let r = env.authctl(&["access", "list"]);
    assert!(r.stdout.contains(&real(&app)), "{}", r.stdout);
    env.authctl(&["access", "revoke", "--all"]).ok();
    pin.answer("deny");
    run(&env, &app, &["token", "corp"]).expect_code(8);
    assert_eq!(pin.prompts(), 8);
    env.authctl(&["access", "revoke", "999"]).expect_code(5);

    // Nobody answers: refused when the prompt times out, saying so.
    pin.answer("silent");
    let t = Instant::now();
    let r = run(&env, &app, &["token", "corp"]);
    r.expect_code(8);
    assert!(
        r.stderr.contains("nobody answered the prompt within 2 s"),
        "{}",
        r.stderr
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    // No prompt program at all: refused, naming what to install.
    let mut text = std::fs::read_to_string(env.config_file()).unwrap();
    text = text.replace(&pin.path.display().to_string(), "/nonexistent/pinentry");
    std::fs::write(env.config_file(), text).unwrap();
    env.authctl(&["agent", "reload"]).ok();
    let r = run(&env, &app, &["token", "corp"]);
    r.expect_code(8);
    assert!(r.stderr.contains("/nonexistent/pinentry"), "{}", r.stderr);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn concurrent_requests_of_one_program_share_one_prompt() {
    let (env, _idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let app = client_copy(&env, "apps/app");
    let pin = Pinentry::new(&env, "1");
    pin.answer("once");
    set_access(
        &env,
        &format!(
            "[access]\ndefault = \"ask\"\nprompt_program = \"{}\"\n",
            pin.path.display()
        ),
    );
    let children: Vec<_> = (0..6)
        .map(|_| {
            env.command(&app)
                .args(["token", "corp"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let r: Run = c.wait_with_output().unwrap().into();
        r.ok();
    }
    assert_eq!(pin.prompts(), 1, "one prompt for six requests");
    let answered = audit(&env)
        .iter()
        .filter(|l| l["by"] == "prompt: allowed once")
        .count();
    assert_eq!(answered, 6);
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn authctl_token_in_a_script_is_the_scripts_request() {
    let (env, _idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let bash = real(Path::new("/bin/bash"));
    let dir = env.path("scripts");
    std::fs::create_dir_all(&dir).unwrap();
    let body = "\"$AUTHCTL\" token corp\nstatus=$?\nexit $status\n";
    for name in ["deploy.sh", "other.sh"] {
        std::fs::write(dir.join(name), format!("#!/bin/bash\n{body}")).unwrap();
        std::process::Command::new("chmod")
            .args(["+x", dir.join(name).to_str().unwrap()])
            .status()
            .unwrap();
    }
    let deploy = real(&dir.join("deploy.sh"));
    set_access(
        &env,
        &format!(
            "[access]\ndefault = \"deny\"\n\n[[access.rules]]\nexe = \"{bash}\"\nscript = \"{deploy}\"\ndecision = \"allow\"\n"
        ),
    );
    let script = |args: &[&str]| -> Run {
        env.command(Path::new("/bin/bash"))
            .args(args)
            .current_dir(&dir)
            .env("AUTHCTL", bin("authctl"))
            .output()
            .unwrap()
            .into()
    };
    let r = script(&["deploy.sh"]);
    r.ok();
    assert!(!r.stdout.trim().is_empty());
    // Run through its shebang: the same script.
    let r: Run = env
        .command(&dir.join("deploy.sh"))
        .current_dir(&dir)
        .env("AUTHCTL", bin("authctl"))
        .output()
        .unwrap()
        .into();
    r.ok();
    let r = script(&["other.sh"]);
    r.expect_code(8);
    assert!(
        r.stderr.contains("other.sh") && r.stderr.contains("through authctl"),
        "{}",
        r.stderr
    );
    // Naming the allowed script as an argument does not make inline code that script.
    script(&["-c", "\"$AUTHCTL\" token corp; exit $?", &deploy]).expect_code(8);

    let lines = audit(&env);
    let ok = lines
        .iter()
        .find(|l| l["kind"] == "token" && l["decision"] == "allow")
        .expect("an allowed line");
    assert_eq!(
        ok["caller"]["process"]["exe"],
        real(&bin("authctl")).as_str()
    );
    assert_eq!(ok["caller"]["on_behalf_of"]["exe"], bash.as_str());
    assert_eq!(ok["caller"]["on_behalf_of"]["script"], deploy.as_str());
    assert_eq!(ok["caller"]["parents"][0][1], bash.as_str());
    assert_eq!(ok["by"], "rule 1");
    env.authctl(&["agent", "stop"]).ok();
}

#[test]
fn administrative_calls_have_their_own_policy() {
    let (env, idp) = setup();
    env.authctl(&["login", "corp"]).ok();
    let admin = client_copy(&env, "apps/admin/authctl-admin");
    set_access(
        &env,
        &format!(
            "[access]\nadmin_default = \"deny\"\n\n[[access.admin_rules]]\nexe = \"{}\"\ndecision = \"allow\"\n",
            real(&admin)
        ),
    );
    // Tokens are still served (default allow), but nothing that could send them elsewhere.
    assert!(!env.token(&["corp"]).is_empty());
    for (args, what) in [
        (
            vec![
                "provider",
                "add",
                "evil",
                "--issuer",
                idp.issuer.as_str(),
                "--client-id",
                "x",
            ],
            "add provider evil",
        ),
        (
            vec![
                "provider",
                "add",
                "corp",
                "--replace",
                "--issuer",
                "https://evil.example",
                "--client-id",
                "x",
            ],
            "replace provider corp",
        ),
        (vec!["provider", "remove", "corp"], "remove provider corp"),
        (vec!["logout", "corp"], "log out of account corp"),
        (
            vec!["login", "https://127.0.0.1:9/mcp", "--no-browser"],
            "zero-configuration",
        ),
        (vec!["agent", "reload"], "reload the configuration"),
        (vec!["agent", "stop"], "stop the agent"),
    ] {
        let r = env.authctl(&args);
        r.expect_code(8);
        assert!(r.stderr.contains(what), "{args:?}: {}", r.stderr);
    }
    // Nothing changed.
    let status = env.status_json();
    assert_eq!(status["accounts"][0]["name"], "corp", "{status}");
    let config = std::fs::read_to_string(env.config_file()).unwrap();
    assert!(!config.contains("evil"), "{config}");
    // The program the rule names may.
    run(&env, &admin, &["agent", "reload"]).ok();
    let lines = audit(&env);
    let admin_lines: Vec<_> = lines.iter().filter(|l| l["kind"] == "admin").collect();
    // The set-up's `provider add` and the reload that set the policy, seven refusals, the
    // allowed reload.
    assert_eq!(admin_lines.len(), 10, "{admin_lines:?}");
    assert_eq!(admin_lines[0]["action"], "add provider corp");
    assert_eq!(admin_lines[1]["by"], "default");
    assert!(
        admin_lines[2..9]
            .iter()
            .all(|l| l["decision"] == "deny" && l["outcome"] == "refused")
    );
    let last = admin_lines[9];
    assert_eq!(last["action"], "reload the configuration");
    assert_eq!(
        (&last["decision"], &last["by"], &last["outcome"]),
        (&"allow".into(), &"rule 1".into(), &"done".into())
    );
    run(&env, &admin, &["agent", "stop"]).ok();
}
