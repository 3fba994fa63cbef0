//! The stages every command shares: read → check → bind → build.

use super::Failure;
use crate::check;
use crate::diag::Diagnostics;
use crate::graph::PlanGraph;
use crate::load;
use crate::plan::Map;
use crate::plan::ValidPlan;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Read and check a plan: the file at `path`, or the shipped plan of that name when there is
/// no such file (`gocd/failover`).
pub fn load_plan(path: &Path) -> Result<ValidPlan, Diagnostics> {
    let doc = crate::shipped::read_plan(path)?;
    check::plan(doc)
}

/// Read, check and bind a plan to a site, and build its graph. Errors in both files are
/// reported together when both can be read.
pub fn load_graph(plan: &Path, site: &Path) -> Result<PlanGraph, Diagnostics> {
    bind_graph(load_plan(plan), site)
}

/// Bind an already checked plan (or the errors found in it) to the site in `site`, and
/// build its graph; the site's errors join the plan's.
pub(super) fn bind_graph(
    plan: Result<ValidPlan, Diagnostics>,
    site: &Path,
) -> Result<PlanGraph, Diagnostics> {
    let site_doc = load::read(site);
    match (plan, site_doc) {
        (Ok(valid), Ok(doc)) => Ok(PlanGraph::build(check::bind(valid, doc)?)),
        (Err(mut a), Ok(doc)) => {
            if let Err(b) = check::site::site(&doc) {
                a.extend(b);
            }
            Err(a)
        }
        (Ok(_), Err(b)) => Err(b),
        (Err(mut a), Err(b)) => {
            a.extend(b);
            Err(a)
        }
    }
}

/// `--param NAME=VALUE` and `--params FILE`: values of the plan's `params` for one run, over
/// the site's. Shown in the preview, recorded in the run (resume uses them).
#[derive(Debug, Default, clap::Args)]
pub struct ParamFlags {
    /// A value for one of the plan's `params`, for this run (repeatable); typed as the plan
    /// declares it (`--param rebuild=rewind`, `--param max_lag_bytes=1048576`).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub param: Vec<String>,
    /// A YAML file mapping parameter names to values, for this run (`--param` wins over it).
    #[arg(long = "params", value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

impl ParamFlags {
    pub fn given(&self) -> bool {
        !self.param.is_empty() || self.params_file.is_some()
    }

    /// The values given, typed against the plan `graph` runs.
    pub fn values(&self, graph: &PlanGraph) -> Result<Map, Failure> {
        let mut out = Map::new();
        if let Some(file) = &self.params_file {
            match load::read(file)?.value {
                Value::Object(m) => out.extend(m),
                Value::Null => {}
                _ => return Err(Failure::ParamsFileShape { path: file.clone() }),
            }
        }
        let words = check::params::parse_words(&graph.bound, &self.param).map_err(|problem| {
            Failure::Params {
                problems: vec![problem],
            }
        })?;
        out.extend(words);
        Ok(out)
    }
}

/// `graph` with this run's parameter values laid over the site's.
pub fn with_params(mut graph: PlanGraph, params: &Map) -> Result<PlanGraph, Failure> {
    check::params::apply(&mut graph.bound, params)
        .map_err(|problems| Failure::Params { problems })?;
    Ok(graph)
}
