//! A wrapper for secret strings: Vault tokens, secret-ids, OAuth tokens.
//!
//! It must never print its content: `Debug` and `Display` write `<redacted>`, so a
//! secret that slips into a log line, an error or a panic message stays unreadable.
//! The only way to the value is [`Secret::expose`], used where the value is sent
//! to Vault or written to a file the owner asked for.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value itself; callers send it or write it, never format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = Secret::new("s.very-secret");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "<redacted> <redacted> Some(<redacted>)");
        assert_eq!(s.expose(), "s.very-secret");
    }
}
