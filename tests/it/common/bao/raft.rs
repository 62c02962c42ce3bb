//! A real 3-node OpenBao cluster on loopback with Integrated Storage (Raft), not dev
//! mode: config files, `sys/init` (one Shamir share, threshold 1: what `bao operator
//! init -key-shares=1 -key-threshold=1` sends), unseal, `sys/storage/raft/join` of nodes
//! 2 and 3 (`bao operator raft join`), a root token, KV v2 at `secret/` and a file audit
//! device; helpers to find the active node, kill it (SIGKILL), freeze a node (SIGSTOP)
//! and wait until a new leader serves; and [`Balancer`], the one address an operator
//! puts in `vault.address`.
//!
//! Why a balancer: the agent (like Vault Agent) takes one address, and a client pinned
//! to one node loses Vault with that node. Operators put the nodes behind a TCP load
//! balancer health-checking `GET /v1/sys/health?standbyok=true` (HAProxy's `option
//! httpchk`, a cloud LB's target check): active and unsealed standbys pass, because a
//! standby forwards what it cannot serve to the active node. Each node's own address
//! is here too, for tests that talk to one node on purpose.
//!
//! Observed on OpenBao 2.7.2, and what the helpers do about it:
//! - Standbys serve reads themselves (Raft is a "read-enabled standby" backend unless
//!   `disable_standby_reads = true`) and forward writes. A read through a standby can
//!   lag a write for a moment; [`Cluster::settle`] waits until every live node has
//!   applied what the active node committed. A standby keeps serving (possibly stale)
//!   reads even when no leader can be elected.
//! - Without a leader a standby redirects (307) to the dead leader's address or answers
//!   500 "active cluster node not found"; the harness's own client follows no redirect,
//!   so [`Cluster::wait_for_leader`] waits until every live node takes a write.
//! - Audit device options must be identical on every node: a node whose config differs
//!   from the replicated audit table fails its post-unseal setup and never serves as
//!   the active node. All three nodes therefore share one audit file.
//!
//! Servers die with the test process (PR_SET_PDEATHSIG) or with the [`Cluster`]; state
//! lives under CARGO_TARGET_TMPDIR (removed when the cluster is dropped without a panic).
//! Waits poll with deadlines, for readiness only.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Bao;
use super::server::{audit_device, cleartext_listener, spawn_server};
use crate::common::hcl::{Block, Body};
use crate::common::net::{Call, free_port, http};
use crate::common::secrets::{rand64, secret};

/// How long any readiness wait of the harness may take (a loaded 2-core machine).
const DEADLINE: Duration = Duration::from_secs(180);

/// Per health check: a frozen node never answers, and is then counted as down.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// What a node's `GET /v1/sys/health` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Active,
    Standby,
    Sealed,
    Uninitialized,
    Other(u16),
    /// Refused the connection or did not answer within the request timeout.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Running,
    Paused,
    Killed,
}

pub struct Node {
    /// `node1`, `node2`, `node3`: the Raft node id.
    pub id: String,
    /// `http://127.0.0.1:PORT`: the node's own API address (its `api_addr`).
    pub addr: String,
    /// Config, Raft data and `server.log`.
    pub dir: PathBuf,
    /// Requests to this node alone (the root token goes in per call); owns the server.
    api: Bao,
    life: Mutex<Life>,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The root token from `sys/init` (registered as a fixture secret).
    pub root: String,
    /// The audit file all nodes share (accessors in clear text).
    pub audit_log: PathBuf,
    unseal_key: String,
    dir: PathBuf,
}

