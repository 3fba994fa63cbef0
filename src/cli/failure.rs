//! Why a command did not succeed: one typed error per situation, each with its code, what
//! happened, what to do about it (`help`), the error it came from, and its exit code.
//!
//! Errors from lower layers (`JournalError`, `LockError`, a check's `StepFailure`, an I/O
//! error) are kept whole, so their own code and help reach the operator. `cli::report`
//! renders every failure with the one miette handler in `diag`; the exit codes are the
//! fixed contract of docs/plan-format.md (see [`Failure::exit_code`]).
//!
//! Commands an operator may copy stand on lines of their own in the help, where the
//! renderer does not wrap them.

use crate::diag::Diagnostics;
use crate::exec::Ending;
use crate::journal::{JournalError, LockError, RunId};
use crate::plan::Severity;
use crate::render::count;
use crate::step::StepFailure;
use crate::trust::Insecure;
use std::path::PathBuf;

/// The shortest bearer token `drplan serve` accepts.
pub(super) const MIN_TOKEN: usize = 16;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Failure {
    // ---- invalid input: exit 2 -------------------------------------------------------
    /// Everything wrong with a plan, site, checks file or saved plan, each with its place
    /// (rendered one by one, then counted).
    #[error("{}", count(.0.len(), "error", "errors"))]
    Invalid(Diagnostics),

    /// `validate --format json`: the errors are in the JSON report on stdout.
    #[error("{}, listed in the JSON report", count(*.errors, "error", "errors"))]
    #[diagnostic(code(drplan::input::invalid))]
    InvalidReported { errors: usize },

    #[error("{message}")]
    #[diagnostic(code(drplan::input::unreadable))]
    Unreadable { message: String },

    #[error("{} is not a saved plan", .path.display())]
    #[diagnostic(
        code(drplan::input::not_a_saved_plan),
        help(
            "to run a plan file, give its site:\n  drplan apply {} --site SITE\n(a saved plan is what `drplan plan … --out FILE` writes)",
            .path.display()
        )
    )]
    NotASavedPlan { path: PathBuf },

    #[error("a saved plan carries its own parameters")]
    #[diagnostic(
        code(drplan::input::saved_plan_params),
        help(
            "preview it again with `drplan plan … --param … --out FILE`, or give the plan file with --site"
        )
    )]
    SavedPlanParams,

    #[error("{} must map parameter names to values (`rebuild: rewind`)", .path.display())]
    #[diagnostic(code(drplan::input::params_file))]
    ParamsFileShape { path: PathBuf },

    #[error("invalid parameters for this run:\n  {}", .problems.join("\n  "))]
    #[diagnostic(
        code(drplan::input::params),
        help("the plan's `params:` say which names, types and values it accepts")
    )]
    Params { problems: Vec<String> },

    #[error("{message}")]
    #[diagnostic(
        code(drplan::input::secret),
        help(
            "the site's `secrets:` name where each secret comes from (an environment variable or a file); nothing was started"
        )
    )]
    Secret { message: String },

    #[error("cannot render what this run needs, or its actions refuse it (nothing was started):\n  {}", .problems.join("\n  "))]
    #[diagnostic(code(drplan::input::render))]
    RenderAhead { problems: Vec<String> },

    #[error(
        "{} already exist{}; nothing was written:\n  {}",
        if .existing.len() == 1 { "a file" } else { "files" },
        if .existing.len() == 1 { "s" } else { "" },
        .existing.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n  ")
    )]
    #[diagnostic(
        code(drplan::input::export_exists),
        help("`--force` replaces them with the shipped ones, or export into another directory")
    )]
    ExportWouldReplace { existing: Vec<PathBuf> },

    #[error("--store {store}: {why}")]
    #[diagnostic(
        code(drplan::input::store),
        help(
            "the store looks like\n  etcd://HOST:PORT[,HOST:PORT…]/PREFIX[?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE&lease=10s]\n(docs/store.md)"
        )
    )]
    BadStore { store: String, why: String },

    #[error("cannot write {}", .path.display())]
    #[diagnostic(code(drplan::input::write))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("not on a terminal, so nothing was asked and nothing applied")]
    #[diagnostic(
        code(drplan::input::not_a_terminal),
        help("review the preview above, then run again with --yes")
    )]
    NotATerminal,

    #[error("not applied: the answer was not `yes`")]
    #[diagnostic(code(drplan::input::not_confirmed))]
    NotConfirmed,

    #[error(
        "{what}: the stored text of {} does not match its sha-256 ({} recorded, {} stored); it was altered after it was saved",
        .path.display(), short(.recorded), short(.stored)
    )]
    #[diagnostic(
        code(drplan::input::altered),
        help(
            "drplan refuses to run it; start again from the plan and site files with `drplan apply`"
        )
    )]
    Altered {
        what: String,
        path: PathBuf,
        recorded: String,
        stored: String,
    },

    #[error(
        "{} changed since {since} (sha-256 {} then, {} now); refusing to run a plan other than the one that was reviewed",
        .path.display(), short(.then), short(.now)
    )]
    #[diagnostic(
        code(drplan::input::changed),
        help("start a new run with `drplan apply`")
    )]
    Changed {
        path: PathBuf,
        since: String,
        then: String,
        now: String,
    },

    #[error("cannot read {} to check it is unchanged", .path.display())]
    #[diagnostic(code(drplan::input::unchecked))]
    Unchecked {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "run {run}: its journal belongs to another run ({other} of plan {} / site {}); it was copied or altered, so nothing it says can be trusted for this run",
        short(.plan_sha256), short(.site_sha256)
    )]
    #[diagnostic(
        code(drplan::run::foreign_journal),
        help("start a new run with `drplan apply`")
    )]
    ForeignJournal {
        run: RunId,
        other: String,
        plan_sha256: String,
        site_sha256: String,
    },

    #[error("run {run} cannot be resumed: {why}")]
    #[diagnostic(
        code(drplan::run::not_resumable),
        help("see what it did:\n  drplan status {run}\nor start a new run with `drplan apply`")
    )]
    NotResumable { run: RunId, why: String },

    #[error("run {run} is being rolled back")]
    #[diagnostic(
        code(drplan::run::rolling_back),
        help("continue the rollback:\n  drplan rollback {run}")
    )]
    RollingBack { run: RunId },

    #[error("run {run} is {status}; there is nothing to roll back")]
    #[diagnostic(code(drplan::run::nothing_to_roll_back))]
    NothingToRollBack { run: RunId, status: &'static str },

    #[error("run {run} has no step `{step}`")]
    #[diagnostic(code(drplan::run::no_such_step), help("{}", .hint))]
    NoSuchStep {
        run: RunId,
        step: String,
        hint: String,
    },

    #[error("step `{step}` of run {run} is not in doubt")]
    #[diagnostic(
        code(drplan::run::not_in_doubt),
        help(
            "`--assume-done`/`--assume-not-run` only settle steps a crash left in doubt; see which:\n  drplan status {run}"
        )
    )]
    NotInDoubt { run: RunId, step: String },

    #[error("step `{step}` cannot be both --assume-done and --assume-not-run")]
    #[diagnostic(code(drplan::run::contradiction))]
    AssumedBoth { step: String },

    /// A file another user could have written (or a link inside the state directory):
    /// its own message and help say which, why, and what `--allow-insecure-files` gives up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Insecure(#[from] Insecure),

    #[error("refusing to serve on {addr} without --token: only loopback is served without one")]
    #[diagnostic(
        code(drplan::serve::exposed),
        help(
            "listen on loopback (the default, 127.0.0.1:8080), or give a bearer token every request must carry:\n  drplan serve … --listen {addr} --token FILE\n(FILE holds one line of at least {MIN_TOKEN} characters; keep it 0600)"
        )
    )]
    ServeExposed { addr: std::net::SocketAddr },

    #[error("{}: the token must be one line of at least {MIN_TOKEN} characters", .path.display())]
    #[diagnostic(
        code(drplan::serve::token),
        help("for example: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE")
    )]
    WeakToken { path: PathBuf },

    // ---- the run failed and is paused or rolled back: exit 1 ------------------------
    #[error("run {run} failed and was rolled back")]
    #[diagnostic(
        code(drplan::run::rolled_back),
        help("see each step:\n  drplan status {run}")
    )]
    RolledBack { run: RunId },

    #[error("run {run} paused: {} failed", .failed.join(", "))]
    #[diagnostic(
        code(drplan::run::paused),
        help(
            "fix the cause, then continue:\n  drplan resume {run}\nor, if you did it by hand:\n  drplan resume {run} --skip STEP\nor undo what the run did:\n  drplan rollback {run}"
        )
    )]
    Paused { run: RunId, failed: Vec<String> },

    #[error(
        "run {run}: {} may or may not have run (the run stopped mid-step) and {} not safe to repeat blindly",
        .in_doubt.join(", "), if .in_doubt.len() == 1 { "is" } else { "are" }
    )]
    #[diagnostic(
        code(drplan::run::in_doubt),
        help(
            "check the host, then run it again:\n  drplan resume {run} --retry STEP\nor, if it is done:\n  drplan resume {run} --skip STEP"
        )
    )]
    NeedsDecision { run: RunId, in_doubt: Vec<String> },

    #[error(
        "run {run}: nothing was rolled back. {} may or may not have run (the run stopped mid-step), and undoing {} is not safe blindly",
        .in_doubt.join(", "), if .in_doubt.len() == 1 { "it" } else { "them" }
    )]
    #[diagnostic(
        code(drplan::run::rollback_in_doubt),
        help(
            "check the host, then say what happened; it ran (its rollback hook runs):\n  drplan rollback {run} --assume-done STEP\nor it never ran (nothing to undo):\n  drplan rollback {run} --assume-not-run STEP"
        )
    )]
    RollbackNeedsDecision { run: RunId, in_doubt: Vec<String> },

    #[error("run {run}: rolling back {step} failed; rollback paused")]
    #[diagnostic(
        code(drplan::run::rollback_paused),
        help("fix the cause, then roll back again:\n  drplan rollback {run}")
    )]
    RollbackPaused { run: RunId, step: String },

    #[error("run {run} stopped: its journal can no longer be written")]
    #[diagnostic(
        code(drplan::run::unrecorded),
        help(
            "no step started after that, and the steps that were running ended first; their ends are not recorded, so they are in doubt. Once the journal can be written again (the store answers), continue:\n  drplan resume {run}"
        )
    )]
    Unrecorded {
        run: RunId,
        #[source]
        source: JournalError,
    },

    #[error("run {run}: its stored plan is unreadable")]
    #[diagnostic(code(drplan::run::stored_plan))]
    StoredPlan {
        run: RunId,
        #[source]
        source: serde_json::Error,
    },

    #[error("run {run}: {reason}")]
    #[diagnostic(
        code(drplan::run::unknown_record),
        help("a newer drplan wrote this journal; resume it with that version")
    )]
    UnknownRecord { run: RunId, reason: String },

    #[error("could not {action}")]
    #[diagnostic(code(drplan::io))]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Journal(#[from] JournalError),

    // ---- a precondition refused: exit 3 ---------------------------------------------
    #[error(
        "run {run} paused: a precondition of {} refused, nothing was changed by it",
        .failed.join(", ")
    )]
    #[diagnostic(
        code(drplan::run::step_refused),
        help(
            "fix the cause, then continue:\n  drplan resume {run}\nor undo what the run did:\n  drplan rollback {run}"
        )
    )]
    StepRefused { run: RunId, failed: Vec<String> },

    #[error("run {run} refused before step one, nothing was changed: {}", .failure.message)]
    #[diagnostic(
        code(drplan::run::refused),
        help(
            "a refused run is over; once the site is ready, start a new run with `drplan apply`. See why:\n  drplan status {run}"
        )
    )]
    Refused {
        run: RunId,
        failure: Box<StepFailure>,
    },

    // ---- another run holds the site: exit 4 (other lock errors: 2 or 1) --------------
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] LockError),

    // ---- interrupted: exit 130 --------------------------------------------------------
    #[error("run {run} interrupted; the checkpoint is safe")]
    #[diagnostic(
        code(drplan::run::interrupted),
        help("continue with:\n  drplan resume {run}")
    )]
    Interrupted { run: RunId },

    #[error("run {run} interrupted before step one, nothing was changed")]
    #[diagnostic(
        code(drplan::run::interrupted),
        help("continue with (it checks the preconditions again):\n  drplan resume {run}")
    )]
    InterruptedBeforeStart { run: RunId },

    #[error("interrupted before the checks finished: no report")]
    #[diagnostic(code(drplan::check::interrupted))]
    ChecksInterrupted,

    // ---- `check`: the report, already shown, has a warning (1) or a critical check (2) --
    #[error("the site is not ready ({severity:?})")]
    Unready { severity: Severity },
}

