//! Against a real 3-node OpenBao Raft cluster (common::bao::raft): a secret written
//! through a standby survives the leader's death, and the agent as it is (`run --once`
//! through the load balancer an operator would configure, with a token file and with
//! AppRole) reports a leader loss as DEGRADED, never FAIL, leaves the credentials file
//! alone, and ends OK with its backup in Vault once a new leader serves.
//!
//! The leader loss is held open by events, not timing: the leader is killed while one
//! standby is frozen (SIGSTOP), so the last node cannot win an election until the test
//! thaws the frozen one.
//!
//! And a fleet: the provisioner with a roster of [`FLEET`] users (`HA_FLEET_USERS=1000`
//! for the thousand; `scripts/bench-provision.sh --ha` runs that) through the
//! balancer, its time and Vault requests per user printed for docs/performance.md. The
//! users need no OS accounts: the debug build's test-only switch
//! (`CLAUDE_AUTH_SYNC_TEST_ONLY_FAKE_HOMES`, src/provision/fake_homes.rs) resolves them
//! to homes under a scratch directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::agent::report::Report;
use crate::common::agent::run::{Run, agent};
use crate::common::agent::user::{Agent, Auth};
use crate::common::bao::raft::Cluster;
use crate::common::bao::{Bao, user_policy_name};
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::files::mode_of;
use crate::common::secrets::random_secret;
use crate::provision::admin_token;
use crate::resident::{Resident, wait_for};
use serde_json::{Value, json};

#[test]
fn a_secret_written_through_a_standby_is_read_back_from_the_new_leader() {
    let started = Instant::now();
    let c = Cluster::start();
    eprintln!("ha: cluster of 3 up in {:.1?}", started.elapsed());
    let leader = c.wait_for_leader();
    let standby = c.standbys()[0];
    assert_ne!(standby, leader);

    let value = random_secret("ha-value-");
    let written =
        c.via(&c.nodes[standby].addr).root("POST", "secret/data/ha/proof", Some(json!({ "data": { "value": value } })));
    assert_eq!(written["data"]["version"], 1, "{written}");

    // No settle: a write the leader acknowledged is committed on a Raft majority, and a
    // new leader always holds every committed entry.
    let failover = Instant::now();
    let killed = c.kill_active();
    assert_eq!(killed, leader);
    let new_leader = c.wait_for_leader();
    eprintln!("ha: {} killed, {} serves after {:.1?}", c.nodes[killed].id, c.nodes[new_leader].id, failover.elapsed());
    assert_ne!(new_leader, killed);

    let read = c.via(&c.nodes[new_leader].addr).root("GET", "secret/data/ha/proof", None);
    assert_eq!(read["data"]["metadata"]["version"], 1, "{read}");
    assert_same!(read["data"]["data"]["value"], json!(value), "the new leader holds what the standby took");
    let lb = c.balancer();
    let (status, through_lb) = c.via(&lb.addr).api(&c.root, "GET", "secret/data/ha/proof", None);
    assert_eq!(status, 200);
    assert_same!(through_lb["data"]["data"]["value"], json!(value), "the balancer reaches a node that holds it");
    assert!(lb.routed.lock().unwrap().iter().all(|n| n != &c.nodes[killed].id), "the balancer skips the dead node");
}

