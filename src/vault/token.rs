//! A token's view of itself (lookup-self, renew-self, revoke-self), an AppRole login,
//! and [`TokenInfo`], what Vault says about a token, read the same way for the agent
//! and the provisioner.
//!
//! It must never put a token into an error or a log line; [`Secret`] carries it.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::client::{Backoff, Request};
use super::{Vault, VaultError};
use crate::secret::Secret;

/// What Vault says about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub accessor: String,
    /// Token and identity policies together: the token's whole authority.
    pub policies: Vec<String>,
    pub meta: HashMap<String, String>,
    pub ttl: Duration,
    pub renewable: bool,
    /// Epoch seconds; `None` for a token without expiry (or an answer without it).
    pub expires_at: Option<u64>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn union(a: &Value, b: &Value) -> Vec<String> {
    let mut all = strings(a);
    for p in strings(b) {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    all
}

impl TokenInfo {
    /// The `data` of a lookup (`auth/token/lookup`, `lookup-self`, `lookup-accessor`).
    pub fn from_lookup(d: &Value) -> TokenInfo {
        TokenInfo {
            accessor: d["accessor"].as_str().unwrap_or_default().to_string(),
            policies: union(&d["policies"], &d["identity_policies"]),
            meta: serde_json::from_value(d["meta"].clone()).unwrap_or_default(),
            ttl: Duration::from_secs(d["ttl"].as_u64().unwrap_or(0)),
            renewable: d["renewable"].as_bool().unwrap_or(false),
            expires_at: d["expire_time"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z').split('.').next()?).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        }
    }

    /// The `auth` of a login, a token creation or a renewal.
    pub fn from_auth(a: &Value) -> TokenInfo {
        let ttl = a["lease_duration"].as_u64().unwrap_or(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        TokenInfo {
            accessor: a["accessor"].as_str().unwrap_or_default().to_string(),
            policies: union(&a["policies"], &a["identity_policies"]),
            meta: serde_json::from_value(a["metadata"].clone()).unwrap_or_default(),
            ttl: Duration::from_secs(ttl),
            renewable: a["renewable"].as_bool().unwrap_or(false),
            expires_at: (ttl > 0).then_some(now + ttl),
        }
    }
}

/// What an AppRole login presents: this user's role-id and secret-id, at `auth/<mount>`.
pub struct AppRoleLogin<'a> {
    pub mount: &'a str,
    pub role_id: &'a Secret,
    pub secret_id: &'a Secret,
}

impl Vault {
    /// The client's own token, looked up with itself: nothing is extended.
    pub async fn lookup_self(&self, backoff: Backoff) -> Result<TokenInfo, VaultError> {
        let r = self.send("token lookup-self", backoff, Request::get("auth/token/lookup-self")).await?;
        Ok(TokenInfo::from_lookup(&r.unwrap_or_default()["data"]))
    }

    /// Renews the client's own token; what Vault says about it afterwards.
    pub async fn renew_self(&self, backoff: Backoff) -> Result<TokenInfo, VaultError> {
        let r = self.send("token renew-self", backoff, Request::post("auth/token/renew-self").json(json!({}))).await?;
        Ok(TokenInfo::from_auth(&r.unwrap_or_default()["auth"]))
    }

    /// Revokes the client's own token.
    pub async fn revoke_self(&self, backoff: Backoff) -> Result<(), VaultError> {
        self.send("token revoke-self", backoff, Request::post("auth/token/revoke-self")).await.map(drop)
    }

    /// Logs in with an AppRole role-id and secret-id.
    pub async fn approle_login(
        &self,
        backoff: Backoff,
        login: &AppRoleLogin<'_>,
    ) -> Result<(Secret, TokenInfo), VaultError> {
        let body = json!({ "role_id": login.role_id.expose(), "secret_id": login.secret_id.expose() });
        let path = format!("auth/{}/login", login.mount);
        let r = self.send("AppRole login", backoff, Request::post(&path).json(body)).await?.unwrap_or_default();
        let auth = &r["auth"];
        let token = auth["client_token"].as_str().ok_or(VaultError::Empty { op: "AppRole login" })?;
        Ok((Secret::new(token), TokenInfo::from_auth(auth)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_identity_policies_count_together() {
        let d = json!({
            "accessor": "acc", "policies": ["a", "b"], "identity_policies": ["b", "c"],
            "meta": { "os_user": "alice" }, "ttl": 60, "renewable": true,
            "expire_time": "2026-12-01T10:00:00.123456Z"
        });
        let t = TokenInfo::from_lookup(&d);
        assert_eq!(t.policies, ["a", "b", "c"]);
        assert_eq!(t.meta["os_user"], "alice");
        assert_eq!((t.ttl, t.renewable), (Duration::from_secs(60), true));
        assert_eq!(t.expires_at, Some(1_796_119_200));
        let a = json!({ "accessor": "acc", "policies": ["a"], "metadata": null, "lease_duration": 0 });
        let t = TokenInfo::from_auth(&a);
        assert!(t.meta.is_empty() && t.expires_at.is_none() && !t.renewable);
    }
}
