//! The TOML printer: `check-config --print-as toml`. It prints the tree the HCL printer's
//! output parses to, in the shapes the TOML reader ([`super::reader::toml`]) lowers back
//! to the same tree: a block is a table, a repeatable or repeated block an array of
//! tables, a block's label its `type` key (which the reader takes for the label). So the TOML printed for a config loads back to
//! the same config, as the HCL does.
//!
//! It must never let a value become syntax: every string and every key that is not a
//! bare word is quoted and escaped, and `${`/`%{` are escaped as the reader expects.

use std::fmt::Write;

use hcl::{Block, Body, Expression, ObjectKey, Structure, TemplateExpr};

use super::hcl_writer::{escape_markers, quote_text as quote};
use super::reader::TYPE_KEY;

/// Prints `body` as TOML under `header` (a comment); `repeatable`: the blocks a config
/// may repeat, printed as arrays of tables (`[[template]]`) even when there is one.
/// Fails only on what no config holds: a null, an expression, a block with two labels.
pub(super) fn print(header: &str, body: &Body, repeatable: &[&str]) -> Result<String, String> {
    let mut out = String::new();
    comment(&mut out, header);
    table(&mut out, &[], body, repeatable)?;
    Ok(out)
}

fn comment(out: &mut String, s: &str) {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let _ = writeln!(out, "# {flat}");
}

/// The key-value lines of `body`, then its blocks as (arrays of) tables under `path`.
fn table(out: &mut String, path: &[String], body: &Body, repeatable: &[&str]) -> Result<(), String> {
    let blocks: Vec<&Block> = body
        .iter()
        .filter_map(|s| match s {
            Structure::Block(b) => Some(b),
            Structure::Attribute(_) => None,
        })
        .collect();
    for s in body.iter() {
        if let Structure::Attribute(a) = s {
            let _ = writeln!(out, "{} = {}", key(a.key.as_str()), value(&a.expr)?);
        }
    }
    for b in &blocks {
        let id = b.identifier.as_str();
        let many = repeatable.contains(&id) || blocks.iter().filter(|o| o.identifier.as_str() == id).count() > 1;
        let mut sub = path.to_vec();
        sub.push(key(id));
        let head = sub.join(".");
        out.push('\n');
        let _ = if many { writeln!(out, "[[{head}]]") } else { writeln!(out, "[{head}]") };
        match b.labels.as_slice() {
            [] => {}
            [label] => {
                let _ = writeln!(out, "{TYPE_KEY} = {}", quote(label.as_str()));
            }
            _ => return Err(format!("block {id} has more than one label, which TOML cannot hold")),
        }
        table(out, &sub, &b.body, repeatable)?;
    }
    Ok(())
}

fn value(expr: &Expression) -> Result<String, String> {
    Ok(match expr {
        Expression::Bool(b) => b.to_string(),
        Expression::Number(n) => {
            let s = n.to_string();
            if n.is_f64() && !s.contains(['.', 'e', 'E']) { format!("{s}.0") } else { s }
        }
        // A literal: escaped so that the reader does not take it for a template.
        Expression::String(s) => quote(&escape_markers(s)),
        // A template's text as HCL holds it (`$${` escapes kept): the reader decodes it.
        Expression::TemplateExpr(t) => quote(match t.as_ref() {
            TemplateExpr::QuotedString(s) => s,
            TemplateExpr::Heredoc(h) => &h.template,
        }),
        Expression::Array(items) => {
            let items = items.iter().map(value).collect::<Result<Vec<_>, _>>()?;
            format!("[{}]", items.join(", "))
        }
        Expression::Object(object) => {
            let pairs = object
                .iter()
                .map(|(k, v)| {
                    let k = match k {
                        ObjectKey::Identifier(id) => id.to_string(),
                        ObjectKey::Expression(Expression::String(s)) => s.clone(),
                        _ => return Err("an object key that is an expression has no TOML form".to_string()),
                    };
                    Ok(format!("{} = {}", key(&k), value(v)?))
                })
                .collect::<Result<Vec<_>, String>>()?;
            if pairs.is_empty() { "{}".into() } else { format!("{{ {} }}", pairs.join(", ")) }
        }
        Expression::Null => return Err("null has no TOML form".into()),
        _ => return Err("an expression has no TOML form; only literal values convert".into()),
    })
}

/// A bare key where TOML allows one, else a quoted key.
fn key(k: &str) -> String {
    let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { k.to_string() } else { quote(k) }
}
