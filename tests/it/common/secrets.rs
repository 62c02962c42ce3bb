//! Fixture secrets and the leak scan: every token, refresh token, secret-id and Vault
//! token a test makes is registered, and every output a test captures is scanned for
//! all of them and for anything shaped like a Claude OAuth token. A failure names
//! where, never what, so that a failing test does not print a secret either.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Instant;

/// `assert_eq!` for values that may hold fixture secrets: on failure it names what
/// differed, never the values.
macro_rules! assert_same {
    ($a:expr, $b:expr $(,)?) => {
        assert!($a == $b, "{} != {} (values not printed: they may hold secrets)", stringify!($a), stringify!($b))
    };
    ($a:expr, $b:expr, $($msg:tt)+) => {
        assert!($a == $b, "{} (values not printed: they may hold secrets)", format!($($msg)+))
    };
}

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Registers a value that must never appear in any captured output, and returns it.
pub fn secret(value: impl Into<String>) -> String {
    let value = value.into();
    assert!(value.len() >= 8, "a fixture secret must be long enough to scan for");
    secrets().push(value.clone());
    value
}

/// The registry; a test that panicked while scanning does not poison it for the others.
fn secrets() -> std::sync::MutexGuard<'static, Vec<String>> {
    SECRETS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prefixes of Claude Code's OAuth tokens: every token the stand-in CLI mints has one.
const TOKEN_PREFIXES: [&str; 2] = ["sk-ant-oat01-", "sk-ant-ort01-"];

/// Fails the test when any registered secret, or anything shaped like a Claude OAuth
/// token, occurs in `text`; names where, not what.
pub fn assert_no_leaks(what: &str, text: &str) {
    let hits = secrets().iter().filter(|s| text.contains(s.as_str())).count()
        + TOKEN_PREFIXES.iter().filter(|p| text.contains(*p)).count();
    assert_eq!(hits, 0, "LEAK: {hits} fixture secret value(s) found in {what}");
}

/// A Claude-shaped OAuth access token, registered as a secret.
pub fn access_token() -> String {
    random_secret("sk-ant-oat01-test-")
}

/// A Claude-shaped OAuth refresh token, registered as a secret.
pub fn refresh_token() -> String {
    random_secret("sk-ant-ort01-test-")
}

/// A random hex string after `prefix`, registered as a secret.
pub fn random_secret(prefix: &str) -> String {
    secret(format!("{prefix}{:016x}{:016x}", rand64(), rand64()))
}

/// 64 random bits (for names that must not collide).
pub fn rand64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

mod tests {
    use super::{assert_no_leaks, random_secret};

    #[test]
    #[should_panic(expected = "LEAK")]
    fn the_leak_check_catches_a_planted_secret() {
        let planted = random_secret("s.planted-");
        assert_no_leaks("a planted string", &format!("status=OK msg=\"{planted}\""));
    }
}
