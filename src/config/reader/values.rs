//! The typed getters of a [`Table`]: one key's HCL expression as a string (with
//! `${user}` interpolated), a bool, a number, a duration, a file mode, an absolute path,
//! a list, a map, or one of an enum's [`Keywords`].
//!
//! It must never quote the value in an error: the problem names what was expected and
//! what kind of value was found, never its text.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hcl::{Expression, TemplateExpr};

use super::{Item, Shape, Table};
use crate::config::error::ConfigError;
use crate::config::interpolate;
use crate::config::keyword::Keywords;

pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'a> Table<'a> {
    pub(super) fn peek(&self, key: &str) -> Option<&'a Expression> {
        self.entries.iter().find_map(|(k, v)| match v {
            Item::Value(e) if k == key => Some(*e),
            _ => None,
        })
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
            return Err(self.err(key, "contains a NUL byte, which no path can hold; remove it"));
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
        let Some(table) = self.table_as(key, Shape::Map)? else { return Ok(None) };
        let mut out = BTreeMap::new();
        for (i, (k, item)) in table.entries.iter().enumerate() {
            table.used[i].set(true);
            let Item::Value(expr) = item else {
                return Err(self.err(key, format!("{k} must be a string, not a block; write {k} = \"...\"")));
            };
            if !matches!(expr, Expression::String(_) | Expression::TemplateExpr(_)) {
                return Err(self.err(key, format!("{k} must be a string, found {}; quote it", kind(expr))));
            }
            let v = self.text(key, expr, true)?;
            if out.insert(k.clone(), v).is_some() {
                return Err(self.err(key, format!("{k} is set more than once; keep one")));
            }
        }
        Ok(Some(out))
    }

    /// One of `words`: a string, or a bare bool where the table has `true`/`false`.
    pub fn keyword<T: Copy + PartialEq>(
        &self,
        key: &'static str,
        words: &Keywords<T>,
    ) -> Result<Option<T>, ConfigError> {
        let word = if words.takes_bool() { self.string_or_bool(key)? } else { self.string(key)? };
        word.map(|w| self.keyword_of(key, words, &w)).transpose()
    }

    /// `word`, read from `key` earlier, as one of `words`.
    pub fn keyword_of<T: Copy + PartialEq>(
        &self,
        key: &str,
        words: &Keywords<T>,
        word: &str,
    ) -> Result<T, ConfigError> {
        words.parse(word).ok_or_else(|| self.err(key, words.problem()))
    }

    pub(super) fn type_err(&self, key: &str, expected: &str, found: &Expression) -> ConfigError {
        self.err(key, format!("expected {expected}, found {}", kind(found)))
    }
}

pub(super) fn as_str(expr: &Expression) -> Option<&str> {
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
