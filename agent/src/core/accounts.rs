//! Account metadata (never secrets): one JSON file in the data directory, 0600, replaced
//! atomically on every change.
//!
//! Opening checks every record (a damaged file stops the agent at start, naming it) but keeps
//! none: the map is built on first use, or by [`AccountDb::prepare`] once the agent answers, so
//! the first answer of an agent with many accounts does not wait for it (bench row 7f).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::MutexGuard;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::shape::{Deferred, Str, Strs};

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

/// The file as written.
#[derive(Serialize)]
struct FileFormat<'a> {
    version: u32,
    accounts: Vec<&'a AccountRecord>,
}

/// The file as read: each record goes to `S` as it is parsed, with no list in between.
#[derive(Deserialize)]
#[serde(bound = "")]
struct Stored<S: Sink> {
    version: u32,
    #[serde(deserialize_with = "records")]
    accounts: S,
}

/// Where [`Stored`] puts the records: counted (the check at start) or listed (the build).
trait Sink: Default {
    type Record: for<'de> Deserialize<'de>;
    fn put(&mut self, record: Self::Record);
}

/// The check at start: each record's shape, counted.
#[derive(Default)]
struct Checked(usize);

impl Sink for Checked {
    type Record = RecordShape;
    fn put(&mut self, _: RecordShape) {
        self.0 += 1;
    }
}

/// The build after the check: the records in the file's order, made a map by [`build`].
impl Sink for Vec<AccountRecord> {
    type Record = AccountRecord;
    fn put(&mut self, record: AccountRecord) {
        self.push(record);
    }
}

/// The map of the records in `bytes`. Built from the whole list at once, which fills the map's
/// nodes: inserted one at a time (in the file's order, which is sorted), they split half empty,
/// and 10,000 accounts took 1.8 MB more (bench row 7c).
fn build(bytes: &[u8]) -> Result<Map, String> {
    let records: Vec<AccountRecord> = parse(bytes)?;
    Ok(records.into_iter().map(|a| (a.name.clone(), a)).collect())
}

/// [`AccountRecord`] as the check at start sees it: the same fields and types, each checked and
/// kept nowhere (10,000 records are checked in about half the time their map takes). A unit
/// test keeps the two in step.
#[derive(Deserialize)]
#[expect(dead_code, reason = "the fields are checked, never read")]
struct RecordShape {
    name: Str,
    provider: Str,
    #[serde(default)]
    subject: Str,
    #[serde(default)]
    display_name: Str,
    #[serde(default)]
    scopes: Strs,
    #[serde(default)]
    created_at: i64,
    #[serde(default)]
    last_refresh_at: i64,
    #[serde(default)]
    login_required: bool,
    #[serde(default)]
    last_error: Str,
    #[serde(default)]
    has_refresh_token: bool,
    #[serde(default)]
    issuer: Str,
    #[serde(default)]
    token_endpoint: Str,
}

fn records<'de, D: Deserializer<'de>, S: Sink>(d: D) -> Result<S, D::Error> {
    struct Records<S>(PhantomData<S>);
    impl<'de, S: Sink> Visitor<'de> for Records<S> {
        type Value = S;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of accounts")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<S, A::Error> {
            let mut sink = S::default();
            while let Some(record) = seq.next_element()? {
                sink.put(record);
            }
            Ok(sink)
        }
    }
    d.deserialize_seq(Records(PhantomData))
}

/// Parses the file into `S`.
fn parse<S: Sink>(bytes: &[u8]) -> Result<S, String> {
    let f: Stored<S> =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid account metadata ({e})"))?;
    if f.version != 1 {
        return Err(format!("unknown format version {}", f.version));
    }
    Ok(f.accounts)
}

