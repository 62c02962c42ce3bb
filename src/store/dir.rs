//! Opening a directory without following a symbolic link: the first step of every safe
//! write here (the atomic replace, the credentials file, its locks, root's walk into a
//! home). What comes after works on the descriptor, never on the path again.
//!
//! It must never follow a symlink as the last component of what it opens, and never
//! report a symlink as anything else.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a directory could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirError {
    /// Nothing by that name.
    Missing,
    /// A symbolic link, which is never followed.
    Symlink,
    /// Anything else (not a directory, not permitted, ...), as the system said it.
    Other(Errno),
}

impl From<DirError> for std::io::Error {
    fn from(e: DirError) -> Self {
        match e {
            DirError::Missing => Errno::NOENT.into(),
            DirError::Symlink => Errno::LOOP.into(),
            DirError::Other(e) => e.into(),
        }
    }
}

/// Opens the directory `path` (a relative one from the working directory).
pub fn open(path: &Path) -> Result<OwnedFd, DirError> {
    open_at(rustix::fs::CWD, path)
}

/// Opens the directory `name` inside the opened directory `dir`.
pub fn open_at<P: rustix::path::Arg + Copy>(dir: impl AsFd, name: P) -> Result<OwnedFd, DirError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) => Err(DirError::Missing),
        // A symlink fails with ELOOP (O_NOFOLLOW) or ENOTDIR (O_DIRECTORY), whichever is checked first.
        Err(e @ (Errno::LOOP | Errno::NOTDIR)) => match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => Err(DirError::Symlink),
            _ => Err(DirError::Other(e)),
        },
        Err(e) => Err(DirError::Other(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_fs;

    #[test]
    fn a_symlink_is_told_apart_and_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let (real, link) = test_fs::dir_behind_link(d.path(), "link");
        std::fs::write(d.path().join("file"), "").unwrap();
        assert!(open(&real).is_ok());
        assert_eq!(open(&link).unwrap_err(), DirError::Symlink);
        assert_eq!(open(&d.path().join("absent")).unwrap_err(), DirError::Missing);
        assert_eq!(open(&d.path().join("file")).unwrap_err(), DirError::Other(Errno::NOTDIR));
        let parent = open(d.path()).unwrap();
        assert!(open_at(&parent, "real").is_ok());
        assert_eq!(open_at(&parent, "link").unwrap_err(), DirError::Symlink);
    }
}
