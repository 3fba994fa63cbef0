//! The journal as a local file: `journal.jsonl`, appended and fsync'd.
//!
//! `append_all` writes its lines with one `write` on an `O_APPEND` descriptor and returns
//! only after one `sync_data` for all of them, so a record the executor has seen succeed is on disk. A torn last
//! line (a crash mid-write) is dropped by replay and cut off by the next append, before
//! anything new is written, so it can never be mistaken for a record later. After a failed
//! write or fsync the journal refuses further appends: the kernel may have dropped the
//! dirty pages (the "fsyncgate" lesson), so what is on disk is unknown.
//!
//! This file must not interpret records, and is used only through the `Journal` trait.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::line;
use super::{Journal, JournalError, Replay};
use crate::private_fs;

/// A journal stored in one local file.
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
    file: File,
    next_seq: u64,
    /// bytes of intact lines; anything after them is a torn tail
    valid_len: u64,
    torn_tail: bool,
    poisoned: bool,
}

impl FileJournal {
    /// Open (creating it 0600 if missing) and read back what it holds.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, Replay), JournalError> {
        let path = path.into();
        let file = private_fs::open_append(&path)
            .map_err(|e| JournalError::io(&path, "open the journal", e))?;
        Self::from_file(path, file)
    }

    /// The journal in `file`, already opened for appending and reading (by the run store,
    /// relative to its checked directory), and what it holds.
    pub(crate) fn from_file(path: PathBuf, file: File) -> Result<(Self, Replay), JournalError> {
        let mut journal = Self {
            path,
            file,
            next_seq: 1,
            valid_len: 0,
            torn_tail: false,
            poisoned: false,
        };
        let replay = journal.replay()?;
        Ok((journal, replay))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cut_torn_tail(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.valid_len)?;
        self.file.sync_data()?;
        self.torn_tail = false;
        Ok(())
    }
}

impl Journal for FileJournal {
    fn append_all(&mut self, records: &[serde_json::Value]) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
            });
        }
        let mut lines = Vec::new();
        for (seq, record) in (self.next_seq..).zip(records) {
            let line = line::encode(seq, record).map_err(|e| {
                JournalError::io(
                    &self.path,
                    "encode a journal record",
                    std::io::Error::other(e),
                )
            })?;
            lines.extend_from_slice(&line);
        }
        if self.torn_tail
            && let Err(e) = self.cut_torn_tail()
        {
            self.poisoned = true;
            return Err(JournalError::io(&self.path, "cut the torn last line", e));
        }
        // One write of whole lines (O_APPEND); write_all only loops on a short write,
        // which a regular file gives only when something is already wrong.
        if let Err(e) = self.file.write_all(&lines) {
            self.poisoned = true;
            return Err(JournalError::io(&self.path, "append to the journal", e));
        }
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(JournalError::io(&self.path, "fsync the journal", e));
        }
        self.valid_len += lines.len() as u64;
        self.next_seq += records.len() as u64;
        Ok(())
    }

    fn replay(&mut self) -> Result<Replay, JournalError> {
        let mut bytes = Vec::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut bytes))
            .map_err(|e| JournalError::io(&self.path, "read the journal", e))?;
        let scan = line::scan(&bytes).map_err(|d| JournalError::Corrupt {
            path: self.path.clone(),
            line: d.line,
            reason: d.reason,
        })?;
        self.next_seq = scan.records.len() as u64 + 1;
        self.valid_len = scan.valid_len;
        self.torn_tail = scan.torn_tail;
        Ok(Replay {
            records: scan.records,
            torn_tail: scan.torn_tail,
        })
    }
}
