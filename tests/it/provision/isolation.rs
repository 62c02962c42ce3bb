//! Each user's Vault identity is theirs alone: the periodic token or the AppRole role
//! the provisioner mints reads and writes exactly that user's path and nothing else
//! (checked against a real OpenBao), a second run mints nothing, and the user's policy
//! cannot shorten the version history.

use crate::common::bao::{Bao, bao};
use crate::common::files::{mode_of, uid_of};
use crate::common::secrets::secret;
use serde_json::json;

use super::{Roster, approle_token, check_config_as, kv, provisioned_users, read_secret, report_json, user_entry};

/// Every check of the isolation promise, with `token` (alice's) against alice's and bob's paths.
fn assert_isolated(b: &Bao, token: &str, alice: &str, bob: &str) {
    let data = |u: &str| format!("secret/data/workstation/claude-users/{u}");
    let meta = |u: &str| format!("secret/metadata/workstation/claude-users/{u}");
    let (s, v) = b.api(token, "POST", &data(alice), Some(json!({ "data": { "claudeAiOauth": { "probe": 1 } } })));
    assert_eq!(s, 200, "{alice} writes their own path: {v}");
    let (s, v) = b.api(token, "GET", &data(alice), None);
    assert_same!((s, &v["data"]["data"]["claudeAiOauth"]["probe"]), (200, &json!(1)), "{alice} reads their own path");
    b.kv_put(bob, json!({ "claudeAiOauth": { "bob": true } }));
    for (method, path, body) in [
        ("GET", data(bob), None),
        ("POST", data(bob), Some(json!({ "data": { "x": 1 } }))),
        ("GET", meta(bob), None),
        ("POST", meta(bob), Some(json!({ "max_versions": 1 }))),
        ("LIST", "secret/metadata/workstation/claude-users".to_string(), None),
        ("GET", "sys/policy".to_string(), None),
        ("GET", "sys/policies/acl".to_string(), None),
        ("POST", "auth/token/create".to_string(), Some(json!({ "policies": ["default"] }))),
        ("DELETE", data(alice), None),
    ] {
        let (s, v) = b.api(token, method, &path, body);
        assert_eq!(s, 403, "{alice}'s credential must be denied {method} {path}: {s} {v}");
    }
}

