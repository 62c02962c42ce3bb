//! The local files this agent writes: sinks, the pid file, and (with the templates)
//! credentials files.
//!
//! Every write goes through [`atomic::replace`]; nothing here writes in place.

pub mod atomic;
