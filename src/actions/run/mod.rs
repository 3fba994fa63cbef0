//! The code behind each action, one file per family, and what they share: the dispatch from
//! a name to typed parameters, and [`Host`], a role's transport with the step's `become` and
//! deadline applied to every command.
//!
//! Everything a host is asked to do is an argv vector (for SSH, quoted once by the transport);
//! the few shell scripts here are constants that receive values as positional parameters
//! (`sh -c SCRIPT sh VALUE…`), never text pasted into them. Every command carries a timeout.

mod exec;
mod file;
mod file_read;
mod file_sync;
mod gocd;
mod gocd_files;
mod http;
mod jvm_options;
mod libpq;
mod pg;
mod pg_aside;
mod pg_auth;
mod pg_check;
mod pg_copy;
mod pg_status;
mod service;
mod sync_plan;
mod vip;
mod wait;

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ActionError;
use super::runtime::{ActionEnv, Invocation};
use super::*;
use crate::process::CommandReport;
use crate::redact::Redactor;
use crate::transport::{Command, Output, Transport, TransportError};

/// How long an action may run when its step sets no `timeout`. Polling actions have their
/// own limits (`wait`, `timeout`); copies of whole clusters get hours.
const DEFAULT_BUDGET: Duration = Duration::from_secs(600);
const LONG_BUDGET: Duration = Duration::from_secs(6 * 3600);

/// The longest text of a command's output kept in a result (the tail).
pub(crate) const RESULT_TEXT_CAP: usize = 64 * 1024;

/// An action's parameters, typed: one variant per catalogue entry, so that the compiler
/// checks that `dispatch` handles every one.
enum Call {
    Exec(ExecParams),
    Sleep(SleepParams),
    ManualApprove(ManualApproveParams),
    FileCopy(FileCopyParams),
    FileRemove(FileRemoveParams),
    FileRename(FileRenameParams),
    FileStat(FileStatParams),
    FileSync(FileSyncParams),
    FileTouch(FileTouchParams),
    FileWrite(FileWriteParams),
    GocdCompareFiles(GocdFilesParams),
    GocdDbProperties(GocdDbPropertiesParams),
    GocdMaintenance(GocdMaintenanceParams),
    GocdSetMode(GocdSetModeParams),
    GocdSyncConfig(GocdFilesParams),
    GocdSyncStatus(GocdSyncStatusParams),
    GocdWaitReady(GocdWaitReadyParams),
    Note(NoteParams),
    HttpGet(HttpGetParams),
    HttpWait(HttpWaitParams),
    TcpWait(TcpWaitParams),
    PgBasebackup(PgBasebackupParams),
    PgControldata(PgControldataParams),
    PgRebuildCheck(PgRebuildCheckParams),
    PgRemoveOldCopies(PgRemoveOldCopiesParams),
    PgMakeStandby(PgMakeStandbyParams),
    PgPromote(PgPromoteParams),
    PgRewind(PgRewindParams),
    PgStart(PgStartParams),
    PgStatus(PgStatusParams),
    PgStop(PgStopParams),
    Service(service::Verb, ServiceParams),
    VipAssign(VipParams),
    VipOwner(VipParams),
    VipRelease(VipParams),
    WaitUntil(WaitUntilParams),
}

enum ParseError {
    UnknownAction,
    Params(serde_json::Error),
}

fn typed<T: DeserializeOwned>(params: &Value) -> Result<T, ParseError> {
    T::deserialize(params).map_err(ParseError::Params)
}

