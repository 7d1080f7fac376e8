//! Process hardening, the one module allowed `unsafe` (plain libc calls with no pointers kept).
#![allow(unsafe_code)]

/// The real uid of this process.
#[must_use]
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Keeps secrets out of core dumps and away from same-user `ptrace` attach where the platform
/// allows it (Linux `PR_SET_DUMPABLE`), and makes every file the agent creates private (umask 077).
pub fn harden_process() {
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!("could not disable core dumps (prctl PR_SET_DUMPABLE failed)");
        }
    }
}
