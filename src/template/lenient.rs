//! How the bytes of a JSON file are read: as strict JSON, or, when hands made it not
//! quite JSON (a UTF-8 byte-order mark, `//` and `/* */` comments, commas before `}` or
//! `]`), leniently; nesting as deep as serde_json refuses is told apart from garbage by
//! counting it, not by reading an error message.
//!
//! It must never guess beyond those three additions: anything else is [`Reading::NotJson`].

use serde_json::Value;

/// serde_json refuses a document nested this deep (its recursion limit).
pub const MAX_DEPTH: usize = 128;

/// What the bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Strict(Value),
    /// Not strict JSON, but JSON once a byte-order mark, comments and trailing commas go.
    Lenient(Value),
    /// Nested [`MAX_DEPTH`] levels or more: deliberate, not a clobbered file.
    TooDeep,
    /// Not JSON even to a lenient reading (a truncated or clobbered file).
    NotJson,
}

/// Reads `bytes` strictly, else leniently.
pub fn read(bytes: &[u8]) -> Reading {
    if let Ok(doc) = serde_json::from_slice(bytes) {
        return Reading::Strict(doc);
    }
    let cleaned = without_additions(bytes);
    if depth(&cleaned) >= MAX_DEPTH {
        return Reading::TooDeep;
    }
    serde_json::from_slice(&cleaned).map_or(Reading::NotJson, Reading::Lenient)
}

/// `bytes` without a UTF-8 byte-order mark, comments and commas before `}` or `]`.
fn without_additions(bytes: &[u8]) -> Vec<u8> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let uncommented = outside_strings(bytes, |rest| {
        if rest.starts_with(b"//") {
            Some(rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len()))
        } else if rest.starts_with(b"/*") {
            Some(rest[2..].windows(2).position(|w| w == b"*/").map_or(rest.len(), |i| i + 4))
        } else {
            None
        }
    });
    let trailing_comma = |rest: &[u8]| {
        let next = rest[1..].iter().find(|b| !b.is_ascii_whitespace());
        (rest[0] == b',' && matches!(next, Some(b'}' | b']'))).then_some(1)
    };
    outside_strings(&uncommented, trailing_comma)
}

/// Copies `bytes`, except that outside JSON strings `skip` may drop the next n bytes.
fn outside_strings(bytes: &[u8], mut skip: impl FnMut(&[u8]) -> Option<usize>) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            match b {
                b'\\' if i + 1 < bytes.len() => {
                    out.push(bytes[i + 1]);
                    i += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else if let Some(n) = skip(&bytes[i..]) {
            i += n;
            continue;
        } else {
            in_string = b == b'"';
            out.push(b);
        }
        i += 1;
    }
    out
}

/// How deep arrays and objects nest, outside strings.
fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    outside_strings(bytes, |rest| {
        match rest[0] {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        None
    });
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lenient(bytes: &[u8]) -> Option<Value> {
        match read(bytes) {
            Reading::Lenient(doc) => Some(doc),
            _ => None,
        }
    }

    #[test]
    fn lenient_parsing_reads_what_hands_add_and_nothing_else() {
        let text = "\u{feff}{\n  // the login\n  \"a\": {\"s\": \"x//y /* z */ ,}\", \"n\": [1, 2,],},\n  /* more */ \"b\": 1,\n}\n";
        assert!(serde_json::from_str::<Value>(text).is_err());
        assert_eq!(lenient(text.as_bytes()), Some(json!({"a": {"s": "x//y /* z */ ,}", "n": [1, 2]}, "b": 1})));
        assert_eq!(lenient(br#"{"q": "a \" , }", }"#), Some(json!({"q": "a \" , }"})));
        for garbage in [&b"{\"a\": "[..], b"\x00\x01\x02", b"{\"a\" 1}", b"/* unterminated", b""] {
            assert_eq!(lenient(garbage), None, "{:?}", String::from_utf8_lossy(garbage));
        }
    }

    #[test]
    fn deep_nesting_is_told_apart_from_garbage() {
        assert_eq!(read(b"[1]"), Reading::Strict(json!([1])));
        let deep = "[".repeat(100_000);
        assert_eq!(read(deep.as_bytes()), Reading::TooDeep);
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(matches!(read(nested(MAX_DEPTH - 1).as_bytes()), Reading::Strict(_)), "serde_json's own limit");
        assert_eq!(read(nested(MAX_DEPTH).as_bytes()), Reading::TooDeep);
        assert_eq!(
            read(format!("{{\"s\": \"{deep}\"").as_bytes()),
            Reading::NotJson,
            "brackets in a string do not nest"
        );
    }
}
