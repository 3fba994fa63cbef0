//! The command line: clap structs, resolved once into what each subcommand needs.
//!
//! Each subcommand lives in its own file and returns `Result<(), Failure>`: a typed failure
//! (`failure.rs`) that knows its exit code (fixed in docs/plan-format.md) and is rendered
//! here, in one place.

mod apply;
mod check;
mod failure;
mod pipeline;
mod plan_cmd;
mod report;
mod resume;
mod rollback_cmd;
mod schema_cmd;
mod serve;
mod session;
mod status;
mod validate;

pub use failure::Failure;
pub use pipeline::{ParamFlags, load_graph, load_plan, with_params};

use crate::diag;
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
    /// Keep runs and site locks in etcd instead of --state-dir (which then holds only SSH
    /// control sockets): etcd://HOST:PORT[,HOST:PORT…]/PREFIX, with options
    /// ?ca=FILE&cert=FILE&key=FILE&user=NAME&password-file=FILE&lease=10s (docs/store.md).
    #[arg(long, global = true, value_name = "URL", env = "DRPLAN_STORE")]
    pub store: Option<String>,
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
    /// Serve the standby dashboard, the runs and /metrics over HTTP; changes nothing.
    Serve(serve::Args),
    /// Write a run's evidence (timeline by host, outage, failures, data loss) as one file.
    Report(report::Args),
    /// Print the JSON Schema of plans or sites (the text of schemas/*.schema.json).
    Schema(schema_cmd::Args),
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
        Command::Serve(a) => block_on(serve::run(a, &global)),
        Command::Report(a) => report::run(a, &global),
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
        Err(e) => Err(Failure::io("start the async runtime")(e)),
    }
}

/// Show a failure on stderr: the one place failures are rendered.
fn report(f: &Failure, global: &Global) {
    let color = global.stderr_color();
    match f {
        Failure::Invalid(d) => eprint!("{}", diag::render(d, color)),
        // `check` showed its report already; the exit code says the rest.
        Failure::Unready { .. } => {}
        f => eprint!("{}", diag::render_one(f, color)),
    }
}
