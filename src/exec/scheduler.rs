//! The forward run: a ready queue over the DAG with at most `parallel` steps in flight.

use super::commands::{CommandSink, StartedCommand};
use super::record::{self, Decision, Record, RunEnd};
use super::stale::StaleWait;
use super::{Executor, StepState, step};
use crate::events::Event;
use crate::journal::JournalError;
use crate::step::{FailureKind, Outcome, SkipReason, StepFailure, StepRunner};
use crate::template;
use std::sync::Arc;
use tokio::task::JoinSet;

/// What to do when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop, keep the checkpoint, and tell how to resume or roll back.
    #[default]
    Pause,
    /// Run the compensations of completed steps, newest first.
    Rollback,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub parallel: usize,
    pub on_failure: OnFailure,
    /// Steps the operator asks to run again although they were left in doubt.
    pub retry: Vec<String>,
    /// Steps the operator marks done by hand.
    pub skip: Vec<String>,
    /// Stop the commands a crashed run left running instead of waiting for them to end.
    pub kill_stale: bool,
}

/// How a forward run (or a rollback) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    /// A step failed; the run is paused. `refused`: a precondition stopped it.
    Paused {
        failed: Vec<String>,
        refused: bool,
    },
    /// Steps were left in doubt by a crash and are not safe to re-run blindly.
    NeedsDecision {
        in_doubt: Vec<String>,
    },
    Interrupted,
    RolledBack,
    /// A compensation failed; rollback is paused.
    RollbackPaused {
        step: String,
    },
    /// Rollback changed nothing: these steps were left in doubt and their hooks are not
    /// safe to run blindly (or they are points of no return); the operator must say
    /// `--assume-done` or `--assume-not-run`.
    RollbackNeedsDecision {
        in_doubt: Vec<String>,
    },
}

impl<R: StepRunner> Executor<R> {
    /// Run (or continue) the plan forward until it ends, fails, or is cancelled.
    pub async fn forward(&mut self, opts: &Options) -> Result<Ending, JournalError> {
        if let Some(ending) = self.settle_doubts(opts).await? {
            return Ok(ending);
        }
        let mut running = JoinSet::new();
        let result = self.schedule(opts, &mut running).await;
        // A journal that fails mid-run (a full disk, a store that no longer answers or whose
        // lock was lost): nothing more can be recorded, so nothing more starts. The steps
        // already running end first, unrecorded — a command is never dropped mid-way — and
        // stay in doubt for `resume` to judge.
        if let Err(e) = &result
            && !running.is_empty()
        {
            self.shared.emit(Event::Note {
                message: format!(
                    "the journal cannot be written ({e}): no new step starts; waiting for the {} running to end",
                    running.len()
                ),
            });
            while running.join_next().await.is_some() {}
        }
        result
    }

