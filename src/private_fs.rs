//! Creating drplan's own files privately (directories 0700, files 0600, whatever the umask)
//! and durably (the data fsync'd, and the directory holding a new name fsync'd too, since a
//! file whose directory entry is lost in a crash is lost with it). Used for run state, site
//! locks and the SSH control directory; it must not decide where those live.
//!
//! Modes are set explicitly after creation: `mode()` at creation time is filtered by the
//! umask, which could leave a file we cannot reopen (umask 0277) or one others can read
//! (umask 000 with a careless mode). Only what drplan creates is touched; an existing
//! directory the user made keeps its mode.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub(crate) const DIR_MODE: u32 = 0o700;
pub(crate) const FILE_MODE: u32 = 0o600;

/// `mkdir -p` where every directory created is 0700 and its parent is fsync'd.
pub(crate) fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            ));
        }
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match create_dir(path) {
        // Another process made it between our look and our mkdir: fine, it exists.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// `mkdir` (failing if it exists) with mode 0700, made durable in its parent.
pub(crate) fn create_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(DIR_MODE).create(path)?;
    fs::set_permissions(path, Permissions::from_mode(DIR_MODE))?;
    sync_parent(path)
}

/// Open for appending, creating it 0600 if missing (the directory is fsync'd then).
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    let existing = || OpenOptions::new().append(true).read(true).open(path);
    match existing() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let created = OpenOptions::new()
                .append(true)
                .read(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(path);
            match created {
                Ok(file) => {
                    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
                    sync_parent(path)?;
                    Ok(file)
                }
                // Another process created it in between (two runs starting at once).
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => existing(),
                Err(e) => Err(e),
            }
        }
        other => other,
    }
}

/// Create `path` (which must not exist) holding `bytes`.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)
}

/// Replace `path` with `bytes` all at once: readers see the old file or the new, never a
/// mix, and after a crash it holds one of the two.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// fsync the directory that holds `path`, so that a new or renamed entry survives a crash.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => File::open(parent)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}
