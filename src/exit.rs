//! Every exit code this tool returns, in one place (sysexits.h where one fits).
//!
//! The codes are a contract: the units treat 75 as success (`SuccessExitStatus=75`),
//! an alert treats 1 as a person's job. Nothing returns a bare number.

/// The process's exit status, for the agent and the provisioner alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// The run is OK; for the provisioner, every user is fine.
    Ok = 0,
    /// FAIL: a person must act; for the provisioner, a user failed or needs an admin.
    Fail = 1,
    /// EX_USAGE: the command line is wrong; nothing was done.
    Usage = 64,
    /// EX_TEMPFAIL: DEGRADED, transient trouble that must page nobody.
    TempFail = 75,
    /// EX_NOPERM: the command needs root.
    NoPerm = 77,
    /// EX_CONFIG: the config or the roster is wrong; nothing was done.
    Config = 78,
}

impl ExitCode {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c.code())
    }
}
