//! Crash consistency: the agent is killed with SIGKILL at every step of its write path
//! (test builds stop at a named step; see `store::hook`) while another thread reads the
//! credentials file in a loop. Every read must parse, hold the old or the new login,
//! and keep mcpOAuth. Each kill is aimed at a step and lands there, so the counts do
//! not depend on the machine's speed or load. The counts are printed for
//! docs/reliability.md.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::common::agent::config::{AgentConfig, Method, Probe, Template};
use crate::common::bao::bao;
use crate::common::claude::stand_in::{FakeClaude, HOUR_MS, now_ms, oauth};
use crate::common::files::write_file;
use crate::common::hooks::{Pause, Steps};
use crate::common::secrets::{assert_no_leaks, random_secret};
use serde_json::{Value, json};

/// The steps of a restore, in order: all locks held (before the re-read), then
/// `store::atomic`'s steps. The first five leave the old file, the last two the new one.
const STEPS: [&str; 7] = ["locked", "before_temp", "temp_created", "half_written", "synced", "renamed", "dir_synced"];
const KILLS_PER_STEP: usize = 72;

/// Reads the credentials file in a loop until dropped; dropped before the directory goes.
struct Reader {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    fn start(creds: PathBuf, mcp: String, known: Arc<Mutex<HashSet<String>>>) -> Reader {
        let (stop, reads) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (s, r) = (stop.clone(), reads.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let bytes = std::fs::read(&creds).expect("the credentials file always exists");
                let doc: Value = serde_json::from_slice(&bytes).expect("every read parses");
                assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str(), "mcpOAuth is never lost");
                let access = doc["claudeAiOauth"]["accessToken"].to_string();
                assert!(known.lock().unwrap().contains(&access), "an object that was never written");
                r.fetch_add(1, Ordering::Relaxed);
            }
        });
        Reader { stop, reads, thread: Some(thread) }
    }

    /// Stops the reader; panics if it found a broken file.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("the reader saw only whole files");
        self.reads.load(Ordering::Relaxed)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // On a failed assertion elsewhere: stop reading before the temp dir is removed.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn sigkill_at_every_step_of_the_write_path_never_leaves_a_broken_file() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("crash{}", &random_secret("name-")[5..13]);
    let (token, _) = b.user_token(&name);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let claude = FakeClaude::new(dir.path());
    let steps = Steps::new(dir.path());
    // Restore first, without a probe: every run writes Vault's copy. Only a secret that
    // does not rotate may be restored before a probe; this one is declared so.
    let template = Template::new(&format!("secret/workstation/claude-users/{name}"))
        .restore("always")
        .refresh_token_rotates(false)
        .probe(Probe::none());
    let cfg = AgentConfig::new(&b.addr)
        .retries(0)
        .method(Method::token_file(&token_file))
        .template(template)
        .log(&dir.path().join("sync.log"))
        .journald(false)
        .write(dir.path(), "config.hcl");

    let base = now_ms() + 8 * HOUR_MS;
    let login = |i: u64| oauth(&format!("sk-ant-oat01-crash-{i:06}"), &format!("sk-ant-ort01-crash-{i:06}"), base + i);
    let mcp = random_secret("mcp-crash-");
    claude.write_login(&login(0), &mcp);
    let known: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::from([login(0)["accessToken"].to_string()])));
    let reader = Reader::start(claude.creds(), mcp.clone(), known.clone());

    let spawn = |pause: Pause| {
        Command::new(env!("CARGO_BIN_EXE_claude-auth-sync"))
            .args(["run", "--once", "--config", cfg.to_str().unwrap()])
            .env_clear()
            .envs(claude.env())
            .envs(steps.env(pause))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut next = 1u64;
    let mut offer = || {
        let l = login(next);
        known.lock().unwrap().insert(l["accessToken"].to_string());
        b.kv_put(&name, json!({ "claudeAiOauth": l }));
        next += 1;
        l
    };
    let undisturbed = |want: &Value| {
        let out = spawn(Pause::Never).wait_with_output().unwrap();
        assert_no_leaks("agent stderr", &String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "an undisturbed run: {}", String::from_utf8_lossy(&out.stderr));
        assert_same!(claude.read_doc()["claudeAiOauth"], *want, "an undisturbed run restores Vault's copy");
    };
    undisturbed(&offer());

    let lock_dirs = [
        claude.config_dir.join(".storage-write.lock"),
        claude.config_dir.join(".oauth_refresh.lock"),
        dir.path().join("claude.lock"),
    ];
    let mut at_step: BTreeMap<&str, usize> = BTreeMap::new();
    let mut stale_locks = 0;
    for _ in 0..KILLS_PER_STEP {
        for (i, step) in STEPS.iter().enumerate() {
            let old = claude.read_doc()["claudeAiOauth"].clone();
            let new = offer();
            let mut child = spawn(Pause::UntilKilled(step));
            assert!(
                steps.wait_for(step, || child.try_wait().unwrap().is_some()),
                "the run never reached {step}: {:?}",
                steps.reached()
            );
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            assert_no_leaks("agent stderr", &String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), None, "killed at {step}");
            *at_step.entry(step).or_default() += 1;
            let now = claude.read_doc()["claudeAiOauth"].clone();
            let want = if i < 5 { &old } else { &new };
            assert_same!(
                now,
                *want,
                "after a kill at {step}, the file holds the {} login",
                if i < 5 { "old" } else { "new" }
            );
            // A killed holder leaves the lock directories behind; make them stale (as
            // 10-15 s of waiting would) so that the next run exercises the takeover.
            for lock in &lock_dirs {
                if lock.exists() {
                    stale_locks += 1;
                    let old_time = SystemTime::now() - Duration::from_secs(60);
                    std::fs::File::open(lock).unwrap().set_modified(old_time).unwrap();
                }
            }
        }
    }
    let reads = reader.finish();

    // After all that, an undisturbed run still works, and cleans up after the killed ones.
    undisturbed(&offer());
    let stray: Vec<String> = std::fs::read_dir(&claude.config_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    let kills: usize = at_step.values().sum();
    eprintln!(
        "crash: {kills} SIGKILLs, by step: {at_step:?}; {reads} reads, all whole; {stale_locks} abandoned lock dirs taken over; {} stray temp files",
        stray.len()
    );
    assert!(at_step.values().all(|&n| n == KILLS_PER_STEP), "every step got its kills: {at_step:?}");
    assert!(reads > 0, "the reader ran");
    assert!(stray.is_empty(), "a writer cleans up what killed writers left: {stray:?}");
    assert!(lock_dirs.iter().all(|l| !l.exists()), "the last run released its locks");
}