fn parse(action: &str, p: &Value) -> Result<Call, ParseError> {
    use service::Verb;
    Ok(match action {
        "exec" => Call::Exec(typed(p)?),
        "sleep" => Call::Sleep(typed(p)?),
        "manual.approve" => Call::ManualApprove(typed(p)?),
        "file.copy" => Call::FileCopy(typed(p)?),
        "file.remove" => Call::FileRemove(typed(p)?),
        "file.rename" => Call::FileRename(typed(p)?),
        "file.stat" => Call::FileStat(typed(p)?),
        "file.sync" => Call::FileSync(typed(p)?),
        "file.touch" => Call::FileTouch(typed(p)?),
        "file.write" => Call::FileWrite(typed(p)?),
        "gocd.compare_files" => Call::GocdCompareFiles(typed(p)?),
        "gocd.db_properties" => Call::GocdDbProperties(typed(p)?),
        "gocd.maintenance_mode" => Call::GocdMaintenance(typed(p)?),
        "gocd.set_mode" => Call::GocdSetMode(typed(p)?),
        "gocd.sync_config" => Call::GocdSyncConfig(typed(p)?),
        "gocd.sync_status" => Call::GocdSyncStatus(typed(p)?),
        "gocd.wait_ready" => Call::GocdWaitReady(typed(p)?),
        "note" => Call::Note(typed(p)?),
        "http.get" => Call::HttpGet(typed(p)?),
        "http.wait" => Call::HttpWait(typed(p)?),
        "tcp.wait" => Call::TcpWait(typed(p)?),
        "pg.basebackup" => Call::PgBasebackup(typed(p)?),
        "pg.controldata" => Call::PgControldata(typed(p)?),
        "pg.rebuild_check" => Call::PgRebuildCheck(typed(p)?),
        "pg.remove_old_copies" => Call::PgRemoveOldCopies(typed(p)?),
        "pg.make_standby" => Call::PgMakeStandby(typed(p)?),
        "pg.promote" => Call::PgPromote(typed(p)?),
        "pg.rewind" => Call::PgRewind(typed(p)?),
        "pg.start" => Call::PgStart(typed(p)?),
        "pg.status" => Call::PgStatus(typed(p)?),
        "pg.stop" => Call::PgStop(typed(p)?),
        "service.start" => Call::Service(Verb::Start, typed(p)?),
        "service.stop" => Call::Service(Verb::Stop, typed(p)?),
        "service.restart" => Call::Service(Verb::Restart, typed(p)?),
        "service.status" => Call::Service(Verb::Status, typed(p)?),
        "vip.assign" => Call::VipAssign(typed(p)?),
        "vip.owner" => Call::VipOwner(typed(p)?),
        "vip.release" => Call::VipRelease(typed(p)?),
        "wait.until" => Call::WaitUntil(typed(p)?),
        _ => return Err(ParseError::UnknownAction),
    })
}

