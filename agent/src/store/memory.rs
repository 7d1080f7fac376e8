//! An in-memory store for unit tests, which can be told to refuse writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use secrecy::SecretString;

use super::{SecretStore, StoreError};

/// A map in memory.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, SecretString>>,
    /// Refuse every write (as a keyring whose collection cannot be written).
    pub refuse_writes: AtomicBool,
    /// Writes attempted.
    pub writes: AtomicUsize,
}

impl SecretStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }
    fn blocks(&self) -> bool {
        false
    }
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &SecretString) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        if self.refuse_writes.load(Ordering::Relaxed) {
            return Err(StoreError::Keyring(super::KeyringFailure {
                trouble: super::Trouble::Refused,
                text: "writes refused (test)".into(),
            }));
        }
        self.map.lock().unwrap().insert(key.into(), value.clone());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.map.lock().unwrap().remove(key);
        Ok(())
    }
}
