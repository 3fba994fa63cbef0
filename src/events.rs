//! What the executor tells the world while it runs. It never prints: it emits `Event`s, each
//! stamped with the time it happened, and subscribers (terminal progress, JSON lines) decide
//! how they look. Every text in an event is already redacted.

use crate::clock::Timestamp;
use crate::exec::record::{Outcome, StepFailure};
use serde::{Deserialize, Serialize};

/// An event and when it happened: `{"at": "…", "event": "step_started", …}` as a JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stamped {
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: Event,
}

impl Stamped {
    /// `event`, happening now.
    pub fn now(event: Event) -> Self {
        Stamped {
            at: Timestamp::now(),
            event,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan: String,
        site: String,
        steps: usize,
        resumed: bool,
    },
    CheckPassed {
        check: String,
        host: String,
    },
    CheckFailed {
        check: String,
        host: String,
        error: StepFailure,
    },
    StepStarted {
        step: String,
        name: String,
        action: String,
        host: String,
        attempt: u32,
    },
    StepRetrying {
        step: String,
        attempt: u32,
        error: StepFailure,
    },
    StepFinished {
        step: String,
        name: String,
        #[serde(flatten)]
        outcome: Outcome,
        duration_ms: u64,
    },
    CompensationStarted {
        step: String,
        action: String,
        host: String,
    },
    CompensationFinished {
        step: String,
        error: Option<StepFailure>,
        duration_ms: u64,
    },
    RollbackStopped {
        at_step: String,
    },
    Note {
        message: String,
    },
    /// The last event of a run (or of a resumed part of it).
    RunFinished {
        run_id: String,
        status: crate::exec::RunStatus,
        summary: String,
    },
}

/// Something that shows events.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Stamped);
}

/// Shows nothing (tests, `-q` with no JSON).
pub struct Silent;

impl EventSink for Silent {
    fn emit(&self, _: &Stamped) {}
}
