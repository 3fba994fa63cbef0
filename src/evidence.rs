//! What a run did, as evidence for people: each step's time on its host (the timeline by
//! host), the point of no return and when it was crossed, the measured outage (the first
//! change to the last step), failures with their stderr, and, for the GoCD plans, the
//! data-loss evidence (the old primary's last WAL position against what the new primary had
//! replayed when it was promoted). Computed once, here, from the run's graph and its journal
//! records; `drplan serve` shows it, `drplan report` writes it, `drplan status` words steps
//! with it.
//!
//! Everything in a journal is already redacted (the executor redacts where records leave
//! it), so nothing here handles secrets. Nothing here reads files or prints.

use crate::clock::Timestamp;
use crate::events::RunStatus;
use crate::exec::record::Record;
use crate::exec::{RunState, StepState};
use crate::graph::PlanGraph;
use crate::step::{SkipReason, StepFailure};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// One run, as the evidence shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunEvidence {
    pub run: String,
    pub plan: String,
    pub site: String,
    pub status: RunStatus,
    /// `status` in words (`rolling back`, …).
    pub status_word: &'static str,
    /// A process holds the site's lock for this run now (set by whoever looked).
    pub live: bool,
    pub started_at: Timestamp,
    /// The last record's time.
    pub last_at: Timestamp,
    /// From the first record to the last, in milliseconds.
    pub duration_ms: i64,
    pub params: serde_json::Map<String, Value>,
    pub steps: Vec<StepEvidence>,
    /// The steps by host, in the order each host was first used.
    pub lanes: Vec<Lane>,
    pub points_of_no_return: Vec<Crossing>,
    pub outage: Option<Outage>,
    pub failures: Vec<FailedStep>,
    /// Why the run never began its steps (a plan-level precondition refused).
    pub refused: Option<FailedStep>,
    pub data_loss: Option<DataLoss>,
    pub counts: Counts,
}

/// One step: where and when it ran, and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct StepEvidence {
    pub id: String,
    pub name: String,
    pub action: String,
    /// It changes a host (not only looks).
    pub changes: bool,
    pub role: String,
    /// `role (address)`.
    pub host: String,
    /// `done`, `failed`, `in doubt`, … (as `drplan status` says it).
    pub state: String,
    /// `done`, `failed`, `skipped`, `doubt`, `pending`, `undone`: for colours.
    pub class: &'static str,
    pub attempts: u32,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// Milliseconds from the run's start to this step's start and end.
    pub offset_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub duration_ms: Option<u64>,
    pub point_of_no_return: bool,
    pub result: Option<Value>,
    pub error: Option<StepFailure>,
    /// Its rollback hook ran: from, to (ms from the run's start), and how it ended.
    pub undo: Option<Undo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Undo {
    pub offset_ms: i64,
    pub end_ms: Option<i64>,
    pub error: Option<StepFailure>,
}

/// The steps that ran on one host.
#[derive(Debug, Clone, Serialize)]
pub struct Lane {
    pub host: String,
    /// Indices into `steps`.
    pub steps: Vec<usize>,
}

/// A point of no return and whether the run went past it.
#[derive(Debug, Clone, Serialize)]
pub struct Crossing {
    pub step: String,
    pub crossed: bool,
    pub at: Option<Timestamp>,
    pub offset_ms: Option<i64>,
}

