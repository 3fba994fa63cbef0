//! Commit latency of one journal record: `Journal::append` on a three-member etcd cluster
//! on loopback (`--store etcd://…`: one fenced transaction, acknowledged once a majority of
//! members fsync'd it) against the local file journal (one write and one fdatasync).
//!
//! `cargo bench --bench journal_commit [-- RECORDS]` (default 500 records each); prints the
//! median and the 99th percentile. Needs Debian's `etcd-server` (the `etcd` binary). Every
//! member and the file journal share the same disk, as on a controller; a cluster spread
//! over sites adds its round trips.

#[path = "../tests/common/etcd.rs"]
mod etcd;

use std::time::{Duration, Instant};

use drplan::journal::{
    EtcdConnect, EtcdStore, FileJournal, Journal, LockInfo, RunId, RunStore, StoreUrl,
};

/// A record shaped like `step_finished`.
fn record(i: usize) -> serde_json::Value {
    serde_json::json!({
        "kind": "step_finished", "step": format!("step-{i}"), "attempt": 1,
        "outcome": { "status": "succeeded", "result": { "changed": true } },
        "duration_ms": 12, "at": "2026-12-01T02:11:45.722Z"
    })
}

/// Latencies of `n` appends, one record each.
fn measure(journal: &mut dyn Journal, n: usize) -> Vec<Duration> {
    for i in 0..20 {
        journal.append(&record(i)).unwrap(); // warm-up: connections, the file's first blocks
    }
    (0..n)
        .map(|i| {
            let t = Instant::now();
            journal.append(&record(i)).unwrap();
            t.elapsed()
        })
        .collect()
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{what:<34} median {:>8.3} ms   p99 {:>8.3} ms   ({} records)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times.len()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the count of records.
    let n = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(500);

    let dir = tempfile::tempdir().unwrap();
    let (mut file, _) = FileJournal::open(dir.path().join("journal.jsonl")).unwrap();
    report("local file (write + fdatasync)", measure(&mut file, n));

    let cluster = etcd::Cluster::start(3);
    let store = EtcdStore::connect(EtcdConnect {
        url: StoreUrl::parse(&cluster.url("bench")).unwrap(),
        ca: None,
        identity: None,
        password: None,
    })
    .unwrap();
    let id = RunId::generate().unwrap();
    let _lock = store
        .lock_site("bench", &LockInfo::for_this_process(id.as_str(), "bench"))
        .unwrap();
    let mut journal = store.create_run(&id, b"{}").unwrap().journal;
    report("etcd, 3 members on loopback", measure(journal.as_mut(), n));
}
