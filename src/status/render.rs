//! The two shapes of [`Status`]: a short aligned table for a person (times in
//! [`humane`] units, the absolute time beside the ones that matter), and a JSON object
//! whose keys are always present (`null` when unknown), for scripts.
//!
//! It must never print more than the status holds: it holds no secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::humane::{relative, span};
use super::local::LocalFile;
use super::{Latest, Status, VaultSide};
use crate::template::oauth::Facts;

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `5 min ago` for a time the state file wrote; the text itself when it does not parse.
fn ago(at: &str, now: SystemTime) -> String {
    humantime::parse_rfc3339(at).map_or_else(|_| at.to_string(), |t| relative(t, now))
}

/// Seconds from `now` to `t`, negative when it has passed.
fn seconds_until(t: SystemTime, now: SystemTime) -> i64 {
    match t.duration_since(now) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

pub(super) fn table(s: &Status, now: SystemTime) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row("user", s.user.clone());
    row("config", s.config.display().to_string());
    match &s.state {
        Err(e) => row("last run", format!("unknown: {e}")),
        Ok(state) => {
            let last = match &state.last {
                None => "none recorded yet".to_string(),
                Some(l) => {
                    let mut what = l.status.clone();
                    for part in [&l.reason, &l.action].into_iter().flatten() {
                        what.push_str(&format!(" {part}"));
                    }
                    format!("{what}, {} ({})", ago(&l.at, now), l.at)
                }
            };
            row("last run", last);
            row(
                "last success",
                state.last_ok_at.as_deref().map_or("never".into(), |t| format!("{} ({t})", ago(t, now))),
            );
            if let Some(d) = &state.degraded {
                row("degraded", format!("{} runs in a row since {} ({})", d.runs, ago(&d.since, now), d.reason));
            }
            let t = state.totals;
            row("runs", format!("{} recorded: {} probes, {} Vault requests", t.runs, t.probes, t.vault_requests));
        }
    }
    let vault = match &s.vault {
        VaultSide::Token { ttl, renewable, .. } => {
            format!("token valid for {}{}", span(*ttl), if *renewable { ", renewable" } else { ", NOT renewable" })
        }
        VaultSide::Unreachable(e) => format!("UNREACHABLE: {e}"),
        VaultSide::Unusable(_, e) => format!("cannot ask: {e}"),
    };
    row("vault", format!("{}: {vault}", s.address));
    if let VaultSide::Token { drift: Some(d), .. } = &s.vault {
        row("vault identity", format!("DRIFTED: {d}"));
    }
    for t in &s.templates {
        row(&t.name, format!("{} (secret {})", t.destination.display(), t.secret));
        match &t.local {
            LocalFile::Login(f) => expiries(&mut row, f, now),
            LocalFile::Blank(f) => {
                row("  local login", "BLANK or incomplete: Claude Code cannot use it".into());
                expiries(&mut row, f, now);
            }
            LocalFile::Absent(w) => row("  local file", w.replace('_', " ")),
            LocalFile::Present => row("  local file", "present".into()),
            LocalFile::Unreadable(e) => row("  local file", format!("unreadable: {e}")),
        }
        let copy = match &t.vault {
            Err(e) => format!("unknown: {e}"),
            Ok(Latest::NotAsked) => "not asked (see vault)".into(),
            Ok(Latest::None) => "none yet".into(),
            Ok(Latest::Deleted(v)) => format!("version {v}, deleted"),
            Ok(Latest::Version { version, matches }) => match matches {
                Some(true) => format!("version {version}, holds this login"),
                Some(false) => format!("version {version}, holds ANOTHER login than this one"),
                None => format!("version {version}"),
            },
        };
        row("  vault copy", copy);
    }
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:width$}  {v}\n")).collect()
}

fn expiries(row: &mut impl FnMut(&str, String), f: &Facts, now: SystemTime) {
    // 0 is what the CLI leaves in a login it blanked: no expiry at all.
    if let Some(ms) = f.expires_at_ms.filter(|ms| *ms > 0) {
        let t = at_ms(ms);
        let when =
            if t > now { format!("expires {}", relative(t, now)) } else { format!("expired {}", relative(t, now)) };
        row("  access token", format!("{when} ({}); Claude Code refreshes it itself", rfc3339(t)));
    }
    if let Some(ms) = f.refresh_expires_at_ms {
        let t = at_ms(ms);
        let when = if t > now { format!("ends {}", relative(t, now)) } else { format!("ENDED {}", relative(t, now)) };
        row("  login", format!("{when} ({}): then a person logs in again", rfc3339(t)));
    }
}

