//! Account metadata (never secrets): one JSON file in the data directory, 0600, replaced
//! atomically on every change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// One login at a provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountRecord {
    pub name: String,
    pub provider: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub last_refresh_at: i64,
    /// The refresh token was rejected (or never issued): a login is needed.
    #[serde(default)]
    pub login_required: bool,
    /// The last error, for `authctl status` (never a secret).
    #[serde(default)]
    pub last_error: String,
    #[serde(default)]
    pub has_refresh_token: bool,
    /// The issuer the account logged in at (empty: none, or an account from before 0.2).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    /// The token endpoint that issued its refresh token: the only one it is ever sent to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_endpoint: String,
}

#[derive(Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    accounts: Vec<AccountRecord>,
}

/// A metadata failure, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(
        "account file {path} is unreadable: {reason}; fix or restore it (or move it away to start with no accounts)"
    )]
    Unreadable { path: String, reason: String },
    #[error("cannot write account file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The accounts, in memory and on disk.
pub struct AccountDb {
    /// `None`: memory only (unit tests).
    path: Option<PathBuf>,
    map: Mutex<BTreeMap<String, AccountRecord>>,
    // Serialises writers so an older snapshot never overwrites a newer one.
    write_lock: tokio::sync::Mutex<()>,
}

impl AccountDb {
    /// Loads the file; a missing file means no accounts.
    ///
    /// # Errors
    /// The file exists but is unreadable or not valid.
    pub fn open(path: PathBuf) -> Result<Self, AccountsError> {
        let unreadable = |reason: String| AccountsError::Unreadable {
            path: path.display().to_string(),
            reason,
        };
        let map =
            match crate::fsutil::read_if_exists(&path).map_err(|e| unreadable(e.to_string()))? {
                Some(bytes) => {
                    let f: FileFormat = serde_json::from_slice(&bytes)
                        .map_err(|e| unreadable(format!("not valid account metadata ({e})")))?;
                    if f.version != 1 {
                        return Err(unreadable(format!("unknown format version {}", f.version)));
                    }
                    f.accounts
                        .into_iter()
                        .map(|a| (a.name.clone(), a))
                        .collect()
                }
                None => BTreeMap::new(),
            };
        Ok(Self {
            path: Some(path),
            map: Mutex::new(map),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Accounts kept in memory only, for unit tests of the workflows above.
    #[cfg(test)]
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            path: None,
            map: Mutex::new(BTreeMap::new()),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A copy of one account.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<AccountRecord> {
        self.lock().get(name).cloned()
    }

    /// A copy of all accounts, by name.
    #[must_use]
    pub fn all(&self) -> Vec<AccountRecord> {
        self.lock().values().cloned().collect()
    }

    /// How many accounts there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, AccountRecord>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `f` to the map and writes the result durably.
    ///
    /// # Errors
    /// The write failed (memory keeps the change; the next write retries it).
    pub async fn update<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, AccountRecord>) -> R,
    ) -> Result<R, AccountsError> {
        let _guard = self.write_lock.lock().await;
        let (r, bytes) = {
            let mut map = self.lock();
            let r = f(&mut map);
            let file = FileFormat {
                version: 1,
                accounts: map.values().cloned().collect(),
            };
            (r, serde_json::to_vec_pretty(&file).unwrap_or_default())
        };
        let Some(path) = self.path.clone() else {
            return Ok(r);
        };
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || crate::fsutil::write_atomic(&path, &bytes, 0o600))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| AccountsError::Write {
                path: shown,
                source,
            })?;
        Ok(r)
    }

    /// Changes one account in memory only (state that need not survive a restart).
    pub fn touch(&self, name: &str, f: impl FnOnce(&mut AccountRecord)) {
        if let Some(a) = self.lock().get_mut(name) {
            f(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str) -> AccountRecord {
        AccountRecord {
            name: name.into(),
            provider: "p".into(),
            subject: "s".into(),
            display_name: String::new(),
            scopes: vec![],
            created_at: 1,
            last_refresh_at: 0,
            login_required: false,
            last_error: String::new(),
            has_refresh_token: true,
            issuer: String::new(),
            token_endpoint: String::new(),
        }
    }

    #[tokio::test]
    async fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let db = AccountDb::open(path.clone()).unwrap();
        db.update(|m| m.insert("a".into(), rec("a"))).await.unwrap();
        let db = AccountDb::open(path).unwrap();
        assert_eq!(db.get("a"), Some(rec("a")));
    }

    #[test]
    fn corrupt_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        std::fs::write(&path, "[").unwrap();
        let e = AccountDb::open(path).err().unwrap().to_string();
        assert!(e.contains("accounts.json"), "{e}");
    }
}
