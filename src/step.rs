//! The step seam: what the executor hands to whatever runs a step ([`Call`]), what comes back
//! (a result, or a [`StepFailure`]), how a step attempt ended ([`Outcome`]), and the
//! [`StepRunner`] trait between them.
//!
//! It sits beneath both sides, so neither imports the other: the executor (`exec`) schedules
//! calls and journals what they did; `actions::ActionRunner` runs them over the hosts'
//! transports; scheduling tests use a double. Plain data and two traits; it imports nothing
//! of ours but `process` (what a host says about a command it started).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::process::CommandIdentity;

/// One action (or check) to run, with everything rendered.
#[derive(Clone, Default)]
pub struct Call {
    pub step_id: String,
    pub action: String,
    /// Rendered parameters, secrets included: never journal or print these.
    pub params: Value,
    pub role: String,
    /// The step's `become`, else the host's, else None.
    pub become_user: Option<String>,
    /// The step's `timeout`: every command the action runs ends before it.
    pub timeout: Option<Duration>,
    /// The template context (`params`, `vars`, `hosts`, `secrets`, `steps`) for expressions
    /// an action evaluates itself (`wait.until`'s `expect`). Shared: the steps that read no
    /// step's result all get the run's one context.
    pub context: Arc<Value>,
    /// Where to report each command the call starts, as soon as it runs (None: checks,
    /// which change nothing and are not tracked).
    pub commands: Option<Arc<dyn CommandReport>>,
}

impl fmt::Debug for Call {
    /// Without the parameters and the context, which hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("step_id", &self.step_id)
            .field("action", &self.action)
            .field("role", &self.role)
            .field("become_user", &self.become_user)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Where a call reports each command it starts, as soon as the host says who it is: the
/// executor journals it (`command_started`) before the command can finish.
pub trait CommandReport: Send + Sync {
    fn started(&self, role: &str, identity: CommandIdentity);
}

/// What runs the executor's calls.
pub trait StepRunner: Send + Sync + 'static {
    /// Run the call to its end. Implementations must not be cancelled mid-command: the
    /// scheduler always awaits them, and time limits travel into the commands instead.
    fn call(&self, call: Call) -> impl Future<Output = Result<Value, StepFailure>> + Send;

    /// The processes of a command started earlier (by a run that crashed) that still run
    /// on `role`'s host; empty when none does.
    fn processes(
        &self,
        role: &str,
        identity: &CommandIdentity,
    ) -> impl Future<Output = Result<Vec<i32>, StepFailure>> + Send;

    /// Send `signal` (`TERM`, `KILL`) to the processes of such a command; returns those it
    /// reached.
    fn signal(
        &self,
        role: &str,
        identity: &CommandIdentity,
        signal: &str,
    ) -> impl Future<Output = Result<Vec<i32>, StepFailure>> + Send;
}

/// Why a step or check did not succeed: what the executor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The action ran and failed (non-zero exit, unexpected state, lost connection
    /// mid-command: the last may have left the host changed, so the step is in doubt).
    Failed,
    /// Nothing answered: the connection was refused, timed out, or had no route. Nothing
    /// ran; `on_unreachable: skip` applies.
    Unreachable,
    /// Something answered but could not be trusted or would not let us in: a host key that
    /// could not be verified, or a refused login. Never "unreachable": a changed or
    /// intercepted key must not let `on_unreachable: skip` skip fencing.
    HostKey,
    /// The action (or a command or wait of it) ran out of time.
    Timeout,
    /// A precondition (or an operator) refused: nothing was changed.
    Refused,
    /// The `with:` parameters do not fit the action (or a value cannot be passed to a host).
    InvalidParams,
}

impl FailureKind {
    fn code(self) -> &'static str {
        match self {
            Self::Failed => "drplan::action::failed",
            Self::Unreachable => "drplan::action::unreachable",
            Self::HostKey => "drplan::action::host_key",
            Self::Timeout => "drplan::action::timeout",
            Self::Refused => "drplan::action::refused",
            Self::InvalidParams => "drplan::action::invalid_params",
        }
    }
}

/// A failed step or check, with what an operator needs to act on it. Secrets are redacted
/// where it leaves the executor (its journal and events), never before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{host}: {message}")]
pub struct StepFailure {
    pub kind: FailureKind,
    pub message: String,
    /// Where it failed: the host as the site names it (`user@address:port`, or `local`)
    /// from the runner; `role (address)` once the executor has it.
    pub host: String,
    /// The command that failed, its argv joined for humans (never its environment or
    /// stdin, which is where passwords travel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// The last lines the command wrote to stderr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

impl StepFailure {
    /// A failure on `host`, and nothing yet about a command.
    pub fn new(kind: FailureKind, host: impl Into<String>, message: impl Into<String>) -> Self {
        StepFailure {
            kind,
            message: message.into(),
            host: host.into(),
            command: None,
            status: None,
            stderr_tail: None,
        }
    }

    /// The same failure, its message prefixed with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl miette::Diagnostic for StepFailure {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match self.kind {
            FailureKind::Unreachable => {
                "check that the host is up and reachable; a step with `on_unreachable: skip` goes on without it"
            }
            FailureKind::HostKey => {
                "put the host's key, checked out of band, into the site's ssh.known_hosts file"
            }
            FailureKind::Timeout => {
                "raise the step's `timeout` (or the action's own `wait`/`timeout`), or find out on the host what held it up"
            }
            FailureKind::InvalidParams => "fix the step's `with:` parameters",
            FailureKind::Refused => return None,
            FailureKind::Failed => match (&self.command, &self.stderr_tail) {
                (Some(_), Some(_)) => "the command's stderr above says why",
                _ => return None,
            },
        };
        Some(Box::new(help))
    }
}

/// Why a step did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `when` was false.
    When,
    /// Its host was unreachable and it says `on_unreachable: skip`.
    Unreachable,
    /// The operator said it is done (`resume --skip`).
    Operator,
}

/// How a step attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded { result: Value },
    Skipped { reason: SkipReason },
    Failed { error: StepFailure },
}
