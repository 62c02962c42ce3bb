//! Vault or the probe cannot help: DEGRADED when only the backup waits, FAIL when a
//! person must act; either way nothing is changed.

use super::*;

#[test]
fn vault_unreachable_with_a_working_login_is_degraded_and_writes_nothing() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let remote = FakeRemote::failing(Trouble::Unreachable("connection refused".into()));
    let (local, probe) = working(a.clone());
    let o = block_on(run(&remote, &local, &probe));
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
    let (local, probe) = working(a);
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::VaultTokenInvalid)));
    assert_eq!(probe.calls.get(), 1);
}

#[test]
fn vault_data_of_the_wrong_shape_is_left_alone() {
    let remote = FakeRemote::default();
    remote.versions.borrow_mut().push(object(json!({"claudeAiOauth": "a string"})));
    let (local, probe) = working(login("at-1", "rt-1", NOW + HOUR));
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::VaultDataInvalid)));
    assert!(remote.writes.borrow().is_empty());
}

#[test]
fn an_inconclusive_probe_changes_nothing() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    for verdict in [Verdict::Transient("HTTP 529".into()), Verdict::Transient("timed out".into())] {
        let (remote, local, probe) =
            (FakeRemote::with(login("at-0", "rt-0", NOW)), FakeLocal::with(Some(a.clone())), FakeProbe::new([verdict]));
        let o = block_on(run(&remote, &local, &probe));
        assert_eq!((o.status, o.reason), (Status::Degraded, Some(Reason::ProbeInconclusive)));
        assert_eq!(o.exit_code(), ExitCode::TempFail);
        assert!(remote.writes.borrow().is_empty());
        assert_eq!(local.replaced.get(), 0);
    }
}

#[test]
fn a_probe_that_cannot_run_fails_and_changes_nothing() {
    let a = login("at-1", "rt-1", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::default(), FakeLocal::with(Some(a)), FakeProbe::new([Verdict::Broken("no claude".into())]));
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::ProbeError)));
    assert!(remote.writes.borrow().is_empty());
}
