//! The layering rule, checked on the source: a lower layer never imports a higher one.
//! The executor and the actions meet only in the step seam (`step.rs`: `Call`,
//! `StepFailure`, the `StepRunner` trait), which imports nothing above it; actions never
//! reach back into the executor or the command line; the plan model is plain data.

use std::fs;
use std::path::{Path, PathBuf};

/// The `.rs` files under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `crate::NAME` a module's files use (`src/NAME/**` or `src/NAME.rs`).
fn imports(module: &str) -> Vec<(String, String)> {
    let mut files = sources(&src().join(module));
    let single = src().join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    assert!(!files.is_empty(), "no source for module {module}");
    let mut found = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices("crate::") {
            for name in names_at(&text[i + 7..]) {
                found.push((name, f.display().to_string()));
            }
        }
    }
    found
}

/// The module names a `crate::` path starts with: `x` in `crate::x::…`, and `x`, `y` in
/// `crate::{x, y::z}` (groups nest no deeper in this code).
fn names_at(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    // Split the group's top level at its commas.
    let (mut depth, mut start, mut names) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                names.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Test modules (`tests.rs`, `*_tests.rs`, `proptests.rs`, `tests/`) build plans from text as
/// a user does, through the checker: they stand above every layer.
fn is_test_code(file: &str) -> bool {
    file.contains("/tests/") || file.ends_with("tests.rs")
}

fn never(module: &str, forbidden: &[&str]) {
    let bad: Vec<String> = imports(module)
        .into_iter()
        .filter(|(name, _)| forbidden.contains(&name.as_str()))
        .map(|(name, file)| format!("{file} imports crate::{name}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{module} must not import {forbidden:?}:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_executor_reaches_hosts_only_through_its_runner() {
    never("exec", &["actions", "transport", "cli"]);
}

#[test]
fn actions_never_reach_back_into_the_executor_or_the_command_line() {
    never("actions", &["exec", "cli"]);
}

fn nothing_of_ours(module: &str) {
    let ours = imports(module);
    assert!(ours.is_empty(), "{module} imports {ours:?}");
}

#[test]
fn what_runs_a_plan_reads_bound_data_not_the_checker() {
    // `ValidPlan`, `BoundPlan` and `HostBinding` are plain data in `plan/`; the checker makes
    // them and nothing beneath the command line calls it again.
    for module in ["graph", "exec", "actions"] {
        let bad: Vec<String> = imports(module)
            .into_iter()
            .filter(|(name, file)| name == "check" && !is_test_code(file))
            .map(|(_, file)| file)
            .collect();
        assert!(bad.is_empty(), "these import crate::check: {bad:?}");
    }
}

#[test]
fn a_group_import_counts_like_a_path() {
    assert_eq!(names_at("check::BoundPlan;"), ["check"]);
    assert_eq!(
        names_at("{check::{self, bind}, plan, load::Document};"),
        ["check", "plan", "load"]
    );
}

#[test]
fn the_step_seam_imports_nothing_above_it() {
    // `process`: what a host says about a command (plain data the transport fills in).
    let above: Vec<(String, String)> = imports("step")
        .into_iter()
        .filter(|(name, _)| name != "process")
        .collect();
    assert!(above.is_empty(), "step imports {above:?}");
}

#[test]
fn events_speak_of_steps_not_of_the_executor() {
    never("events", &["exec", "actions", "transport", "cli"]);
}

#[test]
fn the_plan_model_imports_only_the_document_and_the_secret_placeholder() {
    // `ValidPlan` keeps its `load::Document` (positions for messages); a bound plan's
    // template context shows secrets as `redact::SENSITIVE`.
    let ours: Vec<(String, String)> = imports("plan")
        .into_iter()
        .filter(|(name, _)| name != "load" && name != "redact")
        .collect();
    assert!(ours.is_empty(), "plan imports {ours:?}");
    never("load", &["plan"]);
    never("redact", &["plan"]);
}

#[test]
fn transport_knows_no_plans() {
    never(
        "transport",
        &["plan", "check", "graph", "exec", "actions", "cli"],
    );
}

#[test]
fn readiness_reaches_hosts_only_through_a_runner() {
    never("readiness", &["actions", "transport", "cli"]);
}

#[test]
fn the_clock_imports_nothing_of_ours() {
    nothing_of_ours("clock");
}

/// Argument parsing is the command line's: domain types carry no clap derives (the cli keeps
/// its own small argument enums and converts).
#[test]
fn only_the_command_line_knows_clap() {
    let bad: Vec<String> = sources(&src())
        .into_iter()
        .filter(|p| !p.starts_with(src().join("cli")))
        .filter(|p| fs::read_to_string(p).unwrap().contains("clap::"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "clap outside src/cli: {bad:?}");
}

#[test]
fn the_web_pages_and_the_run_evidence_reach_neither_hosts_nor_files() {
    // The command line hands `serve` a readiness round and the runs (`Probe`, `Runs`).
    for module in ["serve", "evidence"] {
        never(module, &["actions", "transport", "journal", "cli"]);
    }
}
