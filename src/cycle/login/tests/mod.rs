//! Every branch of the outcome table for a login, with fakes for Vault, the file, the
//! probe and the clock: one module per part of the table. The fakes behave as the real
//! things do where the run depends on it (check-and-set, a replace that keeps a login
//! another writer put there, a rollback); they must never decide anything themselves,
//! and the fake Vault refuses metadata that holds a token.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

mod backup;
mod recovery;
mod repair;
mod trouble;

use serde_json::{Map, Value, json};

use super::*;
use crate::config::{Lock, Probe, SecretPath, TemplateKind};
use crate::cycle::NewVersion;
use crate::exit::ExitCode;
use crate::report::Action;
use crate::store::file_id::FileId;
use crate::store::json_file::Replaced;
use crate::template::{oauth, object};
use crate::vault::kv::Written;

const NOW: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

fn login(access: &str, refresh: &str, expires_at: u64) -> Map<String, Value> {
    object(json!({
        "accessToken": access, "refreshToken": refresh, "expiresAt": expires_at,
        "refreshTokenExpiresAt": NOW + 20 * 24 * HOUR, "scopes": ["user:inference"], "subscriptionType": "enterprise"
    }))
}

/// Every write gets a new inode, as a rename does.
fn next_stamp() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn blank() -> Map<String, Value> {
    object(json!({"accessToken": "", "refreshToken": "", "expiresAt": 0}))
}

fn snapshot(obj: Option<Map<String, Value>>) -> Snapshot {
    match obj {
        Some(o) => Snapshot {
            bytes: Some(serde_json::to_vec(&json!({ "claudeAiOauth": o })).unwrap()),
            state: FileState::Object(o),
            stamp: Some(FileId::numbered(next_stamp())),
            lenient: false,
        },
        None => Snapshot::missing(),
    }
}

#[derive(Default)]
struct FakeRemote {
    /// Every version's data, oldest first.
    versions: RefCell<Vec<Map<String, Value>>>,
    trouble: Option<Trouble>,
    writes: RefCell<Vec<u64>>,
    /// A newer version slipped in by someone else at the first write.
    interloper: RefCell<Option<Map<String, Value>>>,
    /// The latest version is soft-deleted.
    deleted: RefCell<bool>,
    /// The secret's custom_metadata, as the last write set it.
    meta: RefCell<HashMap<String, String>>,
    /// The metadata the interloper writes with its version.
    interloper_meta: RefCell<HashMap<String, String>>,
}

impl FakeRemote {
    fn with(obj: Map<String, Value>) -> Self {
        let r = FakeRemote::default();
        r.versions.borrow_mut().push(object(json!({ "claudeAiOauth": obj })));
        r
    }
    /// Its latest version (1) is soft-deleted: Vault answers with its number and no data.
    fn soft_deleted(obj: Map<String, Value>) -> Self {
        let r = FakeRemote::with(obj);
        *r.deleted.borrow_mut() = true;
        r
    }
    fn failing(t: Trouble) -> Self {
        FakeRemote { trouble: Some(t), ..Default::default() }
    }
    fn latest_obj(&self) -> Option<Map<String, Value>> {
        self.versions.borrow().last().map(|d| d["claudeAiOauth"].as_object().unwrap().clone())
    }
}

impl Remote for FakeRemote {
    async fn latest(&self) -> Result<Option<Versioned>, Trouble> {
        if let Some(t) = &self.trouble {
            return Err(t.clone());
        }
        let v = self.versions.borrow();
        let deleted = *self.deleted.borrow();
        Ok(v.last().map(|d| Versioned {
            version: v.len() as u64,
            data: if deleted { Map::new() } else { d.clone() },
            deleted,
            custom_metadata: self.meta.borrow().clone(),
        }))
    }
    async fn write(&self, NewVersion { data, cas, meta }: NewVersion<'_>) -> Result<Written, Trouble> {
        if let Some(t) = &self.trouble {
            return Err(t.clone());
        }
        assert!(!meta.values().any(|v| v.contains("sk-ant-")), "a token in Vault metadata: {meta:?}");
        self.writes.borrow_mut().push(cas);
        if let Some(newer) = self.interloper.borrow_mut().take() {
            self.versions.borrow_mut().push(object(json!({ "claudeAiOauth": newer })));
            *self.meta.borrow_mut() = self.interloper_meta.borrow().clone();
        }
        let mut v = self.versions.borrow_mut();
        if cas != v.len() as u64 {
            return Ok(Written::Conflict);
        }
        v.push(data.clone());
        *self.meta.borrow_mut() = meta.clone();
        Ok(Written::Version(v.len() as u64))
    }
}

struct FakeLocal {
    now: RefCell<Snapshot>,
    replaced: Cell<usize>,
    rolled_back: Cell<usize>,
}

impl FakeLocal {
    fn with(obj: Option<Map<String, Value>>) -> Self {
        FakeLocal { now: RefCell::new(snapshot(obj)), replaced: Cell::new(0), rolled_back: Cell::new(0) }
    }
    fn obj(&self) -> Option<Map<String, Value>> {
        self.now.borrow().object().cloned()
    }
}