impl Failure {
    /// The exit code: the fixed contract of docs/plan-format.md.
    pub fn exit_code(&self) -> u8 {
        use Failure as F;
        match self {
            F::Invalid(_)
            | F::InvalidReported { .. }
            | F::Unreadable { .. }
            | F::NotASavedPlan { .. }
            | F::SavedPlanParams
            | F::ParamsFileShape { .. }
            | F::Params { .. }
            | F::Secret { .. }
            | F::RenderAhead { .. }
            | F::BadStore { .. }
            | F::Write { .. }
            | F::NotATerminal
            | F::NotConfirmed
            | F::Altered { .. }
            | F::Changed { .. }
            | F::Unchecked { .. }
            | F::ForeignJournal { .. }
            | F::NotResumable { .. }
            | F::RollingBack { .. }
            | F::NothingToRollBack { .. }
            | F::NoSuchStep { .. }
            | F::NotInDoubt { .. }
            | F::AssumedBoth { .. }
            | F::ExportWouldReplace { .. }
            | F::ServeExposed { .. }
            | F::WeakToken { .. }
            | F::Insecure(_) => 2,
            F::RolledBack { .. }
            | F::Paused { .. }
            | F::NeedsDecision { .. }
            | F::RollbackNeedsDecision { .. }
            | F::RollbackPaused { .. }
            | F::StoredPlan { .. }
            | F::Unrecorded { .. }
            | F::UnknownRecord { .. }
            | F::Io { .. } => 1,
            F::Journal(e) => match e {
                // The operator named a run that is not there: invalid input.
                JournalError::InvalidRunId { .. } | JournalError::RunNotFound { .. } => 2,
                // Nothing started: the store could not be reached (or refused us) at start.
                JournalError::Unreachable { .. } => 2,
                JournalError::Store { .. } | JournalError::Fenced { .. } => 1,
                // Another user's file in the state directory: the operator must look.
                JournalError::Insecure(_) => 2,
                JournalError::Io { .. }
                | JournalError::Corrupt { .. }
                | JournalError::Poisoned { .. }
                | JournalError::RunExists { .. } => 1,
            },
            F::StepRefused { .. } | F::Refused { .. } => 3,
            F::Lock(e) => match e {
                LockError::Held { .. } | LockError::HeldInStore { .. } => 4,
                LockError::InvalidSite { .. }
                | LockError::Store { .. }
                | LockError::Insecure(_) => 2,
                LockError::Io { .. } => 1,
            },
            F::Interrupted { .. } | F::InterruptedBeforeStart { .. } | F::ChecksInterrupted => 130,
            F::Unready {
                severity: Severity::Warning,
            } => 1,
            F::Unready {
                severity: Severity::Critical,
            } => 2,
        }
    }

