//! How drplan reaches a host: run one command (an argv vector) and collect its output.
//!
//! Two transports: `local` (the controller itself, tokio::process) and `ssh` (openssh in
//! native-mux mode, one master connection per host, reused by every command). This module
//! knows nothing about plans, steps or actions; actions build `Command`s and read `Output`s.
//! It must never build a shell string out of caller values: argv stays argv (for SSH, each
//! argument is quoted exactly once for the remote shell).

mod capture;
mod control_dir;
mod error;
mod identity;
pub mod local;
mod local_spawn;
pub mod ssh;
mod ssh_failure;
mod ssh_master;
mod wrap;

use std::time::Duration;

/// How long checking for (or signalling) a command's processes may take on its host.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

pub use capture::OUTPUT_CAP;
pub use control_dir::control_dir;
pub use error::TransportError;
pub use identity::CommandIdentity;
pub use local::{LocalSpec, LocalTransport};
pub(crate) use ssh::chain as error_chain;
pub use ssh::{SshSpec, SshTransport};

/// How to run a command as another user than the login user. (The site's word for it is
/// `plan::BecomeMethod`; the actions' runner translates, so this module knows no plans.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BecomeMethod {
    /// `sudo -n -u USER -- argv…` (the default)
    #[default]
    Sudo,
    /// `runuser -u USER -- argv…` (root login only; no sudo needed)
    Runuser,
    /// never switch user
    None,
}

/// One command to run on a host.
#[derive(Debug, Clone, Default)]
pub struct Command {
    /// program and arguments; never joined into a shell string by drplan
    pub argv: Vec<String>,
    /// extra environment variables
    pub env: Vec<(String, String)>,
    /// working directory on the host
    pub cwd: Option<String>,
    /// bytes fed to the command's stdin (then stdin is closed)
    pub stdin: Option<Vec<u8>>,
    /// run as this OS user (None: the host's default `become`, else the login user)
    pub become_user: Option<String>,
    /// give up (and kill the command) after this long
    pub timeout: Option<Duration>,
    /// told who the command is as soon as it runs (`CommandIdentity`), before it can end:
    /// what lets a later drplan find it if this one dies. Unbounded so that the transport
    /// never waits on the listener; a sender rather than a oneshot so `Command` stays `Clone`.
    pub on_started: Option<tokio::sync::mpsc::UnboundedSender<CommandIdentity>>,
}

impl Command {
    /// A command with this argv and nothing else set.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// exit code; None when killed by a signal
    pub status: Option<i32>,
    /// the last `OUTPUT_CAP` bytes the command wrote to stdout
    pub stdout: Vec<u8>,
    /// the last `OUTPUT_CAP` bytes the command wrote to stderr
    pub stderr: Vec<u8>,
    /// true when stdout was longer than `OUTPUT_CAP` and its head was dropped
    pub stdout_truncated: bool,
    /// true when stderr was longer than `OUTPUT_CAP` and its head was dropped
    pub stderr_truncated: bool,
}

impl Output {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// The last `n` lines of stderr, lossily decoded: what an error message should show.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// How to reach one host, as the site describes it.
#[derive(Debug, Clone)]
pub enum HostSpec {
    /// the controller itself
    Local(LocalSpec),
    /// a host reached over SSH
    Ssh(SshSpec),
}

/// A live way to run commands on one host.
#[derive(Debug)]
pub enum Transport {
    Local(LocalTransport),
    Ssh(SshTransport),
}

impl Transport {
    /// Get ready to run commands on the host; for SSH this opens (and verifies) the master
    /// connection that every later command reuses.
    pub async fn connect(spec: &HostSpec) -> Result<Self, TransportError> {
        match spec {
            HostSpec::Local(spec) => Ok(Self::Local(LocalTransport::new(spec)?)),
            HostSpec::Ssh(spec) => Ok(Self::Ssh(SshTransport::connect(spec).await?)),
        }
    }

    /// Run one command to completion (or until its timeout).
    ///
    /// Do not drop this future once it is polled: the command may have started on the host
    /// and its outcome would be lost (see the module docs of `local` and `ssh`).
    pub async fn run(&self, cmd: &Command) -> Result<Output, TransportError> {
        match self {
            Self::Local(t) => t.run(cmd).await,
            Self::Ssh(t) => t.run(cmd).await,
        }
    }

    /// The processes of the command `id` names that still run on this host (empty when
    /// none does: it ended, or the host rebooted since).
    pub async fn command_alive(&self, id: &CommandIdentity) -> Result<Vec<i32>, TransportError> {
        self.probe(id, "check").await
    }

    /// Send `signal` (`TERM`, `KILL`) to every process of the command `id` names; returns
    /// the processes it was sent to (empty when nothing of it ran any more).
    pub async fn signal_command(
        &self,
        id: &CommandIdentity,
        signal: &str,
    ) -> Result<Vec<i32>, TransportError> {
        self.probe(id, signal).await
    }

    /// Run `identity::PROBE_SCRIPT` as the command's own user.
    async fn probe(&self, id: &CommandIdentity, op: &str) -> Result<Vec<i32>, TransportError> {
        let mut cmd = Command::new(["sh", "-c", identity::PROBE_SCRIPT, "sh", op]);
        cmd.argv.extend(id.probe_args());
        // Naming the login user explicitly means "no switch" (see `wrap::become_target`).
        cmd.become_user = Some(id.user.clone());
        cmd.timeout = Some(PROBE_TIMEOUT);
        let out = self.run(&cmd).await?;
        match out.status {
            Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()),
            Some(1) => Ok(Vec::new()),
            _ => Err(TransportError::io(
                self.host(),
                format!("look for the processes of pid {}", id.pid),
                std::io::Error::other(format!(
                    "the check exited with {:?}: {}",
                    out.status,
                    out.stderr_tail(3)
                )),
            )),
        }
    }

    /// The host as error messages name it.
    pub fn host(&self) -> &str {
        match self {
            Self::Local(t) => t.host(),
            Self::Ssh(t) => t.host(),
        }
    }

    /// Release the host: for SSH, stop the master connection and remove its control socket.
    pub async fn close(self) {
        match self {
            Self::Local(_) => {}
            Self::Ssh(t) => t.close().await,
        }
    }
}
