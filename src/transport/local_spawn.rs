//! Starting a local command so that it dies with drplan where the OS allows it.
//!
//! A drplan killed with SIGKILL cannot stop what it started; without help its local command
//! would run on under PID 1, unobserved. Linux's parent-death signal (`PR_SET_PDEATHSIG`)
//! makes the kernel send the child SIGKILL when its parent dies. Its limits, which are why
//! the code looks as it does:
//! - It fires when the *thread* that forked the child ends, not the process. tokio forks on
//!   whichever thread polls the spawn, and a blocking-pool thread ends after a few idle
//!   seconds, which would kill a healthy command. So every local command is forked by one
//!   thread that lives as long as the process (`spawner`).
//! - The parent may die between fork and `prctl`: the child then checks `getppid` and gives
//!   up rather than run orphaned.
//! - Only the direct child gets it: what that command starts in turn (a shell's children)
//!   is not covered, and a set-user-ID program (`sudo`) has it cleared by the kernel.
//!   `runuser`, the other become method, keeps it.
//!
//! This file must not decide anything about the command besides how it is started.

use std::io;
use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::process::{Child, Command};

type Job = Box<dyn FnOnce() + Send>;

/// Start `proc` with SIGKILL as its parent-death signal, forked by the lasting thread.
///
/// Cancel-safe: if this future is dropped after the fork, the child is dropped unreturned,
/// and `kill_on_drop` (which the caller sets) kills it.
pub(super) async fn spawn(mut proc: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec, so it may only make async-signal-safe
    // calls: prctl and getppid are system calls, and the error is built without allocating.
    unsafe {
        proc.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent died before prctl took effect: the signal will never come.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // tokio registers the child with the runtime's driver, which needs its context.
        let _entered = runtime.enter();
        let _ = tx.send(proc.spawn());
    });
    spawner()?
        .send(job)
        .map_err(|_| io::Error::other("the thread that starts local commands is gone"))?;
    rx.await
        .map_err(|_| io::Error::other("the thread that starts local commands is gone"))?
}

/// The one thread that forks local commands; it lives as long as the process.
fn spawner() -> io::Result<&'static mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    if let Some(tx) = SPAWNER.get() {
        return Ok(tx);
    }
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("drplan-spawner".into())
        .spawn(move || {
            for job in rx {
                // Were this thread to end, every command it started would be killed with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })?;
    // Two first callers may race: the loser's thread sees its sender dropped and ends.
    Ok(SPAWNER.get_or_init(|| tx))
}