/// From the first step that changed a host to the end of the last step: what the site's
/// users lived through (while the run goes on, until now).
#[derive(Debug, Clone, Serialize)]
pub struct Outage {
    pub from: Timestamp,
    pub to: Timestamp,
    pub ms: i64,
    pub first_change: String,
    pub last_step: String,
    /// The run has not ended: the outage goes on.
    pub ongoing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedStep {
    pub step: String,
    pub at: Option<Timestamp>,
    pub error: StepFailure,
}

/// What a promotion may have lost: the old primary's last WAL position against the new
/// primary's replay when it became primary.
#[derive(Debug, Clone, Serialize)]
pub struct DataLoss {
    pub promoted_step: String,
    pub new_primary: String,
    pub promoted_at: Option<Timestamp>,
    pub replayed_lsn: Option<String>,
    pub old_primary_step: Option<String>,
    pub old_primary: Option<String>,
    pub old_primary_last_lsn: Option<String>,
    /// WAL bytes the old primary wrote that the new primary never replayed (0: nothing was
    /// lost); None when it cannot be told.
    pub lost_bytes: Option<u64>,
    pub verdict: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub total: usize,
    pub done: usize,
    pub skipped: usize,
    pub failed: usize,
    pub in_doubt: usize,
    pub pending: usize,
    pub rolled_back: usize,
}

/// A step's state in words, as `drplan status` shows it.
pub fn state_word(state: &RunState, step: &str) -> String {
    match state.step(step) {
        StepState::Pending => "pending".into(),
        StepState::InDoubt { .. } => "in doubt".into(),
        _ if state.compensation_open.as_deref() == Some(step) => "undo in doubt".into(),
        StepState::Succeeded { .. } if state.compensated.contains(step) => "rolled back".into(),
        StepState::Succeeded { .. } => "done".into(),
        StepState::Skipped {
            reason: SkipReason::When,
        } => "skipped (when)".into(),
        StepState::Skipped {
            reason: SkipReason::Unreachable,
        } => "skipped (unreachable)".into(),
        StepState::Skipped {
            reason: SkipReason::Operator,
        } => "done by operator".into(),
        StepState::Failed { error } => format!("failed: {}", error.message),
    }
}

fn class_of(state: &RunState, step: &str) -> &'static str {
    match state.step(step) {
        StepState::Pending => "pending",
        StepState::InDoubt { .. } => "doubt",
        StepState::Succeeded { .. } if state.compensated.contains(step) => "undone",
        StepState::Succeeded { .. } => "done",
        StepState::Skipped { .. } => "skipped",
        StepState::Failed { .. } => "failed",
    }
}

/// When each step (and its rollback hook) started and ended, from the records.
#[derive(Default)]
struct Times {
    started: HashMap<String, Timestamp>,
    finished: HashMap<String, Timestamp>,
    undo_started: HashMap<String, Timestamp>,
    undo_finished: HashMap<String, (Timestamp, Option<StepFailure>)>,
    refused: Option<(String, StepFailure, Timestamp)>,
}

impl Times {
    fn read(records: &[Record]) -> Times {
        let mut t = Times::default();
        for r in records {
            match r {
                Record::StepStarted { step, at, .. } => {
                    t.started.entry(step.clone()).or_insert(*at);
                    t.finished.remove(step);
                }
                Record::StepFinished { step, at, .. } => {
                    t.finished.insert(step.clone(), *at);
                }
                Record::CompensationStarted { step, at } => {
                    t.undo_started.insert(step.clone(), *at);
                }
                Record::CompensationFinished {
                    step, error, at, ..
                } => {
                    t.undo_finished.insert(step.clone(), (*at, error.clone()));
                }
                Record::PreconditionRefused { check, error, at } => {
                    t.refused = Some((check.clone(), error.clone(), *at));
                }
                _ => {}
            }
        }
        t
    }
}

