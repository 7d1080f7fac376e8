//! The `[access]` table: which programs may have which tokens, and who may change the agent.
//!
//! ```toml
//! [access]
//! default = "ask"                 # "allow" (the default) | "ask" | "deny"
//! admin_default = "ask"           # provider add/remove, logout, reload, shutdown, zero-config login
//! prompt_program = "pinentry-gnome3"
//!
//! [[access.rules]]
//! exe = "/usr/bin/git"            # or exe_sha256 = "…", or unit = "app-foo.service"
//! account = "github"              # optional: one account (default: any)
//! decision = "allow"
//! ```

use serde::{Deserialize, Serialize};

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Served.
    #[default]
    Allow,
    /// The user is asked through the prompt program.
    Ask,
    /// Refused.
    Deny,
}

/// One rule: what it matches (every key given must match) and its decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The program's executable, as the kernel names it (`/proc/PID/exe`). A trailing `*` matches
    /// any path that starts with the rest (`/opt/tools/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The SHA-256 of the executable, hex (the program's identity wherever it lives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_sha256: Option<String>,
    /// The systemd unit the program runs in (from `/proc/PID/cgroup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For a script: its path (the argument its interpreter was started with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Token rules only: the account (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Token rules only: the request must ask these scopes (a subset of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Token rules only: the request's RFC 8707 resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub decision: Decision,
}

/// The `[access]` table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessSettings {
    /// For a token no rule matches.
    pub default: Decision,
    /// For an administrative call no admin rule matches.
    pub admin_default: Decision,
    /// Token rules, the first that matches decides.
    pub rules: Vec<Rule>,
    /// Administrative rules (provider add/remove/replace, logout, reload, shutdown, zero-config
    /// login), the first that matches decides: they can send tokens elsewhere.
    pub admin_rules: Vec<Rule>,
    /// The pinentry program that asks the user (`ask`): a path or a name on `PATH`. Unset: the
    /// first of `pinentry-gnome3`, `pinentry-qt`, `pinentry-gtk-2`, `pinentry` found on `PATH`.
    pub prompt_program: Option<String>,
    /// How long a prompt waits for an answer before the request is refused.
    pub prompt_timeout_seconds: u64,
    /// How long "Allow for a while" lasts.
    pub remember_seconds: u64,
    /// Hash each caller's executable (SHA-256, once per executable and modification) so rules can
    /// name `exe_sha256` and the audit log records it.
    pub hash_executables: bool,
    /// The audit log is rotated (to `access.log.1`) past this size.
    pub audit_log_max_bytes: u64,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            default: Decision::Allow,
            admin_default: Decision::Allow,
            rules: Vec::new(),
            admin_rules: Vec::new(),
            prompt_program: None,
            prompt_timeout_seconds: 60,
            remember_seconds: 8 * 3600,
            hash_executables: false,
            audit_log_max_bytes: 4 << 20,
        }
    }
}

impl Rule {
    /// Whether the rule names the program at all (a rule that matches every program is allowed,
    /// but must say so with `exe = "*"`).
    #[must_use]
    pub fn names_a_program(&self) -> bool {
        self.exe.is_some()
            || self.exe_sha256.is_some()
            || self.unit.is_some()
            || self.script.is_some()
    }
}
