//! Any bytes as a credentials file: replacing the synced subtree keeps every other key
//! as it was, and reading the subtree back gives what was set; never a panic.
#![no_main]

use claude_auth_sync::template::subtree::{self, JsonKey};
use claude_auth_sync::template::oauth;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the key shape; the rest is the file.
    let Some((&pick, file)) = data.split_first() else { return };
    let key = JsonKey::parse(match pick % 3 {
        0 => "claudeAiOauth",
        1 => "/tokens",
        _ => "/a/b",
    });
    let Ok(doc) = serde_json::from_slice::<Value>(file) else { return };
    let before = match subtree::get(&doc, &key) {
        Ok(obj) => obj.cloned(),
        Err(_) => return, // a wrong shape is refused, not merged
    };
    if let Some(obj) = &before {
        let _ = oauth::facts(obj);
    }
    let new: Map<String, Value> = json!({"accessToken": "a", "refreshToken": "r", "expiresAt": 1}).as_object().unwrap().clone();
    let mut merged = doc.clone();
    if subtree::set(&mut merged, &key, new.clone()).is_err() {
        assert_eq!(merged, doc, "a refused merge changed the document");
        return;
    }
    assert_eq!(subtree::get(&merged, &key).unwrap(), Some(&new), "the subtree reads back as set");
    // Every other top-level key is untouched.
    let (a, b) = (doc.as_object().unwrap(), merged.as_object().unwrap());
    for (k, v) in a {
        if Some(k) != key_first(&key).as_ref() {
            assert_eq!(b.get(k), Some(v), "sibling {k} changed");
        }
    }
    let bytes = serde_json::to_vec(&merged).unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), merged, "the written file parses back");
});

fn key_first(key: &JsonKey) -> Option<String> {
    key.name().split('.').next().map(String::from)
}
