//! `claude-auth-sync status` shows what the agent knows and changes nothing: after an
//! OK run (the run, the token's time left, the login's expiry and hard end, Vault's
//! latest version holding this very login, then another one once the CLI rotated it),
//! after a FAIL (its reason), with Vault down (the local facts, exit 75), and for an
//! AppRole agent before and after its first run (no token kept yet: exit 1, it never
//! logs in), and with a token Vault refuses (exit 1). Every output is leak-checked; the
//! whole agent directory (names, sizes, mtimes), the secret's KV metadata and the
//! token's last renewal are compared before and after, and the audit log shows that
//! status sent nothing but three reads.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::common::agent::run::Run;
use crate::common::agent::user::{Agent, Auth};
use crate::common::bao::{Bao, bao};
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::files::tree;
use crate::common::net::free_port;
use crate::common::secrets::random_secret;

/// Every path under `dir` with its size and mtime (ns).
fn snapshot(dir: &Path) -> Vec<(String, u64, i64, i64)> {
    tree(dir)
        .into_iter()
        .map(|p| {
            let m = std::fs::symlink_metadata(dir.join(&p)).unwrap();
            (p, m.len(), m.mtime(), m.mtime_nsec())
        })
        .collect()
}

/// What would show a write to Vault: the secret's metadata (versions, times, custom
/// metadata) and, for a token file, the token's last renewal.
fn vault_side(b: &Bao, s: &Agent) -> (Value, Value) {
    let meta = b.api(&b.root, "GET", &format!("secret/metadata/workstation/claude-users/{}", s.name), None).1;
    // A revoked token has no lookup: null, before and after alike.
    let renewal = if s.accessor.is_empty() {
        Value::Null
    } else {
        let lookup = json!({ "accessor": s.accessor });
        b.api(&b.root, "POST", "auth/token/lookup-accessor", Some(lookup)).1["data"]["last_renewal_time"].clone()
    };
    (meta["data"].clone(), renewal)
}

/// The requests status may make with the user's token: reads of the token, the mount
/// and the secret's latest version.
fn read_only(s: &Agent) -> [String; 3] {
    [
        "auth/token/lookup-self".into(),
        format!("sys/internal/ui/mounts/secret/workstation/claude-users/{}", s.name),
        format!("secret/data/workstation/claude-users/{}", s.name),
    ]
}

/// `status --json` and `status`, asserting that neither wrote anything; with a token
/// file, also that every request they made with it (the audit log) was one of
/// [`read_only`]. Returns the JSON run, its object, and the table run.
fn both(b: &Bao, s: &Agent) -> (Run, Value, Run) {
    let (files, vault) = (snapshot(s.dir.path()), vault_side(b, s));
    let audited = b.audit_requests(&s.accessor).len();
    let json_run = s.status(true);
    let table = s.status(false);
    assert_eq!(snapshot(s.dir.path()), files, "status wrote nothing locally");
    assert_eq!(vault_side(b, s), vault, "status wrote nothing to Vault and renewed nothing");
    if !s.accessor.is_empty() {
        let allowed = read_only(s);
        for e in &b.audit_requests(&s.accessor)[audited..] {
            let (op, path) = (e["request"]["operation"].as_str(), e["request"]["path"].as_str().unwrap_or_default());
            assert!(op == Some("read") && allowed.iter().any(|a| a == path), "status sent {op:?} {path}");
        }
    }
    let v: Value = serde_json::from_str(&json_run.stdout)
        .unwrap_or_else(|e| panic!("status --json is JSON ({e}):\n{}", json_run.stdout));
    assert_eq!(v["exit_code"].as_i64(), Some(json_run.code as i64), "the object names its exit code");
    assert_eq!(table.code, json_run.code);
    (json_run, v, table)
}

