//! Process hardening: private files, no core dumps, no same-user `ptrace` attach where the platform
//! allows it.

/// The real uid of this process.
#[must_use]
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// Keeps secrets out of core dumps and away from same-user `ptrace` attach where the platform
/// allows it (Linux `PR_SET_DUMPABLE`), and makes every file the agent creates private (umask 077).
pub fn harden_process() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    raise_open_files_limit();
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!(error = %e, "could not disable core dumps (prctl PR_SET_DUMPABLE failed)");
    }
}

/// Raises the soft limit of open files to the hard one: a flood of connections then meets the
/// agent's own connection caps long before the kernel's `EMFILE`.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "could not raise RLIMIT_NOFILE");
        }
    }
}
