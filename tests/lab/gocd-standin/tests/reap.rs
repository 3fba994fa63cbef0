//! `gocd-standin reap`: orphans are adopted and reaped, the exit status is the command's, and
//! SIGTERM ends the whole tree.

use std::process::Command;
use std::time::{Duration, Instant};

fn reap(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gocd-standin"));
    cmd.arg("reap").arg("--").args(args);
    cmd
}

#[test]
fn waits_for_and_reaps_orphans_then_exits_with_the_commands_status() {
    let started = Instant::now();
    // The shell exits at once with 7, orphaning a `sleep` that the reaper adopts.
    let out = reap(&["sh", "-c", "sleep 0.5 & exit 7"]).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "it did not wait for the orphan"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("sh (pid") && log.contains("ended: exit 7"),
        "{log}"
    );
    assert!(
        log.contains("reaped pid"),
        "the orphan was not reaped by the reaper: {log}"
    );
}

#[test]
fn sigterm_stops_the_command_and_its_orphans() {
    let mut child = reap(&["sh", "-c", "sleep 30 & sleep 30"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "the shell died of SIGTERM: {status:?}"
    );
}

#[test]
fn a_command_that_cannot_start_is_exit_127() {
    let out = reap(&["/nonexistent/program"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn the_command_starts_with_no_blocked_signals() {
    // The reaper blocks the signals it waits for; its child must not inherit that mask.
    let out = reap(&["grep", "^SigBlk:", "/proc/self/status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{text}"
    );
}
