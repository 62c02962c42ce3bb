//! Shell completions and the man page, generated from the command line's clap
//! definitions (`claude-auth-sync completions SHELL`, `claude-auth-sync man`), so a new
//! subcommand or flag appears in both without anyone editing them.
//!
//! It only writes text to the writer it is given: it never reads a config or the
//! environment, and never touches the network.

use std::io::{self, Write};

use clap::Command;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// Writes the completion script for `shell`.
pub fn completions(shell: Shell, mut cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let name = cmd.get_name().to_string();
    // clap_complete panics when its writer fails (a closed pipe): it writes to memory.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    out.write_all(&script)
}

/// Writes one man page (section 1) for the whole command: the top level's sections,
/// the list of subcommands, then one section per subcommand with its synopsis,
/// description, options and examples as subsections.
pub fn man(cmd: Command, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let page = Man::new(cmd.clone()).manual("User Commands");
    let mut roff = Vec::new();
    page.render_title(&mut roff)?;
    page.render_name_section(&mut roff)?;
    page.render_synopsis_section(&mut roff)?;
    page.render_description_section(&mut roff)?;
    page.render_options_section(&mut roff)?;
    commands(&cmd).to_writer(&mut roff)?;
    sections(&roff, false, out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        subcommand(sub, out)?;
    }
    let mut roff = Vec::new();
    page.render_extra_section(&mut roff)?;
    page.render_version_section(&mut roff)?;
    sections(&roff, false, out)
}

/// The list of subcommands, each with its one-line help (clap_mangen's own list points
/// at one page per subcommand; this page holds them all).
fn commands(cmd: &Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        roff.control("TP", []);
        roff.text([bold(sub.get_name())]);
        roff.text([roman(sub.get_about().map(|a| a.to_string()).unwrap_or_default())]);
    }
    roff
}

/// A subcommand's part of the page, headed by its full name ("claude-auth-sync run").
fn subcommand(sub: &Command, out: &mut dyn Write) -> io::Result<()> {
    let name = sub.get_bin_name().unwrap_or(sub.get_name());
    Roff::new().control("SH", [name.to_uppercase().as_str()]).to_writer(out)?;
    let page = Man::new(sub.clone());
    let mut roff = Vec::new();
    page.render_synopsis_section(&mut roff)?;
    page.render_description_section(&mut roff)?;
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        page.render_options_section(&mut roff)?;
    }
    if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
        page.render_extra_section(&mut roff)?;
    }
    sections(&roff, true, out)?;
    for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
        subcommand(nested, out)?;
    }
    Ok(())
}

/// Copies clap_mangen's roff, naming its after-help section for what every one holds
/// here (examples), and turning sections into subsections under a subcommand's heading.
/// roff escapes a text line's leading dot, so a line that starts ".SH " is a heading.
fn sections(roff: &[u8], nested: bool, out: &mut dyn Write) -> io::Result<()> {
    for line in String::from_utf8_lossy(roff).lines() {
        let Some(heading) = line.strip_prefix(".SH ") else {
            writeln!(out, "{line}")?;
            continue;
        };
        let heading = if heading == "EXTRA" { "EXAMPLES" } else { heading };
        writeln!(out, "{} {heading}", if nested { ".SS" } else { ".SH" })?;
    }
    Ok(())
}
