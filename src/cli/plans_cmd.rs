//! `drplan plans list` and `drplan plans export DIR [--force]`: the plans shipped inside the
//! binary (see `shipped.rs` for how a plan argument finds them).

use super::{Failure, Global};
use crate::diag::SourceFile;
use crate::load::Document;
use crate::shipped::{FILES, Shipped};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Name each shipped plan, checks file and example site, with what it does.
    List,
    /// Write a copy of every shipped file into DIR (DIR/gocd/failover.yaml, …), to make a
    /// site's own: files 0644, directories 0755.
    Export {
        /// Where to write them (created if missing).
        dir: PathBuf,
        /// Replace files that exist (otherwise nothing is written when one does).
        #[arg(long)]
        force: bool,
    },
}

pub(super) fn run(args: Args, global: &Global) -> Result<(), Failure> {
    match args.command {
        Command::List => {
            print!("{}", list());
            Ok(())
        }
        Command::Export { dir, force } => {
            let written = export(&dir, force)?;
            if !global.quiet {
                for path in written {
                    println!("wrote {}", path.display());
                }
            }
            Ok(())
        }
    }
}

/// One line per shipped file: its name, what it is, and its description.
fn list() -> String {
    let width = FILES.iter().map(|s| s.name().len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in FILES {
        let (kind, about) = describe(s);
        out.push_str(&format!("{:width$}  {kind:6}  {about}\n", s.name()));
    }
    out.push_str(
        "\nName one instead of a file (`drplan plan gocd/failover --site SITE`; a file of that \
         path in the current directory wins), or copy them all to edit: `drplan plans export DIR`.\n",
    );
    out
}

/// `plan`, `checks` or `site`, and its description (a site's first comment line).
fn describe(s: &Shipped) -> (&'static str, String) {
    let doc = Document::parse(SourceFile::new(s.path, s.text)).ok();
    let value = doc.map(|d| d.value).unwrap_or_default();
    if value.get("site").is_some() {
        let about = s
            .text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .find(|l| !l.starts_with("yaml-language-server"))
            .unwrap_or("")
            .to_owned();
        return ("site", about);
    }
    let checks = value
        .get("steps")
        .and_then(|v| v.as_array())
        .is_some_and(std::vec::Vec::is_empty);
    let about = value
        .get("description")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    (if checks { "checks" } else { "plan" }, about)
}

/// Write every shipped file under `dir`; the paths written. Nothing is written when a file
/// exists there and `force` is not given.
fn export(dir: &Path, force: bool) -> Result<Vec<PathBuf>, Failure> {
    let targets: Vec<(PathBuf, &Shipped)> = FILES.iter().map(|s| (dir.join(s.path), s)).collect();
    let existing: Vec<PathBuf> = targets
        .iter()
        .filter(|(p, _)| std::fs::symlink_metadata(p).is_ok())
        .map(|(p, _)| p.clone())
        .collect();
    if !force && !existing.is_empty() {
        return Err(Failure::ExportWouldReplace { existing });
    }
    let mut written = Vec::new();
    for (path, s) in targets {
        let parent = path.parent().unwrap_or(dir);
        make_dirs(parent).map_err(Failure::io(format!("create {}", parent.display())))?;
        write_file(&path, s.text).map_err(|source| Failure::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// `dir` and its missing parents, each created 0755 whatever the umask.
fn make_dirs(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o755).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `text` as a new file at `path`, 0644, owned by whoever runs drplan: written beside it and
/// renamed over whatever was there (a link is replaced, never followed).
fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".drplan-export")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
