//! Reading the file safely: never through a symlink, never a FIFO or device, never
//! more than [`MAX_BYTES`]; strict JSON or, failing that, a lenient reading, and the
//! synced object found at its key.
//!
//! It must never block on what it opens, nor take a shape it does not know for a login.

use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{FileState, JsonFile, LocalError, MAX_BYTES, Snapshot};
use crate::store::file_id::FileId;
use crate::template::lenient::{self, Reading};
use crate::template::subtree;

impl JsonFile {
    pub(super) fn read_in(&self, dir: &OwnedFd) -> Result<Snapshot, LocalError> {
        let fd = match rustix::fs::openat(
            dir,
            self.name(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(Snapshot::missing()),
            Err(Errno::LOOP) => return Err(LocalError::Symlink(self.path.clone())),
            Err(e) => return Err(self.io(e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| self.io(e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(LocalError::NotRegular(self.path.clone()));
        }
        if st.st_size as u64 > MAX_BYTES {
            return Err(LocalError::TooLarge { path: self.path.clone(), size: st.st_size as u64 });
        }
        let mut bytes = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd).take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| self.io(e))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(LocalError::TooLarge { path: self.path.clone(), size: bytes.len() as u64 });
        }
        let (doc, lenient) = match lenient::read(&bytes) {
            Reading::Strict(doc) => (Some(doc), false),
            Reading::Lenient(doc) => (Some(doc), true),
            // Deliberately deep nesting is not a clobbered file: leave it for a person.
            Reading::TooDeep => return Err(self.too_deep()),
            Reading::NotJson => (None, false),
        };
        let state = match doc {
            None => FileState::NotJson,
            Some(doc) => match subtree::get(&doc, &self.key) {
                Ok(Some(obj)) => FileState::Object(obj.clone()),
                Ok(None) => FileState::NoObject,
                Err(shape) => {
                    return Err(LocalError::WrongShape { path: self.path.clone(), problem: shape.to_string() });
                }
            },
        };
        Ok(Snapshot { bytes: Some(bytes), state, stamp: Some(FileId::of(&st)), lenient })
    }
}
