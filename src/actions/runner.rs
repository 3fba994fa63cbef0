//! The real `StepRunner`: [`ActionRunner`] runs the executor's calls as actions from the
//! registry, over the hosts' transports.
//!
//! A call's parameters are already rendered; the runner finds the action by name, checks
//! the parameters against its type, reaches the role's host through the `Env`'s hosts and
//! returns the action's result object. It never drops a command half-way: time limits
//! travel *into* the commands (the step's `timeout`, else the action's budget, becomes a
//! deadline every command is bounded by), so the executor must not wrap a call in its own
//! timeout (a dropped SSH command runs on, unobserved). This file must not know how any
//! single action works.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::env::{Approvals, Env, HostEntry, Hosts};
use super::failure::transport_failure;
use crate::plan::BoundPlan;
use crate::plan::TransportKind;
use crate::process::CommandIdentity;
use crate::redact::Redactor;
use crate::step::{Call, StepFailure, StepRunner};
use crate::transport::{BecomeMethod, HostSpec as TransportSpec, LocalSpec, SshSpec, Transport};

/// How long ssh may take to connect when the site does not say.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the executor's calls: every action of the registry, on the hosts of one bound plan.
pub struct ActionRunner {
    env: Env,
}

impl ActionRunner {
    /// The hosts of `bound` (SSH control sockets under `control_dir`), and the operator's
    /// approvals for `manual.approve`. `redact`: the run's (`Secrets::redactor`), so that
    /// what the executor learns while rendering is masked in what the actions keep.
    pub fn new(
        bound: &BoundPlan,
        control_dir: &Path,
        approvals: Approvals,
        redact: Redactor,
    ) -> Self {
        let env = Env {
            hosts: hosts(bound, control_dir),
            site: bound.site.clone(),
            approvals,
            redact,
        };
        ActionRunner { env }
    }

    /// Start connecting to every SSH host of the plan now, in parallel, in the background
    /// (`Hosts::warm_up`): within a tokio runtime.
    pub fn warm_up(&self) {
        self.env.hosts.warm_up();
    }

    /// Close every connection this runner opened.
    pub async fn close(self) {
        self.env.hosts.close().await;
    }

    /// `role`'s host, connected.
    async fn transport(&self, role: &str) -> Result<&Transport, StepFailure> {
        let hosts = &self.env.hosts;
        hosts
            .get(role)
            .await
            .map_err(|e| transport_failure(&hosts.label(role), None, e))
    }
}

impl StepRunner for ActionRunner {
    async fn call(&self, call: Call) -> Result<Value, StepFailure> {
        super::dispatch(&self.env, &call).await
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
            .map_err(|e| transport_failure(&self.env.hosts.label(role), None, e))
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
            .map_err(|e| transport_failure(&self.env.hosts.label(role), None, e))
    }
}

/// The hosts of a bound plan. SSH hosts use the site's `ssh:` settings (paths relative to
/// the site file); `transport: local` hosts and the `local` role run on the controller.
/// SSH control sockets go into a private directory under `control_dir`.
fn hosts(bound: &BoundPlan, control_dir: &Path) -> Hosts {
    let entries = bound
        .hosts
        .iter()
        .map(|(role, binding)| {
            let spec = if binding.is_local() {
                Ok(TransportSpec::Local(local_spec(
                    binding.spec.become_user.clone(),
                    binding.spec.become_method,
                )))
            } else {
                ssh_spec(bound, &binding.spec, control_dir).map(TransportSpec::Ssh)
            };
            let entry = HostEntry::new(binding.describe(), binding.spec.clone(), spec);
            (role.clone(), entry)
        })
        .collect();
    Hosts::new(entries)
}

/// The site's `become_method` as the transport runs it.
fn method(m: crate::plan::BecomeMethod) -> BecomeMethod {
    match m {
        crate::plan::BecomeMethod::Sudo => BecomeMethod::Sudo,
        crate::plan::BecomeMethod::Runuser => BecomeMethod::Runuser,
        crate::plan::BecomeMethod::None => BecomeMethod::None,
    }
}

fn local_spec(
    become_user: Option<String>,
    site_method: Option<crate::plan::BecomeMethod>,
) -> LocalSpec {
    // On the controller, root can always use runuser, while sudo may not even be installed:
    // so runuser is root's default there. Anyone else needs sudo.
    let default = match crate::whoami::user_name() {
        Ok(name) if name == "root" => BecomeMethod::Runuser,
        _ => BecomeMethod::Sudo,
    };
    LocalSpec {
        become_user,
        become_method: site_method.map_or(default, method),
    }
}

fn ssh_spec(
    bound: &BoundPlan,
    host: &crate::plan::HostSpec,
    control_dir: &Path,
) -> Result<SshSpec, String> {
    debug_assert!(host.transport != Some(TransportKind::Local));
    let Some(ssh) = &bound.site.ssh else {
        return Err(format!(
            "site `{}` has no `ssh:` section, so there is no known_hosts file to verify {}'s key against",
            bound.site.site, host.address
        ));
    };
    let mut spec = SshSpec::new(host.address.clone(), bound.site_dir.join(&ssh.known_hosts));
    spec.port = host.port.unwrap_or(22);
    spec.user = host.user.clone();
    spec.identity = ssh.identity.as_ref().map(|i| bound.site_dir.join(i));
    spec.connect_timeout = ssh.connect_timeout.map_or(
        DEFAULT_CONNECT_TIMEOUT,
        super::super::plan::duration::Duration::std,
    );
    spec.become_user = host.become_user.clone();
    spec.become_method = method(host.become_method.unwrap_or_default());
    spec.control_dir = Some(control_dir.to_path_buf());
    Ok(spec)
}
