//! What every action may use ([`Env`]): the hosts of the site ([`Hosts`], each connected
//! once, on first use, and shared by every step), the site's declarations, and the
//! operator's approvals for `manual.approve`. It sits beneath the actions and knows no
//! plans; the runner (`runner.rs`, above them) builds it from a bound plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use tokio::sync::{Mutex, OnceCell};

use crate::plan::{HostSpec, Site};
use crate::redact::Redactor;
use crate::transport::{HostSpec as TransportSpec, Transport, TransportError};

/// Role → transport, connected lazily on first use, reused, closed at the end.
pub(crate) struct Hosts {
    entries: BTreeMap<String, HostEntry>,
}

/// One role's host.
pub(crate) struct HostEntry {
    /// The host as messages name it.
    label: String,
    /// The host as the site declares it (`services:`, its address, …).
    site: HostSpec,
    /// How to reach it, or why the site does not say enough to reach it.
    spec: Result<TransportSpec, String>,
    /// Connected once; concurrent first uses wait for the same connection.
    cell: OnceCell<Transport>,
}

impl HostEntry {
    pub(crate) fn new(label: String, site: HostSpec, spec: Result<TransportSpec, String>) -> Self {
        HostEntry {
            label,
            site,
            spec,
            cell: OnceCell::new(),
        }
    }
}

impl Hosts {
    /// Role → host, each with how to reach it: built by the runner from a bound plan.
    pub(crate) fn new(entries: BTreeMap<String, HostEntry>) -> Hosts {
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

    /// The site's declaration of `role`'s host.
    pub fn site(&self, role: &str) -> Option<&HostSpec> {
        self.entries.get(role).map(|e| &e.site)
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
pub(crate) struct Env {
    pub hosts: Hosts,
    /// The site (its `postgres:` passwords and `sslmode`, …).
    pub site: Site,
    pub approvals: Approvals,
    /// The run's secrets in every form: masked in whatever an action shows or keeps of a
    /// command's output before it is cut to size, and in what it prints itself.
    pub redact: Redactor,
}
