//! TOML configs: a `.toml` file is lowered into the one tree the [`Table`](super::Table)
//! reader walks (hcl-rs's `Body`), so that HCL and TOML share every getter, default and
//! message: the schema exists once. The shapes:
//!
//! - a table (`[vault]`, `config = { ... }`) is a block without labels;
//! - an array of tables (`[[template]]`, `[[auto_auth.sink]]`) is that block repeated;
//! - a labelled block is a table with a `type` key: `[auto_auth.method]` with
//!   `type = "approle"` is `method { type = "approle" }`, which the reader takes for
//!   `method "approle"` as Vault Agent does ([`TYPE_KEY`](super::TYPE_KEY));
//! - a string holding `${` or `%{` is a template string, read with the same
//!   `${user}`/`$${` rules as in HCL; any other string is literal;
//! - an octal integer (`mode = 0o600`) keeps its octal digits; TOML itself forbids `0600`.
//!
//! It must never quote a value in an error (a secret pasted into the wrong key would
//! reach a log): errors give the line, the key and what kind of value was found.

use hcl::{Attribute, Block, Body, Expression, Identifier, Number, Object, ObjectKey, Structure, TemplateExpr};
use toml::de::{DeTable, DeValue};

type Spanned<T> = toml::Spanned<T>;

/// Parses TOML text into the reader's tree; the error is the problem, with its line.
pub(in crate::config) fn parse(text: &str) -> Result<Body, String> {
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_column(text, s.start)).unwrap_or((1, 1));
        // The offending line is not quoted: it may hold a secret.
        format!("TOML syntax error at line {line}, column {column}: {}", e.message())
    })?;
    Lower { text }.body(doc.get_ref())
}

struct Lower<'t> {
    text: &'t str,
}

impl Lower<'_> {
    fn body(&self, table: &DeTable<'_>) -> Result<Body, String> {
        let mut out = Vec::new();
        for (key, value) in table {
            let key = key.get_ref().as_ref();
            match value.get_ref() {
                DeValue::Table(t) => out.push(Structure::Block(self.block(key, t)?)),
                DeValue::Array(items) if !items.is_empty() && items.iter().all(|i| i.get_ref().is_table()) => {
                    for item in items.iter() {
                        let DeValue::Table(t) = item.get_ref() else { unreachable!("checked: every item is a table") };
                        out.push(Structure::Block(self.block(key, t)?));
                    }
                }
                _ => out.push(Structure::Attribute(Attribute::new(ident(key), self.expr(key, value)?))),
            }
        }
        Ok(Body(out))
    }

    fn block(&self, key: &str, table: &DeTable<'_>) -> Result<Block, String> {
        Ok(Block { identifier: ident(key), labels: Vec::new(), body: self.body(table)? })
    }

    fn expr(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<Expression, String> {
        Ok(match value.get_ref() {
            DeValue::String(s) if s.contains("${") || s.contains("%{") => {
                Expression::TemplateExpr(Box::new(TemplateExpr::QuotedString(s.to_string())))
            }
            DeValue::String(s) => Expression::String(s.to_string()),
            DeValue::Boolean(b) => Expression::Bool(*b),
            // The digits as written, which the mode getter reads as octal (as it does "0600").
            DeValue::Integer(i) if i.radix() == 8 => Expression::String(format!("0o{}", i.as_str())),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Expression::Number(Number::from(n)),
                Err(_) => return Err(self.problem(key, value, "is an integer too large to be read")),
            },
            DeValue::Float(f) => match f.as_str().parse().ok().and_then(Number::from_f64) {
                Some(n) => Expression::Number(n),
                None => return Err(self.problem(key, value, "is a float that is not a number")),
            },
            DeValue::Datetime(_) => {
                return Err(self.problem(key, value, "is a TOML date/time, which no key takes; quote it as a string"));
            }
            DeValue::Array(items) => {
                Expression::Array(items.iter().map(|i| self.expr(key, i)).collect::<Result<_, _>>()?)
            }
            DeValue::Table(t) => {
                let mut object = Object::new();
                for (k, v) in t {
                    let k = k.get_ref().as_ref();
                    object.insert(object_key(k), self.expr(k, v)?);
                }
                Expression::Object(object)
            }
        })
    }

    fn problem(&self, key: &str, value: &Spanned<DeValue<'_>>, what: &str) -> String {
        let (line, _) = line_column(self.text, value.span().start);
        format!("line {line}, key {key}: {what}")
    }
}

/// TOML keys may hold any character; the reader only compares them as text.
fn ident(key: &str) -> Identifier {
    Identifier::unchecked(key)
}

fn object_key(key: &str) -> ObjectKey {
    ObjectKey::Identifier(ident(key))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
