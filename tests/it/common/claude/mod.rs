//! Claude Code, the other side of the credentials file: a stand-in CLI for the cycle's
//! tests ([`stand_in`]), and the real, pinned CLI kept offline by a mock Messages API
//! and an intercepted token endpoint ([`real`]). Only the inference API and the token
//! endpoint are ever mocked.

pub mod real;
pub mod stand_in;
