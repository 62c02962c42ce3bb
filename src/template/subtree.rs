//! The synced subtree of a JSON document: `json_key` as a top-level key, a JSON
//! pointer (`/tokens`), or `/` for the whole document (a file that is one secret, such
//! as gcloud's application default credentials). Replacing a subtree keeps every other
//! key of the document as it was (same values, same order). A document that is not strict JSON is read by
//! [`super::lenient`] first.
//!
//! It must never change a key outside the subtree, nor the document when it refuses a
//! shape.

use serde_json::{Map, Value};

/// A parsed `json_key`: the path of object keys down to the synced subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonKey(Vec<String>);

impl JsonKey {
    /// `claudeAiOauth` is one top-level key; `/a/b` is a JSON pointer (`~1` is `/`, `~0` is
    /// `~`); `/` alone is the whole document.
    pub fn parse(key: &str) -> JsonKey {
        match key.strip_prefix('/') {
            Some("") => JsonKey(Vec::new()),
            Some(pointer) => JsonKey(pointer.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect()),
            None => JsonKey(vec![key.to_string()]),
        }
    }

    /// The name used in messages, e.g. `claudeAiOauth`.
    pub fn name(&self) -> String {
        if self.0.is_empty() { WHOLE_DOCUMENT.into() } else { self.0.join(".") }
    }
}

/// How messages call the subtree of `json_key = "/"`.
const WHOLE_DOCUMENT: &str = "the whole document";

/// Where a document has no usable object at the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The document's top level is not an object.
    TopNotObject,
    /// An object is expected at `at` but something else is there.
    NotObject { at: String, found: &'static str },
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::TopNotObject => f.write_str("its top level is not a JSON object"),
            Shape::NotObject { at, found } => write!(f, "{at} is {found}, not an object"),
        }
    }
}

/// The object at `key`: `Ok(None)` when absent or null.
pub fn get<'a>(doc: &'a Value, key: &JsonKey) -> Result<Option<&'a Map<String, Value>>, Shape> {
    let mut cur = doc.as_object().ok_or(Shape::TopNotObject)?;
    for (i, token) in key.0.iter().enumerate() {
        match cur.get(token) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(next)) => cur = next,
            Some(other) => return Err(Shape::NotObject { at: key.0[..=i].join("."), found: kind(other) }),
        }
    }
    Ok(Some(cur))
}

/// Sets the object at `key`, creating missing parents; every other key stays.
pub fn set(doc: &mut Value, key: &JsonKey, obj: Map<String, Value>) -> Result<(), Shape> {
    let Some((last, parents)) = key.0.split_last() else {
        // The whole document: a top level that is not an object is refused like any shape.
        doc.as_object().ok_or(Shape::TopNotObject)?;
        *doc = Value::Object(obj);
        return Ok(());
    };
    let mut cur = doc.as_object_mut().ok_or(Shape::TopNotObject)?;
    for (i, token) in parents.iter().enumerate() {
        let slot = cur.entry(token.clone()).or_insert_with(|| Value::Object(Map::new()));
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        cur = match slot {
            Value::Object(next) => next,
            other => return Err(Shape::NotObject { at: key.0[..=i].join("."), found: kind(other) }),
        };
    }
    match cur.get(last) {
        None | Some(Value::Null) | Some(Value::Object(_)) => {
            cur.insert(last.clone(), Value::Object(obj));
            Ok(())
        }
        Some(other) => Err(Shape::NotObject { at: key.name(), found: kind(other) }),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_key_and_pointer() {
        let doc = json!({"claudeAiOauth": {"a": 1}, "tokens": {"inner": {"b": 2}}});
        assert_eq!(get(&doc, &JsonKey::parse("claudeAiOauth")).unwrap().unwrap()["a"], 1);
        assert_eq!(get(&doc, &JsonKey::parse("/tokens/inner")).unwrap().unwrap()["b"], 2);
        assert_eq!(get(&doc, &JsonKey::parse("missing")).unwrap(), None);
        assert_eq!(JsonKey::parse("/a~1b/c~0d"), JsonKey(vec!["a/b".into(), "c~d".into()]));
    }

    #[test]
    fn set_keeps_every_other_key_in_order() {
        let mut doc = json!({"z": 1, "claudeAiOauth": {"old": true}, "mcpOAuth": {"srv": {"t": "x"}}, "a": [1, 2]});
        set(&mut doc, &JsonKey::parse("claudeAiOauth"), crate::template::object(json!({"new": true}))).unwrap();
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"z":1,"claudeAiOauth":{"new":true},"mcpOAuth":{"srv":{"t":"x"}},"a":[1,2]}"#
        );
        let mut empty = json!({});
        set(&mut empty, &JsonKey::parse("/tokens/x"), Map::new()).unwrap();
        assert_eq!(empty, json!({"tokens": {"x": {}}}));
    }

    #[test]
    fn a_slash_alone_is_the_whole_document() {
        let key = JsonKey::parse("/");
        assert_eq!(key.name(), "the whole document");
        let mut doc = json!({"type": "authorized_user", "refresh_token": "r"});
        assert_eq!(get(&doc, &key).unwrap().unwrap()["type"], "authorized_user");
        set(&mut doc, &key, crate::template::object(json!({"type": "service_account"}))).unwrap();
        assert_eq!(doc, json!({"type": "service_account"}), "the whole document is replaced");
        let mut not_object = json!([1]);
        assert_eq!(set(&mut not_object, &key, Map::new()).unwrap_err(), Shape::TopNotObject);
        assert_eq!(not_object, json!([1]), "a refused set changes nothing");
    }

    #[test]
    fn sibling_numbers_survive_a_rewrite_in_meaning() {
        // Found by the json_merge fuzz target: without float_roundtrip, big numbers drift.
        let text = r#"{"x":[1,3333333333333333333333333333333333333333332,0.1,1e-300],"claudeAiOauth":{}}"#;
        let doc: Value = serde_json::from_str(text).unwrap();
        let mut merged = doc.clone();
        set(&mut merged, &JsonKey::parse("claudeAiOauth"), Map::new()).unwrap();
        let again: Value = serde_json::from_slice(&serde_json::to_vec(&merged).unwrap()).unwrap();
        assert_eq!(again["x"], doc["x"]);
    }

    #[test]
    fn wrong_shapes_are_named() {
        let doc = json!({"claudeAiOauth": "a string"});
        assert_eq!(
            get(&doc, &JsonKey::parse("claudeAiOauth")).unwrap_err().to_string(),
            "claudeAiOauth is a string, not an object"
        );
        assert_eq!(get(&json!([1]), &JsonKey::parse("x")).unwrap_err(), Shape::TopNotObject);
        let mut doc = json!({"claudeAiOauth": 5});
        assert!(set(&mut doc, &JsonKey::parse("claudeAiOauth"), Map::new()).is_err());
        assert_eq!(doc, json!({"claudeAiOauth": 5}), "a refused set changes nothing");
    }
}
