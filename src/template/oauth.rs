//! What an OAuth object (Claude Code's `claudeAiOauth`, or any object with the same
//! token fields) says about the login: whether it is blanked, when the access token
//! and the login end, and a fingerprint of the refresh token.
//!
//! It must never hand out a token: the fingerprint is a short SHA-256 prefix.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Empty tokens or `expiresAt` 0: what the CLI leaves after a refused refresh.
    pub blank: bool,
    pub expires_at_ms: Option<u64>,
    pub refresh_expires_at_ms: Option<u64>,
    /// First 12 hex digits of SHA-256 of the refresh token.
    pub refresh_fp: Option<String>,
}

/// Claude Code's token fields; an object with any of them must have all three.
const TOKEN_FIELDS: [&str; 3] = ["accessToken", "refreshToken", "expiresAt"];

pub fn facts(obj: &Map<String, Value>) -> Facts {
    let token = |k: &str| obj.get(k).and_then(Value::as_str);
    let ms = |k: &str| obj.get(k).and_then(Value::as_u64);
    // An object of another tool (no Claude token field at all) is judged by its probe only.
    let claude_shaped = TOKEN_FIELDS.iter().any(|k| obj.contains_key(*k));
    let whole = token("accessToken").is_some_and(|t| !t.is_empty())
        && token("refreshToken").is_some_and(|t| !t.is_empty())
        && ms("expiresAt").is_some_and(|e| e > 0);
    let blank = obj.is_empty() || (claude_shaped && !whole);
    Facts {
        blank,
        expires_at_ms: ms("expiresAt"),
        refresh_expires_at_ms: ms("refreshTokenExpiresAt"),
        refresh_fp: token("refreshToken").filter(|t| !t.is_empty()).map(fingerprint),
    }
}

/// A whole login: never blanked, never missing a token or the expiry.
pub fn usable(obj: &Map<String, Value>) -> bool {
    !facts(obj).blank
}

/// A short, non-reversible name for a token, for logs and Vault metadata.
pub fn fingerprint(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_live_object() {
        let f = facts(&obj(json!({
            "accessToken": "sk-ant-oat01-x", "refreshToken": "sk-ant-ort01-y",
            "expiresAt": 1_800_000_000_000u64, "refreshTokenExpiresAt": 1_802_000_000_000u64
        })));
        assert!(!f.blank);
        assert_eq!(f.expires_at_ms, Some(1_800_000_000_000));
        assert_eq!(f.refresh_expires_at_ms, Some(1_802_000_000_000));
        assert_eq!(f.refresh_fp.as_deref().map(str::len), Some(12));
        assert_ne!(f.refresh_fp.unwrap(), fingerprint("sk-ant-ort01-other"));
    }

    #[test]
    fn blanked_shapes() {
        assert!(facts(&obj(json!({"accessToken": "", "refreshToken": "", "expiresAt": 0}))).blank);
        assert!(facts(&obj(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 0}))).blank);
        assert!(facts(&obj(json!({"accessToken": "a", "refreshToken": ""}))).blank);
        assert!(facts(&obj(json!({"accessToken": 5, "refreshToken": "r"}))).blank);
        assert!(facts(&Map::new()).blank);
        // Incomplete: a partial object never counts as a login to keep or back up.
        assert!(facts(&obj(json!({"accessToken": "a", "expiresAt": 5}))).blank);
        assert!(facts(&obj(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": "5"}))).blank);
        assert!(facts(&obj(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 1.5}))).blank);
        // Another tool's object is not judged by Claude's fields.
        assert!(!facts(&obj(json!({"id_token": "x", "access_token": "y"}))).blank);
    }
}
