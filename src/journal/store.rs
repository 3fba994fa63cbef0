//! Runs stored as local files under `STATE_DIR/runs/RUN_ID/`: `plan.json` (the resolved
//! plan, written atomically once) and `journal.jsonl` (see `file.rs`).
//!
//! Every directory is 0700 and every file 0600; each new name is made durable by an fsync
//! of its directory before the run is handed out. Everything is opened through
//! `private_fs::Dir`: owned by this user, writable by nobody else, never through a link. This file must not read the plan or the
//! records: to the store they are bytes and opaque values.

use std::path::{Path, PathBuf};

use super::file::FileJournal;
use super::{
    HeldLock, JournalError, LockError, LockInfo, NewRun, OpenedRun, RunId, RunInfo, RunStore,
    SiteLock,
};
use crate::private_fs::Dir;

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

impl FileRunStore {
    /// `runs/`, made if missing (`private_fs::Dir`: checked, never through a link).
    fn make_runs(&self) -> Result<Dir, JournalError> {
        Dir::make_state(&self.state_dir)
            .and_then(|state| state.make_sub("runs"))
            .map_err(|e| JournalError::io(self.runs_dir(), "create the runs directory", e))
    }

    /// `runs/`, or None when there is none.
    fn runs(&self) -> Result<Option<Dir>, JournalError> {
        let runs = match Dir::open_state(&self.state_dir) {
            Ok(Some(state)) => state.sub("runs"),
            other => other,
        };
        runs.map_err(|e| JournalError::io(self.runs_dir(), "open the runs directory", e))
    }
}

impl RunStore for FileRunStore {
    fn create_run(&self, id: &RunId, plan: &[u8]) -> Result<NewRun, JournalError> {
        let runs = self.make_runs()?;
        let dir_path = self.run_dir(id);
        let dir = match runs.new_sub(id.as_str()) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(JournalError::RunExists { id: id.to_string() });
            }
            Err(e) => return Err(JournalError::io(&dir_path, "create the run directory", e)),
            Ok(dir) => dir,
        };
        dir.write_atomic(PLAN, plan)
            .map_err(|e| JournalError::io(dir_path.join(PLAN), "write the resolved plan", e))?;
        let (journal, _empty) = open_journal(&dir)?;
        Ok(NewRun {
            id: id.clone(),
            journal: Box::new(journal),
        })
    }

    fn open_run(&self, id: &RunId) -> Result<OpenedRun, JournalError> {
        let (dir, plan) = self.run(id)?;
        // A crash between writing plan.json and creating the journal leaves no journal:
        // that run simply has no records yet, and opening creates the file.
        let (journal, replay) = open_journal(&dir)?;
        Ok(OpenedRun {
            id: id.clone(),
            plan,
            replay,
            journal: Box::new(journal),
        })
    }

    fn read_run(&self, id: &RunId) -> Result<(Vec<u8>, super::Replay), JournalError> {
        let (dir, plan) = self.run(id)?;
        let path = dir.path().join(JOURNAL);
        let bytes = dir
            .read(JOURNAL)
            .map_err(|e| JournalError::io(&path, "read the journal", e))?
            .unwrap_or_default();
        let replay = super::decode(&bytes).map_err(|(line, reason)| JournalError::Corrupt {
            path,
            line,
            reason,
        })?;
        Ok((plan, replay))
    }

    fn list_runs(&self) -> Result<Vec<RunInfo>, JournalError> {
        let Some(runs) = self.runs()? else {
            return Ok(Vec::new());
        };
        let names = runs
            .subdirs()
            .map_err(|e| JournalError::io(runs.path(), "list the runs", e))?;
        let mut list = Vec::new();
        for name in names {
            // Anything that is not a run id (an editor's backup, a stray file) is not a run.
            let Ok(id) = name.parse::<RunId>() else {
                continue;
            };
            let dir = runs
                .sub(&name)
                .map_err(|e| JournalError::io(self.run_dir(&id), "open the run directory", e))?;
            if dir.is_some_and(|d| d.has_file(PLAN)) {
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

    fn holder(&self, site: &str) -> Option<LockInfo> {
        SiteLock::holder(&self.state_dir, site)
    }

    fn describe(&self) -> String {
        self.state_dir.display().to_string()
    }
}

impl FileRunStore {
    /// A run's (checked) directory and its resolved plan.
    fn run(&self, id: &RunId) -> Result<(Dir, Vec<u8>), JournalError> {
        let not_found = || JournalError::RunNotFound {
            id: id.to_string(),
            store: self.state_dir.display().to_string(),
        };
        let dir_path = self.run_dir(id);
        let dir = match self.runs()? {
            Some(runs) => runs
                .sub(id.as_str())
                .map_err(|e| JournalError::io(&dir_path, "open the run directory", e))?,
            None => None,
        };
        let Some(dir) = dir else {
            return Err(not_found());
        };
        let plan = dir
            .read(PLAN)
            .map_err(|e| JournalError::io(dir_path.join(PLAN), "read the resolved plan", e))?
            .ok_or_else(not_found)?;
        Ok((dir, plan))
    }
}

/// The run's journal, opened in its (checked) directory.
fn open_journal(dir: &Dir) -> Result<(FileJournal, super::Replay), JournalError> {
    let path = dir.path().join(JOURNAL);
    let file = dir
        .open_append(JOURNAL)
        .map_err(|e| JournalError::io(&path, "open the journal", e))?;
    FileJournal::from_file(path, file)
}
