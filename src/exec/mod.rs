//! The executor: runs a `PlanGraph` with bounded parallelism, write-ahead journaling,
//! preconditions, retries, pause-or-rollback on failure, resume and cancellation.
//!
//! It prints nothing (it emits events) and talks to hosts only through a `StepRunner`.
//! The journal is written here and only here, from the scheduling loop: a step's start is
//! on disk before it runs, its end before any dependant starts.

pub mod context;
pub mod record;
mod rollback;
pub mod runner;
mod scheduler;
pub mod state;
mod step;

pub use context::Secrets;
pub use record::{FailureKind, Outcome, StepFailure};
pub use runner::{Call, StepRunner};
pub use scheduler::{Ending, OnFailure, Options};
pub use state::{RunState, RunStatus, StepState};
pub use step::run_check;

use crate::events::{Event, EventSink};
use crate::graph::PlanGraph;
use crate::journal::{Journal, JournalError};
use record::Record;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the scheduler and the step tasks share.
pub struct Shared<R> {
    pub graph: PlanGraph,
    pub runner: R,
    pub secrets: Secrets,
    pub events: Arc<dyn EventSink>,
}

impl<R> Shared<R> {
    pub fn emit(&self, e: Event) {
        self.events.emit(&e);
    }

    /// `role (address)` for messages.
    pub fn host_label(&self, role: &str) -> String {
        match self.graph.host(role) {
            Some(h) if h.is_local() => format!("{role} (local)"),
            Some(h) => format!("{role} ({})", h.describe()),
            None => role.to_string(),
        }
    }

    /// The OS user a step runs as: the step's `become`, else the host's.
    pub fn become_user(&self, step: Option<&str>, role: &str) -> Option<String> {
        step.map(str::to_string).or_else(|| {
            self.graph
                .host(role)
                .and_then(|h| h.spec.become_user.clone())
        })
    }
}

/// Failpoint for crash tests: with `DRPLAN_CRASH_AFTER_RECORD=N`, the process kills itself
/// with SIGKILL right after its N-th journal record is on disk — exactly the crash the
/// journal must survive. Unset (always, outside tests) it does nothing.
fn crash_point(appended: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("DRPLAN_CRASH_AFTER_RECORD")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *at == Some(appended) {
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Set from a signal handler: stop scheduling, let running steps end.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>, Arc<tokio::sync::Notify>);

impl Cancel {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
        self.1.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    async fn cancelled(&self) {
        loop {
            let notified = self.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// One run being executed: shared parts, its journal and its state.
pub struct Executor<R> {
    pub shared: Arc<Shared<R>>,
    journal: Box<dyn Journal>,
    pub state: RunState,
    pub cancel: Cancel,
    /// Records this process appended (for the crash failpoint).
    appended: u64,
}

impl<R: StepRunner> Executor<R> {
    pub fn new(shared: Shared<R>, journal: Box<dyn Journal>, state: RunState) -> Self {
        Executor {
            shared: Arc::new(shared),
            journal,
            state,
            cancel: Cancel::default(),
            appended: 0,
        }
    }

    /// Append a record (fsync'd) and fold it into the state.
    pub fn record(&mut self, rec: Record) -> Result<(), JournalError> {
        let value = serde_json::to_value(&rec).map_err(|e| JournalError::Io {
            path: std::path::PathBuf::from("journal"),
            action: "encode a record".into(),
            source: std::io::Error::other(e),
        })?;
        self.journal.append(&value)?;
        self.state.apply(&rec);
        self.appended += 1;
        crash_point(self.appended);
        Ok(())
    }

    /// Run the plan-level preconditions; the first refusal is journaled and returned.
    pub async fn preconditions(&mut self) -> Result<Result<(), StepFailure>, JournalError> {
        let ctx = self.context();
        let shared = Arc::clone(&self.shared);
        for check in &shared.graph.bound.valid.plan.preconditions {
            if let Err(error) = step::run_check(&shared, "plan", check, &ctx).await {
                self.record(Record::PreconditionRefused {
                    check: check.name.clone(),
                    error: error.clone(),
                    at: record::now(),
                })?;
                self.record(Record::RunFinished {
                    end: record::RunEnd::Refused,
                    at: record::now(),
                })?;
                return Ok(Err(error));
            }
        }
        Ok(Ok(()))
    }

    /// The template context with the results of every step that succeeded so far.
    pub(super) fn context(&self) -> serde_json::Value {
        let mut results = crate::plan::Map::new();
        for step in self.shared.graph.steps() {
            if let StepState::Succeeded { result } = self.state.step(&step.id) {
                results.insert(step.id.clone(), result.clone());
            }
        }
        context::context(&self.shared.graph.bound, &self.shared.secrets, &results)
    }
}

#[cfg(test)]
mod tests;
