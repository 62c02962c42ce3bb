//! The local files this agent writes: sinks, the pid file, and the files templates
//! keep in sync.
//!
//! Every write goes through [`atomic`]; credentials files go through [`json_file`],
//! under the [`lock`]s. Every directory is opened through [`dir`], and a file's
//! identity is a [`file_id::FileId`]. Nothing here writes in place or through a symlink.

pub mod atomic;
pub mod dir;
pub mod file_id;
mod hook;
pub mod json_file;
pub mod lock;
#[cfg(test)]
pub(crate) mod test_fs;
