//! The SSH transport: one OpenSSH master connection per host, opened once by `connect` and
//! reused by every command through its control socket (openssh crate, native mux). The
//! master is started by `ssh_master`, in a process group of its own.
//!
//! Hermetic by construction: ssh reads only a config file that drplan writes (`-F`), so
//! neither `~/.ssh/config` nor `/etc/ssh/ssh_config` can change how it connects; host keys are
//! checked strictly against the site's known_hosts file only (no global file, no "accept
//! new"); the control socket lives in a fresh 0700 directory.
//!
//! Quoting: ssh sends the remote command as ONE string that the login shell parses again.
//! `openssh::Session::command` and `OwningCommand::arg(s)` quote each element for a POSIX
//! shell (`'…'`, with `'` and `!` escaped outside the quotes); `raw_command`/`raw_arg` pass
//! text through unquoted. We use only the quoting ones, on the final argv, so every element
//! is quoted exactly once. The login shell must be POSIX-like (sh, bash, dash, zsh).
//!
//! Timeouts: the remote argv runs under coreutils `timeout --kill-after`, so the command
//! really ends on the host; the local wait is bounded too, in case the host stops answering.
//! A command's end is its exit: the argv runs under a small `sh` wrapper that writes a
//! one-time marker to stderr once the command exited, so a daemon it left holding stdout
//! does not hold the step (`capture::End`, `wrap::with_markers`). Before the command runs,
//! the same wrapper writes a start record (who the command is, `identity`) behind another
//! one-time prefix; it is cut out of stderr and sent to `Command::on_started`.
//! Cancellation: dropping the future of `run` closes our side of the mux session, but the
//! SSH multiplexing protocol has no way to kill the remote process: it runs on until it ends
//! (or its `timeout` ends it), unobserved. The executor must therefore never drop it.
//!
//! This file must not know about plans, nor build shell strings itself.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openssh::{Session, Stdio};
use tokio::sync::Semaphore;

use super::capture::{self, Captured, End, StartRecord, output};
use super::identity;
use super::ssh_failure::connect_error;
use super::ssh_master::{self, LaunchError};
use super::wrap::{self, KILL_AFTER};
use super::{BecomeMethod, Command, Output, TransportError};
use crate::{private_fs, whoami};

/// Extra local patience beyond the remote `timeout` (and its kill grace) before we stop
/// waiting for a host that no longer answers.
const LOCAL_SLACK: Duration = Duration::from_secs(10);

/// Retrying a session that sshd refused (see `spawn`): first pause, longest pause, and
/// how long to keep trying.
const SESSION_RETRY_FIRST: Duration = Duration::from_millis(20);
const SESSION_RETRY_MAX: Duration = Duration::from_millis(500);
const SESSION_RETRY_FOR: Duration = Duration::from_secs(10);

/// The only ssh configuration drplan's ssh processes read.
const SSH_CONFIG: &str = "\
# Written by drplan. ssh reads only this file (-F), so ~/.ssh/config and
# /etc/ssh/ssh_config cannot change how drplan connects.
GlobalKnownHostsFile /dev/null
CheckHostIP no
UpdateHostKeys no
PasswordAuthentication no
KbdInteractiveAuthentication no
ForwardAgent no
ForwardX11 no
RequestTTY no
# A host that dies mid-command (the disaster itself) must fail the command within ~45 s,
# not hang until TCP gives up.
ServerAliveInterval 15
ServerAliveCountMax 3
";

/// How to reach one host over SSH.
#[derive(Debug, Clone)]
pub struct SshSpec {
    /// host name or IP address
    pub address: String,
    /// default 22
    pub port: u16,
    /// login user; None: the user running drplan (as ssh itself would)
    pub user: Option<String>,
    /// private key; None: ssh's default keys and agent
    pub identity: Option<PathBuf>,
    /// the only file host keys are checked against
    pub known_hosts: PathBuf,
    /// limit for TCP connect and SSH handshake (whole seconds, rounded up)
    pub connect_timeout: Duration,
    /// run commands as this user unless the command says otherwise
    pub become_user: Option<String>,
    pub become_method: BecomeMethod,
    /// where the private control directory is created; None: the system temp dir.
    /// Keep it short: a unix socket path is limited to ~100 bytes.
    pub control_dir: Option<PathBuf>,
    /// commands in flight at once over the master (default 8). sshd refuses sessions beyond
    /// its `MaxSessions` (default 10); keep this at or below the server's value.
    pub max_sessions: usize,
}

impl SshSpec {
    pub fn new(address: impl Into<String>, known_hosts: impl Into<PathBuf>) -> Self {
        Self {
            address: address.into(),
            port: 22,
            user: None,
            identity: None,
            known_hosts: known_hosts.into(),
            connect_timeout: Duration::from_secs(10),
            become_user: None,
            become_method: BecomeMethod::Sudo,
            control_dir: None,
            max_sessions: 8,
        }
    }

