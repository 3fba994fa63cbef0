//! Rollback: the compensations of completed steps, newest first, never crossing a point of
//! no return. Journaled step by step, so an interrupted rollback resumes where it stopped.

use super::record::{self, FailureKind, Record, RunEnd, StepFailure};
use super::scheduler::Ending;
use super::{Call, Executor, StepRunner};
use crate::events::Event;
use crate::journal::JournalError;
use crate::template;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

impl<R: StepRunner> Executor<R> {
    pub async fn rollback(&mut self) -> Result<Ending, JournalError> {
        self.record(Record::RollbackStarted { at: record::now() })?;
        let shared = Arc::clone(&self.shared);
        let order: Vec<String> = self.state.completed.iter().rev().cloned().collect();
        for id in order {
            if self.state.compensated.contains(&id) {
                continue;
            }
            let Some(i) = shared.graph.index_of(&id) else {
                continue;
            };
            let step = &shared.graph.steps()[i];
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
            let Some(rb) = &step.rollback else { continue };
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
            let started = Instant::now();
            let ctx = self.context();
            let error = match template::render_value(
                template::shared(),
                &Value::Object(rb.with.clone()),
                &ctx,
            ) {
                Err(e) => Some(StepFailure {
                    kind: FailureKind::Failed,
                    message: shared
                        .secrets
                        .redact_str(&format!("cannot render rollback parameters: {e}")),
                    host,
                    command: None,
                    status: None,
                    stderr_tail: None,
                }),
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
                        timeout: rb.timeout.or(step.timeout).map(|d| d.std()),
                        context: ctx,
                    };
                    shared.runner.call(call).await.err().map(|e| StepFailure {
                        message: shared.secrets.redact_str(&e.message),
                        stderr_tail: e.stderr_tail.as_ref().map(|s| shared.secrets.redact_str(s)),
                        ..e
                    })
                }
            };
            let ms = started.elapsed().as_millis() as u64;
            self.record(Record::CompensationFinished {
                step: id.clone(),
                error: error.clone(),
                duration_ms: ms,
                at: record::now(),
            })?;
            shared.emit(Event::CompensationFinished {
                step: id.clone(),
                error: error.clone(),
                duration_ms: ms,
            });
            if error.is_some() {
                self.record(Record::Paused {
                    reason: format!("rollback of {id} failed"),
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
}
