//! Durable run state: the append-only, fsync'd run journal, the resolved plan beside it,
//! and the per-site lock.
//!
//! The executor defines what a record says; here records are opaque `serde_json::Value`s
//! that come back exactly as they went in, in order, or not at all. Storage sits behind two
//! traits, `Journal` (one run's records) and `RunStore` (creating, opening and listing runs),
//! so that a shared store (resuming a run from another controller when the first was lost
//! with the site) can be added without touching the executor. `FileRunStore` is the local
//! default. Only the executor writes journals; nothing here prints or interprets records.
//!
//! `EtcdStore` (`etcd/`) keeps the same runs and locks in etcd (`--store etcd://…`), so that
//! a controller at another site can continue a run; see docs/store.md.
//!
//! All of it is blocking I/O (an fsync per append, a few milliseconds; records that
//! are ready together share one fsync through `append_all`). The executor
//! journals between steps, when waiting for the disk is exactly what it must do; from async
//! code call it directly or via `tokio::task::spawn_blocking`.

/// Where the actions' calendar fields used to live (they moved to `crate::clock`).
pub(crate) use crate::clock;
mod error;
mod etcd;
mod file;
mod line;
mod lock;
mod run_id;
mod store;

use std::time::SystemTime;

pub use error::{JournalError, LockError};
pub use etcd::{EtcdConnect, EtcdStore, StoreUrl};
pub use file::FileJournal;
pub use lock::{Acquired, LockInfo, SiteLock};
pub use run_id::RunId;
pub use store::FileRunStore;

/// The records in a journal's bytes, as `FileJournal` reads them back: what tools and the
/// fuzz target (`fuzz/`) use. Err names the damaged line (1-based) and why.
pub fn decode(bytes: &[u8]) -> Result<Replay, (usize, String)> {
    line::scan(bytes)
        .map(|scan| Replay {
            records: scan.records,
            torn_tail: scan.torn_tail,
        })
        .map_err(|d| (d.line, d.reason))
}

/// The bytes of a journal holding `records`, as `FileJournal` writes them.
pub fn encode(records: &[serde_json::Value]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, r) in records.iter().enumerate() {
        // A `Value` always serialises.
        if let Ok(line) = line::encode(i as u64 + 1, r) {
            bytes.extend(line);
        }
    }
    bytes
}

/// One run's records, in order.
pub trait Journal: Send {
    /// Add a record at the end. When this returns `Ok`, the record is on disk (fsync'd).
    fn append(&mut self, record: &serde_json::Value) -> Result<(), JournalError> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Add records at the end, in order, with one flush to disk for all of them (group
    /// commit). When this returns `Ok`, every one is on disk; after a crash, a prefix of
    /// them may be (each line is whole or torn, and replay drops a torn tail).
    fn append_all(&mut self, records: &[serde_json::Value]) -> Result<(), JournalError>;

    /// Read back every intact record, oldest first.
    fn replay(&mut self) -> Result<Replay, JournalError>;
}

/// What a journal held when it was read back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    pub records: Vec<serde_json::Value>,
    /// The last record was being written when the writer stopped (a crash): it is not in
    /// `records`. Whatever it announced is in doubt, never a success. The next append
    /// removes it.
    pub torn_tail: bool,
}

/// Where runs are kept.
pub trait RunStore: Send + Sync {
    /// Start a run: store its resolved plan (atomically) and an empty journal.
    fn create_run(&self, id: &RunId, plan: &[u8]) -> Result<NewRun, JournalError>;

    /// Open a run to resume, roll back or show it.
    fn open_run(&self, id: &RunId) -> Result<OpenedRun, JournalError>;

    /// Read a run's plan and records without opening it for writing: nothing is created,
    /// cut or locked (a run being written shows what is on disk so far; a line being
    /// written is a torn tail).
    fn read_run(&self, id: &RunId) -> Result<(Vec<u8>, Replay), JournalError>;

    /// Every run, oldest first.
    fn list_runs(&self) -> Result<Vec<RunInfo>, JournalError>;

    /// The most recently created run, if any.
    fn latest_run(&self) -> Result<Option<RunInfo>, JournalError> {
        Ok(self.list_runs()?.pop())
    }

    /// Take `site`'s lock for this process (one run per site at a time), or say who holds
    /// it. While it is held, this store's journals may be written; dropping it releases
    /// the site.
    fn lock_site(&self, site: &str, holder: &LockInfo) -> Result<HeldLock, LockError>;

    /// Who holds `site`'s lock now, looked up without taking it or writing anything (None:
    /// nobody, or it cannot be told).
    fn holder(&self, site: &str) -> Option<LockInfo>;

    /// Where the runs are, for messages (a directory, or an etcd URL without its options).
    fn describe(&self) -> String;
}

/// A site's lock, however the store keeps it; dropping it releases the site.
pub struct HeldLock {
    /// what to tell the operator about a holder that died without releasing the site
    pub note: Option<String>,
    _held: Box<dyn Send>,
}

impl HeldLock {
    pub fn new(note: Option<String>, held: impl Send + 'static) -> Self {
        Self {
            note,
            _held: Box::new(held),
        }
    }
}

/// A run just created.
pub struct NewRun {
    pub id: RunId,
    pub journal: Box<dyn Journal>,
}

/// A run opened again.
pub struct OpenedRun {
    pub id: RunId,
    /// the resolved plan, byte for byte as `create_run` stored it
    pub plan: Vec<u8>,
    pub replay: Replay,
    /// appends continue after the last intact record
    pub journal: Box<dyn Journal>,
}

/// A run as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub id: RunId,
    pub created: SystemTime,
}
