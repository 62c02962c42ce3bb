//! A template's `secret`: the KV v2 mount and path of one secret, checked once when the
//! config loads and carried as this type from then on, so nothing downstream parses
//! the string again. Which leading segments name the mount is Vault's to say, at run
//! time (`Vault::kv_locate`): mounts may nest (`team/kv/...`).
//!
//! It must never hold an unchecked path: [`SecretPath::parse`] is the only way to make one.

use std::fmt;

/// `mount/path`: two segments or more, none empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPath(String);

impl SecretPath {
    /// `None` for anything but a mount and a path of plain segments.
    pub fn parse(s: &str) -> Option<SecretPath> {
        let mut segments = s.split('/');
        let plain = |seg: &str| !seg.is_empty() && seg != "." && seg != "..";
        let two_or_more = segments.clone().nth(1).is_some();
        (two_or_more && segments.all(plain)).then(|| SecretPath(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part inside `mount` (its leading segments, as Vault names the mount, with or
    /// without slashes around it); `None` when the secret is not inside it or is the
    /// mount itself.
    pub fn within(&self, mount: &str) -> Option<&str> {
        let mount = mount.trim_matches('/');
        let inside = self.0.strip_prefix(mount)?.strip_prefix('/')?;
        (!mount.is_empty() && !inside.is_empty()).then_some(inside)
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_mount_and_a_path_of_plain_segments_parse() {
        assert_eq!(SecretPath::parse("secret/x").unwrap().as_str(), "secret/x");
        for bad in ["secret", "", "/secret/x", "secret/x/", "secret//x", "secret/./x", "secret/../x", ".."] {
            assert_eq!(SecretPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_part_inside_a_mount() {
        let p = SecretPath::parse("team/kv/ws/alice").unwrap();
        assert_eq!(p.within("team/kv"), Some("ws/alice"));
        assert_eq!(p.within("/team/kv/"), Some("ws/alice"));
        assert_eq!(p.within("team"), Some("kv/ws/alice"));
        assert_eq!(p.within("team/k"), None, "a mount ends at a slash");
        assert_eq!(p.within(""), None);
        assert_eq!(SecretPath::parse("secret/x").unwrap().within("secret/x"), None, "the mount itself");
    }
}
