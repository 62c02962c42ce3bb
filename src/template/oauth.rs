//! What an OAuth object (Claude Code's `claudeAiOauth`, or any object with the same
//! token fields) says about the login: whether it is whole, blanked, or missing a field
//! the CLI needs (and how to repair that), when the access token and the login end, and
//! a fingerprint of the refresh token.
//!
//! It must never hand out a token: the fingerprint is a short SHA-256 prefix.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Not a whole login: empty tokens or `expiresAt` 0 (what the CLI leaves after a
    /// refused refresh), or something the CLI needs is missing.
    pub blank: bool,
    /// Of a Claude-shaped object whose tokens are both there: the fields the CLI needs
    /// that it lacks (`expiresAt`, `scopes` with `user:inference`). Such an object is a
    /// login to repair, never one to replace with an older copy.
    pub missing: Vec<&'static str>,
    pub expires_at_ms: Option<u64>,
    pub refresh_expires_at_ms: Option<u64>,
    /// First 12 hex digits of SHA-256 of the refresh token.
    pub refresh_fp: Option<String>,
}

/// Claude Code's token fields; an object with any of them must have all three.
const TOKEN_FIELDS: [&str; 3] = ["accessToken", "refreshToken", "expiresAt"];
/// The refresh token's name: Claude Code's, then OAuth's own (RFC 6749), which OpenAI
/// Codex (`tokens.refresh_token`) and gcloud's credentials files use; so that the
/// lineage orders their rotations too.
const REFRESH_TOKEN_FIELDS: [&str; 2] = ["refreshToken", "refresh_token"];
/// The scope without which Claude Code refuses the login (`oauth_no_inference_scope`).
pub const INFERENCE_SCOPE: &str = "user:inference";

pub fn facts(obj: &Map<String, Value>) -> Facts {
    let token = |k: &str| obj.get(k).and_then(Value::as_str);
    let ms = |k: &str| obj.get(k).and_then(Value::as_u64);
    // An object of another tool (no Claude token field at all) is judged by its probe only.
    let claude_shaped = TOKEN_FIELDS.iter().any(|k| obj.contains_key(*k));
    let tokens =
        token("accessToken").is_some_and(|t| !t.is_empty()) && token("refreshToken").is_some_and(|t| !t.is_empty());
    let mut missing = Vec::new();
    if claude_shaped {
        if ms("expiresAt").is_none_or(|e| e == 0) {
            missing.push("expiresAt");
        }
        if !has_inference_scope(obj) {
            missing.push("scopes");
        }
    }
    let blank = obj.is_empty() || (claude_shaped && !(tokens && missing.is_empty()));
    Facts {
        blank,
        missing: if tokens { missing } else { Vec::new() },
        expires_at_ms: ms("expiresAt"),
        refresh_expires_at_ms: ms("refreshTokenExpiresAt"),
        refresh_fp: REFRESH_TOKEN_FIELDS.iter().find_map(|k| token(k).filter(|t| !t.is_empty())).map(fingerprint),
    }
}

fn has_inference_scope(obj: &Map<String, Value>) -> bool {
    obj.get("scopes").and_then(Value::as_array).is_some_and(|s| s.iter().any(|v| v == INFERENCE_SCOPE))
}

/// Neither token is there: what the CLI leaves of a login it could not refresh.
pub fn tokenless(obj: &Map<String, Value>) -> bool {
    ["accessToken", "refreshToken"].iter().all(|k| obj.get(*k).and_then(Value::as_str).is_none_or(str::is_empty))
}

/// A whole login: never blanked, never missing a token, the expiry or the inference scope.
pub fn usable(obj: &Map<String, Value>) -> bool {
    !facts(obj).blank
}

/// `obj` (tokens there, fields missing) with what it lacks filled in, its tokens kept:
/// `scopes` from `vaults` (Vault's whole copy of this user's login), else the inference
/// scope added; `expiresAt` from `vaults` when it is the same rotation, else `now_ms`,
/// which the CLI takes for expired, so that it refreshes with the local refresh token.
pub fn repair(obj: &Map<String, Value>, vaults: Option<&Map<String, Value>>, now_ms: u64) -> Map<String, Value> {
    let f = facts(obj);
    let vaults = vaults.filter(|v| usable(v));
    let mut fixed = obj.clone();
    if f.missing.contains(&"expiresAt") {
        let same_rotation = vaults.filter(|v| facts(v).refresh_fp == f.refresh_fp);
        let at = same_rotation.and_then(|v| v.get("expiresAt").cloned()).unwrap_or_else(|| now_ms.into());
        fixed.insert("expiresAt".into(), at);
    }
    if f.missing.contains(&"scopes") {
        let scopes = match (vaults.and_then(|v| v.get("scopes")), obj.get("scopes")) {
            (Some(theirs), _) => theirs.clone(),
            (None, Some(Value::Array(ours))) => {
                let mut ours = ours.clone();
                ours.push(INFERENCE_SCOPE.into());
                Value::Array(ours)
            }
            (None, _) => Value::Array(vec![INFERENCE_SCOPE.into()]),
        };
        fixed.insert("scopes".into(), scopes);
    }
    fixed
}

