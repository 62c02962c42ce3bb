//! Which of two logins is newer, without trusting the clock alone.
//!
//! Refresh tokens rotate, so "newer" means "written later", and a clock stepped back,
//! a manual `kv put` or a second writer can make `expiresAt` say the opposite. Two
//! facts order logins whatever the clock says:
//!
//! - Vault's lineage: the secret's `custom_metadata` names the refresh-token fingerprint
//!   of the latest version and those of the versions this agent saw before it (most
//!   recent first). Metadata whose fingerprint matches the latest version describes it;
//!   a local login whose fingerprint Vault held *before* is older than Vault's copy.
//! - A rotation the agent saw: the CLI replaced the login during the agent's own probe,
//!   so what is on disk now is newer than what was probed.
//!
//! Only where neither applies is `expiresAt` consulted, and a Vault copy that only
//! `expiresAt` calls newer is [`Order::VaultNewer`] with `proven: false`: the agent
//! cannot tell (a clock stepped back and a home restored from a backup look the same),
//! and says so rather than stop backing up in silence.
//!
//! It must never put a token in the metadata: fingerprints are 12 hex digits of SHA-256.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::template::oauth;

/// The refresh-token fingerprint of the version the metadata describes.
pub const FINGERPRINT: &str = "refresh_token_sha256_prefix";
/// Those of earlier versions, most recent first, comma-separated.
pub const EARLIER: &str = "earlier_refresh_token_sha256_prefixes";
const HOST: &str = "host";
/// How many earlier fingerprints are kept: weeks of rotations, well within a
/// custom_metadata value's 512 bytes.
const KEEP: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The same rotation (the same refresh token).
    Same,
    LocalNewer,
    /// `proven`: by the lineage; otherwise only by `expiresAt`.
    VaultNewer {
        proven: bool,
    },
    /// Nothing tells them apart (no lineage, no expiry).
    Unknown,
}

/// Orders `local` against Vault's copy `vaults`, whose secret carries `meta`.
/// `rotated_from`: the login `local` replaced on disk during this run's probe.
pub fn order(
    local: &Map<String, Value>,
    vaults: &Map<String, Value>,
    meta: &HashMap<String, String>,
    rotated_from: Option<&Map<String, Value>>,
) -> Order {
    let (mine, theirs) = (oauth::facts(local), oauth::facts(vaults));
    if mine.refresh_fp.is_some() && mine.refresh_fp == theirs.refresh_fp {
        return Order::Same;
    }
    if theirs.refresh_fp.is_some()
        && rotated_from.is_some_and(|from| oauth::facts(from).refresh_fp == theirs.refresh_fp)
    {
        return Order::LocalNewer;
    }
    if let Some(fp) = &mine.refresh_fp
        && describes(meta, vaults)
        && earlier(meta).any(|e| e == fp)
    {
        return Order::VaultNewer { proven: true };
    }
    match (mine.expires_at_ms, theirs.expires_at_ms) {
        (Some(l), Some(v)) if l > v => Order::LocalNewer,
        (Some(l), Some(v)) if v > l => Order::VaultNewer { proven: false },
        _ => Order::Unknown,
    }
}

/// A Vault copy and the metadata beside it.
pub type Described<'a> = (&'a Map<String, Value>, &'a HashMap<String, String>);

/// The metadata to store with `obj`, written over Vault's copy `replacing` (with its
/// metadata): the lineage grows by the copy it replaces.
pub fn metadata(
    obj: &Map<String, Value>,
    replacing: Option<Described<'_>>,
    host: Option<&str>,
) -> HashMap<String, String> {
    let f = oauth::facts(obj);
    let mut m = HashMap::new();
    if let Some(h) = host {
        m.insert(HOST.into(), h.to_string());
    }
    m.insert("agent_version".into(), env!("CARGO_PKG_VERSION").into());
    if let Some(e) = f.expires_at_ms {
        m.insert("expires_at".into(), e.to_string());
    }
    if let Some(r) = f.refresh_expires_at_ms {
        m.insert("refresh_token_expires_at".into(), r.to_string());
    }
    let mut earlier: Vec<String> = Vec::new();
    if let Some((old, old_meta)) = replacing
        && let Some(old_fp) = oauth::facts(old).refresh_fp
    {
        earlier.push(old_fp);
        if describes(old_meta, old) {
            earlier.extend(self::earlier(old_meta).map(str::to_string));
        }
    }
    if let Some(fp) = f.refresh_fp {
        earlier.retain(|e| *e != fp);
        m.insert(FINGERPRINT.into(), fp);
    }
    earlier.dedup();
    earlier.truncate(KEEP);
    if !earlier.is_empty() {
        m.insert(EARLIER.into(), earlier.join(","));
    }
    m
}

