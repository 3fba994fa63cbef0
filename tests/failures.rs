//! What an operator reads when a command refuses or a run cannot go on, exactly as shown
//! (times, run ids and paths normalised), and the exit code that goes with it: each failure
//! names what happened, says what to do (the commands to copy on lines of their own), and
//! keeps its code.

mod common;

use common::local::{Site, logging_step};
use std::fs;

/// Run `args` on the site, expect exit code `code`, and snapshot stderr as `name`.
fn refused(s: &Site, args: &[&str], code: i32, name: &str) {
    let a = s.drplan().args(args).assert().code(code);
    snapshot_stderr!(s, a, name);
}

/// A run of `first` then `boom` (which fails): paused.
fn paused_run(s: &Site) -> String {
    let steps = logging_step("first", &[], "")
        + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [first]\n";
    let plan = s.plan(&steps);
    s.apply(&plan, &[]).code(1);
    s.run_id()
}

#[test]
fn a_misspelt_step_gets_the_closest_one() {
    let s = Site::new();
    let run = paused_run(&s);
    refused(
        &s,
        &["resume", &run, "--skip", "bom"],
        2,
        "resume_misspelt_step",
    );
    refused(
        &s,
        &["resume", &run, "--retry", "zzz"],
        2,
        "resume_unknown_step",
    );
}

#[test]
fn what_cannot_be_resumed_or_rolled_back_says_why_and_where_to_look() {
    let s = Site::new();
    let run = paused_run(&s);
    refused(
        &s,
        &["rollback", &run, "--assume-done", "first"],
        2,
        "rollback_step_not_in_doubt",
    );
    s.drplan().args(["rollback", &run]).assert().success();
    refused(&s, &["resume", &run], 2, "resume_rolled_back_run");
    refused(&s, &["rollback", &run], 2, "rollback_rolled_back_run");
}

/// A crash while `first` ran leaves it in doubt: `exec` is not safe to repeat, so resume
/// and rollback both ask the operator, naming the commands that settle it.
#[test]
fn a_step_left_in_doubt_asks_the_operator() {
    let s = Site::new();
    // `first` has an undo hook that is not safe to run blindly either.
    let undo = "    rollback: { action: exec, with: { argv: [\"true\"] } }\n";
    let plan = s.plan(&(logging_step("first", &[], undo) + &logging_step("then", &["first"], "")));
    let crashed = s
        .apply_process(&plan, &[])
        .env("DRPLAN_CRASH_AFTER_RECORD", "step_started:first")
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&crashed.status),
        Some(9)
    );
    let run = s.run_id();
    refused(&s, &["resume", &run], 1, "resume_in_doubt");
    refused(&s, &["rollback", &run], 1, "rollback_in_doubt");
    refused(
        &s,
        &[
            "rollback",
            &run,
            "--assume-done",
            "first",
            "--assume-not-run",
            "first",
        ],
        2,
        "rollback_assumed_both",
    );
}

#[test]
fn a_refused_precondition_says_nothing_changed_and_what_next() {
    let s = Site::new();
    let plan = s.guarded_plan(
        "  - { name: the flag file exists, on: a, check: file.stat, with: { path: \"{{ vars.dir }}/flag\" }, expect: result.exists }\n",
        &logging_step("change", &[], ""),
    );
    refused(
        &s,
        &[
            "apply",
            plan.to_str().unwrap(),
            "--site",
            s.path("site.yaml").to_str().unwrap(),
            "--yes",
        ],
        3,
        "precondition_refused",
    );
    assert_eq!(s.read("log"), "", "nothing ran");
}

#[test]
fn refusals_before_a_run_exists() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let (plan, site) = (plan.to_str().unwrap(), s.path("site.yaml"));
    let site = site.to_str().unwrap();
    refused(
        &s,
        &["apply", plan, "--site", site],
        2,
        "apply_not_on_a_terminal",
    );
    refused(&s, &["apply", plan, "--yes"], 2, "apply_not_a_saved_plan");
    refused(
        &s,
        &["apply", plan, "--yes", "--param", "x=1"],
        2,
        "apply_saved_plan_with_params",
    );
    // The site's secret, which the step uses, comes from an environment variable that is
    // not set.
    let uses_secret = s.plan(
        "  - id: use\n    on: a\n    action: exec\n    with: { argv: [echo, \"{{ secrets.token }}\"] }\n",
    );
    let a = s
        .drplan()
        .env_remove("DRPLAN_TEST_TOKEN")
        .args([
            "apply",
            uses_secret.to_str().unwrap(),
            "--site",
            site,
            "--yes",
        ])
        .assert()
        .code(2);
    snapshot_stderr!(s, a, "apply_missing_secret");
    assert!(!s.path("state/runs").exists(), "no run was created");
}

#[test]
fn validate_json_counts_the_errors_it_listed() {
    let s = Site::new();
    let plan = s.path("bad.yaml");
    fs::write(
        &plan,
        "version: 1\nname: bad\nroles: [a]\nsteps:\n  - { id: x, on: b, action: nope }\n",
    )
    .unwrap();
    let a = s
        .drplan()
        .args(["validate", plan.to_str().unwrap(), "--format", "json"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("2 errors, listed in the JSON report"),
        "{stderr}"
    );
}

#[test]
fn check_with_checks_that_are_neither_a_file_nor_shipped_names_the_shipped_ones() {
    let s = Site::new();
    let site = s.path("site.yaml");
    let a = s
        .drplan()
        .current_dir(s.path(""))
        .args([
            "check",
            "--site",
            site.to_str().unwrap(),
            "--checks",
            "gocd/readyness",
        ])
        .assert()
        .code(2);
    snapshot_stderr!(s, a, "check_unknown_checks");
}

#[test]
fn a_run_that_rolled_back_or_whose_rollback_paused_says_what_next() {
    let s = Site::new();
    // `first` is undone by a hook that fails; `boom` fails.
    let undo = "    rollback: { action: exec, with: { argv: [\"false\"] } }\n";
    let steps = logging_step("first", &[], undo)
        + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [first]\n";
    let plan = s.plan(&steps);
    s.apply(&plan, &[]).code(1);
    let run = s.run_id();
    refused(&s, &["rollback", &run], 1, "rollback_paused");

    let s = Site::new();
    let plan = s.plan(&(logging_step("first", &[], "") + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [first]\n"));
    let a = s.apply(&plan, &["--on-failure", "rollback"]).code(1);
    snapshot_stderr!(s, a, "rolled_back");
}

/// Killed right after its rollback started: the run is being rolled back, and only
/// `rollback` continues it.
#[test]
fn a_run_being_rolled_back_is_continued_by_rollback() {
    let s = Site::new();
    let run = paused_run(&s);
    let crashed = s
        .process()
        .args(["rollback", &run])
        .env("DRPLAN_CRASH_AFTER_RECORD", "1")
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&crashed.status),
        Some(9)
    );
    refused(&s, &["resume", &run], 2, "resume_rolling_back");
}

#[test]
fn a_preview_that_cannot_be_saved_says_why() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let out = s.path("no-such-dir/saved.json");
    refused(
        &s,
        &[
            "plan",
            plan.to_str().unwrap(),
            "--site",
            s.path("site.yaml").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
        2,
        "plan_out_unwritable",
    );
}
