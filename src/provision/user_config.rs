//! The per-user `config.hcl`. Written whole when the user has none, through the one
//! HCL printer ([`crate::config::Hcl`]: every roster value quoted and escaped, nothing
//! concatenated into HCL). Otherwise it is the user's: only an auth mode switch
//! touches it, replacing the `auto_auth` block's `method` and `expect` and leaving
//! every other byte the user wrote as it was.

use std::ops::Range;

use hcl::edit::Span;
use hcl::edit::structure::{Block, BlockLabel, Body, Structure};

use super::files::{APPROLE_TOKEN_FILE, ROLE_ID_FILE, SECRET_ID_FILE, TOKEN_FILE};
use super::policy;
use super::roster::{AuthMode, RosterUser, VaultSection};
use crate::config::{Hcl, hcl_label};

const AGENT_DIR: &str = "~/.config/claude-auth-sync";

pub fn render(v: &VaultSection, user: &RosterUser) -> String {
    let mut w = Hcl::default();
    w.comment(&format!("claude-auth-sync for {}, written by `claude-auth-sync provision`.", user.name));
    w.comment("Edit freely: the provisioner never overwrites this file; switching the roster's auth mode");
    w.comment("replaces only auto_auth's method and expect. Reference: docs/config.md");
    if let Some(email) = &user.email {
        w.comment(&format!("One-time login: claude auth login --claudeai --sso --email {email}"));
    }
    w.blank();
    w.open("vault");
    w.str("address", v.address.as_str().trim_end_matches('/'));
    if let Some(ca) = &v.ca_cert {
        w.path("ca_cert", ca);
    }
    if v.allow_cleartext_tokens {
        w.raw("allow_cleartext_tokens", true);
    }
    w.close();
    w.blank();
    w.open("auto_auth");
    auth(&mut w, v, user);
    w.close();
    w.blank();
    w.open("template");
    w.str("secret", &policy::secret(v, &user.name));
    w.close();
    if !user.secrets.is_empty() {
        w.blank();
        w.comment("The roster's secrets: also granted to you; add a template block for each (docs/examples/):");
        for name in &user.secrets {
            w.comment(&format!("  {}", policy::extra_secret(v, &user.name, name)));
        }
    }
    w.finish()
}

/// `method` and `expect` for the roster's auth mode.
fn auth(w: &mut Hcl, v: &VaultSection, user: &RosterUser) {
    let file = |name: &str| format!("{AGENT_DIR}/{name}");
    let role = policy::name(&user.name);
    match v.auth {
        AuthMode::Token => {
            w.open(&hcl_label("method", "token_file"));
            w.open("config");
            w.str("token_file_path", &file(TOKEN_FILE));
            w.close();
            w.close();
        }
        AuthMode::Approle => {
            w.open(&hcl_label("method", "approle"));
            w.str("mount_path", &format!("auth/{}", v.approle_mount));
            w.open("config");
            w.str("role_id_file_path", &file(ROLE_ID_FILE));
            w.str("secret_id_file_path", &file(SECRET_ID_FILE));
            w.str("token_cache_path", &file(APPROLE_TOKEN_FILE));
            w.close();
            w.close();
        }
    }
    w.open("expect");
    w.list("policies", std::slice::from_ref(&role));
    w.open("meta");
    match v.auth {
        AuthMode::Token => w.str("os_user", &user.name),
        AuthMode::Approle => w.str("role_name", &role),
    }
    w.close();
    w.close();
}

fn method_kind(method: &Block) -> Option<String> {
    match method.labels.first() {
        Some(BlockLabel::String(s)) => Some(s.as_str().to_string()),
        Some(BlockLabel::Ident(i)) => Some(i.as_str().to_string()),
        None => method.body.get_attribute("type").and_then(|a| a.value.as_str().map(String::from)),
    }
}