impl Node {
    /// Writes the node's config and starts `bao server -config=...`.
    fn start(cluster_dir: &Path, index: usize, audit_log: &Path) -> Node {
        let id = format!("node{index}");
        let dir = cluster_dir.join(&id);
        std::fs::create_dir_all(dir.join("raft")).unwrap();
        let (port, cluster_port) = (free_port(), free_port());
        let config = Body::default()
            .attr("api_addr", format!("http://127.0.0.1:{port}"))
            .attr("cluster_addr", format!("https://127.0.0.1:{cluster_port}"))
            .attr("disable_mlock", true)
            .block(Block::new("storage", &["raft"]).attr("path", &dir.join("raft")).attr("node_id", &id))
            .block(
                cleartext_listener(&format!("127.0.0.1:{port}"))
                    .attr("cluster_address", format!("127.0.0.1:{cluster_port}")),
            )
            .block(audit_device(audit_log));
        let config_path = dir.join("config.hcl");
        std::fs::write(&config_path, config.render()).unwrap();
        let pid = spawn_server(&dir, &["server".into(), format!("-config={}", config_path.display())]);
        let addr = format!("http://127.0.0.1:{port}");
        let api = Bao { addr: addr.clone(), root: String::new(), audit_log: audit_log.to_path_buf(), pid: Some(pid) };
        Node { id, addr, dir, api, life: Mutex::new(Life::Running) }
    }

    pub fn health(&self) -> Health {
        match http(self.api.host_port(), Call::get("/v1/sys/health"), HEALTH_TIMEOUT) {
            Ok((200, _)) => Health::Active,
            Ok((429, _)) => Health::Standby,
            Ok((503, _)) => Health::Sealed,
            Ok((501, _)) => Health::Uninitialized,
            Ok((status, _)) => Health::Other(status),
            Err(_) => Health::Down,
        }
    }

    /// Running: neither killed nor frozen.
    pub fn is_running(&self) -> bool {
        *self.life.lock().unwrap() == Life::Running
    }

    fn signal(&self, signal: i32, then: Life) {
        let mut life = self.life.lock().unwrap();
        assert_ne!(*life, Life::Killed, "{} was killed already", self.id);
        unsafe {
            libc::kill(self.api.pid.unwrap() as i32, signal);
        }
        *life = then;
    }

    fn wait_until(&self, what: &str, done: impl Fn(Health) -> bool) -> Health {
        wait(&format!("{} {what}; see {}", self.id, self.dir.join("server.log").display()), || {
            let h = self.health();
            done(h).then_some(h)
        })
    }

    fn unseal(&self, key: &str) {
        let (status, v) = self
            .api
            .try_api(None, "PUT", "sys/unseal", Some(&json!({ "key": key })))
            .unwrap_or_else(|e| panic!("unseal {}: {e}", self.id));
        assert_eq!(status, 200, "unseal {}: {v}", self.id);
    }

    /// `sys/leader`'s Raft indexes: (committed, applied).
    fn raft_indexes(&self) -> Option<(u64, u64)> {
        let (status, v) = self.api.try_api(None, "GET", "sys/leader", None).ok()?;
        (status == 200)
            .then(|| (v["raft_committed_index"].as_u64().unwrap_or(0), v["raft_applied_index"].as_u64().unwrap_or(0)))
    }
}

impl Cluster {
    /// Three nodes, initialised, unsealed and joined; returns once all three are Raft
    /// voters (the cluster survives the loss of one node), `secret/` is mounted and
    /// every node has applied everything.
    pub fn start() -> Cluster {
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("raft-{}-{:x}", std::process::id(), rand64()));
        std::fs::create_dir_all(&dir).unwrap();
        let audit_log = dir.join("audit.log");
        let nodes: Vec<Node> = (1..=3).map(|i| Node::start(&dir, i, &audit_log)).collect();

        let first = &nodes[0];
        first.wait_until("answers", |h| h == Health::Uninitialized);
        let (status, init) = first
            .api
            .try_api(None, "PUT", "sys/init", Some(&json!({ "secret_shares": 1, "secret_threshold": 1 })))
            .expect("sys/init");
        assert_eq!(status, 200, "sys/init: {status}");
        let unseal_key = secret(init["keys_base64"][0].as_str().expect("an unseal key"));
        let root = secret(init["root_token"].as_str().expect("a root token"));
        first.unseal(&unseal_key);
        first.wait_until("becomes active", |h| h == Health::Active);

