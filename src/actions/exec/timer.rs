//! A sleep to the microsecond. Tokio's timer wheel ticks in whole milliseconds and rounds a
//! deadline up to the next tick, and the runtime's park adds its own slack: a `sleep 20ms`
//! took 21–22 ms, and a chain of twenty such steps lost 40 ms. A `timerfd` armed for the
//! exact duration wakes the runtime through its I/O driver instead (the kernel's
//! high-resolution timer, within its 50 µs default slack).
//!
//! The wait is an ordinary future: dropping it (a step's timeout, a cancelled run) closes
//! the timer. If the kernel refuses a timerfd, tokio's own sleep stands in.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Wait `d`, precisely.
pub(super) async fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    if timerfd_wait(d).await.is_err() {
        tokio::time::sleep(d).await;
    }
}

async fn timerfd_wait(d: Duration) -> io::Result<()> {
    let fd = armed(d)?;
    // SAFETY: the AsyncFd owns `fd`, so it stays open (and the same timer) as long as it.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
    loop {
        let mut ready = fd.readable().await?;
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer from a descriptor we own.
        let read = ready.try_io(|fd| {
            match unsafe { libc::read(fd.as_raw_fd(), expirations.as_mut_ptr().cast(), 8) } {
                8 => Ok(()),
                -1 => Err(io::Error::last_os_error()),
                _ => Err(io::Error::other("short read from a timerfd")),
            }
        });
        match read {
            Ok(result) => return result,
            // Woken without the timer having expired: wait again.
            Err(_would_block) => continue,
        }
    }
}

/// A non-blocking timerfd on the monotonic clock that expires once, `d` from now.
fn armed(d: Duration) -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes no pointers; a non-negative result is a new descriptor
    // that nothing else owns.
    let raw = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: see above.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let value = libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: value,
    };
    // SAFETY: `spec` is a valid itimerspec; the old value is not asked for (null).
    if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn it_waits_at_least_the_duration() {
        for ms in [1, 7, 20] {
            let d = Duration::from_millis(ms);
            let t = Instant::now();
            sleep(d).await;
            assert!(t.elapsed() >= d, "{ms} ms: woke after {:?}", t.elapsed());
        }
    }

    #[tokio::test]
    async fn dropping_it_stops_the_wait() {
        let waited =
            tokio::time::timeout(Duration::from_millis(10), sleep(Duration::from_secs(3600))).await;
        assert!(waited.is_err(), "an hour's sleep ended within 10 ms");
    }
}
