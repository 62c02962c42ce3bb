//! What a `template` block means for the bytes of its file: which JSON subtree is the
//! synced object ([`json`]), what that object says about the login ([`oauth`]), and
//! how a whole file is rendered from a secret ([`render`]).
//!
//! Nothing here touches the disk or Vault: reading and writing are [`crate::store`]'s,
//! deciding is [`crate::cycle`]'s.

pub mod json;
pub mod oauth;
pub mod render;
