//! Against a real 3-node OpenBao Raft cluster (common::bao::raft): a secret written
//! through a standby survives the leader's death, and the agent as it is (`run --once`
//! through the load balancer an operator would configure, with a token file and with
//! AppRole) reports a leader loss as DEGRADED, never FAIL, leaves the credentials file
//! alone, and ends OK with its backup in Vault once a new leader serves.
//!
//! The leader loss is held open by events, not timing: the leader is killed while one
//! standby is frozen (SIGSTOP), so the last node cannot win an election until the test
//! thaws the frozen one.

use std::time::Instant;

use crate::common::agent::user::{Agent, Auth};
use crate::common::bao::raft::Cluster;
use crate::common::claude::stand_in::{HOUR_MS, now_ms};
use crate::common::secrets::random_secret;
use serde_json::json;

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
