//! The real effects behind the cycle's traits: Vault KV through the authenticated
//! client, the template's JSON file, the configured probe, and the system clock.
//! It must never decide what a run does: that is the cycle's.

use std::cell::{Cell, RefCell};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{Clock, Local, NewVersion, Prober, Remote, Trouble};
use crate::config::{JsonTemplate, Probe, SecretPath, TemplateConfig};
use crate::probe::{self, Verdict};
use crate::store::json_file::{JsonFile, LocalError, ReplaceOutcome, Replaced, Snapshot};
use crate::vault::Vault;
use crate::vault::kv::{KvPath, Versioned, Written};

pub struct VaultRemote<'a> {
    vault: Result<&'a Vault, Trouble>,
    secret: SecretPath,
    /// The secret's mount and path, looked up once (mounts may nest: `team/kv`).
    path: RefCell<Option<KvPath>>,
}

impl<'a> VaultRemote<'a> {
    /// The template's secret (checked as a KV mount and path at load), located on first use.
    pub fn new(t: &TemplateConfig, vault: Result<&'a Vault, Trouble>) -> Self {
        VaultRemote { vault, secret: t.secret.clone(), path: RefCell::new(None) }
    }

    async fn located(&self) -> Result<(&'a Vault, KvPath), Trouble> {
        let vault = self.vault.clone()?;
        if let Some(p) = self.path.borrow().clone() {
            return Ok((vault, p));
        }
        let p = vault.kv_locate(&self.secret).await.map_err(Trouble::from)?;
        *self.path.borrow_mut() = Some(p.clone());
        Ok((vault, p))
    }
}

impl Remote for VaultRemote<'_> {
    async fn latest(&self) -> Result<Option<Versioned>, Trouble> {
        let (vault, path) = self.located().await?;
        vault.kv_read_latest(&path).await.map_err(Trouble::from)
    }

    async fn write(&self, new: NewVersion<'_>) -> Result<Written, Trouble> {
        let (vault, path) = self.located().await?;
        let written = vault.kv_write_cas(&path, new.data, new.cas).await.map_err(Trouble::from)?;
        if let Written::Version(_) = written
            && let Err(e) = vault.kv_set_custom_metadata(&path, new.meta).await
        {
            // The data is safe; only the descriptive metadata is behind.
            tracing::warn!("wrote {path} but not its metadata: {e}");
        }
        Ok(written)
    }
}

pub fn local_file(t: &TemplateConfig, j: &JsonTemplate) -> JsonFile {
    JsonFile::new(t.destination.clone(), &j.json_key, t.perms, j.lock)
}

impl Local for JsonFile {
    fn read(&self) -> Result<Snapshot, LocalError> {
        JsonFile::read(self)
    }
    fn replace(&self, obj: &Map<String, Value>, expected: &Snapshot) -> Result<ReplaceOutcome, LocalError> {
        JsonFile::replace(self, obj, expected)
    }
    fn rollback(&self, replaced: &Replaced) -> Result<bool, LocalError> {
        JsonFile::rollback(self, replaced)
    }
}

pub struct ProbeRunner<'a, C> {
    pub probe: &'a Probe,
    pub clock: &'a C,
    /// Probes run so far (they cost inference: a resident agent reports them).
    pub count: &'a Cell<u32>,
}

impl<C: Clock> Prober for ProbeRunner<'_, C> {
    async fn probe(&self, obj: &Map<String, Value>) -> Verdict {
        if *self.probe != Probe::None {
            self.count.set(self.count.get() + 1);
        }
        probe::run(self.probe, obj, self.clock.now_ms()).await
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}
