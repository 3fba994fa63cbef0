//! Failures of commands and transports, in the terms the executor acts on: a command that
//! exits non-zero is `Failed` (with what ran and the end of its stderr); a transport error
//! keeps its meaning (`Unreachable`, `HostKey`, `Timeout`). One failure type serves every
//! action (`step::StepFailure`): the executor needs the same few facts from all of them to
//! decide between skipping (`Unreachable` + `on_unreachable: skip`), pausing and rolling
//! back, and to tell the operator what to look at. This file must not run anything.

use crate::step::{FailureKind, StepFailure};
use crate::transport::{Output, TransportError};

/// How many lines of stderr a failure keeps: enough to explain, short enough to journal.
pub(crate) const STDERR_LINES: usize = 20;

/// `argv` ran on `host` and exited badly: `what` says what it was for.
pub(crate) fn command_failure(
    host: &str,
    argv: &[String],
    out: &Output,
    what: &str,
) -> StepFailure {
    let status = match out.status {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_owned(),
    };
    let tail = out.stderr_tail(STDERR_LINES);
    StepFailure {
        command: Some(show_argv(argv)),
        status: out.status,
        stderr_tail: (!tail.trim().is_empty()).then_some(tail),
        ..StepFailure::new(
            FailureKind::Failed,
            host,
            format!("{what}: `{}` {status}", first_word(argv)),
        )
    }
}

/// The transport could not run `argv` on `host` (None: could not even reach it).
pub(crate) fn transport_failure(
    host: &str,
    argv: Option<&[String]>,
    e: TransportError,
) -> StepFailure {
    let (kind, stderr_tail) = match &e {
        TransportError::Unreachable { .. } => (FailureKind::Unreachable, None),
        TransportError::HostKey { .. } => (FailureKind::HostKey, None),
        TransportError::Timeout { partial, .. } => {
            let tail = partial.stderr_tail(STDERR_LINES);
            (
                FailureKind::Timeout,
                (!tail.trim().is_empty()).then_some(tail),
            )
        }
        TransportError::InvalidCommand { .. } => (FailureKind::InvalidParams, None),
        // Auth failures are never skipped (someone must look), and a connection lost
        // mid-command leaves the step in doubt: both are plain failures to the executor.
        TransportError::Auth { .. }
        | TransportError::Disconnected { .. }
        | TransportError::Ssh { .. }
        | TransportError::Io { .. } => (FailureKind::Failed, None),
    };
    StepFailure {
        command: argv.map(show_argv),
        stderr_tail,
        ..StepFailure::new(kind, host, crate::transport::error_chain(&e))
    }
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
        let e = transport_failure(
            "h",
            None,
            TransportError::Unreachable {
                host: "h".into(),
                detail: "refused".into(),
            },
        );
        assert_eq!(e.kind, FailureKind::Unreachable);
        assert!(e.message.contains("refused"));
    }
}