#[test]
fn a_run_during_the_leader_loss_is_degraded_and_ok_once_a_new_leader_serves() {
    let started = Instant::now();
    let c = Cluster::start();
    let lb = c.balancer();
    // Set-up goes to the leader: through a standby, a read right after a write (the role
    // after its mount, say) can miss it. The agents talk to the balancer.
    let leader = c.wait_for_leader();
    let admin = c.via(&c.nodes[leader].addr);
    let users = [
        Agent::builder(&admin).vault_addr(&lb.addr).vault_timeout("10s").auth(Auth::TokenFile).build(),
        Agent::builder(&admin).vault_addr(&lb.addr).vault_timeout("10s").auth(Auth::AppRole).build(),
    ];
    for s in &users {
        s.good_login(now_ms() + 8 * HOUR_MS);
    }
    // The users' policies, tokens and secret-ids reach every node before an agent's
    // request lands on a standby: a lagging standby refuses a secret-id it has not seen.
    c.settle();
    for s in &users {
        assert_backed_up(s, 1);
    }

    // Claude Code refreshed both logins: each run now has a backup to make.
    let refreshed: Vec<_> = users.iter().map(|s| s.good_login(now_ms() + 8 * HOUR_MS)).collect();

    assert_eq!(c.active(), Some(leader), "no failover before the test's own");
    let frozen = c.standbys()[0];
    c.pause(frozen);
    c.kill(leader);
    eprintln!("ha: {} killed, {} frozen: no node can win an election", c.nodes[leader].id, c.nodes[frozen].id);
    for (s, (_, bytes)) in users.iter().zip(&refreshed) {
        let run = s.run();
        eprintln!("ha: during the leader loss ({:.1?}): {}", run.elapsed, run.report());
        run.assert_outcome(75, "DEGRADED", Some("vault_unreachable"));
        assert_eq!(&std::fs::read(s.claude.creds()).unwrap(), bytes, "the credentials file is untouched");
    }

    let failover = Instant::now();
    c.resume(frozen);
    let new_leader = c.wait_for_leader();
    eprintln!("ha: {} serves {:.1?} after the thaw", c.nodes[new_leader].id, failover.elapsed());
    c.settle();
    let on_leader = c.via(&c.nodes[new_leader].addr);
    for (s, (login, bytes)) in users.iter().zip(&refreshed) {
        assert_backed_up(s, 2);
        assert_eq!(&std::fs::read(s.claude.creds()).unwrap(), bytes, "a backup does not touch the local file");
        let (version, data) = on_leader.kv_latest(&s.name).expect("the backup");
        assert_eq!(version, 2, "one new version: the DEGRADED run wrote nothing");
        assert_same!(data, json!({ "claudeAiOauth": login }), "the new leader holds the refreshed login");
    }
    eprintln!("ha: the whole scenario took {:.1?}", started.elapsed());
}

/// Runs the user's agent once; it must end OK, having stored the login as `version`.
fn assert_backed_up(s: &Agent, version: u64) {
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    let line = run.report();
    assert_eq!(
        (line.action(), line.fact("vault_version")),
        (Some("backed_up"), Some(version.to_string().as_str())),
        "{line}"
    );
}

/// The fleet's size in the suite; `HA_FLEET_USERS` overrides it.
const FLEET: usize = 200;

/// Who owns the fleet's scratch homes: `nobody`, never root (the roster refuses root).
const FLEET_UID: u32 = 65534;

