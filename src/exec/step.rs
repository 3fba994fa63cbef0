//! Running one step: its preconditions, then its action with retries, in a spawned task.
//! Nothing here journals: the scheduler records what this returns.

use super::Shared;
use super::commands::CommandSink;
use crate::events::Event;
use crate::plan::{Check, OnUnreachable};
use crate::step::{Call, FailureKind, Outcome, SkipReason, StepFailure, StepRunner};
use crate::template;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Run step `i` with template context `ctx`, reporting its commands to `sink`; returns the
/// outcome and how long it took.
pub(super) async fn run<R: StepRunner>(
    shared: Arc<Shared<R>>,
    i: usize,
    ctx: Arc<Value>,
    sink: CommandSink,
) -> (Outcome, u64) {
    let started = Instant::now();
    let outcome = attempt_all(&shared, i, ctx, sink).await;
    (outcome, started.elapsed().as_millis() as u64)
}

async fn attempt_all<R: StepRunner>(
    shared: &Shared<R>,
    i: usize,
    ctx: Arc<Value>,
    sink: CommandSink,
) -> Outcome {
    let step = &shared.graph.steps()[i];
    for check in &step.preconditions {
        if let Err(error) = run_check(shared, &step.id, check, &ctx).await {
            return Outcome::Failed { error };
        }
    }
    let params = match render(shared, &Value::Object(step.with.clone()), &ctx, &step.on) {
        Ok(p) => p,
        Err(error) => return Outcome::Failed { error },
    };
    let mut call = Call {
        step_id: step.id.clone(),
        action: step.action.clone(),
        params,
        role: step.on.clone(),
        become_user: shared.become_user(step.become_user.as_deref(), &step.on),
        timeout: step
            .timeout
            .map(super::super::plan::duration::Duration::std),
        context: ctx,
        commands: Some(Arc::new(sink)),
    };
    let mut attempt = 0;
    loop {
        // The last attempt takes the call itself; only a step that may try again copies it.
        let this = if attempt < step.retries {
            call.clone()
        } else {
            std::mem::take(&mut call)
        };
        match shared.call(this).await {
            Ok(result) => {
                return Outcome::Succeeded { result };
            }
            Err(e)
                if e.kind == FailureKind::Unreachable
                    && step.on_unreachable == OnUnreachable::Skip =>
            {
                shared.emit(Event::Note {
                    message: format!(
                        "{}: host unreachable, skipped as the plan allows ({})",
                        step.id, e.message
                    ),
                });
                return Outcome::Skipped {
                    reason: SkipReason::Unreachable,
                };
            }
            Err(e)
                if attempt < step.retries
                    && e.kind != FailureKind::Refused
                    && !shared.cancel.is_cancelled() =>
            {
                attempt += 1;
                shared.emit(Event::StepRetrying {
                    step: step.id.clone(),
                    attempt,
                    error: e.clone(),
                });
                let delay = step.retry_delay.map_or(
                    std::time::Duration::from_secs(1),
                    super::super::plan::duration::Duration::std,
                );
                // A signal during the wait ends the step with this attempt's failure: no
                // new attempt starts after it.
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.cancel.cancelled() => {
                        return Outcome::Failed { error: e };
                    }
                }
            }
            Err(error) => return Outcome::Failed { error },
        }
    }
}

/// How a check came out, before anything is told about it.
#[derive(Debug, Clone)]
pub enum CheckVerdict {
    /// Its action ran and its `expect` (if any) held: the action's result.
    Held(Value),
    /// Its action ran and `expect` is false about the result.
    False { expect: String, result: Value },
    /// Its action ran and `expect` could not be evaluated against the result.
    Unevaluable {
        expect: String,
        error: String,
        result: Value,
    },
    /// Its action failed (the host unreachable, the command failing, …): nothing to judge.
    CouldNotRun(StepFailure),
    /// Its parameters could not be rendered: nothing ran.
    NotRendered(StepFailure),
}

impl CheckVerdict {
    /// What went wrong, for a line that names the check already; `None` when it held.
    pub fn detail(&self) -> Option<String> {
        Some(match self {
            CheckVerdict::Held(_) => return None,
            CheckVerdict::False { expect, result } => {
                format!("`{expect}` is false with result {result}")
            }
            CheckVerdict::Unevaluable {
                expect,
                error,
                result,
            } => format!("cannot evaluate `{expect}`: {error} (result {result})"),
            CheckVerdict::CouldNotRun(e) => format!("could not run: {}", e.message),
            CheckVerdict::NotRendered(e) => e.message.clone(),
        })
    }