/// Why a user's config cannot have its auth block switched; said of the file, which the
/// caller names (the text is never quoted: it is the user's).
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("is not valid HCL (line {line}, column {column}), so its auth block cannot be switched")]
    NotHcl { line: usize, column: usize },
    #[error("has no single auto_auth block to switch")]
    NoSingleAutoAuth,
    #[error("has no single auth method in auto_auth to switch")]
    NoSingleMethod,
    #[error("could not be read back to switch its auth block")]
    Unspanned,
}

/// `text` with its auth rewritten for the roster's mode; `None` when it already uses
/// that method.
pub fn switch_auth(text: &str, v: &VaultSection, user: &RosterUser) -> Result<Option<String>, SwitchError> {
    let body: Body = text.parse().map_err(|e: hcl::edit::parser::Error| {
        let at = e.location();
        SwitchError::NotHcl { line: at.line(), column: at.column() }
    })?;
    let mut blocks = body.get_blocks("auto_auth");
    let (Some(auto_auth), None) = (blocks.next(), blocks.next()) else {
        return Err(SwitchError::NoSingleAutoAuth);
    };
    let mut methods = auto_auth.body.get_blocks("method");
    let (Some(method), None) = (methods.next(), methods.next()) else {
        return Err(SwitchError::NoSingleMethod);
    };
    let want = match v.auth {
        AuthMode::Token => "token_file",
        AuthMode::Approle => "approle",
    };
    if method_kind(method).as_deref() == Some(want) {
        return Ok(None);
    }
    let method_span = method.span().ok_or(SwitchError::Unspanned)?;
    let expect_spans: Vec<Range<usize>> = auto_auth
        .body
        .iter()
        .filter(|s| match s {
            Structure::Block(b) => b.has_ident("expect"),
            Structure::Attribute(a) => a.has_key("expect"),
        })
        .map(|s| s.span().ok_or(SwitchError::Unspanned))
        .collect::<Result<_, _>>()?;

    let mut w = Hcl::default();
    w.open("auto_auth");
    auth(&mut w, v, user);
    w.close();
    let printed = w.finish();
    // The new method and expect, as they sit inside the block: the first line's indent
    // is the old method's own.
    let inner: Vec<&str> = printed.lines().skip(1).collect();
    let inner = inner[..inner.len() - 1].join("\n");
    let replacement = inner.trim_start();

    let mut edits: Vec<(Range<usize>, &str)> = vec![(method_span, replacement)];
    edits.extend(expect_spans.into_iter().map(|r| (whole_lines(text, r), "")));
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = text.to_string();
    for (range, with) in edits {
        out.replace_range(range, with);
    }
    out.parse::<Body>().map_err(|_| SwitchError::Unspanned)?;
    Ok(Some(out))
}

