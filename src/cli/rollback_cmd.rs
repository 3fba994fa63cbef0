//! `drplan rollback RUN`: undo the completed steps of a run, newest first.

use super::session::{self, Drive};
use super::{Failure, Global};
use crate::exec::{Ending, RunStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run to roll back.
    pub run: String,
    #[arg(long, value_enum, default_value = "text")]
    pub format: super::validate::Format,
}

pub async fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let (id, plan, state, journal) = session::open(global, &args.run)?;
    plan.check_unchanged("the run started")?;
    if matches!(state.status(), RunStatus::RolledBack | RunStatus::Refused) {
        return Err(Failure::Usage(format!(
            "run {id} is {}; there is nothing to roll back",
            state.status().as_str()
        )));
    }
    let graph = plan.graph()?;
    let _lock = session::lock(global, &graph.bound.site.site, &id, "rollback")?;
    let events = session::events(global, matches!(args.format, super::validate::Format::Json));
    let mut ex = session::executor(Drive {
        graph,
        journal,
        state,
        events,
        approve: Vec::new(),
        state_dir: global.state_dir.clone(),
    })?;
    match ex
        .rollback()
        .await
        .map_err(|e| Failure::RunFailed(format!("run {id}: {e}")))?
    {
        Ending::RolledBack => {
            crate::ui::say(&format!("run {id} rolled back"));
            Ok(())
        }
        other => session::conclude(&id, other, true),
    }
}
