//! `drplan validate PLAN [--site SITE]`

use super::{Failure, Global, load_graph, load_plan};
use crate::check;
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

pub(super) fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let outcome = match &args.site {
        Some(site) => load_graph(&args.plan, site).map(|g| {
            let valid = Valid {
                name: g.bound.valid.plan.name.clone(),
                steps: g.steps().len(),
                waves: g.waves.len(),
                warnings: check::unused_site_values(&g.bound, g.site_password_users().as_ref()),
            };
            exiting(g);
            valid
        }),
        None => load_plan(&args.plan).map(|v| {
            let valid = Valid {
                name: v.plan.name.clone(),
                steps: v.plan.steps.len(),
                waves: v.dag.waves().len(),
                warnings: Diagnostics::default(),
            };
            exiting(v);
            valid
        }),
    };
    match (args.format, outcome) {
        (Format::Text, Ok(valid)) => {
            if !global.quiet {
                for w in &valid.warnings.0 {
                    eprintln!("{}", warning_line(w));
                }
                let with = args
                    .site
                    .as_ref()
                    .map(|s| format!(" with site {}", s.display()))
                    .unwrap_or_default();
                println!(
                    "ok: plan `{}` in {} is valid{with} ({} in {})",
                    valid.name,
                    args.plan.display(),
                    count(valid.steps, "step", "steps"),
                    count(valid.waves, "wave", "waves")
                );
            }
            Ok(())
        }
        (Format::Text, Err(d)) => Err(Failure::Invalid(d)),
        (Format::Json, result) => {
            let (valid, diags, warnings) = match result {
                Ok(v) => (true, Diagnostics::default(), v.warnings),
                Err(d) => (false, d, Diagnostics::default()),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "valid": valid,
                    "diagnostics": diagnostics_json(&diags),
                    "warnings": diagnostics_json(&warnings),
                }))
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

/// Leave a checked plan to the end of the process: freeing a big plan's trees one node at a
/// time costs a tenth of validating it, and the system takes the memory back at once.
pub(super) fn exiting<T>(plan: T) {
    std::mem::forget(plan);
}

/// What `validate` says about a valid plan.
struct Valid {
    name: String,
    steps: usize,
    waves: usize,
    /// Site values the plan does not read (with `--site`).
    warnings: Diagnostics,
}

/// `warning: FILE:LINE:COLUMN: message`, one line.
fn warning_line(w: &crate::diag::Diagnostic) -> String {
    match w.location() {
        Some((file, line, column)) => format!("warning: {file}:{line}:{column}: {}", w.message),
        None => format!("warning: {}", w.message),
    }
}

/// Diagnostics for machines: code, message, file, line, column, help.
pub(super) fn diagnostics_json(d: &Diagnostics) -> serde_json::Value {
    d.0.iter()
        .map(|d| {
            let (file, line, column) = d.location().map_or((None, None, None), |(f, l, c)| (Some(f), Some(l), Some(c)));
            json!({ "code": d.code, "message": d.message, "file": file, "line": line, "column": column, "label": d.label, "help": d.help })
        })
        .collect()
}