    /// How a run that did not succeed ended, as a failure; `None` when it succeeded.
    pub fn ended(run: &RunId, ending: Ending) -> Option<Failure> {
        let run = run.clone();
        Some(match ending {
            Ending::Succeeded => return None,
            Ending::RolledBack => Failure::RolledBack { run },
            Ending::Paused {
                failed,
                refused: true,
            } => Failure::StepRefused { run, failed },
            Ending::Paused {
                failed,
                refused: false,
            } => Failure::Paused { run, failed },
            Ending::NeedsDecision { in_doubt } => Failure::NeedsDecision { run, in_doubt },
            Ending::Interrupted => Failure::Interrupted { run },
            Ending::RollbackNeedsDecision { in_doubt } => {
                Failure::RollbackNeedsDecision { run, in_doubt }
            }
            Ending::RollbackPaused { step } => Failure::RollbackPaused { run, step },
        })
    }

    /// `step` is not one of `run`'s steps (`steps`): say the closest, or where to look.
    pub fn no_such_step<'a>(
        run: &RunId,
        step: &str,
        steps: impl IntoIterator<Item = &'a str>,
    ) -> Failure {
        Failure::NoSuchStep {
            run: run.clone(),
            step: step.to_owned(),
            hint: crate::diag::suggest(step, steps)
                .unwrap_or_else(|| format!("see its steps:\n  drplan status {run}")),
        }
    }

    /// The journal of `run` failed while it ran: the run stopped, unrecorded from then on.
    pub fn unrecorded(run: &RunId) -> impl FnOnce(JournalError) -> Failure {
        let run = run.clone();
        move |source| Failure::Unrecorded { run, source }
    }

    /// An I/O error while doing `action`, or the refusal it carries (`trust::is_insecure`)
    /// when it is one.
    pub fn from_io(source: std::io::Error, action: impl Into<String>) -> Failure {
        match crate::trust::is_insecure(&source) {
            Some(insecure) => Failure::Insecure(insecure.clone()),
            None => Failure::io(action)(source),
        }
    }

    /// An I/O error while doing `action` (which names what it acted on).
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Failure {
        let action = action.into();
        move |source| Failure::Io { action, source }
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Invalid(d)
    }
}

/// The first 12 hex digits of a hash, for messages (the whole value if it is shorter).
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
