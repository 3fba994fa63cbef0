//! What every action's code shares: [`Ctx`], one invocation in progress (who asked, and by
//! when it must be done), and [`Host`], a role's transport with the step's `become` and
//! deadline applied to every command.
//!
//! Everything a host is asked to do is an argv vector (for SSH, quoted once by the transport);
//! the few shell scripts here are constants that receive values as positional parameters
//! (`sh -c SCRIPT sh VALUE…`), never text pasted into them. Every command carries a timeout.

use std::time::{Duration, Instant};

use super::env::Env;
use super::failure::{command_failure, show_argv, transport_failure};
use crate::redact::Redactor;
use crate::step::{Call, CommandReport, FailureKind, StepFailure};
use crate::transport::{Command, Output, Transport, TransportError};

/// The longest text of a command's output kept in a result (the tail).
pub(crate) const RESULT_TEXT_CAP: usize = 64 * 1024;

/// One invocation in progress: who asked, and by when it must be done.
pub(crate) struct Ctx<'a> {
    /// The hosts, the bound plan and the operator's approvals.
    pub env: &'a Env,
    pub call: &'a Call,
    pub deadline: Instant,
}

impl<'a> Ctx<'a> {
    /// The step's `timeout`, else the action's own `budget`, runs from now.
    pub(crate) fn new(env: &'a Env, call: &'a Call, budget: Duration) -> Self {
        let budget = call.timeout.unwrap_or(budget);
        Self {
            env,
            call,
            deadline: Instant::now() + budget,
        }
    }

    /// This step's host, with the step's `become`.
    pub(crate) async fn host(&self) -> Result<Host<'a>, StepFailure> {
        self.host_as(&self.call.role, self.call.become_user.as_deref())
            .await
    }

    /// Another role's host (the source of a copy), as that host's own default user.
    pub(crate) async fn host_of(&self, role: &str) -> Result<Host<'a>, StepFailure> {
        self.host_as(role, None).await
    }

    async fn host_as(
        &self,
        role: &str,
        become_user: Option<&str>,
    ) -> Result<Host<'a>, StepFailure> {
        let label = self.env.hosts.label(role);
        let transport = self
            .env
            .hosts
            .get(role)
            .await
            .map_err(|e| transport_failure(&label, None, e))?;
        Ok(Host {
            transport,
            redact: &self.env.redact,
            role: role.to_owned(),
            commands: self.call.commands.as_deref(),
            label,
            become_user: become_user.map(str::to_owned),
            deadline: self.deadline,
        })
    }

    /// The label of this step's host, for errors raised before it is reached.
    pub(crate) fn label(&self) -> String {
        self.env.hosts.label(&self.call.role)
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> StepFailure {
        StepFailure::new(FailureKind::InvalidParams, self.label(), message)
    }

    /// The time left, or a Timeout error naming `what` when there is none.
    pub(crate) fn remaining(&self, what: &str) -> Result<Duration, StepFailure> {
        remaining(self.deadline, &self.label(), what)
    }
}

/// Refuse a relative or empty path, naming the parameter: commands run in `/`, and a
/// relative path would silently mean something else on every host.
pub(crate) fn absolute(ctx: &Ctx<'_>, name: &str, path: &str) -> Result<(), StepFailure> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(ctx.invalid(format!("`{name}` must be an absolute path, not {path:?}")))
    }
}

fn remaining(deadline: Instant, label: &str, what: &str) -> Result<Duration, StepFailure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(StepFailure::new(
            FailureKind::Timeout,
            label,
            format!("ran out of time before {what}"),
        ));
    }
    Ok(left)
}

/// A host's transport with a user to run as and a deadline.
pub(crate) struct Host<'a> {
    transport: &'a Transport,
    /// The run's secrets: masked in every output before anything reads or cuts it.
    redact: &'a Redactor,
    role: String,
    /// Where each command's identity goes as soon as it runs (see `run`).
    commands: Option<&'a dyn CommandReport>,
    pub label: String,
    become_user: Option<String>,
    deadline: Instant,
}

