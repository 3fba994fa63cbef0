//! Why an action or check did not do its job, in the terms the executor acts on.
//!
//! One error type for every action: the executor needs the same few facts from all of them
//! (what kind of failure, which host, what ran, its exit status, the end of its stderr) to
//! decide between skipping (`Unreachable` + `on_unreachable: skip`), pausing and rolling back,
//! and to tell the operator what to look at. A command that exits non-zero is `Failed`; a
//! transport error keeps its meaning (`Unreachable`, `HostKey`, `Timeout`). This file must not
//! run anything.

use std::fmt;

use crate::transport::{Output, TransportError};

/// How many lines of stderr an error keeps: enough to explain, short enough to journal.
pub(crate) const STDERR_LINES: usize = 20;

/// What kind of failure it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionErrorKind {
    /// The action ran and failed (non-zero exit, unexpected state, lost connection mid-command:
    /// the last may have left the host changed, so treat the step as in doubt).
    Failed,
    /// The host could not be reached; nothing ran. `on_unreachable: skip` applies.
    Unreachable,
    /// A command or a wait did not finish within its time.
    Timeout,
    /// The host's SSH key was not verified (or no known_hosts file was given): never skipped.
    HostKey,
    /// The `with:` parameters do not fit the action (or a value cannot be passed to a host).
    InvalidParams,
    /// The operator (or the lack of one) refused to go on: `manual.approve`.
    Refused,
}

impl ActionErrorKind {
    fn code(self) -> &'static str {
        match self {
            Self::Failed => "drplan::action::failed",
            Self::Unreachable => "drplan::action::unreachable",
            Self::Timeout => "drplan::action::timeout",
            Self::HostKey => "drplan::action::host_key",
            Self::InvalidParams => "drplan::action::invalid_params",
            Self::Refused => "drplan::action::refused",
        }
    }
}

/// An action's failure, with what an operator needs to look into it.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[error("{host}: {message}")]
pub struct ActionError {
    pub kind: ActionErrorKind,
    pub message: String,
    /// The host as the site names it (`user@address:port`, or `local`).
    pub host: String,
    /// The command that failed, its argv joined for humans (never its environment or stdin,
    /// which is where passwords travel).
    pub command: Option<String>,
    pub status: Option<i32>,
    /// The last lines the command wrote to stderr.
    pub stderr_tail: Option<String>,
}

impl miette::Diagnostic for ActionError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help = match self.kind {
            ActionErrorKind::Unreachable => {
                "check that the host is up and reachable; a step with `on_unreachable: skip` goes on without it"
            }
            ActionErrorKind::HostKey => {
                "put the host's key, checked out of band, into the site's ssh.known_hosts file"
            }
            ActionErrorKind::Timeout => {
                "raise the step's `timeout` (or the action's own `wait`/`timeout`), or find out on the host what held it up"
            }
            ActionErrorKind::InvalidParams => "fix the step's `with:` parameters",
            ActionErrorKind::Refused => return None,
            ActionErrorKind::Failed => match (&self.command, &self.stderr_tail) {
                (Some(_), Some(_)) => "the command's stderr above says why",
                _ => return None,
            },
        };
        Some(Box::new(help))
    }
}

impl ActionError {
    pub(crate) fn new(kind: ActionErrorKind, host: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            host: host.to_owned(),
            command: None,
            status: None,
            stderr_tail: None,
        }
    }

    pub(crate) fn failed(host: &str, message: impl Into<String>) -> Self {
        Self::new(ActionErrorKind::Failed, host, message)
    }

    pub(crate) fn invalid(host: &str, message: impl Into<String>) -> Self {
        Self::new(ActionErrorKind::InvalidParams, host, message)
    }

    /// `argv` ran and exited badly: `what` says what it was for.
    pub(crate) fn command(host: &str, argv: &[String], out: &Output, what: &str) -> Self {
        let status = match out.status {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_owned(),
        };
        let tail = out.stderr_tail(STDERR_LINES);
        Self {
            kind: ActionErrorKind::Failed,
            message: format!("{what}: `{}` {status}", first_word(argv)),
            host: host.to_owned(),
            command: Some(show_argv(argv)),
            status: out.status,
            stderr_tail: (!tail.trim().is_empty()).then_some(tail),
        }
    }

    /// The transport could not run `argv` (None: could not even reach the host).
    pub(crate) fn transport(host: &str, argv: Option<&[String]>, e: TransportError) -> Self {
        let (kind, stderr_tail) = match &e {
            TransportError::Unreachable { .. } => (ActionErrorKind::Unreachable, None),
            TransportError::HostKey { .. } => (ActionErrorKind::HostKey, None),
            TransportError::Timeout { partial, .. } => {
                let tail = partial.stderr_tail(STDERR_LINES);
                (
                    ActionErrorKind::Timeout,
                    (!tail.trim().is_empty()).then_some(tail),
                )
            }
            TransportError::InvalidCommand { .. } => (ActionErrorKind::InvalidParams, None),
            // Auth failures are never skipped (someone must look), and a connection lost
            // mid-command leaves the step in doubt: both are plain failures to the executor.
            TransportError::Auth { .. }
            | TransportError::Disconnected { .. }
            | TransportError::Ssh { .. }
            | TransportError::Io { .. } => (ActionErrorKind::Failed, None),
        };
        Self {
            kind,
            message: chain(&e),
            host: host.to_owned(),
            command: argv.map(show_argv),
            status: None,
            stderr_tail,
        }
    }

    /// The same error, its message prefixed with what the action was doing.
    pub(crate) fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn first_word(argv: &[String]) -> String {
    let program = argv.first().map(String::as_str).unwrap_or_default();
    let name = program.rsplit('/').next().unwrap_or(program);
    match argv.get(1) {
        Some(arg) if !arg.starts_with('-') && name != "sh" && name != "bash" => {
            format!("{name} {arg}")
        }
        _ => name.to_owned(),
    }
}

/// argv as a human would type it: words with blanks or shell characters single-quoted.
pub(crate) fn show_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_shown_quoted_where_needed() {
        let argv: Vec<String> = ["pg_ctl", "-D", "/var/lib/pg data", "it's"]
            .map(String::from)
            .to_vec();
        assert_eq!(show_argv(&argv), r"pg_ctl -D '/var/lib/pg data' 'it'\''s'");
    }

    #[test]
    fn unreachable_stays_unreachable() {
        let e = ActionError::transport(
            "h",
            None,
            TransportError::Unreachable {
                host: "h".into(),
                detail: "refused".into(),
            },
        );
        assert_eq!(e.kind, ActionErrorKind::Unreachable);
        assert!(e.message.contains("refused"));
    }
}