        let cluster = Cluster { nodes, root, audit_log, unseal_key, dir };
        let admin = cluster.via(&cluster.nodes[0].addr);
        // Promote joined nodes to voters after 1 s of health instead of 10 s.
        admin.root(
            "POST",
            "sys/storage/raft/autopilot/configuration",
            Some(json!({ "server_stabilization_time": "1s" })),
        );
        admin.root("POST", "sys/mounts/secret", Some(json!({ "type": "kv", "options": { "version": "2" } })));
        for node in &cluster.nodes[1..] {
            node.wait_until("answers", |h| h == Health::Uninitialized);
            let (status, v) = node
                .api
                .try_api(
                    None,
                    "PUT",
                    "sys/storage/raft/join",
                    Some(&json!({ "leader_api_addr": cluster.nodes[0].addr })),
                )
                .expect("raft join");
            assert!(status == 200 && v["joined"] == true, "{} did not join: {status} {v}", node.id);
            // The key is kept and applied once the node has fetched the Raft state.
            node.unseal(&cluster.unseal_key);
            node.wait_until("unseals as a standby", |h| h == Health::Standby);
        }
        wait("all three nodes become Raft voters", || {
            let (status, v) = admin.api(&cluster.root, "GET", "sys/storage/raft/autopilot/state", None);
            let d = &v["data"];
            let voters = d["voters"].as_array().map_or(0, |a| a.len());
            (status == 200 && voters == 3 && d["failure_tolerance"].as_u64() >= Some(1) && d["healthy"] == true)
                .then_some(())
        });
        cluster.settle();
        cluster
    }

    /// A root handle (every [`Bao`] helper) on `addr`: a node's address or the balancer's.
    /// It cannot stop anything; use [`Cluster::kill`].
    pub fn via(&self, addr: &str) -> Bao {
        Bao { addr: addr.to_string(), root: self.root.clone(), audit_log: self.audit_log.clone(), pid: None }
    }

    /// The running node that says it is active, if any (no waiting).
    pub fn active(&self) -> Option<usize> {
        self.running().find(|&i| self.nodes[i].health() == Health::Active)
    }

    /// The running nodes that say they are standbys (no waiting).
    pub fn standbys(&self) -> Vec<usize> {
        self.running().filter(|&i| self.nodes[i].health() == Health::Standby).collect()
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running())
    }

    /// SIGKILL, then waits until the node's port refuses connections.
    pub fn kill(&self, i: usize) {
        let node = &self.nodes[i];
        let mut life = node.life.lock().unwrap();
        assert_ne!(*life, Life::Killed, "{} was killed already", node.id);
        *life = Life::Killed;
        node.api.stop();
    }

    /// Kills the active node; returns its index.
    pub fn kill_active(&self) -> usize {
        let active = self.active().expect("an active node to kill");
        self.kill(active);
        active
    }

    /// SIGSTOP: the node keeps its sockets but answers nothing (a hung or partitioned
    /// node). With the leader killed and one standby frozen, the last node cannot win
    /// an election: the leader loss lasts until [`Cluster::resume`].
    pub fn pause(&self, i: usize) {
        self.nodes[i].signal(libc::SIGSTOP, Life::Paused);
    }

    pub fn resume(&self, i: usize) {
        self.nodes[i].signal(libc::SIGCONT, Life::Running);
    }

    /// Waits until a running node is active and every running node takes a write (a
    /// standby forwards it to the leader, not redirects); returns the active node.
    pub fn wait_for_leader(&self) -> usize {
        let probe = json!({ "policy": "path \"raft-harness/*\" { capabilities = [\"deny\"] }" });
        wait("a leader that serves writes through every running node", || {
            let active = self.active()?;
            self.running()
                .all(|i| {
                    let answer = self.nodes[i].api.try_api(
                        Some(&self.root),
                        "PUT",
                        "sys/policies/acl/raft-harness",
                        Some(&probe),
                    );
                    matches!(answer, Ok((200 | 204, _)))
                })
                .then_some(active)
        })
    }

    /// Waits until every running node has applied what the active node has committed,
    /// so a read through any of them sees every write made so far.
    pub fn settle(&self) {
        let active = self.active().expect("settle needs an active node");
        let (committed, _) = self.nodes[active].raft_indexes().expect("the active node's Raft indexes");
        wait("every running node applies the committed Raft log", || {
            self.running()
                .all(|i| self.nodes[i].raft_indexes().is_some_and(|(_, applied)| applied >= committed))
                .then_some(())
        });
    }

    /// A load balancer in front of all three nodes, as an operator configures one.
    pub fn balancer(&self) -> Balancer {
        Balancer::start(self.nodes.iter().map(|n| (n.id.clone(), n.api.host_port().to_string())).collect())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            if *node.life.lock().unwrap_or_else(|e| e.into_inner()) != Life::Killed {
                unsafe {
                    libc::kill(node.api.pid.unwrap() as i32, libc::SIGKILL);
                }
            }
        }
        // A failed test keeps the nodes' logs for reading.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Polls `probe` every 200 ms until it gives a value; panics after [`DEADLINE`].