impl Host<'_> {
    /// A command for drplan's own tools: as the step's user, in `/` (the login user's home
    /// may be unreadable to the user we become, and tools complain), in the C locale (we
    /// read what some of them print).
    pub(crate) fn cmd<I, S>(&self, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cmd = Command::new(argv);
        cmd.become_user = self.become_user.clone();
        cmd.cwd = Some("/".to_owned());
        cmd.env = vec![("LC_ALL".to_owned(), "C".to_owned())];
        cmd
    }

    /// `cmd(argv)` run as root (through the host's become method), whatever the step's user.
    pub(crate) fn root_cmd<I, S>(&self, argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cmd = self.cmd(argv);
        cmd.become_user = Some("root".to_owned());
        cmd
    }

    /// A command with only the step's user set: for the operator's own programs (`exec`).
    pub(crate) fn bare_cmd(&self, argv: Vec<String>) -> Command {
        let mut cmd = Command::new(argv);
        cmd.become_user = self.become_user.clone();
        cmd
    }

    /// Run `cmd`, bounded by its own timeout and the action's deadline.
    pub(crate) async fn run(&self, mut cmd: Command) -> Result<Output, StepFailure> {
        let left = remaining(self.deadline, &self.label, "running a command").map_err(|e| {
            StepFailure {
                command: Some(show_argv(&cmd.argv)),
                ..e
            }
        })?;
        cmd.timeout = Some(cmd.timeout.map_or(left, |t| t.min(left)));
        match self.run_reporting(&mut cmd).await {
            Ok(out) => Ok(self.masked(out)),
            Err(TransportError::Timeout {
                host,
                after,
                partial,
            }) => Err(transport_failure(
                &self.label,
                Some(&cmd.argv),
                TransportError::Timeout {
                    host,
                    after,
                    partial: Box::new(self.masked(*partial)),
                },
            )),
            Err(e) => Err(transport_failure(&self.label, Some(&cmd.argv), e)),
        }
    }

    /// `out` with the secrets masked where nothing needs them: all of stderr (which only
    /// explains, and is cut to its last lines by errors), and stdout only when the
    /// transport already cut its head (what is left of a secret at the cut). Whole secrets
    /// in a complete stdout stay for the action to read; what it keeps of them is masked
    /// by `text` and the executor.
    fn masked(&self, mut out: Output) -> Output {
        out.stderr = self.redact.redact_bytes(&out.stderr, out.stderr_truncated);
        if out.stdout_truncated {
            out.stdout = self.redact.redact_bytes(&out.stdout, true);
        }
        out
    }

    /// `cmd` on the transport, its identity reported while it runs (when the step asked).
    async fn run_reporting(&self, cmd: &mut Command) -> Result<Output, TransportError> {
        let Some(sink) = self.commands else {
            return self.transport.run(cmd).await;
        };
        // Pass the command's identity on, tagged with the role, while it runs: the executor
        // journals it before the step can end.
        let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        cmd.on_started = Some(tx);
        let work = self.transport.run(cmd);
        tokio::pin!(work);
        let result = loop {
            tokio::select! {
                biased;
                Some(identity) = started.recv() => sink.started(&self.role, identity),
                result = &mut work => break result,
            }
        };
        while let Ok(identity) = started.try_recv() {
            sink.started(&self.role, identity);
        }
        result
    }

    /// Output as text for a result or a message: lossily decoded, secrets masked, then only
    /// the last `RESULT_TEXT_CAP` bytes (so no cut leaves part of a secret).
    pub(crate) fn text(&self, bytes: &[u8]) -> String {
        let masked = self.redact.redact(&String::from_utf8_lossy(bytes));
        let mut start = masked.len().saturating_sub(RESULT_TEXT_CAP);
        while !masked.is_char_boundary(start) {
            start += 1;
        }
        masked[start..].to_owned()
    }

    /// Run `cmd`; a non-zero exit is an error saying it was for `what`.
    pub(crate) async fn ok(&self, cmd: Command, what: &str) -> Result<Output, StepFailure> {
        let argv = cmd.argv.clone();
        let out = self.run(cmd).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(command_failure(&self.label, &argv, &out, what))
        }
    }

    /// An error on this host.
    pub(crate) fn fail(&self, message: impl Into<String>) -> StepFailure {
        StepFailure::new(FailureKind::Failed, &self.label, message)
    }

    /// Does `path` exist (as anything, even a dangling symlink)?
    pub(crate) async fn exists(&self, path: &str) -> Result<bool, StepFailure> {
        let script = r#"[ -e "$1" ] || [ -L "$1" ]"#;
        let out = self.run(self.cmd(["sh", "-c", script, "sh", path])).await?;
        match out.status {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(command_failure(
                &self.label,
                &["sh".into(), "-c".into(), script.into()],
                &out,
                &format!("checking whether {path} exists"),
            )),
        }
    }
}

/// `dir/prog`, or `prog` (found on PATH) without a directory.
pub(crate) fn program(bin_dir: Option<&str>, prog: &str) -> String {
    match bin_dir {
        Some(dir) if !dir.is_empty() => format!("{}/{prog}", dir.trim_end_matches('/')),
        _ => prog.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_come_from_bin_dir() {
        assert_eq!(
            program(Some("/usr/lib/postgresql/15/bin/"), "pg_ctl"),
            "/usr/lib/postgresql/15/bin/pg_ctl"
        );
        assert_eq!(program(None, "psql"), "psql");
        assert_eq!(program(Some(""), "psql"), "psql");
    }
}
