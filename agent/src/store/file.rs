//! The embedded file store: one JSON map in a 0600 file inside the 0700 data directory, rewritten
//! atomically and fsynced on every change. It is plain text protected by file permissions, like
//! `~/.ssh` keys; it uses no password-derived key, so no slow key derivation sits on the refresh
//! path.
//!
//! Opening checks the whole file (permissions, JSON, a map of strings to strings) without building
//! anything; the map itself is built on first use, or by [`SecretStore::prepare`] once the agent
//! answers: the first answer of an agent with many accounts does not wait for it (bench row 7f).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::MutexGuard;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{SecretStore, StoreError};
use crate::shape::Deferred;

type Map = BTreeMap<String, SecretString>;

/// See the module docs.
pub struct FileStore {
    path: PathBuf,
    /// Built from the checked file on first use.
    map: Deferred<Map>,
}

impl FileStore {
    /// Checks the file (a missing file is an empty store); the map is built later.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed, or is readable by others.
    pub fn open(path: PathBuf) -> Result<Self, StoreError> {
        use std::os::unix::fs::MetadataExt;
        let unreadable = |reason: String| StoreError::Unreadable {
            path: path.display().to_string(),
            reason,
        };
        let bytes =
            match crate::fsutil::read_if_exists(&path).map_err(|e| unreadable(e.to_string()))? {
                Some(bytes) => {
                    let bytes = Zeroizing::new(bytes);
                    let mode = std::fs::metadata(&path)
                        .map_err(|e| unreadable(e.to_string()))?
                        .mode();
                    if mode & 0o077 != 0 {
                        return Err(unreadable(format!(
                            "it is accessible by other users (mode {:o}); run `chmod 600 {}`",
                            mode & 0o777,
                            path.display()
                        )));
                    }
                    check(&bytes).map_err(|e| unreadable(format!("not a valid store ({e})")))?;
                    Some(bytes)
                }
                None => None,
            };
        let map = Deferred::new(move || {
            let Some(bytes) = bytes else {
                return Ok(Map::new());
            };
            let raw: BTreeMap<String, String> =
                serde_json::from_slice(&bytes).map_err(|e| format!("not a valid store ({e})"))?;
            Ok(raw
                .into_iter()
                .map(|(k, v)| (k, SecretString::from(v)))
                .collect())
        });
        Ok(Self { path, map })
    }

    fn map(&self) -> Result<MutexGuard<'_, Map>, StoreError> {
        self.map.lock().map_err(|reason| StoreError::Unreadable {
            path: self.path.display().to_string(),
            reason: reason.to_owned(),
        })
    }

    fn persist(&self, map: &Map) -> Result<(), StoreError> {
        let plain: BTreeMap<&str, &str> = map
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose_secret()))
            .collect();
        let bytes = Zeroizing::new(serde_json::to_vec(&plain).unwrap_or_default());
        crate::fsutil::write_atomic(&self.path, &bytes, 0o600).map_err(|source| StoreError::Write {
            path: self.path.display().to_string(),
            source,
        })
    }
}

/// Whether `bytes` is what [`FileStore`] writes, a JSON object of strings, without keeping (or
/// copying) any of it.
fn check(bytes: &[u8]) -> serde_json::Result<()> {
    serde_json::from_slice::<crate::shape::StrMap>(bytes).map(drop)
}

impl SecretStore for FileStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn prepare(&self) -> Result<(), StoreError> {
        self.map().map(drop)
    }

    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        Ok(self.map()?.get(key).cloned())
    }

    fn set(&self, key: &str, value: &SecretString) -> Result<(), StoreError> {
        let mut map = self.map()?;
        let previous = map.insert(key.to_owned(), value.clone());
        if let Err(e) = self.persist(&map) {
            // Memory must match the disk, so that a retry writes again.
            match previous {
                Some(p) => map.insert(key.to_owned(), p),
                None => map.remove(key),
            };
            return Err(e);
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut map = self.map()?;
        if let Some(previous) = map.remove(key)
            && let Err(e) = self.persist(&map)
        {
            map.insert(key.to_owned(), previous);
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn survives_reopen_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let s = FileStore::open(path.clone()).unwrap();
        s.set("a", &SecretString::from("one")).unwrap();
        s.set("b", &SecretString::from("two")).unwrap();
        s.delete("a").unwrap();
        let s = FileStore::open(path.clone()).unwrap();
        assert!(s.get("a").unwrap().is_none());
        assert_eq!(s.get("b").unwrap().unwrap().expose_secret(), "two");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, b"{not json").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = FileStore::open(path).err().unwrap().to_string();
        assert!(e.contains("secrets.json"), "{e}");
    }

    #[test]
    fn world_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = FileStore::open(path).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn failed_write_keeps_memory_equal_to_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("secrets.json"); // parent missing: writes fail
        let s = FileStore::open(path).unwrap();
        assert!(s.set("a", &SecretString::from("x")).is_err());
        assert!(s.get("a").unwrap().is_none());
    }

    #[test]
    fn the_map_built_on_first_use_keeps_every_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let s = FileStore::open(path.clone()).unwrap();
        s.set("a", &SecretString::from("one \"quoted\" é")).unwrap();
        s.set("b", &SecretString::from("two")).unwrap();
        // Reopened, the first call is a write: the map is built before it, so `a` and `b` stay.
        let s = FileStore::open(path.clone()).unwrap();
        s.set("c", &SecretString::from("three")).unwrap();
        let s = FileStore::open(path).unwrap();
        s.prepare().unwrap();
        assert_eq!(
            s.get("a").unwrap().unwrap().expose_secret(),
            "one \"quoted\" é"
        );
        assert_eq!(s.get("b").unwrap().unwrap().expose_secret(), "two");
        assert_eq!(s.get("c").unwrap().unwrap().expose_secret(), "three");
    }

    #[test]
    fn anything_but_a_map_of_strings_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        for bad in [
            r#"{"a": 1}"#,
            r#"{"a": "x", "b": null}"#,
            r#"["a"]"#,
            r#"{"a": "x"} trailing"#,
            r#"{"a": "x""#,
            r#""a""#,
        ] {
            std::fs::write(&path, bad).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = FileStore::open(path.clone()).err().unwrap().to_string();
            assert!(e.contains("not a valid store"), "{bad}: {e}");
        }
        for good in ["{}", r#" {"a\u00e9": "x\n"} "#] {
            std::fs::write(&path, good).unwrap();
            let s = FileStore::open(path.clone()).unwrap();
            s.prepare().unwrap();
        }
    }
}
