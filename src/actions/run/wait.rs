//! `wait.until`: run a check every `interval` until the expression `expect` holds over its
//! `result`, or fail after `timeout` showing the last result.
//!
//! The expression sees the executor's template context (`params`, `vars`, `hosts`, `steps`)
//! plus `result`, the check's latest result. A check that fails on the way (a host not yet
//! back, connection refused) is polled again; one whose failure cannot fix itself (bad
//! parameters, an unverified host key) ends the wait at once.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Ctx;
use crate::actions::error::{ActionError, ActionErrorKind};
use crate::actions::runtime::{ActionEnv, Invocation};
use crate::actions::{ActionKind, WaitUntilParams, lookup};
use crate::template;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How much of the last result a timeout message shows.
const SHOWN: usize = 2000;

type Boxed<'a> = Pin<Box<dyn Future<Output = Result<Value, ActionError>> + Send + 'a>>;

fn boxed_dispatch<'a>(env: &'a ActionEnv<'a>, inv: &'a Invocation<'a>) -> Boxed<'a> {
    Box::pin(super::dispatch(env, inv))
}

pub(super) async fn until(ctx: &Ctx<'_>, p: WaitUntilParams) -> Result<Value, ActionError> {
    match lookup(&p.check) {
        Some(spec)
            if spec.kind == ActionKind::Check
                && !matches!(spec.name, "wait.until" | "manual.approve") => {}
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
    let interval = p.interval.map_or(DEFAULT_INTERVAL, |i| i.std());
    let started = Instant::now();
    let deadline = (started + p.timeout.map_or(DEFAULT_TIMEOUT, |t| t.std())).min(ctx.deadline);
    let params = Value::Object(p.with.clone());
    let mut scope = match ctx.inv.context {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let inv = Invocation {
            step_id: ctx.inv.step_id,
            action: &p.check,
            params: &params,
            role: ctx.inv.role,
            become_user: ctx.inv.become_user,
            timeout: Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ),
            context: ctx.inv.context,
            commands: ctx.inv.commands,
        };
        // Boxed (in a plain fn, so that `Send` is proven without a cycle): this is a
        // recursive call into the dispatcher.
        let check = boxed_dispatch(ctx.env, &inv);
        let last = match check.await {
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
                    ActionErrorKind::InvalidParams
                        | ActionErrorKind::HostKey
                        | ActionErrorKind::Refused
                ) =>
            {
                return Err(e);
            }
            Err(e) => format!("error {}", shorten(&e.to_string())),
        };
        if Instant::now() + interval >= deadline {
            return Err(ActionError::new(
                ActionErrorKind::Timeout,
                &ctx.label(),
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
