//! Every branch of the outcome table, with fakes for Vault, the file, the probe and the clock.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::*;
use crate::config::{Lock, Probe, TemplateKind};
use crate::exit::ExitCode;
use crate::report::Status;
use crate::store::file_id::FileId;
use crate::store::json_file::Replaced;
use crate::template::oauth;

const NOW: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

fn login(access: &str, refresh: &str, expires_at: u64) -> Map<String, Value> {
    json!({
        "accessToken": access, "refreshToken": refresh, "expiresAt": expires_at,
        "refreshTokenExpiresAt": NOW + 20 * 24 * HOUR, "scopes": ["user:inference"], "subscriptionType": "enterprise"
    })
    .as_object()
    .unwrap()
    .clone()
}

/// Every write gets a new inode, as a rename does.
fn next_stamp() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn blank() -> Map<String, Value> {
    json!({"accessToken": "", "refreshToken": "", "expiresAt": 0}).as_object().unwrap().clone()
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
        r.versions.borrow_mut().push(json!({ "claudeAiOauth": obj }).as_object().unwrap().clone());
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
    async fn write(
        &self,
        data: &Map<String, Value>,
        cas: u64,
        facts: &HashMap<String, String>,
    ) -> Result<Written, Trouble> {
        if let Some(t) = &self.trouble {
            return Err(t.clone());
        }
        assert!(!facts.values().any(|v| v.contains("sk-ant-")), "a token in Vault metadata: {facts:?}");
        self.writes.borrow_mut().push(cas);
        if let Some(newer) = self.interloper.borrow_mut().take() {
            self.versions.borrow_mut().push(json!({ "claudeAiOauth": newer }).as_object().unwrap().clone());
            *self.meta.borrow_mut() = self.interloper_meta.borrow().clone();
        }
        let mut v = self.versions.borrow_mut();
        if cas != v.len() as u64 {
            return Ok(Written::Conflict);
        }
        v.push(data.clone());
        *self.meta.borrow_mut() = facts.clone();
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
        secret: "secret/workstation/claude-users/alice".into(),
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

async fn run_with(restore: Restore, remote: &FakeRemote, local: &FakeLocal, probe: &FakeProbe<'_>) -> Outcome {
    let t = template(restore);
    let TemplateKind::Json(j) = &t.kind else { unreachable!() };
    sync(&Binding { template: &t, json: j }, remote, local, probe, &FakeClock).await
}

async fn run(remote: &FakeRemote, local: &FakeLocal, probe: &FakeProbe<'_>) -> Outcome {
    run_with(Restore::OnFailure, remote, local, probe).await
}

fn fact<'a>(o: &'a Outcome, key: &str) -> Option<&'a str> {
    o.facts.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

fn rejected() -> Verdict {
    Verdict::AuthRejected("HTTP 401".into())
}

macro_rules! block_on {
    ($e:expr) => {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on($e)
    };
}

#[test]
fn working_login_already_in_vault_is_verified_without_a_write() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let (remote, local, probe) = (FakeRemote::with(a.clone()), FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Verified)));
    assert!(remote.writes.borrow().is_empty());
    assert_eq!(fact(&o, "vault_version"), Some("1"));
    assert_eq!(fact(&o, "access_expires_in"), Some("8h"));
    assert_eq!(fact(&o, "relogin_due_in"), Some("20d"));
    assert_eq!(fact(&o, "warning"), None);
}

#[test]
fn working_login_missing_from_vault_is_backed_up_with_cas_zero() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::default(), FakeLocal::with(Some(a.clone())), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)));
    assert_eq!(*remote.writes.borrow(), vec![0]);
    assert_eq!(remote.latest_obj(), Some(a));
    assert_eq!(remote.versions.borrow()[0].keys().collect::<Vec<_>>(), ["claudeAiOauth"]);
}

