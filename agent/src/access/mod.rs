//! Per-application authorization: the agent knows which program asks (attested by the kernel,
//! never declared), decides by the `[access]` policy, asks the user through a prompt program it
//! starts itself when the policy says `ask`, remembers "allow for a while" grants, and writes one
//! audit line per token handed out or refused and per administrative call.
//!
//! What it cannot stop: a process of the same user that can `ptrace` an allowed program (see
//! `kernel.yama.ptrace_scope`), edit `config.toml`, or replace the agent. It narrows what a program
//! that merely talks to the socket gets.

pub mod audit;
pub mod caller;
mod grants;
pub mod policy;
mod prompt;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

pub use self::caller::{Attestor, Caller};
pub use self::grants::Grant;
use self::grants::Grants;
pub use self::policy::Ask;
use self::prompt::Answer;
use crate::config::access::Decision;
use crate::core::Core;

/// A request the policy refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "access denied: {caller} may not {what} ({by}); see `authctl access log`, and [access] in config.toml"
)]
pub struct Denied {
    pub caller: String,
    pub what: String,
    pub by: String,
}

/// The decision for one request, and what made it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub allowed: bool,
    pub by: String,
}

/// See the module docs. Shared as `Arc<Access>`.
pub struct Access {
    core: Arc<Core>,
    attestor: Attestor,
    grants: Grants,
    audit: audit::Audit,
    /// Prompts on screen, by program and request: concurrent requests share one.
    prompts: Mutex<HashMap<String, watch::Receiver<Option<Answer>>>>,
}

impl Access {
    /// Authorization over `core`: grants in the data directory, the audit log in the state
    /// directory.
    #[must_use]
    pub fn new(core: Arc<Core>) -> Arc<Self> {
        Arc::new(Self {
            attestor: Attestor::new(Attestor::default_cli()),
            grants: Grants::open(core.paths.data_dir.join("grants.json")),
            audit: audit::Audit::start(audit::path(&core.paths.state_dir)),
            prompts: Mutex::new(HashMap::new()),
            core,
        })
    }

    /// Authorization for unit tests: no CLI to recognise, grants in memory, no audit file.
    #[cfg(test)]
    #[must_use]
    pub fn for_tests(core: Arc<Core>) -> Arc<Self> {
        Arc::new(Self {
            attestor: Attestor::new(Vec::new()),
            grants: Grants::in_memory(),
            audit: audit::Audit::discard(),
            prompts: Mutex::new(HashMap::new()),
            core,
        })
    }

    /// Attests the process `pid` of `ids` (uid, gid), pinned by `pidfd`.
    #[must_use]
    pub fn attest(
        &self,
        pid: Option<i32>,
        ids: (u32, u32),
        pidfd: Option<&std::os::fd::OwnedFd>,
    ) -> Caller {
        let hash = self.core.config().access.hash_executables;
        self.attestor.attest(pid, ids, pidfd, hash)
    }

    /// Decides `ask` from `caller`: by the policy, a remembered grant, or the user's answer.
    pub async fn authorize(&self, caller: &Caller, ask: Ask<'_>) -> Verdict {
        let config = self.core.config();
        let settings = &config.access;
        let program = caller.program();
        let (decision, by) = policy::decide(settings, program, ask);
        match decision {
            Decision::Allow => Verdict {
                allowed: true,
                by: by.to_string(),
            },
            Decision::Deny => Verdict {
                allowed: false,
                by: by.to_string(),
            },
            Decision::Ask => {
                let now = self.core.now();
                if let Ask::Token {
                    account,
                    scopes,
                    resource,
                } = ask
                    && let Some(id) = self.grants.find(program, account, scopes, resource, now)
                {
                    return Verdict {
                        allowed: true,
                        by: format!("grant {id}"),
                    };
                }
                if caller.gone {
                    return Verdict {
                        allowed: false,
                        by: "the caller ended before it could be identified".into(),
                    };
                }
                let answer = self.prompt(caller, ask, settings).await;
                self.verdict(answer, program, ask, now, settings.remember_seconds)
            }
        }
    }

    fn verdict(
        &self,
        answer: Answer,
        program: &caller::Program,
        ask: Ask<'_>,
        now: i64,
        remember: u64,
    ) -> Verdict {
        let (allowed, by) = match answer {
            Answer::AllowForAWhile => match ask {
                Ask::Token {
                    account,
                    scopes,
                    resource,
                } => {
                    let until = now.saturating_add(i64::try_from(remember).unwrap_or(i64::MAX));
                    let id = self
                        .grants
                        .add(program, (account, scopes, resource), now, until);
                    (true, format!("prompt: allowed for a while (grant {id})"))
                }
                Ask::Admin { .. } => (true, "prompt: allowed".to_owned()),
            },
            Answer::AllowOnce => (true, "prompt: allowed once".to_owned()),
            Answer::Deny => (false, "prompt: denied".to_owned()),
            Answer::Unanswered(why) => (false, format!("prompt: {why}")),
        };
        Verdict { allowed, by }
    }

