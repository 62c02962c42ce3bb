//! A small HCL writer for the configs the tests hand to the agent (see
//! [`super::agent::config`]) and to OpenBao servers: blocks, attributes and values,
//! rendered with two-space indentation, so that no test writes HCL inside `format!`
//! with `{{ }}` escapes. It writes what it is given and never interprets it: a
//! `${user}` stays for the agent to interpolate.

use std::path::{Path, PathBuf};

/// An attribute's value.
#[derive(Clone, Debug)]
pub enum Value {
    Str(String),
    /// Written as it is: a number, a bool, a file mode such as `0600`.
    Raw(String),
    List(Vec<Value>),
    /// `{ key = value, ... }`, on one line.
    Object(Vec<(String, Value)>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(s.clone())
    }
}

impl From<&Path> for Value {
    fn from(p: &Path) -> Value {
        Value::Str(p.display().to_string())
    }
}

impl From<&PathBuf> for Value {
    fn from(p: &PathBuf) -> Value {
        Value::from(p.as_path())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Raw(b.to_string())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Raw(n.to_string())
    }
}

impl<T: Into<Value> + Clone> From<&[T]> for Value {
    fn from(items: &[T]) -> Value {
        Value::List(items.iter().cloned().map(Into::into).collect())
    }
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Str(s) => quote(s),
            Value::Raw(r) => r.clone(),
            Value::List(items) => format!("[{}]", items.iter().map(Value::render).collect::<Vec<_>>().join(", ")),
            Value::Object(pairs) => {
                let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = {}", v.render())).collect();
                format!("{{ {} }}", inner.join(", "))
            }
        }
    }
}

/// A quoted HCL string: `"` and `\` escaped, a newline written as `\n`.
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// What a file or a block holds: attributes, then blocks, each in the order set.
#[derive(Clone, Debug, Default)]
pub struct Body {
    attrs: Vec<(String, Value)>,
    blocks: Vec<Block>,
}

impl Body {
    /// Sets `key`, replacing an earlier value of it.
    pub fn attr(mut self, key: &str, value: impl Into<Value>) -> Body {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key.to_string(), value)),
        }
        self
    }

    /// Removes `key`.
    pub fn without(mut self, key: &str) -> Body {
        self.attrs.retain(|(k, _)| k != key);
        self
    }

    /// Adds a block after the others.
    pub fn block(mut self, block: Block) -> Body {
        self.blocks.push(block);
        self
    }

    /// Edits the first block named `ident` (made empty when there is none).
    pub fn edit(mut self, ident: &str, edit: impl FnOnce(Block) -> Block) -> Body {
        let at = self.blocks.iter().position(|b| b.ident == ident).unwrap_or_else(|| {
            self.blocks.push(Block::new(ident, &[]));
            self.blocks.len() - 1
        });
        let block = std::mem::replace(&mut self.blocks[at], Block::new(ident, &[]));
        self.blocks[at] = edit(block);
        self
    }

    /// The HCL text, as a file (no indentation).
    pub fn render(&self) -> String {
        self.render_at(0)
    }

    fn render_at(&self, depth: usize) -> String {
        let pad = "  ".repeat(depth);
        let mut out = String::new();
        for (k, v) in &self.attrs {
            out.push_str(&format!("{pad}{k} = {}\n", v.render()));
        }
        for b in &self.blocks {
            let labels: String = b.labels.iter().map(|l| format!(" {}", quote(l))).collect();
            out.push_str(&format!("{pad}{}{labels} {{\n{}{pad}}}\n", b.ident, b.body.render_at(depth + 1)));
        }
        out
    }
}

/// `ident "label" ... { body }`.
#[derive(Clone, Debug)]
pub struct Block {
    ident: String,
    labels: Vec<String>,
    body: Body,
}

impl Block {
    pub fn new(ident: &str, labels: &[&str]) -> Block {
        Block {
            ident: ident.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            body: Body::default(),
        }
    }

    /// Sets `key`, replacing an earlier value of it.
    pub fn attr(mut self, key: &str, value: impl Into<Value>) -> Block {
        self.body = self.body.attr(key, value);
        self
    }

    /// Removes `key`.
    pub fn without(mut self, key: &str) -> Block {
        self.body = self.body.without(key);
        self
    }

    /// Adds a nested block after the others.
    pub fn block(mut self, block: Block) -> Block {
        self.body = self.body.block(block);
        self
    }

    /// Edits the first nested block named `ident` (made empty when there is none).
    pub fn edit(mut self, ident: &str, edit: impl FnOnce(Block) -> Block) -> Block {
        self.body = self.body.edit(ident, edit);
        self
    }
}

/// `{ key = value, ... }` from string pairs.
pub fn object(pairs: &[(&str, Value)]) -> Value {
    Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

mod tests {
    use super::*;

    #[test]
    fn blocks_attributes_and_values_render_as_hcl() {
        let body = Body::default()
            .attr("pid_file", "/run/a \"b\"\n")
            .block(
                Block::new("auto_auth", &[])
                    .block(Block::new("method", &["token_file"]).attr("config", object(&[("path", "/t".into())])))
                    .attr("mode", Value::Raw("0600".into())),
            )
            .attr("pid_file", "/run/p")
            .edit("auto_auth", |b| b.attr("policies", &["a", "b"][..]));
        assert_eq!(
            body.render(),
            "pid_file = \"/run/p\"\nauto_auth {\n  mode = 0600\n  policies = [\"a\", \"b\"]\n  method \"token_file\" {\n    config = { path = \"/t\" }\n  }\n}\n"
        );
        assert_eq!(quote("a \"b\"\\\n"), r#""a \"b\"\\\n""#);
    }
}