#[test]
fn a_refresh_during_the_probe_is_what_gets_backed_up() {
    let old = login("at-1", "rt-1", NOW - HOUR);
    let rotated = login("at-2", "rt-2", NOW + 8 * HOUR);
    let remote = FakeRemote::with(old.clone());
    let local = FakeLocal::with(Some(old));
    let mut probe = FakeProbe::new([Verdict::Ok]);
    probe.refresh_into = Some((&local, rotated.clone()));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)));
    assert_eq!(*remote.writes.borrow(), vec![1], "check-and-set against the version read");
    assert_eq!(remote.latest_obj(), Some(rotated));
    assert_eq!(fact(&o, "vault_version"), Some("2"));
}

/// The metadata an agent on this host writes with `obj`, over `replacing` (and its metadata).
fn written_here(obj: &Map<String, Value>, replacing: Option<lineage::Described<'_>>) -> HashMap<String, String> {
    lineage::metadata(obj, replacing, lineage::this_host().as_deref())
}

#[test]
fn vault_never_regresses_to_a_copy_that_provably_replaced_the_local_one() {
    // Vault held mine, then its successor: mine is older, whatever expiresAt says.
    let mine = login("at-1", "rt-1", NOW + 9 * HOUR);
    let newer = login("at-9", "rt-9", NOW + 2 * HOUR);
    let remote = FakeRemote::with(newer.clone());
    *remote.meta.borrow_mut() = written_here(&newer, Some((&mine, &HashMap::new())));
    let (local, probe) = (FakeLocal::with(Some(mine)), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Verified)));
    assert_eq!(fact(&o, "vault_newer"), Some("true"));
    assert!(remote.writes.borrow().is_empty());
    assert_eq!(remote.latest_obj(), Some(newer));
}

#[test]
fn a_rotation_seen_during_the_probe_is_backed_up_even_with_an_earlier_expiry() {
    // Vault holds what the file held; the clock was stepped back since that refresh.
    let backed_up = login("at-1", "rt-1", NOW + 9 * HOUR);
    let rotated = login("at-2", "rt-2", NOW + 2 * HOUR);
    let remote = FakeRemote::with(backed_up.clone());
    *remote.meta.borrow_mut() = written_here(&backed_up, None);
    let local = FakeLocal::with(Some(backed_up));
    let mut probe = FakeProbe::new([Verdict::Ok]);
    probe.refresh_into = Some((&local, rotated.clone()));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)), "{o:?}");
    assert_eq!(remote.latest_obj(), Some(rotated));
    let meta = remote.meta.borrow();
    assert_eq!(meta[lineage::EARLIER], oauth::fingerprint("rt-1"), "the lineage grows");
    assert_eq!(meta[lineage::FINGERPRINT], oauth::fingerprint("rt-2"));
}

#[test]
fn a_copy_only_expires_at_calls_newer_is_reported_never_silently_kept() {
    // A kv put by hand (or another host): no lineage says which came first.
    let theirs = login("at-9", "rt-9", NOW + 9 * HOUR);
    let mine = login("at-1", "rt-1", NOW + 2 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::with(theirs.clone()), FakeLocal::with(Some(mine.clone())), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::BackupUndecided)), "{o:?}");
    assert_eq!(o.exit_code(), ExitCode::TempFail);
    assert!(o.message.as_deref().unwrap().contains("vault kv delete secret/workstation/claude-users/alice"), "{o:?}");
    assert!(remote.writes.borrow().is_empty(), "Vault is not regressed");
    assert_eq!((local.replaced.get(), local.obj()), (0, Some(mine)));
    // Metadata left over from an earlier version does not describe this one either.
    let remote = FakeRemote::with(theirs.clone());
    *remote.meta.borrow_mut() = written_here(&login("at-0", "rt-0", NOW), None);
    let (local, probe) = (FakeLocal::with(Some(login("at-1", "rt-1", NOW + 2 * HOUR))), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!(o.reason, Some(Reason::BackupUndecided), "{o:?}");
}

