//! `drplan serve --site SITE [--checks FILE] [--listen ADDR:PORT] [--interval DUR]
//! [--token FILE]`: the standby dashboard, runs and `/metrics` over HTTP (see `crate::serve`).
//!
//! Here the server gets what it cannot know itself: a readiness round over real hosts (a
//! fresh `ActionRunner` each round, as `check --watch` does) and the runs of the state
//! directory or `--store` (read-only, through `session`). Only loopback is served without a token.

use super::check::interval;
use super::pipeline::bind_graph;
use super::{Failure, Global, session};
use crate::actions::{ActionRunner, Approvals};
use crate::events::Silent;
use crate::evidence::RunEvidence;
use crate::exec::{Cancel, Secrets, Shared};
use crate::graph::PlanGraph;
use crate::journal::{JournalError, RunStore};
use crate::readiness::{self, Report};
use crate::serve::{BoxFuture, Config, Probe, RunLookup, Runs};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Pages: / (the dashboard), /runs, /runs/RUN_ID; JSON: /api/readiness, /api/runs, \
/api/runs/RUN_ID; /metrics (Prometheus text). Read-only: nothing served changes a host or a \
run. Ctrl-C (or SIGTERM) stops it.")]
pub struct Args {
    /// The site whose readiness to show.
    #[arg(long)]
    pub site: PathBuf,
    /// The checks (as for `drplan check`: a file, or a shipped one by its name when no such
    /// file exists; default: gocd/readiness, shipped with drplan).
    #[arg(long, value_name = "FILE", default_value = "gocd/readiness")]
    pub checks: PathBuf,
    /// Where to listen. Any address but loopback needs --token.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// How often the checks run (each round is bounded by it: a check that takes longer is
    /// shown critical, "timed out").
    #[arg(long, default_value = "5s", value_parser = interval)]
    pub interval: crate::plan::Duration,
    /// A file holding the bearer token every request must carry
    /// (`Authorization: Bearer TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
    /// How many checks may run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
}

pub(super) async fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let token = args.token.as_deref().map(read_token).transpose()?;
    if token.is_none() && !args.listen.ip().is_loopback() {
        return Err(Failure::ServeExposed { addr: args.listen });
    }
    let path = args.checks;
    let graph = bind_graph(readiness::load_checks(&path), &args.site)?;
    let secrets = session::secrets(&graph)?;
    let control = tempfile::Builder::new()
        .prefix("drplan-serve-")
        .tempdir()
        .map_err(Failure::io("create a temporary directory"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(Failure::io(format!("listen on {}", args.listen)))?;
    let stop = Cancel::on_signals();
    let config = Config {
        site: graph.bound.site.site.clone(),
        checks: path.display().to_string(),
        interval: args.interval.std(),
        token,
    };
    if !global.quiet {
        crate::ui::say(&format!(
            "drplan serve: http://{}/ — site {}, {} every {} (Ctrl-C stops)",
            listener.local_addr().unwrap_or(args.listen),
            config.site,
            config.checks,
            args.interval
        ));
    }
    let probe = Checks {
        graph,
        secrets,
        control: control.path().to_path_buf(),
        parallel: args.parallel.into(),
        stop: stop.clone(),
    };
    let runs = Arc::new(Stored {
        store: session::store(global)?,
    });
    let stopped = async move { stop.cancelled().await };
    crate::serve::serve(config, probe, runs, listener, stopped)
        .await
        .map_err(Failure::io("serve HTTP"))
}

/// The token file's one line: read as any input file (trusted only if only you or root
/// can write it), at least `MIN_TOKEN` characters.
fn read_token(path: &std::path::Path) -> Result<String, Failure> {
    let text = crate::load::read_text(path).map_err(|message| Failure::Unreadable { message })?;
    let token = text.trim();
    if token.chars().count() < super::failure::MIN_TOKEN || token.contains(['\n', '\r']) {
        return Err(Failure::WeakToken {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_owned())
}

/// A readiness round over the site's hosts, as `drplan check` runs one.
struct Checks {
    graph: PlanGraph,
    secrets: Secrets,
    control: PathBuf,
    parallel: usize,
    stop: Cancel,
}

impl Probe for Checks {
    fn round(&self, budget: Duration) -> BoxFuture<'_, Option<Report>> {
        Box::pin(async move {
            let runner = ActionRunner::new(
                &self.graph.bound,
                &self.control,
                Approvals::new(Vec::new(), false),
                self.secrets.redactor().clone(),
            );
            let shared = Arc::new(Shared::new(
                self.graph.clone(),
                runner,
                self.secrets.clone(),
                Arc::new(Silent),
            ));
            let report = readiness::round(&shared, self.parallel, &self.stop, Some(budget)).await;
            // Closing the connections must not hold the next round back either.
            if let Ok(shared) = Arc::try_unwrap(shared) {
                tokio::spawn(tokio::time::timeout(budget, shared.runner.close()));
            }
            report
        })
    }
}

/// The runs of the store (`--state-dir` or `--store`), read-only.
struct Stored {
    store: Box<dyn RunStore>,
}

impl Runs for Stored {
    fn list(&self, limit: usize) -> (Vec<RunEvidence>, Option<String>) {
        let runs = match self.store.list_runs() {
            Ok(runs) => runs,
            Err(e) => return (Vec::new(), Some(e.to_string())),
        };
        let mut list = Vec::new();
        let mut unreadable = Vec::new();
        for r in runs.iter().rev().take(limit) {
            match session::evidence(&*self.store, r.id.as_str()) {
                Ok((e, _)) => list.push(e),
                Err(f) => unreadable.push(format!("run {}: {f}", r.id)),
            }
        }
        let problems = (!unreadable.is_empty()).then(|| unreadable.join("; "));
        (list, problems)
    }

    fn get(&self, id: &str) -> Result<(RunEvidence, Vec<Value>), RunLookup> {
        match session::evidence(&*self.store, id) {
            Ok((e, replay)) => Ok((e, replay.records)),
            Err(Failure::Journal(
                e @ (JournalError::InvalidRunId { .. } | JournalError::RunNotFound { .. }),
            )) => Err(RunLookup::NotFound(e.to_string())),
            Err(f) => Err(RunLookup::Unreadable(f.to_string())),
        }
    }

    fn describe(&self) -> String {
        self.store.describe()
    }
}