/// `r` widened to its whole lines when nothing else shares them.
fn whole_lines(text: &str, r: Range<usize>) -> Range<usize> {
    let start = text[..r.start].rfind('\n').map_or(0, |i| i + 1);
    let end = text[r.end..].find('\n').map_or(text.len(), |i| r.end + i + 1);
    if text[start..r.start].trim().is_empty() && text[r.end..end].trim().is_empty() { start..end } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::os_user::OsUser;
    use std::path::Path;

    fn section(auth: AuthMode) -> VaultSection {
        VaultSection {
            address: "https://vault.example.com:8200".parse().unwrap(),
            ca_cert: Some("/etc/ssl/vault-ca.pem".into()),
            allow_cleartext_tokens: false,
            kv_mount: "secret".into(),
            path_prefix: "workstation/claude-users".into(),
            auth,
            approle_mount: "approle".into(),
            token_period: std::time::Duration::from_secs(60),
            max_versions: 10,
            delete_version_after: std::time::Duration::ZERO,
            cas_required: false,
        }
    }

    fn alice() -> (OsUser, RosterUser) {
        let os = OsUser { name: "alice".into(), uid: 1001, gid: 1001, home: "/home/alice".into() };
        (
            os.clone(),
            RosterUser { name: "alice".into(), email: Some("alice@example.com".into()), os, secrets: Vec::new() },
        )
    }

    fn load(text: &str, os: &OsUser) -> config::Config {
        config::parse(text, Path::new("/home/alice/.config/claude-auth-sync/config.hcl"), os, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn the_written_config_loads_and_names_the_users_own_identity() {
        let (os, user) = alice();
        for auth in [AuthMode::Token, AuthMode::Approle] {
            let text = render(&section(auth), &user);
            let c = load(&text, &os);
            assert_eq!(c.templates[0].secret.as_str(), "secret/workstation/claude-users/alice");
            assert_eq!(c.auto_auth.expect.policies, ["claude-auth-sync-alice"]);
            assert_eq!(c.vault.ca_cert.as_deref(), Some(Path::new("/etc/ssl/vault-ca.pem")));
            assert!(text.contains("--email alice@example.com"));
            if auth == AuthMode::Approle {
                assert!(matches!(&c.auto_auth.method, config::Method::AppRole { token_cache_path, .. }
                    if token_cache_path == Path::new("/home/alice/.config/claude-auth-sync/approle-token")));
            }
        }
    }

    #[test]
    fn the_rosters_extra_secrets_are_named_for_the_user_to_add() {
        let (os, mut user) = alice();
        user.secrets = vec!["codex".into(), "gcloud".into()];
        let text = render(&section(AuthMode::Token), &user);
        assert!(text.contains("#   secret/workstation/claude-users/alice/codex\n"), "{text}");
        assert!(text.contains("#   secret/workstation/claude-users/alice/gcloud\n"), "{text}");
        assert_eq!(load(&text, &os).templates.len(), 1, "named, not configured: the user adds the block");
    }

    #[test]
    fn no_roster_value_can_add_hcl() {
        let (os, mut user) = alice();
        user.email = Some("a@b\n  log { path = \"/tmp/x\" }\n#".into());
        let mut v = section(AuthMode::Token);
        v.ca_cert = Some("/etc/x\"\n  tls_skip_verify = true\n#".into());
        let c = load(&render(&v, &user), &os);
        assert!(!c.vault.tls_skip_verify);
        assert_eq!(c.vault.ca_cert.as_deref(), Some(Path::new("/etc/x\"\n  tls_skip_verify = true\n#")));
        assert_eq!(c.log, load(&render(&section(AuthMode::Token), &alice().1), &os).log, "no log block was added");
    }

    #[test]
    fn a_mode_switch_replaces_only_method_and_expect() {
        let (os, user) = alice();
        let token = render(&section(AuthMode::Token), &user);
        let edited = token.replace(
            "template {",
            "# my own note\nlog {\n  level = \"debug\"\n}\n\ntemplate {\n  # keep me\n  perms = \"0600\"",
        );
        let edited = edited.replace(
            "auto_auth {\n",
            "auto_auth {\n  sink \"file\" {\n    config = { path = \"~/.vault-token\" }\n  }\n",
        );
        let switched = switch_auth(&edited, &section(AuthMode::Approle), &user).unwrap().expect("switched");
        let c = load(&switched, &os);
        assert!(matches!(c.auto_auth.method, config::Method::AppRole { .. }), "{switched}");
        assert_eq!(c.auto_auth.expect.meta.get("role_name").map(String::as_str), Some("claude-auth-sync-alice"));
        assert!(!c.auto_auth.expect.meta.contains_key("os_user"), "{switched}");
        assert_eq!(c.auto_auth.sinks.len(), 1, "the user's sink is kept");
        assert!(switched.contains("# my own note\nlog {\n  level = \"debug\"\n}") && switched.contains("# keep me"));
        assert_eq!(c.log.level, tracing::Level::DEBUG);
        assert_eq!(switch_auth(&switched, &section(AuthMode::Approle), &user).unwrap(), None, "already approle");

        let back = switch_auth(&switched, &section(AuthMode::Token), &user).unwrap().expect("switched back");
        assert_eq!(back, edited, "a switch back restores the user's file byte for byte");
        let e = switch_auth("auto_auth {\n  method \"approle\" {\n", &section(AuthMode::Token), &user).unwrap_err();
        assert!(matches!(e, SwitchError::NotHcl { .. }) && e.to_string().contains("line"), "{e}");
    }
}