#[test]
fn two_users_get_isolated_periodic_tokens_and_a_second_run_mints_nothing() {
    let b = bao();
    let ([alice, bob], p, roster) = provisioned_users(b, Roster::token(b));
    for u in [&alice, &bob] {
        let token_file = u.file("vault-token");
        assert_eq!((mode_of(&token_file), uid_of(&token_file)), (0o600, u.uid));
        assert_eq!((mode_of(&u.agent_dir()), uid_of(&u.agent_dir())), (0o700, u.uid));
        assert_eq!(uid_of(&u.file("config.hcl")), u.uid);
        let token = secret(std::fs::read_to_string(&token_file).unwrap());
        let info = b.lookup(&token);
        assert_eq!(info["policies"], json!([format!("claude-auth-sync-{}", u.name)]), "that policy only");
        assert_eq!(info["meta"]["os_user"], u.name.as_str());
        // Periodic through the user's own token role, which allows that policy only.
        let role = format!("claude-auth-sync-{}", u.name);
        assert_eq!(info["path"], format!("auth/token/create/{role}"));
        assert_eq!(info["creation_ttl"], 32 * 86_400);
        let r = b.root("GET", &format!("auth/token/roles/{role}"), None)["data"].clone();
        assert_eq!((&r["token_period"], &r["allowed_policies"]), (&json!(32 * 86_400), &json!([role])));
        assert_eq!(info["orphan"], true);
        // The user's own agent accepts what was written.
        check_config_as(u);
    }
    let alice_token = std::fs::read_to_string(alice.file("vault-token")).unwrap();
    let bob_token = std::fs::read_to_string(bob.file("vault-token")).unwrap();
    assert_isolated(b, &alice_token, &alice.name, &bob.name);
    assert_isolated(b, &bob_token, &bob.name, &alice.name);

    // Idempotent: nothing minted, nothing rewritten.
    let config_before = std::fs::read(alice.file("config.hcl")).unwrap();
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = report_json(&run);
    for u in [&alice, &bob] {
        let e = user_entry(&report, &u.name);
        assert_eq!(e["status"], "ok", "{e}");
        assert!(e["actions"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().starts_with("token kept")), "{e}");
    }
    assert_same!(std::fs::read_to_string(alice.file("vault-token")).unwrap(), alice_token);
    assert_eq!(std::fs::read(alice.file("config.hcl")).unwrap(), config_before);

    // --rotate mints a new one and revokes the old.
    let run = p.admin_run(b, &roster, &["--rotate", &alice.name]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let rotated = secret(std::fs::read_to_string(alice.file("vault-token")).unwrap());
    assert_ne!(rotated, alice_token);
    let (s, _) = b.api(&b.root, "POST", "auth/token/lookup", Some(json!({ "token": alice_token })));
    assert_eq!(s, 403, "the old token is revoked");
    assert_same!(std::fs::read_to_string(bob.file("vault-token")).unwrap(), bob_token, "bob untouched");
}

#[test]
fn two_users_get_isolated_approles() {
    let b = bao();
    let ([alice, bob], p, roster) = provisioned_users(b, Roster::approle(b));
    for u in [&alice, &bob] {
        for f in ["role-id", "secret-id"] {
            assert_eq!((mode_of(&u.file(f)), uid_of(&u.file(f))), (0o600, u.uid), "{f}");
        }
        check_config_as(u);
    }
    let (ta, tb) = (approle_token(b, &alice), approle_token(b, &bob));
    assert_eq!(b.lookup(&ta)["policies"], json!([format!("claude-auth-sync-{}", alice.name)]));
    assert_isolated(b, &ta, &alice.name, &bob.name);
    assert_isolated(b, &tb, &bob.name, &alice.name);

    let secret_before = std::fs::read(alice.file("secret-id")).unwrap();
    let run = p.admin_run(b, &roster, &["--json"]);
    assert_eq!(run.code, 0);
    assert_eq!(user_entry(&report_json(&run), &alice.name)["status"], "ok");
    assert_same!(std::fs::read(alice.file("secret-id")).unwrap(), secret_before, "no new secret-id");
}

/// Issue 10.2: the user's policy lets the agent set custom_metadata only; the admin run
/// resets every version setting it owns to the roster's values.
#[test]
fn a_user_cannot_shorten_the_version_history() {
    let b = bao();
    let ([u], p, roster) = provisioned_users(b, Roster::token(b));
    let token = read_secret(&u.file("vault-token"));
    let meta = kv("secret", "metadata", &u.name);
    let (s, v) = b.api(&token, "POST", &kv("secret", "data", &u.name), Some(json!({ "data": { "x": 1 } })));
    assert_eq!(s, 200, "{v}");
    for abuse in
        [json!({ "max_versions": 1 }), json!({ "delete_version_after": "1s" }), json!({ "cas_required": true })]
    {
        let (s, _) = b.api(&token, "POST", &meta, Some(abuse.clone()));
        assert_eq!(s, 403, "the user may not write {abuse}");
    }
    let (s, v) = b.api(&token, "POST", &meta, Some(json!({ "custom_metadata": { "host": "ws1" } })));
    assert_eq!(s, 204, "the agent's metadata write works: {v}");
    let (s, _) = b.api(&token, "GET", &meta, None);
    assert_eq!(s, 200, "the agent may read its metadata (for metadata check-and-set)");

    // Settings changed behind the provisioner's back (an older policy allowed it): reset.
    b.root("POST", &meta, Some(json!({ "max_versions": 1, "delete_version_after": "1h", "cas_required": true })));
    let run = p.admin_run(b, &roster, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("set max_versions=10, delete_version_after=0s, cas_required=false"), "{}", run.stdout);
    let m = b.root("GET", &meta, None)["data"].clone();
    assert_eq!(
        (&m["max_versions"], &m["delete_version_after"], &m["cas_required"]),
        (&json!(10), &json!("0s"), &json!(false))
    );
    assert_eq!(m["custom_metadata"]["host"], "ws1", "the agent's facts are kept");
    let run = p.admin_run(b, &roster, &[]);
    assert!(!run.stdout.contains("set max_versions"), "nothing to reset: {}", run.stdout);
}
