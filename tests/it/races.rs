//! Races: two agents at once, again and again, while a writer that follows Claude
//! Code's lock protocol (the stand-in CLI) refreshes the login and now and then blanks
//! it, so that the agents restore while the CLI writes. Zero lost updates: the CLI's
//! refresh token is never refused, the newest rotation ends on disk and in Vault, and
//! no run FAILs.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::common::agent::config::Probe;
use crate::common::agent::report::Report;
use crate::common::agent::run::pairs;
use crate::common::agent::user::{Agent, Started};
use crate::common::bao::{Bao, bao};
use crate::common::claude::stand_in::{HOUR_MS, blanked, now_ms};
use crate::common::files::tree;
use crate::common::hooks::{Pause, Steps};
use serde_json::Value;

/// The race lasts at least this long, and then until enough of each event happened
/// (a loaded machine does less per second: it races longer rather than failing).
const RACE: Duration = Duration::from_secs(20);
/// A race that has not seen enough of each event by then is stuck: that fails.
const STUCK: Duration = Duration::from_secs(300);

#[test]
fn agents_restoring_while_the_cli_refreshes_lose_no_update() {
    let b = bao();
    // A run clobbered after its probe is DEGRADED; a streak of them is what this race is
    // made of, not a fault that lasts (degraded.rs tests the escalation).
    let s = Agent::new(b).configure(|c| c.fail_after_degraded_runs(10000));
    s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    let (started, done) = (Instant::now(), AtomicBool::new(false));
    let running = || !done.load(Relaxed);
    let (refreshed, blanked_so_far) = (AtomicU32::new(0), AtomicU32::new(0));

    let (refreshes, blanks, waits, runs, reads) = std::thread::scope(|scope| {
        // The CLI: refresh, and every third turn blank the login if Vault holds it; for
        // the first blank it waits for the agents' backup, so that one happens however
        // slow a loaded machine makes them.
        let cli = scope.spawn(|| {
            let (mut refreshes, mut blanks, mut waits) = (0u32, 0u32, 0u32);
            let mut turn = 0u32;
            let backed_up = || {
                let local: Value = s.claude.read_doc()["claudeAiOauth"].clone();
                let held = s.vault_copy().is_some_and(|(_, d)| d["claudeAiOauth"] == local);
                held && !local["accessToken"].as_str().unwrap_or_default().is_empty()
            };
            while running() {
                turn += 1;
                if turn.is_multiple_of(3) && blanks == 0 {
                    while running() && !backed_up() {
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
                if turn.is_multiple_of(3) && backed_up() {
                    s.claude.call(&[("FAKE_CLAUDE_BLANK", "1")]);
                    blanks += 1;
                    blanked_so_far.fetch_add(1, Relaxed);
                } else if s.claude.call(&[("FAKE_CLAUDE_FORCE_REFRESH", "1")]) {
                    refreshes += 1;
                    refreshed.fetch_add(1, Relaxed);
                } else {
                    // Blanked and not restored yet: what a user would see for a moment.
                    waits += 1;
                }
                std::thread::sleep(Duration::from_millis(30));
            }
            (refreshes, blanks, waits)
        });
        let reader = scope.spawn(|| {
            let mut reads = 0u32;
            while running() {
                let doc: Value =
                    serde_json::from_slice(&std::fs::read(s.claude.creds()).unwrap()).expect("every read parses");
                assert!(doc["mcpOAuth"].is_object() && doc["pluginSecrets"].is_object(), "never a lost sibling key");
                reads += 1;
            }
            reads
        });
        let mut runs = 0u32;
        while running() {
            for r in s.run_two_at_once() {
                // DEGRADED is a fair answer when the file was clobbered right after a good
                // probe; a FAIL would page someone for a login that is fine.
                if r.code != 0 && r.code != 75 {
                    let log = std::fs::read_to_string(s.log()).unwrap_or_default();
                    let bad: Vec<Report> = log.lines().map(Report::of).filter(|l| l.status() != "OK").collect();
                    panic!("a racing run exited {}: {bad:#?}", r.code);
                }
            }
            runs += 2;
            let restored = || {
                std::fs::read_to_string(s.log())
                    .unwrap_or_default()
                    .lines()
                    .any(|l| Report::of(l).action() == Some("recovered"))
            };
            let enough = refreshed.load(Relaxed) > 20 && blanked_so_far.load(Relaxed) > 0 && runs > 10 && restored();
            if (enough && started.elapsed() >= RACE) || started.elapsed() >= STUCK {
                done.store(true, Relaxed);
            }
        }
        let (refreshes, blanks, waits) = cli.join().unwrap();
        (refreshes, blanks, waits, runs, reader.join().unwrap())
    });

    // Settle: the last rotation may postdate the last backup.
    s.run().assert_outcome(0, "OK", None);
    let state = s.claude.state();
    let refused = state.get("refused").and_then(Value::as_u64).unwrap_or(0);
    assert_eq!(refused, 0, "the CLI's refresh token was refused {refused} times: an update was lost");
    let local = s.claude.read_doc()["claudeAiOauth"].clone();
    assert_same!(local["refreshToken"], state["latest_refresh"], "the newest rotation is on disk");
    assert_same!(s.vault_copy().unwrap().1["claudeAiOauth"], local, "and in Vault");
    let log = std::fs::read_to_string(s.log()).unwrap();
    let reports: Vec<Report> = log.lines().map(Report::of).collect();
    let recovered = reports.iter().filter(|r| r.action() == Some("recovered")).count();
    let degraded = reports.iter().filter(|r| r.status() == "DEGRADED").count();
    assert!(
        refreshes > 20 && blanks > 0 && recovered > 0 && runs > 10,
        "too little happened in {}s: {refreshes} refreshes, {blanks} blanks, {recovered} restores, {runs} runs",
        started.elapsed().as_secs()
    );
    eprintln!(
        "races: {}s, {refreshes} CLI refreshes, {blanks} blanks by the CLI, {recovered} agent restores, {waits} CLI calls that found the login blank, {runs} agent runs in pairs ({degraded} DEGRADED: clobbered after their probe), {reads} reads; 0 lost updates",
        started.elapsed().as_secs()
    );
}

// ------------------------------------------------------------- the locks, step by step

fn mtime(p: &std::path::Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// A login in Vault and a blanked file: the run restores, under every lock.
fn restoring(b: &Bao) -> (Agent<'_>, Value) {
    let s = Agent::new(b);
    let (good, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    b.kv_put(&s.name, serde_json::json!({ "claudeAiOauth": good }));
    s.claude.write_login(&blanked(), "mcp-kept-1");
    (s, good)
}

/// Starts `s`'s run stopped at `step` (until [`Steps::resume`]); returns once it is there.
fn stopped_at(s: &Agent, step: &str) -> (Steps, Started) {
    let steps = Steps::new(s.dir.path());
    let mut run = s.start(&pairs(&steps.env(Pause::UntilResumed(step))));
    assert!(steps.wait_for(step, || run.agent.exited()), "never stopped at {step}: {:?}", steps.reached());
    (steps, run)
}

/// Claude Code's lock directories for a write, in its order: what a restoring agent holds.
fn cli_locks(s: &Agent) -> [std::path::PathBuf; 3] {
    [
        s.claude.config_dir.join(".oauth_refresh.lock"),
        s.dir.path().join("claude.lock"),
        s.claude.config_dir.join(".storage-write.lock"),
    ]
}

#[test]
fn locks_held_by_a_stalled_write_are_kept_fresh() {
    let b = bao();
    let (s, good) = restoring(b);
    let locks = cli_locks(&s);
    let (steps, mut run) = stopped_at(&s, "half_written");
    // The write is stalled: however long, its locks must not look abandoned. Two rounds
    // of the keeper later (the first may have begun before), each was touched again.
    let stalled_at: Vec<_> = locks.iter().map(|l| mtime(l)).collect();
    let kept = || steps.reached().iter().filter(|s| *s == "locks_kept_fresh").count();
    let before = kept();
    assert!(
        steps.wait_for_count(|| kept() >= before + 2, || run.agent.exited()),
        "the stalled writer never touched its locks: {:?}",
        steps.reached()
    );
    for (l, was) in locks.iter().zip(stalled_at) {
        assert!(mtime(l) > was, "{} was not touched while the write stalled", l.display());
    }
    steps.resume();
    s.finish(run).assert_outcome(0, "OK", None);
    assert_same!(s.claude.read_doc()["claudeAiOauth"], good);
    assert!(locks.iter().all(|l| !l.exists()), "released after the write");
}

#[test]
fn a_write_whose_lock_was_taken_over_while_it_stalled_never_lands() {
    let b = bao();
    let (s, _) = restoring(b);
    let write_lock = s.claude.config_dir.join(".storage-write.lock");
    let (steps, run) = stopped_at(&s, "synced");
    // What the CLI does once the lock has gone 15 s without a touch (a suspend stops the
    // keeper too): take it over, write its fresh rotation, release it.
    std::fs::remove_dir(&write_lock).unwrap();
    std::fs::create_dir(&write_lock).unwrap();
    let (_, cli_bytes) = s.good_login(now_ms() + 8 * HOUR_MS);
    std::fs::remove_dir(&write_lock).unwrap();
    steps.resume();
    let run = s.finish(run);
    run.assert_outcome(75, "DEGRADED", Some("local_busy"));
    assert!(run.report().msg().contains("took over"), "{}", run.line());
    assert_same!(std::fs::read(s.claude.creds()).unwrap(), cli_bytes, "the CLI's update is kept");
    let stray = tree(&s.claude.config_dir).into_iter().filter(|p| p.contains(".tmp.")).count();
    assert_eq!(stray, 0, "the aborted write left no temp file");
}

#[test]
fn a_restore_waits_for_the_lock_beside_the_config_dir_in_the_clis_order() {
    let b = bao();
    let (s, good) = restoring(b);
    let before = std::fs::read(s.claude.creds()).unwrap();
    let [refresh_lock, legacy_lock, write_lock] = cli_locks(&s);
    // Held by an older CLI (one that takes only `~/.claude.lock`), kept fresh as it would.
    std::fs::create_dir(&legacy_lock).unwrap();
    let holding = std::sync::atomic::AtomicBool::new(true);
    let steps = Steps::new(s.dir.path());
    let env = steps.env(Pause::Never);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while holding.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::File::open(&legacy_lock).and_then(|f| f.set_modified(std::time::SystemTime::now()));
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let mut run = s.start(&pairs(&env));
        let waiting = steps.wait_for("lock_wait claude.lock", || run.agent.exited());
        let (refresh_held, write_held) = (refresh_lock.is_dir(), write_lock.exists());
        let untouched = std::fs::read(s.claude.creds()).unwrap() == before;
        holding.store(false, std::sync::atomic::Ordering::Relaxed);
        std::fs::remove_dir(&legacy_lock).unwrap();
        let run = s.finish(run);
        assert!(waiting, "the agent never waited for claude.lock: {:?}", steps.reached());
        assert!(
            refresh_held && !write_held,
            "waiting for it with .oauth_refresh.lock held, before .storage-write.lock"
        );
        assert!(untouched, "nothing was written while the CLI held its lock");
        run.assert_outcome(0, "OK", None);
    });
    assert_same!(s.claude.read_doc()["claudeAiOauth"], good);
}

#[test]
fn under_a_read_only_home_the_lock_beside_the_config_dir_is_left_out() {
    assert!(rustix::process::geteuid().is_root(), "this test mounts a read-only home and must run as root (CI does)");
    let b = bao();
    let s = Agent::new(b).configure(|c| c.login(|t| t.probe(Probe::none())));
    let (good, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    b.kv_put(&s.name, serde_json::json!({ "claudeAiOauth": good }));
    s.claude.write_login(&blanked(), "mcp-kept-2");
    std::fs::create_dir_all(s.log().parent().unwrap()).unwrap();
    // As the unit's ProtectHome=read-only with ReadWritePaths= for ~/.claude and the state dir.
    let d = s.dir.path().display().to_string();
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "sh", "-ec"]).arg(format!(
        "mount --bind {d} {d}; mount --bind {d}/claude {d}/claude; mount --bind {d}/state {d}/state; \
         mount -o remount,bind,ro {d}; exec \"$0\" \"$@\""
    ));
    cmd.arg(env!("CARGO_BIN_EXE_claude-auth-sync"));
    let run = s.run_cmd(cmd, &[]);
    run.assert_outcome(0, "OK", None);
    assert_eq!(run.report().action(), Some("recovered"), "{}", run.line());
    assert_same!(s.claude.read_doc()["claudeAiOauth"], good);
    assert!(!s.dir.path().join("claude.lock").exists());
}
