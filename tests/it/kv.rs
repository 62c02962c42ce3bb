//! The agent against KV mounts as operators set them up, on a real OpenBao: a nested
//! mount (`team/kv`), a KV version 1 mount (refused, nothing stored), and a mount that
//! requires check-and-set on metadata (the metadata still written). Each user has the
//! provisioner's own policy on that mount.

use crate::common::agent::user::Agent;
use crate::common::bao::bao;
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::secrets::random_secret;
use serde_json::json;

/// Issue 10.7: a secret on a nested mount is found there (not split at the first `/`).
#[test]
fn a_secret_on_a_nested_mount_is_backed_up_there() {
    let b = bao();
    let nested = format!("team{}/kv", &random_secret("mount-")[6..14]);
    b.mount_kv(&nested, "2");
    let u = Agent::builder(b).kv_mount(&nested).build();
    let (login, _) = u.good_login(now_ms() + 8 * HOUR_MS);
    let run = u.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("backed_up"), "{}", run.line());
    let v = b.root("GET", &format!("{nested}/data/workstation/claude-users/{}", u.name), None);
    assert_same!(v["data"]["data"]["claudeAiOauth"], login, "Vault holds the login under the nested mount");

    // The read at the first segment (`teamX/data/kv/...`) is denied, so the mount is
    // looked up and the secret read where it is: one request more than on `secret/`.
    let before = b.requests_by(&u.accessor).len();
    u.run().assert_outcome(0, "OK", None);
    let paths = b.requests_by(&u.accessor).split_off(before);
    let (team, kv) = nested.split_once('/').unwrap();
    let inside = format!("workstation/claude-users/{}", u.name);
    let expected = [
        "auth/token/lookup-self".to_string(),
        "auth/token/renew-self".into(),
        format!("{team}/data/{kv}/{inside}"),
        format!("sys/internal/ui/mounts/{nested}/{inside}"),
        format!("{nested}/data/{inside}"),
    ];
    assert_eq!(paths, expected, "an unchanged run on a nested mount");
}

/// Issue 10.7: a KV version 1 mount is refused with what to do, and nothing is stored.
#[test]
fn a_kv_version_1_mount_is_refused_and_nothing_is_stored() {
    let b = bao();
    let v1 = format!("v1{}", &random_secret("mount-")[6..14]);
    b.mount_kv(&v1, "1");
    let u = Agent::builder(b).kv_mount(&v1).build();
    let (_, before) = u.good_login(now_ms() + 8 * HOUR_MS);
    let run = u.run();
    run.assert_outcome(1, "FAIL", Some("vault_error"));
    let msg = run.report().msg().to_string();
    assert!(msg.contains("KV version 1") && msg.contains("enable-versioning"), "{}", run.line());
    let (s, v) = b.api(&b.root, "LIST", &format!("{v1}/data/workstation/claude-users"), None);
    assert_eq!(s, 404, "nothing stored in the v1 mount: {v}");
    assert_eq!(std::fs::read(u.claude.creds()).unwrap(), before, "the local file is untouched");
}

/// Issue 10.9: with `metadata_cas_required` on the mount, the metadata write uses
/// check-and-set and lands; no "wrote ... but not its metadata" warning, every run.
#[test]
fn metadata_is_written_where_the_mount_requires_metadata_check_and_set() {
    let b = bao();
    let strict = format!("cas{}", &random_secret("mount-")[6..14]);
    b.mount_kv(&strict, "2");
    b.root("POST", &format!("{strict}/config"), Some(json!({ "metadata_cas_required": true })));
    let u = Agent::builder(b).kv_mount(&strict).build();
    let meta_path = format!("{strict}/metadata/workstation/claude-users/{}", u.name);
    for round in 0..2 {
        let (login, _) = u.good_login(now_ms() + (8 + round) * HOUR_MS);
        let run = u.run();
        run.assert_outcome(0, "OK", None);
        assert_eq!(run.report().action(), Some("backed_up"), "round {round}: {}", run.line());
        assert!(!run.stderr.contains("not its metadata"), "round {round}: {}", run.stderr);
        let meta = b.root("GET", &meta_path, None)["data"].clone();
        assert_eq!(meta["custom_metadata"]["expires_at"], login["expiresAt"].to_string(), "round {round}: {meta}");
        assert_eq!(meta["current_metadata_version"], round + 1, "round {round}: one metadata write per backup");
    }
}
