//! What a cycle last saw of a template's file, as digests: the whole bytes and the
//! synced subtree. A resident agent compares a changed file against it, so that its
//! own writes (and a sibling key's changes) do not start another cycle, while a
//! write that came after the cycle's last look always does.
//!
//! It must never keep the bytes themselves: a digest is all that leaves this module.

use std::cell::RefCell;

use ring::digest::{SHA256, digest};
use serde_json::{Map, Value};

use super::{Local, effects};
use crate::config::{TemplateConfig, TemplateKind};
use crate::store::json_file::{FileState, LocalError, ReplaceOutcome, Replaced, Snapshot};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    bytes: Vec<u8>,
    subtree: Vec<u8>,
    /// The file holds a whole login, which only a probe can judge (a broken one is
    /// recovered, a rendered file rendered again, without one).
    pub needs_probe: bool,
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    digest(&SHA256, bytes).as_ref().to_vec()
}

fn subtree(obj: &Map<String, Value>) -> Vec<u8> {
    sha(&serde_json::to_vec(obj).unwrap_or_default())
}

impl FileView {
    fn of(s: &Snapshot) -> FileView {
        let subtree = match &s.state {
            FileState::Object(o) => subtree(o),
            FileState::Missing => sha(b"missing"),
            FileState::NotJson => sha(b"not JSON"),
            FileState::NoObject => sha(b"no object"),
        };
        FileView { bytes: sha(s.bytes.as_deref().unwrap_or_default()), subtree, needs_probe: s.login().is_some() }
    }

    fn written(obj: &Map<String, Value>, r: &Replaced) -> FileView {
        FileView { bytes: sha(&r.written), subtree: subtree(obj), needs_probe: crate::template::oauth::usable(obj) }
    }

    /// Same bytes, or another file with the same synced subtree (a sibling key changed).
    pub fn same_login(&self, other: &FileView) -> bool {
        self.bytes == other.bytes || self.subtree == other.subtree
    }
}

/// The template's file as it is now; `None` when it cannot be read (the cycle says why).
pub fn look(t: &TemplateConfig) -> Option<FileView> {
    match &t.kind {
        TemplateKind::Json(j) => effects::local_file(t, j).read().ok().map(|s| FileView::of(&s)),
        TemplateKind::Render(_) => {
            let bytes = std::fs::read(&t.destination).ok();
            let d = sha(bytes.as_deref().unwrap_or_default());
            Some(FileView { bytes: d.clone(), subtree: d, needs_probe: false })
        }
    }
}

/// What a cycle tells a resident agent: what it last saw of each template's file.
pub struct Observed {
    pub files: Vec<RefCell<Option<FileView>>>,
}

impl Observed {
    pub fn new(templates: usize) -> Self {
        Observed { files: (0..templates).map(|_| RefCell::new(None)).collect() }
    }
}

/// A [`Local`] that notes what it last read or wrote.
pub struct Recording<'a, L> {
    pub inner: L,
    pub last: &'a RefCell<Option<FileView>>,
}

impl<L: Local> Local for Recording<'_, L> {
    fn read(&self) -> Result<Snapshot, LocalError> {
        let s = self.inner.read()?;
        *self.last.borrow_mut() = Some(FileView::of(&s));
        Ok(s)
    }
    fn replace(&self, obj: &Map<String, Value>, expected: &Snapshot) -> Result<ReplaceOutcome, LocalError> {
        let r = self.inner.replace(obj, expected)?;
        *self.last.borrow_mut() = Some(match &r {
            ReplaceOutcome::Replaced(done) => FileView::written(obj, done),
            ReplaceOutcome::Changed(now) => FileView::of(now),
        });
        Ok(r)
    }
    fn rollback(&self, replaced: &Replaced) -> Result<bool, LocalError> {
        let back = self.inner.rollback(replaced)?;
        if back {
            *self.last.borrow_mut() = Some(FileView::of(&replaced.previous));
        }
        Ok(back)
    }
}