type Map = BTreeMap<String, AccountRecord>;

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
    /// How many records the file held at start.
    loaded: usize,
    /// Built from the checked file on first use.
    map: Deferred<Map>,
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
        let bytes = crate::fsutil::read_if_exists(&path).map_err(|e| unreadable(e.to_string()))?;
        let loaded = match &bytes {
            Some(bytes) => parse::<Checked>(bytes).map_err(unreadable)?.0,
            None => 0,
        };
        let map = Deferred::new(move || match bytes {
            Some(bytes) => build(&bytes),
            None => Ok(Map::new()),
        });
        Ok(Self {
            path: Some(path),
            loaded,
            map,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// How many records the file held at start (without building the map).
    #[must_use]
    pub fn loaded(&self) -> usize {
        self.loaded
    }

    /// Builds the map now, if nothing has yet (the agent calls it once it answers).
    ///
    /// # Errors
    /// The file, checked at start, could not be parsed after all.
    pub fn prepare(&self) -> Result<(), AccountsError> {
        self.lock().map(drop)
    }

    /// Accounts kept in memory only, for unit tests of the workflows above.
    #[cfg(test)]
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            path: None,
            loaded: 0,
            map: Deferred::new(|| Ok(Map::new())),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A copy of one account.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<AccountRecord> {
        self.lock().ok()?.get(name).cloned()
    }

    /// A copy of all accounts, by name.
    #[must_use]
    pub fn all(&self) -> Vec<AccountRecord> {
        self.lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The map, built now if it is not yet. Reads treat a failed build as no accounts; changes
    /// are refused with its error.
    fn lock(&self) -> Result<MutexGuard<'_, Map>, AccountsError> {
        self.map.lock().map_err(|reason| AccountsError::Unreadable {
            path: self
                .path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: reason.to_owned(),
        })
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
            let mut map = self.lock()?;
            let r = f(&mut map);
            let file = FileFormat {
                version: 1,
                accounts: map.values().collect(),
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
        if let Ok(mut map) = self.lock()
            && let Some(a) = map.get_mut(name)
        {
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

    #[tokio::test]
    async fn a_damaged_record_anywhere_stops_the_open_and_nothing_is_lost_by_building_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.json");
        let db = AccountDb::open(path.clone()).unwrap();
        db.update(|m| {
            for i in 0..50 {
                m.insert(format!("a{i:02}"), rec(&format!("a{i:02}")));
            }
        })
        .await
        .unwrap();
        let good = std::fs::read_to_string(&path).unwrap();

        // The last record's scopes are not a list: the whole file is refused at open.
        let bad = good.replacen(
            r#""name": "a49",
      "provider": "p",
      "subject": "s",
      "display_name": "",
      "scopes": []"#,
            r#""name": "a49",
      "provider": "p",
      "subject": "s",
      "display_name": "",
      "scopes": 7"#,
            1,
        );
        assert_ne!(bad, good, "the test edits the last record");
        std::fs::write(&path, &bad).unwrap();
        let e = AccountDb::open(path.clone()).err().unwrap().to_string();
        assert!(
            e.contains("accounts.json") && e.contains("expected a list of strings at line 597"),
            "{e}"
        );
        std::fs::write(&path, "{\"version\": 2, \"accounts\": []}").unwrap();
        let e = AccountDb::open(path.clone()).err().unwrap().to_string();
        assert!(e.contains("unknown format version 2"), "{e}");

        // Opened, the map is built by the first change: every record is kept beside it.
        std::fs::write(&path, &good).unwrap();
        let db = AccountDb::open(path.clone()).unwrap();
        assert_eq!(db.loaded(), 50);
        db.update(|m| m.insert("new".into(), rec("new")))
            .await
            .unwrap();
        let db = AccountDb::open(path).unwrap();
        db.prepare().unwrap();
        assert_eq!(db.all().len(), 51);
        assert_eq!(db.get("a49"), Some(rec("a49")));
    }

    #[test]
    fn the_check_at_start_refuses_what_the_parse_would() {
        let full = AccountRecord {
            issuer: "https://issuer.example".into(),
            token_endpoint: "https://issuer.example/token".into(),
            scopes: vec!["openid".into()],
            ..rec("a")
        };
        let file = |record: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({"version": 1, "accounts": [record]})).unwrap()
        };
        let good = serde_json::to_value(&full).unwrap();
        assert_eq!(parse::<Checked>(&file(good.clone())).unwrap().0, 1);
        assert_eq!(build(&file(good.clone())).unwrap()["a"], full);
        // Every field the record has, given a value of no type it takes: both refuse it (a field
        // added to the record and not to its shape fails here).
        let fields = good
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        assert_eq!(fields.len(), 12);
        for field in fields {
            let mut bad = good.clone();
            bad[&field] = serde_json::json!({"not": "this"});
            let bytes = file(bad);
            assert!(build(&bytes).is_err(), "{field}");
            assert!(
                parse::<Checked>(&bytes).is_err(),
                "the check takes a bad {field}"
            );
        }
        // Fields only `name` and `provider` are required, by both.
        for field in ["name", "provider", "subject"] {
            let mut bad = good.clone();
            bad.as_object_mut().unwrap().remove(field);
            let bytes = file(bad);
            assert_eq!(
                build(&bytes).is_ok(),
                parse::<Checked>(&bytes).is_ok(),
                "{field}"
            );
        }
    }
}
