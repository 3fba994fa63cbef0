//! `gocd-standin reap [--grace SECS] -- CMD ARGS…`: a tiny init for one lab host.
//!
//! PID 1 on the lab machines does not (reliably) reap orphans, so a daemon that dies would stay a
//! zombie, its PID still "alive" (`kill -0` succeeds, `pg_ctl start` refuses over the stale
//! `postmaster.pid`). The reaper marks itself a child subreaper (`PR_SET_CHILD_SUBREAPER`), runs
//! CMD (the host's sshd), and waits on every process that ends up as its child: everything started
//! through that sshd and then orphaned (a postmaster after `pg_ctl start` returns, a detached GoCD
//! stand-in) is re-parented here and reaped as soon as it dies.
//!
//! It keeps running while it has any child, even after CMD exits. On SIGTERM/SIGINT/SIGHUP it
//! sends SIGTERM to all its children (again to each newly re-parented orphan), SIGKILL after the
//! grace period, and exits once none are left, with CMD's exit status.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

fn log(msg: &str) {
    eprintln!(
        "{} reaper[{}]: {msg}",
        crate::time::iso(crate::time::now_ms()),
        std::process::id()
    );
}

fn describe_status(status: libc::c_int) -> (String, i32) {
    if libc::WIFEXITED(status) {
        let code = libc::WEXITSTATUS(status);
        (format!("exit {code}"), code)
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        (format!("killed by signal {sig}"), 128 + sig)
    } else {
        (format!("status {status:#x}"), 1)
    }
}

/// The PIDs whose parent is this process (zombies excluded), from `/proc/*/stat`.
fn children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the command name, which is in parentheses and may contain anything.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next().unwrap_or("");
            let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
            ppid == Some(me) && state != "Z" && state != "X"
        })
        .collect()
}

pub fn run(args: &[String]) -> i32 {
    let mut grace = Duration::from_secs(8);
    let mut rest = args;
    loop {
        match rest.first().map(String::as_str) {
            Some("--grace") => {
                let Some(secs) = rest.get(1).and_then(|s| s.parse::<u64>().ok()) else {
                    eprintln!("reap: --grace needs a number of seconds");
                    return 2;
                };
                grace = Duration::from_secs(secs);
                rest = &rest[2..];
            }
            Some("--") => {
                rest = &rest[1..];
                break;
            }
            _ => break,
        }
    }
    let Some((program, program_args)) = rest.split_first() else {
        eprintln!("usage: gocd-standin reap [--grace SECS] -- CMD [ARGS...]");
        return 2;
    };

    // SAFETY: plain syscalls on valid, local arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            log(&format!(
                "prctl(PR_SET_CHILD_SUBREAPER) failed: {}",
                std::io::Error::last_os_error()
            ));
            return 1;
        }
    }
    // Handle our signals synchronously with sigtimedwait; the command starts with a clean mask.
    let set = crate::signals::block(&[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP]);

    let mut command = Command::new(program);
    command.args(program_args);
    let main_pid = match crate::signals::clean_mask(&mut command).spawn() {
        Ok(child) => child.id() as i32, // reaped below with waitpid(-1), not through `child`
        Err(e) => {
            log(&format!("cannot start {program}: {e}"));
            return 127;
        }
    };
    log(&format!("started {program} as pid {main_pid}"));

    let mut main_code: Option<i32> = None;
    let mut shutdown_deadline: Option<Instant> = None;
    let mut sent_term: HashSet<i32> = HashSet::new();
    let mut sent_kill: HashSet<i32> = HashSet::new();
    loop {
        // Reap everything that has ended.
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: status is a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                let (text, code) = describe_status(status);
                if pid == main_pid {
                    main_code = Some(code);
                    log(&format!("{program} (pid {pid}) ended: {text}"));
                } else {
                    log(&format!("reaped pid {pid}: {text}"));
                }
                sent_term.remove(&pid);
                sent_kill.remove(&pid);
                continue;
            }
            if pid == 0 {
                break; // children remain, none has ended
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ECHILD) => {
                    log("no children left, exiting");
                    return main_code.unwrap_or(0);
                }
                Some(libc::EINTR) => continue,
                _ => break,
            }
        }

        if let Some(deadline) = shutdown_deadline {
            let kill = Instant::now() >= deadline;
            for pid in children() {
                if kill {
                    if sent_kill.insert(pid) {
                        log(&format!("grace period over, SIGKILL pid {pid}"));
                    }
                    // SAFETY: pid is our own child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                } else if sent_term.insert(pid) {
                    // SAFETY: pid is our own child.
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                }
            }
        }

        let timeout = if shutdown_deadline.is_some() {
            libc::timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            }
        } else {
            libc::timespec {
                tv_sec: 5,
                tv_nsec: 0,
            }
        };
        // SAFETY: set and timeout are valid; siginfo may be null.
        let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout) };
        if (sig == libc::SIGTERM || sig == libc::SIGINT || sig == libc::SIGHUP)
            && shutdown_deadline.is_none()
        {
            log(&format!(
                "signal {sig}: stopping all children (SIGTERM, SIGKILL after {} s)",
                grace.as_secs()
            ));
            shutdown_deadline = Some(Instant::now() + grace);
        }
    }
}
