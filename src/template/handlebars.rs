//! Vault Agent style rendering of a whole file: handlebars in strict mode (a missing
//! key is an error, never an empty string), the secret's data as the context, no HTML
//! escaping, and a `json` helper that writes any value as JSON.
//!
//! An error names the line and column, and at most an identifier (the missing
//! variable, the unknown helper). It must never put a value or source text in an
//! error: handlebars' own messages quote the template's lines, and an inline template
//! may hold a literal secret.

use ::handlebars::{
    Handlebars, RenderErrorReason, Template, TemplateError, TemplateErrorReason, handlebars_helper, no_escape,
};
use serde_json::{Map, Value};

handlebars_helper!(json: |v: Json| serde_json::to_string(v).unwrap_or_default());

/// Parses `text`; the error says where it is wrong.
pub fn check(text: &str) -> Result<(), String> {
    Template::compile(text).map(drop).map_err(|e| syntax_error(&e))
}

/// Renders `text` with `data` as the context.
pub fn render(text: &str, data: &Map<String, Value>) -> Result<String, String> {
    let template = Template::compile(text).map_err(|e| syntax_error(&e))?;
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(no_escape);
    hb.register_helper("json", Box::new(json));
    hb.register_template("template", template);
    hb.render("template", data).map_err(|e| {
        let what = match e.reason() {
            RenderErrorReason::TemplateError(t) => return syntax_error(t),
            RenderErrorReason::MissingVariable(name) => {
                named("the variable", name.as_deref(), "is missing from the secret")
            }
            RenderErrorReason::HelperNotFound(name) => named("the helper", Some(name), "does not exist"),
            RenderErrorReason::PartialNotFound(name) => named("the partial", Some(name), "does not exist"),
            RenderErrorReason::InvalidParamType(expected) => format!("a parameter is not {expected}"),
            _ => "the template cannot be rendered with this data".into(),
        };
        match e.line_no {
            Some(line) => format!("line {line}: {what}"),
            None => what,
        }
    })
}

/// `syntax error at line L, column C: <what kind>`, with no text of the template.
fn syntax_error(e: &TemplateError) -> String {
    let what = match e.reason() {
        TemplateErrorReason::MismatchingClosedHelper(..) => "a block helper is closed by another name",
        TemplateErrorReason::MismatchingClosedDecorator(..) => "a decorator is closed by another name",
        TemplateErrorReason::InvalidSyntax(_) => "invalid handlebars syntax",
        TemplateErrorReason::InvalidParam(_) => "an invalid parameter",
        TemplateErrorReason::NestedSubexpression => "nested subexpressions are not supported",
        _ => "the template cannot be parsed",
    };
    match e.pos() {
        Some((line, column)) => format!("handlebars syntax error at line {line}, column {column}: {what}"),
        None => format!("handlebars syntax error: {what}"),
    }
}

/// `the variable password is missing`, naming it only when it looks like a name (a
/// literal pasted between braces is not repeated).
fn named(kind: &str, name: Option<&str>, problem: &str) -> String {
    let looks_like_a_name = |n: &str| {
        n.len() <= 64 && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-[]/@".contains(c)) && !n.contains("sk-ant-")
    };
    match name.filter(|n| looks_like_a_name(n)) {
        Some(n) => format!("{kind} {n} {problem}"),
        None => format!("{kind} {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::object;
    use serde_json::json;

    #[test]
    fn renders_values_and_json_without_escaping() {
        let d = object(json!({"user": "a&b", "cfg": {"k": [1, "<x>"]}}));
        assert_eq!(render("u={{user}} c={{json cfg}}", &d).unwrap(), r#"u=a&b c={"k":[1,"<x>"]}"#);
    }

    #[test]
    fn a_missing_key_is_an_error_that_names_it_without_values() {
        let d = object(json!({"password": "p4ss-w0rd-value"}));
        let err = render("{{pasword}}", &d).unwrap_err();
        assert!(err.contains("pasword"), "{err}");
        assert!(!err.contains("p4ss-w0rd-value"), "{err}");
    }

    #[test]
    fn syntax_errors_name_line_and_column_never_the_text() {
        let key = "sk-live-literal-api-key-0123456789";
        for text in [
            format!("api_key = {key}\n{{{{#if enabled}}}}\nx\n{{{{/each}}}}\n"),
            format!("api_key = {key}\n{{{{#if}}\n"),
            format!("{key} {{{{ foo bar=\n"),
        ] {
            let err = check(&text).unwrap_err();
            assert!(err.starts_with("handlebars syntax error at line "), "{err}");
            assert!(err.contains(", column "), "{err}");
            assert!(!err.contains(key) && !err.contains("api_key") && !err.contains('|'), "source text in: {err}");
            let rendered = render(&text, &Map::new()).unwrap_err();
            assert_eq!(rendered, err, "rendering reports the same");
        }
        assert!(check("a {{b}} {{#if c}}d{{/if}}").is_ok());
    }

    #[test]
    fn a_literal_between_braces_is_not_repeated() {
        let err = render("{{sk-ant-api03-pasted-here-by-mistake}}", &Map::new()).unwrap_err();
        assert!(!err.contains("sk-ant"), "{err}");
        assert!(err.contains("is missing"), "{err}");
    }
}
