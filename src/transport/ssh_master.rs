//! Starting the OpenSSH master connection of one host (`ssh -M -f -N`) in a process group of
//! its own, and handing it to openssh as a native-mux session.
//!
//! Why not openssh's `SessionBuilder::connect_mux`: it starts the master in drplan's own
//! process group. Until that ssh has authenticated and turned itself into a daemon (`-f`
//! makes it one, in a session of its own), it sits in the terminal's foreground process
//! group, and a Ctrl-C, which the terminal sends to the whole group, killed it: the step
//! failed with an empty "ssh … failed" and the run paused with exit 1 instead of stopping
//! with 130. drplan alone decides what a Ctrl-C does to what it started.
//!
//! The argv is the one openssh 0.11 builds, and `Session::new_native_mux` takes over the
//! socket's directory exactly as `connect_mux` would. This file must not interpret ssh's
//! failures (that is `ssh_failure`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use openssh::Session;

use super::ssh::SshSpec;

/// Why the master did not start.
pub(super) enum LaunchError {
    /// drplan could not set it up (directory, spawning ssh).
    Io(&'static str, std::io::Error),
    /// ssh ran and gave up: what it logged (`-E`), for `ssh_failure` to sort.
    Ssh(String),
}

/// Start the master for `spec` with socket and log in a fresh directory under `parent`;
/// returns once it is authenticated and listening on its control socket.
///
/// Cancel-safe: if this future is dropped while ssh is still connecting, that ssh is killed
/// (before `-f` puts it in the background it is our child; after, it has already succeeded).
pub(super) async fn launch(
    spec: &SshSpec,
    login_user: &str,
    connect_secs: u64,
    config: &Path,
    parent: &Path,
) -> Result<Session, LaunchError> {
    // openssh's layout: `master` (the socket) and `log` in one directory that the session
    // removes when it closes.
    let dir = tempfile::Builder::new()
        .prefix(".ssh-connection")
        .tempdir_in(parent)
        .map_err(|e| LaunchError::Io("create the ssh socket directory", e))?;
    let log = dir.path().join("log");
    let mut ssh = tokio::process::Command::new("ssh");
    ssh.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(no_tokens(&dir.path().join("master")))
        .args(["-M", "-f", "-N"])
        .args(["-o", "ControlPersist=yes"])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("ConnectTimeout={connect_secs}"))
        .arg("-p")
        .arg(spec.port.to_string())
        .arg("-l")
        .arg(login_user);
    if let Some(identity) = &spec.identity {
        // Only that key, not every key in the agent or ~/.ssh.
        ssh.args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(no_tokens(identity));
    }
    let mut known_hosts = OsString::from("UserKnownHostsFile=");
    known_hosts.push(quoted(&no_tokens(&spec.known_hosts)));
    ssh.arg("-F")
        .arg(config)
        .arg("-o")
        .arg(known_hosts)
        .arg("--")
        .arg(&spec.address)
        // The point of this file: a terminal's Ctrl-C goes to drplan's group, not to ssh.
        .process_group(0)
        .kill_on_drop(true);
    let status = ssh
        .status()
        .await
        .map_err(|e| LaunchError::Io("start ssh", e))?;
    if status.success() {
        return Ok(Session::new_native_mux(dir));
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    let text = match (logged.trim().is_empty(), status.signal()) {
        (false, _) => logged,
        (true, Some(signal)) => {
            format!("ssh was killed by signal {signal} before the connection was up")
        }
        (true, None) => format!(
            "ssh exited with status {} and logged nothing",
            status.code().unwrap_or(-1)
        ),
    };
    Err(LaunchError::Ssh(text))
}

/// ssh expands `%` tokens in the control path, identity and known_hosts file names: a `%`
/// in a path must reach it as `%%`.
fn no_tokens(path: &Path) -> OsString {
    let mut out = Vec::with_capacity(path.as_os_str().len());
    for &b in path.as_os_str().as_bytes() {
        if b == b'%' {
            out.push(b'%');
        }
        out.push(b);
    }
    OsString::from_vec(out)
}

/// A `-o` value in double quotes, so that a path with blanks stays one file name (ssh splits
/// option values on blanks and honours `"…"` with backslash escapes).
fn quoted(value: &OsStr) -> OsString {
    let mut out = vec![b'"'];
    for &b in value.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    OsString::from_vec(out)
}

/// ssh's connect timeout in whole seconds (it takes no fractions), at least 1.
pub(super) fn connect_secs(limit: Duration) -> u64 {
    let secs = limit.as_nanos().div_ceil(1_000_000_000).max(1);
    u64::try_from(secs).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_ssh_literally() {
        assert_eq!(
            no_tokens(Path::new("/s/50%/h")),
            OsString::from("/s/50%%/h")
        );
        assert_eq!(
            quoted(OsStr::new(r#"/my dir/a"b\c"#)),
            OsString::from(r#""/my dir/a\"b\\c""#)
        );
        assert_eq!(connect_secs(Duration::from_millis(1500)), 2);
        assert_eq!(connect_secs(Duration::ZERO), 1);
    }
}
