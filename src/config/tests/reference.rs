//! docs/config.md's key reference is the parser's: the schema walk of the one reader,
//! traced over configs that enter every block, lists every (block, key) it asks for; the
//! reference table must list exactly those. docs/vault-agent.md must name every Vault
//! Agent key the reader refuses.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use super::format_parity::{every_example, example_env};
use super::*;

/// Configs that, with the examples, enter every block and every labelled kind: each
/// method, sink and probe kind, a rendered template of each body, every optional block.
const COVERAGE: &[&str] = &[
    r#"
vault {
  address = "https://vault.example.com:8200"
  retry {}
}
auto_auth {
  method "token_file" {
    config { token_file_path = "~/t" }
  }
  expect {
    meta = {}
  }
  sink "file" { config = { path = "~/s" } }
}
template {
  secret = "secret/x/${user}"
  probe "none" {}
}
template {
  secret = "secret/y/${user}"
  contents = "{{ a }}"
  destination = "~/y"
  command = ["true"]
}
log {}
degraded {}
pid_file = "~/pid"
"#,
    r#"
vault { address = "https://vault.example.com:8200" }
auto_auth {
  method "approle" {
    config = { role_id_file_path = "~/r", secret_id_file_path = "~/s" }
  }
}
template {
  secret = "secret/x/${user}"
  probe "command" {}
}
template {
  secret = "secret/x/${user}"
  probe "http" {}
}
"#,
];

/// "top level" or the block's name without template numbers: `template.probe "http"`.
fn block_name(block: &Option<String>) -> String {
    let Some(b) = block else { return "top level".into() };
    let mut out = String::new();
    let mut rest = b.as_str();
    while let Some(i) = rest.find(" #") {
        out.push_str(&rest[..i]);
        rest = rest[i + 2..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// The schema as the reader walks it: every (block, key) asked, and the refused Vault Agent keys.
fn schema() -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let trace = RefCell::new(Vec::new());
    let examples: Vec<String> = every_example().iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    for text in COVERAGE.iter().copied().chain(examples.iter().map(String::as_str)) {
        parse_traced(text, Path::new("/etc/c.hcl"), &alice(), &example_env, &trace)
            .unwrap_or_else(|e| panic!("a config the reference is traced over must load: {e}\n{text}"));
    }
    let asked = trace.into_inner();
    let mut keys = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for a in &asked {
        let block = block_name(&a.block);
        match a.shape {
            Shape::Finish => refused.extend(a.vault_agent_only.iter().cloned()),
            Shape::Value | Shape::Map => {
                keys.insert((block, a.key.clone()));
            }
            // A table or a block the walk never entered would hide its keys: it must be entered.
            Shape::Table => {
                let inside = format!("{}.", a.key);
                let entered = asked.iter().any(|b| block_name(&b.block) == block && b.key.starts_with(&inside));
                assert!(entered, "the walk never read {block} / {}: add it to COVERAGE", a.key);
                keys.insert((block, a.key.clone()));
            }
            Shape::Blocks => {
                let child = if a.block.is_none() { a.key.clone() } else { format!("{block}.{}", a.key) };
                let entered = asked.iter().any(|b| {
                    let name = block_name(&b.block);
                    name == child || name.starts_with(&format!("{child} \""))
                });
                assert!(entered, "the walk never entered the block {child}: add one to COVERAGE");
                keys.insert((block, a.key.clone()));
            }
        }
    }
    (keys, refused)
}

/// The rows of docs/config.md's "Every key" table: (block, key).
fn documented() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/config.md")).unwrap();
    let table = doc.split("\n## Every key\n").nth(1).expect("docs/config.md has a section \"## Every key\"");
    let table = table.split("\n## ").next().unwrap();
    let unquote = |cell: &str| cell.trim().trim_matches('`').to_string();
    table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| block ") && !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            assert!(cells.len() >= 8, "a row of six cells: {l}");
            (unquote(cells[1]), unquote(cells[2]))
        })
        .collect()
}

#[test]
fn docs_config_md_lists_exactly_the_keys_the_reader_reads() {
    let (keys, _) = schema();
    assert!(keys.len() > 50, "the walk saw the whole schema: {keys:?}");
    let documented = documented();
    let missing: Vec<String> = keys
        .difference(&documented)
        .map(|(b, k)| format!("| {} | `{k}` | TYPE | DEFAULT | EXAMPLE | VAULT AGENT |", cell(b)))
        .collect();
    let unknown: Vec<_> = documented.difference(&keys).collect();
    assert!(missing.is_empty(), "docs/config.md's \"Every key\" table lacks these rows:\n{}", missing.join("\n"));
    assert!(
        unknown.is_empty(),
        "docs/config.md's \"Every key\" table names keys the reader does not read: {unknown:?}"
    );
}

fn cell(block: &str) -> String {
    if block == "top level" { block.into() } else { format!("`{block}`") }
}

#[test]
fn docs_vault_agent_md_names_every_vault_agent_key_the_reader_refuses() {
    let (_, refused) = schema();
    assert!(refused.contains("cache") && refused.contains("wrap_ttl"), "{refused:?}");
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/vault-agent.md")).unwrap();
    let unnamed: Vec<&String> = refused.iter().filter(|k| !doc.contains(&format!("`{k}`"))).collect();
    assert!(unnamed.is_empty(), "docs/vault-agent.md does not name these refused Vault Agent keys: {unnamed:?}");
}