    /// Asks the user, once for every concurrent request of the same program for the same thing.
    async fn prompt(
        &self,
        caller: &Caller,
        ask: Ask<'_>,
        settings: &crate::config::access::AccessSettings,
    ) -> Answer {
        let what = describe(ask);
        let p = caller.program();
        let key = format!("{}|{:?}|{:?}|{}", p.exe, p.script, p.unit, what);
        let mut rx = {
            let mut prompts = self.prompts.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(rx) = prompts.get(&key) {
                rx.clone()
            } else {
                let (tx, rx) = watch::channel(None);
                prompts.insert(key.clone(), rx.clone());
                let Some(program) = prompt::program(settings.prompt_program.as_deref()) else {
                    prompts.remove(&key);
                    return Answer::Unanswered(
                        "no prompt program (install a pinentry, or set [access] prompt_program)"
                            .into(),
                    );
                };
                let chain = caller.chain();
                let description = format!(
                    "{} asks to {what}.{}\n\nAllow it?",
                    caller.describe(),
                    if chain.is_empty() {
                        String::new()
                    } else {
                        format!("\nStarted by: {chain}")
                    }
                );
                let remember = Duration::from_secs(settings.remember_seconds);
                let timeout = Duration::from_secs(settings.prompt_timeout_seconds);
                tokio::spawn(async move {
                    let answer = prompt::ask(&program, &description, remember, timeout).await;
                    let _ = tx.send(Some(answer));
                });
                rx
            }
        };
        let answer = rx
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|a| a.clone())
            .unwrap_or_else(|| Answer::Unanswered("the prompt ended without an answer".into()));
        self.prompts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        answer
    }

    /// Writes the audit line of a request.
    pub fn record(&self, caller: &Arc<Caller>, ask: Ask<'_>, verdict: &Verdict, outcome: String) {
        let (kind, account, scopes, resource, action) = match ask {
            Ask::Token {
                account,
                scopes,
                resource,
            } => ("token", account, scopes.to_vec(), resource, ""),
            Ask::Admin { action } => ("admin", "", Vec::new(), "", action),
        };
        self.audit.record(
            audit::Entry {
                time: std::time::SystemTime::now(),
                kind,
                account: account.to_owned(),
                scopes,
                resource: resource.to_owned(),
                action: action.to_owned(),
                decision: if verdict.allowed { "allow" } else { "deny" },
                by: verdict.by.clone(),
                outcome,
                repeated: 0,
                caller: Arc::clone(caller),
            },
            self.core.config().access.audit_log_max_bytes,
        );
    }

    /// The refusal of `ask`, as an error.
    #[must_use]
    pub fn denied(caller: &Caller, ask: Ask<'_>, verdict: &Verdict) -> Denied {
        Denied {
            caller: caller.describe(),
            what: describe(ask),
            by: verdict.by.clone(),
        }
    }

    /// Where the audit log is written.
    #[must_use]
    pub fn audit_path(&self) -> std::path::PathBuf {
        audit::path(&self.core.paths.state_dir)
    }

    /// The grants in force.
    #[must_use]
    pub fn grants(&self) -> Vec<Grant> {
        self.grants.list(self.core.now())
    }

    /// Revokes grants (`None`: all); returns how many went.
    pub fn revoke(&self, ids: Option<&[u64]>) -> usize {
        self.grants.revoke(ids)
    }
}

