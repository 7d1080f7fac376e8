//! The policy: which rule (or the default) decides a request from a program. Pure; unit-tested.

use super::caller::Program;
use crate::config::access::{AccessSettings, Decision, Rule};

/// What is asked.
#[derive(Debug, Clone, Copy)]
pub enum Ask<'a> {
    /// A token of an account (its scopes and resource, if downscoped).
    Token {
        account: &'a str,
        scopes: &'a [String],
        resource: &'a str,
    },
    /// An administrative call (`provider add`, `logout`, …), named.
    Admin { action: &'a str },
}

/// What decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The n-th rule (1-based) of `rules` or `admin_rules`.
    Rule(usize),
    /// `default` or `admin_default`.
    Default,
}

impl std::fmt::Display for By {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rule(n) => write!(f, "rule {n}"),
            Self::Default => f.write_str("default"),
        }
    }
}

/// The decision for `ask` from `program`: the first matching rule's, else the default.
#[must_use]
pub fn decide(settings: &AccessSettings, program: &Program, ask: Ask<'_>) -> (Decision, By) {
    let (rules, default) = match ask {
        Ask::Token { .. } => (&settings.rules, settings.default),
        Ask::Admin { .. } => (&settings.admin_rules, settings.admin_default),
    };
    rules
        .iter()
        .enumerate()
        .find(|(_, r)| matches(r, program, ask))
        .map_or((default, By::Default), |(i, r)| {
            (r.decision, By::Rule(i + 1))
        })
}

fn matches(rule: &Rule, p: &Program, ask: Ask<'_>) -> bool {
    let exe_ok = rule
        .exe
        .as_deref()
        .is_none_or(|pattern| path_matches(pattern, &p.exe));
    let script_ok = rule.script.as_deref().is_none_or(|pattern| {
        p.script
            .as_deref()
            .is_some_and(|s| path_matches(pattern, s))
    });
    let digest_ok = rule.exe_sha256.as_deref().is_none_or(|d| {
        p.exe_sha256
            .as_deref()
            .is_some_and(|have| have.eq_ignore_ascii_case(d))
    });
    let unit_ok = rule
        .unit
        .as_deref()
        .is_none_or(|u| p.unit.as_deref() == Some(u));
    let what_ok = match ask {
        Ask::Token {
            account,
            scopes,
            resource,
        } => {
            rule.account
                .as_deref()
                .is_none_or(|a| a == "*" || a == account)
                && rule.scopes.as_ref().is_none_or(|allowed| {
                    !scopes.is_empty() && scopes.iter().all(|s| allowed.contains(s))
                })
                && rule.resource.as_deref().is_none_or(|r| r == resource)
        }
        // Admin rules name programs only.
        Ask::Admin { .. } => true,
    };
    exe_ok && script_ok && digest_ok && unit_ok && what_ok
}

