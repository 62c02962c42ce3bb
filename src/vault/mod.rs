//! Everything that talks to Vault/OpenBao, split like Vault Agent's own code:
//! [`client`] (HTTP, TLS, timeouts, retries), [`token`] (a token's view of itself,
//! AppRole login), [`auth`] (the `auto_auth` methods and the identity check), [`kv`]
//! (KV v2), [`sink`] (`sink "file"`).
//!
//! No function here returns, logs or formats a token, a secret-id or a response body.

pub mod auth;
pub mod client;
pub mod kv;
pub mod sink;
pub mod token;

pub use client::Vault;

/// A failed Vault request, by what the caller must do about it.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Network trouble, a timeout, a 5xx or a 429: it may pass on its own.
    #[error("Vault unreachable ({op}): {detail}")]
    Unreachable { op: &'static str, status: Option<u16>, detail: String },
    /// 401/403: the token is revoked, expired or lacks the permission.
    #[error("Vault denied {op} (HTTP {status}): {detail}")]
    Denied { op: &'static str, status: u16, detail: String },
    /// Any other 4xx: the request itself is wrong for this server.
    #[error("Vault rejected {op} (HTTP {status}): {detail}")]
    Rejected { op: &'static str, status: u16, detail: String },
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