#[test]
fn after_an_ok_run_status_shows_the_run_the_token_the_login_and_vault_holding_it() {
    let b = bao();
    let s = Agent::new(b);
    s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    let (version, _) = s.vault_copy().unwrap();

    let audited = b.requests_by(&s.accessor).len();
    let (run, v, table) = both(b, &s);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sent = b.requests_by(&s.accessor)[audited..].to_vec();
    assert_eq!(sent, [read_only(&s), read_only(&s)].concat(), "each status: the three reads, once each");
    assert_eq!((v["last_run"]["status"].as_str(), v["last_run"]["action"].as_str()), (Some("OK"), Some("backed_up")));
    assert_eq!(v["last_run"]["reason"], Value::Null);
    assert_eq!(v["last_success_at"], v["last_run"]["at"]);
    assert_eq!((v["totals"]["runs"].as_u64(), v["totals"]["probes"].as_u64()), (Some(1), Some(1)));
    assert_eq!((v["vault"]["state"].as_str(), v["vault"]["identity_drift"].as_str()), (Some("ok"), None));
    let ttl = v["vault"]["token_ttl_seconds"].as_u64().unwrap();
    assert!(ttl > 0 && ttl <= 32 * 86_400, "{ttl}");
    let t = &v["templates"][0];
    assert_eq!((t["kind"].as_str(), t["local"]["state"].as_str()), (Some("json"), Some("login")));
    let left = t["local"]["access_token_expires_in_seconds"].as_i64().unwrap();
    assert!((7 * 3600..=8 * 3600).contains(&left), "{left}");
    assert_eq!(t["local"]["refresh_token_expires_in_days"].as_i64(), Some(19), "the fixture's hard end is 20 days out");
    assert_eq!(
        (t["vault"]["latest_version"].as_u64(), t["vault"]["matches_local"].as_bool()),
        (Some(version), Some(true))
    );

    let text = &table.stdout;
    for row in ["last run", "last success", "vault", "template #1", "  access token", "  login", "  vault copy"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("{row} "))), "row {row:?} in:\n{text}");
    }
    let at = v["last_run"]["at"].as_str().unwrap();
    assert!(text.lines().any(|l| l.contains("OK backed_up, ") && l.ends_with(&format!(" ({at})"))), "{text}");
    assert!(text.contains("expires in 7h ") || text.contains("expires in 8h"), "{text}");
    assert!(text.contains("ends in 19 days") && text.contains("holds this login"), "{text}");

    // Claude Code refreshed the login since: Vault's copy is another one until the next run.
    s.good_login(now_ms() + 8 * HOUR_MS);
    let (_, v, table) = both(b, &s);
    assert_eq!(v["templates"][0]["vault"]["matches_local"], false);
    assert!(table.stdout.contains(&format!("version {version}, holds ANOTHER login")), "{}", table.stdout);
}

#[test]
fn after_a_fail_status_shows_its_reason() {
    let b = bao();
    let s = Agent::new(b);
    s.claude.write_login(&s.dead_login(), &random_secret("mcp-token-"));
    b.kv_put(&s.name, json!({ "claudeAiOauth": s.dead_login() }));
    s.run().assert_outcome(1, "FAIL", Some("login_required"));

    let (run, v, table) = both(b, &s);
    assert_eq!(run.code, 0, "status read everything; the FAIL is what it shows: {}", run.stderr);
    assert_eq!(
        (v["last_run"]["status"].as_str(), v["last_run"]["reason"].as_str()),
        (Some("FAIL"), Some("login_required"))
    );
    assert_eq!(v["last_success_at"], Value::Null);
    assert_eq!(v["templates"][0]["vault"]["matches_local"], false);
    assert!(table.stdout.contains("FAIL login_required") && table.stdout.contains("never"), "{}", table.stdout);
}

#[test]
fn with_vault_down_status_shows_the_local_parts_and_exits_75() {
    let b = bao();
    let s = Agent::new(b);
    s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    s.reconfigure(|c| c.address(&format!("http://127.0.0.1:{}", free_port())));

    let (run, v, table) = both(b, &s);
    assert_eq!(run.code, 75, "{}", run.stderr);
    assert_eq!(v["vault"]["state"], "unreachable");
    assert!(v["vault"]["detail"].as_str().unwrap().contains("unreachable"), "{v}");
    assert_eq!(v["vault"]["token_ttl_seconds"], Value::Null);
    assert_eq!(v["last_run"]["status"], "OK", "the local parts are still shown");
    let t = &v["templates"][0];
    assert_eq!((t["local"]["state"].as_str(), t["vault"]["state"].as_str()), (Some("login"), Some("not_asked")));
    assert!(t["local"]["access_token_expires_in_seconds"].as_i64().unwrap() > 0);
    assert!(table.stdout.contains("UNREACHABLE") && table.stdout.contains("  access token"), "{}", table.stdout);
}

#[test]
fn an_approle_agent_is_asked_about_with_the_token_its_run_kept_and_never_logs_in() {
    let b = bao();
    let s = Agent::builder(b).auth(Auth::AppRole).build();
    s.good_login(now_ms() + 8 * HOUR_MS);

    let (run, v, _) = both(b, &s);
    assert_eq!((run.code, v["vault"]["state"].as_str()), (1, Some("no_token")), "no login to ask with: {v}");
    assert_eq!(v["last_run"], Value::Null);
    let kept = s.dir.path().join("secret-id.token");
    assert!(!kept.exists(), "status did not log in");

    s.run().assert_outcome(0, "OK", None);
    let (run, v, _) = both(b, &s);
    assert_eq!((run.code, v["vault"]["state"].as_str()), (0, Some("ok")), "{}", run.stderr);
    assert_eq!(v["templates"][0]["vault"]["matches_local"], true);
}

#[test]
fn a_token_vault_refuses_is_shown_as_such_and_status_exits_1() {
    let b = bao();
    let s = Agent::new(b);
    s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    b.root("POST", "auth/token/revoke-accessor", Some(json!({ "accessor": s.accessor })));

    let (run, v, table) = both(b, &s);
    assert_eq!((run.code, v["vault"]["state"].as_str()), (1, Some("token_invalid")), "{v}");
    assert_eq!(v["templates"][0]["local"]["state"], "login", "the local parts are still shown");
    assert!(
        table.stdout.contains("cannot ask: ") && table.stdout.contains("not asked (see vault)"),
        "{}",
        table.stdout
    );
}
