//! Runs and site locks in etcd (`--store etcd://…`): what `FileRunStore` keeps in a local
//! directory, in a replicated, linearizable store, so that a controller at another site can
//! list a run and continue it when the first controller was lost with its site.
//!
//! Keys, under the URL's PREFIX: `runs/RUN/plan` (the resolved plan, written once),
//! `runs/RUN/journal/SEQ` (one journal line per key, SEQ zero-padded so keys sort as
//! records do; the line format is `line.rs`'s, checksum included), `locks/SITE` (the holder's
//! details, attached to its lease) and `holders/SITE` (the same details without a lease,
//! erased on a clean release: found beside a free lock, they name a holder that died).
//!
//! The calls are blocking, as the `Journal` and `RunStore` traits are: the client lives on a
//! runtime of its own (one thread), so they work from synchronous code and from inside the
//! executor's runtime alike. Each request is retried on transport errors (a member down, a
//! leader election) for a bounded time; then it fails, and nothing is guessed.
//!
//! This module must not read files (the caller reads the certificates and the password) nor
//! interpret records.

mod journal;
mod lock;
mod url;

pub use url::StoreUrl;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, SortOrder, SortTarget, TlsOptions,
};
use tokio::runtime::Runtime;

use super::{
    HeldLock, JournalError, LockError, LockInfo, NewRun, OpenedRun, RunId, RunInfo, RunStore,
};
use journal::EtcdJournal;
use lock::Fence;

/// One try of a request; a member that does not answer in this time is given up on.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long a request is retried through transport errors before it fails.
const DEADLINE: Duration = Duration::from_secs(8);
/// Between two tries.
const PAUSE: Duration = Duration::from_millis(200);

/// What to connect with: the URL, and the contents of the files it names.
pub struct EtcdConnect {
    pub url: StoreUrl,
    /// PEM: the CA (TLS is on when given), and the client's certificate and key
    pub ca: Option<Vec<u8>>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    pub password: Option<String>,
}

/// Runs kept in etcd.
pub struct EtcdStore {
    inner: Arc<Inner>,
}

/// The client and what every part of the store shares.
struct Inner {
    rt: OwnRuntime,
    client: Client,
    /// the URL without options, for messages
    store: String,
    prefix: String,
    lease: Duration,
    /// Set while this process holds a site's lock: journals write only then, and only while
    /// etcd agrees that the lock is still this one (`journal.rs`).
    fence: Mutex<Option<Fence>>,
}

impl EtcdStore {
    /// Connect, and make one request: an etcd that cannot be reached, or that refuses the
    /// credentials, is reported here, before anything starts.
    pub fn connect(c: EtcdConnect) -> Result<EtcdStore, JournalError> {
        let store = c.url.display();
        let unreachable = |message: String| JournalError::Unreachable {
            store: store.clone(),
            message,
        };
        let rt = OwnRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("drplan-etcd")
                .enable_all()
                .build()
                .map_err(|e| unreachable(format!("cannot start the etcd client: {e}")))?,
        ));
        let mut options = ConnectOptions::new()
            .with_connect_timeout(ATTEMPT)
            .with_timeout(ATTEMPT)
            .with_keep_alive(ATTEMPT, ATTEMPT)
            .with_auto_token_refresh(true);
        if let Some(ca) = &c.ca {
            let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
            if let Some((cert, key)) = &c.identity {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            options = options.with_tls(tls);
        }
        if let (Some((user, _)), Some(password)) = (&c.url.user, &c.password) {
            options = options.with_user(user.clone(), password.clone());
        }
        let endpoints = c.url.endpoints.clone();
        // With a user, connecting authenticates: a request already, so it is bounded too.
        let client = block(rt.get(), async move {
            match tokio::time::timeout(DEADLINE, Client::connect(endpoints, Some(options))).await {
                Ok(r) => r.map_err(|e| describe(&e)),
                Err(_) => Err(format!("no answer within {}s", DEADLINE.as_secs())),
            }
        })
        .map_err(unreachable)?;
        let inner = Arc::new(Inner {
            rt,
            client,
            store: store.clone(),
            prefix: c.url.prefix.clone(),
            lease: c.url.lease,
            fence: Mutex::new(None),
        });
        let probe = inner.key("/");
        inner
            .call(move |mut c| {
                let probe = probe.clone();
                async move {
                    c.get(
                        probe,
                        Some(
                            GetOptions::new()
                                .with_prefix()
                                .with_keys_only()
                                .with_limit(1),
                        ),
                    )
                    .await
                }
            })
            .map_err(unreachable)?;
        Ok(EtcdStore { inner })
    }

    fn run_key(&self, id: &RunId, rest: &str) -> String {
        self.inner.key(&format!("/runs/{id}/{rest}"))
    }

    fn failed(&self, action: &str) -> impl FnOnce(String) -> JournalError {
        let (store, action) = (self.inner.store.clone(), action.to_owned());
        move |message| JournalError::Store {
            store,
            action,
            message,
        }
    }

    /// Read a run's plan, if the run exists.
    fn plan(&self, id: &RunId) -> Result<Option<Vec<u8>>, JournalError> {
        let key = self.run_key(id, "plan");
        let mut found = self
            .inner
            .call(move |mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .map_err(self.failed("read the run's plan"))?;
        Ok(found.take_kvs().pop().map(|kv| kv.into_key_value().1))
    }
}

