//! The agent under test: runs of its binary ([`run`]), its report line parsed into
//! fields ([`report`]), its config built from named parts ([`config`]), and one user
//! of it with their own Vault identity and a stand-in CLI ([`user`]).

pub mod config;
pub mod report;
pub mod run;
pub mod user;
