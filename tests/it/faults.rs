//! Vault faults at every step of the cycle (stopped, sealed, 500, a stall past the
//! timeout, 403 after a revoke, a check-and-set conflict from a second writer), for a
//! working login (backup) and a broken one (recovery). The local file must be
//! byte-identical afterwards unless the run restored a verified copy, and the outcome
//! must be the one DESIGN.md's table gives. The table is generated here and must match
//! docs/reliability.md (UPDATE_RELIABILITY_DOCS=1 rewrites it).

use std::sync::Arc;

use crate::common::agent::user::Agent;
use crate::common::bao::fault_proxy::{Fault, FaultProxy, Rule};
use crate::common::bao::{Bao, bao};
use crate::common::claude::stand_in::{HOUR_MS, blanked, now_ms, oauth};
use crate::common::secrets::random_secret;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Scenario {
    Backup,
    Recovery,
}

struct Step {
    name: &'static str,
    method: &'static str,
    path: &'static str,
}

const LOOKUP: Step = Step { name: "auth (lookup-self)", method: "GET", path: "auth/token/lookup-self" };
const AUTH: Step = Step { name: "auth (renew-self)", method: "POST", path: "auth/token/renew-self" };
// The read also finds the secret's mount (a KV v2 answer names its version): no run
// here makes a separate mount lookup (`sys/internal/ui/mounts/`) any more.
const READ: Step = Step { name: "read latest (finds the mount)", method: "GET", path: "secret/data/" };
const WRITE: Step = Step { name: "write (CAS)", method: "POST", path: "secret/data/" };
const META: Step = Step { name: "metadata write", method: "POST", path: "secret/metadata/" };

const FAULTS: [&str; 6] = ["stopped", "sealed", "500", "stall", "403 after revoke", "CAS conflict"];

struct Row {
    scenario: Scenario,
    step: &'static str,
    fault: &'static str,
    outcome: String,
    local: &'static str,
}

fn expected(scenario: Scenario, step: &str, fault: &str) -> (&'static str, Option<&'static str>) {
    let transient = matches!(fault, "stopped" | "sealed" | "500" | "stall");
    match (scenario, step, fault) {
        (_, "metadata write", _) => ("OK", None),
        // The second writer's copy expires later but carries no lineage: nobody can tell
        // which login is newer, so neither is overwritten, and the run says so.
        (_, "write (CAS)", "CAS conflict") => ("DEGRADED", Some("backup_undecided")),
        (Scenario::Backup, _, _) if transient => ("DEGRADED", Some("vault_unreachable")),
        (Scenario::Recovery, "write (CAS)", _) if transient => ("DEGRADED", Some("vault_unreachable")),
        (Scenario::Recovery, _, _) if transient => ("FAIL", Some("vault_unreachable_during_recovery")),
        (_, auth, "403 after revoke") if auth.starts_with("auth") => ("FAIL", Some("vault_token_invalid")),
        (_, _, "403 after revoke") => ("FAIL", Some("vault_permission_denied")),
        _ => unreachable!("{scenario:?} {step} {fault}"),
    }
}

