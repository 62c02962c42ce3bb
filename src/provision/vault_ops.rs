//! The admin token's Vault calls, as plain JSON requests: policies, KV metadata
//! settings, per-user token roles and periodic tokens, AppRole roles and secret-ids,
//! lookups and revocations. A 403 becomes [`OpsError::MissingCapability`], which names
//! the capability and the path the admin token lacks (deploy/vault/provisioner-admin.hcl
//! grants exactly these requests), never "the token is unknown".
//!
//! Credentials come back wrapped in [`Secret`]; no value is ever put in an error.

use std::time::Duration;

use serde_json::{Value, json};

use crate::secret::Secret;
use crate::vault::client::Method;
use crate::vault::token::TokenInfo;
use crate::vault::{Vault, VaultError, VaultSays};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The admin token is valid (checked first) but its policy does not allow this request.
    #[error(
        "the admin token may not {op}: its policy lacks path \"{path}\" {{ capabilities = [{capability}] }} \
         (Vault answered 403); grant it as deploy/vault/provisioner-admin.hcl does, then re-run"
    )]
    MissingCapability { op: &'static str, capability: &'static str, path: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// What a request needs in a policy, by its method and path.
fn capability(method: &Method, path: &str) -> &'static str {
    match method {
        Method::GET => "\"read\"",
        Method::LIST => "\"list\"",
        Method::DELETE => "\"delete\"",
        _ if path.starts_with("sys/auth/") => "\"create\", \"update\", \"sudo\"",
        _ => "\"create\", \"update\"",
    }
}

/// One admin request; `None` for an empty answer (204).
async fn call(
    v: &Vault,
    op: &'static str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Option<Value>, OpsError> {
    let cap = capability(&method, path);
    match v.raw(op, method, path, body).await {
        Err(VaultError::Denied { status: 403, .. }) => {
            Err(OpsError::MissingCapability { op, capability: cap, path: path.to_string() })
        }
        other => Ok(other?),
    }
}

/// A 404 as "there is none".
fn absent(r: Result<Option<Value>, OpsError>) -> Result<Option<Value>, OpsError> {
    match r {
        Err(OpsError::Vault(VaultError::Rejected { status: 404, .. })) => Ok(None),
        other => other,
    }
}

fn data(v: Option<Value>) -> Value {
    v.map(|mut v| v["data"].take()).unwrap_or(Value::Null)
}

pub async fn policy(v: &Vault, name: &str) -> Result<Option<String>, OpsError> {
    let r = absent(call(v, "read a policy", Method::GET, &format!("sys/policies/acl/{name}"), None).await)?;
    Ok(r.and_then(|r| data(Some(r))["policy"].as_str().map(String::from)))
}

pub async fn put_policy(v: &Vault, name: &str, hcl: &str) -> Result<(), OpsError> {
    let path = format!("sys/policies/acl/{name}");
    call(v, "write a policy", Method::PUT, &path, Some(json!({ "policy": hcl }))).await.map(drop)
}

pub async fn delete_policy(v: &Vault, name: &str) -> Result<(), OpsError> {
    call(v, "delete a policy", Method::DELETE, &format!("sys/policies/acl/{name}"), None).await.map(drop)
}

/// The settings of a secret's versions that the admin owns (users may set only `custom_metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionSettings {
    pub max_versions: u64,
    pub delete_version_after: Duration,
    pub cas_required: bool,
}

/// A secret's version settings as Vault has them, with the metadata version that a
/// metadata check-and-set must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvMetadata {
    pub settings: VersionSettings,
    pub version: u64,
}

/// The secret's settings; `None` when the secret has no metadata yet.
pub async fn version_settings(v: &Vault, mount: &str, path: &str) -> Result<Option<KvMetadata>, OpsError> {
    let r = absent(call(v, "read KV metadata", Method::GET, &format!("{mount}/metadata/{path}"), None).await)?;
    let Some(r) = r else { return Ok(None) };
    let d = data(Some(r));
    let delete_after = d["delete_version_after"].as_str().unwrap_or("0s");
    let settings = VersionSettings {
        max_versions: d["max_versions"].as_u64().unwrap_or(0),
        // Go's duration format ("1h0m0s"); unreadable counts as "not what the roster says".
        delete_version_after: humantime::parse_duration(delete_after).unwrap_or(Duration::MAX),
        cas_required: d["cas_required"].as_bool().unwrap_or(false),
    };
    Ok(Some(KvMetadata { settings, version: d["current_metadata_version"].as_u64().unwrap_or(0) }))
}