/// A short, non-reversible name for a token, for logs and Vault metadata.
pub fn fingerprint(token: &str) -> String {
    fingerprint_bytes(token.as_bytes())
}

/// [`fingerprint`] of any bytes: the first 12 hex digits of their SHA-256.
pub fn fingerprint_bytes(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::object;
    use serde_json::json;

    #[test]
    fn a_live_object() {
        let f = facts(&object(json!({
            "accessToken": "sk-ant-oat01-x", "refreshToken": "sk-ant-ort01-y",
            "expiresAt": 1_800_000_000_000u64, "refreshTokenExpiresAt": 1_802_000_000_000u64,
            "scopes": ["user:inference", "user:profile"]
        })));
        assert!(!f.blank && f.missing.is_empty());
        assert_eq!(f.expires_at_ms, Some(1_800_000_000_000));
        assert_eq!(f.refresh_expires_at_ms, Some(1_802_000_000_000));
        assert_eq!(f.refresh_fp.as_deref().map(str::len), Some(12));
        assert_ne!(f.refresh_fp.unwrap(), fingerprint("sk-ant-ort01-other"));
    }

    #[test]
    fn blanked_shapes() {
        assert!(facts(&object(json!({"accessToken": "", "refreshToken": "", "expiresAt": 0}))).blank);
        assert!(facts(&object(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 0}))).blank);
        assert!(facts(&object(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 5}))).blank, "no scopes");
        assert!(facts(&object(json!({"accessToken": "a", "refreshToken": ""}))).blank);
        assert!(facts(&object(json!({"accessToken": 5, "refreshToken": "r"}))).blank);
        assert!(facts(&Map::new()).blank);
        // Incomplete: a partial object never counts as a login to keep or back up.
        assert!(facts(&object(json!({"accessToken": "a", "expiresAt": 5}))).blank);
        assert!(facts(&object(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": "5"}))).blank);
        assert!(facts(&object(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 1.5}))).blank);
        // Another tool's object is not judged by Claude's fields.
        assert!(!facts(&object(json!({"id_token": "x", "access_token": "y"}))).blank);
        // ... but its refresh token is fingerprinted, so that its rotations are ordered too.
        let codex = facts(&object(json!({"id_token": "x", "access_token": "y", "refresh_token": "rt-codex"})));
        assert_eq!(codex.refresh_fp, Some(fingerprint("rt-codex")));
        assert!(!codex.blank && codex.missing.is_empty());
        // No tokens: nothing to repair.
        assert!(facts(&object(json!({"accessToken": "", "refreshToken": "", "expiresAt": 0}))).missing.is_empty());
    }

    #[test]
    fn a_login_missing_what_the_cli_needs_is_repaired_keeping_its_tokens() {
        let broken = object(json!({"accessToken": "a", "refreshToken": "r", "subscriptionType": "enterprise"}));
        let f = facts(&broken);
        assert!(f.blank, "never backed up as it is");
        assert_eq!(f.missing, ["expiresAt", "scopes"]);
        assert_eq!(
            facts(&object(
                json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 5, "scopes": ["user:profile"]})
            ))
            .missing,
            ["scopes"]
        );

        let vaults = object(
            json!({"accessToken": "a0", "refreshToken": "r0", "expiresAt": 9, "scopes": ["user:inference", "user:profile"]}),
        );
        let fixed = repair(&broken, Some(&vaults), 1_000);
        assert!(usable(&fixed));
        assert_eq!((&fixed["accessToken"], &fixed["refreshToken"]), (&json!("a"), &json!("r")), "the tokens are kept");
        assert_eq!(fixed["scopes"], json!(["user:inference", "user:profile"]), "scopes from Vault's copy");
        assert_eq!(fixed["expiresAt"], 1_000, "an expiry the CLI takes for expired: it refreshes");
        assert_eq!(fixed["subscriptionType"], "enterprise");

        let same =
            object(json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 7, "scopes": ["user:inference"]}));
        assert_eq!(repair(&broken, Some(&same), 1_000)["expiresAt"], 7, "the same rotation's expiry");
        assert_eq!(repair(&broken, None, 1_000)["scopes"], json!(["user:inference"]));
    }
}