impl Local for FakeLocal {
    fn read(&self) -> Result<Snapshot, LocalError> {
        Ok(self.now.borrow().clone())
    }
    fn replace(&self, obj: &Map<String, Value>, expected: &Snapshot) -> Result<ReplaceOutcome, LocalError> {
        // As JsonFile: only a different usable login that appeared meanwhile is kept.
        let current = self.now.borrow().clone();
        if current.superseded(expected) {
            return Ok(ReplaceOutcome::Changed(current));
        }
        let new = snapshot(Some(obj.clone()));
        let written = new.bytes.clone().unwrap();
        *self.now.borrow_mut() = new;
        self.replaced.set(self.replaced.get() + 1);
        Ok(ReplaceOutcome::Replaced(Replaced { previous: current, written, kept: None }))
    }
    fn rollback(&self, r: &Replaced) -> Result<bool, LocalError> {
        // As JsonFile: when the file still holds exactly what was written, or when what
        // was written has been blanked meanwhile.
        let now = self.now.borrow().clone();
        let put_back = if now.bytes.as_deref() == Some(r.written.as_slice()) {
            r.previous.clone()
        } else {
            match (r.previous.login(), now.object()) {
                (Some(previous), Some(blanked)) if oauth::tokenless(blanked) => snapshot(Some(previous.clone())),
                _ => return Ok(false),
            }
        };
        self.rolled_back.set(self.rolled_back.get() + 1);
        *self.now.borrow_mut() = put_back;
        Ok(true)
    }
}

/// A login on disk, and a probe that accepts it once.
fn working(obj: Map<String, Value>) -> (FakeLocal, FakeProbe<'static>) {
    (FakeLocal::with(Some(obj)), FakeProbe::new([Verdict::Ok]))
}

/// Answers from a script; a probe may also rotate the login on disk, as the CLI does.
struct FakeProbe<'a> {
    answers: RefCell<VecDeque<Verdict>>,
    calls: Cell<usize>,
    refresh_into: Option<(&'a FakeLocal, Map<String, Value>)>,
}

impl<'a> FakeProbe<'a> {
    fn new(answers: impl IntoIterator<Item = Verdict>) -> Self {
        FakeProbe { answers: RefCell::new(answers.into_iter().collect()), calls: Cell::new(0), refresh_into: None }
    }
}

impl Prober for FakeProbe<'_> {
    async fn probe(&self, _obj: &Map<String, Value>) -> Verdict {
        self.calls.set(self.calls.get() + 1);
        if let Some((local, rotated)) = &self.refresh_into {
            *local.now.borrow_mut() = snapshot(Some(rotated.clone()));
        }
        self.answers.borrow_mut().pop_front().expect("the probe was called more often than scripted")
    }
}

struct FakeClock;
impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        NOW
    }
}

fn template(restore: Restore) -> TemplateConfig {
    TemplateConfig {
        name: "template #1".into(),
        secret: SecretPath::parse("secret/workstation/claude-users/alice").unwrap(),
        destination: "/home/alice/.claude/.credentials.json".into(),
        perms: 0o600,
        kind: TemplateKind::Json(JsonTemplate {
            field: "claudeAiOauth".into(),
            json_key: "claudeAiOauth".into(),
            lock: Lock::ClaudeCode,
            restore,
            refresh_token_rotates: restore != Restore::Always,
            writeback: true,
            probe: Probe::None,
            warn_before: Duration::from_secs(5 * 86_400),
        }),
    }
}

async fn run_with(restore: Restore, remote: &FakeRemote, local: &FakeLocal, probe: &impl Prober) -> Outcome {
    let t = template(restore);
    let TemplateKind::Json(j) = &t.kind else { unreachable!() };
    sync(&Binding { template: &t, json: j }, remote, local, probe, &FakeClock).await
}

async fn run(remote: &FakeRemote, local: &FakeLocal, probe: &impl Prober) -> Outcome {
    run_with(Restore::OnFailure, remote, local, probe).await
}

fn fact<'a>(o: &'a Outcome, key: &str) -> Option<&'a str> {
    o.facts.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

fn rejected() -> Verdict {
    Verdict::AuthRejected("HTTP 401".into())
}

fn block_on<F: Future>(run: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(run)
}

/// The metadata an agent on this host writes with `obj`, over `replacing` (and its metadata).
fn written_here(obj: &Map<String, Value>, replacing: Option<lineage::Described<'_>>) -> HashMap<String, String> {
    lineage::metadata(obj, replacing, lineage::this_host().as_deref())
}

/// Rotates the login on disk when the probe is called for the `after`-th time (0-based).
struct Refreshing<'a> {
    inner: &'a FakeProbe<'a>,
    local: &'a FakeLocal,
    after: usize,
    rotated: Map<String, Value>,
}

impl Prober for Refreshing<'_> {
    async fn probe(&self, obj: &Map<String, Value>) -> Verdict {
        if self.inner.calls.get() == self.after {
            *self.local.now.borrow_mut() = snapshot(Some(self.rotated.clone()));
        }
        self.inner.probe(obj).await
    }
}

/// A login as a Claude Code release rewrote it: tokens, no `expiresAt`, no `scopes`.
fn incomplete(access: &str, refresh: &str) -> Map<String, Value> {
    object(json!({"accessToken": access, "refreshToken": refresh, "subscriptionType": "enterprise"}))
}
