//! `wait.until`: run a check every `interval` until the expression `expect` holds over its
//! `result`, or fail after `timeout` showing the last result.
//!
//! The expression sees the executor's template context (`params`, `vars`, `hosts`, `steps`)
//! plus `result`, the check's latest result. A check that fails on the way (a host not yet
//! back, connection refused) is polled again; one whose failure cannot fix itself (bad
//! parameters, an unverified host key) ends the wait at once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::WaitUntilParams;
use crate::actions::host::Ctx;
use crate::actions::{dispatch, lookup};
use crate::step::{Call, FailureKind, StepFailure};
use crate::template;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How much of the last result a timeout message shows.
const SHOWN: usize = 2000;

pub(super) async fn until(ctx: &Ctx<'_>, p: WaitUntilParams) -> Result<Value, StepFailure> {
    match lookup(&p.check) {
        Some(check) if check.pollable() => {}
        Some(_) => {
            return Err(ctx.invalid(format!(
                "`{}` cannot be waited on: `check` must be a read-only check such as pg.status or http.get",
                p.check
            )));
        }
        None => return Err(ctx.invalid(format!("there is no check `{}`", p.check))),
    }
    let env = template::shared();
    if let Err(e) = crate::template::compile_expression(env, &p.expect) {
        return Err(ctx.invalid(format!("`expect` is not a valid expression: {e}")));
    }
    let interval = p
        .interval
        .map_or(DEFAULT_INTERVAL, crate::plan::duration::Duration::std);
    let started = Instant::now();
    let deadline = (started
        + p.timeout
            .map_or(DEFAULT_TIMEOUT, crate::plan::duration::Duration::std))
    .min(ctx.deadline);
    let params = Value::Object(p.with.clone());
    let mut scope = match &*ctx.call.context {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let check = Call {
            action: p.check.clone(),
            params: params.clone(),
            timeout: Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ),
            ..ctx.call.clone()
        };
        let last = match dispatch(ctx.env, &check).await {
            Ok(result) => {
                scope.insert("result".to_owned(), result.clone());
                let holds = template::eval_bool(env, &p.expect, &Value::Object(scope.clone()))
                    .map_err(|e| {
                        ctx.invalid(format!(
                            "`expect` ({}) could not be evaluated: {e}",
                            p.expect
                        ))
                    })?;
                if holds {
                    let waited = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    return Ok(
                        json!({ "attempts": attempts, "waited_ms": waited, "result": result }),
                    );
                }
                format!("result {}", shorten(&result.to_string()))
            }
            Err(e)
                if matches!(
                    e.kind,
                    FailureKind::InvalidParams | FailureKind::HostKey | FailureKind::Refused
                ) =>
            {
                return Err(e);
            }
            Err(e) => format!("error {}", shorten(&e.to_string())),
        };
        if Instant::now() + interval >= deadline {
            return Err(StepFailure::new(
                FailureKind::Timeout,
                ctx.label(),
                format!(
                    "`{}` did not hold for {} within {:.1}s ({attempts} attempts); last {last}",
                    p.expect,
                    p.check,
                    started.elapsed().as_secs_f64()
                ),
            ));
        }
        tokio::time::sleep(interval).await;
    }
}

fn shorten(s: &str) -> String {
    if s.len() <= SHOWN {
        return s.to_owned();
    }
    let cut = (0..=SHOWN)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &s[..cut])
}
