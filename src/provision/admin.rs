//! The admin run, user by user: the home checked first, then the user's policy, the
//! settings of the user's versions, the credential of the roster's auth mode (the
//! other mode's retired), the config file and the timer. Before any user, the
//! [`preflight`] proves the admin token valid and the KV mount a KV v2 mount.
//!
//! It never touches Vault for a user whose home is hostile, and never reads a 403 as
//! "the token is unknown": the token was proven valid first, so a 403 names the
//! capability its policy lacks.

use super::credentials::Target;
use super::error::{ProvisionError, UserError};
use super::files::{CONFIG_FILE, cred_files};
use super::home::{AgentDir, IfMissing};
use super::roster::{AuthMode, RosterUser, VaultSection};
use super::summary::{Change, UserSummary, Verb};
use super::{Ctx, ExistingConfig, policy, vault_ops};
use crate::vault::{Vault, VaultError};

/// Checks the admin token and the KV mount before anything is changed.
pub(super) async fn preflight(vault: &Vault, v: &VaultSection) -> Result<(), ProvisionError> {
    // The admin token looked up with itself: Vault knows it before any later 403 is
    // read as a missing capability.
    vault.lookup_self(vault.default_backoff()).await.map_err(|e| match e {
        VaultError::Denied { .. } => ProvisionError::AdminTokenUnknown,
        e => ProvisionError::AdminTokenLookup(e),
    })?;
    check_kv_mount(vault, v).await
}

/// The roster's `kv_mount` must be exactly a KV v2 mount.
async fn check_kv_mount(vault: &Vault, v: &VaultSection) -> Result<(), ProvisionError> {
    let mount = vault.mount_of(&format!("{}/{}", v.kv_mount, v.path_prefix)).await.map_err(|e| match e {
        VaultError::Denied { .. } => ProvisionError::KvMountMissing { mount: v.kv_mount.clone() },
        error => ProvisionError::KvMountLookup { mount: v.kv_mount.clone(), error },
    })?;
    mount.require_kv2(&format!("vault.kv_mount {}", v.kv_mount)).map_err(ProvisionError::KvMountNotKv2)?;
    if mount.path != v.kv_mount {
        return Err(ProvisionError::KvMountInside { mount: v.kv_mount.clone(), actual: mount.path });
    }
    Ok(())
}

impl Ctx<'_> {
    pub(super) async fn admin_user(&mut self, user: &RosterUser) -> UserSummary {
        let mut r = UserSummary::new(&user.name);
        let auth = self.section().auth;
        // The home first: a hostile path aborts before Vault is touched.
        let missing = if self.dry() { IfMissing::Leave } else { IfMissing::Create };
        let dir = match AgentDir::open(&user.os, missing) {
            Ok(d) => d,
            Err(e) => return r.fail(e),
        };
        if let Some(d) = &dir {
            for f in cred_files(auth).iter().chain([&CONFIG_FILE]) {
                if let Err(e) = d.inspect(f) {
                    return r.fail(e);
                }
            }
        }
        if let Err(e) = self.admin_vault(Target { name: &user.name, dir: dir.as_ref() }, &user.secrets, &mut r).await {
            if e.stops_the_run() {
                self.stopped = Some(format!("{}: {e}", user.name));
            }
            return r.fail(e);
        }
        if let Some(d) = &dir
            && let Err(e) = self.write_config(d, user, ExistingConfig::SwitchAuth, &mut r)
        {
            return r.fail(e);
        }
        self.timer(user, &mut r);
        r
    }

    /// Everything in Vault for one user: policy (with the roster's extra `secrets`),
    /// version settings, credential.
    async fn admin_vault(
        &mut self,
        user: Target<'_>,
        secrets: &[String],
        r: &mut UserSummary,
    ) -> Result<(), UserError> {
        let v = self.section().clone();
        let pname = policy::name(user.name);
        let want = policy::hcl(&v.kv_mount, &v.path_prefix, user.name, secrets);
        let have = vault_ops::policy(&self.vault, &pname).await?;
        if have.as_deref() != Some(want.as_str())
            && self.act(r, Change::new(Verb::Write, policy_change(&v, user.name, have.as_deref(), secrets)))
        {
            vault_ops::put_policy(&self.vault, &pname, &want).await?;
        }
        self.version_settings(user.name, r).await?;
        match v.auth {
            AuthMode::Token => {
                if self.used(user, AuthMode::Approle) {
                    self.retire_approle(user, r).await?;
                }
                self.admin_token(user, r).await
            }
            AuthMode::Approle => {
                if self.used(user, AuthMode::Token) {
                    self.retire_token(user, r).await?;
                }
                self.admin_approle(user, r).await
            }
        }
    }

    /// Resets the settings of the user's versions (the user may only set custom_metadata).
    async fn version_settings(&self, user: &str, r: &mut UserSummary) -> Result<(), UserError> {
        let v = self.section();
        let want = vault_ops::VersionSettings {
            max_versions: v.max_versions,
            delete_version_after: v.delete_version_after,
            cas_required: v.cas_required,
        };
        let path = format!("{}/{user}", v.path_prefix);
        let have = vault_ops::version_settings(&self.vault, &v.kv_mount, &path).await?;
        if have.is_some_and(|h| h.settings == want) {
            return Ok(());
        }
        let set = Change::new(
            Verb::Set,
            format!(
                "max_versions={}, delete_version_after={}s, cas_required={} on {}",
                want.max_versions,
                want.delete_version_after.as_secs(),
                want.cas_required,
                policy::secret(v, user)
            ),
        );
        if self.act(r, set) {
            let metadata_version = have.map_or(0, |h| h.version);
            vault_ops::set_version_settings(&self.vault, &v.kv_mount, &path, want, metadata_version).await?;
        }
        Ok(())
    }
}

/// "policy claude-auth-sync-alice", plus the extra secrets it starts or stops granting
/// compared with the policy Vault has (`have`), so that a grant never goes unsaid.
fn policy_change(v: &VaultSection, user: &str, have: Option<&str>, secrets: &[String]) -> String {
    let before = have.map(|h| policy::granted_secrets(h, &v.kv_mount, &v.path_prefix, user)).unwrap_or_default();
    let paths =
        |names: Vec<&String>| names.iter().map(|n| policy::extra_secret(v, user, n)).collect::<Vec<_>>().join(", ");
    let added: Vec<&String> = secrets.iter().filter(|s| !before.contains(s)).collect();
    let removed: Vec<&String> = before.iter().filter(|s| !secrets.contains(s)).collect();
    let mut what = format!("policy {}", policy::name(user));
    if !added.is_empty() {
        what.push_str(&format!(", granting {}", paths(added)));
    }
    if !removed.is_empty() {
        what.push_str(&format!(", no longer granting {} (the data is kept)", paths(removed)));
    }
    what
}
