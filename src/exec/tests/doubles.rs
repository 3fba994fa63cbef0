//! Test doubles for the executor, shared by the scheduling tests and the property test: a
//! journal in memory that can "crash" after a chosen append, and a `StepRunner` that
//! records every call (start and end, in order) and fails the calls it is told to fail
//! until they are fixed. Nothing here sleeps unless a test asks it to.

use crate::diag::SourceFile;
use crate::journal::{Journal, JournalError, Replay};
use crate::load::Document;
use crate::step::{Call, FailureKind, StepFailure, StepRunner};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a simulated crash stops a process: at its `at`-th append (counted per journal
/// handle, as the binary's `DRPLAN_CRASH_AFTER_RECORD` counts per process). `torn`: that
/// record never reached the disk (a crash while it was written: whatever ran before it
/// is on the host but not in the journal); otherwise it did, and the crash came right after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CrashAt {
    pub at: u64,
    pub torn: bool,
}

/// A journal in memory. Clones share the records; each clone counts its own appends.
#[derive(Clone, Default)]
pub(crate) struct MemJournal {
    pub records: Arc<Mutex<Vec<Value>>>,
    /// A record was lost to a crash (what `FileJournal` reports as a torn tail).
    pub torn: Arc<Mutex<bool>>,
    crash: Option<CrashAt>,
    appended: u64,
}

impl MemJournal {
    /// A handle on the same records for a new process, which crashes as `crash` says.
    pub(crate) fn process(&self, crash: Option<CrashAt>) -> MemJournal {
        MemJournal {
            records: Arc::clone(&self.records),
            torn: Arc::clone(&self.torn),
            crash,
            appended: 0,
        }
    }

    pub(crate) fn records(&self) -> Vec<Value> {
        self.records.lock().unwrap().clone()
    }

    pub(crate) fn push(&self, record: Value) {
        self.records.lock().unwrap().push(record);
    }
    fn append_one(&mut self, record: &Value) -> Result<(), JournalError> {
        self.appended += 1;
        match self.crash {
            Some(c) if c.at == self.appended => {
                if c.torn {
                    *self.torn.lock().unwrap() = true;
                } else {
                    self.records.lock().unwrap().push(record.clone());
                    *self.torn.lock().unwrap() = false;
                }
                Err(JournalError::Io {
                    path: "memory".into(),
                    action: "go on: the process was killed (simulated)".into(),
                    source: std::io::Error::other("killed"),
                })
            }
            // A process that crashed writes nothing more.
            Some(c) if c.at < self.appended => Err(JournalError::Poisoned {
                path: "memory".into(),
            }),
            _ => {
                self.records.lock().unwrap().push(record.clone());
                *self.torn.lock().unwrap() = false;
                Ok(())
            }
        }
    }
}

impl Journal for MemJournal {
    // Record by record, so a simulated crash can fall inside a group commit.
    fn append_all(&mut self, records: &[Value]) -> Result<(), JournalError> {
        records.iter().try_for_each(|r| self.append_one(r))
    }
    fn replay(&mut self) -> Result<Replay, JournalError> {
        Ok(Replay {
            records: self.records(),
            torn_tail: *self.torn.lock().unwrap(),
        })
    }
}

/// One thing the fake host saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Start(String),
    End { tag: String, ok: bool },
}

/// A fake host. A call is named by its tag: `with.path`, else `with.argv[0]`, else the
/// action. A call starts, yields once (or sleeps `delay_ms`) so that calls in flight
/// interleave, then ends; a call dropped in between (its process crashed) never ends.
#[derive(Default)]
pub struct Fake {
    /// (tag, start, end) of every call that ended.
    pub calls: Mutex<Vec<(String, Instant, Instant)>>,
    /// Every start and end, in order.
    pub seen: Mutex<Vec<Seen>>,
    /// Tags whose calls fail, until a test removes them (an operator fixed the cause).
    pub fail: Mutex<HashSet<String>>,
    pub delay_ms: u64,
    /// Tags that take this long instead of `delay_ms`.
    pub delay_for: std::collections::HashMap<String, u64>,
}

impl Fake {
    pub fn failing(tags: &[&str]) -> Fake {
        Fake {
            fail: Mutex::new(tags.iter().map(std::string::ToString::to_string).collect()),
            ..Fake::default()
        }
    }

    /// Tags of the calls that ended, in order.
    pub fn order(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }

    /// How many calls with this tag ended well.
    pub fn succeeded(&self, tag: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| matches!(s, Seen::End { tag: t, ok: true } if t == tag))
            .count()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn tag_of(call: &Call) -> String {
    let p = &call.params;
    p.get("path")
        .and_then(Value::as_str)
        .or_else(|| p.get("argv").and_then(|a| a.get(0)).and_then(Value::as_str))
        .unwrap_or(&call.action)
        .to_string()
}

impl StepRunner for Arc<Fake> {
    async fn call(&self, call: Call) -> Result<Value, StepFailure> {
        let start = Instant::now();
        let tag = tag_of(&call);
        self.seen.lock().unwrap().push(Seen::Start(tag.clone()));
        let delay = self.delay_for.get(&tag).copied().unwrap_or(self.delay_ms);
        if delay == 0 {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let ok = !self.fail.lock().unwrap().contains(&tag);
        self.seen.lock().unwrap().push(Seen::End {
            tag: tag.clone(),
            ok,
        });
        self.calls
            .lock()
            .unwrap()
            .push((tag.clone(), start, Instant::now()));
        if !ok {
            return Err(StepFailure {
                status: Some(1),
                ..StepFailure::new(FailureKind::Failed, call.role, format!("{tag} broke"))
            });
        }
        Ok(json!({ "tag": tag, "ok": true, "exists": true }))
    }

    // The double runs no commands, so none of them is ever left running.
    async fn processes(
        &self,
        _role: &str,
        _identity: &crate::process::CommandIdentity,
    ) -> Result<Vec<i32>, StepFailure> {
        Ok(Vec::new())
    }

    async fn signal(
        &self,
        _role: &str,
        _identity: &crate::process::CommandIdentity,
        _signal: &str,
    ) -> Result<Vec<i32>, StepFailure> {
        Ok(Vec::new())
    }
}

pub(crate) const SITE: &str = "version: 1\nsite: t\nhosts:\n  a: { address: 127.0.0.1, transport: local }\n  b: { address: 127.0.0.1, transport: local }\n";

pub(crate) fn graph(plan: &str) -> crate::graph::PlanGraph {
    let p = Document::parse(SourceFile::new("p.yaml", plan)).unwrap();
    let s = Document::parse(SourceFile::new("s.yaml", SITE)).unwrap();
    crate::graph::PlanGraph::build(crate::check::bind(crate::check::plan(p).unwrap(), s).unwrap())
}
