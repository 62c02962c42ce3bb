//! The agent's own messages on stderr (journald keeps a unit's stderr): this crate's
//! tracing events at the configured level, each one line shaped like every other line
//! the tool prints, `claude-auth-sync: warning: <message>`.
//!
//! It must never pass on other crates' events: vaultrs and reqwest trace request details.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Installs the subscriber for this process.
pub(super) fn init(level: tracing::Level) {
    let filter = Targets::new().with_target("claude_auth_sync", level);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(Plain);
    tracing_subscriber::registry().with(fmt).with(filter).init();
}

/// `claude-auth-sync: <level>: <message>`.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        write!(w, "claude-auth-sync: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
