//! One readiness report: every check of a checks file run once against a site's hosts and
//! graded by its severity, for `drplan check`.
//!
//! Each check goes through the executor's own [`judge_check`] — the same rendering of `with:`,
//! the same `expect` evaluation and the same messages as a plan's preconditions — over
//! whatever [`StepRunner`] the caller gives (the real one reaches hosts over SSH or locally),
//! several at a time. The typed verdict says what became of each check: held, false about
//! its result, or could not run (an unreachable host makes every check on it blind, so
//! critical). Secrets are redacted where each row is made. Nothing here changes a host (a
//! checks file holds only read-only checks) and nothing here prints: `cli/check.rs` renders
//! the [`Report`].

use crate::check;
use crate::clock::Timestamp;
use crate::diag::Diagnostics;
use crate::exec::{Cancel, CheckVerdict, Shared, judge_check};
use crate::load::Document;
use crate::plan::ValidPlan;
use crate::plan::{Check, Severity};
use crate::step::{FailureKind, StepRunner};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Read and check a checks file: a valid plan, plus what makes it a checks file. Every
/// problem is reported at once.
pub fn load_checks(path: &Path) -> Result<ValidPlan, Diagnostics> {
    let doc = crate::shipped::read_plan(path)?;
    let rules = checks_file_rules(&doc);
    match check::plan(doc) {
        Ok(valid) => rules.sorted().into_result(valid),
        Err(mut found) => {
            found.extend(rules);
            Err(found.sorted())
        }
    }
}

fn checks_file_rules(doc: &Document) -> Diagnostics {
    let mut found = Diagnostics::default();
    if doc
        .value
        .get("steps")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
    {
        found.push(
            doc.error_at_key("drplan::checks::has_steps", "/steps", "a checks file has no steps")
                .label("must be `steps: []`")
                .help("`drplan check` only looks, it never changes anything: put what to check under `preconditions:`, or run a plan with `drplan apply`"),
        );
    }
    let checks = doc.value.get("preconditions").and_then(Value::as_array);
    match checks {
        Some(list) if !list.is_empty() => {
            for (i, c) in list.iter().enumerate() {
                let name = c.get("check").and_then(Value::as_str).unwrap_or_default();
                if check::asks_operator(name) {
                    found.push(
                        doc.error_at(
                            "drplan::checks::asks_operator",
                            &format!("/preconditions/{i}/check"),
                            format!("`{name}` asks the operator, which a readiness report cannot do"),
                        )
                        .label("not a check of the site")
                        .help("check something on a host instead (`pg.status`, `file.stat`, `http.get`, …)"),
                    );
                }
            }
        }
        Some(_) => found.push(
            doc.error_at_key(
                "drplan::checks::no_checks",
                "/preconditions",
                "a checks file needs at least one check",
            )
            .label("empty"),
        ),
        None if !doc.value.is_null() => found.push(
            doc.error_at("drplan::checks::no_checks", "", "a checks file needs at least one check")
                .help("list the checks under `preconditions:` (`name`, `on`, `check`, `with`, `expect`, `severity`)"),
        ),
        None => {}
    }
    found
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub name: String,
    /// The check it ran (`pg.status`, `vip.owner`, …): what its `result` holds.
    pub check: String,
    /// The role the check ran on.
    pub on: String,
    /// That role's host (`user@address`, or `local`).
    pub host: String,
    /// The severity the checks file gives the check.
    pub severity: Severity,
    pub status: Status,
    /// Why it is not ok (the failing expectation with the result, or why it could not run).
    pub message: Option<String>,
    /// The same without the check's name, for a line that shows it already.
    pub detail: Option<String>,
    /// The check's result, secrets redacted; null when it could not run.
    pub result: Option<Value>,
    /// `role (host)`, as the executor's messages name it.
    #[serde(skip)]
    pub label: String,
}

/// Every check of one round, in the order of the checks file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub site: String,
    pub checked_at: Timestamp,
    pub checks: Vec<CheckRow>,
    pub ok: usize,
    pub warnings: usize,
    pub critical: usize,
}

