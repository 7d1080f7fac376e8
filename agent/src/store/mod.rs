//! Secret storage: refresh tokens and client secrets, behind [`SecretStore`].
//!
//! Two backends: the OS keyring through `keyring-core` (Secret Service on Linux) and the embedded
//! file store. `store = "auto"` (the default) uses the keyring when one answers and says openly
//! when it falls back to the file store, and why.

mod file;
mod keyring;
#[cfg(test)]
pub mod memory;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

pub use file::FileStore;
pub use keyring::KeyringStore;

use crate::config::StoreKind;
use crate::paths::Paths;

/// A secret store failure. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "secret store file {path} is unreadable: {reason}; fix or restore the file, or move it away to start empty"
    )]
    Unreadable { path: String, reason: String },
    #[error("cannot write secret store file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The keyring's own error, described by kind only: some of its errors carry the bytes of a
    /// stored secret (see `keyring::describe`).
    #[error("the OS keyring failed: {0}")]
    Keyring(KeyringFailure),
    #[error("the secret store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the secret store did not answer within {0:?}")]
    Timeout(Duration),
}

/// A keyring failure: what went wrong in a few words, and the keyring's own text.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct KeyringFailure {
    pub trouble: Trouble,
    pub text: String,
}

/// Why the OS keyring cannot serve, in words a person can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// No D-Bus session bus, so no Secret Service (headless machines, SSH, containers).
    NoBus,
    /// The collection is locked, or access was refused.
    Locked,
    /// It reads but refuses writes without a prompt nobody can answer.
    Refused,
    /// No keyring backend for this platform.
    Unsupported,
    Other,
}

impl Trouble {
    /// The few words `status` shows.
    #[must_use]
    pub fn short(self) -> &'static str {
        match self {
            Self::NoBus => "no D-Bus session bus",
            Self::Locked => "the keyring is locked (it refuses writes)",
            Self::Refused => "the keyring refuses writes",
            Self::Unsupported => "no keyring support on this platform",
            Self::Other => "the OS keyring did not answer",
        }
    }

    /// What to do about it.
    #[must_use]
    pub fn fix(self) -> &'static str {
        match self {
            Self::NoBus => {
                "fine on headless machines (the file store serves); for a keyring, run the agent inside a desktop session or dbus-run-session with gnome-keyring-daemon"
            }
            Self::Locked | Self::Refused => {
                "unlock the keyring (log in to the desktop session, or `gnome-keyring-daemon --unlock`), or set store = \"file\" in config.toml"
            }
            Self::Unsupported | Self::Other => {
                "set store = \"file\" in config.toml to use the embedded file store"
            }
        }
    }
}

impl StoreError {
    /// The few words that say why, for a status line.
    #[must_use]
    pub fn short(&self) -> String {
        match self {
            Self::Keyring(k) => k.trouble.short().to_owned(),
            Self::Timeout(_) => "the secret store did not answer in time".to_owned(),
            Self::Unreadable { .. } => "the secret store file is unreadable".to_owned(),
            Self::Write { .. } => "the secret store file cannot be written".to_owned(),
            Self::Task(_) => "the secret store task failed".to_owned(),
        }
    }
}

/// A synchronous key → secret map. Calls may block (D-Bus, disk); use [`Secrets`] from async code.
pub trait SecretStore: Send + Sync {
    /// `"file"` or `"keyring"`.
    fn kind(&self) -> &'static str;
    /// Whether calls may block (disk, D-Bus): they then run on the blocking pool with a timeout.
    fn blocks(&self) -> bool {
        true
    }
    /// Makes the first call as fast as the others (the file store builds its map here, once the
    /// agent answers, rather than on the first call that needs it).
    ///
    /// # Errors
    /// The store could not be read.
    fn prepare(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// The secret under `key`, or `None`.
    ///
    /// # Errors
    /// The store could not be read.
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError>;
    /// Stores durably: when this returns `Ok`, the secret survives a crash.
    ///
    /// # Errors
    /// The store could not be written.
    fn set(&self, key: &str, value: &SecretString) -> Result<(), StoreError>;
    /// Removes `key`; removing a missing key is not an error.
    ///
    /// # Errors
    /// The store could not be written.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// The async face of the store: every call runs on the blocking pool with a timeout, so a hung
/// keyring never stalls the agent (a top complaint about credential tools).
#[derive(Clone)]
pub struct Secrets {
    inner: Arc<dyn SecretStore>,
    /// Why this backend was chosen, in full (`authctl status --json`).
    pub detail: String,
    /// The same in a few words (`authctl status`).
    pub reason: String,
    timeout: Duration,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("kind", &self.kind())
            .field("detail", &self.detail)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Wraps a store.
    #[must_use]
    pub fn new(inner: Arc<dyn SecretStore>, reason: &str, detail: String) -> Self {
        Self {
            inner,
            reason: reason.to_owned(),
            detail,
            timeout: Duration::from_secs(10),
        }
    }

    /// `"file"` or `"keyring"`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !self.inner.blocks() {
            return f(self.inner.as_ref());
        }
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || f(inner.as_ref()));
        match tokio::time::timeout(self.timeout, task).await {
            Ok(r) => r?,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    /// See [`SecretStore::prepare`].
    ///
    /// # Errors
    /// The store failed or timed out.
    pub async fn prepare(&self) -> Result<(), StoreError> {
        self.run(|s| s.prepare()).await
    }

    /// See [`SecretStore::get`].
    ///
    /// # Errors
    /// The store failed or timed out.
    pub async fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        let key = key.to_owned();
        self.run(move |s| s.get(&key)).await
    }