#[test]
fn a_cas_conflict_rereads_and_does_not_overwrite_a_newer_copy() {
    let old = login("at-1", "rt-1", NOW + HOUR);
    let mine = login("at-2", "rt-2", NOW + 4 * HOUR);
    let remote = FakeRemote::with(old);
    // Another agent backed up the CLI's refresh of mine meanwhile.
    let newer = login("at-3", "rt-3", NOW + 8 * HOUR);
    *remote.interloper.borrow_mut() = Some(newer.clone());
    *remote.interloper_meta.borrow_mut() = written_here(&newer, Some((&mine, &HashMap::new())));
    let (local, probe) = (FakeLocal::with(Some(mine)), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Verified)), "{o:?}");
    assert_eq!(*remote.writes.borrow(), vec![1], "one attempt, then the re-read showed a newer copy");
    assert_eq!(remote.latest_obj(), Some(newer));
}

#[test]
fn a_cas_conflict_with_an_older_copy_writes_again_on_the_new_version() {
    let mine = login("at-5", "rt-5", NOW + 8 * HOUR);
    let remote = FakeRemote::with(login("at-1", "rt-1", NOW + HOUR));
    *remote.interloper.borrow_mut() = Some(login("at-2", "rt-2", NOW + 2 * HOUR));
    let (local, probe) = (FakeLocal::with(Some(mine.clone())), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)));
    assert_eq!(*remote.writes.borrow(), vec![1, 2]);
    assert_eq!(remote.latest_obj(), Some(mine));
}

#[test]
fn vault_unreachable_with_a_working_login_is_degraded_and_writes_nothing() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::failing(Trouble::Unreachable("connection refused".into()));
    let (local, probe) = (FakeLocal::with(Some(a.clone())), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!(
        (o.status, o.reason, o.action),
        (Status::Degraded, Some(Reason::VaultUnreachable), Some(Action::BackupPending))
    );
    assert_eq!(o.exit_code(), ExitCode::TempFail);
    assert_eq!(probe.calls.get(), 1, "Vault trouble never stops the local check");
    assert_eq!((local.replaced.get(), local.obj()), (0, Some(a)));
}

#[test]
fn an_invalid_vault_token_with_a_working_login_fails_for_the_admin() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::failing(Trouble::TokenInvalid("revoked".into()));
    let (local, probe) = (FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::VaultTokenInvalid)));
    assert_eq!(probe.calls.get(), 1);
}

#[test]
fn an_inconclusive_probe_changes_nothing() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    for verdict in [Verdict::Transient("HTTP 529".into()), Verdict::Transient("timed out".into())] {
        let (remote, local, probe) =
            (FakeRemote::with(login("at-0", "rt-0", NOW)), FakeLocal::with(Some(a.clone())), FakeProbe::new([verdict]));
        let o = block_on!(run(&remote, &local, &probe));
        assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::ProbeInconclusive)));
        assert_eq!(o.exit_code(), ExitCode::TempFail);
        assert!(remote.writes.borrow().is_empty());
        assert_eq!(local.replaced.get(), 0);
    }
}

#[test]
fn a_rejected_login_is_recovered_from_vault_and_the_refresh_written_back() {
    let dead = login("at-dead", "rt-dead", NOW - 2 * HOUR);
    let good = login("at-1", "rt-1", NOW - HOUR);
    let refreshed = login("at-2", "rt-2", NOW + 8 * HOUR);
    let remote = FakeRemote::with(good.clone());
    let local = FakeLocal::with(Some(dead));
    let mut probe = FakeProbe::new([rejected(), Verdict::Ok]);
    probe.refresh_into = None;
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
    assert_eq!(local.obj(), Some(good.clone()), "the restored copy is on disk");
    assert!(remote.writes.borrow().is_empty(), "nothing new to write back");

    // Same, but the CLI refreshes the restored login during the second probe.
    let remote = FakeRemote::with(good);
    let local = FakeLocal::with(Some(login("at-dead", "rt-dead", NOW - 2 * HOUR)));
    let probe = FakeProbe::new([rejected(), Verdict::Ok]);
    let o = block_on!(async {
        let t = template(Restore::OnFailure);
        let TemplateKind::Json(j) = &t.kind else { unreachable!() };
        let b = Binding { template: &t, json: j };
        let refreshing = Refreshing { inner: &probe, local: &local, after: 1, rotated: refreshed.clone() };
        sync(&b, &remote, &local, &refreshing, &FakeClock).await
    });
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
    assert_eq!(*remote.writes.borrow(), vec![1]);
    assert_eq!(remote.latest_obj(), Some(refreshed));
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

#[test]
fn both_rejected_is_login_required_and_the_file_is_put_back() {
    let dead = login("at-dead", "rt-dead", NOW + 8 * HOUR);
    let also_dead = login("at-old", "rt-old", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::with(also_dead), FakeLocal::with(Some(dead.clone())), FakeProbe::new([rejected(), rejected()]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)));
    assert_eq!(o.exit_code(), ExitCode::Fail);
    assert_eq!(local.rolled_back.get(), 1);
    assert_eq!(local.obj(), Some(dead), "the local file is not made worse");
    assert!(remote.writes.borrow().is_empty(), "Vault is not overwritten");
}

