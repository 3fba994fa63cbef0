//! What every action may use ([`Env`]): the hosts of the site ([`Hosts`], each connected
//! once, on first use, and shared by every step), the site's declarations, and the
//! operator's approvals for `manual.approve`. It sits beneath the actions and knows no
//! plans; the runner (`runner.rs`, above them) builds it from a bound plan.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, OnceCell};
use tokio::task::JoinHandle;

use crate::plan::{HostSpec, Site};
use crate::redact::Redactor;
use crate::transport::{HostSpec as TransportSpec, Transport, TransportError};

/// Role → transport, connected on first use (or ahead of it: `warm_up`), reused, closed at
/// the end.
pub(crate) struct Hosts {
    entries: BTreeMap<String, Arc<HostEntry>>,
    /// The connections `warm_up` opens in the background, while they go on.
    warming: std::sync::Mutex<Vec<JoinHandle<()>>>,
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
    /// Held while connecting (one attempt at a time), with the last failure.
    attempt: Mutex<Option<TransportError>>,
    /// How many attempts failed.
    failures: AtomicU64,
}

impl HostEntry {
    pub(crate) fn new(label: String, site: HostSpec, spec: Result<TransportSpec, String>) -> Self {
        HostEntry {
            label,
            site,
            spec,
            cell: OnceCell::new(),
            attempt: Mutex::new(None),
            failures: AtomicU64::new(0),
        }
    }

    /// The transport, connecting if no connection is up. A failed connection is not
    /// remembered: the next call tries again (a host may come back). But a call that waited
    /// for an attempt already under way takes that attempt's answer: a dead host is not
    /// given a second connect timeout right after the first.
    async fn get(&self) -> Result<&Transport, TransportError> {
        let spec = self
            .spec
            .as_ref()
            .map_err(|detail| TransportError::HostKey {
                host: self.label.clone(),
                known_hosts: PathBuf::new(),
                detail: detail.clone(),
            })?;
        if let Some(transport) = self.cell.get() {
            return Ok(transport);
        }
        let failed_before = self.failures.load(Ordering::SeqCst);
        let mut last = self.attempt.lock().await;
        if let Some(transport) = self.cell.get() {
            return Ok(transport);
        }
        if self.failures.load(Ordering::SeqCst) != failed_before
            && let Some(e) = last.as_ref()
        {
            return Err(e.clone());
        }
        match Transport::connect(spec).await {
            Ok(transport) => Ok(self.cell.get_or_init(|| async { transport }).await),
            Err(e) => {
                *last = Some(e.clone());
                self.failures.fetch_add(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

impl Hosts {
    /// Role → host, each with how to reach it: built by the runner from a bound plan.
    pub(crate) fn new(entries: BTreeMap<String, HostEntry>) -> Hosts {
        Hosts {
            entries: entries.into_iter().map(|(r, e)| (r, Arc::new(e))).collect(),
            warming: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Start connecting to every SSH host at once, in the background, so that no step
    /// waits for its host's connection after the steps before it: a plan over four hosts
    /// used one after the other paid four connection set-ups on its critical path. A
    /// failure here is nobody's error: the first step that needs the host gets it (or tries
    /// again, if the attempt had ended before it asked), exactly as it would have.
    pub(crate) fn warm_up(&self) {
        let mut warming = self
            .warming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for entry in self.entries.values() {
            if matches!(entry.spec, Ok(TransportSpec::Ssh(_))) && entry.cell.get().is_none() {
                let entry = Arc::clone(entry);
                warming.push(tokio::spawn(async move {
                    let _ = entry.get().await;
                }));
            }
        }
    }

    /// The transport of `role`'s host, connecting on first use.
    pub(crate) async fn get(&self, role: &str) -> Result<&Transport, TransportError> {
        match self.entries.get(role) {
            Some(entry) => entry.get().await,
            None => Err(TransportError::InvalidCommand {
                reason: format!("no host plays role `{role}` in this site"),
            }),
        }
    }

    /// The host of `role` as messages name it (`user@address:port`, or `local`).
    pub(crate) fn label(&self, role: &str) -> String {
        self.entries
            .get(role)
            .map_or_else(|| role.to_owned(), |e| e.label.clone())
    }

    /// The site's declaration of `role`'s host.
    pub(crate) fn site(&self, role: &str) -> Option<&HostSpec> {
        self.entries.get(role).map(|e| &e.site)
    }

    /// Stop the connections still being opened ahead, and close every one that was opened.
    pub(crate) async fn close(self) {
        let warming = self
            .warming
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for task in warming {
            // Cancel-safe: an ssh still connecting is killed (`ssh_master::launch`).
            task.abort();
            let _ = task.await;
        }
        for (_, entry) in self.entries {
            if let Some(transport) = Arc::into_inner(entry).and_then(|e| e.cell.into_inner()) {
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
