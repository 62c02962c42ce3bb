//! One run of the agent, step by step as in the runbook. Each step delegates to its
//! module; this file only decides what happens next and which [`Outcome`] results.
//!
//! Until the sync cycle lands, a run is: auth (get, renew and check the token), then
//! the sinks.

use crate::config::Config;
use crate::report::{self, Outcome, Reason};
use crate::vault::auth::{self, AuthError};
use crate::vault::{Vault, VaultError, sink};

pub async fn run_once(cfg: &Config) -> Outcome {
    // Auth: this user's own token, renewed, identity checked.
    let mut vault = match Vault::new(&cfg.vault) {
        Ok(v) => v,
        Err(e) => return vault_outcome(e),
    };
    let authed = match auth::authenticate(&cfg.auto_auth, &mut vault).await {
        Ok(a) => a,
        Err(e) => return auth_outcome(e),
    };

    // Sinks: hand the token to the user's other programs.
    if let Err(e) = sink::write_all(&cfg.auto_auth.sinks, &authed.token) {
        return Outcome::fail(Reason::SinkWriteFailed, e.to_string());
    }

    Outcome::ok("authenticated")
        .fact("auth", authed.method)
        .fact("token_ttl", report::duration(authed.ttl))
        .fact("token_renewable", authed.renewable.to_string())
        .fact("sinks", cfg.auto_auth.sinks.len().to_string())
}

fn auth_outcome(e: AuthError) -> Outcome {
    match e {
        AuthError::Credential(c) => Outcome::fail(Reason::VaultCredentialUnusable, c.to_string()),
        e @ AuthError::Invalid(_) => Outcome::fail(Reason::VaultTokenInvalid, e.to_string()),
        e @ AuthError::Drift(_) => Outcome::fail(Reason::VaultTokenDrift, e.to_string()),
        AuthError::Vault(v) => vault_outcome(v),
    }
}

fn vault_outcome(e: VaultError) -> Outcome {
    match e {
        e if e.is_transient() => Outcome::degraded(Reason::VaultUnreachable, e.to_string()),
        e @ VaultError::Tls { .. } => Outcome::fail(Reason::VaultTlsError, e.to_string()),
        e => Outcome::fail(Reason::VaultError, e.to_string()),
    }
}