/// `*` matches any path, `/dir/*` any path under `/dir/`, anything else the exact path. An
/// unknown path (empty) matches nothing but `*`.
fn path_matches(pattern: &str, path: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if path.is_empty() {
        return false;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(exe: &str) -> Program {
        Program {
            pid: 1,
            exe: exe.into(),
            ..Program::default()
        }
    }

    fn token<'a>(account: &'a str, scopes: &'a [String]) -> Ask<'a> {
        Ask::Token {
            account,
            scopes,
            resource: "",
        }
    }

    fn rule(exe: &str, decision: Decision) -> Rule {
        Rule {
            exe: Some(exe.into()),
            decision,
            ..Rule::default()
        }
    }

    #[test]
    fn the_first_matching_rule_decides_else_the_default() {
        let s = AccessSettings {
            default: Decision::Ask,
            rules: vec![
                rule("/usr/bin/git", Decision::Allow),
                rule("/opt/bad/*", Decision::Deny),
                rule("*", Decision::Allow),
            ],
            ..AccessSettings::default()
        };
        assert_eq!(
            decide(&s, &program("/usr/bin/git"), token("corp", &[])),
            (Decision::Allow, By::Rule(1))
        );
        assert_eq!(
            decide(&s, &program("/opt/bad/x"), token("corp", &[])),
            (Decision::Deny, By::Rule(2))
        );
        let only = AccessSettings {
            default: Decision::Ask,
            rules: vec![rule("/usr/bin/git", Decision::Allow)],
            ..AccessSettings::default()
        };
        assert_eq!(
            decide(&only, &program("/usr/bin/gitx"), token("corp", &[])),
            (Decision::Ask, By::Default),
            "exact paths are exact"
        );
        assert_eq!(
            decide(&only, &program(""), token("corp", &[])),
            (Decision::Ask, By::Default),
            "an unknown program matches no path"
        );
    }

    #[test]
    fn account_scope_and_resource_narrow_a_rule() {
        let mut r = rule("/usr/bin/git", Decision::Allow);
        r.account = Some("github".into());
        r.scopes = Some(vec!["repo".into(), "read:user".into()]);
        let s = AccessSettings {
            default: Decision::Deny,
            rules: vec![r],
            ..AccessSettings::default()
        };
        let git = program("/usr/bin/git");
        let repo = vec!["repo".to_owned()];
        let admin = vec!["admin:org".to_owned()];
        assert_eq!(decide(&s, &git, token("github", &repo)).0, Decision::Allow);
        assert_eq!(decide(&s, &git, token("github", &admin)).0, Decision::Deny);
        assert_eq!(
            decide(&s, &git, token("github", &[])).0,
            Decision::Deny,
            "the account's full token is more than the scopes the rule names"
        );
        assert_eq!(decide(&s, &git, token("corp", &repo)).0, Decision::Deny);
    }

    #[test]
    fn digests_units_and_scripts_identify_programs() {
        let s = AccessSettings {
            default: Decision::Deny,
            rules: vec![
                Rule {
                    exe_sha256: Some("AB".repeat(32)),
                    decision: Decision::Allow,
                    ..Rule::default()
                },
                Rule {
                    unit: Some("backup.service".into()),
                    decision: Decision::Allow,
                    ..Rule::default()
                },
                Rule {
                    exe: Some("/usr/bin/bash".into()),
                    script: Some("/home/u/bin/deploy.sh".into()),
                    decision: Decision::Allow,
                    ..Rule::default()
                },
            ],
            ..AccessSettings::default()
        };
        let mut p = program("/anywhere/tool");
        p.exe_sha256 = Some("ab".repeat(32));
        assert_eq!(
            decide(&s, &p, token("a", &[])),
            (Decision::Allow, By::Rule(1))
        );
        let mut p = program("/usr/bin/x");
        p.unit = Some("backup.service".into());
        assert_eq!(
            decide(&s, &p, token("a", &[])),
            (Decision::Allow, By::Rule(2))
        );
        let mut p = program("/usr/bin/bash");
        p.script = Some("/home/u/bin/deploy.sh".into());
        assert_eq!(
            decide(&s, &p, token("a", &[])),
            (Decision::Allow, By::Rule(3))
        );
        p.script = Some("/tmp/other.sh".into());
        assert_eq!(decide(&s, &p, token("a", &[])).0, Decision::Deny);
    }

    #[test]
    fn admin_calls_have_their_own_rules() {
        let s = AccessSettings {
            default: Decision::Allow,
            admin_default: Decision::Deny,
            admin_rules: vec![rule("/usr/bin/authctl-admin", Decision::Allow)],
            ..AccessSettings::default()
        };
        let ask = Ask::Admin {
            action: "add provider",
        };
        assert_eq!(decide(&s, &program("/usr/bin/x"), ask).0, Decision::Deny);
        assert_eq!(
            decide(&s, &program("/usr/bin/authctl-admin"), ask).0,
            Decision::Allow
        );
        assert_eq!(
            decide(&s, &program("/usr/bin/x"), token("a", &[])).0,
            Decision::Allow
        );
    }
}