fn wait<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A TCP load balancer on loopback: each connection goes to the next node (round robin)
/// that passes `GET /v1/sys/health?standbyok=true` (200: active, or an unsealed standby);
/// with none passing, the connection is closed. Bytes are relayed untouched, so an
/// HTTP keep-alive connection stays on its node until either side closes it.
pub struct Balancer {
    /// `http://127.0.0.1:PORT`: what goes into `vault.address`.
    pub addr: String,
    /// The node id each connection went to (`-`: no node passed the check).
    pub routed: Arc<Mutex<Vec<String>>>,
}

impl Balancer {
    /// `upstreams`: (name, `host:port`) pairs.
    pub fn start(upstreams: Vec<(String, String)>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let routed = Arc::new(Mutex::new(Vec::new()));
        let log = routed.clone();
        let upstreams = Arc::new(upstreams);
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { continue };
                let (upstreams, log) = (upstreams.clone(), log.clone());
                std::thread::spawn(move || {
                    let picked = pick(&upstreams, n);
                    log.lock().unwrap().push(picked.map_or("-".to_string(), |(name, _)| name.clone()));
                    if let Some(up) = picked.and_then(|(_, hp)| TcpStream::connect(hp).ok()) {
                        relay(conn, up);
                    }
                });
            }
        });
        Balancer { addr, routed }
    }
}

/// The first upstream from the `n`th on that passes the health check.
fn pick(upstreams: &[(String, String)], n: usize) -> Option<&(String, String)> {
    (0..upstreams.len())
        .map(|k| &upstreams[(n + k) % upstreams.len()])
        .find(|(_, hp)| matches!(http(hp, Call::get("/v1/sys/health?standbyok=true"), HEALTH_TIMEOUT), Ok((200, _))))
}

/// Copies both ways until both sides are done; a half-close is passed on.
fn relay(client: TcpStream, upstream: TcpStream) {
    let (mut c_read, mut u_write) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let uplink = std::thread::spawn(move || {
        let ok = std::io::copy(&mut c_read, &mut u_write).is_ok();
        let _ = u_write.shutdown(if ok { Shutdown::Write } else { Shutdown::Both });
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let ok = std::io::copy(&mut u_read, &mut c_write).is_ok();
    let _ = c_write.flush();
    let _ = c_write.shutdown(if ok { Shutdown::Write } else { Shutdown::Both });
    let _ = uplink.join();
}
