//! KV v2 for one secret: find its mount (nested mounts such as `team/kv` included; a
//! KV v1 mount is refused; usually found by the first read itself, so that a run that
//! changes nothing costs one KV request), read the latest version (never an older one: refresh
//! tokens rotate, and replaying an old one can revoke the live login), write with
//! check-and-set against the version read, and set non-secret `custom_metadata`
//! (with metadata check-and-set where the mount requires it).
//!
//! It must never ask for `?version=`, and never return a value in an error.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use vaultrs::api::kv2::requests::SetSecretRequestOptions;

use super::client::{Answer, Method};
use super::{Vault, VaultError, VaultSays};
use crate::config::SecretPath;

/// A KV v2 secret: the mount and the path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPath {
    pub mount: String,
    pub path: String,
}

impl KvPath {
    /// `secret/workstation/claude-users/alice` with the mount `secret/` → mount `secret`,
    /// path `workstation/claude-users/alice`; `None` when the secret is not inside the mount.
    pub fn split(secret: &SecretPath, mount: &str) -> Option<KvPath> {
        let path = secret.within(mount)?;
        Some(KvPath { mount: mount.trim_matches('/').into(), path: path.into() })
    }

    fn data_path(&self) -> String {
        format!("{}/data/{}", self.mount, self.path)
    }
}

/// The secrets engine mounted at a path, as `sys/internal/ui/mounts/<path>` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Without the trailing slash, e.g. `team/kv`.
    pub path: String,
    pub kind: String,
    pub version: Option<String>,
}

impl Mount {
    /// Refuses anything but KV version 2, with what to do instead.
    pub fn require_kv2(&self, what: &str) -> Result<(), VaultError> {
        match (self.kind.as_str(), self.version.as_deref()) {
            ("kv", Some("2")) => Ok(()),
            ("kv", _) => Err(VaultError::Unsupported {
                detail: format!(
                    "{what} is on the KV version 1 mount {}/: claude-auth-sync needs KV version 2 (versions and \
                     check-and-set); upgrade it with `bao kv enable-versioning {}` or use a KV v2 mount",
                    self.path, self.path
                ),
            }),
            (other, _) => Err(VaultError::Unsupported {
                detail: format!("{what} is on the mount {}/ of type {other}, not a KV version 2 mount", self.path),
            }),
        }
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
    /// The mount that holds `path`. Any token with a capability under `path` may ask;
    /// Vault answers 403 when there is no mount there or the token has no access.
    pub async fn mount_of(&self, path: &str) -> Result<Mount, VaultError> {
        let lookup = format!("sys/internal/ui/mounts/{}", path.trim_matches('/'));
        let d = self.raw("mount lookup", Method::GET, &lookup, None).await?.unwrap_or_default()["data"].take();
        let mount = d["path"].as_str().map(|p| p.trim_end_matches('/').to_string()).filter(|p| !p.is_empty());
        let (Some(path), Some(kind)) = (mount, d["type"].as_str()) else {
            return Err(VaultError::Protocol { op: "mount lookup", detail: "the answer names no mount".into() });
        };
        Ok(Mount { path, kind: kind.into(), version: d["options"]["version"].as_str().map(String::from) })
    }

    /// Where a template's `secret` (`mount/path`) lives: its KV v2 mount and the path inside it.
    pub async fn kv_locate(&self, secret: &SecretPath) -> Result<KvPath, VaultError> {
        let mount = self.mount_of(secret.as_str()).await?;
        mount.require_kv2(secret.as_str())?;
        KvPath::split(secret, &mount.path).ok_or_else(|| VaultError::Unsupported {
            detail: format!("{secret} names the mount {}/ itself, not a secret inside it", mount.path),
        })
    }

    /// The latest version; `None` when the secret does not exist, `deleted` when its
    /// latest version is soft-deleted or destroyed.
    pub async fn kv_read_latest(&self, p: &KvPath) -> Result<Option<Versioned>, VaultError> {
        latest_from(self.get_or_not_found("KV read", &p.data_path()).await?)
    }

    /// Where `secret` lives and its latest version, in one request when the mount is
    /// the first segment of the path (`secret/...`, the usual case): a KV v2 answer
    /// names its version, which a KV v1 mount or any other engine never adds on its own.
    /// Anything else (a nested mount such as `team/kv`, whose guess Vault denies; a bare
    /// 404, which a KV v1 mount answers too; another shape) asks Vault for the mount
    /// first, as [`Vault::kv_locate`] does, so a KV v1 mount is still refused with what
    /// to do. Only a KV v1 secret stored at `data/<path>` that itself holds a KV v2
    /// answer's shape could pass for one, and only its own writer can store it there.
    pub async fn kv_locate_and_read(&self, secret: &SecretPath) -> Result<(KvPath, Option<Versioned>), VaultError> {
        let guess = secret.as_str().split_once('/').and_then(|(mount, _)| KvPath::split(secret, mount));
        let mut absent_at_guess = false;
        if let Some(guess) = &guess {
            match self.get_or_not_found("KV read", &guess.data_path()).await {
                Ok(answer) => match latest_from(answer) {
                    Ok(Some(latest)) => return Ok((guess.clone(), Some(latest))),
                    Ok(None) => absent_at_guess = true,
                    Err(_) => {}
                },
                // A mount lookup would meet the same trouble.
                Err(e) if e.is_transient() => return Err(e),
                Err(_) => {}
            }
        }
        let located = self.kv_locate(secret).await?;
        if absent_at_guess && guess.as_ref() == Some(&located) {
            return Ok((located, None));
        }
        let latest = self.kv_read_latest(&located).await?;
        Ok((located, latest))
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
            Err(VaultError::Rejected { status: 400, says: Some(VaultSays::CheckAndSet), .. }) => Ok(Written::Conflict),
            Err(e) => Err(e),
        }
    }