/// Writes the settings with metadata check-and-set against `metadata_version`.
pub async fn set_version_settings(
    v: &Vault,
    mount: &str,
    path: &str,
    want: VersionSettings,
    metadata_version: u64,
) -> Result<(), OpsError> {
    let body = json!({
        "max_versions": want.max_versions,
        "delete_version_after": format!("{}s", want.delete_version_after.as_secs()),
        "cas_required": want.cas_required,
        "metadata_cas": metadata_version,
    });
    call(v, "write KV metadata", Method::POST, &format!("{mount}/metadata/{path}"), Some(body)).await.map(drop)
}

/// Looks a user's token up by its value; `None` when Vault does not know it.
pub async fn lookup(v: &Vault, token: &Secret) -> Result<Option<TokenInfo>, OpsError> {
    let body = json!({ "token": token.expose() });
    match v.raw("look a token up", Method::POST, "auth/token/lookup", Some(body)).await {
        Ok(r) => Ok(Some(TokenInfo::from_lookup(&data(r)))),
        // Vault says "bad token" for a token it does not know, "permission denied" for a policy that lacks the path.
        Err(VaultError::Denied { says: Some(VaultSays::BadToken), .. }) => Ok(None),
        Err(VaultError::Rejected { status: 400, .. }) => Ok(None),
        Err(VaultError::Denied { status: 403, .. }) => Err(OpsError::MissingCapability {
            op: "look a token up",
            capability: "\"update\"",
            path: "auth/token/lookup".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The token behind an accessor; `None` when it is gone (revoked, expired).
pub async fn lookup_accessor(v: &Vault, accessor: &str) -> Result<Option<TokenInfo>, OpsError> {
    let body = json!({ "accessor": accessor });
    match call(v, "look a token up by accessor", Method::POST, "auth/token/lookup-accessor", Some(body)).await {
        Ok(r) => Ok(Some(TokenInfo::from_lookup(&data(r)))),
        Err(OpsError::Vault(VaultError::Rejected { status: 400, .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn revoke_accessor(v: &Vault, accessor: &str) -> Result<(), OpsError> {
    let body = json!({ "accessor": accessor });
    call(v, "revoke a token", Method::POST, "auth/token/revoke-accessor", Some(body)).await.map(drop)
}

/// The per-user token role every periodic token of that user is minted from: it allows
/// that user's policy and nothing else, so no mint can give a token more.
pub fn token_role_body(policy: &str, period: Duration) -> Value {
    json!({
        "allowed_policies": [policy],
        "orphan": true,
        "renewable": true,
        "token_period": period.as_secs(),
        "token_no_default_policy": true,
        "token_type": "service",
    })
}

pub async fn token_role(v: &Vault, role: &str) -> Result<Option<Value>, OpsError> {
    let path = format!("auth/token/roles/{role}");
    Ok(absent(call(v, "read a token role", Method::GET, &path, None).await)?.map(|r| data(Some(r))))
}

pub async fn put_token_role(v: &Vault, role: &str, body: Value) -> Result<(), OpsError> {
    call(v, "write a token role", Method::POST, &format!("auth/token/roles/{role}"), Some(body)).await.map(drop)
}

pub async fn delete_token_role(v: &Vault, role: &str) -> Result<(), OpsError> {
    call(v, "delete a token role", Method::DELETE, &format!("auth/token/roles/{role}"), None).await.map(drop)
}

/// A periodic orphan token from the user's token role, with `meta.os_user`.
pub async fn mint(v: &Vault, user: &str, role: &str) -> Result<(Secret, TokenInfo), OpsError> {
    let body = json!({ "policies": [role], "display_name": role, "meta": { "os_user": user } });
    let r = call(v, "mint a token", Method::POST, &format!("auth/token/create/{role}"), Some(body)).await?;
    let r = r.unwrap_or_default();
    let token = r["auth"]["client_token"].as_str().ok_or(VaultError::Empty { op: "token create" })?;
    Ok((Secret::new(token), TokenInfo::from_auth(&r["auth"])))
}

/// Enables AppRole at `auth/<mount>` unless something is mounted there; whether it did.
pub async fn ensure_approle(v: &Vault, mount: &str) -> Result<bool, OpsError> {
    let mounts = call(v, "list auth methods", Method::GET, "sys/auth", None).await?.unwrap_or_default();
    let key = format!("{mount}/");
    if mounts.get(&key).is_some() || mounts["data"].get(&key).is_some() {
        return Ok(false);
    }
    call(v, "enable AppRole", Method::POST, &format!("sys/auth/{mount}"), Some(json!({ "type": "approle" }))).await?;
    Ok(true)
}

/// The role's settings this agent relies on, as Vault reports them.
pub async fn role(v: &Vault, mount: &str, role: &str) -> Result<Option<Value>, OpsError> {
    let path = format!("auth/{mount}/role/{role}");
    Ok(absent(call(v, "read an AppRole role", Method::GET, &path, None).await)?.map(|r| data(Some(r))))
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

/// Whether a role as read matches the body written ([`role_body`], [`token_role_body`]).
pub fn role_matches(have: &Value, want: &Value) -> bool {
    want.as_object().is_some_and(|w| w.iter().all(|(k, v)| &have[k] == v))
}

pub async fn put_role(v: &Vault, mount: &str, role: &str, body: Value) -> Result<(), OpsError> {
    call(v, "write an AppRole role", Method::POST, &format!("auth/{mount}/role/{role}"), Some(body)).await.map(drop)
}

/// Deletes the role; its secret-ids go with it, and its tokens can no longer be renewed.
pub async fn delete_role(v: &Vault, mount: &str, role: &str) -> Result<(), OpsError> {
    call(v, "delete an AppRole role", Method::DELETE, &format!("auth/{mount}/role/{role}"), None).await.map(drop)
}

pub async fn role_id(v: &Vault, mount: &str, role: &str) -> Result<String, OpsError> {
    let path = format!("auth/{mount}/role/{role}/role-id");
    let r = call(v, "read an AppRole role-id", Method::GET, &path, None).await?;
    Ok(data(r)["role_id"].as_str().map(String::from).ok_or(VaultError::Empty { op: "AppRole role-id read" })?)
}

/// The secret-id's accessor, `None` when Vault does not know it (destroyed, expired).
pub async fn secret_id_accessor(
    v: &Vault,
    mount: &str,
    role: &str,
    secret_id: &Secret,
) -> Result<Option<String>, OpsError> {
    let path = format!("auth/{mount}/role/{role}/secret-id/lookup");
    let body = json!({ "secret_id": secret_id.expose() });
    let r = absent(call(v, "look an AppRole secret-id up", Method::POST, &path, Some(body)).await)?;
    Ok(r.and_then(|r| data(Some(r))["secret_id_accessor"].as_str().map(String::from)))
}

/// The accessors of every secret-id the role has.
pub async fn secret_id_accessors(v: &Vault, mount: &str, role: &str) -> Result<Vec<String>, OpsError> {
    let path = format!("auth/{mount}/role/{role}/secret-id");
    let r = absent(call(v, "list AppRole secret-ids", Method::LIST, &path, None).await)?;
    let keys = data(r)["keys"].clone();
    Ok(serde_json::from_value(keys).unwrap_or_default())
}

pub async fn new_secret_id(v: &Vault, mount: &str, role: &str) -> Result<(Secret, String), OpsError> {
    let path = format!("auth/{mount}/role/{role}/secret-id");
    let d = data(call(v, "create an AppRole secret-id", Method::POST, &path, None).await?);
    let id = d["secret_id"].as_str().ok_or(VaultError::Empty { op: "AppRole secret-id create" })?;
    Ok((Secret::new(id), d["secret_id_accessor"].as_str().unwrap_or_default().to_string()))
}

pub async fn destroy_secret_id_accessor(v: &Vault, mount: &str, role: &str, accessor: &str) -> Result<(), OpsError> {
    let path = format!("auth/{mount}/role/{role}/secret-id-accessor/destroy");
    let body = json!({ "secret_id_accessor": accessor });
    call(v, "destroy an AppRole secret-id", Method::POST, &path, Some(body)).await.map(drop)
}
