//! What the executor tells the world while it runs. It never prints: it emits `Event`s, each
//! stamped with the time it happened, and subscribers (terminal progress, JSON lines) decide
//! how they look. Every text in an event is already redacted.

use crate::clock::Timestamp;
use crate::step::{Outcome, StepFailure};
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
        status: RunStatus,
        summary: String,
    },
}

/// A run's state in one word, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Running now, or stopped by a crash (a resume tells which by taking the lock).
    Incomplete,
    Paused,
    Interrupted,
    Succeeded,
    Refused,
    RollingBack,
    RolledBack,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Incomplete => "incomplete",
            RunStatus::Paused => "paused",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Refused => "refused",
            RunStatus::RollingBack => "rolling back",
            RunStatus::RolledBack => "rolled back",
        }
    }
}

/// Something that shows events.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Stamped);

    /// Events that happened together, in order (a sink that writes may write them at once).
    fn emit_all(&self, events: &[Stamped]) {
        for e in events {
            self.emit(e);
        }
    }

    /// The run's events are over: whatever is drawn live goes away (before the summary).
    fn close(&self) {}
}

/// Shows nothing (tests, `-q` with no JSON).
pub struct Silent;

impl EventSink for Silent {
    fn emit(&self, _: &Stamped) {}
}
