//! A rejected, missing or blanked login: Vault's latest copy is restored and probed
//! once more, kept if it works and undone if it does not; an older copy is never
//! replayed, and a login another writer put there meanwhile is judged, not overwritten.

use super::*;

#[test]
fn a_rejected_login_is_recovered_from_vault_and_the_refresh_written_back() {
    let dead = login("at-dead", "rt-dead", NOW - 2 * HOUR);
    let good = login("at-1", "rt-1", NOW - HOUR);
    let refreshed = login("at-2", "rt-2", NOW + 8 * HOUR);
    let remote = FakeRemote::with(good.clone());
    let local = FakeLocal::with(Some(dead));
    let mut probe = FakeProbe::new([rejected(), Verdict::Ok]);
    probe.refresh_into = None;
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
    assert_eq!(local.obj(), Some(good.clone()), "the restored copy is on disk");
    assert!(remote.writes.borrow().is_empty(), "nothing new to write back");

    // Same, but the CLI refreshes the restored login during the second probe.
    let remote = FakeRemote::with(good);
    let local = FakeLocal::with(Some(login("at-dead", "rt-dead", NOW - 2 * HOUR)));
    let probe = FakeProbe::new([rejected(), Verdict::Ok]);
    let refreshing = Refreshing { inner: &probe, local: &local, after: 1, rotated: refreshed.clone() };
    let o = block_on(run(&remote, &local, &refreshing));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
    assert_eq!(*remote.writes.borrow(), vec![1]);
    assert_eq!(remote.latest_obj(), Some(refreshed));
}

#[test]
fn both_rejected_is_login_required_and_the_file_is_put_back() {
    let dead = login("at-dead", "rt-dead", NOW + 8 * HOUR);
    let also_dead = login("at-old", "rt-old", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::with(also_dead), FakeLocal::with(Some(dead.clone())), FakeProbe::new([rejected(), rejected()]));
    let o = block_on(run(&remote, &local, &probe));
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
        let o = block_on(run(&remote, &local, &probe));
        assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)), "{o:?}");
        assert_eq!(probe.calls.get(), 1, "no second probe without a different copy");
        assert_eq!(local.replaced.get(), 0);
        assert!(remote.writes.borrow().is_empty());
    }
}

#[test]
fn login_required_says_who_logs_in_again_claude_or_the_tool_that_writes_the_file() {
    let dead = login("at-dead", "rt-dead", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::default(), FakeLocal::with(Some(dead.clone())), FakeProbe::new([rejected()]));
    let o = block_on(run(&remote, &local, &probe));
    assert!(
        o.message.as_deref().is_some_and(|m| m.ends_with("the user must log in again: claude auth login")),
        "{o:?}"
    );

    let mut codex = template(Restore::OnFailure);
    codex.destination = "/home/alice/.codex/auth.json".into();
    let TemplateKind::Json(j) = &mut codex.kind else { unreachable!() };
    (j.field, j.json_key) = ("tokens".into(), "/tokens".into());
    let TemplateKind::Json(j) = &codex.kind else { unreachable!() };
    let (local, probe) = (FakeLocal::with(Some(dead)), FakeProbe::new([rejected()]));
    let o = block_on(sync(&Binding { template: &codex, json: j }, &remote, &local, &probe, &FakeClock));
    assert_eq!(o.reason, Some(Reason::LoginRequired), "{o:?}");
    let msg = o.message.unwrap_or_default();
    assert!(msg.ends_with("log in again with the tool that writes /home/alice/.codex/auth.json"), "{msg}");
    assert!(!msg.contains("claude auth login"), "{msg}");
}

#[test]
fn rejected_while_vault_is_unreachable_fails_for_recovery() {
    let dead = login("at-dead", "rt-dead", NOW + 8 * HOUR);
    let remote = FakeRemote::failing(Trouble::Unreachable("sealed".into()));
    let (local, probe) = (FakeLocal::with(Some(dead)), FakeProbe::new([rejected()]));
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::VaultUnreachableDuringRecovery)));
    assert_eq!(local.replaced.get(), 0);
}

#[test]
fn missing_or_blanked_local_logins_are_restored_without_a_first_probe() {
    let good = login("at-1", "rt-1", NOW + 8 * HOUR);
    for before in [None, Some(blank())] {
        let (remote, local, probe) =
            (FakeRemote::with(good.clone()), FakeLocal::with(before), FakeProbe::new([Verdict::Ok]));
        let o = block_on(run(&remote, &local, &probe));
        assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)), "{o:?}");
        assert_eq!(probe.calls.get(), 1, "only the probe of the restored copy");
        assert_eq!(local.obj(), Some(good.clone()));
    }
}

#[test]
fn a_blanked_object_is_never_backed_up() {
    let (remote, local, probe) = (FakeRemote::default(), FakeLocal::with(Some(blank())), FakeProbe::new([]));
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run_with(Restore::Never, &remote, &local, &probe));
    assert_eq!((o.status, o.reason), (Status::Fail, Some(Reason::LoginRequired)));
    assert_eq!(local.replaced.get(), 0);
}

#[test]
fn an_older_vault_copy_is_never_replayed_over_a_newer_rejected_login() {
    let older = login("at-1", "rt-1", NOW + HOUR);
    let newer = login("at-2", "rt-2", NOW + 8 * HOUR);
    let (remote, local, probe) =
        (FakeRemote::with(older), FakeLocal::with(Some(newer.clone())), FakeProbe::new([rejected()]));
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run_with(Restore::Always, &remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Recovered)));
    assert_eq!(local.obj(), Some(vaults));
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
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Degraded, Some(Action::RestoredUnverified)));
    assert_eq!(local.obj(), Some(good));
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
    let o = block_on(run(&remote, &local, &clobbering));
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
    let o = block_on(run(&remote, &local, &rewriting));
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
    let o = block_on(run(&remote, &local, &blanking));
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
    let o = block_on(run_with(Restore::Always, &remote, &local, &probe));
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
    let o = block_on(run_with(Restore::Always, &remote, &local, &blanking));
    assert_eq!(o.status, Status::Ok, "{o:?}");
    assert_eq!((local.rolled_back.get(), local.obj()), (1, Some(local_login)), "the prior login is back");
}