#[test]
fn rejected_with_no_usable_vault_copy_is_login_required_without_touching_anything() {
    let dead = login("at-dead", "rt-dead", NOW + 8 * HOUR);
    for remote in [FakeRemote::default(), FakeRemote::with(blank()), FakeRemote::with(dead.clone())] {
        let (local, probe) = (FakeLocal::with(Some(dead.clone())), FakeProbe::new([rejected()]));
        let o = block_on!(run(&remote, &local, &probe));
        assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)), "{o:?}");
        assert_eq!(probe.calls.get(), 1, "no second probe without a different copy");
        assert_eq!(local.replaced.get(), 0);
        assert!(remote.writes.borrow().is_empty());
    }
}

#[test]
fn rejected_while_vault_is_unreachable_fails_for_recovery() {
    let dead = login("at-dead", "rt-dead", NOW + 8 * HOUR);
    let remote = FakeRemote::failing(Trouble::Unreachable("sealed".into()));
    let (local, probe) = (FakeLocal::with(Some(dead)), FakeProbe::new([rejected()]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::VaultUnreachableDuringRecovery)));
    assert_eq!(local.replaced.get(), 0);
}

#[test]
fn missing_or_blanked_local_logins_are_restored_without_a_first_probe() {
    let good = login("at-1", "rt-1", NOW + 8 * HOUR);
    for before in [None, Some(blank())] {
        let (remote, local, probe) =
            (FakeRemote::with(good.clone()), FakeLocal::with(before), FakeProbe::new([Verdict::Ok]));
        let o = block_on!(run(&remote, &local, &probe));
        assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
        assert_eq!(probe.calls.get(), 1, "only the probe of the restored copy");
        assert_eq!(local.obj(), Some(good.clone()));
    }
}

#[test]
fn a_blanked_object_is_never_backed_up() {
    let (remote, local, probe) = (FakeRemote::default(), FakeLocal::with(Some(blank())), FakeProbe::new([]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)));
    assert!(remote.writes.borrow().is_empty());
    assert_eq!(probe.calls.get(), 0, "a blanked object is rejected without a probe");
}

#[test]
fn restore_never_reports_instead_of_restoring() {
    let (remote, local, probe) = (
        FakeRemote::with(login("at-1", "rt-1", NOW + HOUR)),
        FakeLocal::with(Some(login("x", "y", NOW + HOUR))),
        FakeProbe::new([rejected()]),
    );
    let o = block_on!(run_with(Restore::Never, &remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)));
    assert_eq!(local.replaced.get(), 0);
}

#[test]
fn an_older_vault_copy_is_never_replayed_over_a_newer_rejected_login() {
    let older = login("at-1", "rt-1", NOW + HOUR);
    let newer = login("at-2", "rt-2", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::with(older), FakeLocal::with(Some(newer.clone())), FakeProbe::new([rejected()]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)), "{o:?}");
    assert_eq!((local.replaced.get(), local.obj()), (0, Some(newer)));
}

#[test]
fn restore_always_puts_vaults_copy_first() {
    let vaults = login("at-v", "rt-v", NOW + 9 * HOUR);
    let (remote, local, probe) = (
        FakeRemote::with(vaults.clone()),
        FakeLocal::with(Some(login("at-l", "rt-l", NOW + 8 * HOUR))),
        FakeProbe::new([Verdict::Ok]),
    );
    let o = block_on!(run_with(Restore::Always, &remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)));
    assert_eq!(local.obj(), Some(vaults));
}