    /// Replaces the secret's `custom_metadata` (non-secret facts only). Where the mount
    /// or the key requires metadata check-and-set, it reads the metadata version and
    /// writes against it (again if another writer got in between).
    pub async fn kv_set_custom_metadata(&self, p: &KvPath, facts: &HashMap<String, String>) -> Result<(), VaultError> {
        let path = format!("{}/metadata/{}", p.mount, p.path);
        let mut body = json!({ "custom_metadata": facts });
        for _ in 0..3 {
            match self.raw("KV metadata write", Method::POST, &path, Some(body.clone())).await {
                Ok(_) => return Ok(()),
                Err(VaultError::Rejected { status: 400, says: Some(VaultSays::CheckAndSet), .. }) => {
                    body["metadata_cas"] = json!(self.kv_metadata_version(p).await?);
                }
                Err(e) => return Err(e),
            }
        }
        Err(VaultError::Rejected {
            op: "KV metadata write",
            status: 400,
            detail: "the metadata kept changing between its read and the write (metadata check-and-set)".into(),
            says: Some(VaultSays::CheckAndSet),
        })
    }

    /// `current_metadata_version` of the secret (0 for a secret without metadata yet).
    pub async fn kv_metadata_version(&self, p: &KvPath) -> Result<u64, VaultError> {
        let path = format!("{}/metadata/{}", p.mount, p.path);
        match self.raw("KV metadata read", Method::GET, &path, None).await {
            Ok(r) => Ok(r.unwrap_or_default()["data"]["current_metadata_version"].as_u64().unwrap_or(0)),
            Err(VaultError::Rejected { status: 404, .. }) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// A read of `<mount>/data/<path>`: `None` for a bare 404 (no such secret), `deleted`
/// for a soft-deleted or destroyed latest version; an answer without a version is no
/// KV v2 answer.
fn latest_from(answer: Answer) -> Result<Option<Versioned>, VaultError> {
    let not_found = matches!(answer, Answer::NotFound(_));
    let body = answer.into_body().unwrap_or_default();
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
    match (not_found, &body["data"]["data"], version) {
        (true, _, Some(_)) => Ok(Some(versioned(Map::new(), true))),
        (true, _, None) => Ok(None),
        (_, Value::Object(data), Some(_)) => Ok(Some(versioned(data.clone(), false))),
        (_, Value::Null, Some(_)) => Ok(Some(versioned(Map::new(), true))),
        _ => Err(VaultError::Protocol { op: "KV read", detail: "the answer has no data object and version".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_at_their_mount() {
        let split = |secret: &str, mount: &str| KvPath::split(&SecretPath::parse(secret).unwrap(), mount);
        assert_eq!(
            split("secret/workstation/claude-users/alice", "secret/"),
            Some(KvPath { mount: "secret".into(), path: "workstation/claude-users/alice".into() })
        );
        assert_eq!(split("team/kv/ws/alice", "team/kv").unwrap().to_string(), "team/kv/ws/alice");
        assert_eq!(split("team/kv/ws/alice", "team/kv").unwrap().mount, "team/kv");
        assert_eq!(split("kv/x", "/kv/").unwrap().to_string(), "kv/x");
        assert_eq!(split("secret/x", "secret/x"), None);
        assert_eq!(split("secretive/x", "secret"), None);
    }

    #[test]
    fn only_an_answer_with_a_version_is_a_kv2_read() {
        let found = |body: Value| latest_from(Answer::Found(Some(body)));
        let v2 = found(
            json!({ "data": { "data": { "k": 1 }, "metadata": { "version": 3, "custom_metadata": { "a": "b" } } } }),
        );
        let v2 = v2.unwrap().unwrap();
        assert_eq!((v2.version, v2.deleted, v2.custom_metadata["a"].as_str()), (3, false, "b"));
        // What a KV v1 mount answers for the key `data/<path>`: no version, no KV v2 read.
        assert!(found(json!({ "data": { "k": 1 } })).is_err());
        assert_eq!(latest_from(Answer::NotFound(Some(json!({ "errors": [] })))).unwrap(), None);
        let deleted = json!({ "data": { "data": null, "metadata": { "version": 4 } } });
        assert!(latest_from(Answer::NotFound(Some(deleted))).unwrap().unwrap().deleted);
    }

    #[test]
    fn only_kv_version_2_is_accepted() {
        let m = |kind: &str, v: Option<&str>| Mount {
            path: "team/kv".into(),
            kind: kind.into(),
            version: v.map(String::from),
        };
        assert!(m("kv", Some("2")).require_kv2("x").is_ok());
        let v1 = m("kv", Some("1")).require_kv2("team/kv/a").unwrap_err().to_string();
        assert!(v1.contains("KV version 1") && v1.contains("enable-versioning team/kv"), "{v1}");
        assert!(m("kv", None).require_kv2("x").is_err());
        assert!(m("transit", None).require_kv2("x").unwrap_err().to_string().contains("type transit"));
    }
}