/// What a request asks, in words: "have a token of account `corp`", "add provider x".
fn describe(ask: Ask<'_>) -> String {
    match ask {
        Ask::Token {
            account,
            scopes,
            resource,
        } => {
            let mut s = format!("have a token of account `{account}`");
            if !scopes.is_empty() {
                let _ = write!(s, " with scopes `{}`", scopes.join(" "));
            }
            if !resource.is_empty() {
                let _ = write!(s, " for resource `{resource}`");
            }
            s
        }
        Ask::Admin { action } => action.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::access::Rule;
    use crate::oauth::token::HttpTokenEndpoint;
    use crate::store::memory::MemoryStore;

    fn access(settings: crate::config::access::AccessSettings) -> Arc<Access> {
        let config = Config {
            access: settings,
            ..Config::default()
        };
        let core = Core::for_tests(
            config,
            Arc::new(MemoryStore::default()),
            Arc::new(HttpTokenEndpoint::new(Duration::from_secs(1))),
        );
        Access::for_tests(core)
    }

    fn caller(exe: &str) -> Caller {
        Caller {
            process: caller::Program {
                pid: 4242,
                exe: exe.into(),
                ..caller::Program::default()
            },
            ..Caller::default()
        }
    }

    fn token(account: &str) -> Ask<'_> {
        Ask::Token {
            account,
            scopes: &[],
            resource: "",
        }
    }

    /// A pinentry that counts its runs in `count` and answers `confirm` after a pause.
    fn counting_pinentry(dir: &std::path::Path, confirm: &str) -> String {
        let path = dir.join("pinentry-counting");
        let count = dir.join("count");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\necho x >> '{}'\necho 'OK hi'\nwhile read -r cmd rest; do\n  case $cmd in\n    CONFIRM) sleep 0.3; echo '{confirm}' ;;\n    BYE) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n",
                count.display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", path.to_str().unwrap()])
            .status()
            .unwrap();
        path.display().to_string()
    }

    fn runs(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("count")).map_or(0, |s| s.lines().count())
    }

    #[tokio::test]
    async fn allow_for_a_while_is_remembered_per_program_and_account() {
        let dir = tempfile::tempdir().unwrap();
        let a = access(crate::config::access::AccessSettings {
            default: Decision::Ask,
            prompt_program: Some(counting_pinentry(dir.path(), "OK")),
            ..Default::default()
        });
        let v = a.authorize(&caller("/usr/bin/tool"), token("corp")).await;
        assert!(v.allowed && v.by.contains("grant 1"), "{v:?}");
        // Remembered: no second prompt.
        let v = a.authorize(&caller("/usr/bin/tool"), token("corp")).await;
        assert_eq!(v.by, "grant 1");
        assert_eq!(runs(dir.path()), 1);
        // Another program, or another account, is asked again.
        a.authorize(&caller("/usr/bin/other"), token("corp")).await;
        a.authorize(&caller("/usr/bin/tool"), token("home")).await;
        assert_eq!(runs(dir.path()), 3);
        assert_eq!(a.grants().len(), 3);
        assert_eq!(a.revoke(Some(&[1])), 1);
        assert_eq!(a.grants().len(), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_of_one_program_share_one_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let a = access(crate::config::access::AccessSettings {
            default: Decision::Ask,
            prompt_program: Some(counting_pinentry(dir.path(), "ERR 83886194 Not confirmed")),
            ..Default::default()
        });
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let a = Arc::clone(&a);
            all.spawn(async move { a.authorize(&caller("/usr/bin/tool"), token("corp")).await });
        }
        while let Some(v) = all.join_next().await {
            let v = v.unwrap();
            assert!(v.allowed && v.by == "prompt: allowed once", "{v:?}");
        }
        assert_eq!(runs(dir.path()), 1);
        // "Allow once" is not remembered.
        assert!(a.grants().is_empty());
    }

    #[tokio::test]
    async fn rules_decide_before_prompts_and_unknown_callers_are_never_asked() {
        let dir = tempfile::tempdir().unwrap();
        let a = access(crate::config::access::AccessSettings {
            default: Decision::Ask,
            rules: vec![
                Rule {
                    exe: Some("/usr/bin/git".into()),
                    account: Some("github".into()),
                    decision: Decision::Allow,
                    ..Rule::default()
                },
                Rule {
                    exe: Some("/tmp/*".into()),
                    decision: Decision::Deny,
                    ..Rule::default()
                },
            ],
            prompt_program: Some(counting_pinentry(dir.path(), "OK")),
            ..Default::default()
        });
        let v = a.authorize(&caller("/usr/bin/git"), token("github")).await;
        assert_eq!((v.allowed, v.by.as_str()), (true, "rule 1"));
        let v = a.authorize(&caller("/tmp/x/evil"), token("github")).await;
        assert_eq!((v.allowed, v.by.as_str()), (false, "rule 2"));
        let gone = Caller {
            gone: true,
            ..caller("/usr/bin/git")
        };
        let v = a.authorize(&gone, token("corp")).await;
        assert!(!v.allowed);
        assert_eq!(runs(dir.path()), 0);
        let denied = Access::denied(&gone, token("corp"), &v).to_string();
        assert!(
            denied.contains("/usr/bin/git") && denied.contains("`corp`"),
            "{denied}"
        );
    }

    #[tokio::test]
    async fn no_prompt_program_denies_with_the_reason() {
        let a = access(crate::config::access::AccessSettings {
            default: Decision::Ask,
            prompt_program: Some("/nonexistent/pinentry".into()),
            ..Default::default()
        });
        let v = a.authorize(&caller("/usr/bin/tool"), token("corp")).await;
        assert!(!v.allowed);
        assert!(v.by.contains("/nonexistent/pinentry"), "{}", v.by);
    }
}
