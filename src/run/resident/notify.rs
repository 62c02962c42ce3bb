//! systemd's notify protocol (sd_notify(3)), the few lines a `Type=notify` unit needs:
//! `READY=1` once the first cycle is done, `RELOADING=1`/`STOPPING=1` around a reload
//! and a stop, and `WATCHDOG=1` at half of `WATCHDOG_USEC` while the process is alive.
//! One datagram per message to `$NOTIFY_SOCKET` (a path or an abstract `@name`).
//!
//! It must never fail the agent: without systemd (no `$NOTIFY_SOCKET`) it does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET` (the probe inherits it harmlessly: the units keep
    /// `NotifyAccess=main`, so systemd ignores a child's messages).
    pub fn from_env() -> Notifier {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return Notifier { socket: None } };
        let bytes = path.as_encoded_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name),
            None => SocketAddr::from_pathname(&path),
        };
        // Non-blocking: a manager that does not read must never stall the agent.
        let socket = addr.ok().and_then(|a| {
            let s = UnixDatagram::unbound().ok()?;
            s.set_nonblocking(true).ok()?;
            Some((s, a))
        });
        if socket.is_none() {
            tracing::warn!("NOTIFY_SOCKET is set but unusable; systemd is not told when the agent is ready");
        }
        Notifier { socket }
    }

    pub fn send(&self, state: &str) {
        if let Some((s, addr)) = &self.socket
            && let Err(e) = s.send_to_addr(state.as_bytes(), addr)
        {
            tracing::warn!("could not notify systemd ({state}): {e}");
        }
    }

    /// Half of `$WATCHDOG_USEC` (when it is meant for this process), as systemd advises.
    pub fn watchdog_every() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        let for_us = std::env::var("WATCHDOG_PID").ok().is_none_or(|p| p == std::process::id().to_string());
        (for_us && usec > 0).then(|| Duration::from_micros(usec / 2))
    }
}
