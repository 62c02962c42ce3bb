//! A failed Vault request, sorted by what the caller must do about it ([`VaultError`]),
//! and Vault's error text recognised where a caller must tell answers apart
//! ([`VaultSays`]): vaultrs' and reqwest's errors become these kinds here, once.
//!
//! It must never keep a response body, a token or a secret-id in an error; Vault's own
//! short error strings ("permission denied") are kept.

use std::time::Duration;

use vaultrs::error::ClientError;

/// A failed Vault request, by what the caller must do about it.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Network trouble, a timeout, a 5xx or a 429: it may pass on its own.
    #[error("Vault unreachable ({op}): {detail}")]
    Unreachable { op: &'static str, status: Option<u16>, detail: String },
    /// 401/403: the token is revoked, expired or lacks the permission.
    #[error("Vault denied {op} (HTTP {status}): {detail}")]
    Denied { op: &'static str, status: u16, detail: String, says: Option<VaultSays> },
    /// Any other 4xx: the request itself is wrong for this server.
    #[error("Vault rejected {op} (HTTP {status}): {detail}")]
    Rejected { op: &'static str, status: u16, detail: String, says: Option<VaultSays> },
    /// An answer this agent cannot read.
    #[error("unexpected answer from Vault ({op}): {detail}")]
    Protocol { op: &'static str, detail: String },
    /// The server's certificate is not trusted, or TLS failed: retrying will not help.
    #[error("TLS with Vault failed ({op}): {detail}; check vault.ca_cert and the server's certificate")]
    Tls { op: &'static str, detail: String },
    /// A request that must answer with data answered with nothing (e.g. an unknown secret-id).
    #[error("Vault answered {op} with no content")]
    Empty { op: &'static str },
    /// The client could not be built (CA file unreadable, bad certificate).
    #[error("cannot set up the Vault client: {detail}")]
    Setup { detail: String },
    /// Vault is set up in a way this agent cannot work with (a KV v1 mount, ...).
    #[error("{detail}")]
    Unsupported { detail: String },
}

impl VaultError {
    /// Trouble that may pass without anyone acting.
    pub fn is_transient(&self) -> bool {
        matches!(self, VaultError::Unreachable { .. })
    }

    /// Worth another attempt within this run: transient, but never a 4xx.
    pub fn is_retryable(&self) -> bool {
        matches!(self, VaultError::Unreachable { status, .. } if status.is_none_or(|s| s >= 500))
    }
}

/// What Vault's error text says, where a caller must act on the difference. Vault
/// answers with strings only; they are recognised here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultSays {
    /// A KV write's check-and-set was refused: another version (or metadata version)
    /// was written since the one named, or the mount requires one.
    CheckAndSet,
    /// The token presented is not one Vault knows: revoked, expired or never issued.
    BadToken,
}

impl VaultSays {
    fn recognise(detail: &str) -> Option<VaultSays> {
        if detail.contains("check-and-set") {
            Some(VaultSays::CheckAndSet)
        } else if detail.contains("bad token") {
            Some(VaultSays::BadToken)
        } else {
            None
        }
    }
}

/// Vault's `{"errors": [...]}` on a non-2xx answer, as vaultrs itself reports it.
pub(super) fn api_error(e: rustify::errors::ClientError) -> ClientError {
    if let rustify::errors::ClientError::ServerResponseError { code, content } = &e {
        let errors = content
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|v| v.get("errors").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
        if let Some(errors) = errors {
            return ClientError::APIError { code: *code, errors };
        }
    }
    ClientError::RestClientError { source: e }
}

/// Sorts a vaultrs error into what the caller must do about it.
pub(super) fn classify(op: &'static str, timeout: Duration, e: ClientError) -> VaultError {
    use rustify::errors::ClientError as Rest;
    match e {
        ClientError::APIError { code, errors } => by_status(op, code, tidy_errors(&errors)),
        ClientError::RestClientError { source } => match source {
            Rest::RequestError { source, .. } | Rest::ResponseError { source } => network(op, timeout, &source),
            Rest::ServerResponseError { code, .. } => by_status(op, code, format!("HTTP {code}")),
            // Parse errors carry the body; only their generic text is kept.
            other => VaultError::Protocol { op, detail: other.to_string() },
        },
        ClientError::ResponseEmptyError => VaultError::Empty { op },
        other => VaultError::Protocol { op, detail: other.to_string() },
    }
}

fn by_status(op: &'static str, status: u16, detail: String) -> VaultError {
    match status {
        401 | 403 => VaultError::Denied { op, status, says: VaultSays::recognise(&detail), detail },
        429 | 500..=599 => {
            VaultError::Unreachable { op, status: Some(status), detail: format!("HTTP {status}: {detail}") }
        }
        _ => VaultError::Rejected { op, status, says: VaultSays::recognise(&detail), detail },
    }
}

fn network(op: &'static str, timeout: Duration, e: &anyhow::Error) -> VaultError {
    if let Some(tls) = find_tls(e.as_ref()) {
        return VaultError::Tls { op, detail: tls.to_string() };
    }
    let detail = match e.downcast_ref::<reqwest::Error>() {
        Some(r) if r.is_timeout() => format!("no answer within {}", humantime::format_duration(timeout)),
        Some(r) if r.is_connect() => format!("cannot connect: {}", root_cause(r)),
        Some(r) => root_cause(r),
        None => e.root_cause().to_string(),
    };
    VaultError::Unreachable { op, status: None, detail }
}

/// rustls' error, wherever hyper and std::io nested it.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    // io::Error::source() skips the error it wraps; get_ref() does not.
    if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
        && let Some(tls) = find_tls(inner)
    {
        return Some(tls);
    }
    e.source().and_then(find_tls)
}

pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Vault wraps messages as "1 error occurred:\n\t* permission denied\n\n".
fn tidy_errors(errors: &[String]) -> String {
    let parts: Vec<&str> = errors
        .iter()
        .flat_map(|e| e.lines())
        .map(|l| l.trim().trim_start_matches("* ").trim())
        // Drop the "1 error occurred:" header lines.
        .filter(|l| !(l.is_empty() || l.ends_with("occurred:") && l.contains("error")))
        .collect();
    if parts.is_empty() { "no detail".into() } else { parts.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_multierror_text_is_tidied() {
        let e = vec!["1 error occurred:\n\t* permission denied\n\n".to_string()];
        assert_eq!(tidy_errors(&e), "permission denied");
        assert_eq!(tidy_errors(&["lease is not renewable".into()]), "lease is not renewable");
        assert_eq!(tidy_errors(&[]), "no detail");
    }

    #[test]
    fn vaults_words_are_recognised_once() {
        let e =
            vec!["1 error occurred:\n\t* check-and-set parameter did not match the current version\n\n".to_string()];
        let cas = by_status("KV write", 400, tidy_errors(&e));
        assert!(matches!(cas, VaultError::Rejected { says: Some(VaultSays::CheckAndSet), .. }), "{cas:?}");
        let bad = by_status("lookup", 403, "bad token".into());
        assert!(matches!(bad, VaultError::Denied { says: Some(VaultSays::BadToken), .. }), "{bad:?}");
        let denied = by_status("lookup", 403, "permission denied".into());
        assert!(matches!(denied, VaultError::Denied { says: None, .. }), "{denied:?}");
    }

    #[test]
    fn statuses_sort_into_kinds() {
        assert!(matches!(by_status("x", 403, String::new()), VaultError::Denied { .. }));
        assert!(matches!(by_status("x", 400, String::new()), VaultError::Rejected { .. }));
        let sealed = by_status("x", 503, String::new());
        assert!(sealed.is_transient() && sealed.is_retryable());
        let limited = by_status("x", 429, String::new());
        assert!(limited.is_transient() && !limited.is_retryable(), "a 4xx is never retried");
    }
}
