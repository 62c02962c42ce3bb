//! Hostile input: each is refused with a clear error, and nothing is written locally
//! or to Vault, even though Vault holds a good copy that a careless agent would restore.

use std::path::Path;

use crate::common::agent::config::{AgentConfig, Probe, Template};
use crate::common::agent::run::agent_env;
use crate::common::agent::user::Agent;
use crate::common::bao::bao;
use crate::common::claude::stand_in::{HOUR_MS, now_ms, oauth};
use crate::common::files::{mode_of, tree, write_file};
use crate::common::secrets::{access_token, random_secret, refresh_token};
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
type Case<'a> = (&'a str, &'a dyn Fn(&Agent), &'a str, &'a str);

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
        let s = Agent::new(b);
        // A good copy in Vault, and a login the probe would reject: every temptation to write.
        let (good, _) = s.good_login(now_ms() + 8 * HOUR_MS);
        b.kv_put(&s.name, json!({ "claudeAiOauth": good }));
        s.claude.write_login(&s.dead_login(), &random_secret("mcp-hostile-"));
        make_hostile(&s);
        let version = s.vault_copy().unwrap().0;
        let before = snapshot(s.dir.path());

        let run = s.run();
        run.assert_outcome(1, "FAIL", Some(reason));
        assert!(run.report().msg().contains(says), "{name}: the message says what is wrong: {}", run.line());
        assert_eq!(snapshot(s.dir.path()), before, "{name}: a local file changed");
        assert_eq!(s.vault_copy().unwrap().0, version, "{name}: Vault was written");
    }
    eprintln!("hostile: {} inputs refused, nothing written", cases.len());
}

#[test]
fn a_destination_outside_the_home_in_a_shared_directory_is_a_config_error_before_anything_happens() {
    let b = bao();
    let s = Agent::new(b).configure(|c| c.login(|t| t.destination(Path::new("/tmp/claude-auth-sync-hostile.json"))));
    let run = s.run();
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(run.stderr.contains("block template #1, key destination: is outside your home"), "{}", run.stderr);
    assert!(!Path::new("/tmp/claude-auth-sync-hostile.json").exists());
    assert!(b.requests_by(&s.accessor).is_empty(), "no Vault request");
}

/// `check-config` and `run --once` of `s`'s config with `edit` applied: both must refuse
/// it with exit 78 and a message holding every `want`, before any file changes or any
/// request reaches Vault.
fn refused(s: &Agent, edit: impl FnOnce(AgentConfig) -> AgentConfig, want: &[&str]) {
    s.reconfigure(edit);
    let before = snapshot(s.dir.path());
    for args in [&["check-config", "--config"][..], &["run", "--once", "--config"][..]] {
        let mut args = args.to_vec();
        args.push(s.cfg.to_str().unwrap());
        let run = agent_env(&args, s.claude.env());
        assert_eq!(run.code, 78, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(&s.cfg.display().to_string()), "names the file: {}", run.stderr);
        for w in want {
            assert!(run.stderr.contains(w), "{args:?}: expected {w:?} in: {}", run.stderr);
        }
    }
    assert_eq!(snapshot(s.dir.path()), before, "a file changed");
    assert!(s.b.requests_by(&s.accessor).is_empty(), "a request reached Vault");
}

#[test]
fn restore_always_on_a_login_whose_refresh_token_rotates_is_refused() {
    let b = bao();
    let s = Agent::new(b).configure(|c| c.login(|t| t.restore("always")));
    let (good, _) = s.good_login(now_ms() + HOUR_MS);
    b.kv_put(&s.name, json!({ "claudeAiOauth": oauth(&access_token(), &refresh_token(), now_ms() + 9 * HOUR_MS) }));
    refused(&s, |c| c, &["block template #1, key restore: = \"always\"", "rotates", "on_failure"]);
    assert_same!(s.claude.read_doc()["claudeAiOauth"], good, "the working login stays");
    // Another tool's secret says whether it rotates; declared so, it is refused too.
    let s = Agent::new(b)
        .configure(|c| c.login(|t| t.json_key("/tokens").field("codex").restore("always").refresh_token_rotates(true)));
    refused(&s, |c| c, &["key restore", "refresh_token_rotates = false"]);
    let s = Agent::new(b)
        .configure(|c| c.login(|t| t.json_key("/tokens").field("codex").restore("always").probe(Probe::none())));
    let run = agent_env(&["check-config", "--config", s.cfg.to_str().unwrap()], s.claude.env());
    assert_eq!(run.code, 0, "a secret that does not rotate may be restored first: {}", run.stderr);
    assert!(run.stdout.contains("refresh_token_rotates = false"), "{}", run.stdout);
}

