//! `drplan rollback RUN [--assume-done STEP]... [--assume-not-run STEP]... [--kill-stale]`:
//! undo what a run
//! did — first the steps a crash left in doubt (when their hooks are safe to run, or the
//! operator says what happened), then the completed steps newest first — stopping at a
//! point of no return.

use super::session::{self, Drive};
use super::{Failure, Global};
use crate::events::RunStatus;
use crate::exec::{Ending, RollbackOptions, StepState};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run to roll back.
    pub run: String,
    /// A step left in doubt did run: run its rollback hook (journaled; repeatable).
    #[arg(long, value_name = "STEP")]
    pub assume_done: Vec<String>,
    /// A step left in doubt never ran: nothing to undo (journaled; repeatable).
    #[arg(long, value_name = "STEP")]
    pub assume_not_run: Vec<String>,
    /// Stop the commands the crashed run left running (in steps left in doubt, or a
    /// rollback hook) with SIGTERM, then SIGKILL (journaled), instead of waiting for them.
    #[arg(long)]
    pub kill_stale: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: super::validate::Format,
}

pub(super) async fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let store = session::store(global)?;
    let (_lock, (id, plan, state, journal)) =
        session::open_locked(&*store, &args.run, "rollback", |id, state| {
            if !state.started
                || matches!(state.status(), RunStatus::RolledBack | RunStatus::Refused)
            {
                return Err(Failure::NothingToRollBack {
                    run: id.clone(),
                    status: state.status().as_str(),
                });
            }
            Ok(())
        })?;
    plan.check_unchanged("the run started")?;
    let graph = plan.graph()?;
    for s in args.assume_done.iter().chain(&args.assume_not_run) {
        match graph.index_of(s).map(|_| state.step(s)) {
            None => {
                return Err(Failure::no_such_step(
                    &id,
                    s,
                    graph.steps().iter().map(|st| st.id.as_str()),
                ));
            }
            Some(StepState::InDoubt { .. }) => {}
            Some(_) if state.compensation_open.as_deref() == Some(s.as_str()) => {}
            Some(_) => {
                return Err(Failure::NotInDoubt {
                    run: id,
                    step: s.clone(),
                });
            }
        }
    }
    if let Some(both) = args
        .assume_done
        .iter()
        .find(|s| args.assume_not_run.contains(s))
    {
        return Err(Failure::AssumedBoth { step: both.clone() });
    }
    let secrets = session::prepare(&graph)?;
    let events = session::events(global, matches!(args.format, super::validate::Format::Json));
    let mut ex = session::executor(Drive {
        graph,
        journal,
        state,
        events,
        approve: Vec::new(),
        state_dir: global.state_dir.clone(),
        secrets,
    })?;
    let opts = RollbackOptions {
        assume_done: args.assume_done,
        assume_not_run: args.assume_not_run,
        kill_stale: args.kill_stale,
    };
    match ex.rollback(&opts).await.map_err(Failure::unrecorded(&id))? {
        Ending::RolledBack => {
            crate::ui::say(&format!("run {id} rolled back"));
            Ok(())
        }
        other => session::conclude(&id, other, true),
    }
}
