//! `drplan apply (PLAN --site SITE | SAVED) [--yes] [--parallel N] [--on-failure …]`

use super::session::{self, Drive, RunPlan};
use super::{Failure, Global, ParamFlags, load_graph, with_params};
use crate::journal::RunId;
use crate::render;
use crate::saved::SavedPlan;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan file (with --site), or a plan saved by `drplan plan --out`.
    pub plan: PathBuf,
    /// The site to run it on.
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// Do not show the preview and ask; required when stdin is not a terminal.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub run: session::RunFlags,
    #[command(flatten)]
    pub params: ParamFlags,
}

pub(super) async fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let (run_plan, graph) = match &args.site {
        Some(site) => {
            let graph = load_graph(&args.plan, site)?;
            let params = args.params.values(&graph)?;
            let mut graph = with_params(graph, &params)?;
            // The texts the graph was read from: what the run stores, and what it executes
            // (this graph, not one read again from them). Files the site names are found
            // next to its canonical path, as a resume finds them.
            let (plan, site) = crate::saved::texts(&graph);
            graph.bound.site_dir = site
                .path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let run_plan = RunPlan {
                drplan_run: 1,
                plan,
                site,
                params,
                options: args.run.choices(Default::default()),
            };
            (run_plan, graph)
        }
        None if args.params.given() => return Err(Failure::SavedPlanParams),
        // A shipped plan's name, not a file: it was meant with --site.
        None if std::fs::symlink_metadata(&args.plan).is_err()
            && args.plan.to_str().and_then(crate::shipped::find).is_some() =>
        {
            return Err(Failure::NotASavedPlan { path: args.plan });
        }
        None => {
            let text = crate::load::read_text(&args.plan)
                .map_err(|message| Failure::Unreadable { message })?;
            let saved: SavedPlan =
                serde_json::from_str(&text).map_err(|_| Failure::NotASavedPlan {
                    path: args.plan.clone(),
                })?;
            let rp = RunPlan {
                drplan_run: 1,
                plan: saved.plan,
                site: saved.site,
                params: saved.params,
                options: args.run.choices(Default::default()),
            };
            rp.verify_texts(&args.plan.display().to_string())?;
            rp.check_unchanged("the plan was saved (it is stale)")?;
            let graph = rp.graph()?;
            (rp, graph)
        }
    };
    // Everything that can refuse the run before it exists does so here: a refused start
    // leaves nothing on disk that `resume` could pick up.
    let secrets = session::prepare(&graph)?;
    let store = session::store(global)?;
    if !args.yes {
        confirm(&graph, global)?;
    }
    let run_id = RunId::generate()?;
    let _lock = session::lock(&*store, &graph.bound.site.site, &run_id, "apply")?;
    let stored = serde_json::to_vec_pretty(&run_plan)
        .map_err(|e| Failure::io("encode the run's plan")(e.into()))?;
    let created = store.create_run(&run_id, &stored)?;
    let json = args.run.json();
    let mut ex = session::executor(Drive {
        graph,
        journal: created.journal,
        state: Default::default(),
        events: session::progress(global, json, 0),
        approve: args.run.approve.clone(),
        state_dir: global.state_dir.clone(),
        secrets,
    })?;
    ex.start(
        run_id.as_str(),
        &run_plan.plan.sha256,
        &run_plan.site.sha256,
        &run_plan.params,
    )
    .map_err(Failure::unrecorded(&run_id))?;
    let started = std::time::Instant::now();
    session::preconditions(&mut ex, &run_id).await?;
    let opts = args.run.options(run_plan.options, Vec::new(), Vec::new());
    let ending = ex
        .forward(&opts)
        .await
        .map_err(Failure::unrecorded(&run_id))?;
    session::finish(
        &ex,
        &run_id,
        ending,
        started,
        session::Output::of(global, json),
    )
}

/// Show the preview and ask; refuse without a terminal.
fn confirm(graph: &crate::graph::PlanGraph, global: &Global) -> Result<(), Failure> {
    let preview = render::preview_json(graph)?;
    crate::ui::say(render::text(&preview, global.stdout_color()).trim_end());
    if !std::io::stdin().is_terminal() {
        return Err(Failure::NotATerminal);
    }
    print!(
        "\nApply this plan to site {}? Only `yes` is accepted: ",
        graph.bound.site.site
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() != "yes" {
        return Err(Failure::NotConfirmed);
    }
    Ok(())
}
