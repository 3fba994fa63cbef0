//! The command line: clap structs, resolved once into what each subcommand needs.
//!
//! Each subcommand lives in its own file and returns `Result<(), Failure>`; one function
//! maps a `Failure` to the exit codes fixed in docs/plan-format.md.

pub mod action_runner;
mod apply;
mod check;
mod control_dir;
mod pipeline;
mod plan_cmd;
mod readiness;
mod resume;
mod rollback_cmd;
mod schema_cmd;
mod session;
mod status;
mod validate;

pub use action_runner::ActionRunner;
pub use pipeline::{ParamFlags, load_graph, load_plan, with_params};

use crate::diag::{self, Diagnostics};
use crate::plan::Severity;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Disaster-recovery failover and failback as declarative, validated, resumable plans.
#[derive(Debug, Parser)]
#[command(
    name = "drplan",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// Flags accepted before or after the subcommand.
#[derive(Debug, clap::Args, Clone)]
pub struct Global {
    /// Where runs, journals and locks are kept.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = ".drplan",
        env = "DRPLAN_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// No colours (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More detail: each step's result in run progress.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Trust files that users other than you (and root) could have written — plans, sites,
    /// secrets, keys, the state directory — with a warning naming each. Off by default:
    /// whoever can write such a file can make drplan run anything.
    #[arg(long, global = true)]
    pub allow_insecure_files: bool,
}

impl Global {
    /// Colour on a terminal unless told otherwise.
    pub fn color(&self, terminal: bool) -> bool {
        !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal
    }
    pub fn stdout_color(&self) -> bool {
        self.color(std::io::stdout().is_terminal())
    }
    pub fn stderr_color(&self) -> bool {
        self.color(std::io::stderr().is_terminal())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a plan (and optionally its binding to a site); report every error with its location.
    Validate(validate::Args),
    /// Preview what `apply` would do: waves, hosts, rendered parameters, rollback path.
    Plan(plan_cmd::Args),
    /// Run a plan on a site: preview, confirm, then execute with a checkpoint journal.
    Apply(apply::Args),
    /// Continue an interrupted or paused run from its checkpoint.
    Resume(resume::Args),
    /// Undo the completed steps of a run, newest first, stopping at a point of no return.
    Rollback(rollback_cmd::Args),
    /// List runs, or show one step by step.
    Status(status::Args),
    /// Report a site's readiness (replication, config sync, VIP owner, health); changes nothing.
    Check(check::Args),
    /// Print the JSON Schema of plans or sites (the text of schemas/*.schema.json).
    Schema(schema_cmd::Args),
}

/// Why a command did not succeed; each maps to one exit code.
#[derive(Debug)]
pub enum Failure {
    /// Invalid plan, site, saved plan or arguments (exit 2).
    Invalid(Diagnostics),
    /// Something else the user must fix, already described (exit 2).
    Usage(String),
    /// The run failed and is paused or rolled back (exit 1).
    RunFailed(String),
    /// A precondition refused to let the run start or continue (exit 3).
    Refused(String),
    /// Interrupted; the checkpoint is safe (exit 130).
    Interrupted(String),
    /// `check`: the report, already shown, has a warning (exit 1) or a critical check (exit 2).
    Unready(Severity),
    /// A typed error from a lower layer, shown with its code, cause and help; `exit` is the
    /// exit code its kind maps to (see the `From` impls below).
    Typed {
        exit: u8,
        error: Box<dyn miette::Diagnostic + Send + Sync>,
    },
}

impl From<crate::journal::JournalError> for Failure {
    fn from(e: crate::journal::JournalError) -> Self {
        use crate::journal::JournalError as J;
        let exit = match e {
            // The operator named a run that is not there: invalid input.
            J::InvalidRunId { .. } | J::RunNotFound { .. } => 2,
            // Another user's file in the state directory: the operator must look.
            J::Insecure(_) => 2,
            J::Io { .. } | J::Corrupt { .. } | J::Poisoned { .. } | J::RunExists { .. } => 1,
        };
        Failure::Typed {
            exit,
            error: Box::new(e),
        }
    }
}

impl From<crate::journal::LockError> for Failure {
    fn from(e: crate::journal::LockError) -> Self {
        use crate::journal::LockError as L;
        let exit = match e {
            L::Held { .. } => 4,
            L::InvalidSite { .. } | L::Insecure(_) => 2,
            L::Io { .. } => 1,
        };
        Failure::Typed {
            exit,
            error: Box::new(e),
        }
    }
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) | Failure::Usage(_) => 2,
            Failure::RunFailed(_) => 1,
            Failure::Refused(_) => 3,
            Failure::Interrupted(_) => 130,
            Failure::Unready(Severity::Warning) => 1,
            Failure::Unready(Severity::Critical) => 2,
            Failure::Typed { exit, .. } => *exit,
        }
    }
}

impl From<Diagnostics> for Failure {
    fn from(d: Diagnostics) -> Self {
        Failure::Invalid(d)
    }
}

/// Parse the command line, run, and report.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap: 0 for --help/--version, 2 for usage errors — the same meaning as ours.
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    let global = cli.global.clone();
    crate::trust::allow_insecure_files(global.allow_insecure_files);
    if !matches!(
        cli.command,
        Command::Apply(_) | Command::Resume(_) | Command::Rollback(_)
    ) {
        // Read-only commands end quietly when their reader goes away, like `cat | head`.
        // Commands that change a site keep running (their output is best effort).
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let outcome = match cli.command {
        Command::Validate(a) => validate::run(a, &global),
        Command::Plan(a) => plan_cmd::run(a, &global),
        Command::Schema(a) => schema_cmd::run(a),
        Command::Status(a) => status::run(a, &global),
        Command::Apply(a) => block_on(apply::run(a, &global)),
        Command::Resume(a) => block_on(resume::run(a, &global)),
        Command::Rollback(a) => block_on(rollback_cmd::run(a, &global)),
        Command::Check(a) => block_on(check::run(a, &global)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            report(&f, &global);
            ExitCode::from(f.exit_code())
        }
    }
}

/// Run a command that talks to hosts on a tokio runtime.
fn block_on(fut: impl std::future::Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => Err(Failure::RunFailed(format!(
            "cannot start the async runtime: {e}"
        ))),
    }
}

fn report(f: &Failure, global: &Global) {
    match f {
        Failure::Invalid(d) => eprint!("{}", diag::render(d, global.stderr_color())),
        Failure::Usage(m)
        | Failure::RunFailed(m)
        | Failure::Refused(m)
        | Failure::Interrupted(m) => {
            eprintln!("error: {m}")
        }
        Failure::Unready(_) => {}
        Failure::Typed { error, .. } => eprint!(
            "{}",
            diag::render_one(error.as_ref(), global.stderr_color())
        ),
    }
}
