//! `exec`, `sleep` and `manual.approve`.

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Value, json};

use super::{ExecParams, ManualApproveParams, NoteParams, SleepParams};
use crate::actions::failure::command_failure;
use crate::actions::host::Ctx;
use crate::step::{FailureKind, StepFailure};

/// Run the operator's program (argv as is, or `/bin/sh -c script`).
pub(super) async fn exec(ctx: &Ctx<'_>, p: ExecParams) -> Result<Value, StepFailure> {
    let argv = match (p.argv, p.script) {
        (Some(argv), None) if !argv.is_empty() => argv,
        (None, Some(script)) => vec!["/bin/sh".to_owned(), "-c".to_owned(), script],
        (Some(_), None) => return Err(ctx.invalid("`argv` is empty")),
        _ => return Err(ctx.invalid("give exactly one of `argv` and `script`")),
    };
    let host = ctx.host().await?;
    if let Some(path) = &p.creates
        && host.exists(path).await?
    {
        return Ok(
            json!({ "skipped": true, "changed": false, "reason": format!("{path} exists") }),
        );
    }
    let mut cmd = host.bare_cmd(argv);
    cmd.env = p.env.into_iter().collect();
    cmd.cwd = p.cwd;
    let argv = cmd.argv.clone();
    let out = host.run(cmd).await?;
    if !out.success() {
        return Err(command_failure(
            &host.label,
            &argv,
            &out,
            "the command failed",
        ));
    }
    Ok(json!({
        "changed": true,
        "status": out.status,
        "stdout": host.text(&out.stdout),
        "stderr": host.text(&out.stderr),
    }))
}

/// Wait on the controller; no host is involved.
pub(super) async fn sleep(ctx: &Ctx<'_>, p: SleepParams) -> Result<Value, StepFailure> {
    let want = p.duration.std();
    let left = ctx.remaining("sleeping")?;
    if want > left {
        super::timer::sleep(left).await;
        return Err(StepFailure::new(
            FailureKind::Timeout,
            ctx.label(),
            format!("the step's timeout ends before the sleep of {}", p.duration),
        ));
    }
    super::timer::sleep(want).await;
    Ok(json!({ "changed": false, "slept_ms": u64::try_from(want.as_millis()).unwrap_or(u64::MAX) }))
}

/// Approved up front with `--approve STEP`, or by the operator at the terminal; otherwise
/// refused: a run without a terminal must never wait for an answer nobody can give.
pub(super) async fn approve(ctx: &Ctx<'_>, p: ManualApproveParams) -> Result<Value, StepFailure> {
    let approvals = &ctx.env.approvals;
    // Printed straight to the terminal, not through the executor: masked here.
    let prompt = ctx.env.redact.redact(&p.prompt);
    let step = ctx.call.step_id.as_str();
    if approvals.approved(step) {
        return Ok(json!({ "approved": true, "by": "--approve" }));
    }
    if !approvals.interactive() {
        return Err(StepFailure::new(
            FailureKind::Refused,
            "local",
            format!(
                "step `{step}` needs approval ({prompt}) and there is no terminal to ask: re-run with `--approve {step}`"
            ),
        ));
    }
    let _one_at_a_time = approvals.prompt.lock().await;
    let shown = prompt.clone();
    // The read blocks a thread until the operator answers; the run waits for them anyway.
    let answer = tokio::task::spawn_blocking(move || ask(&shown))
        .await
        .map_err(|e| {
            StepFailure::new(
                FailureKind::Failed,
                "local",
                format!("asking for approval failed: {e}"),
            )
        })?
        .map_err(|e| {
            StepFailure::new(
                FailureKind::Failed,
                "local",
                format!("asking for approval failed: {e}"),
            )
        })?;
    if answer {
        Ok(json!({ "approved": true, "by": "terminal" }))
    } else {
        Err(StepFailure::new(
            FailureKind::Refused,
            "local",
            format!("the operator did not approve step `{step}` ({prompt})"),
        ))
    }
}

fn ask(prompt: &str) -> std::io::Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{prompt} [y/N] ")?;
    err.flush()?;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// `note`: the message is the result; the run's output prints a result's `note`.
pub(super) async fn note(_ctx: &Ctx<'_>, p: NoteParams) -> Result<Value, StepFailure> {
    Ok(json!({ "note": p.message }))
}
