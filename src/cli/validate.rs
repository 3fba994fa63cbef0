//! `drplan validate PLAN [--site SITE]`

use super::{Failure, Global, load_graph, load_plan};
use crate::diag::Diagnostics;
use crate::render::count;
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Also check the binding to this site.
    #[arg(long)]
    pub site: Option<PathBuf>,
    /// text, or json for machines.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let outcome = match &args.site {
        Some(site) => load_graph(&args.plan, site).map(|g| {
            (
                g.bound.valid.plan.name.clone(),
                g.steps().len(),
                g.waves.len(),
            )
        }),
        None => load_plan(&args.plan)
            .map(|v| (v.plan.name.clone(), v.plan.steps.len(), v.dag.waves().len())),
    };
    match (args.format, outcome) {
        (Format::Text, Ok((name, steps, waves))) => {
            if !global.quiet {
                let with = args
                    .site
                    .as_ref()
                    .map(|s| format!(" with site {}", s.display()))
                    .unwrap_or_default();
                println!(
                    "ok: plan `{name}` in {} is valid{with} ({} in {})",
                    args.plan.display(),
                    count(steps, "step", "steps"),
                    count(waves, "wave", "waves")
                );
            }
            Ok(())
        }
        (Format::Text, Err(d)) => Err(Failure::Invalid(d)),
        (Format::Json, result) => {
            let (valid, diags) = match result {
                Ok(_) => (true, Diagnostics::default()),
                Err(d) => (false, d),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "valid": valid, "diagnostics": diagnostics_json(&diags) })
                )
                .unwrap_or_default()
            );
            if valid {
                Ok(())
            } else {
                Err(Failure::InvalidReported {
                    errors: diags.len(),
                })
            }
        }
    }
}

/// Diagnostics for machines: code, message, file, line, column, help.
pub fn diagnostics_json(d: &Diagnostics) -> serde_json::Value {
    d.0.iter()
        .map(|d| {
            let (file, line, column) = d.location().map_or((None, None, None), |(f, l, c)| (Some(f), Some(l), Some(c)));
            json!({ "code": d.code, "message": d.message, "file": file, "line": line, "column": column, "label": d.label, "help": d.help })
        })
        .collect()
}
