//! The integration tests: one binary, one module per topic, the shared harness in
//! [`common`]. Each topic's doc comment says what it proves. Run one topic with
//! `scripts/test.sh --test it sync::` (any substring of the test names works: a
//! module path such as `provision::hostile::`, or a test's name), one test alone with
//! `scripts/test.sh --test it -- --exact sync::a_valid_login_is_ok_and_...` (its full
//! name).
//!
//! Tests on the shared OpenBao dev server ([`common::bao::bao`]) use their own users,
//! tokens, mounts and paths; a test that stops or seals a server starts its own.

#[macro_use]
mod common;

mod alerting;
mod auto_auth;
mod config_errors;
mod config_toml;
mod crash;
mod degraded;
mod examples;
mod faults;
mod ha;
mod help;
mod hostile;
mod kv;
mod metrics;
mod package;
mod provision;
mod races;
mod real_cli;
mod resident;
mod status;
mod sync;
mod systemd;
mod units;
