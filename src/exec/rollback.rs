//! Rollback: the compensations of steps that ran, never crossing a point of no return.
//! Journaled step by step, so an interrupted rollback resumes where it stopped.
//!
//! The order rule: first the steps a crash left *in doubt* (started, never finished), in
//! reverse dependency order — they were the last to start — then the completed steps,
//! newest first. An in-doubt step's hook runs only when the hook is idempotent (safe even
//! if the step never ran); otherwise rollback changes nothing and names the step until the
//! operator says `--assume-done STEP` (it ran: its hook runs) or `--assume-not-run STEP`
//! (nothing to undo). Both are journaled. A point of no return in doubt always needs that
//! word: whether rollback may go past it depends on whether it ran. A rollback *hook* a
//! crash left in doubt (started, never finished) runs again only if it is idempotent;
//! otherwise the same two flags say whether the hook ran (`--assume-done`) or not.
//! Nothing is undone while a command the crashed run left running still runs (`stale`).

use super::commands::CommandSink;
use super::record::{self, Decision, Record, RunEnd};
use super::scheduler::Ending;
use super::stale::StaleWait;
use super::{Executor, StepState};
use crate::events::Event;
use crate::journal::JournalError;
use crate::step::{Call, FailureKind, StepFailure, StepRunner};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// The operator's word on steps left in doubt.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    pub assume_done: Vec<String>,
    pub assume_not_run: Vec<String>,
    /// Stop the commands a crashed run left running instead of waiting for them to end.
    pub kill_stale: bool,
}

impl<R: StepRunner> Executor<R> {
    pub async fn rollback(&mut self, opts: &RollbackOptions) -> Result<Ending, JournalError> {
        let shared = Arc::clone(&self.shared);
        let graph = &shared.graph;
        // Steps in doubt, in reverse dependency order (later waves first).
        let mut in_doubt: Vec<usize> = (0..graph.steps().len())
            .filter(|&i| {
                matches!(
                    self.state.step(&graph.steps()[i].id),
                    StepState::InDoubt { .. }
                )
            })
            .collect();
        in_doubt.sort_by_key(|&i| std::cmp::Reverse((graph.wave_of[i], i)));
        let decided =
            |id: &String| opts.assume_done.contains(id) || opts.assume_not_run.contains(id);
        let mut undecided: Vec<String> = in_doubt
            .iter()
            .map(|&i| &graph.steps()[i])
            .filter(|s| !decided(&s.id))
            .filter(|s| {
                let i = graph.index_of(&s.id).unwrap_or_default();
                s.point_of_no_return || (s.rollback.is_some() && !graph.rollback_idempotent(i))
            })
            .map(|s| s.id.clone())
            .collect();
        // A rollback hook a crash left in doubt: run again only if it is idempotent.
        let hook_in_doubt = self.state.compensation_open.clone();
        undecided.extend(
            hook_in_doubt
                .iter()
                .filter(|id| {
                    !decided(id)
                        && graph
                            .index_of(id)
                            .is_some_and(|i| !graph.rollback_idempotent(i))
                })
                .cloned(),
        );
        if !undecided.is_empty() {
            return Ok(Ending::RollbackNeedsDecision {
                in_doubt: undecided,
            });
        }
        // Nothing is undone while a command of the crashed run still runs: neither a step
        // left in doubt nor a rollback hook that was running when it crashed.
        let mut stale: Vec<(String, bool)> = in_doubt
            .iter()
            .map(|&i| (graph.steps()[i].id.clone(), false))
            .collect();
        stale.extend(self.state.compensation_open.clone().map(|id| (id, true)));
        for (id, hook) in stale {
            if self.settle_stale(&id, hook, opts.kill_stale).await? == StaleWait::Interrupted {
                self.record(Record::Interrupted { at: record::now() })?;
                return Ok(Ending::Interrupted);
            }
        }
        self.record(Record::RollbackStarted { at: record::now() })?;
        // The walk, newest first: in-doubt steps taken as having run, then the completed.
        // The hook a crash left open belongs to one of them: it runs again where its step
        // stands (only an idempotent hook, or one the operator says never ran, gets here;
        // one he says ran is already compensated). Each step is decided on once.
        let mut order: Vec<String> = Vec::new();
        let mut asked: Vec<String> = in_doubt
            .iter()
            .map(|&i| graph.steps()[i].id.clone())
            .collect();
        if let Some(hook) = hook_in_doubt.as_ref().filter(|h| !asked.contains(h)) {
            asked.push(hook.clone());
        }
        for id in asked {
            for (list, decision) in [
                (&opts.assume_done, Decision::AssumeDone),
                (&opts.assume_not_run, Decision::AssumeNotRun),
            ] {
                if list.contains(&id) {
                    self.record(Record::OperatorDecision {
                        step: id.clone(),
                        decision,
                        at: record::now(),
                    })?;
                }
            }
            let step_in_doubt = matches!(self.state.step(&id), StepState::InDoubt { .. });
            // A step in doubt that never ran has nothing to undo — unless its hook was
            // started: the rollback had already taken the step as having run.
            let hook_open = hook_in_doubt.as_ref() == Some(&id);
            if step_in_doubt && (hook_open || !opts.assume_not_run.contains(&id)) {
                order.push(id);
            }
        }
        let completed = self.state.completed.iter().rev();
        order.extend(
            completed
                .filter(|id| !order.contains(id))
                .cloned()
                .collect::<Vec<_>>(),
        );
        for id in order {
            if self.state.compensated.contains(&id) {
                continue;
            }
            if self.cancel.is_cancelled() {
                self.record(Record::Interrupted { at: record::now() })?;
                return Ok(Ending::Interrupted);
            }
            let Some(i) = graph.index_of(&id) else {
                continue;
            };
            let step = &graph.steps()[i];
            if step.point_of_no_return {
                self.record(Record::RollbackStopped {
                    at_step: id.clone(),
                    at: record::now(),
                })?;
                shared.emit(Event::RollbackStopped {
                    at_step: id.clone(),
                });
                break;
            }
            if step.rollback.is_none() {
                continue;
            }
            if let Some(error) = self.compensate(i).await? {
                self.record(Record::Paused {
                    reason: format!("rollback of {id} failed: {}", error.message),
                    at: record::now(),
                })?;
                return Ok(Ending::RollbackPaused { step: id });
            }
        }
        self.record(Record::RunFinished {
            end: RunEnd::RolledBack,
            at: record::now(),
        })?;
        Ok(Ending::RolledBack)
    }

