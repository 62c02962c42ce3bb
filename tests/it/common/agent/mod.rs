//! The agent under test: runs of its binary ([`run`]) and one user of it with their
//! own Vault identity and a stand-in CLI ([`user`]).

pub mod run;
pub mod user;
