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
    #[error("the OS keyring failed: {0}")]
    Keyring(String),
    #[error("the secret store did not answer within {0:?}")]
    Timeout(Duration),
}

/// A synchronous key → secret map. Calls may block (D-Bus, disk); use [`Secrets`] from async code.
pub trait SecretStore: Send + Sync {
    /// `"file"` or `"keyring"`.
    fn kind(&self) -> &'static str;
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
    /// Why this backend was chosen (shown by `authctl status`).
    pub detail: String,
    timeout: Duration,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("kind", &self.kind())
            .field("detail", &self.detail)
            .finish()
    }
}

impl Secrets {
    /// Wraps a store.
    #[must_use]
    pub fn new(inner: Arc<dyn SecretStore>, detail: String) -> Self {
        Self {
            inner,
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
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || f(inner.as_ref()));
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(StoreError::Keyring(format!("store task failed: {join}"))),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
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
        StoreKind::File => Ok(Secrets::new(file()?, "configured: store = \"file\"".into())),
        StoreKind::Keyring => {
            let ks = probe_keyring().await?;
            Ok(Secrets::new(ks, "configured: store = \"keyring\"".into()))
        }
        StoreKind::Auto => match probe_keyring().await {
            Ok(ks) => Ok(Secrets::new(ks, "auto: the OS keyring answered".into())),
            Err(e) => {
                tracing::info!(reason = %e, "no OS keyring answers; using the embedded file store");
                Ok(Secrets::new(
                    file()?,
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
pub async fn probe_keyring() -> Result<Arc<dyn SecretStore>, StoreError> {
    let timeout = Duration::from_secs(5);
    let task = tokio::task::spawn_blocking(|| {
        let store = KeyringStore::open()?;
        store.get("probe")?;
        Ok::<_, StoreError>(Arc::new(store) as Arc<dyn SecretStore>)
    });
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(StoreError::Keyring(e.to_string())),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}
