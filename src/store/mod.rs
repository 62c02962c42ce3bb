//! The local files this agent writes: sinks, the pid file, and the files templates
//! keep in sync.
//!
//! Every write goes through [`atomic`]; credentials files go through [`json_file`],
//! under the [`lock`]s. Nothing here writes in place or through a symlink.

pub mod atomic;
mod hook;
pub mod json_file;
pub mod lock;
