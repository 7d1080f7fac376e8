//! Where the agent keeps its files. Resolved once at start from the environment (the XDG
//! variables, `AUTHCTL_SOCK`, `AUTHCTL_CONFIG`), so tests and users can relocate everything.

use std::path::{Path, PathBuf};

/// No place for the agent's files.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("no home directory found: set HOME (or XDG_CONFIG_HOME and XDG_DATA_HOME)")]
    NoHome,
}

/// A directory that must be private is not, or cannot be made so.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("cannot create directory {}: {source}", dir.display())]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot set permissions of {}: {source}", dir.display())]
    Chmod {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read directory {}: {source}", dir.display())]
    Stat {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "directory {} is owned by uid {owner}, not by you (uid {uid}); remove it or choose another path (AUTHCTL_SOCK / XDG_RUNTIME_DIR / XDG_DATA_HOME)",
        dir.display()
    )]
    Owner { dir: PathBuf, owner: u32, uid: u32 },
    #[error(
        "directory {} is writable by group or others (mode {mode:o}); run `chmod 700 {}`",
        dir.display(),
        dir.display()
    )]
    Writable { dir: PathBuf, mode: u32 },
    #[error("{} is a symbolic link; the agent uses only a real directory there", .0.display())]
    Symlink(PathBuf),
    #[error(
        "{} is inside {}, which belongs to uid {owner}, neither you nor root: another user could replace it",
        dir.display(),
        parent.display()
    )]
    ParentOwner {
        dir: PathBuf,
        parent: PathBuf,
        owner: u32,
    },
    #[error(
        "{} is inside {}, which others can write (mode {mode:o}, not sticky): another user could replace it; run `chmod go-w {}`",
        dir.display(),
        parent.display(),
        parent.display()
    )]
    ParentWritable {
        dir: PathBuf,
        parent: PathBuf,
        mode: u32,
    },
}

/// The agent's files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `config.toml`: providers and defaults, human-edited.
    pub config_file: PathBuf,
    /// Account metadata, the embedded secret store and the lock file (0700).
    pub data_dir: PathBuf,
    /// The Unix socket the agent serves on.
    pub socket: PathBuf,
    /// Logs: the audit log of token hand-outs (`$XDG_STATE_HOME/authctl`, 0700).
    pub state_dir: PathBuf,
}

impl Paths {
    /// Resolves the paths from the environment: `$AUTHCTL_CONFIG` or
    /// `$XDG_CONFIG_HOME/authctl/config.toml`; `$XDG_DATA_HOME/authctl`; the socket per
    /// [`authctl_proto::socket_path`].
    ///
    /// # Errors
    /// When no home directory can be found to derive them from.
    pub fn from_env() -> Result<Self, PathError> {
        let dirs = directories::ProjectDirs::from("", "", "authctl").ok_or(PathError::NoHome)?;
        let config_file = std::env::var_os("AUTHCTL_CONFIG")
            .filter(|v| !v.is_empty())
            .map_or_else(|| dirs.config_dir().join("config.toml"), PathBuf::from);
        let socket = authctl_proto::socket_path().ok_or(PathError::NoHome)?;
        Ok(Self {
            config_file,
            data_dir: dirs.data_dir().to_path_buf(),
            state_dir: dirs
                .state_dir()
                .unwrap_or_else(|| dirs.data_dir())
                .to_path_buf(),
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
/// another user owns or that group or others can write, or that is a symbolic link: a socket or
/// secret in such a directory could be swapped or read by someone else. Every directory above it
/// must belong to this user or root and be writable by nobody else, unless sticky (like `/tmp`),
/// as OpenSSH's `StrictModes` asks of `~/.ssh`: otherwise another user could rename a directory
/// in the chain and put their own in its place.
///
/// # Errors
/// What is wrong with the directory, naming it and the fix.
pub fn ensure_private_dir(dir: &Path) -> Result<(), DirError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let uid = crate::hardening::current_uid();
    let stat = |d: &Path, follow: bool| {
        if follow {
            std::fs::metadata(d)
        } else {
            std::fs::symlink_metadata(d)
        }
        .map_err(|source| DirError::Stat {
            dir: d.into(),
            source,
        })
    };
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| DirError::Create {
                dir: dir.into(),
                source,
            })?;
        // `recursive` applies the mode only to the last component through the umask; make sure.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| DirError::Chmod {
                dir: dir.into(),
                source,
            },
        )?;
    }
    let meta = stat(dir, false)?;
    if meta.file_type().is_symlink() {
        return Err(DirError::Symlink(dir.into()));
    }
    if meta.uid() != uid {
        return Err(DirError::Owner {
            dir: dir.into(),
            owner: meta.uid(),
            uid,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(DirError::Writable {
            dir: dir.into(),
            mode: meta.mode() & 0o777,
        });
    }
    // The chain above, with symbolic links resolved (`/var/run` → `/run` is fine).
    let resolved = std::fs::canonicalize(dir).map_err(|source| DirError::Stat {
        dir: dir.into(),
        source,
    })?;
    for parent in resolved.ancestors().skip(1) {
        let m = stat(parent, true)?;
        if m.uid() != uid && m.uid() != 0 {
            return Err(DirError::ParentOwner {
                dir: dir.into(),
                parent: parent.into(),
                owner: m.uid(),
            });
        }
        let sticky = m.mode() & 0o1000 != 0;
        if m.mode() & 0o022 != 0 && !sticky {
            return Err(DirError::ParentWritable {
                dir: dir.into(),
                parent: parent.into(),
                mode: m.mode() & 0o7777,
            });
        }
    }
    Ok(())
}
