//! The state of a run, rebuilt by replaying its journal: the only truth the executor,
//! `resume`, `rollback` and `status` share.

use super::record::{Decision, Record, RunCommand, RunEnd, Timestamp};
use crate::events::RunStatus;
use crate::step::{Outcome, SkipReason, StepFailure};
use indexmap::IndexSet;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Where one step stands.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    Pending,
    /// Started, never finished: the action may or may not have run.
    InDoubt {
        attempt: u32,
    },
    Succeeded {
        result: Value,
    },
    Skipped {
        reason: SkipReason,
    },
    Failed {
        error: StepFailure,
    },
}

impl StepState {
    /// Satisfies the `needs` of its dependants.
    pub fn is_done(&self) -> bool {
        matches!(
            self,
            StepState::Succeeded { .. } | StepState::Skipped { .. }
        )
    }
}

/// A run's state as its journal tells it.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// The journal holds `run_started`: without it the run never began (it was refused
    /// before its first record) and can never be resumed.
    pub started: bool,
    pub run_id: String,
    pub plan: String,
    pub site: String,
    pub plan_sha256: String,
    pub site_sha256: String,
    /// Parameter values given for this run, as `run_started` recorded them.
    pub params: serde_json::Map<String, Value>,
    pub started_at: Timestamp,
    /// The plan's preconditions held (journaled before step one).
    pub preconditions_passed: bool,
    steps: HashMap<String, StepState>,
    pub attempts: HashMap<String, u32>,
    /// The commands of each step's latest attempt, in the order they started.
    pub commands: HashMap<String, Vec<RunCommand>>,
    /// The commands of each step's latest rollback hook run.
    pub rollback_commands: HashMap<String, Vec<RunCommand>>,
    pub durations_ms: HashMap<String, u64>,
    /// Steps that succeeded, in the order they finished (rollback goes backwards through it).
    pub completed: IndexSet<String>,
    pub compensated: HashSet<String>,
    /// A compensation that started and never finished, or failed.
    pub compensation_open: Option<String>,
    pub compensation_failed: Option<(String, StepFailure)>,
    pub rollback_started: bool,
    pub rollback_stopped_at: Option<String>,
    pub refused: Option<(String, StepFailure)>,
    pub paused: Option<String>,
    pub interrupted: bool,
    pub end: Option<RunEnd>,
    pub last_at: Timestamp,
    /// The journal's last record was torn by a crash.
    pub torn_tail: bool,
}

impl RunState {
    /// Replay journal records (as stored: JSON values).
    pub fn replay(records: &[Value], torn_tail: bool) -> Result<RunState, String> {
        let mut state = RunState {
            torn_tail,
            ..RunState::default()
        };
        for (i, v) in records.iter().enumerate() {
            let rec: Record = serde_json::from_value(v.clone()).map_err(|e| {
                format!(
                    "journal record {} is not one this drplan understands: {e}",
                    i + 1
                )
            })?;
            state.apply(&rec);
        }
        Ok(state)
    }

    /// `step` is done: last in the order rollback undoes steps in.
    fn complete(&mut self, step: &str) {
        self.completed.shift_remove(step);
        self.completed.insert(step.to_owned());
    }

