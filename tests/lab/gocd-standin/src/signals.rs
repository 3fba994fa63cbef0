//! Signal-mask helpers. Both the reaper and the server block the signals they handle
//! synchronously (sigtimedwait / sigwait); children must not inherit that mask, and std's
//! `Command` does not reset it, so every spawn goes through [`clean_mask`].

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Blocks `signals` in the calling thread (and every thread it spawns later); returns the set.
pub fn block(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in signals {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Makes `cmd` start its program with an empty signal mask.
pub fn clean_mask(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure runs between fork and exec and only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(|| {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        })
    }
}
