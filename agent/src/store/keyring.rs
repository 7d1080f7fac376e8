//! The OS keyring through `keyring-core` (Secret Service over D-Bus on Linux). Entries use the
//! service `authctl` and the store key as the user, so they show up readably in Seahorse.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};
use secrecy::{ExposeSecret, SecretString};

use super::{SecretStore, StoreError};

const SERVICE: &str = "authctl";

/// See the module docs.
pub struct KeyringStore {
    store: Arc<CredentialStore>,
}

impl KeyringStore {
    /// Connects to the platform keyring.
    ///
    /// # Errors
    /// No keyring on this platform or no session bus.
    pub fn open() -> Result<Self, StoreError> {
        #[cfg(target_os = "linux")]
        {
            let store = zbus_secret_service_keyring_store::Store::new().map_err(describe)?;
            Ok(Self { store })
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(StoreError::Keyring(
                "no OS keyring support is built for this platform yet".into(),
            ))
        }
    }

    fn entry(&self, key: &str) -> Result<Entry, StoreError> {
        self.store.build(SERVICE, key, None).map_err(describe)
    }
}

fn describe(e: Error) -> StoreError {
    // keyring errors can carry the bytes of a bad secret (BadEncoding); print only the kind.
    let text = match &e {
        Error::BadEncoding(_) => "a stored secret is not valid UTF-8".to_owned(),
        Error::BadDataFormat(_, inner) => format!("a stored secret has a bad format: {inner}"),
        Error::Ambiguous(_) => "more than one keyring entry matches".to_owned(),
        other => other.to_string(),
    };
    StoreError::Keyring(text)
}

impl SecretStore for KeyringStore {
    fn kind(&self) -> &'static str {
        "keyring"
    }

    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        match self.entry(key)?.get_password() {
            Ok(v) => Ok(Some(SecretString::from(v))),
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(describe(e)),
        }
    }

    fn set(&self, key: &str, value: &SecretString) -> Result<(), StoreError> {
        self.entry(key)?
            .set_password(value.expose_secret())
            .map_err(describe)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(Error::NoEntry) => Ok(()),
            Err(e) => Err(describe(e)),
        }
    }
}
