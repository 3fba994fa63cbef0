//! The local transport: run a command on the controller itself with tokio::process.
//!
//! The argv is executed as is (no shell). Each command gets its own process group so that a
//! timeout can stop the command *and* whatever it started: SIGTERM to the group, SIGKILL
//! after `KILL_AFTER`, like the remote `timeout --kill-after` of the SSH transport.
//! Cancellation: if the future of `run` is dropped, the whole group is killed at once
//! (SIGKILL) so nothing keeps running unobserved; if drplan itself is killed, the kernel
//! kills the command (`local_spawn`). The own process group also keeps a terminal's Ctrl-C,
//! which goes to drplan's group, away from the command: drplan decides what happens to it. A program that cannot be started is
//! reported the way a shell would (status 127 or 126), so that both transports agree.
//! This file must not interpret exit statuses beyond that.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use super::capture::{self, Captured, End, output};
use super::wrap::{self, KILL_AFTER};
use super::{BecomeMethod, Command, Output, TransportError};
use super::{identity, local_spawn};
use crate::whoami;

/// How errors and events name the controller.
pub(super) const HOST: &str = "local";

/// How long to wait for a SIGKILLed group to let go of its pipes before giving up on them.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// How to run commands on the controller.
#[derive(Debug, Clone, Default)]
pub struct LocalSpec {
    /// run commands as this user unless the command says otherwise
    pub become_user: Option<String>,
    pub become_method: BecomeMethod,
}

/// Runs commands on the controller.
#[derive(Debug)]
pub struct LocalTransport {
    login_user: String,
    become_user: Option<String>,
    become_method: BecomeMethod,
}

impl LocalTransport {
    pub fn new(spec: &LocalSpec) -> Result<Self, TransportError> {
        let login_user = whoami::user_name()
            .map_err(|e| TransportError::io(HOST, "find the current user", e))?;
        Ok(Self {
            login_user,
            become_user: spec.become_user.clone(),
            become_method: spec.become_method,
        })
    }

    pub fn host(&self) -> &str {
        HOST
    }

    pub async fn run(&self, cmd: &Command) -> Result<Output, TransportError> {
        let become_as = wrap::become_target(
            cmd,
            self.become_user.as_deref(),
            self.become_method,
            &self.login_user,
        )
        .map(|user| (user, self.become_method));
        // Without a user switch the variables and directory are set natively; with one they
        // must travel inside the wrapper, since sudo resets the environment.
        let wrap::Wrapped { argv, stdin: input } =
            wrap::build(cmd, become_as, None, become_as.is_some())?;
        let mut proc = tokio::process::Command::new(&argv[0]);
        proc.args(&argv[1..])
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if become_as.is_none() {
            proc.envs(cmd.env.iter().map(|(k, v)| (k, v)));
            if let Some(dir) = &cmd.cwd {
                proc.current_dir(dir);
            }
        }
        let mut child = match local_spawn::spawn(proc).await {
            Ok(child) => child,
            Err(e) => return not_started(&argv[0], cmd.cwd.as_deref(), e),
        };
        let mut group = GroupKiller(child.id().and_then(|id| libc::pid_t::try_from(id).ok()));
        if let (Some(tx), Some(pid)) = (&cmd.on_started, group.0) {
            // Read before the first wait, so the entry is there even if it already exited.
            // Without /proc there is no identity, and nothing to tell.
            let user = become_as.map_or(self.login_user.as_str(), |(user, _)| user);
            if let Ok(id) = identity::local(pid, user) {
                let _ = tx.send(id);
            }
        }
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());

        let mut out = Captured::default();
        let mut err = Captured::default();
        let finished = {
            let work = capture::exchange_then_wait(
                stdin,
                input.as_deref(),
                stdout,
                stderr,
                &mut out,
                &mut err,
                End::Wait(child.wait()),
                None,
            );
            tokio::pin!(work);
            match cmd.timeout {
                None => Some(work.await),
                Some(limit) => match tokio::time::timeout(limit, &mut work).await {
                    Ok(done) => Some(done),
                    Err(_) => {
                        group.signal(libc::SIGTERM);
                        if tokio::time::timeout(KILL_AFTER, &mut work).await.is_err() {
                            group.signal(libc::SIGKILL);
                            let _ = tokio::time::timeout(REAP_WAIT, &mut work).await;
                        }
                        None
                    }
                },
            }
        };
        let Some((io, status)) = finished else {
            // Reap the leader so it does not linger as a zombie (PID 1 here does not reap).
            let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
            group.disarm();
            return Err(TransportError::Timeout {
                host: HOST.to_owned(),
                after: cmd.timeout.unwrap_or_default(),
                partial: Box::new(output(None, out, err)),
            });
        };
        group.disarm();
        io.map_err(|e| TransportError::io(HOST, format!("exchange data with {}", argv[0]), e))?;
        let status = status.map_err(|e| TransportError::io(HOST, "wait for the command", e))?;
        Ok(output(exit_code(status), out, err))
    }
}

fn exit_code(status: ExitStatus) -> Option<i32> {
    // A signal death has no code; the Output contract says None for it.
    status.code().filter(|_| status.signal().is_none())
}

/// A program that cannot be started is a failed command, as a shell would report it.
fn not_started(program: &str, cwd: Option<&str>, e: io::Error) -> Result<Output, TransportError> {
    let (status, what) = match e.kind() {
        io::ErrorKind::NotFound if cwd.is_some() => (127, "command or directory not found"),
        io::ErrorKind::NotFound => (127, "command not found"),
        io::ErrorKind::PermissionDenied => (126, "permission denied"),
        _ => return Err(TransportError::io(HOST, format!("start {program}"), e)),
    };
    Ok(Output {
        status: Some(status),
        stderr: format!("drplan: {program}: {what} ({e})\n").into_bytes(),
        ..Output::default()
    })
}

/// Kills the command's process group on drop unless disarmed: the cancellation guarantee.
struct GroupKiller(Option<libc::pid_t>);

impl GroupKiller {
    fn signal(&self, signal: libc::c_int) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill has no memory effects; a negative pid addresses the group, which
            // exists while its leader is unreaped (we disarm right after reaping).
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
