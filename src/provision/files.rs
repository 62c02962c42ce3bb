//! The names of the files the provisioner keeps in each user's agent directory
//! (`~/.config/claude-auth-sync`), and which of them each auth mode uses.
//!
//! Names only: nothing here opens, reads or writes a file (that is [`super::home`]).

use super::roster::AuthMode;

pub const TOKEN_FILE: &str = "vault-token";
pub const ROLE_ID_FILE: &str = "role-id";
pub const SECRET_ID_FILE: &str = "secret-id";
/// The token of the agent's AppRole login, kept by the agent between runs.
pub const APPROLE_TOKEN_FILE: &str = "approle-token";
pub const CONFIG_FILE: &str = "config.hcl";

/// The files that hold a user's credential in `auth` mode.
pub fn cred_files(auth: AuthMode) -> &'static [&'static str] {
    match auth {
        AuthMode::Token => &[TOKEN_FILE],
        AuthMode::Approle => &[ROLE_ID_FILE, SECRET_ID_FILE],
    }
}

/// Every file `auth` mode leaves in the home: the credential and the agent's kept login.
pub fn mode_files(auth: AuthMode) -> &'static [&'static str] {
    match auth {
        AuthMode::Token => &[TOKEN_FILE],
        AuthMode::Approle => &[ROLE_ID_FILE, SECRET_ID_FILE, APPROLE_TOKEN_FILE],
    }
}
