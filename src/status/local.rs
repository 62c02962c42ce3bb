//! What each template's local file says, read without a lock and without writing
//! anything (not even the flock sidecar): whether it holds a login, when its access
//! token and the login itself end, and its refresh token's fingerprint. `status`
//! shows it; the metrics file exports its times.
//!
//! It must never hand out a token: only [`oauth::Facts`] (times and a fingerprint).

use crate::config::{TemplateConfig, TemplateKind};
use crate::store::json_file::{FileState, JsonFile};
use crate::template::oauth::{self, Facts};

/// One template's local file, as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalFile {
    /// A JSON template's object is a whole login (or another tool's object).
    Login(Facts),
    /// The object is there but blanked or missing a field the CLI needs.
    Blank(Facts),
    /// No file, no object at the key, or bytes that are not JSON.
    Absent(&'static str),
    /// A rendered template's output exists.
    Present,
    /// The file could not be read (a symlink, too large, ...): the reason.
    Unreadable(String),
}

impl LocalFile {
    /// The word `status --json` uses for this state.
    pub fn word(&self) -> &'static str {
        match self {
            LocalFile::Login(_) => "login",
            LocalFile::Blank(_) => "blank",
            LocalFile::Absent(w) => w,
            LocalFile::Present => "present",
            LocalFile::Unreadable(_) => "unreadable",
        }
    }

    /// The login's facts, blanked or not.
    pub fn facts(&self) -> Option<&Facts> {
        match self {
            LocalFile::Login(f) | LocalFile::Blank(f) => Some(f),
            _ => None,
        }
    }
}

/// Reads `t`'s destination as it is.
pub fn inspect(t: &TemplateConfig) -> LocalFile {
    match &t.kind {
        TemplateKind::Json(j) => {
            let file = JsonFile::new(t.destination.clone(), &j.json_key, t.perms, j.lock);
            match file.peek() {
                Ok(snap) => match snap.state {
                    FileState::Missing => LocalFile::Absent("missing"),
                    FileState::NotJson => LocalFile::Absent("not_json"),
                    FileState::NoObject => LocalFile::Absent("no_object"),
                    FileState::Object(obj) => {
                        let f = oauth::facts(&obj);
                        if f.blank { LocalFile::Blank(f) } else { LocalFile::Login(f) }
                    }
                },
                Err(e) => LocalFile::Unreadable(e.to_string()),
            }
        }
        TemplateKind::Render(_) => match std::fs::symlink_metadata(&t.destination) {
            Ok(_) => LocalFile::Present,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LocalFile::Absent("missing"),
            Err(e) => LocalFile::Unreadable(format!("cannot examine {}: {e}", t.destination.display())),
        },
    }
}
