//! The executor: runs a `PlanGraph` with bounded parallelism, write-ahead journaling,
//! preconditions, retries, pause-or-rollback on failure, resume and cancellation.
//!
//! It prints nothing (it emits events) and talks to hosts only through a `StepRunner` (the
//! step seam, `crate::step`).
//! The journal is written here and only here, from the scheduling loop: a step's start is
//! on disk before it runs, its end before any dependant starts.

mod commands;
pub mod context;
pub mod record;
mod rollback;
mod scheduler;
mod stale;
pub mod state;
mod step;

pub use commands::{CommandSink, StartedCommand};
pub use context::Secrets;
pub use rollback::RollbackOptions;
pub use scheduler::{Ending, OnFailure, Options};
pub use state::{RunState, StepState};
pub use step::{CheckVerdict, judge_check, run_check};

use crate::events::{Event, EventSink, Stamped};
use crate::graph::PlanGraph;
use crate::journal::{Journal, JournalError};
use crate::step::{Call, FailureKind, StepFailure, StepRunner};
use record::Record;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the scheduler and the step tasks share.
pub struct Shared<R> {
    pub graph: PlanGraph,
    pub runner: R,
    pub secrets: Secrets,
    pub events: Arc<dyn EventSink>,
    /// Set by a signal: no new step, retry or rollback starts.
    pub cancel: Cancel,
    /// The template context without any step's result, built once.
    base: Arc<Value>,
    /// Whose results each step's templates may read.
    reads: Vec<context::Reads>,
}

impl<R> Shared<R> {
    pub fn new(graph: PlanGraph, runner: R, secrets: Secrets, events: Arc<dyn EventSink>) -> Self {
        let base = Arc::new(context::context(
            &graph.bound,
            &secrets,
            &crate::plan::Map::new(),
        ));
        let reads = context::Reads::of_plan(&graph);
        Shared {
            graph,
            runner,
            secrets,
            events,
            cancel: Cancel::default(),
            base,
            reads,
        }
    }

    /// Tell the world, with every secret value redacted: this and `Executor::record` are
    /// the only ways out of the executor, so no path can forget to redact.
    pub fn emit(&self, e: Event) {
        self.emit_all(vec![e]);
    }

    /// Tell events that happened together, in order, redacted as `emit` does.
    pub fn emit_all(&self, events: Vec<Event>) {
        // With nothing to mask (no secret read, none derived yet) redaction is the identity:
        // the round trip through JSON is skipped.
        let plain = self.secrets.masks_nothing();
        let stamped: Vec<Stamped> = events
            .into_iter()
            .map(|e| {
                if plain {
                    return Stamped::now(e);
                }
                match self.secrets.redact_as(&e) {
                    Some(clean) => Stamped::now(clean),
                    // An event that cannot make the round trip is a bug; never show it
                    // unredacted.
                    None => Stamped::now(Event::Note {
                        message: "internal error: an event could not be redacted and was dropped"
                            .into(),
                    }),
                }
            })
            .collect();
        self.events.emit_all(&stamped);
    }

    /// Hand `call` to the runner. Its failure names the host by role (`role (address)`),
    /// here and only here: every step, check and rollback hook reaches the hosts through
    /// this. (Secrets are redacted where failures leave the executor: `emit`, `record`.)
    pub async fn call(&self, call: Call) -> Result<Value, StepFailure>
    where
        R: StepRunner,
    {
        let host = self.host_label(&call.role);
        self.runner
            .call(call)
            .await
            .map_err(|e| StepFailure { host, ..e })
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
/// journal must survive. Records appended together (one fsync) may reach the disk in part
/// when a crash comes while they are written: the failpoint then writes the batch only up
/// to the N-th record. Compiled only with the `failpoints` feature (test builds): in a
/// release binary the variable means nothing.
///
/// `N` counts records; `KIND:STEP` (`step_finished:release-vip`) names one, for tests on real
/// hosts where how many commands a step runs (and so how many records come before) varies.
/// Returns the index in `batch` of the record to crash after.
#[cfg(not(feature = "failpoints"))]
fn crash_point(_appended: u64, _batch: &[Value]) -> Option<usize> {
    None
}

#[cfg(feature = "failpoints")]
fn crash_point(appended: u64, batch: &[Value]) -> Option<usize> {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT
        .get_or_init(|| std::env::var("DRPLAN_CRASH_AFTER_RECORD").ok())
        .as_ref()?;
    batch
        .iter()
        .zip(1..)
        .position(|(record, n)| match at.split_once(':') {
            Some((kind, step)) => record["kind"] == kind && record["step"] == step,
            None => at.parse() == Ok(appended + n),
        })
}

/// The crash `crash_point` asked for.
fn crash_now() {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// Returns when SIGINT or SIGTERM arrives: what an operator's Ctrl-C, or a service
/// manager's stop, means to every command that talks to hosts. The handlers are installed
/// when this is called, not when the future is first polled: from then on a signal can no
/// longer kill drplan with its default action (call it before starting anything).
pub fn signalled() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let (int, term) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match (int, term) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            }
            (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                one.recv().await;
            }
            (Err(_), Err(_)) => std::future::pending().await,
        }
    }
}

