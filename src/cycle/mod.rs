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
pub mod seen;
mod trouble;

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::config::{Config, EnvShadowing, TemplateConfig, TemplateKind};
use crate::probe::{SHADOWING_ENV, Verdict};
use crate::report::{self, Action, Outcome, Reason};
use crate::store::json_file::{LocalError, ReplaceOutcome, Replaced, Snapshot};
use crate::vault::kv::{Versioned, Written};
use crate::vault::{Vault, auth, sink};

pub use seen::{FileView, Observed};
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
    let shadowing = match preflight(cfg, env) {
        Ok(s) => s,
        Err(o) => return o,
    };
    // Auth: this user's own token, renewed and identity-checked. Trouble here does not
    // stop the local check: each template decides what it means.
    let auth = authenticate(cfg).await;
    let session = auth.as_ref().map(|(vault, authed)| (vault, authed)).map_err(Clone::clone);
    run_steps(cfg, &shadowing, session, &Observed::new(cfg.templates.len())).await
}

/// One cycle of a resident agent, which keeps its token alive between cycles: the
/// steps after auth with `session` (the kept client and what its last renewal said, or
/// why there is none); `seen` learns the probes run and what each file held.
pub async fn run_in_session(
    cfg: &Config,
    env: &dyn Fn(&str) -> bool,
    session: Result<(&Vault, &auth::Authenticated), Trouble>,
    seen: &Observed,
) -> Outcome {
    match preflight(cfg, env) {
        Ok(shadowing) => run_steps(cfg, &shadowing, session, seen).await,
        Err(o) => o,
    }
}

/// A credential variable outranks the per-user login in Claude Code: the variables
/// set, or the outcome when the config makes that a failure.
fn preflight(cfg: &Config, env: &dyn Fn(&str) -> bool) -> Result<Vec<&'static str>, Outcome> {
    let shadowing: Vec<&str> = SHADOWING_ENV.into_iter().filter(|v| env(v)).collect();
    if !shadowing.is_empty() {
        let msg = format!(
            "{} set in the environment outranks the per-user login in Claude Code; it is kept out of the probe, unset it in the user's environment",
            shadowing.join(", ")
        );
        if cfg.env_shadowing == EnvShadowing::Fail {
            return Err(Outcome::fail(Reason::EnvShadowing, msg));
        }
        tracing::warn!("{msg}");
    }
    Ok(shadowing)
}

/// Sinks, then every template, with the session auth left (or its trouble).
async fn run_steps(
    cfg: &Config,
    shadowing: &[&str],
    session: Result<(&Vault, &auth::Authenticated), Trouble>,
    seen: &Observed,
) -> Outcome {
    let token_ttl = session.as_ref().ok().map(|(_, authed)| authed.ttl);
    let (vault, mut outcome) = match session {
        Ok((vault, authed)) => {
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
        for (t, file) in cfg.templates.iter().zip(&seen.files) {
            let o = sync_template(t, vault.clone(), file).await;
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

/// A new client, authenticated by the configured method.
pub async fn authenticate(cfg: &Config) -> Result<(Vault, auth::Authenticated), Trouble> {
    let mut vault = Vault::new(&cfg.vault).map_err(Trouble::from)?;
    let authed = auth::authenticate(&cfg.auto_auth, &mut vault).await.map_err(Trouble::from)?;
    Ok((vault, authed))
}

async fn sync_template(
    t: &TemplateConfig,
    vault: Result<&Vault, Trouble>,
    seen: &RefCell<Option<FileView>>,
) -> Outcome {
    let remote = effects::VaultRemote::new(t, vault);
    match &t.kind {
        TemplateKind::Json(j) => {
            let local = seen::Recording { inner: effects::local_file(t, j), last: seen };
            let prober = effects::ProbeRunner { probe: &j.probe, clock: &effects::SystemClock };
            login::sync(&login::Binding { template: t, json: j }, &remote, &local, &prober, &effects::SystemClock).await
        }
        TemplateKind::Render(r) => rendered::sync(t, r, &remote).await,
    }
}
