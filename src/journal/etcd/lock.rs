//! A site's lock in etcd: the key `locks/SITE`, created only when absent and attached to a
//! lease that this process keeps alive. Its create revision is the fencing token: every
//! journal append compares it (and the lease) in the same transaction that writes the
//! records (`journal.rs`), so a controller whose lease expired, and whose lock was perhaps
//! taken by another, writes nothing more, even if it wakes up later.
//!
//! A controller that dies stops renewing; after the lease runs out etcd deletes the lock
//! key and the next `resume` takes over, with a note naming the old holder (`holders/SITE`,
//! written beside the lock without a lease and erased on a clean release). This file must
//! not decide what a run does when it is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};

use super::{Inner, block};
use crate::journal::{HeldLock, LockError, LockInfo};

/// What a journal append checks: this lock, as etcd knows it.
#[derive(Debug, Clone)]
pub(super) struct Fence {
    pub site: String,
    pub key: String,
    pub create_revision: i64,
    pub lease: i64,
    /// etcd said the lease is gone: nothing more is even tried
    pub lost: Arc<AtomicBool>,
}

/// A held lock; dropping it releases the site.
struct EtcdLock {
    inner: Arc<Inner>,
    fence: Fence,
    holder_key: String,
    keep_alive: tokio::task::JoinHandle<()>,
}

/// Take `site`'s lock, or say who holds it (and when their lease runs out).
pub(super) fn acquire(
    inner: &Arc<Inner>,
    site: &str,
    holder: &LockInfo,
) -> Result<HeldLock, LockError> {
    if site.is_empty() || site.contains(['/', '\0']) {
        return Err(LockError::InvalidSite {
            site: site.to_owned(),
        });
    }
    let failed = |action: &str| {
        let (store, action) = (inner.store.clone(), action.to_owned());
        move |message| LockError::Store {
            store,
            action,
            message,
        }
    };
    let key = inner.key(&format!("/locks/{site}"));
    let holder_key = inner.key(&format!("/holders/{site}"));
    let details = serde_json::to_vec_pretty(holder)
        .map_err(|e| failed("encode the lock details")(e.to_string()))?;
    let ttl = inner.lease.as_secs() as i64;
    let lease = inner
        .call(move |mut c| async move { c.lease_grant(ttl, None).await })
        .map_err(failed("grant the lock's lease"))?
        .id();
    let (k, hk) = (key.clone(), holder_key.clone());
    let taken = inner.call(move |mut c| {
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([
                // Read before the puts: the details of a holder that never released.
                TxnOp::get(hk.clone(), None),
                TxnOp::put(
                    k.clone(),
                    details.clone(),
                    Some(PutOptions::new().with_lease(lease)),
                ),
                TxnOp::put(hk.clone(), details.clone(), None),
            ])
            .or_else([TxnOp::get(k.clone(), None)]);
        async move { c.txn(txn).await }
    });
    let release_lease = || {
        let _ = inner.call(move |mut c| async move { c.lease_revoke(lease).await });
    };
    let taken = match taken {
        Ok(t) => t,
        Err(message) => {
            release_lease();
            return Err(failed("take the site's lock")(message));
        }
    };
    // The revision of the transaction: the lock key's create revision when it succeeded.
    let Some(revision) = taken.header().map(etcd_client::ResponseHeader::revision) else {
        release_lease();
        return Err(failed("take the site's lock")(
            "etcd's answer has no revision".into(),
        ));
    };
    let mut got = taken.op_responses().into_iter().filter_map(|r| match r {
        TxnOpResponse::Get(mut g) => g.take_kvs().pop(),
        _ => None,
    });
    let (create_revision, stale) = if taken.succeeded() {
        let stale = got
            .next()
            .and_then(|kv| serde_json::from_slice(kv.value()).ok());
        (revision, stale)
    } else {
        match got.next() {
            // Our own put, whose answer was lost and retried: ours, previous holder unknown.
            Some(kv) if kv.lease() == lease => (kv.create_revision(), None),
            held => {
                release_lease();
                return Err(held_by(inner, site, key, held));
            }
        }
    };
    let fence = Fence {
        site: site.to_owned(),
        key,
        create_revision,
        lease,
        lost: Arc::new(AtomicBool::new(false)),
    };
    *inner
        .fence
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fence.clone());
    let keep_alive = inner.rt().spawn(keep_alive(
        inner.client.clone(),
        lease,
        inner.lease / 3,
        Arc::clone(&fence.lost),
    ));
    let note = stale.map(|old: LockInfo| {
        format!(
            "took over the lock of site '{site}' from {old}, whose lease expired without releasing it"
        )
    });
    Ok(HeldLock::new(
        note,
        EtcdLock {
            inner: Arc::clone(inner),
            fence,
            holder_key,
            keep_alive,
        },
    ))
}

/// The refusal: who holds the site, and how long their lease has left.
fn held_by(
    inner: &Inner,
    site: &str,
    key: String,
    held: Option<etcd_client::KeyValue>,
) -> LockError {
    let holder = held
        .as_ref()
        .and_then(|kv| serde_json::from_slice(kv.value()).ok())
        .map(Box::new);
    let lease = held.map(|kv| kv.lease()).unwrap_or(0);
    let left = inner
        .call(move |mut c| async move { c.lease_time_to_live(lease, None).await })
        .map(|r| r.ttl().max(0))
        .unwrap_or(inner.lease.as_secs() as i64);
    LockError::HeldInStore {
        site: site.to_owned(),
        holder,
        key,
        lease_secs: left,
    }
}

/// Renew the lease every `period` for as long as the lock is held; when etcd answers that
/// the lease is gone, say so through `lost`. A broken stream (a member went away) is opened
/// again on the next member.
async fn keep_alive(client: Client, lease: i64, period: Duration, lost: Arc<AtomicBool>) {
    loop {
        if let Ok((mut keeper, mut stream)) = client.clone().lease_keep_alive(lease).await {
            loop {
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match tokio::time::timeout(period, stream.message()).await {
                    Ok(Ok(Some(answer))) if answer.ttl() <= 0 => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(Ok(Some(_))) => tokio::time::sleep(period).await,
                    _ => break,
                }
            }
        }
        tokio::time::sleep(period / 4).await;
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.keep_alive.abort();
        *self
            .inner
            .fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        // Best effort, once: a release that does not get through leaves the lease to run
        // out, and the next holder reads the details as a stale holder's.
        let (key, holder_key, revision, lease) = (
            self.fence.key.clone(),
            self.holder_key.clone(),
            self.fence.create_revision,
            self.fence.lease,
        );
        let mut client = self.inner.client.clone();
        let _ = block(self.inner.rt(), async move {
            let release = async {
                let txn = Txn::new()
                    .when([Compare::create_revision(
                        key.clone(),
                        CompareOp::Equal,
                        revision,
                    )])
                    .and_then([TxnOp::delete(holder_key, None), TxnOp::delete(key, None)]);
                client.txn(txn).await?;
                client.lease_revoke(lease).await
            };
            tokio::time::timeout(super::ATTEMPT, release)
                .await
                .map_err(|_| "timeout".to_owned())?
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
}
