//! `probe "command"`: runs the CLI (by default `claude -p --model haiku ...`) in its
//! own process group without the shadowing variables, and kills the whole group when
//! it outlives the timeout.

use std::process::Stdio;
use std::time::Duration;

use super::{SHADOWING_ENV, Verdict, classify};

pub async fn run(argv: &[String], timeout: Duration) -> Verdict {
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    for var in SHADOWING_ENV {
        cmd.env_remove(var);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Verdict::Broken(format!("cannot run `{}`: {e}; is it installed and on PATH?", argv[0])),
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            classify(out.status.code(), &String::from_utf8_lossy(&out.stdout), &String::from_utf8_lossy(&out.stderr))
        }
        Ok(Err(e)) => Verdict::Transient(format!("cannot read the probe's output: {e}")),
        Err(_) => {
            // The CLI may have started helpers: end the whole group, not just the child.
            if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            Verdict::Transient(format!("the probe did not finish within {}", humantime::format_duration(timeout)))
        }
    }
}
