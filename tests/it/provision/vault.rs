//! The provisioner's side of Vault: an admin token that lacks a capability stops the
//! run and names it, a cleartext address to another machine is refused unless opted
//! in, the KV mount is checked before anything changes, and the address may come from
//! VAULT_ADDR or BAO_ADDR.

use crate::common::bao::server::cleartext_listener;
use crate::common::bao::{Bao, bao};
use crate::common::net::{free_port, non_loopback_ipv4};
use crate::common::secrets::random_secret;
use crate::common::users::TestUser;
use serde_json::json;

use super::{ADMIN_POLICY, Provisioner, Roster, admin_token, check_config_as, kv, read_secret, token_with_policy};

/// Issue 10.3: an admin token without `auth/token/lookup` stops the run with the missing
/// capability named, instead of minting a token every run; an unknown admin token is
/// said to be unknown, and nothing is changed.
#[test]
fn an_admin_token_that_lacks_a_capability_stops_the_run_and_names_it() {
    let b = bao();
    let (u, later, untouched) = (TestUser::new(), TestUser::new(), TestUser::new());
    let p = Provisioner::new();
    let lookup_block = "path \"auth/token/lookup\" {\n  capabilities = [\"update\"]\n}\n";
    assert!(ADMIN_POLICY.contains(lookup_block));
    let weak = token_with_policy(b, &format!("provision-weak-{}", u.name), &ADMIN_POLICY.replace(lookup_block, ""));
    let roster = p.roster(Roster::token(b), &[&u.name, &later.name]);
    for i in 0..3 {
        let run = p.run_env(&roster, &[("VAULT_TOKEN", &weak)], &[]);
        if i == 0 {
            // Nothing to look up yet: the first run mints.
            assert_eq!(run.code, 0, "{}", run.stdout);
            continue;
        }
        assert_eq!(run.code, 1, "{}", run.stdout);
        for want in ["Stopped:", "path \"auth/token/lookup\"", "\"update\"", "provisioner-admin.hcl", "not attempted"] {
            assert!(run.stdout.contains(want), "names {want}: {}", run.stdout);
        }
    }
    assert_eq!(b.live_tokens("os_user", &u.name).len(), 1, "three runs, one token");

    let nobody = Provisioner::new();
    let roster = nobody.roster(Roster::token(b), &[&untouched.name]);
    let unknown = random_secret("s.unknown-admin-");
    let run = nobody.run_env(&roster, &[("VAULT_TOKEN", &unknown)], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("the admin token is not valid") && run.stderr.contains("nothing was changed"),
        "{}",
        run.stderr
    );
    assert!(!untouched.home.join(".config").exists() && !nobody.state.exists());
}

/// Issue 10.5: a roster address of http:// to another machine is refused before any
/// change (the admin token and every user's would travel in clear text), unless
/// `allow_cleartext_tokens: true`, which is then carried into the users' configs.
#[test]
fn a_cleartext_address_to_another_machine_is_refused_unless_opted_in() {
    let ip = non_loopback_ipv4();
    let port = free_port();
    let b = Bao::start_with_listener(cleartext_listener(&format!("{ip}:{port}")));
    let u = TestUser::new();
    let p = Provisioner::new();
    let admin = admin_token(&b, "secret");
    let remote = Roster::at(&format!("http://{ip}:{port}")).auth("token");
    let run = p.run_env(&p.roster(remote, &[&u.name]), &[("VAULT_TOKEN", &admin)], &[]);
    assert_eq!(run.code, 78, "{}", run.stdout);
    assert!(run.stderr.contains("clear text") && run.stderr.contains("allow_cleartext_tokens: true"), "{}", run.stderr);
    assert!(!u.home.join(".config").exists() && !p.state.exists(), "nothing was changed");

    let remote = Roster::at(&format!("http://{ip}:{port}")).auth("token");
    let opted_in = p.roster(remote.allow_cleartext_tokens(), &[&u.name]);
    let run = p.run_env(&opted_in, &[("VAULT_TOKEN", &admin)], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(config.contains("allow_cleartext_tokens = true"), "{config}");
    check_config_as(&u);
}

/// Issue 10.7: the KV mount is checked once, before anything changes: a nested mount
/// works, KV v1, a missing mount and a path inside a mount are refused with what to do.
#[test]
fn the_kv_mount_is_checked_first_and_nested_mounts_work() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let tag = &random_secret("mount-")[6..14];
    let nested = format!("team{tag}/kv");
    b.mount_kv(&nested, "2");
    let roster = p.roster(Roster::at(&b.addr).kv_mount(&nested), &[&u.name]);
    let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin_token(b, &nested))], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let token = read_secret(&u.file("vault-token"));
    let (s, v) = b.api(&token, "POST", &kv(&nested, "data", &u.name), Some(json!({ "data": { "x": 1 } })));
    assert_eq!(s, 200, "the user writes under the nested mount: {v}");
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(config.contains(&format!("secret = \"{nested}/workstation/claude-users/")), "{config}");

    let v1 = format!("v1{tag}");
    b.mount_kv(&v1, "1");
    let other = TestUser::new();
    for (mount, why) in [
        (v1.clone(), "KV version 1".to_string()),
        (format!("none{tag}"), "has no mount there".to_string()),
        (format!("{nested}/sub"), format!("inside the mount {nested}/")),
    ] {
        let roster = p.roster(Roster::at(&b.addr).kv_mount(&mount), &[&other.name]);
        let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin_token(b, &mount))], &[]);
        assert_eq!(run.code, 1, "{mount}: {}", run.stdout);
        assert!(run.stderr.contains(&why) && run.stderr.contains("nothing was changed"), "{mount}: {}", run.stderr);
        let (s, _) = b.api(&b.root, "GET", &format!("sys/policies/acl/claude-auth-sync-{}", other.name), None);
        assert_eq!(s, 404, "{mount}: no policy written");
        assert!(!other.home.join(".config").exists(), "{mount}: nothing in the home");
    }
    let (s, v) = b.api(&b.root, "LIST", &format!("{v1}/metadata/workstation/claude-users"), None);
    assert_eq!(s, 404, "no junk metadata written into the KV v1 mount: {v}");
}

/// Issue 9.12: the roster's address may come from VAULT_ADDR or BAO_ADDR, as in the
/// runbook's `sudo --preserve-env=VAULT_ADDR,VAULT_TOKEN`; neither is a clear error.
#[test]
fn the_address_falls_back_to_vault_addr_and_bao_addr() {
    let b = bao();
    let u = TestUser::new();
    let p = Provisioner::new();
    let roster = p.roster(Roster::without_address().auth("token"), &[&u.name]);
    let admin = admin_token(b, "secret");
    for var in ["VAULT_ADDR", "BAO_ADDR"] {
        let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin), (var, &b.addr)], &[]);
        assert_eq!(run.code, 0, "{var}: {}\n{}", run.stdout, run.stderr);
    }
    let config = std::fs::read_to_string(u.file("config.hcl")).unwrap();
    assert!(config.contains(&format!("address = \"{}\"", b.addr)), "{config}");
    let run = p.run_env(&roster, &[("VAULT_TOKEN", &admin)], &[]);
    assert_eq!(run.code, 78, "{}", run.stderr);
    assert!(run.stderr.contains("neither VAULT_ADDR nor BAO_ADDR is set"), "{}", run.stderr);
}