#[test]
fn a_template_that_cannot_run_is_refused_by_check_config() {
    let b = bao();
    let s = Agent::new(b);
    // An empty template: no secret, nothing to render.
    refused(&s, |c| c.template(Template::empty()), &["block template #2, key secret: is missing"]);

    // A syntax error in an inline template that holds a literal secret: the message
    // names the template, the line and the column, never a line of it.
    let s = Agent::new(b);
    let key = random_secret("inline-api-key-");
    let contents = format!("api_key = {key}\n") + "{{#if enabled}}\nx\n{{/each}}\n";
    let app_conf = s.claude.config_dir.join("app.conf");
    refused(
        &s,
        |c| c.template(Template::new(&s.secret_path).contents(&contents).destination(&app_conf)),
        &["block template #2, key contents: handlebars syntax error at line 4, column"],
    );

    // The same in a source file.
    let s = Agent::new(b);
    let source = write_file(s.dir.path(), "app.tmpl", &(format!("api_key = {key}\n") + "{{#if x}\n"), 0o600);
    let from = |s: &Agent, source: &Path| {
        Template::new(&s.secret_path).source(source).destination(&s.claude.config_dir.join("app.conf"))
    };
    refused(
        &s,
        |c| c.template(from(&s, &source)),
        &["block template #2, key source: handlebars syntax error at line 2, column"],
    );
    let s = Agent::new(b);
    refused(&s, |c| c.template(from(&s, &s.dir.path().join("no-such.tmpl"))), &["key source: cannot be read"]);
}

#[test]
fn files_go_to_directories_of_ones_own_never_to_shared_or_others_ones() {
    let b = bao();
    let s = Agent::new(b);
    // Like $XDG_RUNTIME_DIR (/run/user/<uid>): the user's own, 0700, outside the home.
    let runtime = tempfile::tempdir().unwrap();
    let r = runtime.path();
    let (rendered, sink, pid) = (r.join("app.conf"), r.join("agent-token"), r.join("agent.pid"));
    // A pid file, a sink and a rendered file of `s`'s secret, where the test says.
    let with = |s: &Agent, dest: &Path, sink: &Path, pid: &Path| {
        let template = Template::new(&s.secret_path).contents("user={{user}}").destination(dest);
        let (sink, pid) = (sink.to_path_buf(), pid.to_path_buf());
        move |c: AgentConfig| c.pid_file(&pid).sink(&sink).template(template)
    };
    s.reconfigure(with(&s, &rendered, &sink, &pid));
    let (login, _) = s.good_login(now_ms() + 8 * HOUR_MS);
    b.kv_put(&s.name, json!({ "claudeAiOauth": login, "user": "svc" }));
    let run = s.run();
    run.assert_outcome(0, "OK", None);
    assert_eq!(std::fs::read_to_string(&rendered).unwrap(), "user=svc");
    assert_eq!(mode_of(&sink), 0o600);
    assert!(!pid.exists(), "the pid file is removed after the run");

    // /tmp: every user can write there. Another user's directory: its owner can.
    let others = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(others.path(), Some(65534), Some(65534)).unwrap();
    let tmp = Path::new("/tmp");
    let cases = [
        (
            (tmp.join("cas-hostile-app.conf"), sink.clone(), pid.clone()),
            "block template #2, key destination: is outside your home",
            "every user can write (mode 1777",
        ),
        (
            (rendered.clone(), tmp.join("cas-hostile-token"), pid.clone()),
            "block auto_auth.sink \"file\", key config.path: is outside your home",
            "every user can write",
        ),
        (
            (rendered.clone(), sink.clone(), others.path().join("agent.pid")),
            "top level, key pid_file: is outside your home",
            "belongs to uid 65534, not to you",
        ),
    ];
    for ((dest, sink, pid), key, why) in cases {
        let s2 = Agent::new(b);
        refused(&s2, with(&s2, &dest, &sink, &pid), &[key, why, "$XDG_RUNTIME_DIR"]);
    }
    assert!(!tmp.join("cas-hostile-app.conf").exists() && !tmp.join("cas-hostile-token").exists());
}
