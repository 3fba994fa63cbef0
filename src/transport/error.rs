//! Why a command could not be run on a host, or did not finish.
//!
//! The variants are the distinctions the executor acts on: `Unreachable` (a step may say
//! `on_unreachable: skip`), `HostKey` and `Auth` (never skipped: someone must look),
//! `Timeout`, `Disconnected` (the command may or may not have run: "in doubt"). A command
//! that ran and exited non-zero is not an error here; it is an `Output` with that status.

use std::path::{Path, PathBuf};
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

    // The advice is in the message itself, not only in `help`: a step failure keeps the
    // message, and this is the one error where the wrong fix (delete the known key, accept
    // whatever the host offers) is the tempting one.
    #[error("{}", host_key_message(host, known_hosts, detail))]
    #[diagnostic(
        code(drplan::transport::host_key),
        help(
            "drplan never accepts an unknown or changed host key, and never skips a host for it (`on_unreachable: skip` does not apply): a changed key may be someone in the middle"
        )
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

/// What the operator sees when a host key could not be verified: what happened and how to
/// check the key out of band before trusting it.
fn host_key_message(host: &str, known_hosts: &Path, detail: &str) -> String {
    let file = if known_hosts.as_os_str().is_empty() {
        "the site's `ssh.known_hosts` file".to_owned()
    } else {
        known_hosts.display().to_string()
    };
    format!(
        "the host key of {host} could not be verified, so drplan did not connect: {detail}. \
         Check the key out of band before trusting it: `{} | ssh-keygen -lf -` shows the \
         fingerprint the host offers now; compare it with `ssh-keygen -lf \
         /etc/ssh/ssh_host_ed25519_key.pub` run on the host's own console; only if they \
         match, put the scanned line into {file}",
        keyscan(host)
    )
}

/// `ssh-keyscan` for a host as messages name it (`[user@]address:port`, IPv6 in brackets).
fn keyscan(host: &str) -> String {
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    match host.rsplit_once(':') {
        Some((address, port)) if port.parse::<u16>().is_ok() => {
            let address = address.trim_start_matches('[').trim_end_matches(']');
            if port == "22" {
                format!("ssh-keyscan {address}")
            } else {
                format!("ssh-keyscan -p {port} {address}")
            }
        }
        _ => format!("ssh-keyscan {host}"),
    }
}

/// A failed connection attempt answers every call that waited for it (`actions::env`).
impl Clone for TransportError {
    fn clone(&self) -> Self {
        match self {
            Self::Unreachable { host, detail } => Self::Unreachable {
                host: host.clone(),
                detail: detail.clone(),
            },
            Self::HostKey {
                host,
                known_hosts,
                detail,
            } => Self::HostKey {
                host: host.clone(),
                known_hosts: known_hosts.clone(),
                detail: detail.clone(),
            },
            Self::Auth { host, user, detail } => Self::Auth {
                host: host.clone(),
                user: user.clone(),
                detail: detail.clone(),
            },
            Self::Timeout {
                host,
                after,
                partial,
            } => Self::Timeout {
                host: host.clone(),
                after: *after,
                partial: partial.clone(),
            },
            Self::Disconnected { host, detail } => Self::Disconnected {
                host: host.clone(),
                detail: detail.clone(),
            },
            Self::Ssh { host, detail } => Self::Ssh {
                host: host.clone(),
                detail: detail.clone(),
            },
            Self::InvalidCommand { reason } => Self::InvalidCommand {
                reason: reason.clone(),
            },
            // io::Error is not Clone: the same kind, the same words.
            Self::Io {
                host,
                action,
                source,
            } => Self::Io {
                host: host.clone(),
                action: action.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyscan_names_address_and_port() {
        assert_eq!(keyscan("10.0.0.1:22"), "ssh-keyscan 10.0.0.1");
        assert_eq!(keyscan("ops@db1:2222"), "ssh-keyscan -p 2222 db1");
        assert_eq!(keyscan("[fd00::1]:2222"), "ssh-keyscan -p 2222 fd00::1");
        assert_eq!(keyscan("db1"), "ssh-keyscan db1");
    }
}
