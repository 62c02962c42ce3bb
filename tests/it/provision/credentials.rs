//! Credentials over time: --prune, re-mints, new secret-ids, --rotate and auth mode
//! switches leave no old credential alive, whatever the home holds, and rewrite only
//! the auth block of the user's config.

use crate::common::bao::bao;
use crate::common::secrets::secret;
use crate::common::users::TestUser;
use serde_json::json;

use super::{
    Provisioner, Roster, alive, approle_login, approle_token, check_config_as, provisioned_users, read_secret,
    report_json, secret_ids, user_file,
};

#[test]
fn prune_revokes_a_removed_users_credential_and_keeps_the_data() {
    let b = bao();
    let (stay, leave) = (TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    p.provisioned(b, Roster::token(b), &[&stay.name, &leave.name]);
    let leave_token = secret(std::fs::read_to_string(leave.file("vault-token")).unwrap());
    b.kv_put(&leave.name, json!({ "claudeAiOauth": { "kept": true } }));
    let stay_token = std::fs::read_to_string(stay.file("vault-token")).unwrap();

    let only_stay = p.roster(Roster::token(b), &[&stay.name]);
    let run = p.admin_run(b, &only_stay, &["--prune", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let report = report_json(&run);
    assert_eq!(report["pruned"][0]["user"], leave.name.as_str());
    let (s, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": leave_token })));
    assert_eq!(s, 403, "the removed user's token is revoked");
    let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", leave.name), None);
    assert_eq!(s, 404, "and its policy deleted");
    assert!(!leave.file("vault-token").exists());
    assert_same!(b.kv_latest(&leave.name).unwrap().1, json!({ "claudeAiOauth": { "kept": true } }), "Vault data kept");
    assert_same!(std::fs::read_to_string(stay.file("vault-token")).unwrap(), stay_token);
    b.lookup(&stay_token);
}

/// Issue 10.1: a re-mint revokes the previous token by the accessor the state file
/// remembers, whatever the home holds (a garbled or a missing vault-token), and says so.
#[test]
fn a_remint_revokes_the_remembered_token_whatever_the_home_holds() {
    let b = bao();
    let ([u], p, roster) = provisioned_users(b, Roster::token(b));
    let first = read_secret(&u.file("vault-token"));

    user_file(&u, "vault-token", "not-a-token-at-all");
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &first), "the token the garbled file no longer held is revoked");
    assert!(run.stdout.contains("vault-token holds no token Vault knows"), "{}", run.stdout);
    assert!(run.stdout.contains("revoked the previous token remembered in the state file"), "{}", run.stdout);
    let second = read_secret(&u.file("vault-token"));
    assert!(alive(b, &second));

    std::fs::remove_file(u.file("vault-token")).unwrap();
    let run = p.admin_run(b, &roster, &["--rotate", &u.name]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &second), "a missing vault-token does not keep the old token alive");
    let third = read_secret(&u.file("vault-token"));
    assert_eq!(b.live_tokens("os_user", &u.name), vec![b.lookup(&third)["accessor"].as_str().unwrap().to_string()]);
}

/// Issue 10.1, AppRole: a new secret-id leaves the role with exactly that one, whatever
/// the home held; --rotate also revokes the login the agent kept from the old one.
#[test]
fn a_new_secret_id_leaves_the_role_with_that_one_only() {
    let b = bao();
    let ([u], p, roster) = provisioned_users(b, Roster::approle(b));
    let role_id = std::fs::read_to_string(u.file("role-id")).unwrap();
    let first = read_secret(&u.file("secret-id"));

    user_file(&u, "secret-id", "garbled");
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(secret_ids(b, &u).len(), 1, "the role lists one secret-id");
    assert_ne!(approle_login(b, &role_id, &first), 200, "the old secret-id no longer logs in");
    assert!(run.stdout.contains("destroyed 1 previous secret-id(s)"), "{}", run.stdout);
    let second = read_secret(&u.file("secret-id"));

    // The agent's kept login, from the current secret-id.
    let kept = approle_token(b, &u);
    user_file(&u, "approle-token", &kept);
    let run = p.admin_run(b, &roster, &["--rotate", &u.name]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("revoked the AppRole token the agent kept"), "{}", run.stdout);
    assert_eq!(secret_ids(b, &u).len(), 1);
    assert_ne!(approle_login(b, &role_id, &second), 200);
    assert!(!alive(b, &kept), "the login from the rotated secret-id is revoked");
    assert_eq!(approle_login(b, &role_id, &read_secret(&u.file("secret-id"))), 200);
}

/// Issue 10.4: switching the roster's auth mode retires the other mode's credential
/// (revoked, its files removed) and rewrites only the auth block of the user's config;
/// --prune removes both modes' files.
#[test]
fn an_auth_mode_switch_retires_the_old_credential_and_rewrites_the_auth_block() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let as_token = p.roster(Roster::token(b), &[&u.name]);
    let as_approle = p.roster(Roster::approle(b), &[&u.name]);
    assert_eq!(p.admin_run(b, &as_token, &[]).code, 0);
    let token = read_secret(&u.file("vault-token"));
    let mut edited = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    edited.push_str("\n# my own setting\nenv_shadowing = \"fail\"\n");
    user_file(&u, "config.hcl", &edited);

    let run = p.admin_run(b, &as_approle, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &token), "the periodic token is revoked");
    assert!(!u.file("vault-token").exists());
    let (s, _) = b.api(&b.root, "GET", &format!("auth/token/roles/claude-auth-sync-{}", u.name), None);
    assert_eq!(s, 404, "no token can be minted for the user any more");
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(
        config.contains("method \"approle\"") && config.contains("# my own setting\nenv_shadowing = \"fail\""),
        "{config}"
    );
    let shown = check_config_as(&u);
    assert!(shown.contains("method \"approle\"") && shown.contains("env_shadowing = \"fail\""), "{shown}");

    // The agent's kept AppRole login, then back to token.
    let role_id = std::fs::read_to_string(u.file("role-id")).unwrap();
    let secret_id = read_secret(&u.file("secret-id"));
    let kept = approle_token(b, &u);
    user_file(&u, "approle-token", &kept);
    let run = p.admin_run(b, &as_token, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let (s, _) = b.api(&b.root, "GET", &format!("auth/approle/role/claude-auth-sync-{}", u.name), None);
    assert_eq!(s, 404, "the role is deleted");
    assert_ne!(approle_login(b, &role_id, &secret_id), 200, "the secret-id no longer logs in");
    assert!(!alive(b, &kept), "the agent's kept AppRole token is revoked");
    for f in ["role-id", "secret-id", "approle-token"] {
        assert!(!u.file(f).exists(), "{f} removed");
    }
    let back = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert_eq!(back, edited, "back to token: the user's file as they left it");
    check_config_as(&u);

    // Leftovers of the other mode, then the user leaves: every credential file goes.
    user_file(&u, "role-id", "stale-role-id");
    user_file(&u, "secret-id", "stale-secret-id");
    let token = read_secret(&u.file("vault-token"));
    let nobody = p.roster(Roster::token(b), &[]);
    let run = p.admin_run(b, &nobody, &["--prune"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!alive(b, &token));
    for f in ["vault-token", "role-id", "secret-id"] {
        assert!(!u.file(f).exists(), "prune removes {f}");
    }
}
