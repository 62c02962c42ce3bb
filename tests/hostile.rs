//! Hostile input: each is refused with a clear error, and nothing is written locally
//! or to Vault, even though Vault holds a good copy that a careless agent would restore.

mod common;

use std::path::Path;

use common::*;
use serde_json::json;

/// Every file under `dir` with a digest of its bytes (symlinks as their target), to
/// prove nothing changed without printing a byte of it. The stand-in's own state and
/// the agent's log and locks are left out.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    tree(dir)
        .into_iter()
        .filter(|p| {
            !p.starts_with("state")
                && !p.starts_with("fake-claude-state")
                && !p.contains(".claude-auth-sync.lock")
                && p != "journal.sock"
        })
        .map(|p| {
            let full = dir.join(&p);
            let meta = std::fs::symlink_metadata(&full).unwrap();
            let mut h = DefaultHasher::new();
            if meta.file_type().is_symlink() {
                std::fs::read_link(&full).unwrap().hash(&mut h);
            } else if meta.is_file() && meta.len() < 1 << 20 {
                std::fs::read(&full).unwrap().hash(&mut h);
            } else {
                (format!("{:?}", meta.file_type()), meta.len()).hash(&mut h);
            }
            (p, h.finish())
        })
        .collect()
}

/// A name, what makes the setup hostile, the expected reason, and what the message says.
type Case<'a> = (&'a str, &'a dyn Fn(&Setup), &'a str, &'a str);

#[test]
fn hostile_local_files_and_vault_data_are_refused_and_nothing_is_written() {
    let b = bao();
    let cases: &[Case] = &[
        (
            "credentials file is a symlink",
            &|s| {
                let elsewhere = s.dir.path().join("elsewhere.json");
                std::fs::write(&elsewhere, "{}").unwrap();
                std::fs::remove_file(s.claude.creds()).unwrap();
                std::os::unix::fs::symlink(&elsewhere, s.claude.creds()).unwrap();
            },
            "credentials_file_invalid",
            "is a symbolic link",
        ),
        (
            "credentials file is a FIFO",
            &|s| {
                std::fs::remove_file(s.claude.creds()).unwrap();
                let c = std::ffi::CString::new(s.claude.creds().to_str().unwrap()).unwrap();
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            },
            "credentials_file_invalid",
            "not a regular file",
        ),
        (
            "2 GiB of garbage",
            &|s| std::fs::File::create(s.claude.creds()).unwrap().set_len(2 << 30).unwrap(),
            "credentials_file_invalid",
            "bytes, far more than a credentials file",
        ),
        (
            "deeply nested JSON",
            &|s| std::fs::write(s.claude.creds(), "[".repeat(1_000_000)).unwrap(),
            "credentials_file_invalid",
            "nested more than 128 levels",
        ),
        (
            "claudeAiOauth of the wrong type",
            &|s| {
                std::fs::write(s.claude.creds(), r#"{"claudeAiOauth":"sk-ant-oat01-wrong-type","mcpOAuth":{}}"#)
                    .unwrap()
            },
            "credentials_file_invalid",
            "claudeAiOauth is a string, not an object",
        ),
        (
            "the credentials directory is a symlink",
            &|s| {
                let real = s.dir.path().join("real-claude-dir");
                std::fs::rename(&s.claude.config_dir, &real).unwrap();
                std::os::unix::fs::symlink(&real, &s.claude.config_dir).unwrap();
            },
            "credentials_file_invalid",
            "is a symbolic link",
        ),
        (
            "Vault data of the wrong shape",
            &|s| {
                s.b.kv_put(&s.name, json!({ "claudeAiOauth": "not an object" }));
            },
            "vault_data_invalid",
            "not an object",
        ),
        (
            "Vault data missing the field",
            &|s| {
                s.b.kv_put(&s.name, json!({ "somethingElse": { "a": 1 } }));
            },
            "vault_data_invalid",
            "holds nothing under claudeAiOauth",
        ),
    ];
    for (name, make_hostile, reason, says) in cases {
        let s = setup(b, "", "");
        // A good copy in Vault, and a login the probe would reject: every temptation to write.
        let (good, _) = s.good_login(now_ms() + 8 * HOUR_MS);
        b.kv_put(&s.name, json!({ "claudeAiOauth": good }));
        s.claude.write_login(&s.dead_login(), &random_secret("mcp-hostile-"));
        make_hostile(&s);
        let version = s.vault_copy().unwrap().0;
        let before = snapshot(s.dir.path());

        let run = s.run();
        run.assert_outcome(1, "FAIL", Some(reason));
        assert!(run.report().contains(says), "{name}: the message says what is wrong: {}", run.report());
        assert_eq!(snapshot(s.dir.path()), before, "{name}: a local file changed");
        assert_eq!(s.vault_copy().unwrap().0, version, "{name}: Vault was written");
    }
    eprintln!("hostile: {} inputs refused, nothing written", cases.len());
}

#[test]
fn a_destination_outside_the_home_is_a_config_error_before_anything_happens() {
    let b = bao();
    let s = setup(b, "destination = \"/etc/claude-auth-sync-hostile.json\"", "");
    let run = s.run();
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(run.stderr.contains("block template #1, key destination: is outside your home"), "{}", run.stderr);
    assert!(!Path::new("/etc/claude-auth-sync-hostile.json").exists());
    assert!(b.requests_by(&s.accessor).is_empty(), "no Vault request");
}
