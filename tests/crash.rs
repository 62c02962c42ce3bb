//! Crash consistency: the agent is killed with SIGKILL at many points of its write
//! path (test builds pause at each step; see `store::atomic::hook`) while another
//! process reads the credentials file in a loop. Every read must parse, hold the old
//! or the new login, and keep mcpOAuth. The counts are printed for docs/reliability.md.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use serde_json::{Value, json};

const KILLS: usize = 500;

#[test]
fn sigkill_anywhere_in_the_write_path_never_leaves_a_broken_file() {
    let b = bao();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("crash{}", &random_secret("name-")[5..13]);
    let (token, _) = b.user_token(&name);
    let token_file = write_file(dir.path(), "vault-token", &token, 0o600);
    let claude = FakeClaude::new(dir.path());
    let step_file = dir.path().join("step");
    let cfg = write_file(
        dir.path(),
        "config.hcl",
        &format!(
            r#"
vault {{
  address = "{}"
  retry {{
    num_retries = 0
  }}
}}
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "{}" }}
  }}
}}
template {{
  secret  = "secret/workstation/claude-users/{name}"
  restore = "always"
  probe "none" {{}}
}}
log {{
  path     = "{}/sync.log"
  journald = false
}}
"#,
            b.addr,
            token_file.display(),
            dir.path().display()
        ),
        0o600,
    );

    // Logins with growing expiry: Vault always holds a newer one than the file, so every
    // run restores (writes) it.
    let base = now_ms() + 8 * HOUR_MS;
    let login = |i: u64| oauth(&format!("sk-ant-oat01-crash-{i:06}"), &format!("sk-ant-ort01-crash-{i:06}"), base + i);
    let mcp = random_secret("mcp-crash-");
    claude.write_login(&login(0), &mcp);
    let known: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::from([login(0)["accessToken"].to_string()])));

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, known, creds, mcp) =
            (stop.clone(), reads.clone(), known.clone(), claude.creds(), mcp.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let bytes = std::fs::read(&creds).expect("the credentials file always exists");
                let doc: Value = serde_json::from_slice(&bytes).expect("every read parses");
                assert_same!(doc["mcpOAuth"]["linear|abc123"]["accessToken"], mcp.as_str(), "mcpOAuth is never lost");
                let access = doc["claudeAiOauth"]["accessToken"].to_string();
                assert!(known.lock().unwrap().contains(&access), "an object that was never written");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let run = |kill_after: Option<Duration>| -> (bool, String) {
        let _ = std::fs::remove_file(&step_file);
        let mut child = Command::new(env!("CARGO_BIN_EXE_claude-auth-sync"))
            .args(["run", "--once", "--config", cfg.to_str().unwrap()])
            .env_clear()
            .envs(claude.env())
            .env("CLAUDE_AUTH_SYNC_TEST_STEP_FILE", &step_file)
            .env("CLAUDE_AUTH_SYNC_TEST_WRITE_DELAY_US", "2000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let killed = match kill_after {
            Some(d) => {
                std::thread::sleep(d);
                child.kill().is_ok() && child.try_wait().map(|s| s.is_none_or(|s| s.code().is_none())).unwrap_or(true)
            }
            None => false,
        };
        let out = child.wait_with_output().unwrap();
        assert_no_leaks("agent stderr", &String::from_utf8_lossy(&out.stderr));
        let killed = killed && out.status.code().is_none();
        (killed, std::fs::read_to_string(&step_file).unwrap_or_else(|_| "before_write".into()))
    };

    let mut next = 1u64;
    let mut offer = |known: &Mutex<HashSet<String>>| {
        let l = login(next);
        known.lock().unwrap().insert(l["accessToken"].to_string());
        b.kv_put(&name, json!({ "claudeAiOauth": l }));
        next += 1;
        l
    };

    // Calibrate: how long an undisturbed run takes here.
    let mut full = Duration::ZERO;
    for _ in 0..3 {
        let want = offer(&known);
        let start = Instant::now();
        run(None);
        full = full.max(start.elapsed());
        assert_same!(claude.read_doc()["claudeAiOauth"], want, "an undisturbed run restores the newer login");
    }

    let mut at_step: BTreeMap<String, usize> = BTreeMap::new();
    let (mut kills, mut iterations, mut stale_locks) = (0, 0, 0);
    while kills < KILLS {
        iterations += 1;
        assert!(iterations < KILLS * 4, "too few kills landed: {kills} in {iterations} runs");
        let old = claude.read_doc()["claudeAiOauth"].clone();
        let new = offer(&known);
        let jitter = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u128;
        let after = Duration::from_micros((jitter % full.as_micros().max(1)) as u64);
        let (killed, step) = run(Some(after));
        let now = claude.read_doc()["claudeAiOauth"].clone();
        assert!(now == old || now == new, "after a kill at {step}, the file holds neither the old nor the new login");
        if killed {
            kills += 1;
            *at_step.entry(step).or_default() += 1;
        }
        // A killed holder leaves Claude Code's lock directories behind; make them stale
        // (as 15 s of waiting would) so the next run exercises the takeover.
        for lock in [".storage-write.lock", ".oauth_refresh.lock"] {
            let p = claude.config_dir.join(lock);
            if p.exists() {
                stale_locks += 1;
                let old_time = SystemTime::now() - Duration::from_secs(60);
                std::fs::File::open(&p).unwrap().set_modified(old_time).unwrap();
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("the reader saw only whole files");

    // After all that, an undisturbed run still works.
    let want = offer(&known);
    run(None);
    assert_same!(claude.read_doc()["claudeAiOauth"], want);
    let stray = std::fs::read_dir(&claude.config_dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".tmp."))
        .count();
    eprintln!(
        "crash: {kills} SIGKILLs in {iterations} runs (undisturbed run {:?}), by step reached: {at_step:?}; {} reads, all whole; {stale_locks} abandoned lock dirs taken over; {stray} stray temp files",
        full,
        reads.load(Ordering::Relaxed)
    );
    assert!(kills >= KILLS);
    assert!(at_step.len() >= 4, "kills are spread over the write path: {at_step:?}");
    assert!(stray <= 1, "a writer cleans up what killed writers left: {stray} temp files remain");
}