#[test]
fn vault_data_of_the_wrong_shape_is_left_alone() {
    let remote = FakeRemote::default();
    remote.versions.borrow_mut().push(json!({"claudeAiOauth": "a string"}).as_object().unwrap().clone());
    let (local, probe) = (FakeLocal::with(Some(login("at-1", "rt-1", NOW + HOUR))), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::VaultDataInvalid)));
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn a_login_changed_by_someone_else_during_recovery_is_probed_not_overwritten() {
    let dead = login("at-dead", "rt-dead", NOW + HOUR);
    let fresh = login("at-fresh", "rt-fresh", NOW + 8 * HOUR);
    let remote = FakeRemote::with(login("at-v", "rt-v", NOW + 2 * HOUR));
    let local = FakeLocal::with(Some(dead));
    // The first probe fails, and meanwhile the person logs in again.
    let mut probe = FakeProbe::new([rejected(), Verdict::Ok]);
    probe.refresh_into = Some((&local, fresh.clone()));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)), "{o:?}");
    assert_eq!(local.replaced.get(), 0, "the fresh login was not overwritten");
    assert_eq!(local.obj(), Some(fresh.clone()));
    assert_eq!(remote.latest_obj(), Some(fresh), "and it is backed up");
}

#[test]
fn an_inconclusive_second_probe_keeps_the_restored_copy() {
    let good = login("at-1", "rt-1", NOW + 8 * HOUR);
    let (remote, local, probe) = (
        FakeRemote::with(good.clone()),
        FakeLocal::with(Some(login("at-dead", "rt-dead", NOW + HOUR))),
        FakeProbe::new([rejected(), Verdict::Transient("HTTP 529".into())]),
    );
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Degraded, Some(Action::RestoredUnverified)));
    assert_eq!(local.obj(), Some(good));
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn the_login_end_within_warn_before_is_flagged() {
    let mut a = login("at-1", "rt-1", NOW + 8 * HOUR);
    a.insert("refreshTokenExpiresAt".into(), json!(NOW + 3 * 24 * HOUR));
    let (remote, local, probe) = (FakeRemote::with(a.clone()), FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!(o.status, Status::Ok);
    assert_eq!(fact(&o, "relogin_due_in"), Some("3d"));
    assert_eq!(fact(&o, "warning"), Some("relogin_due"));
}

#[test]
fn a_probe_that_cannot_run_fails_and_changes_nothing() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::default(), FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Broken("no claude".into())]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::ProbeError)));
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn a_login_clobbered_during_the_probe_is_restored_even_when_vault_holds_the_same() {
    let x = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::with(x.clone());
    let local = FakeLocal::with(Some(x.clone()));
    // The probe ran on a file another writer blanked meanwhile.
    let probe = FakeProbe::new([rejected(), Verdict::Ok]);
    let clobbering = Refreshing { inner: &probe, local: &local, after: 0, rotated: blank() };
    let o = block_on!(async {
        let t = template(Restore::OnFailure);
        let TemplateKind::Json(j) = &t.kind else { unreachable!() };
        sync(&Binding { template: &t, json: j }, &remote, &local, &clobbering, &FakeClock).await
    });
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
    assert_eq!(local.obj(), Some(x));
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn a_sibling_rewrite_during_the_probe_still_tries_vaults_copy() {
    let x = login("at-x", "rt-x", NOW + HOUR);
    let y = login("at-y", "rt-y", NOW + 8 * HOUR);
    let (remote, local) = (FakeRemote::with(y.clone()), FakeLocal::with(Some(x.clone())));
    // The first probe runs while something else (e.g. the CLI saving mcpOAuth) rewrites
    // the file with the same login: a new stamp, the same object.
    let probe = FakeProbe::new([rejected(), rejected(), Verdict::Ok]);
    let rewriting = Refreshing { inner: &probe, local: &local, after: 0, rotated: x };
    let o = block_on!(async {
        let t = template(Restore::OnFailure);
        let TemplateKind::Json(j) = &t.kind else { unreachable!() };
        sync(&Binding { template: &t, json: j }, &remote, &local, &rewriting, &FakeClock).await
    });
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
    assert_eq!(local.obj(), Some(y), "Vault's copy was tried and works");
}

#[test]
fn a_file_blanked_during_the_probe_never_gets_an_older_vault_copy() {
    let older = login("at-1", "rt-1", NOW + HOUR);
    let newer_local = login("at-2", "rt-2", NOW + 8 * HOUR);
    let (remote, local) = (FakeRemote::with(older), FakeLocal::with(Some(newer_local)));
    let probe = FakeProbe::new([rejected()]);
    let blanking = Refreshing { inner: &probe, local: &local, after: 0, rotated: blank() };
    let o = block_on!(async {
        let t = template(Restore::OnFailure);
        let TemplateKind::Json(j) = &t.kind else { unreachable!() };
        sync(&Binding { template: &t, json: j }, &remote, &local, &blanking, &FakeClock).await
    });
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)), "{o:?}");
    assert_eq!(local.replaced.get(), 0, "the older copy was not replayed");
}