    /// The action's result, when it ran.
    pub fn result(&self) -> Option<&Value> {
        match self {
            CheckVerdict::Held(result)
            | CheckVerdict::False { result, .. }
            | CheckVerdict::Unevaluable { result, .. } => Some(result),
            CheckVerdict::CouldNotRun(_) | CheckVerdict::NotRendered(_) => None,
        }
    }

    /// The verdict as a step or a run sees it: the result, or the refusal that names the
    /// check `name` on `host` (`role (address)`).
    pub fn into_result(self, name: &str, host: &str) -> Result<Value, StepFailure> {
        let refused = |message: String| StepFailure::new(FailureKind::Refused, host, message);
        match self {
            CheckVerdict::Held(result) => Ok(result),
            CheckVerdict::False { expect, result } => Err(refused(format!(
                "check `{name}` refused: `{expect}` is false with result {result}"
            ))),
            CheckVerdict::Unevaluable {
                expect,
                error,
                result,
            } => Err(refused(format!(
                "check `{name}`: cannot evaluate `{expect}`: {error} (result {result})"
            ))),
            // What ran and what it said stay; the check refuses.
            CheckVerdict::CouldNotRun(e) => Err(StepFailure {
                kind: FailureKind::Refused,
                message: format!("check `{name}` could not run: {}", e.message),
                host: host.to_owned(),
                ..e
            }),
            CheckVerdict::NotRendered(e) => Err(e),
        }
    }
}

/// Run a check and evaluate its expectation; the failure names the check, the host and
/// the values that did not meet it.
pub async fn run_check<R: StepRunner>(
    shared: &Shared<R>,
    step_id: &str,
    check: &Check,
    ctx: &Arc<Value>,
) -> Result<Value, StepFailure> {
    let verdict = judge_check(shared, step_id, check, ctx).await;
    let rendered = !matches!(verdict, CheckVerdict::NotRendered(_));
    let host = shared.host_label(&check.on);
    let outcome = verdict.into_result(&check.name, &host);
    match &outcome {
        Ok(_) => shared.emit(Event::CheckPassed {
            check: check.name.clone(),
            host,
        }),
        Err(error) if rendered => shared.emit(Event::CheckFailed {
            check: check.name.clone(),
            host,
            error: error.clone(),
        }),
        Err(_) => {}
    }
    outcome
}

/// Run a check's action and judge its result by `expect`, telling nobody.
pub async fn judge_check<R: StepRunner>(
    shared: &Shared<R>,
    step_id: &str,
    check: &Check,
    ctx: &Arc<Value>,
) -> CheckVerdict {
    let params = match render(shared, &Value::Object(check.with.clone()), ctx, &check.on) {
        Ok(p) => p,
        Err(e) => return CheckVerdict::NotRendered(e),
    };
    let call = Call {
        step_id: step_id.to_string(),
        action: check.check.clone(),
        params,
        role: check.on.clone(),
        become_user: shared.become_user(None, &check.on),
        timeout: None,
        context: Arc::clone(ctx),
        commands: None,
    };
    let result = match shared.call(call).await {
        Ok(r) => r,
        Err(e) => return CheckVerdict::CouldNotRun(e),
    };
    let Some(expect) = &check.expect else {
        return CheckVerdict::Held(result);
    };
    let mut scope = (**ctx).clone();
    scope["result"] = result.clone();
    let expect = expect.clone();
    match template::eval_bool(template::shared(), &expect, &scope) {
        Ok(true) => CheckVerdict::Held(result),
        Ok(false) => CheckVerdict::False { expect, result },
        Err(e) => CheckVerdict::Unevaluable {
            expect,
            error: e.to_string(),
            result,
        },
    }
}

fn render<R: StepRunner>(
    shared: &Shared<R>,
    with: &Value,
    ctx: &Value,
    role: &str,
) -> Result<Value, StepFailure> {
    shared.secrets.render(with, ctx).map_err(|e| {
        StepFailure::new(
            FailureKind::Failed,
            shared.host_label(role),
            format!("cannot render parameters: {e}"),
        )
    })
}
