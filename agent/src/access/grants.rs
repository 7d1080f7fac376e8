//! Remembered grants: "allow this program this account's token for a while", persisted (0600) so
//! they survive a restart, listed and revoked with `authctl access list | revoke`.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::caller::Program;

/// One grant: a program (as attested), an account and key, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: u64,
    pub exe: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    pub account: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub resource: String,
    pub granted_at: i64,
    pub expires_at: i64,
}

impl Grant {
    /// Whether the grant covers `program` asking for `account`'s key at `now`.
    fn covers(
        &self,
        program: &Program,
        account: &str,
        scopes: &[String],
        resource: &str,
        now: i64,
    ) -> bool {
        now < self.expires_at
            && !program.exe.is_empty()
            && self.exe == program.exe
            && self.script == program.script
            && self.unit == program.unit
            && self
                .exe_sha256
                .as_ref()
                .is_none_or(|d| program.exe_sha256.as_ref() == Some(d))
            && self.account == account
            && self.scopes == scopes
            && self.resource == resource
    }
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    next_id: u64,
    grants: Vec<Grant>,
}

/// The grants, in memory and in `grants.json` (data directory).
pub struct Grants {
    path: Option<PathBuf>,
    file: Mutex<File>,
}

impl Grants {
    /// Loads `path` (a missing or unreadable file: no grants, said in the log).
    #[must_use]
    pub fn open(path: PathBuf) -> Self {
        let file = match crate::fsutil::read_if_exists(&path) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "the remembered grants are unreadable; starting with none");
                File::default()
            }),
            Ok(None) => File::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the remembered grants are unreadable; starting with none");
                File::default()
            }
        };
        Self {
            path: Some(path),
            file: Mutex::new(file),
        }
    }

    /// Grants in memory only (unit tests).
    #[cfg(test)]
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            path: None,
            file: Mutex::new(File::default()),
        }
    }

    /// The grant that covers the request, if any.
    #[must_use]
    pub fn find(
        &self,
        program: &Program,
        account: &str,
        scopes: &[String],
        resource: &str,
        now: i64,
    ) -> Option<u64> {
        self.lock()
            .grants
            .iter()
            .find(|g| g.covers(program, account, scopes, resource, now))
            .map(|g| g.id)
    }

    /// Remembers a grant; returns its id.
    pub fn add(
        &self,
        program: &Program,
        (account, scopes, resource): (&str, &[String], &str),
        now: i64,
        until: i64,
    ) -> u64 {
        let (account, scopes, resource) = (account, scopes, resource);
        if let Some(id) = self.find(program, account, scopes, resource, now) {
            return id; // concurrent requests that shared one prompt share its grant
        }
        let mut file = self.lock();
        file.next_id += 1;
        let id = file.next_id;
        file.grants.retain(|g| g.expires_at > now);
        file.grants.push(Grant {
            id,
            exe: program.exe.clone(),
            exe_sha256: program.exe_sha256.clone(),
            unit: program.unit.clone(),
            script: program.script.clone(),
            account: account.to_owned(),
            scopes: scopes.to_vec(),
            resource: resource.to_owned(),
            granted_at: now,
            expires_at: until,
        });
        self.persist(&file);
        id
    }

    /// The grants in force at `now`.
    #[must_use]
    pub fn list(&self, now: i64) -> Vec<Grant> {
        self.lock()
            .grants
            .iter()
            .filter(|g| g.expires_at > now)
            .cloned()
            .collect()
    }

    /// Revokes the grants `ids` (all with `None`); returns how many went.
    pub fn revoke(&self, ids: Option<&[u64]>) -> usize {
        let mut file = self.lock();
        let before = file.grants.len();
        file.grants
            .retain(|g| ids.is_some_and(|ids| !ids.contains(&g.id)));
        let revoked = before - file.grants.len();
        self.persist(&file);
        revoked
    }

    fn persist(&self, file: &File) {
        let Some(path) = &self.path else {
            return;
        };
        let bytes = serde_json::to_vec_pretty(file).unwrap_or_default();
        if let Err(e) = crate::fsutil::write_atomic(path, &bytes, 0o600) {
            tracing::warn!(path = %path.display(), error = %e, "could not save the remembered grants");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_covers_its_program_account_and_key_until_it_expires() {
        let g = Grants::in_memory();
        let git = Program {
            pid: 7,
            exe: "/usr/bin/git".into(),
            ..Program::default()
        };
        let id = g.add(&git, ("corp", &[], ""), 100, 200);
        assert_eq!(g.find(&git, "corp", &[], "", 150), Some(id));
        assert_eq!(g.find(&git, "corp", &[], "", 200), None, "expired");
        assert_eq!(g.find(&git, "other", &[], "", 150), None);
        assert_eq!(g.find(&git, "corp", &["x".into()], "", 150), None);
        let other = Program {
            exe: "/usr/bin/curl".into(),
            ..git.clone()
        };
        assert_eq!(g.find(&other, "corp", &[], "", 150), None);
        assert_eq!(g.list(150).len(), 1);
        assert_eq!(g.revoke(Some(&[id])), 1);
        assert_eq!(g.find(&git, "corp", &[], "", 150), None);
    }

    #[test]
    fn grants_survive_a_restart_in_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grants.json");
        let git = Program {
            exe: "/usr/bin/git".into(),
            ..Program::default()
        };
        Grants::open(path.clone()).add(&git, ("corp", &[], ""), 100, 200);
        assert!(
            Grants::open(path.clone())
                .find(&git, "corp", &[], "", 150)
                .is_some()
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
