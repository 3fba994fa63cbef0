//! Running one action: the hosts it runs on, what the executor hands it, and the dispatch
//! from an action's name to the code that does it (under `run/`, one file per family).
//!
//! The executor calls [`run`] with an [`Invocation`] whose parameters are already rendered;
//! `run` checks them against the action's parameter type, reaches the role's host through
//! [`Hosts`] (connected once, on first use, shared by every step) and returns the action's
//! result object. It never drops a command half-way: time limits travel *into* the commands
//! (the step's `timeout` becomes a deadline every command is bounded by), so the executor must
//! not wrap `run` in its own timeout (a dropped SSH command runs on, unobserved).
//! This file must not know how any single action works.

use crate::redact::Redactor;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use super::error::ActionError;

use crate::check::BoundPlan;
use crate::plan::TransportKind;
use crate::process::CommandReport;
use crate::transport::{
    BecomeMethod, HostSpec as TransportSpec, LocalSpec, SshSpec, Transport, TransportError,
};

/// How long ssh may take to connect when the site does not say.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Role → transport, connected lazily on first use, reused, closed at the end.
pub struct Hosts {
    entries: BTreeMap<String, HostEntry>,
}

struct HostEntry {
    /// The host as messages name it.
    label: String,
    /// How to reach it, or why the site does not say enough to reach it.
    spec: Result<TransportSpec, String>,
    /// Connected once; concurrent first uses wait for the same connection.
    cell: OnceCell<Transport>,
}

impl Hosts {
    /// The hosts of a bound plan. SSH hosts use the site's `ssh:` settings (paths relative to
    /// the site file); `transport: local` hosts and the `local` role run on the controller.
    /// SSH control sockets go into a private directory under `control_dir`.
    pub fn new(bound: &BoundPlan, control_dir: &Path) -> Hosts {
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
                let entry = HostEntry {
                    label: binding.describe(),
                    spec,
                    cell: OnceCell::new(),
                };
                (role.clone(), entry)
            })
            .collect();
        Hosts { entries }
    }

    /// The transport of `role`'s host, connecting on first use. A failed connection is not
    /// remembered: the next call tries again (a host may come back).
    pub async fn get(&self, role: &str) -> Result<&Transport, TransportError> {
        let Some(entry) = self.entries.get(role) else {
            return Err(TransportError::InvalidCommand {
                reason: format!("no host plays role `{role}` in this site"),
            });
        };
        let spec = entry
            .spec
            .as_ref()
            .map_err(|detail| TransportError::HostKey {
                host: entry.label.clone(),
                known_hosts: PathBuf::new(),
                detail: detail.clone(),
            })?;
        entry
            .cell
            .get_or_try_init(|| Transport::connect(spec))
            .await
    }

    /// The host of `role` as messages name it (`user@address:port`, or `local`).
    pub fn label(&self, role: &str) -> String {
        self.entries
            .get(role)
            .map_or_else(|| role.to_owned(), |e| e.label.clone())
    }

    /// Close every connection that was opened.
    pub async fn close(self) {
        for (_, entry) in self.entries {
            if let Some(transport) = entry.cell.into_inner() {
                transport.close().await;
            }
        }
    }
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
    spec.connect_timeout = ssh
        .connect_timeout
        .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.std());
    spec.become_user = host.become_user.clone();
    spec.become_method = method(host.become_method.unwrap_or_default());
    spec.control_dir = Some(control_dir.to_path_buf());
    Ok(spec)
}

/// One action to run, as the executor hands it over.
pub struct Invocation<'a> {
    pub step_id: &'a str,
    pub action: &'a str,
    /// Already rendered: templates replaced by values, secrets included.
    pub params: &'a Value,
    pub role: &'a str,
    /// The step's `become`, else the host's, else None.
    pub become_user: Option<&'a str>,
    /// The step's `timeout`: every command the action runs ends before it.
    pub timeout: Option<Duration>,
    /// The template context (`params`, `vars`, `hosts`, `secrets`, `steps`) for expressions
    /// an action evaluates itself (`wait.until`'s `expect`).
    pub context: &'a Value,
    /// Where each command the action starts is reported as soon as it runs.
    pub commands: Option<&'a dyn CommandReport>,
}

/// Which `manual.approve` steps the operator approved up front, and whether one can be asked.
pub struct Approvals {
    approved: BTreeSet<String>,
    interactive: bool,
    /// One question at a time on the terminal, even when steps run in parallel.
    pub(crate) prompt: Mutex<()>,
}

impl Approvals {
    /// `approved`: step ids given with `--approve`; `interactive`: stdin is a terminal.
    pub fn new(approved: Vec<String>, interactive: bool) -> Self {
        Self {
            approved: approved.into_iter().collect(),
            interactive,
            prompt: Mutex::new(()),
        }
    }

    pub(crate) fn approved(&self, step_id: &str) -> bool {
        self.approved.contains(step_id)
    }

    pub(crate) fn interactive(&self) -> bool {
        self.interactive
    }
}

/// What every action may use.
pub struct ActionEnv<'a> {
    pub hosts: &'a Hosts,
    pub bound: &'a BoundPlan,
    pub approvals: &'a Approvals,
    /// The run's secrets in every form: masked in whatever an action shows or keeps of a
    /// command's output before it is cut to size, and in what it prints itself.
    pub redact: &'a Redactor,
}

/// Run one action or check; returns its result object.
pub async fn run(env: &ActionEnv<'_>, inv: &Invocation<'_>) -> Result<Value, ActionError> {
    super::run::dispatch(env, inv).await
}
