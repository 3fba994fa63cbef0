//! What the executor writes to a run's journal, and how the journal is read back into the
//! state of the run.
//!
//! Write-ahead: `StepStarted` is on disk before the action begins, `StepFinished` before any
//! dependant starts. A `StepStarted` without its `StepFinished` is *in doubt*: the action may
//! or may not have run. Results and errors are journaled after secret values are redacted.

pub use crate::clock::Timestamp;
use crate::step::{Outcome, StepFailure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a whole run (or its rollback) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    Succeeded,
    /// A plan-level precondition refused: nothing was changed.
    Refused,
    RolledBack,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first record: which run this journal belongs to, and the exact plan and site
    /// texts (by sha-256) it executes. Checked against the run's stored plan on every read.
    RunStarted {
        run_id: String,
        plan: String,
        site: String,
        plan_sha256: String,
        site_sha256: String,
        /// Parameter values given for this run (`--param`), over the site's.
        #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
        params: serde_json::Map<String, Value>,
        at: Timestamp,
    },
    /// Every plan-level precondition held, with what each observed. Written before step
    /// one; a run without it re-checks them when it is resumed.
    PreconditionsPassed {
        checks: Vec<CheckSeen>,
        at: Timestamp,
    },
    PreconditionRefused {
        check: String,
        error: StepFailure,
        at: Timestamp,
    },
    StepStarted {
        step: String,
        attempt: u32,
        at: Timestamp,
    },
    /// A command of the step's attempt (or, with `rollback`, of its rollback hook) runs on
    /// a host: who it is, so that a later `resume` or `rollback` can tell whether it still
    /// runs. Journaled as soon as it is known, before the step's end.
    CommandStarted {
        step: String,
        /// The step's attempt; 0 for a rollback hook.
        attempt: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rollback: bool,
        #[serde(flatten)]
        command: RunCommand,
        at: Timestamp,
    },
    /// `--kill-stale`: a command of a crashed run that still ran is being stopped (journaled
    /// before the first signal).
    StaleCommandStopped {
        step: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rollback: bool,
        #[serde(flatten)]
        command: RunCommand,
        at: Timestamp,
    },
    StepFinished {
        step: String,
        attempt: u32,
        #[serde(flatten)]
        outcome: Outcome,
        duration_ms: u64,
        at: Timestamp,
    },
    /// The operator marked a step done or asked for it to run again.
    OperatorDecision {
        step: String,
        decision: Decision,
        at: Timestamp,
    },
    Paused {
        reason: String,
        at: Timestamp,
    },
    Interrupted {
        at: Timestamp,
    },
    RollbackStarted {
        at: Timestamp,
    },
    CompensationStarted {
        step: String,
        at: Timestamp,
    },
    CompensationFinished {
        step: String,
        error: Option<StepFailure>,
        duration_ms: u64,
        at: Timestamp,
    },
    /// Rollback reached a step it must not cross.
    RollbackStopped {
        at_step: String,
        at: Timestamp,
    },
    RunFinished {
        end: RunEnd,
        at: Timestamp,
    },
}

/// A command a step ran: on which role's host, and who it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCommand {
    pub role: String,
    pub identity: crate::process::CommandIdentity,
}

/// What a passing check saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSeen {
    pub check: String,
    /// `role (address)`
    pub host: String,
    pub result: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// `resume --skip`: done by hand; satisfies its dependants.
    Skip,
    /// `resume --retry` (or an idempotent step): run it again.
    Retry,
    /// `rollback --assume-done`: a step left in doubt did run; its rollback hook runs.
    AssumeDone,
    /// `rollback --assume-not-run`: a step left in doubt never ran; nothing to undo.
    AssumeNotRun,
}

/// Now, to the millisecond (journaled as RFC 3339 UTC).
pub fn now() -> Timestamp {
    Timestamp::now()
}
