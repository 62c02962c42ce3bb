//! The harness of the integration tests, split by what it fakes or drives. No Vault
//! is mocked here: [`bao`] starts real OpenBao servers. [`claude`] is the other side of
//! the credentials file (a stand-in CLI, and the real one offline). [`agent`] runs the
//! binary under test, as one user with their own Vault identity. [`secrets`] registers
//! every fixture secret and scans every captured output for them. [`users`] makes
//! throwaway OS users, [`machine`] boots a real systemd in namespaces, [`hooks`] steps
//! through the agent's write path, [`alerting`] evaluates the Loki rules, [`promtool`]
//! checks the Prometheus rules and the metrics file. [`tools`] stands in for other
//! tools' CLIs (Codex, gcloud) and their endpoints. [`files`],
//! [`net`], [`http1`] and [`hcl`] (a writer for the configs) are the small tools
//! underneath.

#[macro_use]
pub mod secrets;
pub mod agent;
pub mod alerting;
pub mod bao;
pub mod claude;
pub mod files;
pub mod hcl;
pub mod hooks;
pub mod http1;
pub mod machine;
pub mod net;
pub mod promtool;
pub mod tools;
pub mod users;