    /// See [`SecretStore::set`].
    ///
    /// # Errors
    /// The store failed or timed out.
    pub async fn set(&self, key: &str, value: SecretString) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |s| s.set(&key, &value)).await
    }

    /// See [`SecretStore::delete`].
    ///
    /// # Errors
    /// The store failed or timed out.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.run(move |s| s.delete(&key)).await
    }
}

/// The key of an account's refresh token.
#[must_use]
pub fn refresh_token_key(account: &str) -> String {
    format!("account/{account}/refresh_token")
}

/// The key of the ID token of an account's last login (the `id_token_hint` of an end-session).
#[must_use]
pub fn id_token_key(account: &str) -> String {
    format!("account/{account}/id_token")
}

/// The key of a provider's client secret.
#[must_use]
pub fn client_secret_key(provider: &str) -> String {
    format!("provider/{provider}/client_secret")
}

/// Opens the store that `kind` asks for.
///
/// # Errors
/// `keyring` was demanded and none answers, or the file store is unreadable.
pub async fn open(kind: StoreKind, paths: &Paths) -> Result<Secrets, StoreError> {
    let file = || -> Result<Arc<dyn SecretStore>, StoreError> {
        Ok(Arc::new(FileStore::open(paths.secrets_file())?))
    };
    match kind {
        StoreKind::File => Ok(Secrets::new(
            file()?,
            "configured",
            "configured: store = \"file\"".into(),
        )),
        StoreKind::Keyring => {
            let ks = probe_keyring(&paths.data_dir).await?;
            Ok(Secrets::new(
                ks,
                "configured",
                "configured: store = \"keyring\"".into(),
            ))
        }
        StoreKind::Auto => match probe_keyring(&paths.data_dir).await {
            Ok(ks) => Ok(Secrets::new(
                ks,
                "the OS keyring answered",
                "auto: the OS keyring answered".into(),
            )),
            Err(e) => {
                tracing::info!(reason = %e, "no OS keyring answers; using the embedded file store");
                Ok(Secrets::new(
                    file()?,
                    &format!("auto: {}", e.short()),
                    format!(
                        "auto: no OS keyring answers ({e}); using {}",
                        paths.secrets_file().display()
                    ),
                ))
            }
        },
    }
}

/// Connects to the OS keyring and reads a probe entry: `Ok` when one answers.
///
/// # Errors
/// No keyring, no session bus, a locked collection, or no answer within 5 s.
pub async fn probe_keyring(data_dir: &std::path::Path) -> Result<Arc<dyn SecretStore>, StoreError> {
    let namespace = data_dir.display().to_string();
    let timeout = Duration::from_secs(5);
    let task = tokio::task::spawn_blocking(move || {
        let store = KeyringStore::open(&namespace)?;
        store.get("probe")?;
        Ok::<_, StoreError>(Arc::new(store) as Arc<dyn SecretStore>)
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(StoreError::Task(e)),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

/// Whether the OS keyring takes a write (writes and deletes a probe entry): a collection that
/// reads but refuses writes would lose every login stored in it.
///
/// # Errors
/// The write (or the keyring) failed, or no answer within 5 s.
pub async fn probe_keyring_write(data_dir: &std::path::Path) -> Result<(), StoreError> {
    let store = probe_keyring(data_dir).await?;
    let timeout = Duration::from_secs(5);
    let task = tokio::task::spawn_blocking(move || {
        store.set("probe", &SecretString::from("authctl doctor"))?;
        store.delete("probe")
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(StoreError::Task(e)),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}
