//! The roster's `secrets:`: extra per-user secrets (Codex's login, gcloud's
//! credentials, ...) that the user's policy grants under the user's own path. The
//! user's credential reads and writes them and nobody else's; every admin run keeps
//! the grant (and puts it back when the policy drifted); taking a name out of the
//! roster revokes it, and the summary says so.

use serde_json::{Value, json};

use super::{Provisioner, Roster, read_secret, report_json, user_entry};
use crate::common::agent::run::agent;
use crate::common::bao::{Bao, bao};
use crate::common::users::TestUser;

fn data(user: &str, name: &str) -> String {
    format!("secret/data/workstation/claude-users/{user}/{name}")
}

/// The HTTP status of writing, then of reading, `path` with `token`.
fn write_read(b: &Bao, token: &str, path: &str) -> (u16, u16) {
    let (w, _) = b.api(token, "POST", path, Some(json!({ "data": { "tokens": { "probe": 1 } } })));
    let (r, _) = b.api(token, "GET", path, None);
    (w, r)
}

/// The user's actions in an admin run's `--json` summary.
fn actions(report: &Value, user: &str) -> Vec<String> {
    let e = user_entry(report, user);
    e["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn policy_actions(report: &Value, user: &str) -> Vec<String> {
    actions(report, user).into_iter().filter(|a| a.contains("policy claude-auth-sync-")).collect()
}

#[test]
fn extra_secrets_are_the_users_alone_kept_by_every_admin_run_and_revoked_when_removed() {
    let b = bao();
    let (alice, bob) = (TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let (a, o) = (alice.name.as_str(), bob.name.as_str());
    let roster = p.roster_with_secrets(Roster::token(b), &[(a, &["codex", "gcloud"]), (o, &[])]);
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let granted = format!(
        "wrote policy claude-auth-sync-{a}, granting secret/workstation/claude-users/{a}/codex, secret/workstation/claude-users/{a}/gcloud"
    );
    assert_eq!(policy_actions(&report_json(&run), a), [granted], "the summary names each grant");
    assert_eq!(policy_actions(&report_json(&run), o), [format!("wrote policy claude-auth-sync-{o}")]);

    let alice_token = read_secret(&alice.file("vault-token"));
    let bob_token = read_secret(&bob.file("vault-token"));
    for name in ["codex", "gcloud"] {
        assert_eq!(write_read(b, &alice_token, &data(a, name)), (200, 200), "{a} uses their own {name}");
        assert_eq!(write_read(b, &bob_token, &data(a, name)), (403, 403), "{o} is denied {a}'s {name}");
    }
    assert_eq!(write_read(b, &alice_token, &data(a, "aws")), (403, 403), "a name not in the roster");
    assert_eq!(write_read(b, &alice_token, &data(o, "codex")), (403, 403), "another user's extra secret");
    assert_eq!(write_read(b, &bob_token, &data(o, "codex")), (403, 403), "{o} has no extra secret");
    let (s, _) = b.api(&alice_token, "LIST", &format!("secret/metadata/workstation/claude-users/{a}"), None);
    assert_eq!(s, 403, "no listing, not even of the user's own path");
    let policy = agent(&["policy", "--user", a, "--roster", roster.to_str().unwrap()], &[]);
    assert!(policy.stdout.contains(&format!("path \"{}\"", data(a, "gcloud"))), "{}", policy.stdout);

    // The routine run (no admin token) checks each grant with the user's own token.
    let routine = p.routine_run(&roster);
    assert_eq!(routine.code, 0, "{}\n{}", routine.stdout, routine.stderr);
    assert!(routine.stdout.contains("grants codex, gcloud"), "{}", routine.stdout);

    // The next admin run keeps the grant: the policy is already what it wants.
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(policy_actions(&report_json(&run), a).is_empty(), "{}", run.stdout);
    assert_eq!(write_read(b, &alice_token, &data(a, "codex")), (200, 200));

    // Someone rewrote the policy without the grants (drift): the admin run puts them back.
    let bare = claude_auth_sync::provision::policy::hcl("secret", "workstation/claude-users", a, &[]);
    b.root("PUT", &format!("sys/policies/acl/claude-auth-sync-{a}"), Some(json!({ "policy": bare })));
    assert_eq!(write_read(b, &alice_token, &data(a, "codex")), (403, 403), "the drifted policy lacks it");
    let routine = p.routine_run(&roster);
    assert_eq!(routine.code, 1, "{}", routine.stdout);
    let lost = format!("  {a}: the user's policy does not grant secret/workstation/claude-users/{a}/codex");
    assert!(routine.stdout.contains(&lost), "the routine run lists it for an admin:\n{}", routine.stdout);
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(policy_actions(&report_json(&run), a).len(), 1, "{}", run.stdout);
    assert!(policy_actions(&report_json(&run), a)[0].contains("granting"), "{}", run.stdout);
    assert_eq!(write_read(b, &alice_token, &data(a, "codex")), (200, 200), "the grant is back");

    // gcloud taken out of the roster: its grant goes, the summary says so, the data stays.
    let roster = p.roster_with_secrets(Roster::token(b), &[(a, &["codex"]), (o, &[])]);
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        policy_actions(&report_json(&run), a),
        [format!(
            "wrote policy claude-auth-sync-{a}, no longer granting secret/workstation/claude-users/{a}/gcloud (the data is kept)"
        )]
    );
    assert_eq!(write_read(b, &alice_token, &data(a, "gcloud")), (403, 403), "revoked");
    assert_eq!(write_read(b, &alice_token, &data(a, "codex")), (200, 200), "the other grant stays");
    let (s, v) = b.api(&b.root, "GET", &data(a, "gcloud"), None);
    assert_eq!((s, &v["data"]["data"]["tokens"]["probe"]), (200, &json!(1)), "the data is kept for an admin");
}

#[test]
fn a_bad_secret_name_is_refused_before_anything_changes() {
    let b = bao();
    let alice = TestUser::new();
    let p = Provisioner::new();
    let roster = p.roster_with_secrets(Roster::token(b), &[(&alice.name, &["../bob"])]);
    let run = p.admin_run(b, &roster, &[]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("secrets: each name is one path segment"), "{}", run.stderr);
    let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", alice.name), None);
    assert_eq!(s, 404, "no policy was written");
}

#[test]
fn the_routine_check_of_an_approle_user_finds_a_lost_grant_and_still_ends_its_login() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.roster_with_secrets(Roster::approle(b), &[(&u.name, &["codex"])]);
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let routine = p.routine_run(&roster);
    assert_eq!(routine.code, 0, "{}", routine.stdout);
    assert!(routine.stdout.contains("AppRole login works; grants codex"), "{}", routine.stdout);

    let bare = claude_auth_sync::provision::policy::hcl("secret", "workstation/claude-users", &u.name, &[]);
    b.root("PUT", &format!("sys/policies/acl/claude-auth-sync-{}", u.name), Some(json!({ "policy": bare })));
    let routine = p.routine_run(&roster);
    assert_eq!(routine.code, 1, "{}", routine.stdout);
    assert!(routine.stdout.contains("does not grant secret/workstation/claude-users/"), "{}", routine.stdout);
    let live = b.live_tokens("role_name", &format!("claude-auth-sync-{}", u.name));
    assert!(live.is_empty(), "the check's logins ended themselves: {} live", live.len());
}
