//! Commands a crashed run left running. A drplan killed mid-step cannot stop what it
//! started on a host: over SSH the command runs on, and locally a command run through
//! `sudo` (which clears the parent-death signal) or one that left its group does too.
//! Before `resume` or `rollback` starts anything in place of such a step, the command must
//! be over: this waits for it (telling the operator which process on which host) or, on
//! `--kill-stale`, stops it, journaled first. Whether it still runs is asked of its host by
//! the identity journaled when it started (`command_started`).

use super::record::{self, Record, RunCommand};
use super::{Executor, StepRunner};
use crate::events::Event;
use crate::journal::JournalError;
use std::time::{Duration, Instant};

/// How often a live stale command is looked at again while waiting for it.
const POLL: Duration = Duration::from_secs(1);

/// How long a signalled command may take to end before the next (stronger) signal; like
/// the remote `timeout --kill-after`.
const GRACE: Duration = Duration::from_secs(5);

/// How the wait for stale commands ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StaleWait {
    /// Nothing of them runs any more (or their host cannot tell).
    Over,
    /// A signal came first.
    Interrupted,
}

impl<R: StepRunner> Executor<R> {
    /// Wait until no command of step `step`'s latest attempt (with `rollback`: of its
    /// rollback hook's latest run) still runs; with `kill`, stop them.
    pub(super) async fn settle_stale(
        &mut self,
        step: &str,
        rollback: bool,
        kill: bool,
    ) -> Result<StaleWait, JournalError> {
        let commands = if rollback {
            self.state.rollback_commands.get(step)
        } else {
            self.state.commands.get(step)
        };
        for command in commands.cloned().unwrap_or_default() {
            if self.settle_one(step, rollback, kill, &command).await? == StaleWait::Interrupted {
                return Ok(StaleWait::Interrupted);
            }
        }
        Ok(StaleWait::Over)
    }

    async fn settle_one(
        &mut self,
        step: &str,
        rollback: bool,
        kill: bool,
        command: &RunCommand,
    ) -> Result<StaleWait, JournalError> {
        let shared = std::sync::Arc::clone(&self.shared);
        let what = format!(
            "step {step}: its {}command (pid {} on {})",
            if rollback { "rollback " } else { "" },
            command.identity.pid,
            shared.host_label(&command.role)
        );
        let note = |message: String| shared.emit(Event::Note { message });
        let (mut waiting, mut stopped) = (false, false);
        loop {
            let running = match self.running(command).await {
                Ok(running) => running,
                Err(e) => {
                    // The host may be the one the disaster took: then the command is gone
                    // with it, and a step that needs the host fails on its own.
                    note(format!(
                        "{what} from the crashed run: cannot tell whether it still runs ({e}); going on as if it had ended"
                    ));
                    return Ok(StaleWait::Over);
                }
            };
            if running.is_empty() {
                if waiting || stopped {
                    note(format!("{what} from the crashed run has ended"));
                }
                return Ok(StaleWait::Over);
            }
            if kill && !stopped {
                stopped = true;
                self.record(Record::StaleCommandStopped {
                    step: step.to_string(),
                    rollback,
                    command: command.clone(),
                    at: record::now(),
                })?;
                note(format!(
                    "{what} from the crashed run is still running; stopping it (--kill-stale)"
                ));
                if self.stop(command).await {
                    continue;
                }
                note(format!("{what} could not be stopped"));
            }
            if !waiting {
                waiting = true;
                note(format!(
                    "{what} from the crashed run is still running; waiting for it to end{}",
                    if stopped { "" } else { " (or --kill-stale)" }
                ));
            }
            let cancel = self.cancel.clone();
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = cancel.cancelled() => return Ok(StaleWait::Interrupted),
            }
        }
    }

    /// The processes of `command` that still run.
    async fn running(&self, command: &RunCommand) -> Result<Vec<i32>, String> {
        self.shared
            .runner
            .processes(&command.role, &command.identity)
            .await
            .map_err(|e| e.message)
    }

    /// SIGTERM, then SIGKILL after `GRACE`; true once nothing of it runs.
    async fn stop(&self, command: &RunCommand) -> bool {
        for signal in ["TERM", "KILL"] {
            let runner = &self.shared.runner;
            match runner
                .signal(&command.role, &command.identity, signal)
                .await
            {
                Ok(reached) if reached.is_empty() => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
            let deadline = Instant::now() + GRACE;
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if self.running(command).await.is_ok_and(|r| r.is_empty()) {
                    return true;
                }
            }
        }
        false
    }
}
