//! Reading a credential from a local file (a token, a role-id, a secret-id).
//!
//! A secret file that group or others can read is refused, with the command that
//! fixes it: on a shared workstation that file is someone's Vault identity. The
//! file's content never appears in an error.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Credentials are a line of text; anything bigger is the wrong file.
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the {what} {} does not exist; an admin runs `claude-auth-sync provision` to create it", .path.display())]
    Missing { what: &'static str, path: PathBuf },
    #[error("the {what} {} is readable by group or others (mode {mode:04o}); run `chmod 600 {}`", .path.display(), .path.display())]
    TooOpen { what: &'static str, path: PathBuf, mode: u32 },
    #[error("the {what} {} {problem}", .path.display())]
    Unusable { what: &'static str, path: PathBuf, problem: String },
}

/// Whether the file's mode is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeCheck {
    /// A secret: group or other permission bits are refused.
    OwnerOnly,
    /// Not secret (a role-id), or read once more only to revoke what it holds.
    Skip,
}

/// Reads and trims the file.
pub fn read(path: &Path, what: &'static str, check: ModeCheck) -> Result<Secret, CredentialError> {
    let unusable = |problem: String| CredentialError::Unusable { what, path: path.to_path_buf(), problem };
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CredentialError::Missing { what, path: path.to_path_buf() },
        _ => unusable(format!("cannot be opened: {e}")),
    })?;
    let meta = file.metadata().map_err(|e| unusable(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(unusable("is not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if check == ModeCheck::OwnerOnly && mode & 0o077 != 0 {
        return Err(CredentialError::TooOpen { what, path: path.to_path_buf(), mode });
    }
    if meta.size() > MAX_BYTES {
        return Err(unusable(format!("is {} bytes; a credential file holds one line", meta.size())));
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|_| unusable("is not UTF-8 text".into()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(unusable("is empty".into()));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(unusable("holds spaces or control characters; it must hold exactly one value".into()));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn reads_and_trims_a_private_file() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "t", "s.abc\n", 0o600);
        assert_eq!(read(&p, "token file", ModeCheck::OwnerOnly).unwrap().expose(), "s.abc");
    }

    #[test]
    fn refuses_group_readable_and_says_how_to_fix() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "t", "s.fixture-secret", 0o640);
        let msg = read(&p, "token file", ModeCheck::OwnerOnly).unwrap_err().to_string();
        assert!(msg.contains("chmod 600") && msg.contains("0640"), "{msg}");
        assert!(!msg.contains("s.fixture-secret"));
        // A role-id is not secret: the mode is not checked.
        assert!(read(&p, "role-id file", ModeCheck::Skip).is_ok());
    }

    #[test]
    fn refuses_empty_missing_and_multi_value_files() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            read(&write(d.path(), "e", " \n", 0o600), "x", ModeCheck::OwnerOnly),
            Err(CredentialError::Unusable { .. })
        ));
        assert!(matches!(
            read(&d.path().join("nope"), "x", ModeCheck::OwnerOnly),
            Err(CredentialError::Missing { .. })
        ));
        let two = write(d.path(), "two", "a b", 0o600);
        let msg = read(&two, "x", ModeCheck::OwnerOnly).unwrap_err().to_string();
        assert!(!msg.contains("a b"), "{msg}");
    }
}
