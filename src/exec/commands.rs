//! Where the commands a step (or its rollback hook) starts go: a [`CommandSink`] travels
//! in the step's `Call` and hands each command's identity to the scheduling loop, which
//! journals it (`command_started`) before the step can end.

use super::record::RunCommand;
use crate::process::CommandIdentity;
use crate::step::CommandReport;
use tokio::sync::mpsc::UnboundedSender;

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

impl CommandReport for CommandSink {
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
