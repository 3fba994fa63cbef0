//! The stages every command shares: read → check → bind → build.

use crate::check::{self, ValidPlan};
use crate::diag::Diagnostics;
use crate::graph::PlanGraph;
use crate::load;
use std::path::Path;

/// Read and check a plan file.
pub fn load_plan(path: &Path) -> Result<ValidPlan, Diagnostics> {
    let doc = load::read(path)?;
    check::plan(doc)
}

/// Read, check and bind a plan to a site, and build its graph. Errors in both files are
/// reported together when both can be read.
pub fn load_graph(plan: &Path, site: &Path) -> Result<PlanGraph, Diagnostics> {
    bind_graph(load_plan(plan), site)
}

/// Bind an already checked plan (or the errors found in it) to the site in `site`, and
/// build its graph; the site's errors join the plan's.
pub fn bind_graph(
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
