//! Which files drplan trusts: those only trusted users can write (ssh's rule for keys).
//!
//! drplan runs as root on the machines that hold a company's CI/CD, so whoever can write a
//! file it reads — a plan, a site, a secret, a known_hosts file, a run in its state
//! directory — can make it run anything there. Two rules:
//!
//! - **Input files** (plan, site, checks, params, saved plan, secret, identity, known_hosts):
//!   the file is owned by you or root and writable by nobody else, and so is every
//!   directory above it, up to `/`, as written and as symbolic links resolve it (a directory
//!   writable by others is accepted only with the sticky bit, like `/tmp`, where others
//!   cannot rename or replace what is yours). A symbolic link on the way must be yours or
//!   root's.
//! - **The state directory and everything in it** (`private_fs::Dir`): owned by you,
//!   writable by nobody else; nothing in it is ever a symbolic link.
//!
//! `--allow-insecure-files` trusts such files anyway, and says so on stderr, one line per
//! file. It never makes drplan follow a symbolic link inside its state directory. This module
//! does no I/O beyond `stat` (and the user database, to name owners), and imports nothing of
//! ours but `whoami`.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::whoami;

static ALLOW_INSECURE: AtomicBool = AtomicBool::new(false);

/// `--allow-insecure-files`: trust files that fail the rules, with a warning for each.
pub(crate) fn allow_insecure_files(allow: bool) {
    ALLOW_INSECURE.store(allow, Ordering::Relaxed);
}

/// A file drplan refuses to trust, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("refusing to trust {}: {problem}", path.display())]
#[diagnostic(code(drplan::trust::insecure), help("{}", self.fix()))]
pub struct Insecure {
    pub path: PathBuf,
    pub problem: String,
    /// A symbolic link inside the state directory: never followed, whatever the flags.
    pub link: bool,
}

impl Insecure {
    fn fix(&self) -> String {
        if self.link {
            return format!(
                "drplan never follows symbolic links inside its state directory; remove {} (another user may have planted it)",
                self.path.display()
            );
        }
        format!(
            "whoever can write it can make drplan run anything as you. Make it yours and writable only by you (`chown {} {p}; chmod go-w {p}`), or move it somewhere only you and root can write; `--allow-insecure-files` trusts it anyway",
            whoami::user_name().unwrap_or_else(|_| whoami::euid().to_string()),
            p = self.path.display()
        )
    }

    /// The message and what to do about it, on one line, for callers whose errors are text.
    pub fn to_string_with_help(&self) -> String {
        format!("{self}. {}", self.fix())
    }

    /// As an `io::Error`, for code whose errors are I/O errors (`is_insecure` finds it).
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, self)
    }
}

/// The `Insecure` inside an I/O error made by `Insecure::into_io`.
pub(crate) fn is_insecure(e: &io::Error) -> Option<&Insecure> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Insecure>())
}

/// `path` is refused unless `--allow-insecure-files` was given; then it is trusted with a
/// warning on stderr (once per file and problem).
pub(crate) fn refuse(path: &Path, problem: String) -> Result<(), Insecure> {
    if !ALLOW_INSECURE.load(Ordering::Relaxed) {
        return Err(Insecure {
            path: path.to_path_buf(),
            problem,
            link: false,
        });
    }
    static WARNED: Mutex<BTreeSet<(PathBuf, String)>> = Mutex::new(BTreeSet::new());
    let first = WARNED
        .lock()
        .map(|mut w| w.insert((path.to_path_buf(), problem.clone())))
        .unwrap_or(true);
    if first {
        eprintln!(
            "warning: trusting {} although {problem} (--allow-insecure-files)",
            path.display()
        );
    }
    Ok(())
}

/// A symbolic link where drplan never follows one.
pub(crate) fn link(path: &Path) -> Insecure {
    Insecure {
        path: path.to_path_buf(),
        problem: "it is a symbolic link".into(),
        link: true,
    }
}

/// `uid` as messages show it: `alice (uid 1000)`.
fn who(uid: u32) -> String {
    match whoami::name_of(uid) {
        Ok(name) => format!("{name} (uid {uid})"),
        Err(_) => format!("uid {uid}"),
    }
}

/// Who may own an input file: you or root.
fn trusted_owners() -> String {
    match whoami::euid() {
        0 => "root".to_owned(),
        me => format!("{} or root", who(me)),
    }
}

