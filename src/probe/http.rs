//! `probe "http"`: one direct Messages API call with the local access token
//! (`max_tokens` 1), the way Claude Code authenticates. It cannot refresh a token, so
//! an access token past its expiry is inconclusive, not rejected.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Verdict;

/// Claude Code treats a token as expired this long before `expiresAt`.
const EXPIRY_MARGIN_MS: u64 = 5 * 60 * 1000;

pub async fn run(base: &url::Url, model: &str, timeout: Duration, obj: &Map<String, Value>, now_ms: u64) -> Verdict {
    let Some(token) = obj.get("accessToken").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return Verdict::AuthRejected("the object holds no access token".into());
    };
    if obj.get("expiresAt").and_then(Value::as_u64).is_some_and(|e| now_ms + EXPIRY_MARGIN_MS >= e) {
        return Verdict::Transient("the access token has expired and the http probe cannot refresh it".into());
    }
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => return Verdict::Broken(format!("cannot set up the http probe: {e}")),
    };
    let url = format!("{}/v1/messages", base.as_str().trim_end_matches('/'));
    let body = json!({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Reply with OK"}]});
    let sent = client
        .post(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("anthropic-beta", "oauth-2025-04-20")
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(resp) => match resp.status().as_u16() {
            200..=299 => Verdict::Ok,
            s @ (401 | 403) => Verdict::AuthRejected(format!("HTTP {s}")),
            s => Verdict::Transient(format!("HTTP {s}")),
        },
        Err(e) if e.is_timeout() => {
            Verdict::Transient(format!("no answer within {}", humantime::format_duration(timeout)))
        }
        Err(e) => Verdict::Transient(format!("cannot reach {}: {}", base, e.without_url())),
    }
}
