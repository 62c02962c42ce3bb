//! The Vault calls of provisioning, as plain JSON requests: policies, KV metadata,
//! periodic tokens, AppRole roles and secret-ids with the admin token, and the
//! user's own view of their credential (lookup-self, AppRole login) without it.
//!
//! Credentials come back wrapped in [`Secret`]; no value is ever put in an error.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::secret::Secret;
use crate::vault::client::Method;
use crate::vault::{Vault, VaultError};

/// What Vault says about a token.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub accessor: String,
    pub policies: Vec<String>,
    pub meta: HashMap<String, String>,
    pub ttl: Duration,
    /// Epoch seconds; `None` for a token without expiry.
    pub expires_at: Option<u64>,
}

impl TokenInfo {
    fn from_data(d: &Value) -> TokenInfo {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().map(|a| a.iter().filter_map(|p| p.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        let mut policies = strings(&d["policies"]);
        policies.extend(strings(&d["identity_policies"]));
        TokenInfo {
            accessor: d["accessor"].as_str().unwrap_or_default().to_string(),
            policies,
            meta: serde_json::from_value(d["meta"].clone()).unwrap_or_default(),
            ttl: Duration::from_secs(d["ttl"].as_u64().unwrap_or(0)),
            expires_at: d["expire_time"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z').split('.').next()?).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs()),
        }
    }
}

fn data(v: Option<Value>) -> Value {
    v.map(|mut v| v["data"].take()).unwrap_or(Value::Null)
}

/// `Ok(None)` for a 404 (or an empty answer), the answer otherwise.
fn absent_ok(r: Result<Option<Value>, VaultError>) -> Result<Option<Value>, VaultError> {
    match r {
        Err(VaultError::Rejected { status: 404, .. }) => Ok(None),
        other => other,
    }
}

pub async fn policy(v: &Vault, name: &str) -> Result<Option<String>, VaultError> {
    let r = absent_ok(v.raw("policy read", Method::GET, &format!("sys/policies/acl/{name}"), None).await)?;
    Ok(r.and_then(|r| data(Some(r))["policy"].as_str().map(String::from)))
}

pub async fn put_policy(v: &Vault, name: &str, hcl: &str) -> Result<(), VaultError> {
    v.raw("policy write", Method::PUT, &format!("sys/policies/acl/{name}"), Some(json!({ "policy": hcl })))
        .await
        .map(drop)
}

pub async fn delete_policy(v: &Vault, name: &str) -> Result<(), VaultError> {
    v.raw("policy delete", Method::DELETE, &format!("sys/policies/acl/{name}"), None).await.map(drop)
}

pub async fn max_versions(v: &Vault, mount: &str, path: &str) -> Result<Option<u64>, VaultError> {
    let r = absent_ok(v.raw("KV metadata read", Method::GET, &format!("{mount}/metadata/{path}"), None).await)?;
    Ok(r.and_then(|r| data(Some(r))["max_versions"].as_u64()))
}

pub async fn set_max_versions(v: &Vault, mount: &str, path: &str, n: u64) -> Result<(), VaultError> {
    v.raw("KV metadata write", Method::POST, &format!("{mount}/metadata/{path}"), Some(json!({ "max_versions": n })))
        .await
        .map(drop)
}

/// Looks a token up with the admin token; `None` when Vault does not know it (revoked, expired).
pub async fn lookup(v: &Vault, token: &Secret) -> Result<Option<TokenInfo>, VaultError> {
    match v.raw("token lookup", Method::POST, "auth/token/lookup", Some(json!({ "token": token.expose() }))).await {
        Ok(r) => Ok(Some(TokenInfo::from_data(&data(r)))),
        Err(VaultError::Denied { .. }) | Err(VaultError::Rejected { status: 400, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An orphan periodic token with exactly `policy` and `meta.os_user`.
pub async fn mint(v: &Vault, user: &str, policy: &str, period: Duration) -> Result<(Secret, TokenInfo), VaultError> {
    let body = json!({
        "policies": [policy],
        "no_default_policy": true,
        "period": format!("{}s", period.as_secs()),
        "renewable": true,
        "display_name": format!("claude-auth-sync-{user}"),
        "meta": { "os_user": user },
    });
    let r = v.raw("token create", Method::POST, "auth/token/create-orphan", Some(body)).await?.unwrap_or_default();
    let auth = &r["auth"];
    let token = auth["client_token"].as_str().ok_or(VaultError::Empty { op: "token create" })?;
    let info = TokenInfo {
        accessor: auth["accessor"].as_str().unwrap_or_default().to_string(),
        policies: vec![policy.to_string()],
        meta: HashMap::from([("os_user".to_string(), user.to_string())]),
        ttl: Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0)),
        expires_at: None,
    };
    Ok((Secret::new(token), info))
}

pub async fn revoke_accessor(v: &Vault, accessor: &str) -> Result<(), VaultError> {
    match v.raw("token revoke", Method::POST, "auth/token/revoke-accessor", Some(json!({ "accessor": accessor }))).await
    {
        // Already gone is what was wanted.
        Ok(_) | Err(VaultError::Rejected { status: 400, .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn ensure_approle(v: &Vault, mount: &str) -> Result<bool, VaultError> {
    let mounts = v.raw("auth list", Method::GET, "sys/auth", None).await?.unwrap_or_default();
    let key = format!("{mount}/");
    if mounts.get(&key).is_some() || mounts["data"].get(&key).is_some() {
        return Ok(false);
    }
    v.raw("auth enable", Method::POST, &format!("sys/auth/{mount}"), Some(json!({ "type": "approle" }))).await?;
    Ok(true)
}

/// The role's settings this agent relies on, as Vault reports them.
pub async fn role(v: &Vault, mount: &str, role: &str) -> Result<Option<Value>, VaultError> {
    Ok(absent_ok(v.raw("AppRole role read", Method::GET, &format!("auth/{mount}/role/{role}"), None).await)?
        .map(|r| data(Some(r))))
}

pub fn role_body(policy: &str, period: Duration) -> Value {
    json!({
        "token_policies": [policy],
        "token_no_default_policy": true,
        "token_period": period.as_secs(),
        "token_type": "service",
        "secret_id_num_uses": 0,
        "secret_id_ttl": 0,
        "bind_secret_id": true,
    })
}

/// Whether the role as read matches [`role_body`].
pub fn role_matches(have: &Value, want: &Value) -> bool {
    want.as_object().is_some_and(|w| w.iter().all(|(k, v)| &have[k] == v))
}

pub async fn put_role(v: &Vault, mount: &str, role: &str, body: Value) -> Result<(), VaultError> {
    v.raw("AppRole role write", Method::POST, &format!("auth/{mount}/role/{role}"), Some(body)).await.map(drop)
}

pub async fn delete_role(v: &Vault, mount: &str, role: &str) -> Result<(), VaultError> {
    v.raw("AppRole role delete", Method::DELETE, &format!("auth/{mount}/role/{role}"), None).await.map(drop)
}

pub async fn role_id(v: &Vault, mount: &str, role: &str) -> Result<String, VaultError> {
    let r = v.raw("AppRole role-id read", Method::GET, &format!("auth/{mount}/role/{role}/role-id"), None).await?;
    data(r)["role_id"].as_str().map(String::from).ok_or(VaultError::Empty { op: "AppRole role-id read" })
}

/// The secret-id's accessor, `None` when Vault does not know it (destroyed, expired).
pub async fn secret_id_accessor(
    v: &Vault,
    mount: &str,
    role: &str,
    secret_id: &Secret,
) -> Result<Option<String>, VaultError> {
    let path = format!("auth/{mount}/role/{role}/secret-id/lookup");
    let r = absent_ok(
        v.raw("AppRole secret-id lookup", Method::POST, &path, Some(json!({ "secret_id": secret_id.expose() }))).await,
    )?;
    Ok(r.and_then(|r| data(Some(r))["secret_id_accessor"].as_str().map(String::from)))
}

pub async fn new_secret_id(v: &Vault, mount: &str, role: &str) -> Result<(Secret, String), VaultError> {
    let r =
        v.raw("AppRole secret-id create", Method::POST, &format!("auth/{mount}/role/{role}/secret-id"), None).await?;
    let d = data(r);
    let id = d["secret_id"].as_str().ok_or(VaultError::Empty { op: "AppRole secret-id create" })?;
    Ok((Secret::new(id), d["secret_id_accessor"].as_str().unwrap_or_default().to_string()))
}

pub async fn destroy_secret_id_accessor(v: &Vault, mount: &str, role: &str, accessor: &str) -> Result<(), VaultError> {
    let path = format!("auth/{mount}/role/{role}/secret-id-accessor/destroy");
    v.raw("AppRole secret-id destroy", Method::POST, &path, Some(json!({ "secret_id_accessor": accessor })))
        .await
        .map(drop)
}

/// The user's own token, looked up with itself.
pub async fn lookup_self(user_vault: &Vault) -> Result<TokenInfo, VaultError> {
    let r = user_vault.raw("token lookup-self", Method::GET, "auth/token/lookup-self", None).await?;
    Ok(TokenInfo::from_data(&data(r)))
}

/// Logs in with the user's AppRole; returns the new token.
pub async fn approle_login(v: &Vault, mount: &str, role_id: &Secret, secret_id: &Secret) -> Result<Secret, VaultError> {
    let body = json!({ "role_id": role_id.expose(), "secret_id": secret_id.expose() });
    let r = v.raw("AppRole login", Method::POST, &format!("auth/{mount}/login"), Some(body)).await?.unwrap_or_default();
    r["auth"]["client_token"].as_str().map(Secret::new).ok_or(VaultError::Empty { op: "AppRole login" })
}

pub async fn revoke_self(user_vault: &Vault) -> Result<(), VaultError> {
    user_vault.raw("token revoke-self", Method::POST, "auth/token/revoke-self", None).await.map(drop)
}