/// This machine's name, as the metadata records it.
pub fn this_host() -> Option<String> {
    rustix::system::uname().nodename().to_str().ok().map(str::to_string)
}

/// The metadata was written with this very copy (not left over from an older version,
/// and not beside a copy someone put there by hand).
fn describes(meta: &HashMap<String, String>, vaults: &Map<String, Value>) -> bool {
    oauth::facts(vaults).refresh_fp.is_some_and(|fp| meta.get(FINGERPRINT) == Some(&fp))
}

fn earlier(meta: &HashMap<String, String>) -> impl Iterator<Item = &str> {
    meta.get(EARLIER).map(String::as_str).unwrap_or_default().split(',').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn login(refresh: &str, expires_at: u64) -> Map<String, Value> {
        json!({"accessToken": "a", "refreshToken": refresh, "expiresAt": expires_at, "scopes": ["user:inference"]})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn the_lineage_orders_logins_whatever_expires_at_says() {
        let host = Some("ws1");
        let (a, b, c) = (login("rt-a", 300), login("rt-b", 100), login("rt-c", 200));
        // Vault held a, then b over a, then c over b.
        let meta_b = metadata(&b, Some((&a, &HashMap::new())), host);
        let meta_c = metadata(&c, Some((&b, &meta_b)), host);
        assert_eq!(meta_c[EARLIER], format!("{},{}", oauth::fingerprint("rt-b"), oauth::fingerprint("rt-a")));
        assert_eq!(meta_c[HOST], "ws1");
        assert!(!meta_c.values().any(|v| v.contains("rt-")), "fingerprints only");

        // a has the latest expiresAt (a clock stepped back since), and yet it is older.
        assert_eq!(order(&a, &c, &meta_c, None), Order::VaultNewer { proven: true });
        assert_eq!(order(&c, &c, &meta_c, None), Order::Same);
        // The CLI replaced c with d during the probe: d is newer, even with an older expiry.
        let d = login("rt-d", 50);
        assert_eq!(order(&d, &c, &meta_c, Some(&c)), Order::LocalNewer);
        // Otherwise only the expiry speaks, and a Vault copy it calls newer is not proven.
        assert_eq!(order(&d, &c, &meta_c, None), Order::VaultNewer { proven: false });
        assert_eq!(order(&login("rt-d", 250), &c, &meta_c, None), Order::LocalNewer);
        // Metadata that describes another version (a kv put by hand) proves nothing.
        let by_hand = login("rt-x", 900);
        assert_eq!(order(&a, &by_hand, &meta_c, None), Order::VaultNewer { proven: false });
        let other_tool = crate::template::object(json!({"token": "t"}));
        assert_eq!(order(&other_tool, &other_tool.clone(), &HashMap::new(), None), Order::Unknown);
    }

    #[test]
    fn the_lineage_is_bounded_and_never_lists_the_current_copy() {
        let host = Some("ws1");
        let mut prev = login("rt-0", 1);
        let mut meta = HashMap::new();
        for i in 1..100 {
            let next = login(&format!("rt-{i}"), 1);
            meta = metadata(&next, Some((&prev, &meta)), host);
            prev = next;
        }
        let earlier: Vec<&str> = meta[EARLIER].split(',').collect();
        assert_eq!(earlier.len(), KEEP);
        assert_eq!(earlier[0], oauth::fingerprint("rt-98"));
        assert!(meta[EARLIER].len() < 512);
        // The same rotation written again (fields repaired): not its own ancestor.
        let again = metadata(&prev, Some((&prev, &meta)), host);
        assert_eq!(again[EARLIER], meta[EARLIER]);
    }
}
