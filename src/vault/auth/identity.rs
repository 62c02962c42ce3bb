//! The one identity check, shared by the agent (before a token is renewed or used) and
//! the provisioner (before it keeps a user's credential): a token carries exactly the
//! policies `expect` lists and every meta pair it names, or [`Drift`] says what differs.
//!
//! It must never look at anything but what Vault said about the token (policies, meta):
//! never the token itself, which no message may hold.

use std::fmt;

use crate::config::Expect;
use crate::vault::token::TokenInfo;

/// How a token's identity differs from what `expect` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Expected policies the token does not have.
    pub lacks: Vec<String>,
    /// Policies the token has that `expect` does not list.
    pub also_grants: Vec<String>,
    pub meta: Vec<MetaDrift>,
}

/// An expected meta pair the token does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaDrift {
    pub key: String,
    pub expected: String,
    /// `None`: the token has no such key.
    pub found: Option<String>,
}

/// Exactly the expected policies (when `expect` lists any; `default` counts like any
/// other) and every expected meta pair.
pub fn check_identity(expect: &Expect, token: &TokenInfo) -> Result<(), Drift> {
    let (lacks, also_grants) = if expect.policies.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let missing_from = |have: &[String], want: &[String]| -> Vec<String> {
            want.iter().filter(|p| !have.contains(p)).cloned().collect()
        };
        (missing_from(&token.policies, &expect.policies), missing_from(&expect.policies, &token.policies))
    };
    let meta: Vec<MetaDrift> = expect
        .meta
        .iter()
        .filter(|(k, want)| token.meta.get(*k) != Some(want))
        .map(|(k, want)| MetaDrift { key: k.clone(), expected: want.clone(), found: token.meta.get(k).cloned() })
        .collect();
    if lacks.is_empty() && also_grants.is_empty() && meta.is_empty() {
        Ok(())
    } else {
        Err(Drift { lacks, also_grants, meta })
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut problems = Vec::new();
        if !self.lacks.is_empty() {
            problems.push(format!("policies lack {}", self.lacks.join(", ")));
        }
        if !self.also_grants.is_empty() {
            problems.push(format!("policies also grant {}, which expect does not list", self.also_grants.join(", ")));
        }
        for m in &self.meta {
            problems.push(match &m.found {
                Some(have) => format!("meta {} is \"{have}\", expected \"{}\"", m.key, m.expected),
                None => format!("meta {} is missing, expected \"{}\"", m.key, m.expected),
            });
        }
        f.write_str(&problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(policies: &[&str], meta: &[(&str, &str)]) -> TokenInfo {
        TokenInfo {
            accessor: String::new(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ttl: Duration::from_secs(60),
            renewable: true,
            expires_at: None,
        }
    }

    fn expect(policies: &[&str], meta: &[(&str, &str)]) -> Expect {
        Expect {
            policies: policies.iter().map(|p| p.to_string()).collect(),
            meta: meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn drift(e: &Expect, t: &TokenInfo) -> String {
        check_identity(e, t).unwrap_err().to_string()
    }

    #[test]
    fn identity_matches_exactly_the_expected_policies() {
        let e = expect(&["claude-auth-sync-alice"], &[("os_user", "alice")]);
        assert!(check_identity(&e, &id(&["claude-auth-sync-alice"], &[("os_user", "alice"), ("x", "y")])).is_ok());
        assert!(check_identity(&Expect::default(), &id(&["anything"], &[])).is_ok(), "no expect, no check");
        let err = drift(&e, &id(&["claude-auth-sync-alice", "claude-auth-sync-bob"], &[("os_user", "alice")]));
        assert!(err.contains("policies also grant claude-auth-sync-bob"), "{err}");
        let err = drift(&e, &id(&["default", "claude-auth-sync-alice"], &[("os_user", "alice")]));
        assert!(err.contains("also grant default"), "{err}");
        let with_default = expect(&["claude-auth-sync-alice", "default"], &[]);
        assert!(check_identity(&with_default, &id(&["default", "claude-auth-sync-alice"], &[])).is_ok());
    }

    #[test]
    fn drift_names_what_differs() {
        let e = expect(&["claude-auth-sync-alice"], &[("os_user", "alice")]);
        let err = drift(&e, &id(&["claude-auth-sync-bob"], &[("os_user", "bob")]));
        assert!(err.contains("policies lack claude-auth-sync-alice"), "{err}");
        assert!(err.contains("meta os_user is \"bob\", expected \"alice\""), "{err}");
        let err = drift(&e, &id(&["claude-auth-sync-alice"], &[]));
        assert!(err.contains("meta os_user is missing"), "{err}");
        let d = check_identity(&e, &id(&["claude-auth-sync-bob"], &[("os_user", "bob")])).unwrap_err();
        assert_eq!(d.lacks, ["claude-auth-sync-alice"]);
        assert_eq!(d.also_grants, ["claude-auth-sync-bob"]);
        assert_eq!(d.meta[0].found.as_deref(), Some("bob"));
    }

    #[test]
    fn every_difference_is_listed_in_one_line() {
        let e = expect(&["p"], &[("a", "1"), ("b", "2")]);
        assert_eq!(
            drift(&e, &id(&["q"], &[("a", "9")])),
            "policies lack p; policies also grant q, which expect does not list; meta a is \"9\", expected \"1\"; meta b is missing, expected \"2\""
        );
    }
}
