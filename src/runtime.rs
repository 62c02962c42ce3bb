//! What every async entry point needs once per process: rustls' `ring` provider
//! (vaultrs and reqwest are built without a default one; ring keeps builds small) and a
//! current-thread tokio runtime. The agent's run and the provisioner start through
//! [`block_on`], so neither sets these up a second way.
//!
//! It must never be called from inside a runtime: it builds one.

use std::future::Future;

/// Runs `future` to completion on a new current-thread runtime.
pub fn block_on<F: Future>(future: F) -> std::io::Result<F::Output> {
    // A second install (a second entry point in one process) is refused, harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(future))
}