#[test]
fn restore_always_falls_back_to_a_working_local_login_when_vaults_copy_is_rejected() {
    let local_login = login("at-l", "rt-l", NOW + HOUR);
    let (remote, local, probe) = (
        FakeRemote::with(login("at-v", "rt-v", NOW + 8 * HOUR)),
        FakeLocal::with(Some(local_login.clone())),
        FakeProbe::new([rejected(), Verdict::Ok]),
    );
    let o = block_on!(run_with(Restore::Always, &remote, &local, &probe));
    assert_eq!(
        (o.status, o.action),
        (Status::Ok, Some(Action::BackedUp)),
        "the local login works: nobody is paged: {o:?}"
    );
    assert_eq!((local.rolled_back.get(), local.obj()), (1, Some(local_login.clone())));
    assert_eq!(remote.latest_obj(), Some(local_login), "backed up over the copy that was just rejected");
}

#[test]
fn a_restore_rejected_after_the_cli_blanked_it_is_still_undone() {
    let local_login = login("at-l", "rt-l", NOW + HOUR);
    let remote = FakeRemote::with(login("at-v", "rt-v", NOW + 8 * HOUR));
    let local = FakeLocal::with(Some(local_login.clone()));
    // Probing the restored copy, the CLI's refresh is refused and it blanks the file.
    let probe = FakeProbe::new([rejected(), Verdict::Ok]);
    let blanking = Refreshing { inner: &probe, local: &local, after: 0, rotated: blank() };
    let o = block_on!(async {
        let t = template(Restore::Always);
        let TemplateKind::Json(j) = &t.kind else { unreachable!() };
        sync(&Binding { template: &t, json: j }, &remote, &local, &blanking, &FakeClock).await
    });
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!((local.rolled_back.get(), local.obj()), (1, Some(local_login)), "the prior login is back");
}

#[test]
fn a_partial_object_on_disk_after_the_probe_is_not_backed_up() {
    let good = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::with(login("at-0", "rt-0", NOW + HOUR));
    let local = FakeLocal::with(Some(good));
    let partial = json!({"accessToken": "at-x", "expiresAt": NOW + 9 * HOUR}).as_object().unwrap().clone();
    let probe = FakeProbe::new([Verdict::Ok]);
    let partial_writer = Refreshing { inner: &probe, local: &local, after: 0, rotated: partial };
    let o = block_on!(async {
        let t = template(Restore::OnFailure);
        let TemplateKind::Json(j) = &t.kind else { unreachable!() };
        sync(&Binding { template: &t, json: j }, &remote, &local, &partial_writer, &FakeClock).await
    });
    assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::ProbeInconclusive)), "{o:?}");
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn a_deleted_latest_version_is_written_over_with_its_version() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::with(login("at-0", "rt-0", NOW + HOUR));
    // The latest version (1) is soft-deleted: Vault answers with its number and no data.
    *remote.deleted.borrow_mut() = true;
    let (local, probe) = (FakeLocal::with(Some(a.clone())), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)), "{o:?}");
    assert_eq!(*remote.writes.borrow(), vec![1], "check-and-set names the deleted version");
}

