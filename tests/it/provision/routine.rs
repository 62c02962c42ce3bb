//! The routine run, without an admin token: it reports revoked, expired and drifted
//! credentials for an admin, repairs what needs no admin, and its AppRole checks do
//! not leave logins behind.

use crate::common::bao::bao;
use crate::common::files::{mode_of, uid_of};
use crate::common::users::TestUser;
use serde_json::json;

use super::{Provisioner, Roster, as_user, provisioned_users, read_secret, user_file};

#[test]
fn the_routine_run_reports_revoked_and_expired_credentials_without_an_admin_token() {
    let b = bao();
    let (revoked, expired, fine) = (TestUser::new(), TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    p.provisioned(b, Roster::token(b).token_period("1h"), &[&revoked.name, &fine.name]);
    p.provisioned(b, Roster::token(b).token_period("2s"), &[&expired.name]);
    b.revoke(&std::fs::read_to_string(revoked.file("vault-token")).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(3500));
    // A mode that needs no admin to fix.
    std::fs::set_permissions(fine.file("vault-token"), std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();

    let all = p.roster(Roster::token(b).token_period("1h"), &[&revoked.name, &expired.name, &fine.name]);
    let run = p.routine_run(&all);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(&format!("  {}: credential revoked", revoked.name)), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("  {}: credential expired", expired.name)), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("{}: changed", fine.name)), "{}", run.stdout);
    assert_eq!(mode_of(&fine.file("vault-token")), 0o600, "the mode was fixed without an admin");
    assert!(!run.stdout.contains(&format!("  {}:", fine.name)), "a healthy user is not listed for an admin");
}

/// Issue 9.9: AppRole logins do not pile up: the routine check revokes its own login
/// and the agent keeps one login across runs. Live tokens counted by root.
#[test]
fn approle_checks_and_agent_runs_leave_one_live_token() {
    let b = bao();
    let ([u], p, roster) = provisioned_users(b, Roster::approle(b));
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    let auth_only = user_file(&u, "auth-only.hcl", &format!("{config}\nexit_after_auth = true\n"));
    for _ in 0..4 {
        let out = as_user(&u, &["run", "--once", "--config", auth_only.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let routine = p.routine_run(&roster);
        assert_eq!(routine.code, 0, "{}", routine.stdout);
        assert!(routine.stdout.contains("AppRole login works"), "{}", routine.stdout);
    }
    let live = b.live_tokens("role_name", &format!("claude-auth-sync-{}", u.name));
    assert_eq!(live.len(), 1, "4 agent runs and 4 routine checks leave {} live tokens", live.len());
    let kept = u.file("approle-token");
    assert_eq!((mode_of(&kept), uid_of(&kept)), (0o600, u.uid));
    assert_eq!(b.lookup(&read_secret(&kept))["accessor"], live[0].as_str(), "the live one is the agent's");
}

/// Issue 9.11: the routine run uses the agent's identity check: a token carrying
/// another user's policy besides its own is drift.
#[test]
fn the_routine_run_finds_a_token_that_can_do_more_than_its_user() {
    let b = bao();
    let ([u, other], p, roster) = provisioned_users(b, Roster::token(b));
    let (wide, _) = b.token(json!({
        "policies": [format!("claude-auth-sync-{}", u.name), format!("claude-auth-sync-{}", other.name)],
        "no_default_policy": true, "period": "1h", "meta": { "os_user": u.name }
    }));
    user_file(&u, "vault-token", &wide);
    let run = p.routine_run(&roster);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("  {}: drift: policies also grant claude-auth-sync-{}", u.name, other.name)),
        "{}",
        run.stdout
    );
}
