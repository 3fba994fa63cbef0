//! drplan: disaster-recovery failover and failback as declarative, validated, resumable plans.
//!
//! The pipeline, one type per stage: YAML text → `load` → `check` (a `ValidPlan`) → `bind`
//! a site (a `BoundPlan`) → `graph` (a `PlanGraph`) → `render` (the preview) or the executor.
//!
//! The public modules are what the binary (`cli::main`), the integration tests, the benches
//! and the fuzz targets use; the rest is `pub(crate)` (the `unreachable_pub` lint keeps it so).
pub mod actions;
pub mod check;
pub mod cli;
pub mod clock;
pub mod diag;
pub mod events;
pub mod evidence;
pub mod exec;
pub mod graph;
pub mod journal;
pub mod load;
pub mod plan;
mod private_fs;
mod process;
pub mod readiness;
pub mod redact;
pub mod render;
mod saved;
pub mod schema;
pub mod serve;
pub mod shipped;
pub mod step;
pub mod template;
pub mod transport;
mod trust;
mod ui;
mod whoami;
