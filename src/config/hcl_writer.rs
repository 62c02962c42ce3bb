//! The one HCL writer: check-config's output (each block prints itself through it) and
//! the config the provisioner writes for each user. Blocks say what they hold (a key and
//! a string, a path, a duration, a mode, a keyword, a nested block); how that is spelled
//! in HCL is decided here alone.
//!
//! It must never let a value become syntax: every string goes through [`quote`], and a
//! comment cannot end its line early, so no value can add a key or a block.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use super::keyword::is_bool;

/// HCL text being written, block by block.
#[derive(Default)]
pub(crate) struct Hcl {
    out: String,
    depth: usize,
    /// Inline template `contents` written out (a conversion) rather than redacted.
    pub(crate) contents_shown: bool,
}

impl Hcl {
    pub(crate) fn finish(self) -> String {
        self.out
    }
    pub(crate) fn blank(&mut self) {
        self.out.push('\n');
    }
    fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{:indent$}{s}", "", indent = self.depth * 2);
    }
    pub(crate) fn comment(&mut self, s: &str) {
        let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        self.line(&format!("# {flat}"));
    }
    /// `head {`; `head` is a block type and its labels (see [`label`]).
    pub(crate) fn open(&mut self, head: &str) {
        self.line(&format!("{head} {{"));
        self.depth += 1;
    }
    /// `kind "label" {`.
    pub(crate) fn open_labeled(&mut self, kind: &str, name: &str) {
        self.open(&label(kind, name));
    }
    pub(crate) fn close(&mut self) {
        self.depth -= 1;
        self.line("}");
    }
    /// A bool or a number, as it is.
    pub(crate) fn raw(&mut self, key: &str, v: impl std::fmt::Display) {
        self.line(&format!("{key} = {v}"));
    }
    pub(crate) fn str(&mut self, key: &str, v: &str) {
        self.line(&format!("{key} = {}", quote(v)));
    }
    pub(crate) fn path(&mut self, key: &str, p: &Path) {
        self.str(key, &p.to_string_lossy());
    }
    /// A duration as humantime writes it ("1day 12h"), which the reader reads back.
    pub(crate) fn dur(&mut self, key: &str, d: Duration) {
        self.str(key, &humantime::format_duration(d).to_string());
    }
    /// A file mode in octal digits, quoted ("0600"): HCL would read a bare 0600 as decimal.
    pub(crate) fn mode(&mut self, key: &str, mode: u32) {
        self.str(key, &format!("{mode:04o}"));
    }
    /// An enum's word from its [`Keywords`](super::keyword::Keywords): `true` and
    /// `false` bare, any other word quoted.
    pub(crate) fn keyword(&mut self, key: &str, word: &str) {
        if is_bool(word) { self.raw(key, word) } else { self.str(key, word) }
    }
    /// `key = { k = "v", "any key" = "v" }`: an object, whose keys may be any text
    /// (quoted unless they are plain names), as a block's keys may not.
    pub(crate) fn map<'m>(&mut self, key: &str, pairs: impl IntoIterator<Item = (&'m String, &'m String)>) {
        let pairs: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| {
                let plain = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                format!("{} = {}", if plain { k.clone() } else { quote(k) }, quote(v))
            })
            .collect();
        self.line(&format!("{key} = {{ {} }}", pairs.join(", ")));
    }
    pub(crate) fn list(&mut self, key: &str, items: &[String]) {
        let items: Vec<String> = items.iter().map(|i| quote(i)).collect();
        self.line(&format!("{key} = [{}]", items.join(", ")));
    }
}

/// `kind "label"`, a block head with its label quoted.
pub(crate) fn label(kind: &str, label: &str) -> String {
    format!("{kind} {}", quote(label))
}

/// An HCL string literal that reads back as `s` (`${` and `%{` escaped: nothing is a template).
fn quote(s: &str) -> String {
    escape_markers(&quote_text(s))
}

/// `s` in double quotes with `"`, `\` and control characters escaped, as HCL and TOML
/// basic strings both write them.
pub(super) fn quote_text(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for ch in s.chars() {
        match ch {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// `${` and `%{` as a literal is written in HCL (and read in TOML): `$${`, `%%{`.
pub(super) fn escape_markers(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}
