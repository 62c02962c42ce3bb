//! Why Vault could not help this run, carried from auth into every template, and what
//! that means for the outcome: while backing up a working login, unreachable is only
//! `DEGRADED`; while recovering a broken one it is `FAIL`.

use crate::report::{Action, Outcome, Reason};
use crate::vault::VaultError;
use crate::vault::auth::AuthError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    Unreachable(String),
    TokenInvalid(String),
    TokenDrift(String),
    CredentialUnusable(String),
    /// 403 on the secret: the policy does not cover the path.
    Denied(String),
    Tls(String),
    /// Vault's data for the secret is not what a template expects.
    DataInvalid(String),
    Broken(String),
}

/// The step Vault was needed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The local login works; Vault would only receive a backup.
    Backup,
    /// The local login is broken; only Vault's copy could mend it.
    Recovery,
}

impl Trouble {
    pub fn outcome(&self, phase: Phase) -> Outcome {
        match (self, phase) {
            (Trouble::Unreachable(m), Phase::Backup) => {
                Outcome::degraded(Reason::VaultUnreachable, format!("{m}; the backup is pending"))
                    .action(Action::BackupPending)
            }
            (Trouble::Unreachable(m), Phase::Recovery) => Outcome::fail(
                Reason::VaultUnreachableDuringRecovery,
                format!("the local login is rejected and Vault is unreachable: {m}"),
            ),
            (Trouble::TokenInvalid(m), _) => Outcome::fail(Reason::VaultTokenInvalid, m.clone()),
            (Trouble::TokenDrift(m), _) => Outcome::fail(Reason::VaultTokenDrift, m.clone()),
            (Trouble::CredentialUnusable(m), _) => Outcome::fail(Reason::VaultCredentialUnusable, m.clone()),
            (Trouble::Denied(m), _) => Outcome::fail(
                Reason::VaultPermissionDenied,
                format!("{m}; this user's policy does not cover the secret: an admin re-runs the provisioner"),
            ),
            (Trouble::Tls(m), _) => Outcome::fail(Reason::VaultTlsError, m.clone()),
            (Trouble::DataInvalid(m), _) => Outcome::fail(Reason::VaultDataInvalid, m.clone()),
            (Trouble::Broken(m), _) => Outcome::fail(Reason::VaultError, m.clone()),
        }
    }
}

impl From<VaultError> for Trouble {
    fn from(e: VaultError) -> Self {
        let m = e.to_string();
        match e {
            VaultError::Unreachable { .. } => Trouble::Unreachable(m),
            VaultError::Denied { .. } => Trouble::Denied(m),
            VaultError::Tls { .. } => Trouble::Tls(m),
            VaultError::Rejected { .. }
            | VaultError::Protocol { .. }
            | VaultError::Setup { .. }
            | VaultError::Unsupported { .. }
            | VaultError::Empty { .. } => Trouble::Broken(m),
        }
    }
}

impl From<AuthError> for Trouble {
    fn from(e: AuthError) -> Self {
        let m = e.to_string();
        match e {
            AuthError::Credential(_) => Trouble::CredentialUnusable(m),
            AuthError::Invalid(_) => Trouble::TokenInvalid(m),
            AuthError::Drift(_) => Trouble::TokenDrift(m),
            AuthError::Vault(v) => v.into(),
        }
    }
}