pub(super) fn json(s: &Status, now: SystemTime) -> Value {
    let (state, state_error) = match &s.state {
        Ok(st) => (Some(st), None),
        Err(e) => (None, Some(e.clone())),
    };
    let last = state.and_then(|st| st.last.as_ref());
    let (vault_state, detail, ttl, renewable, drift) = match &s.vault {
        VaultSide::Token { ttl, renewable, drift } => {
            ("ok", None, Some(ttl.as_secs()), Some(*renewable), drift.clone())
        }
        VaultSide::Unreachable(e) => ("unreachable", Some(e.clone()), None, None, None),
        VaultSide::Unusable(w, e) => (*w, Some(e.clone()), None, None, None),
    };
    let templates: Vec<Value> = s
        .templates
        .iter()
        .map(|t| {
            let facts = t.local.facts();
            let access = facts.and_then(|f| f.expires_at_ms).filter(|ms| *ms > 0).map(at_ms);
            let hard_end = facts.and_then(|f| f.refresh_expires_at_ms).map(at_ms);
            let local_detail = match &t.local {
                LocalFile::Unreadable(e) => Some(e.clone()),
                _ => None,
            };
            let (copy_state, version, matches, copy_detail) = match &t.vault {
                Err(e) => ("error", None, None, Some(e.clone())),
                Ok(Latest::NotAsked) => ("not_asked", None, None, None),
                Ok(Latest::None) => ("none", None, None, None),
                Ok(Latest::Deleted(v)) => ("deleted", Some(*v), None, None),
                Ok(Latest::Version { version, matches }) => ("ok", Some(*version), *matches, None),
            };
            json!({
                "name": t.name,
                "kind": if t.json { "json" } else { "rendered" },
                "destination": t.destination,
                "secret": t.secret,
                "local": {
                    "state": t.local.word(),
                    "detail": local_detail,
                    "access_token_expires_at": access.map(rfc3339),
                    "access_token_expires_in_seconds": access.map(|a| seconds_until(a, now)),
                    "refresh_token_expires_at": hard_end.map(rfc3339),
                    "refresh_token_expires_in_days": hard_end.map(|e| seconds_until(e, now).div_euclid(86_400)),
                },
                "vault": {
                    "state": copy_state,
                    "latest_version": version,
                    "matches_local": matches,
                    "detail": copy_detail,
                },
            })
        })
        .collect();
    json!({
        "user": s.user,
        "config": s.config,
        "last_run": last.map(|l| json!({ "status": l.status, "reason": l.reason, "action": l.action, "at": l.at })),
        "last_success_at": state.and_then(|st| st.last_ok_at.clone()),
        "degraded": state.and_then(|st| st.degraded.as_ref()).map(|d| json!({ "runs": d.runs, "since": d.since, "reason": d.reason })),
        "state_error": state_error,
        "totals": state.map(|st| json!({ "runs": st.totals.runs, "probes": st.totals.probes, "vault_requests": st.totals.vault_requests })),
        "vault": {
            "address": s.address,
            "state": vault_state,
            "detail": detail,
            "token_ttl_seconds": ttl,
            "token_renewable": renewable,
            "identity_drift": drift,
        },
        "templates": templates,
        "exit_code": s.exit_code().code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::state::{LastRun, State};

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn status(vault: VaultSide) -> Status {
        let ms = |secs: u64| Some((1_800_000_000 + secs) * 1000);
        let facts = Facts {
            blank: false,
            missing: Vec::new(),
            expires_at_ms: ms(3 * 3600 + 12 * 60),
            refresh_expires_at_ms: ms(21 * 86_400 + 3600),
            refresh_fp: Some("0123456789ab".into()),
        };
        Status {
            user: "alice".into(),
            config: "/home/alice/.config/claude-auth-sync/config.hcl".into(),
            address: "https://vault.example:8200/".into(),
            state: Ok(State {
                last: Some(LastRun {
                    status: "OK".into(),
                    reason: None,
                    action: Some("verified".into()),
                    at: "2027-01-15T07:55:00Z".into(),
                }),
                last_ok_at: Some("2027-01-15T07:55:00Z".into()),
                ..State::default()
            }),
            vault,
            templates: vec![super::super::TemplateStatus {
                name: "template #1".into(),
                json: true,
                destination: "/home/alice/.claude/.credentials.json".into(),
                secret: "secret/workstation/claude-users/alice".into(),
                local: LocalFile::Login(facts),
                vault: Ok(Latest::Version { version: 4, matches: Some(true) }),
            }],
        }
    }

    #[test]
    fn the_table_is_aligned_and_humane() {
        let s = status(VaultSide::Token { ttl: Duration::from_secs(3 * 3600 + 12 * 60), renewable: true, drift: None });
        let text = table(&s, now());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "user            alice");
        assert!(text.contains("last run        OK verified, 5 min ago (2027-01-15T07:55:00Z)\n"), "{text}");
        assert!(
            text.contains("vault           https://vault.example:8200/: token valid for 3h 12m, renewable\n"),
            "{text}"
        );
        assert!(text.contains("  access token  expires in 3h 12m (2027-01-15T11:12:00Z)"), "{text}");
        assert!(text.contains("  login         ends in 21 days (2027-02-05T09:00:00Z)"), "{text}");
        assert!(text.contains("  vault copy    version 4, holds this login\n"), "{text}");
        let column = lines[0].find("alice").unwrap();
        assert!(lines.iter().all(|l| l.len() > column && l.as_bytes()[column - 1] == b' '), "{text}");
        assert_eq!(s.exit_code().code(), 0);
    }

    #[test]
    fn the_json_keeps_every_key_and_vault_trouble_sets_the_exit_code() {
        let s = status(VaultSide::Unreachable("Vault unreachable (token lookup-self): connection refused".into()));
        let v = json(&s, now());
        assert_eq!(v["vault"]["state"], "unreachable");
        assert_eq!(v["vault"]["token_ttl_seconds"], Value::Null);
        assert_eq!(v["exit_code"], 75);
        let t = &v["templates"][0];
        assert_eq!(t["local"]["access_token_expires_in_seconds"], 3 * 3600 + 12 * 60);
        assert_eq!(t["local"]["refresh_token_expires_in_days"], 21);
        assert_eq!(
            (t["vault"]["latest_version"].as_u64(), t["vault"]["matches_local"].as_bool()),
            (Some(4), Some(true))
        );
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&v),
            [
                "user",
                "config",
                "last_run",
                "last_success_at",
                "degraded",
                "state_error",
                "totals",
                "vault",
                "templates",
                "exit_code"
            ]
        );
        let mut blank = status(VaultSide::Token {
            ttl: Duration::ZERO,
            renewable: false,
            drift: Some("meta os_user is missing".into()),
        });
        let facts = Facts {
            blank: true,
            expires_at_ms: Some(0),
            refresh_expires_at_ms: None,
            refresh_fp: None,
            missing: Vec::new(),
        };
        blank.templates[0].local = LocalFile::Blank(facts);
        blank.templates[0].vault = Ok(Latest::Version { version: 4, matches: None });
        let text = table(&blank, now());
        assert!(text.contains("  local login   BLANK or incomplete") && !text.contains("access token"), "{text}");
        assert!(
            text.contains("vault identity  DRIFTED: meta os_user is missing") && text.contains("NOT renewable"),
            "{text}"
        );
        assert!(text.contains("  vault copy    version 4\n"), "{text}");
        let local = &json(&blank, now())["templates"][0]["local"];
        assert_eq!((local["state"].as_str(), &local["access_token_expires_at"]), (Some("blank"), &Value::Null));
        let refused = status(VaultSide::Unusable("token_invalid", "Vault denied token lookup-self (HTTP 403)".into()));
        assert_eq!(refused.exit_code().code(), 1);
        assert!(table(&refused, now()).contains("cannot ask: Vault denied"));
    }
}
