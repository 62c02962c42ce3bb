//! What this process has spent since the last run was recorded: probes (inference
//! calls) and Vault requests (every attempt, retries included). The places that spend
//! count here; [`state::record`](super::state::record) adds the counts to the totals
//! kept in the state file, so the metrics' counters grow across runs and processes.
//!
//! It must never count anything but events: no value passes through here.

use std::sync::atomic::{AtomicU64, Ordering};

static PROBES: AtomicU64 = AtomicU64::new(0);
static VAULT_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Counts since the last [`take`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub probes: u64,
    pub vault_requests: u64,
}

/// One inference call made to prove a login.
pub fn probe() {
    PROBES.fetch_add(1, Ordering::Relaxed);
}

/// One HTTP request sent to Vault.
pub fn vault_request() {
    VAULT_REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// The counts since the last call, which start again from zero.
pub fn take() -> Spent {
    Spent { probes: PROBES.swap(0, Ordering::Relaxed), vault_requests: VAULT_REQUESTS.swap(0, Ordering::Relaxed) }
}
