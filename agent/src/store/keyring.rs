//! The OS keyring through `keyring-core` (Secret Service over D-Bus on Linux). Entries use the
//! service `authctl:DATA_DIR` and the store key as the user, so they show up readably in Seahorse
//! and two agents with different data directories (profiles) never overwrite each other's.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error};
use secrecy::{ExposeSecret, SecretString};

use super::{KeyringFailure, SecretStore, StoreError, Trouble};

/// The service name of entries written before 0.2, shared by every profile; read once and moved.
const LEGACY_SERVICE: &str = "authctl";

/// See the module docs.
pub struct KeyringStore {
    store: Arc<CredentialStore>,
    service: String,
}

impl KeyringStore {
    /// Connects to the platform keyring.
    ///
    /// # Errors
    /// No keyring on this platform or no session bus.
    pub fn open(namespace: &str) -> Result<Self, StoreError> {
        #[cfg(target_os = "linux")]
        {
            let store =
                zbus_secret_service_keyring_store::Store::new().map_err(|e| describe(&e))?;
            Ok(Self {
                store,
                service: format!("{LEGACY_SERVICE}:{namespace}"),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = namespace;
            Err(StoreError::Keyring(KeyringFailure {
                trouble: Trouble::Unsupported,
                text: "no OS keyring support is built for this platform yet".into(),
            }))
        }
    }

    fn entry(&self, key: &str) -> Result<Entry, StoreError> {
        self.store
            .build(&self.service, key, None)
            .map_err(|e| describe(&e))
    }

    /// An entry of before 0.2 (service `authctl`), moved to this profile's name when found.
    fn migrate(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        let legacy = self
            .store
            .build(LEGACY_SERVICE, key, None)
            .map_err(|e| describe(&e))?;
        match legacy.get_password() {
            Ok(v) => {
                let v = SecretString::from(v);
                self.entry(key)?
                    .set_password(v.expose_secret())
                    .map_err(|e| describe(&e))?;
                let _ = legacy.delete_credential();
                Ok(Some(v))
            }
            Err(Error::NoEntry) => Ok(None),
            Err(e) => Err(describe(&e)),
        }
    }
}

fn describe(e: &Error) -> StoreError {
    // keyring errors can carry the bytes of a bad secret (BadEncoding); print only the kind.
    let text = match e {
        Error::BadEncoding(_) => "a stored secret is not valid UTF-8".to_owned(),
        Error::BadDataFormat(_, inner) => format!("a stored secret has a bad format: {inner}"),
        Error::Ambiguous(_) => "more than one keyring entry matches".to_owned(),
        other => other.to_string(),
    };
    let trouble = match e {
        Error::NoStorageAccess(_) => Trouble::Locked,
        _ if no_session_bus(&text) => Trouble::NoBus,
        _ if text.contains("result not returned from SS API") || text.contains("Prompt") => {
            Trouble::Refused
        }
        _ => Trouble::Other,
    };
    StoreError::Keyring(KeyringFailure { trouble, text })
}

/// Whether the Secret Service failed for want of a D-Bus session bus (the zbus error is opaque:
/// its text, or the missing `DBUS_SESSION_BUS_ADDRESS`, says so).
fn no_session_bus(text: &str) -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|v| v.is_empty())
        || text.contains("Failed to connect")
        || text.contains("No such file or directory")
        || text.contains("was not provided by any .service files")
}

impl SecretStore for KeyringStore {
    fn kind(&self) -> &'static str {
        "keyring"
    }

    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        match self.entry(key)?.get_password() {
            Ok(v) => Ok(Some(SecretString::from(v))),
            Err(Error::NoEntry) => self.migrate(key),
            Err(e) => Err(describe(&e)),
        }
    }

    fn set(&self, key: &str, value: &SecretString) -> Result<(), StoreError> {
        self.entry(key)?
            .set_password(value.expose_secret())
            .map_err(|e| describe(&e))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(Error::NoEntry) => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }
}
