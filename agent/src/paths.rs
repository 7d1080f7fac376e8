//! Where the agent keeps its files. Resolved once at start from the environment (the XDG
//! variables, `AUTHCTL_SOCK`, `AUTHCTL_CONFIG`), so tests and users can relocate everything.

use std::path::{Path, PathBuf};

/// The agent's files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `config.toml`: providers and defaults, human-edited.
    pub config_file: PathBuf,
    /// Account metadata, the embedded secret store and the lock file (0700).
    pub data_dir: PathBuf,
    /// The Unix socket the agent serves on.
    pub socket: PathBuf,
}

impl Paths {
    /// Resolves the paths from the environment: `$AUTHCTL_CONFIG` or
    /// `$XDG_CONFIG_HOME/authctl/config.toml`; `$XDG_DATA_HOME/authctl`; the socket per
    /// [`authctl_proto::socket_path`].
    ///
    /// # Errors
    /// When no home directory can be found to derive them from.
    pub fn from_env() -> Result<Self, String> {
        let dirs = directories::ProjectDirs::from("", "", "authctl")
            .ok_or("no home directory found: set HOME (or XDG_CONFIG_HOME and XDG_DATA_HOME)")?;
        let config_file = std::env::var_os("AUTHCTL_CONFIG")
            .filter(|v| !v.is_empty())
            .map_or_else(|| dirs.config_dir().join("config.toml"), PathBuf::from);
        let socket = authctl_proto::socket_path().ok_or("no runtime directory for the socket")?;
        Ok(Self {
            config_file,
            data_dir: dirs.data_dir().to_path_buf(),
            socket,
        })
    }

    /// The metadata file of accounts (no secrets in it).
    #[must_use]
    pub fn accounts_file(&self) -> PathBuf {
        self.data_dir.join("accounts.json")
    }

    /// The embedded secret store, used where no OS keyring answers.
    #[must_use]
    pub fn secrets_file(&self) -> PathBuf {
        self.data_dir.join("secrets.json")
    }

    /// The lock that keeps one agent per store.
    #[must_use]
    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join("agent.lock")
    }
}

/// Creates `dir` (and its parents) with mode 0700 if missing, and refuses a directory that
/// another user owns or that group or others can write: a socket or secret in such a directory
/// could be swapped or read by someone else.
///
/// # Errors
/// A message naming the directory and the fix.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        // `recursive` applies the mode only to the last component through the umask; make sure.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot set permissions of {}: {e}", dir.display()))?;
    }
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
    let uid = crate::hardening::current_uid();
    if meta.uid() != uid {
        return Err(format!(
            "directory {} is owned by uid {}, not by you (uid {uid}); remove it or choose another \
             path (AUTHCTL_SOCK / XDG_RUNTIME_DIR / XDG_DATA_HOME)",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "directory {} is writable by group or others (mode {:o}); run `chmod 700 {}`",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        ));
    }
    Ok(())
}