fn run_row(b: &Bao, scenario: Scenario, step: &Step, fault: &'static str) -> Row {
    // The proxy is started first, then the user's agent is pointed at it; the user is
    // known to the proxy's action once it exists.
    let holder: Arc<std::sync::Mutex<Option<(String, String)>>> = Arc::new(std::sync::Mutex::new(None));
    let action = |what: &'static str| {
        let (holder, admin) = (holder.clone(), b.handle());
        Arc::new(move || {
            let (name, accessor) = holder.lock().unwrap().clone().unwrap();
            match what {
                "revoke" => {
                    admin.api(&admin.root, "POST", "auth/token/revoke-accessor", Some(json!({ "accessor": accessor })));
                }
                _ => {
                    let newer =
                        oauth("sk-ant-oat01-other-writer", "sk-ant-ort01-other-writer", now_ms() + 20 * HOUR_MS);
                    let path = format!("secret/data/workstation/claude-users/{name}");
                    admin.api(&admin.root, "POST", &path, Some(json!({ "data": { "claudeAiOauth": newer } })));
                }
            }
        }) as Arc<dyn Fn() + Send + Sync>
    };
    let f = match fault {
        "stopped" => Fault::Drop,
        "sealed" => Fault::Status(503, "Vault is sealed"),
        "500" => Fault::Status(500, "internal error"),
        "stall" => Fault::Stall,
        "403 after revoke" => Fault::Before(action("revoke")),
        _ => Fault::Before(action("write")),
    };
    // The second POST to secret/data/ is the write; the read is a GET, so the prefix suffices.
    let proxy = FaultProxy::start(&b.addr, Rule { method: step.method, path_prefix: step.path.into(), fault: f });
    let s = Agent::builder(b).vault_addr(&proxy.addr).vault_timeout("1s").build();
    *holder.lock().unwrap() = Some((s.name.clone(), s.accessor.clone()));

    match scenario {
        Scenario::Backup => {
            let (login, _) = s.good_login(now_ms() + 8 * HOUR_MS);
            let mut older = login.clone();
            older["expiresAt"] = json!(now_ms() + HOUR_MS);
            b.kv_put(&s.name, json!({ "claudeAiOauth": older }));
        }
        Scenario::Recovery => {
            // Vault's copy is expired: the stand-in refreshes it after the restore, so
            // the run ends with a write-back.
            let (good, _) = s.good_login(now_ms() - HOUR_MS);
            b.kv_put(&s.name, json!({ "claudeAiOauth": good }));
            s.claude.write_login(&blanked(), &random_secret("mcp-"));
        }
    }
    let before = std::fs::read(s.claude.creds()).unwrap();
    let run = s.run();
    let report = run.report();
    let (status, reason) = expected(scenario, step.name, fault);
    let name = format!("{scenario:?} / {} / {fault}", step.name);
    run.assert_outcome(
        match status {
            "OK" => 0,
            "DEGRADED" => 75,
            _ => 1,
        },
        status,
        reason,
    );
    let changed = std::fs::read(s.claude.creds()).unwrap() != before;
    let verified = s.claude.state()["calls"].as_u64().unwrap_or(0) >= 1 && report.fact("probe") == Some("ok");
    assert!(
        !changed || (scenario == Scenario::Recovery && verified),
        "{name}: the local file changed without a verified restore: {report}"
    );
    let action = report.action().unwrap_or("-");
    Row {
        scenario,
        step: step.name,
        fault,
        outcome: format!(
            "`{status}`{} (exit {}), action `{action}`",
            reason.map(|r| format!(" `{r}`")).unwrap_or_default(),
            run.code
        ),
        local: if changed { "restored, verified" } else { "byte-identical" },
    }
}

#[test]
fn every_vault_fault_at_every_step_has_the_designed_outcome() {
    let b = bao();
    let mut cases: Vec<(Scenario, &Step, &'static str)> = Vec::new();
    let steps = || vec![&LOOKUP, &AUTH, &READ, &WRITE, &META];
    for (scenario, steps) in [(Scenario::Backup, steps()), (Scenario::Recovery, steps())] {
        for step in steps {
            for fault in FAULTS {
                let applies = fault != "CAS conflict" || step.name == WRITE.name;
                if applies {
                    cases.push((scenario, step, fault));
                }
            }
        }
    }
    let rows: Vec<Row> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases.iter().map(|(sc, st, f)| scope.spawn(move || run_row(b, *sc, st, f))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut table = String::from("| scenario | step | fault | outcome | local file |\n|---|---|---|---|---|\n");
    for r in &rows {
        let scenario = match r.scenario {
            Scenario::Backup => "login works (backup)",
            Scenario::Recovery => "login blanked (recovery)",
        };
        table.push_str(&format!("| {scenario} | {} | {} | {} | {} |\n", r.step, r.fault, r.outcome, r.local));
    }
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reliability.md");
    let text = std::fs::read_to_string(docs).unwrap_or_default();
    let (begin, end) = ("<!-- faults:begin -->\n", "<!-- faults:end -->");
    let current = text.split(begin).nth(1).and_then(|t| t.split(end).next()).unwrap_or_default();
    if std::env::var_os("UPDATE_RELIABILITY_DOCS").is_some() {
        let (head, rest) = text.split_once(begin).expect("docs/reliability.md has the faults markers");
        let tail = rest.split_once(end).unwrap().1;
        std::fs::write(docs, format!("{head}{begin}{table}{end}{tail}")).unwrap();
    } else {
        assert_eq!(current, table, "docs/reliability.md's fault table is stale: rerun with UPDATE_RELIABILITY_DOCS=1");
    }
    eprintln!("faults: {} fault x step combinations tried", rows.len());
}

#[test]
fn a_really_sealed_vault_is_transient_for_a_working_login() {
    let own = Bao::start();
    let s = Agent::builder(&own).vault_timeout("1s").build();
    let (_, before) = s.good_login(now_ms() + 8 * HOUR_MS);
    own.root("PUT", "sys/seal", None);
    let run = s.run();
    run.assert_outcome(75, "DEGRADED", Some("vault_unreachable"));
    assert!(run.report().msg().contains("sealed"), "{}", run.line());
    assert_eq!(std::fs::read(s.claude.creds()).unwrap(), before);
}
