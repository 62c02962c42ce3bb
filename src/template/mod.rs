//! What a `template` block means for the bytes of its file: how they are read as JSON
//! ([`lenient`]), which JSON subtree is the synced object ([`subtree`]), what that
//! object says about the login ([`oauth`]), and how a whole file is rendered from a
//! secret ([`handlebars`]).
//!
//! Nothing here touches the disk or Vault: reading and writing are [`crate::store`]'s,
//! deciding is [`crate::cycle`]'s.

pub mod handlebars;
pub mod lenient;
pub mod oauth;
pub mod subtree;

/// A JSON object written as `json!({...})`, for tests.
#[cfg(test)]
pub(crate) fn object(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(o) => o,
        other => panic!("not a JSON object: {other}"),
    }
}