/// Issue 12.6: the provisioner with a roster of [`FLEET`] users against the 3-node
/// cluster, through the balancer an operator configures: every user minted and written
/// on the first run, nothing minted on the second, every user's own token valid on the
/// routine run (which checks each user with that user's credential), whichever node each
/// request reached.
#[test]
fn a_fleet_is_provisioned_through_the_balancer_of_an_ha_cluster() {
    let n: usize = std::env::var("HA_FLEET_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(FLEET);
    let c = Cluster::start();
    let lb = c.balancer();
    let leader = c.wait_for_leader();
    let admin = c.via(&c.nodes[leader].addr);
    let token = admin_token(&admin, "secret");
    c.settle();

    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let homes = scratch.path().join("homes");
    let names: Vec<String> = (1..=n).map(|i| format!("fleet{i:04}")).collect();
    for dir in std::iter::once(homes.clone()).chain(names.iter().map(|u| homes.join(u))) {
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(FLEET_UID), Some(FLEET_UID)).unwrap();
    }
    let mut roster = format!("vault:\n  address: {}\nusers:\n", lb.addr);
    for u in &names {
        roster.push_str(&format!("  - name: {u}\n"));
    }
    let roster_path = scratch.path().join("roster.yaml");
    std::fs::write(&roster_path, roster).unwrap();
    let state = scratch.path().join("state.json");
    let provision = |env: &[(&str, &str)]| {
        let args =
            ["provision", "--roster", roster_path.to_str().unwrap(), "--state", state.to_str().unwrap(), "--json"];
        let mut env = env.to_vec();
        env.push(("CLAUDE_AUTH_SYNC_TEST_ONLY_FAKE_HOMES", homes.to_str().unwrap()));
        let before = audit_requests(&c.audit_log).len();
        let run = agent(&args, &env);
        let requests = audit_requests(&c.audit_log).split_off(before);
        (run, requests)
    };

    let (first, first_requests) = provision(&[("VAULT_TOKEN", &token)]);
    assert_every_user(&first, &names, "changed");
    for u in &names {
        let dir = homes.join(u).join(".config/claude-auth-sync");
        for file in ["config.hcl", "vault-token"] {
            let path = dir.join(file);
            let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!((mode_of(&path), meta.uid()), (0o600, FLEET_UID), "{}", path.display());
        }
    }
    // A sample of the minted tokens, looked up on the leader: each is its user's alone.
    c.settle();
    for u in names.iter().step_by((n / 10).max(1)) {
        let minted = crate::common::secrets::secret(
            std::fs::read_to_string(homes.join(u).join(".config/claude-auth-sync/vault-token")).unwrap(),
        );
        let looked_up = admin.lookup(&minted);
        assert_eq!(looked_up["policies"], json!([user_policy_name(u)]), "{u}: {looked_up}");
        assert_eq!(looked_up["meta"]["os_user"], json!(u), "{u}: {looked_up}");
    }

    let (second, second_requests) = provision(&[("VAULT_TOKEN", &token)]);
    assert_every_user(&second, &names, "ok");
    let (routine, routine_requests) = provision(&[]);
    assert_every_user(&routine, &names, "ok");

    let per_user = |r: &[Value]| r.len() as f64 / n as f64;
    let first_user: Vec<String> = first_requests
        .iter()
        .filter(|e| e["request"]["path"].as_str().is_some_and(|p| p.contains(&names[0])))
        .map(|e| format!("{} {}", e["request"]["operation"].as_str().unwrap_or("?"), e["request"]["path"]))
        .collect();
    eprintln!("ha fleet: {n} users through the balancer of 3 Raft nodes (routed: {})", routed(&lb.routed));
    for (what, run, requests) in [
        ("first admin run (mints all)", &first, &first_requests),
        ("second admin run (mints nothing)", &second, &second_requests),
        ("routine run (no admin token)", &routine, &routine_requests),
    ] {
        eprintln!(
            "ha fleet: {what}: {:.1?} ({:.1} ms per user), {} Vault requests ({:.1} per user)",
            run.elapsed,
            run.elapsed.as_secs_f64() * 1000.0 / n as f64,
            requests.len(),
            per_user(requests)
        );
    }
    eprintln!("ha fleet: requests naming {} in the first run: {first_user:?}", names[0]);
}

/// Every request entry in the cluster's shared audit log.
fn audit_requests(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|e| e["type"] == "request").collect()
}

/// How many connections the balancer sent to each node.
fn routed(routed: &std::sync::Mutex<Vec<String>>) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for node in routed.lock().unwrap().iter() {
        *counts.entry(node.clone()).or_default() += 1;
    }
    counts.iter().map(|(node, k)| format!("{node} {k}")).collect::<Vec<_>>().join(", ")
}