    /// The ready queue: launch, journal, repeat until the run ends or cannot go on.
    async fn schedule(
        &mut self,
        opts: &Options,
        running: &mut JoinSet<(usize, u32, Outcome, u64)>,
    ) -> Result<Ending, JournalError> {
        // Step tasks report the commands they start here; only this loop journals them.
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::clone(&self.shared);
        let steps = shared.graph.steps();
        let dag = shared.graph.dag();
        let parallel = opts.parallel.max(1);
        let mut ready = Ready::new(self);
        let mut failed = Vec::new();
        let mut refused = false;
        loop {
            // Launch what is ready, unless something failed or we were told to stop. A step
            // skipped by `when` may make a step earlier in the plan ready: it goes first.
            // Steps decided to start in this round: their `step_started` records share one
            // fsync, and none of them starts before that returns.
            let mut starting: Vec<(usize, u32, Arc<serde_json::Value>)> = Vec::new();
            while failed.is_empty()
                && !self.cancel.is_cancelled()
                && running.len() + starting.len() < parallel
            {
                // Plan order among the ready ones: predictable logs and tests.
                let Some(i) = ready.next() else { break };
                let step = &steps[i];
                let ctx = self.context(i);
                if let Some(when) = &step.when {
                    match template::eval_bool(template::shared(), when, &ctx) {
                        Ok(true) => {}
                        Ok(false) => {
                            let outcome = Outcome::Skipped {
                                reason: SkipReason::When,
                            };
                            self.finish(vec![(i, 0, outcome, 0)])?;
                            ready.done(dag, i);
                            continue;
                        }
                        Err(e) => {
                            let error = StepFailure::new(
                                FailureKind::Failed,
                                shared.host_label(&step.on),
                                format!("cannot evaluate `when: {when}`: {e}"),
                            );
                            self.finish(vec![(i, 0, Outcome::Failed { error }, 0)])?;
                            failed.push(i);
                            break;
                        }
                    }
                }
                let attempt = self.state.attempts.get(&step.id).copied().unwrap_or(0) + 1;
                starting.push((i, attempt, ctx));
            }
            // A signal may have arrived while this round was decided: nothing starts then.
            let go = !starting.is_empty() && !self.cancel.is_cancelled();
            if go {
                let now = record::now();
                self.stage(
                    starting
                        .iter()
                        .map(|&(i, attempt, _)| Record::StepStarted {
                            step: steps[i].id.clone(),
                            attempt,
                            at: now,
                        })
                        .collect(),
                )?;
            }
            // The ends of the last round and the starts of this one: one fsync.
            self.flush()?;
            if go {
                shared.emit_all(
                    starting
                        .iter()
                        .map(|&(i, attempt, _)| Event::StepStarted {
                            step: steps[i].id.clone(),
                            name: steps[i].title().to_string(),
                            action: steps[i].action.clone(),
                            host: shared.host_label(&steps[i].on),
                            attempt,
                        })
                        .collect(),
                );
                for (i, attempt, ctx) in starting {
                    let step = &steps[i];
                    let task_shared = Arc::clone(&shared);
                    let sink = CommandSink::new(started_tx.clone(), &step.id, attempt, false);
                    running.spawn(async move {
                        let (outcome, ms) = step::run(task_shared, i, ctx, sink).await;
                        (i, attempt, outcome, ms)
                    });
                }
            }
            if running.is_empty() {
                // Skipped steps may have made more steps ready: go round once more.
                if failed.is_empty() && !self.cancel.is_cancelled() && !ready.is_empty() {
                    continue;
                }
                break;
            }
            let cancel = self.cancel.clone();
            let joined = tokio::select! {
                // Before any end: a command's start is journaled before its step's end.
                biased;
                Some(command) = started.recv() => {
                    self.commands_started(Some(command), &mut started)?;
                    continue;
                }
                j = running.join_next() => j,
                _ = cancel.cancelled(), if !cancel.is_cancelled() => {
                    shared.emit(Event::Note { message: "interrupted: no new steps start; waiting for the running ones to end".into() });
                    continue;
                }
            };
            let Some(joined) = joined else { continue };
            // Steps that ended meanwhile share this one's fsync (group commit).
            let mut ended = vec![joined];
            while let Some(more) = running.try_join_next() {
                ended.push(more);
            }
            // The tasks sent their commands before they ended: all are in the channel now.
            self.commands_started(None, &mut started)?;
            let mut finished = Vec::with_capacity(ended.len());
            for joined in ended {
                match joined {
                    Ok((i, attempt, outcome, ms)) => {
                        if let Outcome::Failed { error } = &outcome {
                            refused |= error.kind == FailureKind::Refused;
                            failed.push(i);
                        }
                        if matches!(outcome, Outcome::Succeeded { .. } | Outcome::Skipped { .. }) {
                            ready.done(dag, i);
                        }
                        finished.push((i, attempt, outcome, ms));
                    }
                    // A panicking step task is a bug; its step stays in doubt for resume to judge.
                    Err(e) => shared.emit(Event::Note {
                        message: format!("internal error in a step task: {e}"),
                    }),
                }
            }
            self.finish(finished)?;
        }
        self.flush()?;
        // After a signal the run stops as it stands: what failed meanwhile is resumed (or
        // rolled back) when the operator says so, never automatically.
        if self.cancel.is_cancelled() {
            self.record(Record::Interrupted { at: record::now() })?;
            return Ok(Ending::Interrupted);
        }
        if !failed.is_empty() {
            let names: Vec<String> = failed.iter().map(|&i| steps[i].id.clone()).collect();
            if opts.on_failure == OnFailure::Rollback && !refused_only_before_changes(self, &names)
            {
                return self.rollback(&super::RollbackOptions::default()).await;
            }
            self.record(Record::Paused {
                reason: format!("{} failed", names.join(", ")),
                at: record::now(),
            })?;
            return Ok(Ending::Paused {
                failed: names,
                refused,
            });
        }
        let all_done = steps.iter().all(|s| self.state.step(&s.id).is_done());
        if all_done {
            self.record(Record::RunFinished {
                end: RunEnd::Succeeded,
                at: record::now(),
            })?;
            return Ok(Ending::Succeeded);
        }
        self.record(Record::Interrupted { at: record::now() })?;
        Ok(Ending::Interrupted)
    }

    /// Stage the ends of steps, and the events that tell of them, for the next flush.
    fn finish(&mut self, ended: Vec<(usize, u32, Outcome, u64)>) -> Result<(), JournalError> {
        let steps = Arc::clone(&self.shared);
        let steps = steps.graph.steps();
        let now = record::now();
        self.stage(
            ended
                .iter()
                .map(|(i, attempt, outcome, ms)| Record::StepFinished {
                    step: steps[*i].id.clone(),
                    attempt: *attempt,
                    outcome: outcome.clone(),
                    duration_ms: *ms,
                    at: now,
                })
                .collect(),
        )?;
        for (i, _, outcome, ms) in ended {
            self.held.push(Event::StepFinished {
                step: steps[i].id.clone(),
                name: steps[i].title().to_string(),
                outcome,
                duration_ms: ms,
            });
        }
        Ok(())
    }

