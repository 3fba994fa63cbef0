//! One readiness report: every check of a checks file run once against a site's hosts and
//! graded by its severity, for `drplan check`.
//!
//! Each check goes through the executor's own [`run_check`] — the same rendering of `with:`,
//! the same `expect` evaluation, the same redaction of secrets (done where each row is made) and the same messages as a
//! plan's preconditions — over the real action runtime (SSH or local), several at a time.
//! Nothing here changes a host (a checks file holds only read-only checks) and nothing here
//! prints: `check.rs` renders the [`Report`].

use super::action_runner::ActionRunner;
use crate::events::Silent;
use crate::exec::{Call, FailureKind, Secrets, Shared, StepFailure, StepRunner, run_check};
use crate::graph::PlanGraph;
use crate::plan::{Check, Severity};
use crate::transport::CommandIdentity;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

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
    /// The role the check ran on.
    pub on: String,
    /// That role's host (`user@address`, or `local`).
    pub host: String,
    /// The severity the checks file gives the check.
    pub severity: Severity,
    pub status: Status,
    /// Why it is not ok (the failing expectation with the result, or why it could not run).
    pub message: Option<String>,
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
    pub checked_at: String,
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

/// What every round needs: the bound checks file, the secrets, and how to reach hosts.
pub struct Round<'a> {
    pub graph: &'a PlanGraph,
    pub secrets: &'a Secrets,
    /// Where SSH control sockets go.
    pub control_dir: &'a Path,
    /// How many checks may run at once.
    pub parallel: usize,
}

/// The real action runner, remembering how each check's action ended. `run_check` reports
/// every failure as a refusal; a report must still tell an unreachable host (all its checks
/// are blind, so critical) from a check that ran, and show the result an `expect` was false
/// about.
struct Recording {
    inner: ActionRunner,
    seen: Mutex<HashMap<String, Result<Value, FailureKind>>>,
}

impl StepRunner for Recording {
    async fn call(&self, call: Call) -> Result<Value, StepFailure> {
        let id = call.step_id.clone();
        let outcome = self.inner.call(call).await;
        let kept = match &outcome {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(e.kind.clone()),
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(id, kept);
        }
        outcome
    }

    async fn processes(
        &self,
        role: &str,
        identity: &CommandIdentity,
    ) -> Result<Vec<i32>, StepFailure> {
        self.inner.processes(role, identity).await
    }

    async fn signal(
        &self,
        role: &str,
        identity: &CommandIdentity,
        signal: &str,
    ) -> Result<Vec<i32>, StepFailure> {
        self.inner.signal(role, identity, signal).await
    }
}

impl Round<'_> {
    /// Run every check once. `None` when `stop` turned true first: the checks still running
    /// are abandoned, which is safe for read-only commands (each is bounded on its host by
    /// its own `timeout`), unlike a plan's steps, which the executor always lets finish.
    ///
    /// Hosts are connected afresh each round, so a host that went away and came back (or the
    /// reverse) is seen as it is now, not through a stale SSH master.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Option<Report> {
        let bound = &self.graph.bound;
        let shared = Arc::new(Shared::new(
            self.graph.clone(),
            Recording {
                inner: ActionRunner::new(
                    bound,
                    self.control_dir,
                    Vec::new(),
                    self.secrets.redactor().clone(),
                ),
                seen: Mutex::new(HashMap::new()),
            },
            self.secrets.clone(),
            Arc::new(Silent),
        ));
        let ctx = crate::exec::context::context(bound, self.secrets, &crate::plan::Map::new());
        let checks = &bound.valid.plan.preconditions;
        let limit = Arc::new(Semaphore::new(self.parallel.max(1)));
        let mut tasks = JoinSet::new();
        for (i, check) in checks.iter().enumerate() {
            let (shared, limit, ctx, check) =
                (shared.clone(), limit.clone(), ctx.clone(), check.clone());
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = limit.acquire_owned().await;
                let verdict = run_check(&shared, &call_id(i), &check, &ctx).await;
                (i, verdict)
            });
        }
        let mut verdicts: Vec<Option<Result<Value, StepFailure>>> = vec![None; checks.len()];
        let finished = loop {
            tokio::select! {
                next = tasks.join_next() => match next {
                    Some(Ok((i, verdict))) => verdicts[i] = Some(verdict),
                    // A panicked check task leaves its slot empty: reported as critical.
                    Some(Err(_)) => {}
                    None => break true,
                },
                _ = stop.wait_for(|stopped| *stopped) => break false,
            }
        };
        tasks.shutdown().await;
        let report = finished.then(|| self.grade(&shared, checks, verdicts));
        if let Ok(shared) = Arc::try_unwrap(shared) {
            shared.runner.inner.close().await;
        }
        report
    }

    fn grade(
        &self,
        shared: &Shared<Recording>,
        checks: &[Check],
        verdicts: Vec<Option<Result<Value, StepFailure>>>,
    ) -> Report {
        let seen = shared
            .runner
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let rows: Vec<CheckRow> = checks
            .iter()
            .zip(verdicts)
            .enumerate()
            .map(|(i, (check, verdict))| {
                let host = self
                    .graph
                    .host(&check.on)
                    .map_or_else(|| check.on.clone(), |h| h.describe());
                let recorded = seen.get(&call_id(i));
                let (status, message, result) = match verdict {
                    Some(Ok(result)) => (Status::Ok, None, Some(result)),
                    Some(Err(failure)) => {
                        let status = match recorded {
                            Some(Err(FailureKind::Unreachable | FailureKind::HostKey)) => {
                                Status::Critical
                            }
                            _ => status_of(check.severity),
                        };
                        let result = match recorded {
                            Some(Ok(v)) => Some(v.clone()),
                            _ => None,
                        };
                        (status, Some(failure.message), result)
                    }
                    None => (
                        Status::Critical,
                        Some(format!(
                            "check `{}` did not finish (drplan bug)",
                            check.name
                        )),
                        None,
                    ),
                };
                // The report is where a check's words leave drplan: redact them here.
                CheckRow {
                    name: check.name.clone(),
                    on: check.on.clone(),
                    host,
                    severity: check.severity,
                    status,
                    message: message.map(|m| shared.secrets.redact_str(&m)),
                    result: result.map(|v| shared.secrets.redact(&v)),
                    label: shared.host_label(&check.on),
                }
            })
            .collect();
        let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
        Report {
            site: self.graph.bound.site.site.clone(),
            checked_at: crate::exec::record::now(),
            ok: count(Status::Ok),
            warnings: count(Status::Warning),
            critical: count(Status::Critical),
            checks: rows,
        }
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
