//! The seam between the scheduler and the actions: the scheduler hands a `Call` to a
//! `StepRunner` and gets a result or a `StepFailure` back. The real runner runs actions over
//! transports; scheduling tests use a double.

use super::record::{RunCommand, StepFailure};
use crate::process::CommandIdentity;
use serde_json::Value;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// One action (or check) to run, with everything rendered.
#[derive(Debug, Clone)]
pub struct Call {
    pub step_id: String,
    pub action: String,
    /// Rendered parameters, secrets included: never journal or print these.
    pub params: Value,
    pub role: String,
    pub become_user: Option<String>,
    pub timeout: Option<Duration>,
    /// The template context (for `wait.until`'s expectation).
    pub context: Value,
    /// Where to report each command the call starts, as soon as it runs (None: checks,
    /// which change nothing and are not tracked).
    pub commands: Option<CommandSink>,
}

/// A command a step (or its rollback hook) started, on its way to the scheduling loop,
/// which journals it (`command_started`).
#[derive(Debug, Clone)]
pub struct StartedCommand {
    pub step: String,
    /// The journal's attempt of the step; 0 for a rollback hook.
    pub attempt: u32,
    pub rollback: bool,
    pub command: RunCommand,
}

/// Reports the commands of one step attempt (or one rollback hook).
#[derive(Debug, Clone)]
pub struct CommandSink {
    tx: UnboundedSender<StartedCommand>,
    step: String,
    attempt: u32,
    rollback: bool,
}

impl CommandSink {
    pub(super) fn new(
        tx: UnboundedSender<StartedCommand>,
        step: &str,
        attempt: u32,
        rollback: bool,
    ) -> Self {
        CommandSink {
            tx,
            step: step.to_string(),
            attempt,
            rollback,
        }
    }
}

impl crate::process::CommandReport for CommandSink {
    /// A command of this step started on `role`'s host.
    fn started(&self, role: &str, identity: CommandIdentity) {
        // The loop only stops listening once the run is over; nothing is left to tell then.
        let _ = self.tx.send(StartedCommand {
            step: self.step.clone(),
            attempt: self.attempt,
            rollback: self.rollback,
            command: RunCommand {
                role: role.to_string(),
                identity,
            },
        });
    }
}

pub trait StepRunner: Send + Sync + 'static {
    /// Run the call to its end. Implementations must not be cancelled mid-command: the
    /// scheduler always awaits them.
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