    /// Fold one record into the state.
    pub fn apply(&mut self, rec: &Record) {
        match rec {
            Record::RunStarted {
                run_id,
                plan,
                site,
                plan_sha256,
                site_sha256,
                params,
                at,
            } => {
                self.started = true;
                self.params = params.clone();
                self.run_id = run_id.clone();
                self.plan = plan.clone();
                self.site = site.clone();
                self.plan_sha256 = plan_sha256.clone();
                self.site_sha256 = site_sha256.clone();
                self.started_at = *at;
            }
            Record::PreconditionsPassed { .. } => self.preconditions_passed = true,
            Record::PreconditionRefused { check, error, .. } => {
                self.refused = Some((check.clone(), error.clone()));
            }
            Record::StepStarted { step, attempt, .. } => {
                self.paused = None;
                self.interrupted = false;
                self.attempts.insert(step.clone(), *attempt);
                self.commands.remove(step);
                self.steps
                    .insert(step.clone(), StepState::InDoubt { attempt: *attempt });
            }
            Record::CommandStarted {
                step,
                rollback,
                command,
                ..
            } => {
                let list = if *rollback {
                    &mut self.rollback_commands
                } else {
                    &mut self.commands
                };
                list.entry(step.clone()).or_default().push(command.clone());
            }
            Record::StaleCommandStopped { .. } => {}
            Record::StepFinished {
                step,
                outcome,
                duration_ms,
                ..
            } => {
                self.durations_ms.insert(step.clone(), *duration_ms);
                let state = match outcome {
                    Outcome::Succeeded { result } => {
                        self.complete(step);
                        StepState::Succeeded {
                            result: result.clone(),
                        }
                    }
                    Outcome::Skipped { reason } => StepState::Skipped { reason: *reason },
                    Outcome::Failed { error } => StepState::Failed {
                        error: error.clone(),
                    },
                };
                self.steps.insert(step.clone(), state);
            }
            Record::OperatorDecision { step, decision, .. } => match decision {
                // Done by hand is done: rollback undoes it (newest first, from here) and
                // stops at it if it is a point of no return, as for a step that succeeded.
                Decision::Skip => {
                    self.complete(step);
                    self.steps.insert(
                        step.clone(),
                        StepState::Skipped {
                            reason: SkipReason::Operator,
                        },
                    );
                }
                // On a rollback hook left in doubt, the operator's word is about the hook.
                Decision::AssumeDone if self.compensation_open.as_deref() == Some(step) => {
                    self.compensation_open = None;
                    self.compensated.insert(step.clone());
                }
                Decision::AssumeNotRun if self.compensation_open.as_deref() == Some(step) => {
                    self.compensation_open = None;
                }
                // A step retried stays in doubt until it starts again: a crash between
                // this record and its `step_started` must not forget that it may have run
                // (a rollback then would skip its hook). The scheduler starts it as it
                // starts any step that is not done.
                Decision::Retry => {}
                Decision::AssumeNotRun => {
                    self.steps.insert(step.clone(), StepState::Pending);
                }
                Decision::AssumeDone => {
                    self.complete(step);
                    self.steps.insert(
                        step.clone(),
                        StepState::Succeeded {
                            result: Value::Null,
                        },
                    );
                }
            },
            Record::Paused { reason, .. } => self.paused = Some(reason.clone()),
            Record::Interrupted { .. } => self.interrupted = true,
            Record::RollbackStarted { .. } => {
                self.rollback_started = true;
                self.paused = None;
                self.interrupted = false;
                self.compensation_failed = None;
            }
            Record::CompensationStarted { step, .. } => {
                self.rollback_commands.remove(step);
                self.compensation_open = Some(step.clone());
            }
            Record::CompensationFinished { step, error, .. } => {
                self.compensation_open = None;
                match error {
                    None => {
                        self.compensated.insert(step.clone());
                    }
                    Some(e) => self.compensation_failed = Some((step.clone(), e.clone())),
                }
            }
            Record::RollbackStopped { at_step, .. } => {
                self.rollback_stopped_at = Some(at_step.clone());
            }
            Record::RunFinished { end, .. } => self.end = Some(*end),
        }
        if let Some(at) = at_of(rec) {
            self.last_at = *at;
        }
    }

    /// Why this run cannot be continued by `resume`, if it cannot.
    pub fn not_resumable(&self) -> Option<String> {
        if !self.started {
            return Some("it never started: it was refused before its first journal record".into());
        }
        match self.status() {
            RunStatus::Succeeded | RunStatus::Refused | RunStatus::RolledBack => {
                Some(format!("it is {}", self.status().as_str()))
            }
            _ => None,
        }
    }

    pub fn step(&self, id: &str) -> &StepState {
        self.steps.get(id).unwrap_or(&StepState::Pending)
    }

    pub fn status(&self) -> RunStatus {
        if !self.started {
            return RunStatus::Refused;
        }
        match self.end {
            Some(RunEnd::Succeeded) => RunStatus::Succeeded,
            Some(RunEnd::Refused) => RunStatus::Refused,
            Some(RunEnd::RolledBack) => RunStatus::RolledBack,
            None if self.rollback_started => RunStatus::RollingBack,
            None if self.paused.is_some() => RunStatus::Paused,
            None if self.interrupted => RunStatus::Interrupted,
            None => RunStatus::Incomplete,
        }
    }
}

fn at_of(rec: &Record) -> Option<&Timestamp> {
    Some(match rec {
        Record::RunStarted { at, .. }
        | Record::PreconditionsPassed { at, .. }
        | Record::PreconditionRefused { at, .. }
        | Record::StepStarted { at, .. }
        | Record::CommandStarted { at, .. }
        | Record::StaleCommandStopped { at, .. }
        | Record::StepFinished { at, .. }
        | Record::OperatorDecision { at, .. }
        | Record::Paused { at, .. }
        | Record::Interrupted { at }
        | Record::RollbackStarted { at }
        | Record::CompensationStarted { at, .. }
        | Record::CompensationFinished { at, .. }
        | Record::RollbackStopped { at, .. }
        | Record::RunFinished { at, .. } => at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finished(step: &str, attempt: u32) -> Value {
        json!({"kind": "step_finished", "step": step, "attempt": attempt,
               "outcome": "succeeded", "result": {}, "duration_ms": 1,
               "at": "2026-12-01T02:11:45.722Z"})
    }

    /// Rollback undoes steps newest first: a step done again (a retry, the operator's
    /// `--skip`) moves to the end of the order, and is in it once.
    #[test]
    fn a_step_done_again_is_the_newest_once() {
        let order = |records: &[Value]| {
            let state = RunState::replay(records, false).unwrap();
            state.completed.into_iter().collect::<Vec<_>>()
        };
        let mut records = vec![finished("a", 1), finished("b", 1), finished("c", 1)];
        assert_eq!(order(&records), ["a", "b", "c"]);
        records.push(finished("a", 2));
        assert_eq!(order(&records), ["b", "c", "a"]);
        records.push(
            json!({"kind": "operator_decision", "step": "b", "decision": "skip",
                            "at": "2026-12-01T02:11:46.000Z"}),
        );
        assert_eq!(order(&records), ["c", "a", "b"]);
    }
}
