//! The Vault token of a resident agent, kept alive in-process as Vault Agent's lifetime
//! watcher keeps its own: authenticated once (one AppRole login per process life, a
//! kept token reused as by the timer runs), renewed at about two thirds of its TTL with
//! jitter, retried with backoff while Vault is away, and replaced by a new
//! authentication only when Vault no longer takes it.
//!
//! It must never log in while the kept token still works, nor hold a token that failed
//! the identity check: a full cycle checks it again exactly as a timer run does.

use std::time::Duration;

use tokio::time::Instant;

use super::schedule::{jittered, retry_pause};
use crate::config::Config;
use crate::cycle::{self, Trouble};
use crate::vault::auth::{self, AuthError, Authenticated};
use crate::vault::{Vault, VaultError};

/// How strictly a cycle wants the token judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The token as the last renewal left it (a cycle started by a file change).
    Kept,
    /// Looked up, identity-checked and renewed, as a timer run does (a full cycle).
    Full,
}

struct Session {
    vault: Vault,
    authed: Authenticated,
    /// When the TTL of the last renewal (or login) runs out.
    expires: Instant,
}

#[derive(Default)]
pub struct Lifetime {
    session: Option<Session>,
    /// When the token is renewed next; `None` without a session.
    due: Option<Instant>,
    /// Renewals that failed in a row.
    failures: u32,
}

impl Lifetime {
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Forgets the token (the config's Vault or auth changed); the next cycle authenticates.
    pub fn reset(&mut self) {
        *self = Lifetime::default();
    }

    /// The client for a cycle, with the TTL left; a new authentication when there is none.
    pub async fn session(&mut self, cfg: &Config, check: Check) -> Result<(&Vault, &Authenticated), Trouble> {
        let now = Instant::now();
        if self.session.as_ref().is_some_and(|s| s.authed.renewable && s.expires <= now) {
            self.session = None;
        }
        match (&mut self.session, check) {
            (None, _) => self.authenticate(cfg).await?,
            (Some(s), Check::Full) => match auth::reverify(&cfg.auto_auth, &s.vault).await {
                Ok(info) => {
                    s.authed.ttl = info.ttl;
                    s.authed.renewable = info.renewable;
                    s.expires = now + info.ttl;
                    // Looked up, not renewed: the renewal already scheduled stays.
                    if self.due.is_none() {
                        self.due = Some(next_renewal(now, info.ttl));
                    }
                }
                // Vault away: the kept token stays for when it is back.
                Err(AuthError::Vault(e)) if e.is_transient() => return Err(Trouble::from(AuthError::Vault(e))),
                Err(e) => {
                    tracing::warn!("the kept Vault token is no longer fit ({e}); authenticating again");
                    self.session = None;
                    self.authenticate(cfg).await?;
                }
            },
            (Some(_), Check::Kept) => {}
        }
        let s = self.session.as_mut().expect("a session");
        if s.authed.renewable {
            s.authed.ttl = s.expires.saturating_duration_since(Instant::now());
        }
        Ok((&s.vault, &s.authed))
    }

    async fn authenticate(&mut self, cfg: &Config) -> Result<(), Trouble> {
        let now = Instant::now();
        match cycle::authenticate(cfg).await {
            Ok((vault, authed)) => {
                self.due = Some(next_renewal(now, authed.ttl));
                self.failures = 0;
                let expires = now + authed.ttl;
                self.session = Some(Session { vault, authed, expires });
                Ok(())
            }
            Err(t) => {
                self.session = None;
                self.due = None;
                Err(t)
            }
        }
    }

    /// Renews the token now (its time has come); on trouble, plans the next try.
    pub async fn renew(&mut self, cfg: &Config) {
        let now = Instant::now();
        let Some(s) = &mut self.session else {
            // An earlier renewal failed and so did the new authentication: try again.
            if self.authenticate(cfg).await.is_err() {
                self.retry_later(now, cfg);
            }
            return;
        };
        if !s.authed.renewable {
            // Root-like tokens expire; a new authentication reads the token afresh.
            tracing::info!("the Vault token cannot be renewed; authenticating again");
            self.session = None;
            if self.authenticate(cfg).await.is_err() {
                self.retry_later(now, cfg);
            }
            return;
        }
        let backoff = s.vault.default_backoff();
        match s.vault.renew_self(backoff).await {
            Ok(info) => {
                tracing::debug!("renewed the Vault token for {}", humantime::format_duration(info.ttl));
                s.authed.ttl = info.ttl;
                s.expires = now + info.ttl;
                self.failures = 0;
                self.due = Some(next_renewal(now, info.ttl));
            }
            Err(e @ (VaultError::Denied { .. } | VaultError::Rejected { .. })) => {
                tracing::warn!("Vault would not renew the token ({e}); authenticating again");
                self.session = None;
                if let Err(t) = self.authenticate(cfg).await {
                    let why = t.outcome(cycle::Phase::Backup).message.unwrap_or_default();
                    tracing::warn!("could not authenticate to Vault again: {why}");
                    self.retry_later(now, cfg);
                }
            }
            Err(e) => {
                tracing::warn!("could not renew the Vault token: {e}");
                self.retry_later(now, cfg);
            }
        }
    }

    /// The next try after a failure: backed off with jitter, and never past the token's end.
    fn retry_later(&mut self, now: Instant, cfg: &Config) {
        self.failures += 1;
        let pause = retry_pause(self.failures, cfg.auto_auth.min_backoff, cfg.auto_auth.max_backoff);
        let end = self.session.as_ref().map(|s| s.expires);
        self.due = Some(match end {
            Some(end) if end > now => (now + pause).min(end),
            // No token left to renew: a new authentication at the pause's end.
            _ => now + pause,
        });
    }
}

/// About two thirds of the TTL from `now`, less up to a tenth of it as jitter, so that
/// agents started together spread out; `None`-like far future for a token without TTL.
fn next_renewal(now: Instant, ttl: Duration) -> Instant {
    if ttl.is_zero() {
        // No expiry: nothing to renew until the next full cycle looks at it again.
        return now + Duration::from_secs(365 * 24 * 3600);
    }
    now + jittered(ttl * 2 / 3, 0.1)
}
