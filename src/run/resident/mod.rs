//! `claude-auth-sync run` without `--once`: the resident sidecar. One process per user
//! that runs the same cycle as a timer run, but at the moment it matters: a file
//! change (seen through [`watch`], debounced) is acted on at once, a full cycle runs
//! every `resident.interval` with jitter, the Vault token is kept alive in-process
//! ([`lifetime`]), probes of changed logins are paced ([`schedule`]), and systemd is
//! told when it is ready ([`notify`]); a cycle that left its backup pending because
//! Vault was away runs again with backoff. SIGHUP reloads the config (an invalid one is
//! refused, the old one kept); SIGTERM and SIGINT end it with exit 0.
//!
//! It must never poll: between events it sleeps until the next renewal or full cycle.
//! It must never stop in the middle of a write (file writes are synchronous, so a stop
//! lands between them), and never start a cycle for its own writes.

mod lifetime;
mod notify;
mod schedule;
mod watch;

use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::Instant;

use lifetime::{Check, Lifetime};
use notify::Notifier;
use schedule::{Probes, Retries, jittered};
use watch::Watcher;

use crate::config::{Config, ConfigError};
use crate::cycle::{self, FileView, Observed, seen};
use crate::report::state::Pace;
use crate::report::{self, Outcome, Reason, Status};

/// Reloads the config from where it was loaded (the command line's path).
pub type Reload<'a> = dyn Fn() -> Result<Config, ConfigError> + 'a;

/// Runs until SIGTERM or SIGINT.
pub async fn run(cfg: Config, reload: &Reload<'_>) -> std::io::Result<()> {
    let notifier = Arc::new(Notifier::from_env());
    if let Some(every) = Notifier::watchdog_every() {
        let n = Arc::clone(&notifier);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                n.send("WATCHDOG=1");
            }
        });
    }
    let watcher = match Watcher::new() {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("cannot watch files ({e}); only the full cycles run");
            None
        }
    };
    let signals = Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
    };
    let n = cfg.templates.len();
    let mut agent = Agent {
        cfg,
        reload,
        watcher,
        signals,
        lifetime: Lifetime::default(),
        seen: vec![None; n],
        dirty: vec![false; n],
        settle: None,
        deferred: None,
        next_full: Instant::now(),
        reloaded: false,
        probes: Probes::default(),
        retries: Retries::default(),
        notifier,
    };
    agent.rewatch();
    agent.serve().await;
    Ok(())
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn poll_stop(&mut self, cx: &mut std::task::Context<'_>) -> Option<&'static str> {
        if self.term.poll_recv(cx).is_ready() {
            return Some("SIGTERM");
        }
        self.int.poll_recv(cx).is_ready().then_some("SIGINT")
    }
}

/// What woke the agent.
enum Wake {
    Stop(&'static str),
    Reload,
    Changed(Vec<usize>),
    Timer,
}

/// Why a cycle runs; the report line's `trigger`.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// The first cycle, or `resident.interval` has passed: judged as a timer run.
    Full,
    /// A config reloaded by SIGHUP: a full cycle too.
    Reload,
    /// A broken file (blanked, clobbered, removed) or a rendered file changed.
    FileBroken,
    /// A whole login changed (a refresh, a new login): probed, then backed up.
    FileChanged,
    /// The last cycle left its backup pending (Vault away): tried again.
    Retry,
}

impl Trigger {
    fn word(self) -> &'static str {
        match self {
            Trigger::Full => "interval",
            Trigger::Reload => "reload",
            Trigger::FileBroken => "file_broken",
            Trigger::FileChanged => "file_changed",
            Trigger::Retry => "retry",
        }
    }
    /// Only full cycles count as runs for `degraded.fail_after_runs`.
    fn pace(self) -> Pace {
        match self {
            Trigger::Full | Trigger::Reload => Pace::Run,
            Trigger::FileBroken | Trigger::FileChanged | Trigger::Retry => Pace::Between,
        }
    }
    fn check(self) -> Check {
        match self {
            Trigger::Full | Trigger::Reload => Check::Full,
            Trigger::FileBroken | Trigger::FileChanged | Trigger::Retry => Check::Kept,
        }
    }
}