    /// Run step `i`'s rollback hook, journaled; its failure, if it failed.
    async fn compensate(&mut self, i: usize) -> Result<Option<StepFailure>, JournalError> {
        let shared = Arc::clone(&self.shared);
        let step = &shared.graph.steps()[i];
        let Some(rb) = &step.rollback else {
            return Ok(None);
        };
        let id = step.id.clone();
        let role = rb.on.clone().unwrap_or_else(|| step.on.clone());
        let host = shared.host_label(&role);
        self.record(Record::CompensationStarted {
            step: id.clone(),
            at: record::now(),
        })?;
        shared.emit(Event::CompensationStarted {
            step: id.clone(),
            action: rb.action.clone(),
            host: host.clone(),
        });
        let started_at = Instant::now();
        let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let ctx = self.context(i);
        let rendered = shared.secrets.render(&Value::Object(rb.with.clone()), &ctx);
        let error = match rendered {
            Err(e) => Some(StepFailure::new(
                FailureKind::Failed,
                host,
                format!("cannot render rollback parameters: {e}"),
            )),
            Ok(params) => {
                let call = Call {
                    step_id: id.clone(),
                    action: rb.action.clone(),
                    params,
                    role: role.clone(),
                    become_user: shared.become_user(
                        rb.become_user.as_deref().or(step.become_user.as_deref()),
                        &role,
                    ),
                    timeout: rb
                        .timeout
                        .or(step.timeout)
                        .map(super::super::plan::duration::Duration::std),
                    context: ctx,
                    commands: Some(Arc::new(CommandSink::new(tx, &id, 0, true))),
                };
                // The hook's commands are journaled as they start, as a step's are.
                let work = shared.call(call);
                tokio::pin!(work);
                // A journal that fails meanwhile stops the rollback, but only once the hook
                // has ended: a command is never dropped mid-way.
                let mut unrecorded = None;
                let result = loop {
                    tokio::select! {
                        biased;
                        Some(command) = started.recv(), if unrecorded.is_none() => {
                            unrecorded = self.commands_started(Some(command), &mut started).err();
                        }
                        result = &mut work => break result,
                    }
                };
                if let Some(e) = unrecorded {
                    return Err(e);
                }
                self.commands_started(None, &mut started)?;
                result.err()
            }
        };
        let ms = started_at.elapsed().as_millis() as u64;
        self.record(Record::CompensationFinished {
            step: id.clone(),
            error: error.clone(),
            duration_ms: ms,
            at: record::now(),
        })?;
        shared.emit(Event::CompensationFinished {
            step: id,
            error: error.clone(),
            duration_ms: ms,
        });
        Ok(error)
    }
}
