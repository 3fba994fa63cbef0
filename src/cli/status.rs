//! `drplan status [RUN]`: runs and their state; one run step by step.

use super::session;
use super::{Failure, Global};
use crate::journal::RunStore;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show this run step by step (default: list every run).
    pub run: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: super::validate::Format,
}

pub(super) fn run(args: Args, global: &Global) -> Result<(), Failure> {
    let json = matches!(args.format, super::validate::Format::Json);
    let store = session::store(global)?;
    let Some(run) = args.run else {
        return list(&*store, json);
    };
    let (id, plan, state, _) = session::open(&*store, &run)?;
    if !state.started {
        if json {
            let out =
                json!({ "run": id.to_string(), "status": state.status(), "why": NEVER_STARTED });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        } else {
            println!("run {id}: refused — {NEVER_STARTED}; nothing ran and it cannot be resumed");
        }
        return Ok(());
    }
    let graph = plan.graph()?;
    let mut rows = Vec::new();
    for step in graph.steps() {
        let word = crate::evidence::state_word(&state, &step.id);
        rows.push((
            step.id.clone(),
            word,
            state.durations_ms.get(&step.id).copied(),
        ));
    }
    if json {
        let steps: Vec<_> = rows
            .iter()
            .map(|(id, w, ms)| json!({ "step": id, "state": w, "duration_ms": ms }))
            .collect();
        let out = json!({ "run": id.to_string(), "plan": state.plan, "site": state.site, "status": state.status(), "started_at": state.started_at, "steps": steps });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    println!(
        "run {id}: plan {} on site {} — {} (started {})",
        state.plan,
        state.site,
        state.status().as_str(),
        state.started_at
    );
    if let Some((check, e)) = &state.refused {
        println!("  refused before step one by `{check}`: {}", e.message);
    }
    for (step, word, ms) in rows {
        let took = ms
            .map(|m| format!("  {:.2}s", m as f64 / 1000.0))
            .unwrap_or_default();
        println!("  {step:<32} {word}{took}");
    }
    if let Some(at) = &state.rollback_stopped_at {
        println!("  rollback stopped at {at} (point of no return)");
    }
    Ok(())
}

/// Why a run directory without `run_started` is not a run.
const NEVER_STARTED: &str = "never started: refused before its first journal record";

fn list(store: &dyn RunStore, json: bool) -> Result<(), Failure> {
    let runs = store.list_runs()?;
    let mut rows = Vec::new();
    for r in runs {
        let row = match session::open(store, r.id.as_str()) {
            Ok((_, _, state, _)) if !state.started => {
                json!({ "run": r.id.to_string(), "status": state.status(), "why": NEVER_STARTED })
            }
            Ok((_, _, state, _)) => {
                json!({ "run": r.id.to_string(), "plan": state.plan, "site": state.site, "status": state.status(), "started_at": state.started_at })
            }
            Err(_) => json!({ "run": r.id.to_string(), "status": "unreadable" }),
        };
        rows.push(row);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else if rows.is_empty() {
        println!("no runs in {}", store.describe());
    } else {
        for r in rows {
            let what = match r["why"].as_str() {
                Some(why) => format!("({why})"),
                None => format!(
                    "{} on {}",
                    r["plan"].as_str().unwrap_or("?"),
                    r["site"].as_str().unwrap_or("?")
                ),
            };
            println!(
                "{}  {:<12} {what}",
                r["run"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}
