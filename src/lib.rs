//! claude-auth-sync keeps each workstation user's Claude Code login valid and
//! recoverable: it authenticates to Vault/OpenBao with the user's own identity,
//! proves the local login, backs it up, restores it on failure, and reports.
//!
//! Modules follow the config's blocks, as Vault Agent's code does: [`config`],
//! [`vault`] (client, `auto_auth` methods, sinks), [`store`] (local files),
//! [`cycle`] (one cycle), [`report`] (its outcome), [`run`] (a run of the agent as
//! the command line starts it) and [`status`] (what the agent knows, read-only).

pub mod cli_docs;
pub mod config;
pub mod cycle;
pub mod exit;
pub mod os_user;
pub mod probe;
pub mod provision;
pub mod report;
pub mod run;
pub mod runtime;
pub mod secret;
pub mod status;
pub mod store;
pub mod template;
pub mod vault;
