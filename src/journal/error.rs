//! What can go wrong with run state on disk, and with the site lock.

use std::path::PathBuf;

use super::lock::LockInfo;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum JournalError {
    #[error("could not {action} ({})", path.display())]
    #[diagnostic(code(drplan::journal::io))]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: std::io::Error,
    },

    #[error("the journal {} is damaged at line {line}: {reason}", path.display())]
    #[diagnostic(
        code(drplan::journal::corrupt),
        help(
            "a line other than the last cannot be half-written by a crash, so the file was changed after drplan wrote it; restore it from a backup, drplan will not guess which steps ran"
        )
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("an earlier write to the journal {} failed, so its content on disk is unknown and nothing more is written", path.display())]
    #[diagnostic(
        code(drplan::journal::poisoned),
        help("stop this run; `drplan resume` reads back what reached the disk")
    )]
    Poisoned { path: PathBuf },

    #[error("{id:?} is not a run id")]
    #[diagnostic(
        code(drplan::journal::invalid_run_id),
        help("run ids look like 20261125T203456.789Z-3f9a; `drplan status` lists them")
    )]
    InvalidRunId { id: String },

    #[error("there is no run {id} in {store}")]
    #[diagnostic(
        code(drplan::journal::no_such_run),
        help("`drplan status` lists the runs; is --state-dir (or --store) the one the run used?")
    )]
    RunNotFound { id: String, store: String },

    #[error("run {id} already exists")]
    #[diagnostic(code(drplan::journal::run_exists))]
    RunExists { id: String },

    #[error("cannot reach the store {store}: {message}")]
    #[diagnostic(
        code(drplan::store::unreachable),
        help(
            "nothing was started or changed; check that the etcd members are up and reachable from here, and the store's certificates and credentials (docs/store.md)"
        )
    )]
    Unreachable { store: String, message: String },

    #[error("could not {action} in the store {store}: {message}")]
    #[diagnostic(
        code(drplan::store::failed),
        help(
            "what etcd did with that request is unknown, so nothing more is written by this process; once the store answers again, `drplan resume` reads back what it holds"
        )
    )]
    Store {
        store: String,
        action: String,
        message: String,
    },

    #[error(
        "this controller no longer holds the lock of site '{site}' ({why}), so it writes nothing more"
    )]
    #[diagnostic(
        code(drplan::store::fenced),
        help(
            "its lease expired (the controller was cut off from etcd, or paused, for longer than the lease) and another controller may have taken the run over; see `drplan status` on the store"
        )
    )]
    Fenced { site: String, why: String },

    /// Something in the state directory that another user could have written or planted.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Insecure(#[from] crate::trust::Insecure),
}

impl JournalError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: impl Into<String>,
        source: std::io::Error,
    ) -> Self {
        if let Some(insecure) = crate::trust::is_insecure(&source) {
            return Self::Insecure(insecure.clone());
        }
        Self::Io {
            path: path.into(),
            action: action.into(),
            source,
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error("{}", held_message(site, holder.as_deref()))]
    #[diagnostic(
        code(drplan::journal::locked),
        help("wait for that run to end; if it is stuck, stop its process (the lock is freed when the holder exits, even by a crash); lock file: {}", path.display())
    )]
    Held {
        site: String,
        holder: Option<Box<LockInfo>>,
        path: PathBuf,
    },

    #[error("{}", held_message(site, holder.as_deref()))]
    #[diagnostic(
        code(drplan::journal::locked),
        help(
            "wait for that run to end. If its controller is gone, its lease expires at most {lease_secs}s after its last renewal; then `drplan resume RUN` (with the same --store) takes the run over; lock key: {key}"
        )
    )]
    HeldInStore {
        site: String,
        holder: Option<Box<LockInfo>>,
        key: String,
        lease_secs: i64,
    },

    #[error("could not {action} in the store {store}: {message}")]
    #[diagnostic(
        code(drplan::store::lock),
        help("nothing was started; check that the etcd members are up and reachable from here")
    )]
    Store {
        store: String,
        action: String,
        message: String,
    },

    #[error("{site:?} cannot name a lock file")]
    #[diagnostic(
        code(drplan::journal::invalid_site),
        help("a site name is a plain name like `lab`: no `/`, not starting with `.`")
    )]
    InvalidSite { site: String },

    #[error("could not {action} ({})", path.display())]
    #[diagnostic(code(drplan::journal::lock_io))]
    Io {
        path: PathBuf,
        action: String,
        #[source]
        source: std::io::Error,
    },

    /// The locks directory or a lock file is another user's, or a link.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Insecure(#[from] crate::trust::Insecure),
}

fn held_message(site: &str, holder: Option<&LockInfo>) -> String {
    match holder {
        Some(h) => format!("site '{site}' is locked by {h}"),
        // The holder locks before it writes its details; we looked in between.
        None => format!(
            "site '{site}' is locked by another drplan process (its details are not written yet)"
        ),
    }
}
