//! Everything that talks to Vault/OpenBao, split like Vault Agent's own code:
//! [`client`] (HTTP, TLS, timeouts, retries), `error` (what went wrong, and Vault's
//! error text recognised once), [`token`] (a token's view of itself, AppRole login),
//! [`auth`] (the `auto_auth` methods and the identity check), [`kv`] (KV v2), [`sink`]
//! (`sink "file"`).
//!
//! No function here returns, logs or formats a token, a secret-id or a response body.

pub mod auth;
pub mod client;
mod error;
pub mod kv;
pub mod sink;
pub mod token;

pub use client::Vault;
pub use error::{VaultError, VaultSays};