struct Agent<'r> {
    cfg: Config,
    reload: &'r Reload<'r>,
    watcher: Option<Watcher>,
    signals: Signals,
    lifetime: Lifetime,
    /// What the last cycle saw of each template's file.
    seen: Vec<Option<FileView>>,
    /// Files with events since they were last looked at.
    dirty: Vec<bool>,
    /// When the dirty files have been quiet for `resident.debounce`.
    settle: Option<Instant>,
    /// A changed login waiting for `probe_min_interval` to pass.
    deferred: Option<Instant>,
    next_full: Instant,
    /// A SIGHUP brought a new config: a full cycle with it comes next.
    reloaded: bool,
    probes: Probes,
    retries: Retries,
    notifier: Arc<Notifier>,
}

impl Agent<'_> {
    async fn serve(&mut self) {
        let mut ready = false;
        loop {
            let now = Instant::now();
            if self.lifetime.due().is_some_and(|d| d <= now) {
                let (cfg, lifetime) = (&self.cfg, &mut self.lifetime);
                if let Err(sig) = until_stop(&mut self.signals, lifetime.renew(cfg)).await {
                    return self.stop(sig);
                }
            }
            let mut trigger = None;
            if self.settle.is_some_and(|s| s <= now) {
                self.settle = None;
                trigger = self.look_at_changes(now);
            }
            if self.deferred.is_some_and(|d| d <= now) {
                self.deferred = None;
                trigger = trigger.or(Some(Trigger::FileChanged));
            }
            if self.retries.take_due(now) {
                trigger = trigger.or(Some(Trigger::Retry));
            }
            if self.next_full <= now {
                trigger = Some(Trigger::Full);
            }
            if std::mem::take(&mut self.reloaded) {
                trigger = Some(Trigger::Reload);
            }
            if let Some(t) = trigger {
                if let Err(sig) = self.cycle(t).await {
                    return self.stop(sig);
                }
                if !ready {
                    self.notifier.send("READY=1");
                    ready = true;
                }
                continue;
            }
            let until = [self.lifetime.due(), self.settle, self.deferred, self.retries.at(), Some(self.next_full)]
                .into_iter()
                .flatten()
                .min()
                .expect("the next full cycle is always due");
            match self.wait(until).await {
                Wake::Stop(sig) => return self.stop(sig),
                Wake::Reload => self.reload(),
                Wake::Changed(files) => {
                    for i in files {
                        self.dirty[i] = true;
                    }
                    self.settle = Some(Instant::now() + self.cfg.resident.debounce);
                }
                Wake::Timer => {}
            }
        }
    }

    fn stop(&self, sig: &str) {
        self.notifier.send("STOPPING=1");
        tracing::info!("{sig}: stopping");
    }

    /// Sleeps until `until`, a signal or a file event.
    async fn wait(&mut self, until: Instant) -> Wake {
        let mut sleep = pin!(tokio::time::sleep_until(until));
        poll_fn(|cx| {
            if let Some(sig) = self.signals.poll_stop(cx) {
                return Poll::Ready(Wake::Stop(sig));
            }
            if self.signals.hup.poll_recv(cx).is_ready() {
                return Poll::Ready(Wake::Reload);
            }
            if let Some(w) = &mut self.watcher {
                match w.poll_changed(cx) {
                    Poll::Ready(Ok(files)) => return Poll::Ready(Wake::Changed(files)),
                    Poll::Ready(Err(e)) => {
                        tracing::warn!("cannot read file events ({e}); only the full cycles run from now on");
                        self.watcher = None;
                    }
                    Poll::Pending => {}
                }
            }
            sleep.as_mut().poll(cx).map(|()| Wake::Timer)
        })
        .await
    }

    /// What the settled file events call for: a cycle now, one once the probe interval
    /// has passed (noted in `deferred`), or nothing (the agent's own write, a sibling key).
    fn look_at_changes(&mut self, now: Instant) -> Option<Trigger> {
        let mut trigger = None;
        for (i, t) in self.cfg.templates.iter().enumerate() {
            if !std::mem::take(&mut self.dirty[i]) {
                continue;
            }
            let view = seen::look(t);
            match (&view, &self.seen[i]) {
                (Some(v), Some(old)) if v.same_login(old) => {
                    tracing::debug!("{}: nothing to sync changed", t.destination.display());
                    self.seen[i] = view;
                }
                (Some(v), _) if v.needs_probe => {
                    let at = self.probes.allowed_at(now, self.cfg.resident.probe_min_interval);
                    if at <= now {
                        trigger = trigger.or(Some(Trigger::FileChanged));
                    } else if self.deferred.is_none_or(|d| at < d) {
                        tracing::info!(
                            "{} changed; it is probed once probe_min_interval has passed, in {}",
                            t.destination.display(),
                            humantime::format_duration(round_s(at - now))
                        );
                        self.deferred = Some(at);
                    }
                }
                _ => trigger = Some(Trigger::FileBroken),
            }
        }
        trigger
    }

    /// One cycle, reported like a timer run's; `Err` when a stop signal ended it early
    /// (between two steps: nothing is left half-written).
    async fn cycle(&mut self, trigger: Trigger) -> Result<(), &'static str> {
        let observed = Observed::new(self.cfg.templates.len());
        let outcome = {
            let (cfg, lifetime) = (&self.cfg, &mut self.lifetime);
            let work = async {
                let session = lifetime.session(cfg, trigger.check()).await;
                cycle::run_in_session(cfg, &|var| std::env::var_os(var).is_some(), session, &observed).await
            };
            until_stop(&mut self.signals, work).await
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(sig) => {
                tracing::info!("{sig} during a cycle: it ends between two steps, nothing half-written");
                return Err(sig);
            }
        };
        let now = Instant::now();
        if matches!(trigger, Trigger::Full | Trigger::Reload) {
            self.next_full = now + jittered(self.cfg.resident.interval, 0.1);
            // A full cycle probed every login, the deferred one included.
            self.deferred = None;
            // A directory missing until now (no login yet) is watched from here on.
            self.rewatch();
        }
        // The probes since the last report are this cycle's (conclude takes them below).
        self.probes.ran(report::counters::peek().probes, now);
        let backoff = (self.cfg.auto_auth.min_backoff, self.cfg.auto_auth.max_backoff);
        let next_probe = self.probes.allowed_at(now, self.cfg.resident.probe_min_interval);
        self.retries.after_cycle(backup_pending(&outcome), now, backoff, next_probe);
        for (i, (t, file)) in self.cfg.templates.iter().zip(observed.files).enumerate() {
            self.seen[i] = file.into_inner().or_else(|| seen::look(t));
        }
        let outcome = outcome.fact("trigger", trigger.word()).fact("probes_today", self.probes.today().to_string());
        super::conclude(&self.cfg, outcome, trigger.pace());
        Ok(())
    }

    /// SIGHUP: the config file read again; a valid one replaces the running config
    /// and runs a full cycle, an invalid one is refused and the old one kept.
    fn reload(&mut self) {
        self.notifier.send("RELOADING=1");
        match (self.reload)() {
            Ok(new) => {
                if (&new.vault, &new.auto_auth) != (&self.cfg.vault, &self.cfg.auto_auth) {
                    // Another Vault or identity: the kept token is not for it.
                    self.lifetime.reset();
                }
                if new.log.level != self.cfg.log.level {
                    tracing::warn!("log.level takes effect at the next start");
                }
                let n = new.templates.len();
                self.cfg = new;
                (self.seen, self.dirty) = (vec![None; n], vec![false; n]);
                (self.settle, self.deferred) = (None, None);
                self.rewatch();
                tracing::info!("SIGHUP: reloaded {}", self.cfg.file.display());
                self.reloaded = true;
            }
            Err(e) => tracing::error!("SIGHUP: config error: {e}; the config loaded before stays in use"),
        }
        self.notifier.send("READY=1");
    }

    fn rewatch(&mut self) {
        let files: Vec<_> = self.cfg.templates.iter().map(|t| t.destination.clone()).collect();
        if let Some(w) = &mut self.watcher {
            w.watch(&files);
        }
    }
}

/// `work` to its end, unless SIGTERM or SIGINT comes first: then it is dropped at its
/// current await point (between two steps: file writes are synchronous) and the signal
/// is returned.
async fn until_stop<T>(signals: &mut Signals, work: impl Future<Output = T>) -> Result<T, &'static str> {
    let mut work = pin!(work);
    poll_fn(|cx| match work.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Ok(v)),
        Poll::Pending => signals.poll_stop(cx).map_or(Poll::Pending, |sig| Poll::Ready(Err(sig))),
    })
    .await
}

/// DEGRADED because Vault was away or kept changing: what a retry soon can mend.
fn backup_pending(o: &Outcome) -> bool {
    o.status == Status::Degraded && matches!(o.reason, Some(Reason::VaultUnreachable | Reason::VaultConflict))
}

/// Whole seconds, for a log line.
fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
