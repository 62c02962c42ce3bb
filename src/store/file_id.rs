//! Which file a name led to, and which state of it, from one `stat`: a lock directory
//! that someone removed and made again is not ours, a credentials file replaced during
//! the probe is not what the probe judged.
//!
//! It must never judge by bytes what the inode tells: two files with the same bytes are
//! two files.

use std::ffi::OsStr;
use std::os::fd::AsFd;

use rustix::fs::{AtFlags, Stat};

/// One state of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    ino: u64,
    /// The modification time, seconds and nanoseconds.
    modified: (i64, i64),
    /// The status-change time, which every write, chmod, rename into place and touch
    /// moves, and which nothing in user space can set back.
    changed: (i64, i64),
    size: u64,
}

impl FileId {
    pub fn of(st: &Stat) -> FileId {
        FileId {
            ino: st.st_ino,
            modified: (st.st_mtime, st.st_mtime_nsec as i64),
            changed: (st.st_ctime, st.st_ctime_nsec as i64),
            size: st.st_size as u64,
        }
    }

    /// `name` in `dir`, not following a symlink; `None` when it cannot be statted.
    pub fn at(dir: impl AsFd, name: &OsStr) -> Option<FileId> {
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| FileId::of(&st))
    }

    /// A file of its own for fakes: ids of different `n` are different files.
    #[cfg(test)]
    pub(crate) fn numbered(n: u64) -> FileId {
        FileId { ino: n, modified: (0, 0), changed: (0, 0), size: 0 }
    }

    /// The same inode with the same content: neither replaced nor written since (a
    /// chmod does not count). Equality (`==`) also counts any change to the inode.
    pub fn same_content(&self, other: &FileId) -> bool {
        (self.ino, self.modified, self.size) == (other.ino, other.modified, other.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_replaced_file_is_another_even_with_the_same_bytes_and_a_chmod_is_no_rewrite() {
        let d = tempfile::tempdir().unwrap();
        let dir = rustix::fs::open(d.path(), rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
        let name = OsStr::new("f");
        std::fs::write(d.path().join("f"), "same").unwrap();
        let first = FileId::at(&dir, name).unwrap();
        std::fs::set_permissions(d.path().join("f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let chmodded = FileId::at(&dir, name).unwrap();
        assert!(chmodded.same_content(&first));
        std::fs::write(d.path().join("g"), "same").unwrap();
        std::fs::rename(d.path().join("g"), d.path().join("f")).unwrap();
        let replaced = FileId::at(&dir, name).unwrap();
        assert!(!replaced.same_content(&first) && replaced != first, "the same bytes, another file");
        assert_eq!(FileId::at(&dir, OsStr::new("gone")), None);
    }
}
