//! Why a command could not be run on a host, or did not finish.
//!
//! The variants are the distinctions the executor acts on: `Unreachable` (a step may say
//! `on_unreachable: skip`), `HostKey` and `Auth` (never skipped: someone must look),
//! `Timeout`, `Disconnected` (the command may or may not have run: "in doubt"). A command
//! that ran and exited non-zero is not an error here; it is an `Output` with that status.

use std::path::PathBuf;
use std::time::Duration;

use super::Output;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TransportError {
    #[error("cannot reach {host}: {detail}")]
    #[diagnostic(
        code(drplan::transport::unreachable),
        help(
            "check that the host is up, that sshd listens on the port in the site file, and that no firewall is in the way"
        )
    )]
    Unreachable { host: String, detail: String },

    #[error(
        "the host key of {host} was not verified, so drplan did not connect (known_hosts file: {}): {detail}",
        known_hosts.display()
    )]
    #[diagnostic(
        code(drplan::transport::host_key),
        help("put the host's current key into {}, checked out of band (e.g. `ssh-keygen -lf` on the host itself); drplan never accepts an unknown key", known_hosts.display())
    )]
    HostKey {
        host: String,
        known_hosts: PathBuf,
        detail: String,
    },

    #[error("{host} refused to let {user} log in: {detail}")]
    #[diagnostic(
        code(drplan::transport::auth),
        help(
            "check the site's `user` and `ssh.identity`, and that the key is in the user's authorized_keys on the host"
        )
    )]
    Auth {
        host: String,
        user: String,
        detail: String,
    },

    #[error("the command on {host} did not finish within {after:?} and was stopped")]
    #[diagnostic(
        code(drplan::transport::timeout),
        help("raise the step's `timeout`, or find out on the host what held the command up")
    )]
    Timeout {
        host: String,
        after: Duration,
        /// what the command wrote before it was stopped; its status is meaningless
        partial: Box<Output>,
    },

    #[error("the connection to {host} was lost while a command ran: {detail}")]
    #[diagnostic(
        code(drplan::transport::disconnected),
        help(
            "the command may or may not have finished on the host: check there before running it again"
        )
    )]
    Disconnected { host: String, detail: String },

    #[error("ssh to {host} failed: {detail}")]
    #[diagnostic(code(drplan::transport::ssh))]
    Ssh { host: String, detail: String },

    #[error("cannot run this command: {reason}")]
    #[diagnostic(
        code(drplan::transport::invalid_command),
        help(
            "argv must not be empty, and no argument, variable or directory may contain a NUL byte"
        )
    )]
    InvalidCommand { reason: String },

    #[error("could not {action} for {host}")]
    #[diagnostic(code(drplan::transport::io))]
    Io {
        host: String,
        action: String,
        #[source]
        source: std::io::Error,
    },
}

impl TransportError {
    pub(crate) fn io(host: &str, action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            host: host.to_owned(),
            action: action.into(),
            source,
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidCommand {
            reason: reason.into(),
        }
    }
}
