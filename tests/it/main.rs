//! The integration tests: one binary, one module per topic, the shared harness in
//! [`common`]. Each topic's doc comment says what it proves. Run one topic with
//! `scripts/test.sh --test it sync::` (any test-name filter works), one test with
//! `scripts/test.sh --test it sync::a_valid_login -- --exact` for its full path.
//!
//! Tests on the shared OpenBao dev server ([`common::bao::bao`]) use their own users,
//! tokens, mounts and paths; a test that stops or seals a server starts its own.

#[macro_use]
mod common;

mod alerting;
mod auto_auth;
mod config_errors;
mod crash;
mod degraded;
mod faults;
mod ha;
mod hostile;
mod kv;
mod provision;
mod races;
mod real_cli;
mod sync;
mod systemd;
mod units;
