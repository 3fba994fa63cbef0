//! Runs stored as local files under `STATE_DIR/runs/RUN_ID/`: `plan.json` (the resolved
//! plan, written atomically once) and `journal.jsonl` (see `file.rs`).
//!
//! Every directory is 0700 and every file 0600; each new name is made durable by an fsync
//! of its directory before the run is handed out. This file must not read the plan or the
//! records: to the store they are bytes and opaque values.

use std::path::{Path, PathBuf};

use super::file::FileJournal;
use super::{
    HeldLock, JournalError, LockError, LockInfo, NewRun, OpenedRun, RunId, RunInfo, RunStore,
    SiteLock,
};
use crate::private_fs;

const PLAN: &str = "plan.json";
const JOURNAL: &str = "journal.jsonl";

/// Runs kept in a local state directory (`--state-dir`, default `.drplan`).
#[derive(Debug, Clone)]
pub struct FileRunStore {
    state_dir: PathBuf,
}

impl FileRunStore {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn runs_dir(&self) -> PathBuf {
        self.state_dir.join("runs")
    }

    /// Where a run's files live.
    pub fn run_dir(&self, id: &RunId) -> PathBuf {
        self.runs_dir().join(id.as_str())
    }
}

impl RunStore for FileRunStore {
    fn create_run(&self, id: &RunId, plan: &[u8]) -> Result<NewRun, JournalError> {
        let runs = self.runs_dir();
        private_fs::ensure_dir(&runs)
            .map_err(|e| JournalError::io(&runs, "create the runs directory", e))?;
        let dir = self.run_dir(id);
        match private_fs::create_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(JournalError::RunExists { id: id.to_string() });
            }
            Err(e) => return Err(JournalError::io(&dir, "create the run directory", e)),
            Ok(()) => {}
        }
        let plan_path = dir.join(PLAN);
        private_fs::write_atomic(&plan_path, plan)
            .map_err(|e| JournalError::io(&plan_path, "write the resolved plan", e))?;
        let (journal, _empty) = FileJournal::open(dir.join(JOURNAL))?;
        Ok(NewRun {
            id: id.clone(),
            journal: Box::new(journal),
        })
    }

    fn open_run(&self, id: &RunId) -> Result<OpenedRun, JournalError> {
        let dir = self.run_dir(id);
        let plan_path = dir.join(PLAN);
        let plan = match std::fs::read(&plan_path) {
            Ok(plan) => plan,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::RunNotFound {
                    id: id.to_string(),
                    store: self.state_dir.display().to_string(),
                });
            }
            Err(e) => return Err(JournalError::io(&plan_path, "read the resolved plan", e)),
        };
        // A crash between writing plan.json and creating the journal leaves no journal:
        // that run simply has no records yet, and opening creates the file.
        let (journal, replay) = FileJournal::open(dir.join(JOURNAL))?;
        Ok(OpenedRun {
            id: id.clone(),
            plan,
            replay,
            journal: Box::new(journal),
        })
    }

    fn list_runs(&self) -> Result<Vec<RunInfo>, JournalError> {
        let runs = self.runs_dir();
        let entries = match std::fs::read_dir(&runs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(JournalError::io(&runs, "list the runs", e)),
        };
        let mut list = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| JournalError::io(&runs, "list the runs", e))?;
            // Anything that is not a run id (an editor's backup, a stray file) is not a run.
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<RunId>().ok())
            else {
                continue;
            };
            if entry.path().join(PLAN).is_file() {
                list.push(RunInfo {
                    created: id.created(),
                    id,
                });
            }
        }
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    fn lock_site(&self, site: &str, holder: &LockInfo) -> Result<HeldLock, LockError> {
        let acquired = SiteLock::acquire(&self.state_dir, site, holder)?;
        Ok(HeldLock::new(acquired.note(), acquired.lock))
    }

    fn describe(&self) -> String {
        self.state_dir.display().to_string()
    }
}
