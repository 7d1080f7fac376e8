//! Rotated refresh tokens are written durably before the new access token is handed to anyone.
//! When the store refuses the write, the token is not lost: it is held here in memory, used for
//! the next refresh before the store's (now stale) copy, written again at every chance, and the
//! account shows the problem.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use secrecy::SecretString;

use crate::core::Core;
use crate::store::{self, StoreError};

/// See the module docs.
#[derive(Default)]
pub struct Unsaved {
    map: Mutex<HashMap<String, SecretString>>,
}

/// Attempts of one durable write before the token is held in memory.
const ATTEMPTS: u32 = 3;

impl Unsaved {
    /// Writes `account`'s (rotated) refresh token durably, retrying briefly; if the store keeps
    /// failing, holds it in memory and returns why (for the account's `last_error`).
    pub async fn save(&self, core: &Core, account: &str, rt: SecretString) -> Option<StoreError> {
        let key = store::refresh_token_key(account);
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            match core.secrets.set(&key, rt.clone()).await {
                Ok(()) => {
                    self.forget(account);
                    return None;
                }
                Err(e) => {
                    tracing::warn!(%account, attempt, error = %e, "could not save the rotated refresh token");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        self.lock().insert(account.to_owned(), rt);
        last
    }

    /// The refresh token to use: one held here first (trying once more to make it durable), else
    /// the store's.
    ///
    /// # Errors
    /// The store could not be read.
    pub async fn current(
        &self,
        core: &Core,
        account: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        let key = store::refresh_token_key(account);
        let held = self.lock().get(account).cloned();
        if let Some(rt) = held {
            if core.secrets.set(&key, rt.clone()).await.is_ok() {
                self.forget(account);
            }
            return Ok(Some(rt));
        }
        core.secrets.get(&key).await
    }

    /// Whether a refresh token of `account` is held here, not saved.
    #[must_use]
    pub fn holds(&self, account: &str) -> bool {
        self.lock().contains_key(account)
    }

    /// Tries once more to write every token held here; returns the accounts now saved.
    pub async fn retry(&self, core: &Core) -> Vec<String> {
        let held: Vec<(String, SecretString)> = self
            .lock()
            .iter()
            .map(|(a, rt)| (a.clone(), rt.clone()))
            .collect();
        let mut saved = Vec::new();
        for (account, rt) in held {
            if core
                .secrets
                .set(&store::refresh_token_key(&account), rt)
                .await
                .is_ok()
            {
                self.forget(&account);
                saved.push(account);
            }
        }
        saved
    }

    /// Drops what is held for `account` (its login ended).
    pub fn forget(&self, account: &str) {
        self.lock().remove(account);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SecretString>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
