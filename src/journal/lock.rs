//! One run per site at a time: an exclusive `flock` on `STATE_DIR/locks/<site>.lock`.
//!
//! flock semantics (`std::fs::File::try_lock`) mean the kernel frees the lock when its
//! holder dies, however it dies; no PID guessing. The file holds the holder's details as
//! JSON, so a refused operator learns who holds the site. On release the details are
//! erased but the file stays: deleting a lock file races with a process that has just
//! opened it and would then lock a file nobody else can see. Details found in a file whose
//! lock is free were left by a holder that died: the lock is taken over and the caller gets
//! a note to print. This file must not decide what a run does when it is refused.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::LockError;
use crate::clock::Timestamp;
use crate::private_fs::Dir;
use crate::whoami;

/// Who holds (or held) a site's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub run_id: String,
    pub pid: u32,
    pub user: String,
    pub host: String,
    pub started_at: Timestamp,
    /// the command line, for the operator who finds it
    pub command: String,
}

impl LockInfo {
    /// Details of this process, starting now.
    pub fn for_this_process(run_id: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            pid: std::process::id(),
            // The details are for people; an odd system must not stop the run over them.
            user: whoami::user_name().unwrap_or_else(|_| "unknown user".to_owned()),
            host: whoami::host_name().unwrap_or_else(|_| "unknown host".to_owned()),
            started_at: Timestamp::now(),
            command: command.into(),
        }
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run {} (pid {} on host {} since {})",
            self.run_id, self.pid, self.host, self.started_at
        )
    }
}

/// A held site lock; dropping it releases the site.
#[derive(Debug)]
pub struct SiteLock {
    file: File,
    path: PathBuf,
}

/// The result of a successful `SiteLock::acquire`.
#[derive(Debug)]
pub struct Acquired {
    pub lock: SiteLock,
    /// details left by a holder that died without releasing the site
    pub stale: Option<LockInfo>,
}

impl Acquired {
    /// What to tell the operator about a taken-over stale lock, if there was one.
    pub fn note(&self) -> Option<String> {
        self.stale
            .as_ref()
            .map(|old| format!("took over the lock from {old}, which ended without releasing it"))
    }
}

impl SiteLock {
    /// Lock `site` for the run described by `info`, or say who holds it.
    pub fn acquire(state_dir: &Path, site: &str, info: &LockInfo) -> Result<Acquired, LockError> {
        if site.is_empty() || site.starts_with('.') || site.contains(['/', '\0']) {
            return Err(LockError::InvalidSite {
                site: site.to_owned(),
            });
        }
        let name = format!("{site}.lock");
        let path = state_dir.join("locks").join(&name);
        let io = |action: &str| {
            let path = path.clone();
            let action = action.to_owned();
            move |source: std::io::Error| match crate::trust::is_insecure(&source) {
                Some(insecure) => LockError::Insecure(insecure.clone()),
                None => LockError::Io {
                    path,
                    action,
                    source,
                },
            }
        };
        // Relative to the checked state directory, never through a link: a lock file
        // planted as a link to another file would have that file truncated.
        let dir = Dir::make_state(state_dir)
            .and_then(|state| state.make_sub("locks"))
            .map_err(io("create the locks directory"))?;
        let mut file = dir.open_append(&name).map_err(io("open the lock file"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_info(&mut file).ok().flatten().map(Box::new);
                return Err(LockError::Held {
                    site: site.to_owned(),
                    holder,
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock the lock file")(e)),
        }
        // Ours now. Details still in the file belong to a holder that died.
        let stale = read_info(&mut file).ok().flatten();
        let details = serde_json::to_vec_pretty(info)
            .map_err(|e| io("encode the lock details")(std::io::Error::other(e)))?;
        file.set_len(0)
            .and_then(|()| file.write_all(&details))
            .and_then(|()| file.sync_data())
            .map_err(io("write the lock details"))?;
        Ok(Acquired {
            lock: SiteLock { file, path },
            stale,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds `site`'s lock now, looking without locking or writing anything: the
    /// details in the lock file, if a process on this host with that pid still runs (a
    /// holder that died leaves details behind; a clean release erases them).
    pub fn holder(state_dir: &Path, site: &str) -> Option<LockInfo> {
        let locks = Dir::open_state(state_dir).ok()??.sub("locks").ok()??;
        let text = locks.read(&format!("{site}.lock")).ok()??;
        let info: LockInfo = serde_json::from_slice(&text).ok()?;
        let here = whoami::host_name().ok()?;
        let alive = Path::new(&format!("/proc/{}", info.pid)).exists();
        (info.host == here && alive).then_some(info)
    }
}

impl Drop for SiteLock {
    fn drop(&mut self) {
        // Erase the details while still holding the lock, so that nobody ever reads them as
        // a stale holder's; closing the file then frees the lock. Failure leaves details
        // behind, which the next run reports as a stale lock: harmless.
        let _ = self.file.set_len(0).and_then(|()| self.file.sync_data());
        let _ = self.file.unlock();
    }
}

/// The details in a lock file: None when it is empty (released cleanly, or not yet written).
fn read_info(file: &mut File) -> std::io::Result<Option<LockInfo>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(std::io::Error::other)
}
