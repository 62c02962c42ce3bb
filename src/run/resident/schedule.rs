//! The resident agent's clock work: jitter, backoff pauses, when a changed login may
//! be probed (probes cost inference: at most one per `probe_min_interval`, except to
//! recover a broken file), when a cycle that left its backup pending runs again, and
//! the count of probes per UTC day for the report.
//!
//! It must never wake the agent by itself: it only computes instants the loop sleeps to.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use tokio::time::Instant;

/// A uniform fraction in [0, 1).
fn unit() -> f64 {
    let mut b = [0u8; 8];
    // The system's random source does not fail on Linux; without it, no jitter.
    if SystemRandom::new().fill(&mut b).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// `d` less up to `spread` of it, at random: agents started together drift apart.
pub fn jittered(d: Duration, spread: f64) -> Duration {
    d.mul_f64(1.0 - spread * unit())
}

/// The shortest pause between two retries, whatever `min_backoff` says: a zero there
/// must not turn a Vault that is away into a busy loop.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// The pause before the `failures`-th retry: doubling from `min`, at most `max`, with
/// "equal jitter" (half fixed, half random) so that retries never bunch up.
pub fn retry_pause(failures: u32, min: Duration, max: Duration) -> Duration {
    let exp = min.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(max);
    (exp / 2 + (exp / 2).mul_f64(unit())).max(MIN_RETRY)
}

/// Probes of changed logins, paced by `probe_min_interval`, and counted per UTC day.
#[derive(Debug, Default)]
pub struct Probes {
    last: Option<Instant>,
    day: u64,
    today: u64,
}

impl Probes {
    /// When a changed login may be probed: now, or when the interval since the last
    /// probe has passed.
    pub fn allowed_at(&self, now: Instant, min_interval: Duration) -> Instant {
        self.last.map_or(now, |last| (last + min_interval).max(now))
    }

    /// A cycle ran `n` probes.
    pub fn ran(&mut self, n: u64, now: Instant) {
        let day = utc_day(SystemTime::now());
        if day != self.day {
            (self.day, self.today) = (day, 0);
        }
        if n > 0 {
            self.today += n;
            self.last = Some(now);
        }
    }

    /// Probes since midnight UTC.
    pub fn today(&self) -> u64 {
        if utc_day(SystemTime::now()) == self.day { self.today } else { 0 }
    }
}

/// A cycle that left its backup pending because Vault was away (unreachable, a leader
/// lost, writes racing) runs again with backoff: without it a refresh seen during an
/// outage would wait for the next full cycle, hours later, while the old refresh token
/// in Vault is already dead.
#[derive(Debug, Default)]
pub struct Retries {
    failures: u32,
    at: Option<Instant>,
}

impl Retries {
    /// When the pending cycle runs again, if one is pending.
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// Whether the retry is due at `now`; it is then taken.
    pub fn take_due(&mut self, now: Instant) -> bool {
        let due = self.at.is_some_and(|at| at <= now);
        if due {
            self.at = None;
        }
        due
    }

    /// A cycle ended at `now`: pending or not. A pending one is tried again after a
    /// backoff within `min`..`max`, but never before `not_before` (the next allowed probe).
    pub fn after_cycle(&mut self, pending: bool, now: Instant, (min, max): (Duration, Duration), not_before: Instant) {
        if pending {
            self.failures += 1;
            self.at = Some((now + retry_pause(self.failures, min, max)).max(not_before));
        } else {
            *self = Retries::default();
        }
    }
}

fn utc_day(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_within_bounds_and_jitter_only_shortens() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
        for failures in 1..=10 {
            let p = retry_pause(failures, min, max);
            let ceiling = min.saturating_mul(1 << (failures - 1)).min(max);
            assert!(p >= ceiling / 2 && p <= ceiling, "{failures}: {p:?}");
        }
        assert_eq!(retry_pause(3, Duration::ZERO, Duration::ZERO), MIN_RETRY, "never a busy loop");
        let d = Duration::from_secs(3600);
        let j = jittered(d, 0.1);
        assert!(j <= d && j >= d.mul_f64(0.9), "{j:?}");
    }

    #[test]
    fn a_pending_backup_is_retried_with_backoff_and_forgotten_once_a_cycle_ends_well() {
        let now = Instant::now();
        let bounds = (Duration::from_secs(2), Duration::from_secs(8));
        let mut r = Retries::default();
        r.after_cycle(false, now, bounds, now);
        assert_eq!(r.at(), None, "nothing pending, nothing planned");
        r.after_cycle(true, now, bounds, now);
        let first = r.at().expect("a retry");
        assert!(first >= now + Duration::from_secs(1) && first <= now + bounds.0, "{:?}", first - now);
        assert!(!r.take_due(now), "not due yet");
        assert!(r.take_due(first) && r.at().is_none(), "due at its time, then taken");
        for _ in 0..5 {
            r.after_cycle(true, now, bounds, now);
        }
        assert!(r.at().unwrap() <= now + bounds.1, "never past max");
        let later = now + Duration::from_secs(300);
        r.after_cycle(true, now, bounds, later);
        assert_eq!(r.at(), Some(later), "not before the next probe may run");
        r.after_cycle(false, later, bounds, later);
        r.after_cycle(true, now, bounds, now);
        assert!(r.at().unwrap() <= now + bounds.0, "the backoff starts over after a good cycle");
    }

    #[test]
    fn a_changed_login_waits_for_the_interval_after_a_probe() {
        let now = Instant::now();
        let min = Duration::from_secs(300);
        let mut p = Probes::default();
        assert_eq!(p.allowed_at(now, min), now, "no probe yet");
        p.ran(0, now);
        assert_eq!((p.allowed_at(now, min), p.today()), (now, 0), "a cycle without a probe");
        p.ran(2, now);
        assert_eq!((p.allowed_at(now, min), p.today()), (now + min, 2));
        assert_eq!(p.allowed_at(now + 2 * min, min), now + 2 * min);
    }
}
