//! One run of the agent, step by step as in the runbook: preflight, auth, sinks, then
//! for each template read, probe, back up or recover; the caller reports the
//! [`Outcome`]. Each step delegates to its module; this module decides what happens
//! next.
//!
//! The effects (Vault's copy, the local file, the probe, the clock) sit behind four
//! narrow traits, so that every branch of the outcome table has a unit test with
//! fakes ([`login`]'s tests); [`effects`] binds them to the real things.
//!
//! It must never let auth trouble skip the local check, nor one template's trouble
//! skip another template.

mod effects;
mod lineage;
mod login;
mod rendered;
mod trouble;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::{Config, EnvShadowing, TemplateConfig, TemplateKind};
use crate::probe::{SHADOWING_ENV, Verdict};
use crate::report::{self, Action, Outcome, Reason};
use crate::store::json_file::{LocalError, ReplaceOutcome, Replaced, Snapshot};
use crate::vault::kv::{Versioned, Written};
use crate::vault::{Vault, auth, sink};

pub use trouble::{Phase, Trouble};

/// Vault's copy of one template's secret.
#[allow(async_fn_in_trait, reason = "the agent runs on a current-thread runtime: no Send bound is needed")]
pub trait Remote {
    /// The latest version, `None` when there is none.
    async fn latest(&self) -> Result<Option<Versioned>, Trouble>;
    /// Writes the version if the latest is still its `cas`, then records its metadata.
    async fn write(&self, new: NewVersion<'_>) -> Result<Written, Trouble>;
}

/// A version of a template's secret to write.
#[derive(Debug, Clone, Copy)]
pub struct NewVersion<'a> {
    pub data: &'a Map<String, Value>,
    /// The version it must replace (check-and-set); 0 when there is none.
    pub cas: u64,
    /// The custom_metadata to record once it is written: the lineage.
    pub meta: &'a HashMap<String, String>,
}

/// The template's local file.
pub trait Local {
    fn read(&self) -> Result<Snapshot, LocalError>;
    fn replace(&self, obj: &Map<String, Value>, expected: &Snapshot) -> Result<ReplaceOutcome, LocalError>;
    fn rollback(&self, replaced: &Replaced) -> Result<bool, LocalError>;
}

/// Proves a login with a real inference call.
#[allow(async_fn_in_trait, reason = "the agent runs on a current-thread runtime: no Send bound is needed")]
pub trait Prober {
    async fn probe(&self, obj: &Map<String, Value>) -> Verdict;
}

pub trait Clock {
    /// Milliseconds since the epoch, the unit of `expiresAt`.
    fn now_ms(&self) -> u64;
}

/// Runs every step once. `env` answers whether a variable is set in the agent's environment.
pub async fn run_once(cfg: &Config, env: &dyn Fn(&str) -> bool) -> Outcome {
    // Preflight: a credential variable outranks the per-user login in Claude Code.
    let shadowing: Vec<&str> = SHADOWING_ENV.into_iter().filter(|v| env(v)).collect();
    if !shadowing.is_empty() {
        let msg = format!(
            "{} set in the environment outranks the per-user login in Claude Code; it is kept out of the probe, unset it in the user's environment",
            shadowing.join(", ")
        );
        if cfg.env_shadowing == EnvShadowing::Fail {
            return Outcome::fail(Reason::EnvShadowing, msg);
        }
        tracing::warn!("{msg}");
    }

    // Auth: this user's own token, renewed and identity-checked. Trouble here does not
    // stop the local check: each template decides what it means.
    let mut token_ttl = None;
    let (vault, mut outcome) = match authenticate(cfg).await {
        Ok((vault, authed)) => {
            token_ttl = Some(authed.ttl);
            let o = Outcome::ok(Action::Authenticated)
                .fact("auth", authed.method)
                .fact("token_ttl", report::duration(authed.ttl))
                .fact("token_renewable", authed.renewable.to_string());
            // Sinks: hand the token to the user's other programs.
            match sink::write_all(&cfg.auto_auth.sinks, &authed.token) {
                Ok(()) => (Ok(vault), o),
                Err(e) => (Ok(vault), Outcome::fail(Reason::SinkWriteFailed, e.to_string())),
            }
        }
        Err(trouble) => {
            let o = trouble.outcome(Phase::Backup);
            (Err(trouble), o)
        }
    };

    if !cfg.exit_after_auth && !cfg.templates.is_empty() {
        let several = cfg.templates.len() > 1;
        let mut outcomes = Vec::with_capacity(cfg.templates.len());
        for t in &cfg.templates {
            let o = sync_template(t, vault.as_ref().map_err(Clone::clone)).await;
            // The line reports the worst template: it says which, and what each one did.
            outcomes.push(if several { o.fact("template", t.name.clone()) } else { o });
        }
        let each = several.then(|| outcomes.iter().map(Outcome::in_a_word).collect::<Vec<_>>().join(","));
        let mut templates = outcomes.into_iter().reduce(Outcome::worst).expect("at least one template");
        if let Some(each) = each {
            templates = templates.fact("templates", each);
        }
        templates.facts.extend(outcome.facts.iter().cloned());
        // Auth trouble shaped every template's outcome, but an inconclusive probe must not
        // hide a FAIL that needs an admin; nor may it hide a sink failure.
        outcome = templates.worst(outcome);
    }
    if !shadowing.is_empty() {
        outcome = outcome.fact("env_shadowing", shadowing.join(","));
    }
    outcome.token_ttl = token_ttl;
    outcome
}

async fn authenticate(cfg: &Config) -> Result<(Vault, auth::Authenticated), Trouble> {
    let mut vault = Vault::new(&cfg.vault).map_err(Trouble::from)?;
    let authed = auth::authenticate(&cfg.auto_auth, &mut vault).await.map_err(Trouble::from)?;
    Ok((vault, authed))
}

async fn sync_template(t: &TemplateConfig, vault: Result<&Vault, Trouble>) -> Outcome {
    let remote = effects::VaultRemote::new(t, vault);
    match &t.kind {
        TemplateKind::Json(j) => {
            let local = effects::local_file(t, j);
            let prober = effects::ProbeRunner { probe: &j.probe, clock: &effects::SystemClock };
            login::sync(&login::Binding { template: t, json: j }, &remote, &local, &prober, &effects::SystemClock).await
        }
        TemplateKind::Render(r) => rendered::sync(t, r, &remote).await,
    }
}
