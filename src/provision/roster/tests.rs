//! The roster's checks, each on a roster text with a fake passwd database.

use super::*;

fn fake_passwd(name: &str) -> std::io::Result<Option<OsUser>> {
    let uid = match name {
        "alice" => 1001,
        "bob" => 1002,
        "root" => 0,
        _ => return Ok(None),
    };
    Ok(Some(OsUser { name: name.into(), uid, gid: uid, home: format!("/home/{name}").into() }))
}

fn roster(users: &str) -> Result<Roster, RosterError> {
    let text = format!("vault:\n  address: https://vault.example.com:8200\nusers:\n{users}");
    parse(&text, Path::new("/etc/roster.yaml"), &|_| None, &fake_passwd)
}

fn vault_only(vault: &str, env: &[(&str, &str)]) -> Result<Roster, RosterError> {
    let text = format!("vault:\n{vault}users: []\n");
    let env = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    parse(&text, Path::new("/etc/roster.yaml"), &env, &fake_passwd)
}

#[test]
fn the_address_falls_back_to_vault_addr_then_bao_addr() {
    let r = vault_only("  kv_mount: secret\n", &[("VAULT_ADDR", "https://a:8200"), ("BAO_ADDR", "https://b:8200")]);
    assert_eq!(r.unwrap().vault.address.as_str(), "https://a:8200/");
    let r = vault_only("  kv_mount: secret\n", &[("BAO_ADDR", "https://b:8200")]);
    assert_eq!(r.unwrap().vault.address.as_str(), "https://b:8200/");
    let r = vault_only("  address: https://roster:8200\n", &[("VAULT_ADDR", "https://a:8200")]);
    assert_eq!(r.unwrap().vault.address.as_str(), "https://roster:8200/", "the roster wins");
    let e = vault_only("  kv_mount: secret\n", &[]).unwrap_err().to_string();
    assert!(e.contains("neither VAULT_ADDR nor BAO_ADDR is set") && e.contains("export VAULT_ADDR"), "{e}");
    let e = vault_only("  kv_mount: secret\n", &[("VAULT_ADDR", "vault:8200")]).unwrap_err().to_string();
    assert!(e.contains("VAULT_ADDR must start with https://"), "{e}");
}

#[test]
fn cleartext_http_is_for_this_machine_only_unless_opted_in() {
    for ok in ["http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200", "https://10.0.0.5:8200"] {
        assert!(vault_only(&format!("  address: {ok}\n"), &[]).is_ok(), "{ok}");
    }
    let e = vault_only("  address: http://10.0.0.5:8200\n", &[]).unwrap_err().to_string();
    assert!(e.contains("clear text") && e.contains("vault.allow_cleartext_tokens: true"), "{e}");
    let e = vault_only("", &[("VAULT_ADDR", "http://vault.example.com:8200")]).unwrap_err().to_string();
    assert!(e.contains("VAULT_ADDR is http:// to vault.example.com"), "{e}");
    let r = vault_only("  address: http://10.0.0.5:8200\n  allow_cleartext_tokens: true\n", &[]).unwrap();
    assert!(r.vault.allow_cleartext_tokens);
}

#[test]
fn an_auth_modes_keyword_is_the_word_the_roster_uses() {
    for mode in [AuthMode::Token, AuthMode::Approle] {
        let r = vault_only(&format!("  address: https://v:8200\n  auth: {}\n", mode.keyword()), &[]);
        assert_eq!(r.unwrap().vault.auth, mode);
    }
}

#[test]
fn emails_are_plain_addresses() {
    assert!(roster("  - name: alice\n    email: alice.o+x@mail.example.com\n").is_ok());
    for bad in
        ["\"a@b\\n  log { path = \\\"/tmp/x\\\" }\"", "a b@example.com", "alice", "\"a@b;rm -rf /\"", "\"a\\\"@b\""]
    {
        let e = roster(&format!("  - name: alice\n    email: {bad}\n")).unwrap_err().to_string();
        assert!(e.contains("users[0] (\"alice\"): has an email that is not a plain address"), "{bad}: {e}");
    }
}

#[test]
fn a_good_roster_with_defaults() {
    let r = roster("  - name: alice\n    email: alice@example.com\n  - name: bob\n").unwrap();
    assert_eq!(r.users.len(), 2);
    assert_eq!(r.users[0].os.uid, 1001);
    assert_eq!((r.vault.kv_mount.as_str(), r.vault.path_prefix.as_str()), ("secret", "workstation/claude-users"));
    assert_eq!(r.vault.auth, AuthMode::Token);
    assert_eq!(r.vault.token_period, Duration::from_secs(32 * 86_400));
}

#[test]
fn hostile_entries_are_named_and_refused() {
    for (users, want) in [
        ("  - name: ../root\n", "users[0] (\"../root\"): is not a valid user name"),
        ("  - name: \"alice;rm -rf /\"\n", "users[0]: is not a valid user name"),
        (&format!("  - name: a{}\n", "b".repeat(32)), "is not a valid user name"),
        ("  - name: alice\n  - name: alice\n", "users[1] (\"alice\"): appears more than once"),
        ("  - name: carol\n", "users[0] (\"carol\"): has no account on this machine"),
        ("  - name: root\n", "is root"),
        ("  - name: Alice\n", "is not a valid user name"),
        ("  - name: alice\n    shell: /bin/sh\n", "unknown field"),
    ] {
        let e = roster(users).unwrap_err().to_string();
        assert!(e.contains(want), "{users:?}: {e}");
    }
}

#[test]
fn the_name_rule() {
    for ok in ["a", "_svc", "alice-2", "a_b", &"a".repeat(32)] {
        assert!(valid_name(ok), "{ok}");
    }
    for bad in ["", "1alice", "-a", "a.b", "a b", "A", &"a".repeat(33), "ä"] {
        assert!(!valid_name(bad), "{bad}");
    }
}

#[test]
fn extra_secrets_come_roster_wide_then_per_user_each_once() {
    let text = "vault:\n  address: https://v:8200\nsecrets: [codex]\nusers:\n  - name: alice\n    secrets: [gcloud, codex]\n  - name: bob\n";
    let r = parse(text, Path::new("/etc/roster.yaml"), &|_| None, &fake_passwd).unwrap();
    assert_eq!(r.users[0].secrets, ["codex", "gcloud"]);
    assert_eq!(r.users[1].secrets, ["codex"]);
    assert!(roster("  - name: alice\n").unwrap().users[0].secrets.is_empty(), "none by default");
    for bad in ["../bob", "a/b", "", "x y", "*"] {
        let e = roster(&format!("  - name: alice\n    secrets: [\"{bad}\"]\n")).unwrap_err().to_string();
        assert!(e.contains("users[0] (\"alice\"): secrets: each name is one path segment"), "{bad}: {e}");
    }
    let file = std::env::temp_dir().join(format!("roster-paths-{}.yaml", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let paths = load_paths(&file);
    std::fs::remove_file(&file).unwrap();
    let paths = paths.unwrap();
    assert_eq!(
        (paths.secrets_of("alice"), paths.secrets_of("bob")),
        (vec!["codex".into(), "gcloud".into()], vec!["codex".to_string()])
    );
}
