//! The real `StepRunner`: actions from the catalogue over local and SSH transports.

use crate::actions::{
    self as runtime, ActionEnv, ActionError, ActionErrorKind, Approvals, Hosts, Invocation,
};
use crate::check::BoundPlan;
use crate::exec::{Call, FailureKind, StepFailure, StepRunner};
use crate::redact::Redactor;
use crate::transport::{CommandIdentity, Transport};
use serde_json::Value;
use std::io::IsTerminal;
use std::path::Path;

pub struct ActionRunner {
    hosts: Hosts,
    bound: BoundPlan,
    approvals: Approvals,
    redact: Redactor,
}

impl ActionRunner {
    /// `redact`: the run's (`Secrets::redactor`), so that what the executor learns while
    /// rendering is masked in what the actions keep.
    pub fn new(
        bound: &BoundPlan,
        control_dir: &Path,
        approve: Vec<String>,
        redact: Redactor,
    ) -> Self {
        ActionRunner {
            hosts: Hosts::new(bound, control_dir),
            bound: bound.clone(),
            approvals: Approvals::new(approve, std::io::stdin().is_terminal()),
            redact,
        }
    }

    /// `role`'s host, connected.
    async fn transport(&self, role: &str) -> Result<&Transport, StepFailure> {
        self.hosts
            .get(role)
            .await
            .map_err(|e| failure(ActionError::transport(&self.hosts.label(role), None, e)))
    }

    /// Close every connection this runner opened.
    pub async fn close(self) {
        self.hosts.close().await;
    }
}

fn failure(e: ActionError) -> StepFailure {
    let kind = match e.kind {
        ActionErrorKind::Unreachable => FailureKind::Unreachable,
        // A key that cannot be verified is never "unreachable": `on_unreachable: skip` would
        // skip fencing because of a changed (or intercepted) key. Someone must look.
        ActionErrorKind::HostKey => FailureKind::HostKey,
        ActionErrorKind::Timeout => FailureKind::Timeout,
        ActionErrorKind::Refused => FailureKind::Refused,
        ActionErrorKind::Failed | ActionErrorKind::InvalidParams => FailureKind::Failed,
    };
    StepFailure {
        kind,
        message: e.message,
        host: e.host,
        command: e.command,
        status: e.status,
        stderr_tail: e.stderr_tail,
    }
}

impl StepRunner for ActionRunner {
    async fn call(&self, call: Call) -> Result<Value, StepFailure> {
        let env = ActionEnv {
            hosts: &self.hosts,
            bound: &self.bound,
            approvals: &self.approvals,
            redact: &self.redact,
        };
        let inv = Invocation {
            step_id: &call.step_id,
            action: &call.action,
            params: &call.params,
            role: &call.role,
            become_user: call.become_user.as_deref(),
            timeout: call.timeout,
            context: &call.context,
            commands: call
                .commands
                .as_ref()
                .map(|c| c as &dyn crate::process::CommandReport),
        };
        runtime::run(&env, &inv).await.map_err(failure)
    }

    async fn processes(
        &self,
        role: &str,
        identity: &CommandIdentity,
    ) -> Result<Vec<i32>, StepFailure> {
        let transport = self.transport(role).await?;
        transport
            .command_alive(identity)
            .await
            .map_err(|e| failure(ActionError::transport(&self.hosts.label(role), None, e)))
    }

    async fn signal(
        &self,
        role: &str,
        identity: &CommandIdentity,
        signal: &str,
    ) -> Result<Vec<i32>, StepFailure> {
        let transport = self.transport(role).await?;
        transport
            .signal_command(identity, signal)
            .await
            .map_err(|e| failure(ActionError::transport(&self.hosts.label(role), None, e)))
    }
}