/// Check the parameters, then run the action.
pub(crate) async fn dispatch(
    env: &ActionEnv<'_>,
    inv: &Invocation<'_>,
) -> Result<Value, ActionError> {
    let ctx = Ctx::new(env, inv);
    let call = match parse(inv.action, inv.params) {
        Ok(call) => call,
        Err(ParseError::UnknownAction) => {
            return Err(ctx.invalid(format!("there is no action `{}`", inv.action)));
        }
        Err(ParseError::Params(e)) => {
            return Err(ctx.invalid(format!("invalid `with:` for {}: {e}", inv.action)));
        }
    };
    match call {
        Call::Exec(p) => exec::exec(&ctx, p).await,
        Call::Sleep(p) => exec::sleep(&ctx, p).await,
        Call::ManualApprove(p) => exec::approve(&ctx, p).await,
        Call::FileCopy(p) => file::copy(&ctx, p).await,
        Call::FileRemove(p) => file::remove(&ctx, p).await,
        Call::FileRename(p) => file::rename(&ctx, p).await,
        Call::FileStat(p) => file::stat(&ctx, p).await,
        Call::FileSync(p) => file_sync::sync(&ctx, p).await,
        Call::FileTouch(p) => file::touch(&ctx, p).await,
        Call::FileWrite(p) => file::write(&ctx, p).await,
        Call::GocdCompareFiles(p) => gocd_files::compare(&ctx, p).await,
        Call::GocdDbProperties(p) => gocd::db_properties(&ctx, p).await,
        Call::GocdMaintenance(p) => gocd::maintenance_mode(&ctx, p).await,
        Call::GocdSetMode(p) => gocd::set_mode(&ctx, p).await,
        Call::GocdSyncConfig(p) => gocd_files::sync(&ctx, p).await,
        Call::GocdSyncStatus(p) => gocd::sync_status(&ctx, p).await,
        Call::GocdWaitReady(p) => gocd::wait_ready(&ctx, p).await,
        Call::Note(p) => exec::note(&ctx, p).await,
        Call::HttpGet(p) => http::get(&ctx, p).await,
        Call::HttpWait(p) => http::wait(&ctx, p).await,
        Call::TcpWait(p) => http::tcp_wait(&ctx, p).await,
        Call::PgBasebackup(p) => pg_copy::basebackup(&ctx, p).await,
        Call::PgControldata(p) => pg_check::controldata(&ctx, p).await,
        Call::PgRebuildCheck(p) => pg_check::rebuild_check(&ctx, p).await,
        Call::PgRemoveOldCopies(p) => pg_aside::remove_old_copies(&ctx, p).await,
        Call::PgMakeStandby(p) => pg_copy::make_standby(&ctx, p).await,
        Call::PgPromote(p) => pg::promote(&ctx, p).await,
        Call::PgRewind(p) => pg_copy::rewind(&ctx, p).await,
        Call::PgStart(p) => pg::start(&ctx, p).await,
        Call::PgStatus(p) => pg_status::status(&ctx, p).await,
        Call::PgStop(p) => pg::stop(&ctx, p).await,
        Call::Service(verb, p) => service::service(&ctx, verb, p).await,
        Call::VipAssign(p) => vip::assign(&ctx, p).await,
        Call::VipOwner(p) => vip::owner(&ctx, p).await,
        Call::VipRelease(p) => vip::release(&ctx, p).await,
        Call::WaitUntil(p) => wait::until(&ctx, p).await,
    }
}

/// One invocation in progress: who asked, and by when it must be done.
pub(crate) struct Ctx<'a> {
    pub env: &'a ActionEnv<'a>,
    pub inv: &'a Invocation<'a>,
    pub deadline: Instant,
}

impl<'a> Ctx<'a> {
    fn new(env: &'a ActionEnv<'a>, inv: &'a Invocation<'a>) -> Self {
        let budget = inv.timeout.unwrap_or(match inv.action {
            "pg.basebackup" | "pg.rewind" => LONG_BUDGET,
            _ => DEFAULT_BUDGET,
        });
        Self {
            env,
            inv,
            deadline: Instant::now() + budget,
        }
    }

    /// This step's host, with the step's `become`.
    pub async fn host(&self) -> Result<Host<'a>, ActionError> {
        self.host_as(self.inv.role, self.inv.become_user).await
    }

    /// Another role's host (the source of a copy), as that host's own default user.
    pub async fn host_of(&self, role: &str) -> Result<Host<'a>, ActionError> {
        self.host_as(role, None).await
    }

    async fn host_as(
        &self,
        role: &str,
        become_user: Option<&str>,
    ) -> Result<Host<'a>, ActionError> {
        let label = self.env.hosts.label(role);
        let transport = self
            .env
            .hosts
            .get(role)
            .await
            .map_err(|e| ActionError::transport(&label, None, e))?;
        Ok(Host {
            transport,
            redact: self.env.redact,
            role: role.to_owned(),
            commands: self.inv.commands,
            label,
            become_user: become_user.map(str::to_owned),
            deadline: self.deadline,
        })
    }

    /// The label of this step's host, for errors raised before it is reached.
    pub fn label(&self) -> String {
        self.env.hosts.label(self.inv.role)
    }

    pub fn invalid(&self, message: impl Into<String>) -> ActionError {
        ActionError::invalid(&self.label(), message)
    }

    /// The time left, or a Timeout error naming `what` when there is none.
    pub fn remaining(&self, what: &str) -> Result<Duration, ActionError> {
        remaining(self.deadline, &self.label(), what)
    }
}

