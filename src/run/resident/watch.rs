//! Which template files changed: one inotify instance watching each file's directory
//! (Claude Code replaces the file by renaming a temp file over it, which a watch on
//! the file itself would lose), woken by the kernel, never by a timer.
//!
//! It must never read the files it watches: what a change means is the caller's.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll, ready};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What makes a directory entry worth a look: a file written and closed, renamed in
/// or out, created or deleted.
const ENTRY_EVENTS: WatchFlags = WatchFlags::CLOSE_WRITE
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::CREATE)
    .union(WatchFlags::DELETE);

pub struct Watcher {
    fd: AsyncFd<OwnedFd>,
    /// The watched files by directory watch: (index into the files, file name).
    by_wd: HashMap<i32, Vec<(usize, OsString)>>,
}

impl Watcher {
    pub fn new() -> io::Result<Self> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which alone closes it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)?;
        Ok(Watcher { fd, by_wd: HashMap::new() })
    }

    /// Watches exactly these files (the config's template destinations), replacing
    /// what was watched before. A directory watched already keeps its watch (the
    /// kernel hands back the same one), so no event is lost; one that is missing is
    /// tried again at the next call.
    pub fn watch(&mut self, files: &[PathBuf]) {
        let mut by_wd: HashMap<i32, Vec<(usize, OsString)>> = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else { continue };
            let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
            match inotify::add_watch(self.fd.get_ref(), dir, ENTRY_EVENTS | WatchFlags::ONLYDIR) {
                Ok(wd) => by_wd.entry(wd).or_default().push((i, name.to_os_string())),
                Err(e) => tracing::warn!(
                    "cannot watch {} ({e}); changes to {} wait for the next full cycle",
                    dir.display(),
                    file.display()
                ),
            }
        }
        for wd in self.by_wd.keys().filter(|wd| !by_wd.contains_key(wd)) {
            let _ = inotify::remove_watch(self.fd.get_ref(), *wd);
        }
        self.by_wd = by_wd;
    }

    /// The files with events since the last call (indices into the watched files);
    /// pending until there is at least one.
    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Vec<usize>>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let mut changed = Vec::new();
            let mut overflow = false;
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(self.fd.get_ref(), &mut buf);
            loop {
                match reader.next() {
                    Ok(e) => {
                        overflow |= e.events().contains(ReadFlags::QUEUE_OVERFLOW);
                        let (Some(files), Some(name)) = (self.by_wd.get(&e.wd()), e.file_name()) else { continue };
                        for (i, n) in files {
                            if n.as_bytes() == name.to_bytes() && !changed.contains(i) {
                                changed.push(*i);
                            }
                        }
                    }
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(e) => return Poll::Ready(Err(e.into())),
                }
            }
            guard.clear_ready();
            if overflow {
                // Events were lost: every file may have changed.
                changed = self.by_wd.values().flatten().map(|(i, _)| *i).collect();
            }
            if !changed.is_empty() {
                return Poll::Ready(Ok(changed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    #[test]
    fn a_rename_over_the_file_is_seen_and_a_sibling_is_not() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join(".credentials.json");
        let other = d.path().join("other.json");
        crate::runtime::block_on(async {
            let mut w = Watcher::new().unwrap();
            w.watch(&[other.clone(), file.clone()]);
            std::fs::write(d.path().join("unrelated"), b"x").unwrap();
            std::fs::write(d.path().join(".credentials.json.tmp.1"), b"{}").unwrap();
            std::fs::rename(d.path().join(".credentials.json.tmp.1"), &file).unwrap();
            assert_eq!(poll_fn(|cx| w.poll_changed(cx)).await.unwrap(), [1]);
            std::fs::remove_file(&file).unwrap();
            assert_eq!(poll_fn(|cx| w.poll_changed(cx)).await.unwrap(), [1]);
        })
        .unwrap();
    }
}
