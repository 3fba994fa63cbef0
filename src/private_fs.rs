//! Creating drplan's own files privately (directories 0700, files 0600, whatever the umask)
//! and durably (the data fsync'd, and the directory holding a new name fsync'd too, since a
//! file whose directory entry is lost in a crash is lost with it). Used for run state, site
//! locks and the SSH control directory; it must not decide where those live.
//!
//! Modes are set explicitly after creation: `mode()` at creation time is filtered by the
//! umask, which could leave a file we cannot reopen (umask 0277) or one others can read
//! (umask 000 with a careless mode). Only what drplan creates is touched; an existing
//! directory the user made keeps its mode.
//!
//! The state directory and everything in it are reached through `Dir`: relative to the
//! directory's descriptor, never through a symbolic link, each part checked to be this
//! user's alone (`trust`).

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

use crate::trust;

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

/// fsync the directory that holds `path`, so that a new or renamed entry survives a crash.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => File::open(parent)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// A directory of drplan's own (the state directory, or one inside it), opened without
/// following symbolic links and checked: owned by this user, writable by nobody else
/// (`trust`). Everything below it is reached relative to its descriptor (`openat`, with
/// `O_NOFOLLOW`), so a link planted inside is refused, never followed, and renaming a
/// directory above it cannot redirect what drplan opens.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// The state directory at `path`, or `None` if there is none. `path` itself may be a
    /// link, when the trust rule accepts the way to it.
    pub(crate) fn open_state(path: &Path) -> io::Result<Option<Dir>> {
        let abs = std::path::absolute(path)?;
        trust::check_way_to(&abs).map_err(trust::Insecure::into_io)?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rfs::open(path, flags, Mode::empty()) {
            Ok(fd) => Dir::checked(fd, path.to_path_buf()).map(Some),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The state directory at `path`, made (0700, with missing parents) if missing.
    pub(crate) fn make_state(path: &Path) -> io::Result<Dir> {
        ensure_dir(path)?;
        Dir::open_state(path)?.ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// The directory `name` in this one, or `None` if there is none.
    pub(crate) fn sub(&self, name: &str) -> io::Result<Option<Dir>> {
        self.open_sub(name, false)
    }

    /// The directory `name` in this one, made (0700, durably) if missing.
    pub(crate) fn make_sub(&self, name: &str) -> io::Result<Dir> {
        match rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => self.sync()?,
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        self.open_sub(name, true)?
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// A new directory `name` (0700, made durable): an error of kind `AlreadyExists` if
    /// there is one.
    pub(crate) fn new_sub(&self, name: &str) -> io::Result<Dir> {
        rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(DIR_MODE))?;
        self.sync()?;
        self.open_sub(name, true)?
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn open_sub(&self, name: &str, made: bool) -> io::Result<Option<Dir>> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => {
                let dir = Dir::checked(fd, self.path.join(name))?;
                if made {
                    // Ours alone, whatever the umask made of the mkdir.
                    rfs::fchmod(&dir.fd, Mode::from_raw_mode(DIR_MODE))?;
                }
                Ok(Some(dir))
            }
            Err(rustix::io::Errno::NOENT) if !made => Ok(None),
            Err(e) => Err(self.refuse_link(name, e)),
        }
    }

    /// The file `name` opened for appending (and reading), created 0600 if missing.
    pub(crate) fn open_append(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Err(rustix::io::Errno::NOENT) => {
                let create = flags | OFlags::CREATE | OFlags::EXCL;
                match rfs::openat(&self.fd, name, create, Mode::from_raw_mode(FILE_MODE)) {
                    Ok(fd) => {
                        rfs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))?;
                        self.sync()?;
                        fd
                    }
                    // Another process created it in between (two runs starting at once).
                    Err(rustix::io::Errno::EXIST) => {
                        rfs::openat(&self.fd, name, flags, Mode::empty())
                            .map_err(|e| self.refuse_link(name, e))?
                    }
                    Err(e) => return Err(self.refuse_link(name, e)),
                }
            }
            Err(e) => return Err(self.refuse_link(name, e)),
            Ok(fd) => fd,
        };
        self.check_file(fd, name)
    }

    /// The whole of the file `name`, or `None` if there is none.
    pub(crate) fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.refuse_link(name, e)),
        };
        let mut bytes = Vec::new();
        self.check_file(fd, name)?.read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }

    /// Replace the file `name` with `bytes` all at once: readers see the old file or the
    /// new, never a mix, and after a crash it holds one of the two.
    pub(crate) fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = format!("{name}.tmp");
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(
            &self.fd,
            tmp.as_str(),
            flags,
            Mode::from_raw_mode(FILE_MODE),
        )
        .map_err(|e| self.refuse_link(&tmp, e))?;
        rfs::fchmod(&fd, Mode::from_raw_mode(FILE_MODE))?;
        let mut file = self.check_file(fd, &tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        rfs::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
        self.sync()
    }

    /// The names in this directory that are directories themselves (never links).
    pub(crate) fn subdirs(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        let mut entries = rfs::Dir::read_from(&self.fd)?;
        while let Some(entry) = entries.read() {
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                rfs::FileType::Unknown => rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|st| rfs::FileType::from_raw_mode(st.st_mode))?,
                known => known,
            };
            if kind == rfs::FileType::Directory {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Is there a file (not a link) `name` here?
    pub(crate) fn has_file(&self, name: &str) -> bool {
        rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// fsync this directory, so that a new or renamed entry survives a crash.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(rfs::fsync(&self.fd)?)
    }

    fn checked(fd: OwnedFd, path: PathBuf) -> io::Result<Dir> {
        let st = rfs::fstat(&fd)?;
        if let Some(problem) = trust::problem(st.st_uid, st.st_mode, true) {
            trust::refuse(&path, problem).map_err(trust::Insecure::into_io)?;
        }
        Ok(Dir { fd, path })
    }

    fn check_file(&self, fd: OwnedFd, name: &str) -> io::Result<File> {
        let st = rfs::fstat(&fd)?;
        let path = self.path.join(name);
        if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        if let Some(problem) = trust::problem(st.st_uid, st.st_mode, true) {
            trust::refuse(&path, problem).map_err(trust::Insecure::into_io)?;
        }
        Ok(File::from(fd))
    }

    /// An `openat` with `O_NOFOLLOW` that failed: a link where one must never be is refused
    /// as such (ELOOP for a file, ENOTDIR for a link opened as a directory).
    fn refuse_link(&self, name: &str, e: rustix::io::Errno) -> io::Error {
        let is_link = rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Symlink);
        if is_link {
            trust::link(&self.path.join(name)).into_io()
        } else {
            e.into()
        }
    }
}