    fn label(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// Runs commands on one host over its master connection.
#[derive(Debug)]
pub struct SshTransport {
    // Declared first so it drops first: its Drop stops the master through the socket that
    // lives inside `dir`.
    session: Session,
    dir: tempfile::TempDir,
    host: String,
    login_user: String,
    become_user: Option<String>,
    become_method: BecomeMethod,
    sessions: Semaphore,
}

impl SshTransport {
    /// Open and authenticate the master connection; fails without running anything when the
    /// host key does not match the known_hosts file.
    pub async fn connect(spec: &SshSpec) -> Result<Self, TransportError> {
        let host = spec.label();
        check_destination(spec)?;
        let login_user = match &spec.user {
            Some(user) => user.clone(),
            None => whoami::user_name()
                .map_err(|e| TransportError::io(&host, "find the current user", e))?,
        };
        if let Err(e) = std::fs::metadata(&spec.known_hosts) {
            return Err(TransportError::HostKey {
                host,
                known_hosts: spec.known_hosts.clone(),
                detail: format!("cannot read the known_hosts file ({e})"),
            });
        }
        let dir = private_dir(spec.control_dir.as_deref())
            .map_err(|e| TransportError::io(&host, "create the ssh control directory", e))?;
        let config = dir.path().join("ssh_config");
        private_fs::write_new(&config, SSH_CONFIG.as_bytes())
            .map_err(|e| TransportError::io(&host, "write the ssh configuration", e))?;

        let connect_secs = ssh_master::connect_secs(spec.connect_timeout);
        // ssh enforces ConnectTimeout on connect and handshake; this outer bound only guards
        // against an ssh that hangs somewhere else (authentication against a stuck server).
        let guard = Duration::from_secs(connect_secs.saturating_mul(2).saturating_add(5));
        let launch = ssh_master::launch(spec, &login_user, connect_secs, &config, dir.path());
        let session = match tokio::time::timeout(guard, launch).await {
            Ok(Ok(session)) => session,
            Ok(Err(LaunchError::Ssh(log))) => {
                return Err(connect_error(spec, &host, &login_user, &log));
            }
            Ok(Err(LaunchError::Io(action, e))) => {
                return Err(TransportError::io(&host, action, e));
            }
            Err(_) => {
                return Err(TransportError::Unreachable {
                    host,
                    detail: format!("no SSH session within {guard:?}"),
                });
            }
        };
        Ok(Self {
            session,
            dir,
            host,
            login_user,
            become_user: spec.become_user.clone(),
            become_method: spec.become_method,
            sessions: Semaphore::new(spec.max_sessions.max(1)),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The master's control socket (one per host, for the transport's whole life).
    pub fn control_socket(&self) -> &Path {
        self.session.control_socket()
    }

    /// The private directory holding the control socket and the ssh configuration.
    pub fn control_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn run(&self, cmd: &Command) -> Result<Output, TransportError> {
        let become_as = wrap::become_target(
            cmd,
            self.become_user.as_deref(),
            self.become_method,
            &self.login_user,
        )
        .map(|user| (user, self.become_method));
        let nonce = || nonce().map_err(|e| TransportError::io(&self.host, "draw a nonce", e));
        let marker = format!("[drplan-exit:{}]", nonce()?);
        let start = format!("[drplan-start:{}", nonce()?);
        let wrapped = wrap::build(cmd, become_as, cmd.timeout, true)?;
        let argv = wrap::with_markers(wrapped.argv, &start, &marker);
        let user = become_as.map_or(self.login_user.as_str(), |(user, _)| user);
        let mut on_start = |record: &str| {
            let id = identity::from_start_record(record, &self.host, user);
            if let (Some(tx), Some(id)) = (&cmd.on_started, id) {
                let _ = tx.send(id);
            }
        };
        // The semaphore is never closed, so acquire cannot fail; the match keeps it honest.
        let Ok(_permit) = self.sessions.acquire().await else {
            return Err(self.ssh_error("the session limiter was closed"));
        };

        let started = Instant::now();
        let mut child = self.spawn(&argv, wrapped.stdin.is_some()).await?;
        let (stdin, stdout, stderr) = (
            child.stdin().take(),
            child.stdout().take(),
            child.stderr().take(),
        );

        let mut out = Captured::default();
        let mut err = Captured::default();
        let finished = {
            let work = capture::exchange_then_wait(
                stdin,
                wrapped.stdin.as_deref(),
                stdout,
                stderr,
                &mut out,
                &mut err,
                End::WaitAfterMarker {
                    wait: child.wait(),
                    marker: marker.as_bytes(),
                },
                Some(StartRecord {
                    prefix: start.as_bytes(),
                    seen: &mut on_start,
                }),
            );
            match cmd.timeout {
                None => Some(work.await),
                Some(limit) => tokio::time::timeout(limit + KILL_AFTER + LOCAL_SLACK, work)
                    .await
                    .ok(),
            }
        };
        let elapsed = started.elapsed();
        let Some((io, waited)) = finished else {
            return Err(TransportError::Timeout {
                host: self.host.clone(),
                after: cmd.timeout.unwrap_or_default(),
                partial: Box::new(output(None, out, err)),
            });
        };
        io.map_err(|e| self.disconnected(format!("reading the command's output failed: {e}")))?;
        let status = match waited {
            Ok(status) => status.code(),
            // openssh reports exit 127 as an error; to us it is a status like any other.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
            // The mux protocol cannot tell "killed by a signal" from "connection lost":
            // ask the master whether it is still alive.
            Err(openssh::Error::RemoteProcessTerminated) => match self.session.check().await {
                Ok(()) => None,
                Err(e) => return Err(self.disconnected(chain(&e))),
            },
            Err(openssh::Error::Disconnected) => {
                return Err(self.disconnected("the SSH master connection closed".to_owned()));
            }
            Err(e) => return Err(self.ssh_error(chain(&e))),
        };
        // `timeout` exits 124 when it stopped the command (137 when SIGKILL was needed).
        if let Some(limit) = cmd.timeout
            && matches!(status, Some(124 | 137))
            && elapsed >= limit
        {
            return Err(TransportError::Timeout {
                host: self.host.clone(),
                after: limit,
                partial: Box::new(output(status, out, err)),
            });
        }
        Ok(output(status, out, err))
    }

    /// Open a session on the master and start the command in it.
    async fn spawn(
        &self,
        argv: &[String],
        with_stdin: bool,
    ) -> Result<openssh::Child<&Session>, TransportError> {
        let mut backoff = SESSION_RETRY_FIRST;
        let give_up = Instant::now() + SESSION_RETRY_FOR;
        loop {
            // `command` and `args` quote each element for the remote shell (module docs).
            let mut remote = self.session.command(argv[0].as_str());
            remote
                .args(&argv[1..])
                .stdin(if with_stdin {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            match remote.spawn().await {
                Ok(child) => return Ok(child),
                // The command never started: the master (and so the host) is gone.
                Err(openssh::Error::Disconnected) => {
                    return Err(TransportError::Unreachable {
                        host: self.host.clone(),
                        detail: "the SSH master connection is gone".to_owned(),
                    });
                }
                Err(e) => {
                    let detail = chain(&e);
                    // sshd refuses a session beyond its MaxSessions, and a finished session's
                    // channel may linger a moment after its exit status arrived. A refused
                    // session never ran anything, so trying again is safe. openssh does not
                    // re-export the mux error type, hence the match on OpenSSH's own words.
                    if !detail.contains("open refused") || Instant::now() >= give_up {
                        return Err(self.ssh_error(detail));
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(SESSION_RETRY_MAX);
        }
    }

    /// Stop the master connection and remove the control directory.
    pub async fn close(self) {
        // Nothing useful to do if the master is already gone; the directory goes either way.
        let _ = self.session.close().await;
    }

    fn disconnected(&self, detail: String) -> TransportError {
        TransportError::Disconnected {
            host: self.host.clone(),
            detail,
        }
    }

    fn ssh_error(&self, detail: impl Into<String>) -> TransportError {
        TransportError::Ssh {
            host: self.host.clone(),
            detail: detail.into(),
        }
    }
}

/// ssh takes its destination and `-l` user from argv: refuse what it would read as an
/// option or as `user@host`.
fn check_destination(spec: &SshSpec) -> Result<(), TransportError> {
    let bad = |v: &str| v.is_empty() || v.starts_with('-') || v.contains([' ', '\t', '\n', '\0']);
    if bad(&spec.address) || spec.address.contains('@') {
        return Err(TransportError::invalid(format!(
            "{:?} is not a host address",
            spec.address
        )));
    }
    if let Some(user) = &spec.user
        && bad(user)
    {
        return Err(TransportError::invalid(format!(
            "{user:?} is not a user name"
        )));
    }
    Ok(())
}

/// A fresh 0700 directory under `parent` (itself made 0700 if new).
fn private_dir(parent: Option<&Path>) -> std::io::Result<tempfile::TempDir> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    private_fs::ensure_dir(&parent)?;
    let dir = tempfile::Builder::new()
        .prefix("drplan-ssh-")
        .tempdir_in(parent)?;
    // tempfile leaves the mode to the umask; the control socket must be ours alone.
    std::fs::set_permissions(dir.path(), Permissions::from_mode(private_fs::DIR_MODE))?;
    Ok(dir)
}

/// 128 random bits in hex, fresh for each command: the one-time part of the texts that mark
/// a command's start and exit on stderr (`wrap::with_markers`), so no output holds them by
/// chance.
fn nonce() -> std::io::Result<String> {
    let mut nonce = [0u8; 16];
    // SAFETY: the buffer is writable for its whole length, which is what we pass.
    let n = unsafe { libc::getrandom(nonce.as_mut_ptr().cast(), nonce.len(), 0) };
    if usize::try_from(n).ok() != Some(nonce.len()) {
        return Err(std::io::Error::last_os_error());
    }
    Ok(nonce.iter().map(|b| format!("{b:02x}")).collect())
}

/// An error and its sources on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
