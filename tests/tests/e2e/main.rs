//! End-to-end: the real `authctl` and `authctl-agent` against a real OpenID provider
//! (`oidc-provider`), through real loopback logins completed by a scripted browser.

mod access;
mod basics;
mod callback;
mod checks;
mod config;
mod firstcontact;
mod hostile;
mod interop;
mod lifecycle;
mod login;
mod mcp;
mod neighbours;
mod service;
mod socket;
mod tools;

use authctl_tests::{Idp, IdpOptions, TestEnv};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Starts an IdP and a background agent with the test provider added as `corp`.
fn setup() -> (TestEnv, Idp) {
    setup_with(IdpOptions::default(), "")
}

/// As [`setup`], with IdP options and an `[agent]` table body for config.toml.
fn setup_with(opts: IdpOptions, agent_config: &str) -> (TestEnv, Idp) {
    let idp = Idp::start(opts);
    let env = TestEnv::new();
    if !agent_config.is_empty() {
        std::fs::create_dir_all(env.config_file().parent().unwrap()).unwrap();
        std::fs::write(env.config_file(), format!("[agent]\n{agent_config}\n")).unwrap();
    }
    env.authctl(&["agent", "start"]).ok();
    env.add_provider("corp", &idp);
    (env, idp)
}