/// A login as a Claude Code release rewrote it: tokens, no `expiresAt`, no `scopes`.
fn incomplete(access: &str, refresh: &str) -> Map<String, Value> {
    json!({"accessToken": access, "refreshToken": refresh, "subscriptionType": "enterprise"})
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn an_incomplete_login_is_repaired_keeping_its_newer_tokens_never_replaced_by_vaults() {
    let vaults = login("at-old", "rt-old", NOW + 8 * HOUR);
    let remote = FakeRemote::with(vaults);
    let local = FakeLocal::with(Some(incomplete("at-new", "rt-new")));
    // The CLI refreshes the repaired login (its expiry says expired) with its own token.
    let mut probe = FakeProbe::new([Verdict::Ok]);
    let refreshed = login("at-newer", "rt-newer", NOW + 8 * HOUR);
    probe.refresh_into = Some((&local, refreshed.clone()));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!(
        (o.status, o.reason, o.action),
        (Status::Degraded, Some(Reason::LoginIncomplete), Some(Action::BackedUp)),
        "{o:?}"
    );
    assert_eq!(fact(&o, "repaired"), Some("expiresAt,scopes"));
    assert_eq!(local.replaced.get(), 1, "one write: the repair");
    assert_eq!(remote.latest_obj(), Some(refreshed), "what the CLI refreshed is backed up");
}

#[test]
fn a_repaired_login_gets_scopes_from_vault_and_an_expiry_that_makes_the_cli_refresh() {
    let remote = FakeRemote::with(login("at-old", "rt-old", NOW + 8 * HOUR));
    let local = FakeLocal::with(Some(incomplete("at-new", "rt-new")));
    let probe = FakeProbe::new([Verdict::Transient("HTTP 529".into())]);
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::ProbeInconclusive)), "{o:?}");
    assert_eq!(fact(&o, "repaired"), Some("expiresAt,scopes"));
    let on_disk = local.obj().unwrap();
    assert_eq!((&on_disk["accessToken"], &on_disk["refreshToken"]), (&json!("at-new"), &json!("rt-new")));
    assert_eq!(on_disk["scopes"], json!(["user:inference"]));
    assert_eq!(on_disk["expiresAt"], NOW);
    assert!(remote.writes.borrow().is_empty(), "an unproven repair is never backed up");
}

#[test]
fn an_incomplete_login_that_vault_holds_the_successor_of_gets_the_successor() {
    let old = incomplete("at-1", "rt-1");
    let successor = login("at-2", "rt-2", NOW + 8 * HOUR);
    let remote = FakeRemote::with(successor.clone());
    *remote.meta.borrow_mut() = written_here(&successor, Some((&login("at-1", "rt-1", NOW), &HashMap::new())));
    let (local, probe) = (FakeLocal::with(Some(old)), FakeProbe::new([Verdict::Ok]));
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Degraded, Some(Action::Recovered)), "{o:?}");
    assert_eq!(local.obj(), Some(successor), "its spent refresh token is never presented");
    assert_eq!(probe.calls.get(), 1);
}

#[test]
fn an_incomplete_object_is_never_backed_up() {
    let remote = FakeRemote::default();
    let local = FakeLocal::with(Some(incomplete("at-1", "rt-1")));
    // The repair is rejected, and nothing in Vault can mend it.
    let probe = FakeProbe::new([rejected()]);
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)), "{o:?}");
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn a_lenient_file_with_a_whole_login_is_rewritten_before_the_probe() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::with(a.clone());
    let mut snap = snapshot(Some(a.clone()));
    snap.lenient = true;
    let local = FakeLocal { now: RefCell::new(snap), replaced: Cell::new(0), rolled_back: Cell::new(0) };
    let probe = FakeProbe::new([Verdict::Ok]);
    let o = block_on!(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Verified)), "{o:?}");
    assert_eq!(local.replaced.get(), 1, "rewritten as strict JSON first");
}
