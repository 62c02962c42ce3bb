//! A file the CLI cannot read as it is: a login with its tokens but without fields the
//! CLI needs is repaired in place (never replaced by an older copy), and a whole login in
//! a file that is not strict JSON is rewritten as JSON first.

use super::*;

#[test]
fn an_incomplete_login_is_repaired_keeping_its_newer_tokens_never_replaced_by_vaults() {
    let vaults = login("at-old", "rt-old", NOW + 8 * HOUR);
    let remote = FakeRemote::with(vaults);
    let local = FakeLocal::with(Some(incomplete("at-new", "rt-new")));
    // The CLI refreshes the repaired login (its expiry says expired) with its own token.
    let mut probe = FakeProbe::new([Verdict::Ok]);
    let refreshed = login("at-newer", "rt-newer", NOW + 8 * HOUR);
    probe.refresh_into = Some((&local, refreshed.clone()));
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
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
    let (local, probe) = working(old);
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
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
    let o = block_on(run(&remote, &local, &probe));
    assert_eq!((o.status, o.action), (Status::Ok, Some(Action::Verified)), "{o:?}");
    assert_eq!(local.replaced.get(), 1, "rewritten as strict JSON first");
}
