//! A strict reader over a parsed HCL body. Every value is fetched by key through a
//! typed getter whose error names the block and the key; every key no getter asked
//! for is an error when the block is finished ("unknown key", or "not supported" for
//! a Vault Agent key this agent does not implement).
//!
//! It must never skip a key silently and never quote a value in an error: a secret
//! pasted into the wrong key would end up in a log.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hcl::{Block, Body, Expression, ObjectKey, Structure, TemplateExpr};

use super::ConfigError;
use super::interpolate;
use crate::os_user::OsUser;

/// What every table needs to build errors and interpolate values.
pub struct Source<'a> {
    pub file: &'a Path,
    pub user: &'a OsUser,
}

enum Item<'a> {
    Value(&'a Expression),
    Block(&'a Block),
}

/// One block (or one object value such as `config = { ... }`) being read.
pub struct Table<'a> {
    src: &'a Source<'a>,
    /// Display name of the enclosing block, `None` at the top level.
    block: Option<String>,
    /// Key prefix inside the block for nested objects, e.g. `config.`.
    prefix: String,
    entries: Vec<(String, Item<'a>)>,
    used: Vec<Cell<bool>>,
    asked: RefCell<Vec<&'static str>>,
}

pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A block with its labels, e.g. `method "approle" { ... }`.
pub struct LabeledBlock<'a> {
    pub labels: Vec<String>,
    pub table: Table<'a>,
}

impl<'a> Table<'a> {
    pub fn top(src: &'a Source<'a>, body: &'a Body) -> Self {
        Self::from_body(src, None, String::new(), body)
    }

    fn from_body(src: &'a Source<'a>, block: Option<String>, prefix: String, body: &'a Body) -> Self {
        let entries: Vec<_> = body
            .iter()
            .map(|s| match s {
                Structure::Attribute(a) => (a.key.to_string(), Item::Value(&a.expr)),
                Structure::Block(b) => (b.identifier.to_string(), Item::Block(b)),
            })
            .collect();
        let used = entries.iter().map(|_| Cell::new(false)).collect();
        Table { src, block, prefix, entries, used, asked: RefCell::new(Vec::new()) }
    }

    fn from_object(
        src: &'a Source<'a>,
        block: Option<String>,
        prefix: String,
        object: &'a hcl::Object<ObjectKey, Expression>,
    ) -> Result<Self, String> {
        let entries: Vec<_> = object
            .iter()
            .map(|(k, v)| {
                let key = match k {
                    ObjectKey::Identifier(id) => id.to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.clone(),
                    _ => return Err("has a key that is an expression; write plain names or quoted strings".to_string()),
                };
                Ok((key, Item::Value(v)))
            })
            .collect::<Result<_, _>>()?;
        let used = entries.iter().map(|_| Cell::new(false)).collect::<Vec<_>>();
        Ok(Table { src, block, prefix, entries, used, asked: RefCell::new(Vec::new()) })
    }