impl RunEvidence {
    /// The evidence of the run whose graph is `graph` and whose journal holds `records`
    /// (as stored), replayed into `state`.
    pub fn build(run: &str, graph: &PlanGraph, state: &RunState, records: &[Value]) -> Self {
        let parsed: Vec<Record> = records
            .iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect();
        let times = Times::read(&parsed);
        let t0 = state.started_at.as_millis();
        let since = |t: &Timestamp| t.as_millis() - t0;
        let mut steps = Vec::new();
        for (i, s) in graph.steps().iter().enumerate() {
            let started_at = times.started.get(&s.id).copied();
            let finished_at = times.finished.get(&s.id).copied();
            let (result, error) = match state.step(&s.id) {
                StepState::Succeeded { result } => (Some(result.clone()), None),
                StepState::Failed { error } => (None, Some(error.clone())),
                _ => (None, None),
            };
            let undo = times.undo_started.get(&s.id).map(|from| {
                let done = times.undo_finished.get(&s.id);
                Undo {
                    offset_ms: since(from),
                    end_ms: done.map(|(at, _)| since(at)),
                    error: done.and_then(|(_, e)| e.clone()),
                }
            });
            steps.push(StepEvidence {
                id: s.id.clone(),
                name: s.name.clone().unwrap_or_else(|| s.id.clone()),
                action: s.action.clone(),
                changes: graph.changes(i),
                role: s.on.clone(),
                host: host_label(graph, &s.on),
                state: state_word(state, &s.id),
                class: class_of(state, &s.id),
                attempts: state.attempts.get(&s.id).copied().unwrap_or(0),
                offset_ms: started_at.as_ref().map(since),
                end_ms: finished_at.as_ref().map(since),
                started_at,
                finished_at,
                duration_ms: state.durations_ms.get(&s.id).copied(),
                point_of_no_return: s.point_of_no_return,
                result,
                error,
                undo,
            });
        }
        let failures = steps
            .iter()
            .filter_map(|s| {
                s.error.clone().map(|error| FailedStep {
                    step: s.id.clone(),
                    at: s.finished_at,
                    error,
                })
            })
            .collect();
        let points_of_no_return = steps
            .iter()
            .filter(|s| s.point_of_no_return)
            .map(|s| {
                let crossed = matches!(state.step(&s.id), StepState::Succeeded { .. });
                Crossing {
                    step: s.id.clone(),
                    crossed,
                    at: s.finished_at.filter(|_| crossed),
                    offset_ms: s.end_ms.filter(|_| crossed),
                }
            })
            .collect();
        let status = state.status();
        RunEvidence {
            run: run.to_owned(),
            plan: state.plan.clone(),
            site: state.site.clone(),
            status,
            status_word: status.as_str(),
            live: false,
            started_at: state.started_at,
            last_at: state.last_at,
            duration_ms: state.last_at.as_millis() - state.started_at.as_millis(),
            params: state.params.clone(),
            lanes: lanes(&steps),
            points_of_no_return,
            outage: outage(&steps, state),
            failures,
            refused: times.refused.map(|(step, error, at)| FailedStep {
                step,
                at: Some(at),
                error,
            }),
            data_loss: data_loss(&steps),
            counts: counts(&steps),
            steps,
        }
    }
}

fn host_label(graph: &PlanGraph, role: &str) -> String {
    match graph.host(role) {
        Some(h) if h.is_local() => format!("{role} (local)"),
        Some(h) => format!("{role} ({})", h.describe()),
        None => role.to_owned(),
    }
}

fn lanes(steps: &[StepEvidence]) -> Vec<Lane> {
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| steps[i].offset_ms.unwrap_or(i64::MAX));
    let mut lanes: Vec<Lane> = Vec::new();
    for i in order {
        match lanes.iter_mut().find(|l| l.host == steps[i].host) {
            Some(lane) => lane.steps.push(i),
            None => lanes.push(Lane {
                host: steps[i].host.clone(),
                steps: vec![i],
            }),
        }
    }
    lanes
}

fn outage(steps: &[StepEvidence], state: &RunState) -> Option<Outage> {
    let first = steps
        .iter()
        .filter(|s| s.changes)
        .filter_map(|s| s.started_at.map(|at| (at, s)))
        .min_by_key(|(at, _)| at.as_millis())?;
    let ongoing = state.end.is_none();
    let last = steps
        .iter()
        .filter_map(|s| s.finished_at.map(|at| (at, s)))
        .max_by_key(|(at, _)| at.as_millis());
    let (to, last_step) = match (ongoing, last) {
        (false, Some((at, s))) => (at, s.id.clone()),
        (true, last) => (
            state.last_at,
            last.map(|(_, s)| s.id.clone()).unwrap_or_default(),
        ),
        (false, None) => (state.last_at, String::new()),
    };
    Some(Outage {
        from: first.0,
        ms: to.as_millis() - first.0.as_millis(),
        to,
        first_change: first.1.id.clone(),
        last_step,
        ongoing,
    })
}

