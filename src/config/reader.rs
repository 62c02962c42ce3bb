//! A strict reader over a parsed HCL body. Every value is fetched by key through a
//! typed getter whose error names the block and the key; every key no getter asked
//! for is an error when the block is finished ("unknown key", or "not supported" for
//! a Vault Agent key this agent does not implement).
//!
//! This file walks the structure (blocks, nested tables, labels, which keys were
//! read); [`values`] turns one key's expression into a typed value.
//!
//! It must never skip a key silently and never quote a value in an error: a secret
//! pasted into the wrong key would end up in a log.

pub(super) mod toml;
mod values;

use std::cell::{Cell, RefCell};
use std::path::Path;

use hcl::{Block, Body, Expression, ObjectKey, Structure};

use super::error::ConfigError;
use crate::os_user::OsUser;

pub use values::OneOrMany;

/// What every table needs to build errors and interpolate values.
pub struct Source<'a> {
    pub file: &'a Path,
    pub user: &'a OsUser,
    /// When set, every key a getter asks for is noted here: the schema as the reader
    /// walks it, which docs/config.md is checked against (see [`Asked`]).
    pub trace: Option<&'a RefCell<Vec<Asked>>>,
}

/// One key the reader asked for, in which block, as what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The block's display name (`auto_auth.method "approle"`, `template #1`); `None` at the top level.
    pub block: Option<String>,
    /// The key, with its prefix inside the block (`config.path`).
    pub key: String,
    pub shape: Shape,
    /// At [`Table::finish`]: the Vault Agent keys refused here (`key` is empty then).
    pub vault_agent_only: Vec<String>,
}

/// What a key holds, as the getter that asked for it reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Value,
    /// A nested table (`retry { }`, `config = { }`), whose keys are asked with a prefix.
    Table,
    /// A table of free-form keys (`meta = { ... }`).
    Map,
    /// Blocks of their own (`template { }`, `method "approle" { }`).
    Blocks,
    /// Not a key: the end of a block, carrying its Vault Agent keys.
    Finish,
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

/// A block with its labels, e.g. `method "approle" { ... }`.
pub struct LabeledBlock<'a> {
    pub labels: Vec<String>,
    pub table: Table<'a>,
}

/// The key that may stand for a block's one label: `method { type = "approle" }`, as
/// Vault Agent allows, and as TOML writes every labelled block.
pub const TYPE_KEY: &str = "type";

impl<'a> LabeledBlock<'a> {
    /// The block's type, its label or its `type` key, and the block named by it
    /// (`auto_auth.sink "file"` either way). `kinds` says what to write, for errors.
    pub fn into_kind(self, kinds: &str) -> Result<(String, Table<'a>), ConfigError> {
        let LabeledBlock { labels, mut table } = self;
        let typed = table.peek(TYPE_KEY).and_then(values::as_str).map(str::to_string);
        if let (true, Some(ty), Some(name)) = (labels.is_empty(), &typed, &table.block) {
            table.block = Some(format!("{name} \"{ty}\""));
        }
        let typed = table.string(TYPE_KEY)?;
        let kind = match (labels.as_slice(), typed) {
            ([label], None) => label.clone(),
            ([], Some(ty)) => ty,
            ([], None) => return Err(table.block_err(format!("has no type; write {kinds}"))),
            ([_], Some(_)) => return Err(table.err(TYPE_KEY, "repeats the block label; keep one")),
            _ => return Err(table.block_err(format!("takes exactly one label, its type; write {kinds}"))),
        };
        Ok((kind, table))
    }
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

    fn take(&self, key: &'static str, shape: Shape) -> Vec<(usize, &Item<'a>)> {
        self.note(format!("{}{key}", self.prefix), shape, &[]);
        self.asked.borrow_mut().push(key);
        let found: Vec<_> =
            self.entries.iter().enumerate().filter(|(_, (k, _))| k == key).map(|(i, (_, v))| (i, v)).collect();
        for (i, _) in &found {
            self.used[*i].set(true);
        }
        found
    }

    fn note(&self, key: String, shape: Shape, vault_agent_only: &[&str]) {
        if let Some(trace) = self.src.trace {
            let vault_agent_only = vault_agent_only.iter().map(|k| k.to_string()).collect();
            trace.borrow_mut().push(Asked { block: self.block.clone(), key, shape, vault_agent_only });
        }
    }

    fn value(&self, key: &'static str) -> Result<Option<&'a Expression>, ConfigError> {
        let found = self.take(key, Shape::Value);
        match found.as_slice() {
            [] => Ok(None),
            [(_, Item::Value(expr))] => Ok(Some(*expr)),
            [(_, Item::Block(_))] => {
                Err(self
                    .err(key, format!("expected `{key} = value`, found a block `{key} {{ ... }}`; write {key} = ...")))
            }
            _ => Err(self.err(key, "is set more than once; keep one")),
        }
    }

    /// A nested table written either `key = { ... }` or `key { ... }`.
    pub fn table(&self, key: &'static str) -> Result<Option<Table<'a>>, ConfigError> {
        self.table_as(key, Shape::Table)
    }

    fn table_as(&self, key: &'static str, shape: Shape) -> Result<Option<Table<'a>>, ConfigError> {
        let found = self.take(key, shape);
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
            [(_, Item::Block(_))] => Err(self.err(key, format!("takes no label; write {key} {{ ... }}"))),
            _ => Err(self.err(key, "is set more than once; keep one")),
        }
    }

    /// Every block named `key`, in file order, with its labels.
    pub fn blocks(&self, key: &'static str) -> Result<Vec<LabeledBlock<'a>>, ConfigError> {
        let found = self.take(key, Shape::Blocks);
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
                    return Err(b.table.block_err(format!("takes no label; write {key} {{ ... }}")));
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
        self.note(self.prefix.clone(), Shape::Finish, vault_agent_only);
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
}
