//! A rendered template's run (Vault Agent style): read the secret's latest data,
//! render the file, replace it when the output changed, and run `command` then.
//! It must never probe and never write back to Vault.

use std::time::Duration;

use super::{Phase, Remote};
use crate::config::{self, RenderTemplate, TemplateBody, TemplateConfig};
use crate::report::{Action, Outcome, Reason};
use crate::store::atomic;
use crate::template::handlebars;

/// A template's command gets this long before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn sync(t: &TemplateConfig, r: &RenderTemplate, remote: &impl Remote) -> Outcome {
    let fail = |msg: String| Outcome::fail(Reason::TemplateError, format!("{}: {msg}", t.name));
    let latest = match remote.latest().await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return fail(format!("the secret {} does not exist in Vault", t.secret));
        }
        Err(trouble) => return trouble.outcome(Phase::Backup),
    };
    let text = match &r.body {
        TemplateBody::Contents(c) => c.expose().to_string(),
        TemplateBody::Source(p) => match config::read_source(p) {
            Ok(s) => s,
            Err(e) => return fail(format!("the source {} {e}", p.display())),
        },
    };
    let rendered = match handlebars::render(&text, &latest.data) {
        Ok(s) => s,
        Err(e) => return fail(format!("rendering failed: {e}")),
    };
    let version = latest.version.to_string();
    if std::fs::read(&t.destination).is_ok_and(|old| old == rendered.as_bytes()) {
        return Outcome::ok(Action::Unchanged).fact("vault_version", version);
    }
    if let Err(e) = atomic::replace(&t.destination, rendered.as_bytes(), t.perms) {
        return Outcome::fail(Reason::LocalWriteFailed, e.to_string());
    }
    if let Some(argv) = &r.command
        && let Err(e) = run_command(argv).await
    {
        return fail(format!("rendered {}, but its command failed: {e}", t.destination.display()));
    }
    Outcome::ok(Action::Rendered).fact("vault_version", version)
}

async fn run_command(argv: &[String]) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(std::process::Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd.status()).await {
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!("`{}` exited with {s}", argv[0])),
        Ok(Err(e)) => Err(format!("cannot run `{}`: {e}", argv[0])),
        Err(_) => Err(format!("`{}` did not finish within {}s", argv[0], COMMAND_TIMEOUT.as_secs())),
    }
}
