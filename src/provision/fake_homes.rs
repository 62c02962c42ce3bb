//! A test-only stand-in for the passwd database, so that a fleet of a thousand roster
//! users needs no OS accounts (`tests/it/ha.rs`, `scripts/bench-provision.sh --ha`):
//! with `CLAUDE_AUTH_SYNC_TEST_ONLY_FAKE_HOMES=<dir>` set, a **debug build** resolves
//! every roster user `<name>` to the home `<dir>/<name>`, owned by the uid and gid that
//! own `<dir>` itself. Everything after the lookup (Vault, the writes into the home, the
//! timer) is the real provisioner's.
//!
//! It must never take effect in a release build, the one that ships: there the variable
//! being set is a roster error, so a machine that has it set by accident says so and
//! changes nothing.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::os_user::OsUser;

pub const VAR: &str = "CLAUDE_AUTH_SYNC_TEST_ONLY_FAKE_HOMES";

/// Homes under one scratch directory, all owned by its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHomes {
    dir: PathBuf,
    uid: u32,
    gid: u32,
}

impl FakeHomes {
    /// The switch as this build sees it: `None` when the variable is unset.
    pub fn from_env() -> Result<Option<FakeHomes>, String> {
        parse(std::env::var_os(VAR), cfg!(debug_assertions))
    }

    pub fn user(&self, name: &str) -> OsUser {
        OsUser { name: name.to_string(), uid: self.uid, gid: self.gid, home: self.dir.join(name) }
    }
}

fn parse(value: Option<OsString>, debug_build: bool) -> Result<Option<FakeHomes>, String> {
    let Some(value) = value else { return Ok(None) };
    if !debug_build {
        return Err(format!(
            "{VAR} is set: it is a test-only switch (roster users from a scratch directory instead of the passwd \
             database) that release builds refuse; unset it"
        ));
    }
    let dir = PathBuf::from(value);
    if !dir.is_absolute() {
        return Err(format!("{VAR} must be an absolute directory"));
    }
    let meta = std::fs::metadata(&dir).map_err(|e| format!("{VAR} {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{VAR} {} is not a directory", Path::new(&dir).display()));
    }
    Ok(Some(FakeHomes { dir, uid: meta.uid(), gid: meta.gid() }))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn a_release_build_refuses_the_switch_and_a_debug_build_honours_it() {
        let d = tempfile::tempdir().unwrap();
        let value = || Some(d.path().as_os_str().to_owned());
        assert_eq!(parse(None, false), Ok(None));
        assert_eq!(parse(None, true), Ok(None));
        let refused = parse(value(), false).unwrap_err();
        assert!(refused.contains("test-only") && refused.contains("unset it"), "{refused}");

        let homes = parse(value(), true).unwrap().unwrap();
        let alice = homes.user("alice");
        let owner = std::fs::metadata(d.path()).unwrap();
        assert_eq!((alice.uid, alice.gid), (owner.uid(), owner.gid()));
        assert_eq!(alice.home, d.path().join("alice"));
    }

    #[test]
    fn only_an_absolute_existing_directory_is_accepted() {
        assert!(parse(Some("relative/homes".into()), true).unwrap_err().contains("absolute"));
        assert!(parse(Some("/no/such/dir/here".into()), true).is_err());
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(parse(Some(file.into_os_string()), true).unwrap_err().contains("not a directory"));
    }
}