impl RunStore for EtcdStore {
    fn create_run(&self, id: &RunId, plan: &[u8]) -> Result<NewRun, JournalError> {
        use etcd_client::{Compare, CompareOp, Txn, TxnOp};
        let key = self.run_key(id, "plan");
        let wanted = plan.to_vec();
        let plan = wanted.clone();
        let created = self
            .inner
            .call(move |mut c| {
                // Written once: a run id already taken is refused, never overwritten.
                let txn = Txn::new()
                    .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), plan.clone(), None)]);
                async move { c.txn(txn).await }
            })
            .map_err(self.failed("store the run's plan"))?;
        // A retry after a lost answer finds the plan it wrote: the same bytes are no clash.
        if !created.succeeded() && self.plan(id)?.as_deref() != Some(wanted.as_slice()) {
            return Err(JournalError::RunExists { id: id.to_string() });
        }
        Ok(NewRun {
            id: id.clone(),
            journal: Box::new(EtcdJournal::new(Arc::clone(&self.inner), id, 1)),
        })
    }

    fn open_run(&self, id: &RunId) -> Result<OpenedRun, JournalError> {
        let plan = self.plan(id)?.ok_or_else(|| JournalError::RunNotFound {
            id: id.to_string(),
            store: self.inner.store.clone(),
        })?;
        let mut journal = EtcdJournal::new(Arc::clone(&self.inner), id, 1);
        let replay = super::Journal::replay(&mut journal)?;
        Ok(OpenedRun {
            id: id.clone(),
            plan,
            replay,
            journal: Box::new(journal),
        })
    }

    // Opening a run here reads it and writes nothing (the journal is written on append).
    fn read_run(&self, id: &RunId) -> Result<(Vec<u8>, super::Replay), JournalError> {
        let opened = self.open_run(id)?;
        Ok((opened.plan, opened.replay))
    }

    fn list_runs(&self) -> Result<Vec<RunInfo>, JournalError> {
        let runs = self.inner.key("/runs/");
        let from = runs.clone();
        let mut found = self
            .inner
            .call(move |mut c| {
                let from = from.clone();
                let options = GetOptions::new()
                    .with_prefix()
                    .with_keys_only()
                    .with_sort(SortTarget::Key, SortOrder::Ascend);
                async move { c.get(from, Some(options)).await }
            })
            .map_err(self.failed("list the runs"))?;
        let mut list: Vec<RunInfo> = found
            .take_kvs()
            .iter()
            .filter_map(|kv| {
                let key = std::str::from_utf8(kv.key()).ok()?;
                let id: RunId = key
                    .strip_prefix(&runs)?
                    .strip_suffix("/plan")?
                    .parse()
                    .ok()?;
                Some(RunInfo {
                    created: id.created(),
                    id,
                })
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    fn lock_site(&self, site: &str, holder: &LockInfo) -> Result<HeldLock, LockError> {
        lock::acquire(&self.inner, site, holder)
    }

    /// The details on `locks/SITE`, which exists only while a holder's lease lives.
    fn holder(&self, site: &str) -> Option<LockInfo> {
        let key = self.inner.key(&format!("/locks/{site}"));
        let mut found = self
            .inner
            .call(move |mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })
            .ok()?;
        let kv = found.take_kvs().into_iter().next()?;
        serde_json::from_slice(kv.value()).ok()
    }

    fn describe(&self) -> String {
        self.inner.store.clone()
    }
}

impl Inner {
    /// A key under the store's prefix (`rest` starts with `/`).
    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    fn rt(&self) -> &Runtime {
        self.rt.get()
    }

    /// Run a request built by `make` on the client's runtime and wait for it, retrying
    /// through transport errors until `DEADLINE`.
    fn call<T, F, Fut>(&self, make: F) -> Result<T, String>
    where
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send,
        T: Send + 'static,
    {
        let client = self.client.clone();
        block(self.rt(), async move {
            let deadline = tokio::time::Instant::now() + DEADLINE;
            loop {
                let error = match tokio::time::timeout(ATTEMPT, make(client.clone())).await {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) if !transient(&e) => return Err(describe(&e)),
                    Ok(Err(e)) => describe(&e),
                    Err(_) => format!("no answer within {}s", ATTEMPT.as_secs()),
                };
                if tokio::time::Instant::now() + PAUSE >= deadline {
                    return Err(error);
                }
                tokio::time::sleep(PAUSE).await;
            }
        })
    }
}

/// The client's runtime, shut down without waiting when dropped: dropping a runtime waits
/// for its tasks, which is forbidden inside the caller's own runtime (`apply`'s).
struct OwnRuntime(Option<Runtime>);

impl OwnRuntime {
    fn get(&self) -> &Runtime {
        // Only `drop` takes it out, and nothing runs after that.
        self.0
            .as_ref()
            .expect("the etcd runtime lives as long as the store")
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Run `fut` on `rt` and wait for its result from any thread, async or not.
fn block<T: Send + 'static>(
    rt: &Runtime,
    fut: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .unwrap_or_else(|_| Err("the etcd client stopped".to_owned()))
}

/// An error for people: etcd's own message, and the innermost cause ("Connection refused")
/// rather than the whole chain of gRPC wrappers.
fn describe(e: &etcd_client::Error) -> String {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return e.to_string();
    };
    let mut innermost = None;
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        innermost = Some(c);
        cause = c.source();
    }
    match innermost {
        Some(c) => format!("{}: {c}", status.message()),
        None => status.message().to_owned(),
    }
}

/// An error another try may not see: the connection, a member going away, an election.
fn transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                // tonic's own timeout of a try (a member that went away mid-request)
                | Code::Cancelled
                | Code::Unknown
                | Code::Aborted
                | Code::Internal
        ),
        _ => false,
    }
}
