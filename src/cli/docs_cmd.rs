//! Hidden subcommands for packagers: `drplan completions SHELL` prints a shell's completion
//! script (clap_complete), `drplan man DIR` writes the man pages (clap_mangen): `drplan.1`
//! and one `drplan-COMMAND.1` per command. Both are generated from the same clap definition
//! as `--help`, so they cannot drift from it.

use super::{Cli, Failure};
use clap::CommandFactory;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Where to write drplan.1 and drplan-COMMAND.1 (created if missing).
    pub dir: PathBuf,
}

pub(super) fn completions(args: CompletionsArgs) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "drplan", &mut std::io::stdout());
    Ok(())
}

pub(super) fn man(args: ManArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.dir)
        .map_err(Failure::io(format!("create {}", args.dir.display())))?;
    let mut cmd = Cli::command();
    // Built, every subcommand knows its full name (`drplan plans export`) and the global flags.
    cmd.build();
    write_pages(&args.dir, &cmd)
}

/// `cmd`'s page (`drplan-plans.1`), then one for each of its visible subcommands.
fn write_pages(dir: &Path, cmd: &clap::Command) -> Result<(), Failure> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .map_err(Failure::io(format!("render the man page {name}.1")))?;
    std::fs::write(&path, page).map_err(|source| Failure::Write { path, source })?;
    for sub in cmd.get_subcommands() {
        if !sub.is_hide_set() && sub.get_name() != "help" {
            write_pages(dir, sub)?;
        }
    }
    Ok(())
}