const GROUP_OR_OTHER_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// Why a file or directory others could write is not to be trusted (None: it is fine).
/// `uid` and `mode` are its owner and `st_mode`. `owner_must_be_me`: the state directory's
/// rule (not even root's), else the input rule (yours or root's).
pub(crate) fn problem(uid: u32, mode: u32, owner_must_be_me: bool) -> Option<String> {
    let me = whoami::euid();
    let owner_ok = uid == me || (!owner_must_be_me && uid == 0);
    if !owner_ok {
        return Some(format!(
            "it is owned by {}, not by {}",
            who(uid),
            if owner_must_be_me {
                who(me)
            } else {
                trusted_owners()
            }
        ));
    }
    let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
    let is_file = mode & libc::S_IFMT == libc::S_IFREG;
    let perms = mode & 0o7777;
    // Writing to a device or a pipe (`/dev/null`, `/dev/stdin`) changes nothing stored.
    if !(is_dir || is_file) {
        return None;
    }
    if perms & GROUP_OR_OTHER_WRITE != 0 && !(is_dir && perms & STICKY != 0) {
        let whom = match (perms & 0o020 != 0, perms & 0o002 != 0) {
            (true, true) => "its group and everyone",
            (true, false) => "its group",
            _ => "everyone",
        };
        return Some(format!("{whom} can write it (mode {perms:04o})"));
    }
    None
}

/// An input file (plan, site, checks, params, saved plan, secret, identity, known_hosts)
/// whose contents drplan is about to trust: refused (or warned about) when a user other
/// than you or root can change it. `meta` is the file as opened, when it was opened
/// already (so that what is checked is what is read).
pub(crate) fn check_input(path: &Path, meta: Option<&std::fs::Metadata>) -> Result<(), Insecure> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let own;
    let meta = match meta {
        Some(m) => m,
        None => match std::fs::metadata(&abs) {
            Ok(m) => {
                own = m;
                &own
            }
            // Missing or unreadable: whoever reads it says so.
            Err(_) => return Ok(()),
        },
    };
    if let Some(p) = problem(meta.uid(), meta.mode(), false) {
        refuse(path, p)?;
    }
    check_way_to(&abs)
}

/// The way to `abs`: every directory above it as written and as symbolic links resolve
/// it, yours or root's and writable by nobody else unless sticky; every symbolic link on the
/// way (`abs` itself included) yours or root's. `abs` itself is the caller's to check.
pub(crate) fn check_way_to(abs: &Path) -> Result<(), Insecure> {
    let mut seen = BTreeSet::new();
    for (i, p) in abs.ancestors().enumerate() {
        if p.as_os_str().is_empty() || !seen.insert(p.to_path_buf()) {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            continue;
        };
        let problem = if meta.file_type().is_symlink() {
            // A link's own mode means nothing; who may replace it is its owner (and the
            // directory's, checked as the next ancestor).
            link_owner_problem(&meta)
        } else if i == 0 {
            None
        } else {
            problem(meta.uid(), meta.mode(), false)
        };
        if let Some(problem) = problem {
            refuse(p, problem)?;
        }
    }
    if let Ok(real) = std::fs::canonicalize(abs) {
        for dir in real.ancestors().skip(1) {
            if !seen.insert(dir.to_path_buf()) {
                continue;
            }
            if let Ok(meta) = std::fs::metadata(dir)
                && let Some(problem) = problem(meta.uid(), meta.mode(), false)
            {
                refuse(dir, problem)?;
            }
        }
    }
    Ok(())
}

fn link_owner_problem(meta: &std::fs::Metadata) -> Option<String> {
    let uid = meta.uid();
    (uid != 0 && uid != whoami::euid()).then(|| {
        format!(
            "it is a symbolic link owned by {}, not by {}",
            who(uid),
            trusted_owners()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_or_world_writable_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("plan.yaml");
        std::fs::write(&f, "x").unwrap();
        assert_eq!(check_input(&f, None), Ok(()));
        for (mode, whom) in [(0o664, "its group can"), (0o646, "everyone can")] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = check_input(&f, None).unwrap_err();
            assert!(e.problem.contains(whom), "{e}");
            assert_eq!(e.path, f);
        }
    }

    #[test]
    fn a_writable_directory_above_is_refused_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        let f = open.join("site.yaml");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_input(&f, None).unwrap_err();
        assert_eq!(e.path, open);
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(check_input(&f, None), Ok(()));
    }
}
