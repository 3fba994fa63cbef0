//! `drplan resume RUN [--retry STEP]... [--skip STEP]... [--kill-stale]`

use super::session::{self, Drive};
use super::{Failure, Global};
use crate::events::RunStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run to continue (see `drplan status`).
    pub run: String,
    /// Run this step again although a crash left it in doubt (repeatable).
    #[arg(long, value_name = "STEP")]
    pub retry: Vec<String>,
    /// Mark this step done by hand; it satisfies its dependants (repeatable).
    #[arg(long, value_name = "STEP")]
    pub skip: Vec<String>,
    /// Stop the commands the crashed run left running in steps left in doubt (SIGTERM,
    /// then SIGKILL; journaled) instead of waiting for them to end.
    #[arg(long)]
    pub kill_stale: bool,
    #[command(flatten)]
    pub flags: session::RunFlags,
}

pub(super) async fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let store = session::store(global)?;
    let (_lock, (id, plan, state, journal)) =
        session::open_locked(&*store, &args.run, "resume", |id, state| {
            if let Some(why) = state.not_resumable() {
                return Err(Failure::NotResumable {
                    run: id.clone(),
                    why,
                });
            }
            if state.status() == RunStatus::RollingBack {
                return Err(Failure::RollingBack { run: id.clone() });
            }
            Ok(())
        })?;
    let stored = plan.options;
    plan.check_unchanged("the run started")?;
    let graph = plan.graph()?;
    for s in args.retry.iter().chain(&args.skip) {
        if graph.index_of(s).is_none() {
            return Err(Failure::no_such_step(
                &id,
                s,
                graph.steps().iter().map(|st| st.id.as_str()),
            ));
        }
    }
    let secrets = session::prepare(&graph)?;
    let done = graph
        .steps()
        .iter()
        .filter(|s| state.step(&s.id).is_done())
        .count();
    let events = session::progress(global, args.flags.json(), done);
    let checked = state.preconditions_passed;
    let mut ex = session::executor(Drive {
        graph,
        journal,
        state,
        events,
        approve: args.flags.approve.clone(),
        state_dir: global.state_dir.clone(),
        secrets,
    })?;
    ex.resumed();
    let started = std::time::Instant::now();
    if !checked {
        session::preconditions(&mut ex, &id).await?;
    }
    let mut opts = args.flags.options(stored, args.retry, args.skip);
    opts.kill_stale = args.kill_stale;
    let ending = ex.forward(&opts).await.map_err(Failure::unrecorded(&id))?;
    session::finish(
        &ex,
        &id,
        ending,
        started,
        session::Output::of(global, args.flags.json()),
    )
}