fn remaining(deadline: Instant, label: &str, what: &str) -> Result<Duration, ActionError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ActionError::new(
            super::ActionErrorKind::Timeout,
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
    pub fn cmd<I, S>(&self, argv: I) -> Command
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

    /// A command with only the step's user set: for the operator's own programs (`exec`).
    pub fn bare_cmd(&self, argv: Vec<String>) -> Command {
        let mut cmd = Command::new(argv);
        cmd.become_user = self.become_user.clone();
        cmd
    }

    /// Run `cmd`, bounded by its own timeout and the action's deadline.
    pub async fn run(&self, mut cmd: Command) -> Result<Output, ActionError> {
        let left = remaining(self.deadline, &self.label, "running a command").map_err(|e| {
            ActionError {
                command: Some(super::error::show_argv(&cmd.argv)),
                ..e
            }
        })?;
        cmd.timeout = Some(cmd.timeout.map_or(left, |t| t.min(left)));
        let result = self.run_reporting(&mut cmd).await;
        match result {
            Ok(out) => Ok(self.masked(out)),
            Err(TransportError::Timeout {
                host,
                after,
                partial,
            }) => Err(ActionError::transport(
                &self.label,
                Some(&cmd.argv),
                TransportError::Timeout {
                    host,
                    after,
                    partial: Box::new(self.masked(*partial)),
                },
            )),
            Err(e) => Err(ActionError::transport(&self.label, Some(&cmd.argv), e)),
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

    /// Run `cmd`; a non-zero exit is an error saying it was for `what`.
    pub async fn ok(&self, cmd: Command, what: &str) -> Result<Output, ActionError> {
        let argv = cmd.argv.clone();
        let out = self.run(cmd).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(ActionError::command(&self.label, &argv, &out, what))
        }
    }

    /// An error on this host.
    pub fn fail(&self, message: impl Into<String>) -> ActionError {
        ActionError::failed(&self.label, message)
    }

    /// Does `path` exist (as anything, even a dangling symlink)?
    pub async fn exists(&self, path: &str) -> Result<bool, ActionError> {
        let script = r#"[ -e "$1" ] || [ -L "$1" ]"#;
        let out = self.run(self.cmd(["sh", "-c", script, "sh", path])).await?;
        match out.status {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(ActionError::command(
                &self.label,
                &["sh".into(), "-c".into(), script.into()],
                &out,
                &format!("checking whether {path} exists"),
            )),
        }
    }
}

impl Host<'_> {
    /// Output as text for a result or a message: lossily decoded, secrets masked, then only
    /// the last `RESULT_TEXT_CAP` bytes (so no cut leaves part of a secret).
    pub fn text(&self, bytes: &[u8]) -> String {
        let masked = self.redact.redact(&String::from_utf8_lossy(bytes));
        let mut start = masked.len().saturating_sub(RESULT_TEXT_CAP);
        while !masked.is_char_boundary(start) {
            start += 1;
        }
        masked[start..].to_owned()
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
    fn every_catalogue_action_is_dispatched() {
        // deny_unknown_fields on every parameter type: a probe key fails parsing *inside*
        // the action's arm, which proves the arm exists without touching any host.
        let probe = serde_json::json!({ "__drplan_probe": true });
        for spec in CATALOGUE {
            match parse(spec.name, &probe) {
                Err(ParseError::Params(e)) => {
                    assert!(
                        e.to_string().contains("__drplan_probe"),
                        "{}: {e}",
                        spec.name
                    )
                }
                Err(ParseError::UnknownAction) => panic!("{} is not dispatched", spec.name),
                Ok(_) => panic!("{} accepted an unknown field", spec.name),
            }
        }
        assert!(matches!(
            parse("pg.promte", &probe),
            Err(ParseError::UnknownAction)
        ));
    }

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
