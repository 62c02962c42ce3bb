//! KV v2 for one secret: read the latest version (never an older one: refresh tokens
//! rotate, and replaying an old one can revoke the live login), write with
//! check-and-set against the version read, and set non-secret `custom_metadata`.
//!
//! It must never ask for `?version=`, and never return a value in an error.

use std::collections::HashMap;

use serde_json::{Map, Value};
use vaultrs::api::kv2::requests::{SetSecretMetadataRequest, SetSecretRequestOptions};

use super::client::Method;
use super::{Vault, VaultError};

/// A KV v2 secret: the mount and the path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPath {
    pub mount: String,
    pub path: String,
}

impl KvPath {
    /// `secret/workstation/claude-users/alice` → mount `secret`, path `workstation/claude-users/alice`.
    pub fn parse(secret: &str) -> Option<KvPath> {
        let (mount, path) = secret.trim_matches('/').split_once('/')?;
        (!mount.is_empty() && !path.is_empty()).then(|| KvPath { mount: mount.into(), path: path.into() })
    }
}

impl std::fmt::Display for KvPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.mount, self.path)
    }
}

/// The latest version of a secret and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub version: u64,
    pub data: Map<String, Value>,
    /// The latest version is soft-deleted (`data` is empty); a write must name `version`.
    pub deleted: bool,
    /// The secret's `custom_metadata` (non-secret facts), as the read returned it.
    pub custom_metadata: HashMap<String, String>,
}

/// What a check-and-set write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Version(u64),
    /// Someone wrote a newer version since the one read; nothing was written.
    Conflict,
}

impl Vault {
    /// The latest version; `None` when the secret does not exist, `deleted` when its
    /// latest version is soft-deleted or destroyed.
    pub async fn kv_read_latest(&self, p: &KvPath) -> Result<Option<Versioned>, VaultError> {
        let path = format!("{}/data/{}", p.mount, p.path);
        let (status, body) = self.raw_status("KV read", Method::GET, &path, None, true).await?;
        let body = body.unwrap_or_default();
        let version = body["data"]["metadata"]["version"].as_u64();
        let custom_metadata = match &body["data"]["metadata"]["custom_metadata"] {
            Value::Object(m) => m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect(),
            _ => HashMap::new(),
        };
        let versioned = |data: Map<String, Value>, deleted| Versioned {
            version: version.unwrap_or_default(),
            data,
            deleted,
            custom_metadata,
        };
        match (status, &body["data"]["data"], version) {
            (404, _, Some(_)) => Ok(Some(versioned(Map::new(), true))),
            (404, _, None) => Ok(None),
            (_, Value::Object(data), Some(_)) => Ok(Some(versioned(data.clone(), false))),
            (_, Value::Null, Some(_)) => Ok(Some(versioned(Map::new(), true))),
            _ => {
                Err(VaultError::Protocol { op: "KV read", detail: "the answer has no data object and version".into() })
            }
        }
    }

    /// Writes `data` as a new version if the latest is still `cas` (0: only if absent).
    pub async fn kv_write_cas(&self, p: &KvPath, data: &Map<String, Value>, cas: u64) -> Result<Written, VaultError> {
        let cas = u32::try_from(cas)
            .map_err(|_| VaultError::Protocol { op: "KV write", detail: "version number out of range".into() })?;
        let written = self
            .call("KV write", async |c| {
                vaultrs::kv2::set_with_options(c, &p.mount, &p.path, data, SetSecretRequestOptions { cas }).await
            })
            .await;
        match written {
            Ok(meta) => Ok(Written::Version(meta.version)),
            Err(VaultError::Rejected { status: 400, detail, .. }) if detail.contains("check-and-set") => {
                Ok(Written::Conflict)
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces the secret's `custom_metadata` (non-secret facts only).
    pub async fn kv_set_custom_metadata(&self, p: &KvPath, facts: &HashMap<String, String>) -> Result<(), VaultError> {
        self.call("KV metadata write", async |c| {
            let mut req = SetSecretMetadataRequest::builder();
            req.custom_metadata(facts.clone());
            vaultrs::kv2::set_metadata(c, &p.mount, &p.path, Some(&mut req)).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_mount_and_path() {
        assert_eq!(
            KvPath::parse("secret/workstation/claude-users/alice"),
            Some(KvPath { mount: "secret".into(), path: "workstation/claude-users/alice".into() })
        );
        assert_eq!(KvPath::parse("/kv/x/").unwrap().to_string(), "kv/x");
        assert_eq!(KvPath::parse("secret"), None);
        assert_eq!(KvPath::parse("secret/"), None);
    }
}
