//! Who and where this process is: the effective user's name and the machine's host name.
//!
//! The transports need the login user (to know when `become` is a no-op, and because ssh
//! logs in as the local user by default); the site lock records user and host so that an
//! operator can find the holder. Read from the OS, never from `$USER` or `$HOSTNAME`, which
//! `sudo`, `su` or a CI runner may leave pointing at someone else. No other I/O belongs here.

use std::ffi::CStr;
use std::io;

/// The name of the effective user (what `id -un` prints).
pub(crate) fn user_name() -> io::Result<String> {
    name_of(euid())
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// The name the user database gives `uid`.
pub(crate) fn name_of(uid: u32) -> io::Result<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids); it is only
        // read after getpwuid_r filled it and reported success.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and buf.len() is the buffer's size.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if found.is_null() || pwd.pw_name.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("uid {uid} has no entry in the user database"),
            ));
        }
        // SAFETY: on success pw_name points into buf, NUL-terminated, and buf outlives this.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Ok(name.to_string_lossy().into_owned());
    }
}

/// This machine's host name (what `hostname` prints).
pub(crate) fn host_name() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length; gethostname NUL-terminates within it
    // when the name fits (Linux names are at most 64 bytes).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agree_with_the_system_tools() {
        let id = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        assert_eq!(
            user_name().unwrap(),
            String::from_utf8_lossy(&id.stdout).trim()
        );
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name().unwrap(), host.trim());
    }
}