/// The run's JSON summary lists every roster user, in order, with `status`.
fn assert_every_user(run: &Run, names: &[String], status: &str) {
    assert_eq!(run.code, 0, "provision:\n{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let users = report["users"].as_array().expect("users");
    assert_eq!(users.len(), names.len(), "{report}");
    for (entry, name) in users.iter().zip(names) {
        assert_eq!((&entry["user"], &entry["status"]), (&json!(name), &json!(status)), "{entry}");
    }
}

/// A refresh as Claude Code makes it, by the stand-in itself: the refresh token rotates
/// (the old one is dead from now on: restoring it would be a replay the stand-in
/// refuses) and the file is replaced by rename. The login it left on disk.
fn claude_refreshes(s: &Agent) -> Value {
    assert!(s.claude.call(&[("FAKE_CLAUDE_FORCE_REFRESH", "1")]), "the stand-in refreshes");
    s.claude.read_doc()["claudeAiOauth"].clone()
}

/// The user's report lines so far, parsed (leak-checked by [`Resident::lines_in`]).
fn report_lines(s: &Agent) -> Vec<Report> {
    Resident::lines_in(&s.log()).iter().map(|l| Report::of(l)).collect()
}

/// Issue 12.6: resident agents of three users (token file, AppRole, token file) through
/// the balancer, each with its own identity and secret. With a cycle of every agent held
/// in flight (its probe gated by the stand-in), the active node is killed and a standby
/// frozen, so no leader can be elected until the test thaws it; Claude Code refreshes
/// every login once more during that election. Once a new leader serves, each user's
/// latest login is Vault's latest (the agents retry a pending backup by themselves), no
/// old refresh token was ever replayed, every line in between is OK or DEGRADED, the
/// last one OK, and no output holds a secret.
#[test]
fn resident_agents_lose_nothing_when_the_leader_dies_mid_cycle() {
    let started = Instant::now();
    let c = Cluster::start();
    let lb = c.balancer();
    let leader = c.wait_for_leader();
    let admin = c.via(&c.nodes[leader].addr);
    let users: Vec<Agent> = [Auth::TokenFile, Auth::AppRole, Auth::TokenFile]
        .into_iter()
        .map(|auth| {
            Agent::builder(&admin)
                .vault_addr(&lb.addr)
                .vault_timeout("10s")
                .auth(auth)
                .build()
                .configure(|cfg| cfg.resident("probe_min_interval", "0s"))
        })
        .collect();
    for s in &users {
        s.good_login(now_ms() + 8 * HOUR_MS);
    }
    c.settle();
    let gates: Vec<PathBuf> = users.iter().map(|s| s.dir.path().join("probe.gate")).collect();
    let residents: Vec<Resident> = users
        .iter()
        .zip(&gates)
        .map(|(s, gate)| Resident::start_with(s, &[("FAKE_CLAUDE_GATE", gate.to_str().unwrap())]))
        .collect();
    // Read on the leader: a standby may lag the write for a moment.
    let vault_holds = |s: &Agent, r: &Resident, on: &Bao, login: &Value| {
        wait_for(&format!("{}'s login in Vault", s.name), || {
            r.assert_running();
            on.kv_latest(&s.name).filter(|(_, data)| data == &json!({ "claudeAiOauth": login })).map(|(v, _)| v)
        })
    };

    // Each agent backs up the login at start, then a refresh of it at once.
    for (s, r) in users.iter().zip(&residents) {
        assert_eq!(r.line(1).action(), Some("backed_up"), "{}", r.line(1));
        let login = claude_refreshes(s);
        assert_eq!(vault_holds(s, r, &admin, &login), 2);
        let second = r.line(2);
        assert_eq!((second.status(), second.fact("trigger")), ("OK", Some("file_changed")), "{second}");
    }

    // A refresh each, whose cycle is held at its probe: every agent is mid-cycle.
    for gate in &gates {
        std::fs::write(gate, "").unwrap();
    }
    for s in &users {
        claude_refreshes(s);
    }
    for (s, r) in users.iter().zip(&residents) {
        wait_for(&format!("{}'s probe in flight", s.name), || {
            r.assert_running();
            (s.claude.state()["gated"].as_u64() >= Some(1)).then_some(())
        });
    }
    assert_eq!(c.active(), Some(leader), "no failover before the test's own");
    let frozen = c.standbys()[0];
    c.pause(frozen);
    let kill = Instant::now();
    c.kill(leader);
    eprintln!("ha resident: {} killed mid-cycle, {} frozen", c.nodes[leader].id, c.nodes[frozen].id);
    for gate in &gates {
        std::fs::remove_file(gate).unwrap();
    }
    for (s, r) in users.iter().zip(&residents) {
        let third = r.line(3);
        assert_eq!(
            (third.status(), third.reason(), third.fact("trigger")),
            ("DEGRADED", Some("vault_unreachable"), Some("file_changed")),
            "{}: the cycle in flight cannot write without a leader: {third}",
            s.name
        );
    }

    // Claude Code refreshes again during the election; each agent probes it (a call
    // after the test's own) and reports while there is still no leader.
    let latest: Vec<Value> = users.iter().map(claude_refreshes).collect();
    for (s, r) in users.iter().zip(&residents) {
        let calls = s.claude.state()["calls"].as_u64().unwrap();
        wait_for(&format!("{}'s probe of the refresh during the election", s.name), || {
            r.assert_running();
            (s.claude.state()["calls"].as_u64().unwrap() > calls).then_some(())
        });
        let seen = report_lines(s).len();
        let next = r.line(seen + 1);
        assert_eq!(next.status(), "DEGRADED", "{}: still no leader: {next}", s.name);
    }
    assert_eq!(c.active(), None, "no leader all along: the frozen node kept the election open");

    let thaw = Instant::now();
    c.resume(frozen);
    let new_leader = c.wait_for_leader();
    let serves = thaw.elapsed();
    let on_leader = c.via(&c.nodes[new_leader].addr);
    for ((s, r), login) in users.iter().zip(&residents).zip(&latest) {
        vault_holds(s, r, &on_leader, login);
    }
    let in_vault = thaw.elapsed();
    for (s, r) in users.iter().zip(&residents) {
        wait_for(&format!("{}'s last line OK", s.name), || {
            r.assert_running();
            report_lines(s).last().is_some_and(|l| l.status() == "OK").then_some(())
        });
    }
    let all_ok = thaw.elapsed();
    let since_kill = kill.elapsed();

    let mut degraded = 0;
    for ((s, r), login) in users.iter().zip(residents).zip(&latest) {
        assert_eq!(r.stop_with(libc::SIGTERM), 0, "{}: SIGTERM ends it with exit 0", s.name);
        let lines = report_lines(s);
        for l in &lines {
            assert!(matches!(l.status(), "OK" | "DEGRADED"), "{}: never a FAIL: {l}", s.name);
        }
        let last = lines.last().unwrap();
        assert_eq!(last.status(), "OK", "{}: {last}", s.name);
        let d = lines.iter().filter(|l| l.status() == "DEGRADED").count();
        degraded += d;
        eprintln!(
            "ha resident: {}: {} lines, {d} DEGRADED, triggers {:?}",
            s.name,
            lines.len(),
            lines.iter().map(|l| l.fact("trigger").unwrap_or("-")).collect::<Vec<_>>()
        );
        assert_same!(s.claude.read_doc()["claudeAiOauth"], login.clone(), "the file still holds the latest login");
        assert_eq!(s.claude.state()["refused"], Value::Null, "{}: no refresh token was ever refused", s.name);
        claude_refreshes(s);
        assert_eq!(s.claude.state()["refused"], Value::Null, "{}: the login on disk is the live one", s.name);
    }
    eprintln!(
        "ha resident: {degraded} DEGRADED lines in all; after the thaw a leader serves in {serves:.1?}, every latest \
         login is in Vault after {in_vault:.1?}, every agent's last line is OK after {all_ok:.1?} ({:.1?} after the \
         kill); the whole scenario took {:.1?}",
        since_kill,
        started.elapsed()
    );
}