    /// An error about `key` in this block.
    pub fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.src.file.to_path_buf(),
            block: self.block.clone(),
            key: Some(format!("{}{key}", self.prefix)),
            problem: problem.into(),
        }
    }

    /// An error about this block as a whole.
    pub fn block_err(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.src.file.to_path_buf(),
            block: self.block.clone(),
            key: (!self.prefix.is_empty()).then(|| self.prefix.trim_end_matches('.').to_string()),
            problem: problem.into(),
        }
    }

    pub fn user(&self) -> &OsUser {
        self.src.user
    }

    fn take(&self, key: &'static str) -> Vec<(usize, &Item<'a>)> {
        self.asked.borrow_mut().push(key);
        let found: Vec<_> =
            self.entries.iter().enumerate().filter(|(_, (k, _))| k == key).map(|(i, (_, v))| (i, v)).collect();
        for (i, _) in &found {
            self.used[*i].set(true);
        }
        found
    }

    fn peek(&self, key: &str) -> Option<&'a Expression> {
        self.entries.iter().find_map(|(k, v)| match v {
            Item::Value(e) if k == key => Some(*e),
            _ => None,
        })
    }

    fn value(&self, key: &'static str) -> Result<Option<&'a Expression>, ConfigError> {
        let found = self.take(key);
        match found.as_slice() {
            [] => Ok(None),
            [(_, Item::Value(expr))] => Ok(Some(*expr)),
            [(_, Item::Block(_))] => Err(self.err(key, "expected `key = value`, found a block")),
            _ => Err(self.err(key, "is set more than once; keep one")),
        }
    }

    /// A string as written, with HCL escapes decoded but no interpolation.
    pub fn raw_string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        self.text(key, expr, false).map(Some)
    }

    /// A string with `${user}` interpolated.
    pub fn string(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        self.text(key, expr, true).map(Some)
    }

    /// The string value of `expr`. hcl-rs hands a string without `${` as decoded text,
    /// and one with `${` as a raw template, whose escapes are decoded here, and
    /// `${user}` replaced when `interpolate`.
    fn text(&self, key: &str, expr: &Expression, interpolate: bool) -> Result<String, ConfigError> {
        let raw = match expr {
            Expression::String(s) => return Ok(s.clone()),
            Expression::TemplateExpr(t) => match t.as_ref() {
                TemplateExpr::QuotedString(s) => s.as_str(),
                TemplateExpr::Heredoc(h) => h.template.as_str(),
            },
            other => return Err(self.type_err(key, "a string", other)),
        };
        let decoded = if interpolate { interpolate::vars(raw, self.src.user) } else { interpolate::unescape(raw) };
        decoded.map_err(|p| self.err(key, p))
    }

    pub fn bool(&self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        match expr {
            Expression::Bool(b) => Ok(Some(*b)),
            // HCL1 configs written for Vault Agent often quote booleans.
            e => match as_str(e) {
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                _ => Err(self.type_err(key, "true or false", expr)),
            },
        }
    }

    /// A bool or a word, as text: `true`, `false`, or the word.
    pub fn string_or_bool(&self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.peek(key) {
            Some(Expression::Bool(_)) => Ok(self.bool(key)?.map(|b| b.to_string())),
            _ => self.string(key),
        }
    }

    pub fn uint(&self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        let n = match expr {
            Expression::Number(n) => n.as_u64(),
            e => as_str(e).and_then(|s| s.parse().ok()),
        };
        n.map(Some).ok_or_else(|| self.type_err(key, "a whole number, 0 or more", expr))
    }

    /// A humantime duration ("500ms", "6h", "32d"), or a number of seconds.
    pub fn duration(&self, key: &'static str) -> Result<Option<Duration>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        match expr {
            Expression::Number(n) => n
                .as_u64()
                .map(|s| Some(Duration::from_secs(s)))
                .ok_or_else(|| self.type_err(key, "a duration such as \"30s\"", expr)),
            e => match as_str(e) {
                Some(s) => humantime::parse_duration(s).map(Some).map_err(|_| {
                    self.err(
                        key,
                        "is not a duration; write a number and a unit, such as \"500ms\", \"30s\", \"6h\" or \"32d\"",
                    )
                }),
                None => Err(self.type_err(key, "a duration such as \"30s\"", expr)),
            },
        }
    }

    /// A file mode in octal digits: `0600` (as Vault Agent configs write it) or "0600".
    pub fn mode(&self, key: &'static str) -> Result<Option<u32>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        // HCL2 reads `0600` as the decimal 600, so the digits are taken as octal.
        let digits = match expr {
            Expression::Number(n) => n.as_u64().map(|n| n.to_string()),
            e => as_str(e).map(str::to_string),
        };
        let Some(digits) = digits else { return Err(self.type_err(key, "an octal mode such as 0600", expr)) };
        let digits = digits.trim_start_matches("0o");
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(Some(mode)),
            _ => Err(self.err(key, "is not a file mode; write octal permission digits such as 0600 or 0640")),
        }
    }

    /// An absolute path after `${user}` and `~` expansion.
    pub fn path(&self, key: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        let Some(s) = self.string(key)? else { return Ok(None) };
        if s.contains('\0') {
            return Err(self.err(key, "contains a NUL byte, which no path can hold"));
        }
        if s.trim().is_empty() {
            return Err(self.err(key, "is empty; give an absolute path (a leading ~ means your home)"));
        }
        let p = interpolate::home(&s, self.src.user).map_err(|p| self.err(key, p))?;
        if !p.is_absolute() {
            return Err(self.err(
                key,
                "is a relative path; give an absolute path (a leading ~ means your home), because the agent runs from systemd with no useful working directory",
            ));
        }
        Ok(Some(p))
    }

    /// A list of strings, each interpolated.
    pub fn strings(&self, key: &'static str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(expr) = self.value(key)? else { return Ok(None) };
        let Expression::Array(items) = expr else { return Err(self.type_err(key, "a list of strings", expr)) };
        items
            .iter()
            .map(|item| match item {
                Expression::String(_) | Expression::TemplateExpr(_) => self.text(key, item, true),
                other => Err(self.type_err(key, "a list of strings", other)),
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Either one string or a list of strings, each interpolated.
    pub fn string_or_strings(&self, key: &'static str) -> Result<Option<OneOrMany>, ConfigError> {
        match self.peek(key) {
            Some(Expression::Array(_)) => Ok(self.strings(key)?.map(OneOrMany::Many)),
            _ => Ok(self.string(key)?.map(OneOrMany::One)),
        }
    }

    /// An object of string values, each interpolated.
    pub fn string_map(&self, key: &'static str) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
        let Some(table) = self.table(key)? else { return Ok(None) };
        let mut out = BTreeMap::new();
        for (i, (k, item)) in table.entries.iter().enumerate() {
            table.used[i].set(true);
            let Item::Value(expr) = item else {
                return Err(self.err(key, format!("{k} must be a string, not a block")));
            };
            if !matches!(expr, Expression::String(_) | Expression::TemplateExpr(_)) {
                return Err(self.err(key, format!("{k} must be a string, found {}", kind(expr))));
            }
            let v = self.text(key, expr, true)?;
            if out.insert(k.clone(), v).is_some() {
                return Err(self.err(key, format!("{k} is set more than once")));
            }
        }
        Ok(Some(out))
    }

    /// A nested table written either `key = { ... }` or `key { ... }`.
    pub fn table(&self, key: &'static str) -> Result<Option<Table<'a>>, ConfigError> {
        let found = self.take(key);
        let prefix = format!("{}{key}.", self.prefix);
        match found.as_slice() {
            [] => Ok(None),
            [(_, Item::Value(Expression::Object(obj)))] => {
                Table::from_object(self.src, self.block.clone(), prefix, obj).map(Some).map_err(|p| self.err(key, p))
            }
            [(_, Item::Value(expr))] => Err(self.type_err(key, "an object { ... }", expr)),
            [(_, Item::Block(b))] if b.labels.is_empty() => {
                Ok(Some(Table::from_body(self.src, self.block.clone(), prefix, &b.body)))
            }
            [(_, Item::Block(_))] => Err(self.err(key, "takes no label")),
            _ => Err(self.err(key, "is set more than once; keep one")),
        }
    }

    /// Every block named `key`, in file order, with its labels.
    pub fn blocks(&self, key: &'static str) -> Result<Vec<LabeledBlock<'a>>, ConfigError> {
        let found = self.take(key);
        found
            .into_iter()
            .map(|(_, item)| match item {
                Item::Block(b) => {
                    let labels: Vec<String> = b.labels.iter().map(|l| l.as_str().to_string()).collect();
                    let mut name = match &self.block {
                        Some(parent) => format!("{parent}.{key}"),
                        None => key.to_string(),
                    };
                    for l in &labels {
                        name.push_str(&format!(" \"{l}\""));
                    }
                    Ok(LabeledBlock { labels, table: Table::from_body(self.src, Some(name), String::new(), &b.body) })
                }
                Item::Value(_) => {
                    Err(self.err(key, format!("expected a block `{key} {{ ... }}`, found `{key} = ...`")))
                }
            })
            .collect()
    }

    /// At most one block named `key`, without labels.
    pub fn single_block(&self, key: &'static str) -> Result<Option<Table<'a>>, ConfigError> {
        let mut blocks = self.blocks(key)?;
        match blocks.len() {
            0 => Ok(None),
            1 => {
                let b = blocks.remove(0);
                if !b.labels.is_empty() {
                    return Err(b.table.block_err("takes no label"));
                }
                Ok(Some(b.table))
            }
            _ => Err(self.err(key, format!("appears {} times; write one {key} block", blocks.len()))),
        }
    }

    /// Renames the block for messages, e.g. `template #2`.
    pub fn with_block_name(mut self, name: String) -> Self {
        self.block = Some(name);
        self
    }

    /// Fails on the first key that no getter asked for. `vault_agent_only` lists keys
    /// that Vault Agent knows at this place but this agent does not implement.
    pub fn finish(self, vault_agent_only: &[&str]) -> Result<(), ConfigError> {
        for (i, (key, _)) in self.entries.iter().enumerate() {
            if self.used[i].get() {
                continue;
            }
            if vault_agent_only.contains(&key.as_str()) {
                return Err(self.err(key, "is a Vault Agent setting that claude-auth-sync does not support; remove it"));
            }
            let mut known = self.asked.borrow().clone();
            known.sort_unstable();
            known.dedup();
            return Err(self.err(key, format!("unknown key; known keys here: {}", known.join(", "))));
        }
        Ok(())
    }

    fn type_err(&self, key: &str, expected: &str, found: &Expression) -> ConfigError {
        self.err(key, format!("expected {expected}, found {}", kind(found)))
    }
}

fn as_str(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(s) => Some(s),
        Expression::TemplateExpr(t) => match t.as_ref() {
            TemplateExpr::QuotedString(s) => Some(s),
            TemplateExpr::Heredoc(h) => Some(&h.template),
        },
        _ => None,
    }
}

fn kind(expr: &Expression) -> &'static str {
    match expr {
        Expression::Null => "null",
        Expression::Bool(_) => "a bool",
        Expression::Number(_) => "a number",
        Expression::String(_) | Expression::TemplateExpr(_) => "a string",
        Expression::Array(_) => "a list",
        Expression::Object(_) => "an object",
        Expression::Variable(_) => "a bare word (quote strings: \"...\")",
        _ => "an expression (only literal values are read)",
    }
}