impl Cancel {
    /// A `Cancel` that a signal sets (see `signalled`).
    pub fn on_signals() -> Cancel {
        let cancel = Cancel::default();
        let set = cancel.clone();
        let signal = signalled();
        tokio::spawn(async move {
            signal.await;
            set.cancel();
        });
        cancel
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
    /// Returns once cancelled (at once if it is already).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// How the plan's preconditions ended.
#[derive(Debug)]
pub enum Preconditions {
    /// All held; `preconditions_passed` is journaled.
    Held,
    /// One refused; the run is over and nothing was changed.
    Refused(StepFailure),
    /// A signal came before they all ran; nothing was changed.
    Interrupted,
}

/// One run being executed: shared parts, its journal and its state.
pub struct Executor<R> {
    pub shared: Arc<Shared<R>>,
    journal: Box<dyn Journal>,
    pub state: RunState,
    pub cancel: Cancel,
    /// Records this process appended (for the crash failpoint).
    appended: u64,
    /// Records folded into the state but not yet on disk (`stage`), and the events that
    /// tell about them: both go out with the next `flush`.
    staged: Vec<Value>,
    held: Vec<Event>,
}

impl<R: StepRunner> Executor<R> {
    pub fn new(shared: Shared<R>, journal: Box<dyn Journal>, state: RunState) -> Self {
        let cancel = shared.cancel.clone();
        Executor {
            shared: Arc::new(shared),
            journal,
            state,
            cancel,
            appended: 0,
            staged: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Append a record (fsync'd) and fold it into the state.
    pub fn record(&mut self, rec: Record) -> Result<(), JournalError> {
        self.record_all(vec![rec])
    }

    /// Append records that are ready together with one fsync (group commit), with whatever
    /// was staged before them, and fold them into the state.
    pub fn record_all(&mut self, recs: Vec<Record>) -> Result<(), JournalError> {
        self.stage(recs)?;
        self.flush()
    }

    /// Fold records into the state now; they reach the disk, in this order, with the next
    /// `flush`, which the scheduler calls before it starts anything or waits. So the ends of
    /// steps share one fsync with the starts of the steps they made ready, and each is on disk
    /// before any of those starts. Secret values are redacted here, and the state is built
    /// from the redacted records, so a run continued later sees exactly what this one saw.
    pub(super) fn stage(&mut self, recs: Vec<Record>) -> Result<(), JournalError> {
        let encode = |e: serde_json::Error| JournalError::Io {
            path: std::path::PathBuf::from("journal"),
            action: "encode a record".into(),
            source: std::io::Error::other(e),
        };
        for rec in recs {
            let value = serde_json::to_value(&rec).map_err(encode)?;
            if self.shared.secrets.masks_nothing() {
                // Redaction would change nothing: the record is what the state sees.
                self.state.apply(&rec);
                self.staged.push(value);
                continue;
            }
            let value = self.shared.secrets.redact_record(&value);
            let redacted = serde_json::from_value::<Record>(value.clone()).map_err(encode)?;
            self.state.apply(&redacted);
            self.staged.push(value);
        }
        Ok(())
    }

    /// Append the staged records with one fsync, then tell the events held for them.
    pub(super) fn flush(&mut self) -> Result<(), JournalError> {
        if !self.staged.is_empty() {
            let values = std::mem::take(&mut self.staged);
            let crash = crash_point(self.appended, &values);
            let written = crash.map_or(values.len(), |k| k + 1);
            self.journal.append_all(&values[..written])?;
            self.appended += written as u64;
            if crash.is_some() {
                crash_now();
            }
        }
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            self.shared.emit_all(held);
        }
        Ok(())
    }

    /// The first record of a new run: its id and the hashes of the texts it executes.
    pub fn start(
        &mut self,
        run_id: &str,
        plan_sha256: &str,
        site_sha256: &str,
        params: &crate::plan::Map,
    ) -> Result<(), JournalError> {
        let bound = &self.shared.graph.bound;
        let (plan, site) = (bound.valid.plan.name.clone(), bound.site.site.clone());
        self.record(Record::RunStarted {
            run_id: run_id.to_string(),
            plan: plan.clone(),
            site: site.clone(),
            plan_sha256: plan_sha256.to_string(),
            site_sha256: site_sha256.to_string(),
            params: params.clone(),
            at: record::now(),
        })?;
        self.shared.emit(Event::RunStarted {
            run_id: run_id.to_string(),
            plan,
            site,
            steps: self.shared.graph.steps().len(),
            resumed: false,
        });
        Ok(())
    }

    /// Announce a run continued by `resume` (its `run_started` is on disk already).
    pub fn resumed(&self) {
        self.shared.emit(Event::RunStarted {
            run_id: self.state.run_id.clone(),
            plan: self.state.plan.clone(),
            site: self.state.site.clone(),
            steps: self.shared.graph.steps().len(),
            resumed: true,
        });
    }

    /// Run the plan-level preconditions. When all hold, `preconditions_passed` (with what
    /// each saw) is staged: it reaches the disk with the next flush, which comes before any
    /// step starts (the first steps' starts share its fsync), so no step can start without
    /// it. The first refusal is journaled, ends the run, and is returned.
    pub async fn preconditions(&mut self) -> Result<Preconditions, JournalError> {
        let shared = Arc::clone(&self.shared);
        // No step has run: they cannot read a step's result (`check` sees to it).
        let ctx = &shared.base;
        let mut seen = Vec::new();
        for check in &shared.graph.bound.valid.plan.preconditions {
            if self.cancel.is_cancelled() {
                // Nothing was changed; a resume checks them all again.
                self.record(Record::Interrupted { at: record::now() })?;
                return Ok(Preconditions::Interrupted);
            }
            match step::run_check(&shared, "plan", check, ctx).await {
                Ok(result) => seen.push(record::CheckSeen {
                    check: check.name.clone(),
                    host: shared.host_label(&check.on),
                    result,
                }),
                Err(error) => {
                    self.record(Record::PreconditionRefused {
                        check: check.name.clone(),
                        error: error.clone(),
                        at: record::now(),
                    })?;
                    self.record(Record::RunFinished {
                        end: record::RunEnd::Refused,
                        at: record::now(),
                    })?;
                    let shown = shared.secrets.redact_as(&error);
                    return Ok(Preconditions::Refused(shown.unwrap_or_else(|| {
                        StepFailure::new(FailureKind::Refused, error.host.clone(), "(sensitive)")
                    })));
                }
            }
        }
        // On disk with the first steps' starts (one fsync), ahead of them.
        self.stage(vec![Record::PreconditionsPassed {
            checks: seen,
            at: record::now(),
        }])?;
        Ok(Preconditions::Held)
    }

    /// The template context of step `i`: the site's values, the secrets, and the results of
    /// the steps it may read that succeeded so far (the run's one context, shared, when
    /// there are none).
    pub(super) fn context(&self, i: usize) -> Arc<Value> {
        let shared = &self.shared;
        let steps = shared.graph.steps();
        let mut results = crate::plan::Map::new();
        let mut add = |j: usize| {
            if let StepState::Succeeded { result } = self.state.step(&steps[j].id) {
                let entry = serde_json::json!({ "result": result });
                results.insert(steps[j].id.clone(), entry);
            }
        };
        match &shared.reads[i] {
            context::Reads::These(these) => these.iter().copied().for_each(&mut add),
            context::Reads::All => (0..steps.len()).for_each(&mut add),
        }
        if results.is_empty() {
            return Arc::clone(&shared.base);
        }
        let mut ctx = (*shared.base).clone();
        ctx["steps"] = Value::Object(results);
        Arc::new(ctx)
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