impl Report {
    /// The worst status of any check.
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

/// Run every check of the checks file `shared` runs once, `parallel` at a time. `None` when
/// `stop` was cancelled first: the checks still running are abandoned, which is safe for
/// read-only commands (each is bounded on its host by its own `timeout`), unlike a plan's
/// steps, which the executor always lets finish.
///
/// With a `budget`, the round ends when it is spent: a check still running then is
/// abandoned the same way and reported critical, "timed out" (a hung check must never leave
/// an earlier green standing, nor hold the report back).
///
/// Give each round a runner of its own, so that a host that went away and came back (or the
/// reverse) is seen as it is now, not through a stale connection.
pub async fn round<R: StepRunner>(
    shared: &Arc<Shared<R>>,
    parallel: usize,
    stop: &Cancel,
    budget: Option<Duration>,
) -> Option<Report> {
    let bound = &shared.graph.bound;
    let ctx = Arc::new(crate::exec::context::context(
        bound,
        &shared.secrets,
        &crate::plan::Map::new(),
    ));
    let checks = &bound.valid.plan.preconditions;
    let limit = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    for (i, check) in checks.iter().enumerate() {
        let (shared, limit, ctx, check) =
            (shared.clone(), limit.clone(), ctx.clone(), check.clone());
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = limit.acquire_owned().await;
            let verdict = judge_check(&shared, &call_id(i), &check, &ctx).await;
            (i, verdict)
        });
    }
    let mut verdicts: Vec<Option<CheckVerdict>> = vec![None; checks.len()];
    // Without a budget, a deadline that never comes.
    let spent = async {
        match budget {
            Some(b) => tokio::time::sleep(b).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(spent);
    let mut unfinished = Unfinished::Panicked;
    let finished = loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok((i, verdict))) => verdicts[i] = Some(verdict),
                // A panicked check task leaves its slot empty: reported as critical.
                Some(Err(_)) => {}
                None => break true,
            },
            () = &mut spent => {
                unfinished = Unfinished::TimedOut(budget.unwrap_or_default());
                break true;
            }
            () = stop.cancelled() => break false,
        }
    };
    tasks.shutdown().await;
    finished.then(|| grade(shared, checks, verdicts, unfinished))
}

/// Why a check has no verdict at the end of a round.
#[derive(Clone, Copy)]
enum Unfinished {
    /// Its task panicked (a drplan bug).
    Panicked,
    /// The round's budget was spent first.
    TimedOut(Duration),
}

fn grade<R>(
    shared: &Shared<R>,
    checks: &[Check],
    verdicts: Vec<Option<CheckVerdict>>,
    unfinished: Unfinished,
) -> Report {
    let rows: Vec<CheckRow> = checks
        .iter()
        .zip(verdicts)
        .map(|(check, verdict)| {
            let host = shared
                .graph
                .host(&check.on)
                .map_or_else(|| check.on.clone(), crate::plan::HostBinding::describe);
            let label = shared.host_label(&check.on);
            let (status, message, detail, result) = match verdict {
                Some(verdict) => {
                    let status = match &verdict {
                        CheckVerdict::Held(_) => Status::Ok,
                        CheckVerdict::CouldNotRun(e)
                            if matches!(
                                e.kind,
                                FailureKind::Unreachable | FailureKind::HostKey
                            ) =>
                        {
                            Status::Critical
                        }
                        _ => status_of(check.severity),
                    };
                    let detail = verdict.detail();
                    let result = verdict.result().cloned();
                    let message = verdict.into_result(&check.name, &label).err();
                    (status, message.map(|e| e.message), detail, result)
                }
                None => {
                    let why = match unfinished {
                        Unfinished::Panicked => "did not finish (drplan bug)".to_owned(),
                        Unfinished::TimedOut(b) => {
                            format!("timed out: no answer within {}", crate::plan::Duration(b))
                        }
                    };
                    (
                        Status::Critical,
                        Some(format!("check `{}` {why}", check.name)),
                        Some(why),
                        None,
                    )
                }
            };
            // The report is where a check's words leave drplan: redact them here.
            let redact = |m: Option<String>| m.map(|m| shared.secrets.redact_str(&m));
            CheckRow {
                name: check.name.clone(),
                check: check.check.clone(),
                on: check.on.clone(),
                host,
                severity: check.severity,
                status,
                message: redact(message),
                detail: redact(detail),
                result: result.map(|v| shared.secrets.redact(&v)),
                label,
            }
        })
        .collect();
    let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
    Report {
        site: shared.graph.bound.site.site.clone(),
        checked_at: Timestamp::now(),
        ok: count(Status::Ok),
        warnings: count(Status::Warning),
        critical: count(Status::Critical),
        checks: rows,
    }
}

/// The id a check's action runs under (actions see it as their step id).
fn call_id(i: usize) -> String {
    format!("check-{}", i + 1)
}

fn status_of(severity: Severity) -> Status {
    match severity {
        Severity::Warning => Status::Warning,
        Severity::Critical => Status::Critical,
    }
}