fn counts(steps: &[StepEvidence]) -> Counts {
    let n = |class: &str| steps.iter().filter(|s| s.class == class).count();
    Counts {
        total: steps.len(),
        done: n("done"),
        skipped: n("skipped"),
        failed: n("failed"),
        in_doubt: n("doubt"),
        pending: n("pending"),
        rolled_back: n("undone"),
    }
}

/// `pg.promote` that promoted, against the `pg.stop` of another host that ended last before
/// it started: the old primary (the GoCD plans stop it, or find it unreachable, first).
fn data_loss(steps: &[StepEvidence]) -> Option<DataLoss> {
    let promoted = steps.iter().find(|s| {
        s.action == "pg.promote"
            && s.result
                .as_ref()
                .is_some_and(|r| r["promoted"] == Value::Bool(true))
    })?;
    let result = promoted.result.as_ref()?;
    let replayed_lsn = result["replayed_lsn"].as_str().map(str::to_owned);
    let replayed = result["replayed_lsn_bytes"].as_u64();
    let before = promoted.offset_ms.unwrap_or(i64::MAX);
    let old = steps
        .iter()
        .filter(|s| s.action == "pg.stop" && s.host != promoted.host)
        .filter(|s| s.end_ms.is_some_and(|end| end <= before))
        .max_by_key(|s| s.end_ms);
    let last_lsn = old
        .and_then(|s| s.result.as_ref())
        .and_then(|r| r["last_lsn"].as_str().map(str::to_owned));
    let last = old
        .and_then(|s| s.result.as_ref())
        .and_then(|r| r["last_lsn_bytes"].as_u64());
    let (lost_bytes, verdict) = match (old, last, replayed) {
        (_, Some(last), Some(replayed)) if replayed >= last => (
            Some(0),
            format!(
                "nothing lost: the new primary had replayed to {} when it was promoted, past the old primary's last WAL record (its shutdown checkpoint at {})",
                replayed_lsn.as_deref().unwrap_or("?"),
                last_lsn.as_deref().unwrap_or("?")
            ),
        ),
        (_, Some(last), Some(replayed)) => (
            Some(last - replayed),
            format!(
                "the old primary's WAL ends at {} but the new primary had replayed only to {}: up to {} bytes of WAL were not replayed (lost)",
                last_lsn.as_deref().unwrap_or("?"),
                replayed_lsn.as_deref().unwrap_or("?"),
                last - replayed
            ),
        ),
        (None, _, _) => (
            None,
            "unknown: no step of this run stopped the old primary before the promotion".into(),
        ),
        (Some(s), None, _) if s.class == "skipped" => (
            None,
            format!(
                "unknown: the old primary could not be reached ({} was {}), so its last WAL position was never read",
                s.id, s.state
            ),
        ),
        (Some(s), None, _) => (
            None,
            format!(
                "unknown: {} did not read where the old primary's WAL ends (it was not shut down cleanly, or the control file could not be read)",
                s.id
            ),
        ),
        (Some(_), Some(_), None) => (
            None,
            "unknown: the promotion did not say where its replay ended".into(),
        ),
    };
    Some(DataLoss {
        promoted_step: promoted.id.clone(),
        new_primary: promoted.host.clone(),
        promoted_at: promoted.finished_at,
        replayed_lsn,
        old_primary_step: old.map(|s| s.id.clone()),
        old_primary: old.map(|s| s.host.clone()),
        old_primary_last_lsn: last_lsn,
        lost_bytes,
        verdict,
    })
}