    /// Journal the commands steps started: `first`, if any, and every other one waiting in
    /// `more`, with one fsync.
    pub(super) fn commands_started(
        &mut self,
        first: Option<StartedCommand>,
        more: &mut tokio::sync::mpsc::UnboundedReceiver<StartedCommand>,
    ) -> Result<(), JournalError> {
        let now = record::now();
        let records: Vec<Record> = first
            .into_iter()
            .chain(std::iter::from_fn(|| more.try_recv().ok()))
            .map(|c| Record::CommandStarted {
                step: c.step,
                attempt: c.attempt,
                rollback: c.rollback,
                command: c.command,
                at: now,
            })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.record_all(records)
    }

    /// Steps a crash left in doubt: re-run the idempotent ones and those the operator asks
    /// to retry, mark the skipped ones done; the rest need a decision. Before any of that,
    /// the commands the crashed run left running in them must be over (`stale`): nothing
    /// starts beside them.
    ///
    /// Nothing is journaled unless every doubt is settled: a `retry` on disk makes a step
    /// pending, and a run that then stops for a decision (and is perhaps rolled back
    /// instead) would have forgotten that the step may have run.
    async fn settle_doubts(&mut self, opts: &Options) -> Result<Option<Ending>, JournalError> {
        let shared = Arc::clone(&self.shared);
        let in_doubt: Vec<(usize, &String)> = shared
            .graph
            .steps()
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(self.state.step(&s.id), StepState::InDoubt { .. }))
            .map(|(i, s)| (i, &s.id))
            .collect();
        let undecided = in_doubt.iter().any(|&(i, id)| {
            !opts.skip.contains(id) && !opts.retry.contains(id) && !shared.graph.idempotent(i)
        });
        // With a step left undecided nothing starts: the operator is asked first.
        if !undecided {
            for &(_, id) in &in_doubt {
                if self.settle_stale(id, false, opts.kill_stale).await? == StaleWait::Interrupted {
                    self.record(Record::Interrupted { at: record::now() })?;
                    return Ok(Some(Ending::Interrupted));
                }
            }
        }
        let mut undecided = Vec::new();
        let mut decided = Vec::new();
        for (i, step) in shared.graph.steps().iter().enumerate() {
            let id = &step.id;
            let state = self.state.step(id);
            if opts.skip.contains(id) && !state.is_done() {
                decided.push((id.clone(), Decision::Skip));
            } else if let StepState::InDoubt { .. } = state {
                if opts.retry.contains(id) || shared.graph.idempotent(i) {
                    decided.push((id.clone(), Decision::Retry));
                } else {
                    undecided.push(id.clone());
                }
            }
        }
        if !undecided.is_empty() {
            return Ok(Some(Ending::NeedsDecision {
                in_doubt: undecided,
            }));
        }
        for (id, decision) in decided {
            self.record(Record::OperatorDecision {
                step: id.clone(),
                decision,
                at: record::now(),
            })?;
            let message = match decision {
                Decision::Skip => format!("{id}: marked done by the operator"),
                _ => format!("{id}: was in doubt; running it again"),
            };
            shared.emit(Event::Note { message });
        }
        Ok(None)
    }
}

/// The steps that may start: not started, not done, every step they need done. Kept up to
/// date as steps end (a scan of the whole plan every round made a big plan quadratic).
struct Ready {
    /// How many of its needs each step still waits for.
    waiting: Vec<usize>,
    queue: std::collections::BTreeSet<usize>,
}

impl Ready {
    fn new<R: StepRunner>(ex: &Executor<R>) -> Ready {
        let steps = ex.shared.graph.steps();
        let dag = ex.shared.graph.dag();
        let done = |i: usize| ex.state.step(&steps[i].id).is_done();
        let waiting: Vec<usize> = (0..steps.len())
            .map(|i| dag.needs(i).into_iter().filter(|&n| !done(n)).count())
            .collect();
        let queue = (0..steps.len())
            .filter(|&i| waiting[i] == 0 && !done(i))
            .collect();
        Ready { waiting, queue }
    }

    /// The first ready step in plan order, now counted as started.
    fn next(&mut self) -> Option<usize> {
        self.queue.pop_first()
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Step `i` is done (succeeded or skipped): its dependants wait for one step less.
    fn done(&mut self, dag: &crate::plan::Dag, i: usize) {
        for d in dag.dependants(i) {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                self.queue.insert(d);
            }
        }
    }
}

/// A refused precondition changed nothing; rolling back for it would undo work that the
/// operator may want to keep. Only real failures trigger `--on-failure rollback`.
fn refused_only_before_changes<R: StepRunner>(ex: &Executor<R>, failed: &[String]) -> bool {
    failed.iter().all(|id| matches!(ex.state.step(id), StepState::Failed { error } if error.kind == FailureKind::Refused))
}
