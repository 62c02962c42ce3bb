//! Reading a probe command's result: `--output-format json` (`is_error`,
//! `api_error_status`) when present, else the exit code and well-known phrases.

use super::Verdict;

const AUTH_PHRASES: &[&str] = &[
    "not logged in",
    "oauth token has expired",
    "invalid_grant",
    "failed to authenticate",
    "authentication_error",
    "invalid bearer token",
    "please run /login",
];

const TRANSIENT_PHRASES: &[&str] = &[
    "overloaded",
    "rate limit",
    "rate_limit",
    "timed out",
    "timeout",
    "econnrefused",
    "econnreset",
    "enotfound",
    "eai_again",
    "network",
    "connection error",
    "service unavailable",
    "internal server error",
    "bad gateway",
];

pub fn classify(exit_code: Option<i32>, stdout: &str, stderr: &str) -> Verdict {
    if let Some(v) = from_json(stdout) {
        return v;
    }
    if exit_code == Some(0) {
        return Verdict::Ok;
    }
    let text = format!("{stdout}\n{stderr}").to_lowercase();
    if let Some(p) = AUTH_PHRASES.iter().find(|p| text.contains(*p)) {
        return Verdict::AuthRejected(format!("the probe says \"{p}\""));
    }
    if let Some(status) = http_status(&text) {
        return by_status(status);
    }
    if let Some(p) = TRANSIENT_PHRASES.iter().find(|p| text.contains(*p)) {
        return Verdict::Transient(format!("the probe says \"{p}\""));
    }
    let code = exit_code.map_or("a signal".to_string(), |c| format!("exit code {c}"));
    Verdict::Transient(format!("the probe failed with {code} and no recognisable reason"))
}

/// The CLI's `--output-format json` result: the last line that is a JSON object with `is_error`.
fn from_json(stdout: &str) -> Option<Verdict> {
    let result = stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .find(|v| v.get("is_error").is_some())?;
    if result["is_error"] == false {
        return Some(Verdict::Ok);
    }
    if let Some(status) = result.get("api_error_status").and_then(serde_json::Value::as_u64) {
        return Some(by_status(status as u16));
    }
    let text = result.get("result").and_then(serde_json::Value::as_str).unwrap_or_default().to_lowercase();
    if let Some(p) = AUTH_PHRASES.iter().find(|p| text.contains(*p)) {
        return Some(Verdict::AuthRejected(format!("the probe says \"{p}\"")));
    }
    Some(Verdict::Transient("the probe reported an error without a status".into()))
}

fn by_status(status: u16) -> Verdict {
    match status {
        401 | 403 => Verdict::AuthRejected(format!("HTTP {status}")),
        _ => Verdict::Transient(format!("HTTP {status}")),
    }
}

/// "API Error: 401" / "status 529" style mentions.
fn http_status(text: &str) -> Option<u16> {
    for marker in ["api error: ", "status code ", "status ", "http "] {
        if let Some(rest) = text.split(marker).nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(n) = digits.parse::<u16>()
                && (400..600).contains(&n)
            {
                return Some(n);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_results() {
        assert_eq!(classify(Some(0), r#"{"type":"result","is_error":false,"result":"OK"}"#, ""), Verdict::Ok);
        let rejected = r#"{"type":"result","is_error":true,"api_error_status":401,"result":"Failed to authenticate. API Error: 401"}"#;
        assert_eq!(classify(Some(1), rejected, ""), Verdict::AuthRejected("HTTP 401".into()));
        let overloaded = r#"{"is_error":true,"api_error_status":529,"result":"API Error: 529 overloaded"}"#;
        assert_eq!(classify(Some(1), overloaded, ""), Verdict::Transient("HTTP 529".into()));
        let not_logged_in = r#"{"is_error":true,"result":"Not logged in · Please run /login"}"#;
        assert!(matches!(classify(Some(1), not_logged_in, ""), Verdict::AuthRejected(_)));
    }

    #[test]
    fn text_results() {
        assert!(matches!(
            classify(Some(1), "Failed to authenticate. API Error: 401 {...}", ""),
            Verdict::AuthRejected(_)
        ));
        assert!(matches!(classify(Some(1), "", "OAuth token has expired"), Verdict::AuthRejected(_)));
        assert!(matches!(
            classify(Some(1), "API Error: 529 {\"type\":\"overloaded_error\"}", ""),
            Verdict::Transient(_)
        ));
        assert!(matches!(classify(Some(1), "API Error: 403 forbidden", ""), Verdict::AuthRejected(_)));
        assert!(matches!(classify(Some(1), "", "connect ECONNREFUSED 127.0.0.1:443"), Verdict::Transient(_)));
        assert_eq!(classify(Some(0), "OK", ""), Verdict::Ok);
    }

    #[test]
    fn an_unknown_failure_is_inconclusive_never_a_rejection() {
        assert!(matches!(classify(Some(3), "something odd", ""), Verdict::Transient(_)));
        assert!(matches!(classify(None, "", ""), Verdict::Transient(_)));
    }
}
