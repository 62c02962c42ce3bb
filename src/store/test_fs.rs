//! Fixtures for the refusal every writer here shares, never writing through a symbolic
//! link: a file or a directory behind one, in a test's scratch directory. Test builds only.
//!
//! It must never create anything outside the directory it is given.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// What the file behind the link holds: it must still hold it afterwards.
pub(crate) const KEPT: &[u8] = b"keep";

/// `<dir>/elsewhere` holding [`KEPT`], and `<dir>/<link>` pointing at it.
pub(crate) fn file_behind_link(dir: &Path, link: &str) -> (PathBuf, PathBuf) {
    let (target, link) = (dir.join("elsewhere"), dir.join(link));
    std::fs::write(&target, KEPT).unwrap();
    symlink(&target, &link).unwrap();
    (target, link)
}

/// `<dir>/real`, an empty directory, and `<dir>/<link>` pointing at it.
pub(crate) fn dir_behind_link(dir: &Path, link: &str) -> (PathBuf, PathBuf) {
    let (real, link) = (dir.join("real"), dir.join(link));
    std::fs::create_dir(&real).unwrap();
    symlink(&real, &link).unwrap();
    (real, link)
}
