//! The floor under any runner that keeps a write-ahead journal, for CHAINS independent chains
//! of LINKS steps that each sleep MS milliseconds. As drplan promises, a step's start is
//! durable before it starts, and its end (with the start of the next) before the next
//! starts: LINKS + 1 durable records per chain, each waited for.
//!
//! Nothing else is done: each chain is a thread that sleeps (`clock_nanosleep`) and waits for
//! its record, and one flusher thread writes every record that is waiting and makes them
//! durable with one `fdatasync` (ideal group commit: a record that arrives during a flush goes
//! in the next). No engine, no scheduling, no events: what the device and the kernel's
//! wake-ups cost on this machine.
//!
//! `benches/run` builds it with `rustc -O` (std only) and runs it beside drplan.
//! Usage: journal_floor PATH CHAINS LINKS MS — prints the makespan in seconds.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const RECORD: &[u8] =
    b"{\"seq\":1,\"sha256\":\"0123456789abcdef\",\"record\":{\"kind\":\"step_finished\"}}\n";

#[derive(Default)]
struct Log {
    /// Bytes not yet handed to the flusher.
    waiting: Vec<u8>,
    /// Records appended so far, and how many of them are durable.
    appended: u64,
    durable: u64,
    done: bool,
}

struct Shared {
    log: Mutex<Log>,
    /// The flusher waits here for records, the chains for their flush.
    work: Condvar,
    flushed: Condvar,
}

fn main() {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let parsed = match &args[..] {
        [_, path, chains, links, ms] => chains
            .parse::<usize>()
            .ok()
            .zip(links.parse::<usize>().ok())
            .zip(
                ms.parse::<f64>()
                    .ok()
                    .filter(|ms| ms.is_finite() && *ms >= 0.0),
            )
            .map(|((c, l), ms)| (path, c, l, ms)),
        _ => None,
    };
    let Some((path, chains, links, ms)) = parsed else {
        eprintln!("usage: journal_floor PATH CHAINS LINKS MS");
        std::process::exit(2);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| {
            eprintln!("journal_floor: {path}: {e}");
            std::process::exit(1);
        });
    let took = run(file, chains, links, Duration::from_secs_f64(ms / 1000.0));
    println!("{took:.6}");
}

fn run(mut file: std::fs::File, chains: usize, links: usize, sleep: Duration) -> f64 {
    let shared = Arc::new(Shared {
        log: Mutex::new(Log::default()),
        work: Condvar::new(),
        flushed: Condvar::new(),
    });
    let flusher = {
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            loop {
                let (batch, upto) = {
                    let mut log = s.log.lock().unwrap();
                    while log.waiting.is_empty() && !log.done {
                        log = s.work.wait(log).unwrap();
                    }
                    if log.waiting.is_empty() {
                        return;
                    }
                    (std::mem::take(&mut log.waiting), log.appended)
                };
                file.write_all(&batch).expect("write the journal");
                file.sync_data().expect("fdatasync the journal");
                s.log.lock().unwrap().durable = upto;
                s.flushed.notify_all();
            }
        })
    };
    let started = Instant::now();
    let chains: Vec<_> = (0..chains)
        .map(|_| {
            let s = Arc::clone(&shared);
            std::thread::spawn(move || {
                durable(&s);
                for _ in 0..links {
                    std::thread::sleep(sleep);
                    durable(&s);
                }
            })
        })
        .collect();
    for c in chains {
        c.join().unwrap();
    }
    let took = started.elapsed().as_secs_f64();
    shared.log.lock().unwrap().done = true;
    shared.work.notify_one();
    flusher.join().unwrap();
    took
}

/// Append one record and wait until it is durable.
fn durable(s: &Shared) {
    let mut log = s.log.lock().unwrap();
    log.waiting.extend_from_slice(RECORD);
    log.appended += 1;
    let mine = log.appended;
    s.work.notify_one();
    while log.durable < mine {
        log = s.flushed.wait(log).unwrap();
    }
}
