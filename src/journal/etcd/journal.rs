//! One run's journal in etcd: record SEQ is the key `runs/RUN/journal/SEQ`, holding the
//! line `line.rs` makes (so the checksum travels with it).
//!
//! `append_all` is one transaction per batch (up to `BATCH` records): it writes only if the
//! site's lock key still has this process's create revision and lease (the fence) and the
//! first new key does not exist yet. So it is all or nothing, never torn, and a controller
//! that lost its lock cannot write. A transaction whose answer was lost is retried; a retry
//! that finds its own records already there counts them as written. Any other failure
//! poisons the journal, as a failed fsync poisons `FileJournal`: what etcd holds is read
//! back by the next `resume`, never guessed here.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use etcd_client::{Compare, CompareOp, GetOptions, SortOrder, SortTarget, Txn, TxnOp};

use super::Inner;
use super::lock::Fence;
use crate::journal::{Journal, JournalError, Replay, RunId, line};

/// Records per transaction: etcd refuses more than 128 operations in one by default.
const BATCH: usize = 100;

pub(super) struct EtcdJournal {
    inner: Arc<Inner>,
    /// `…/runs/RUN/journal/`
    dir: String,
    next_seq: u64,
    poisoned: bool,
}

impl EtcdJournal {
    pub(super) fn new(inner: Arc<Inner>, id: &RunId, next_seq: u64) -> Self {
        let dir = inner.key(&format!("/runs/{id}/journal/"));
        EtcdJournal {
            inner,
            dir,
            next_seq,
            poisoned: false,
        }
    }

    fn key(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.dir)
    }

    fn failed(&self, action: &str, message: String) -> JournalError {
        JournalError::Store {
            store: self.inner.store.clone(),
            action: action.to_owned(),
            message,
        }
    }

    /// Write `lines` as records `first…`, fenced; `Ok` once etcd has them.
    fn write(&self, fence: &Fence, first: u64, lines: Vec<Vec<u8>>) -> Result<(), JournalError> {
        let puts: Vec<(String, Vec<u8>)> = (first..).map(|s| self.key(s)).zip(lines).collect();
        let (lock, revision, lease) = (fence.key.clone(), fence.create_revision, fence.lease);
        let first_key = puts[0].0.clone();
        let request = puts.clone();
        let written = self
            .inner
            .call(move |mut c| {
                let txn = Txn::new()
                    .when([
                        Compare::create_revision(lock.clone(), CompareOp::Equal, revision),
                        Compare::lease(lock.clone(), CompareOp::Equal, lease),
                        Compare::version(first_key.clone(), CompareOp::Equal, 0),
                    ])
                    .and_then(
                        request
                            .iter()
                            .map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None))
                            .collect::<Vec<_>>(),
                    );
                async move { c.txn(txn).await }
            })
            .map_err(|m| self.failed("append to the journal", m))?;
        if written.succeeded() {
            return Ok(());
        }
        self.explain_refusal(fence, &puts)
    }

    /// The transaction's conditions did not hold: either an earlier try of it went through
    /// (its answer was lost), or the lock is no longer ours, or the records are taken.
    fn explain_refusal(
        &self,
        fence: &Fence,
        puts: &[(String, Vec<u8>)],
    ) -> Result<(), JournalError> {
        let lock = fence.key.clone();
        let mut held = self
            .inner
            .call(move |mut c| {
                let lock = lock.clone();
                async move { c.get(lock, None).await }
            })
            .map_err(|m| self.failed("read the site's lock", m))?;
        let ours = held.kvs().first().is_some_and(|kv| {
            kv.create_revision() == fence.create_revision && kv.lease() == fence.lease
        });
        if !ours {
            let why = match held.take_kvs().pop() {
                None => "its lease expired".to_owned(),
                Some(kv) => match serde_json::from_slice::<crate::journal::LockInfo>(kv.value()) {
                    Ok(other) => format!("it is now held by {other}"),
                    Err(_) => "it is now held by another controller".to_owned(),
                },
            };
            return Err(JournalError::Fenced {
                site: fence.site.clone(),
                why,
            });
        }
        let stored = self.read(&puts[0].0, puts.len() as i64)?;
        let same = stored.len() == puts.len()
            && stored
                .iter()
                .zip(puts)
                .all(|((k, v), (pk, pv))| k == pk && v == pv);
        if same {
            Ok(())
        } else {
            Err(self.failed(
                "append to the journal",
                format!("record {} is already written, by another writer", puts[0].0),
            ))
        }
    }

    /// Keys and values from `from` on (at most `limit`, 0: all) in this journal, in order.
    fn read(&self, from: &str, limit: i64) -> Result<Vec<(String, Vec<u8>)>, JournalError> {
        let (from, end) = (from.to_owned(), prefix_end(&self.dir));
        let mut found = self
            .inner
            .call(move |mut c| {
                let options = GetOptions::new()
                    .with_range(end.clone())
                    .with_limit(limit)
                    .with_sort(SortTarget::Key, SortOrder::Ascend);
                let from = from.clone();
                async move { c.get(from, Some(options)).await }
            })
            .map_err(|m| self.failed("read the journal", m))?;
        Ok(found
            .take_kvs()
            .into_iter()
            .map(|kv| {
                let (k, v) = kv.into_key_value();
                (String::from_utf8_lossy(&k).into_owned(), v)
            })
            .collect())
    }
}

impl Journal for EtcdJournal {
    fn append_all(&mut self, records: &[serde_json::Value]) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.dir.clone().into(),
            });
        }
        let fence = self
            .inner
            .fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some(fence) = fence else {
            return Err(self.failed(
                "append to the journal",
                "this process holds no site lock".into(),
            ));
        };
        if fence.lost.load(Ordering::SeqCst) {
            self.poisoned = true;
            return Err(JournalError::Fenced {
                site: fence.site,
                why: "etcd said its lease expired".into(),
            });
        }
        for batch in records.chunks(BATCH) {
            let mut lines = Vec::with_capacity(batch.len());
            for (seq, record) in (self.next_seq..).zip(batch) {
                lines.push(
                    line::encode(seq, record)
                        .map_err(|e| self.failed("encode a journal record", e.to_string()))?,
                );
            }
            if let Err(e) = self.write(&fence, self.next_seq, lines) {
                self.poisoned = true;
                return Err(e);
            }
            self.next_seq += batch.len() as u64;
        }
        Ok(())
    }

    fn replay(&mut self) -> Result<Replay, JournalError> {
        let first = self.key(0);
        let bytes: Vec<u8> = self
            .read(&first, 0)?
            .into_iter()
            .flat_map(|(_, v)| v)
            .collect();
        let corrupt = |line, reason| JournalError::Corrupt {
            path: self.dir.clone().into(),
            line,
            reason,
        };
        let scan = line::scan(&bytes).map_err(|d| corrupt(d.line, d.reason))?;
        // Each record is written whole by a transaction: a torn one was changed by hand.
        if scan.torn_tail {
            return Err(corrupt(
                scan.records.len() + 1,
                "an incomplete record (etcd writes them whole)".into(),
            ));
        }
        self.next_seq = scan.records.len() as u64 + 1;
        Ok(Replay {
            records: scan.records,
            torn_tail: false,
        })
    }
}

/// The first key after every key starting with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    // The prefix is text ending in `/`, whose last byte can always be incremented.
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}
