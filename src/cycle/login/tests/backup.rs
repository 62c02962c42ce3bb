//! A working login: verified when Vault holds it, backed up (check-and-set) when it
//! does not, and never written over a copy that provably replaced it.

use super::*;

#[test]
fn working_login_already_in_vault_is_verified_without_a_write() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let (remote, local, probe) = (FakeRemote::with(a.clone()), FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Ok]));
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)));
    assert_eq!(*remote.writes.borrow(), vec![0]);
    assert_eq!(remote.latest_obj(), Some(a));
    assert_eq!(remote.versions.borrow()[0].keys().collect::<Vec<_>>(), ["claudeAiOauth"]);
}

#[test]
fn a_deleted_latest_version_is_written_over_with_its_version() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::soft_deleted(login("at-0", "rt-0", NOW + HOUR));
    let (local, probe) = working(a.clone());
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)), "{o:?}");
    assert_eq!(*remote.writes.borrow(), vec![1], "check-and-set names the deleted version");
}

#[test]
fn a_refresh_during_the_probe_is_what_gets_backed_up() {
    let old = login("at-1", "rt-1", NOW - HOUR);
    let rotated = login("at-2", "rt-2", NOW + 8 * HOUR);
    let remote = FakeRemote::with(old.clone());
    let local = FakeLocal::with(Some(old));
    let mut probe = FakeProbe::new([Verdict::Ok]);
    probe.refresh_into = Some((&local, rotated.clone()));
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)));
    assert_eq!(*remote.writes.borrow(), vec![1], "check-and-set against the version read");
    assert_eq!(remote.latest_obj(), Some(rotated));
    assert_eq!(fact(&o, "vault_version"), Some("2"));
}

#[test]
fn vault_never_regresses_to_a_copy_that_provably_replaced_the_local_one() {
    // Vault held mine, then its successor: mine is older, whatever expiresAt says.
    let mine = login("at-1", "rt-1", NOW + 9 * HOUR);
    let newer = login("at-9", "rt-9", NOW + 2 * HOUR);
    let remote = FakeRemote::with(newer.clone());
    *remote.meta.borrow_mut() = written_here(&newer, Some((&mine, &HashMap::new())));
    let (local, probe) = working(mine);
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::BackupUndecided)), "{o:?}");
    assert_eq!(o.exit_code(), ExitCode::TempFail);
    assert!(o.message.as_deref().unwrap().contains("vault kv delete secret/workstation/claude-users/alice"), "{o:?}");
    assert!(remote.writes.borrow().is_empty(), "Vault is not regressed");
    assert_eq!((local.replaced.get(), local.obj()), (0, Some(mine)));
    // Metadata left over from an earlier version does not describe this one either.
    let remote = FakeRemote::with(theirs.clone());
    *remote.meta.borrow_mut() = written_here(&login("at-0", "rt-0", NOW), None);
    let (local, probe) = working(login("at-1", "rt-1", NOW + 2 * HOUR));
    let o = block_on(run(&remote, &local, &probe));
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
    let (local, probe) = working(mine);
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Verified)), "{o:?}");
    assert_eq!(*remote.writes.borrow(), vec![1], "one attempt, then the re-read showed a newer copy");
    assert_eq!(remote.latest_obj(), Some(newer));
}

#[test]
fn a_cas_conflict_with_an_older_copy_writes_again_on_the_new_version() {
    let mine = login("at-5", "rt-5", NOW + 8 * HOUR);
    let remote = FakeRemote::with(login("at-1", "rt-1", NOW + HOUR));
    *remote.interloper.borrow_mut() = Some(login("at-2", "rt-2", NOW + 2 * HOUR));
    let (local, probe) = working(mine.clone());
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::BackedUp)));
    assert_eq!(*remote.writes.borrow(), vec![1, 2]);
    assert_eq!(remote.latest_obj(), Some(mine));
}

#[test]
fn a_partial_object_on_disk_after_the_probe_is_not_backed_up() {
    let good = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::with(login("at-0", "rt-0", NOW + HOUR));
    let local = FakeLocal::with(Some(good));
    let partial = object(json!({"accessToken": "at-x", "expiresAt": NOW + 9 * HOUR}));
    let probe = FakeProbe::new([Verdict::Ok]);
    let partial_writer = Refreshing { inner: &probe, local: &local, after: 0, rotated: partial };
    let o = block_on(run(&remote, &local, &partial_writer));
    assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::ProbeInconclusive)), "{o:?}");
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn the_login_end_within_warn_before_is_flagged() {
    let mut a = login("at-1", "rt-1", NOW + 8 * HOUR);
    a.insert("refreshTokenExpiresAt".into(), json!(NOW + 3 * 24 * HOUR));
    let (remote, local, probe) = (FakeRemote::with(a.clone()), FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Ok]));
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!(o.status, Status::Ok);
    assert_eq!(fact(&o, "relogin_due_in"), Some("3d"));
    assert_eq!(fact(&o, "warning"), Some("relogin_due"));
}
