//! Races: two agents at once, again and again, while a writer that follows Claude
//! Code's lock protocol (the stand-in CLI) refreshes the login and now and then blanks
//! it, so that the agents restore while the CLI writes. Zero lost updates: the CLI's
//! refresh token is never refused, the newest rotation ends on disk and in Vault, and
//! no run FAILs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const RACE: Duration = Duration::from_secs(20);

#[test]
fn agents_restoring_while_the_cli_refreshes_lose_no_update() {
    let b = bao();
    // A run clobbered after its probe is DEGRADED; a streak of them is what this race is
    // made of, not a fault that lasts (tests/degraded.rs tests the escalation).
    let s = setup(b, "", "degraded {\n  fail_after_runs = 10000\n}");
    s.good_login(now_ms() + 8 * HOUR_MS);
    s.run().assert_outcome(0, "OK", None);
    let stop = Instant::now() + RACE;

    let cli_call = |env: &[(&str, &str)]| {
        std::process::Command::new(s.claude.bin.join("claude"))
            .args(["-p", "--output-format", "json", "hi"])
            .envs(s.claude.env())
            .envs(env.iter().copied())
            .output()
            .unwrap()
            .status
            .success()
    };

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
            while Instant::now() < stop {
                turn += 1;
                if turn.is_multiple_of(3) && blanks == 0 {
                    while Instant::now() < stop && !backed_up() {
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
                if turn.is_multiple_of(3) && backed_up() {
                    cli_call(&[("FAKE_CLAUDE_BLANK", "1")]);
                    blanks += 1;
                } else if cli_call(&[("FAKE_CLAUDE_FORCE_REFRESH", "1")]) {
                    refreshes += 1;
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
            while Instant::now() < stop {
                let doc: Value =
                    serde_json::from_slice(&std::fs::read(s.claude.creds()).unwrap()).expect("every read parses");
                assert!(doc["mcpOAuth"].is_object() && doc["pluginSecrets"].is_object(), "never a lost sibling key");
                reads += 1;
            }
            reads
        });
        let mut runs = 0u32;
        while Instant::now() < stop {
            let (r1, r2) = std::thread::scope(|inner| {
                let a = inner.spawn(|| s.run());
                let b2 = inner.spawn(|| s.run());
                (a.join().unwrap(), b2.join().unwrap())
            });
            for r in [r1, r2] {
                // DEGRADED is a fair answer when the file was clobbered right after a good
                // probe; a FAIL would page someone for a login that is fine.
                if r.code != 0 && r.code != 75 {
                    let log = std::fs::read_to_string(s.log()).unwrap_or_default();
                    let bad: Vec<&str> = log.lines().filter(|l| !l.contains(" status=OK ")).collect();
                    panic!("a racing run exited {}: {bad:#?}", r.code);
                }
            }
            runs += 2;
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
    let recovered = log.lines().filter(|l| l.contains("action=recovered")).count();
    let degraded = log.lines().filter(|l| l.contains(" status=DEGRADED ")).count();
    assert!(
        refreshes > 20 && blanks > 0 && recovered > 0 && runs > 10,
        "too little happened: {refreshes} refreshes, {blanks} blanks, {recovered} restores, {runs} runs"
    );
    eprintln!(
        "races: {}s, {refreshes} CLI refreshes, {blanks} blanks by the CLI, {recovered} agent restores, {waits} CLI calls that found the login blank, {runs} agent runs in pairs ({degraded} DEGRADED: clobbered after their probe), {reads} reads; 0 lost updates",
        RACE.as_secs()
    );
}
