//! Vault Agent style rendering of a whole file: handlebars in strict mode (a missing
//! key is an error, never an empty string), the secret's data as the context, no HTML
//! escaping, and a `json` helper that writes any value as JSON.
//!
//! A render error names the template and the missing variable, never a value.

use handlebars::{Handlebars, handlebars_helper, no_escape};
use serde_json::{Map, Value};

handlebars_helper!(json: |v: Json| serde_json::to_string(v).unwrap_or_default());

/// Renders `text` with `data` as the context.
pub fn render(text: &str, data: &Map<String, Value>) -> Result<String, String> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(no_escape);
    hb.register_helper("json", Box::new(json));
    hb.render_template(text, data).map_err(|e| match e.line_no {
        Some(line) => format!("line {line}: {}", e.reason()),
        None => e.reason().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn renders_values_and_json_without_escaping() {
        let d = data(json!({"user": "a&b", "cfg": {"k": [1, "<x>"]}}));
        assert_eq!(render("u={{user}} c={{json cfg}}", &d).unwrap(), r#"u=a&b c={"k":[1,"<x>"]}"#);
    }

    #[test]
    fn a_missing_key_is_an_error_that_names_it_without_values() {
        let d = data(json!({"password": "p4ss-w0rd-value"}));
        let err = render("{{pasword}}", &d).unwrap_err();
        assert!(err.contains("pasword"), "{err}");
        assert!(!err.contains("p4ss-w0rd-value"), "{err}");
    }
}
