//! Per-run parameters: `--param NAME=VALUE` and `--params FILE` on `plan` and `apply`,
//! typed against the plan's `params`, shown in the preview, recorded in the run, and used
//! again by `resume`.

mod common;

use common::local::{Site, out};
use std::fs;
use std::os::unix::process::ExitStatusExt;

/// A plan with a string enum and an integer parameter; each step appends them to `log`.
fn plan(s: &Site) -> std::path::PathBuf {
    let step = |id: &str, needs: &str| {
        format!(
            "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'echo \"$1 $2\" >> \"$3\"', _, \"{{{{ params.mode }}}}\", \"{{{{ params.count }}}}\", \"{{{{ vars.dir }}}}/log\"] }}\n{needs}"
        )
    };
    let text = format!(
        "version: 1\nname: knobs\nroles: [a, b]\nparams:\n  mode: {{ type: string, enum: [fast, careful], default: careful }}\n  count: {{ type: integer, default: 1 }}\nsteps:\n{}{}",
        step("one", ""),
        step("two", "    needs: [one]\n")
    );
    let p = s.path("knobs.yaml");
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn param_values_are_typed_shown_and_used() {
    let s = Site::new();
    let plan = plan(&s);
    let preview = s
        .drplan()
        .arg("plan")
        .arg(&plan)
        .arg("--site")
        .arg(s.path("site.yaml"))
        .args(["--param", "mode=fast", "--param", "count=3"])
        .assert()
        .success();
    let text = out(&preview);
    assert!(
        text.contains("mode = fast") && text.contains("count = 3"),
        "{text}"
    );
    s.apply(&plan, &["--param", "mode=fast", "--param", "count=3"])
        .success();
    assert_eq!(s.read("log"), "fast 3\nfast 3\n");
}

#[test]
fn a_params_file_is_read_and_param_wins_over_it() {
    let s = Site::new();
    let plan = plan(&s);
    fs::write(s.path("p.yaml"), "mode: fast\ncount: 7\n").unwrap();
    let params = s.path("p.yaml");
    let params = params.to_str().unwrap();
    s.apply(&plan, &["--params", params, "--param", "count=8"])
        .success();
    assert_eq!(s.read("log"), "fast 8\nfast 8\n");
}

#[test]
fn bad_values_are_refused_before_anything_runs() {
    let s = Site::new();
    let plan = plan(&s);
    for (arg, says) in [
        ("mode=fsat", "did you mean `fast`?"),
        ("count=many", "must be of type integer"),
        ("mood=fast", "has no parameter `mood`"),
        ("mode", "NAME=VALUE"),
    ] {
        let a = s.apply(&plan, &["--param", arg]).code(2);
        assert!(out(&a).contains(says), "--param {arg}: {}", out(&a));
    }
    assert_eq!(s.read("log"), "");
    assert!(
        !s.path("state/runs").exists() || fs::read_dir(s.path("state/runs")).unwrap().count() == 0
    );
}

#[test]
fn resume_runs_with_the_values_the_run_was_given() {
    let s = Site::new();
    let plan = plan(&s);
    // Killed after `one` finished: run_started, preconditions_passed, started, finished.
    let crashed = s
        .apply_process(&plan, &["--parallel", "1", "--param", "mode=fast"])
        .env("DRPLAN_CRASH_AFTER_RECORD", "step_finished:one")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9));
    let run = s.run_id();
    assert!(s.journal(&run).contains("\"params\":{\"mode\":\"fast\"}"));
    s.drplan().args(["resume", &run]).assert().success();
    assert_eq!(s.read("log"), "fast 1\nfast 1\n");
}

#[test]
fn a_saved_plan_keeps_its_parameters() {
    let s = Site::new();
    let plan = plan(&s);
    let saved = s.path("saved.json");
    s.drplan()
        .arg("plan")
        .arg(&plan)
        .arg("--site")
        .arg(s.path("site.yaml"))
        .args(["--param", "count=5", "--out"])
        .arg(&saved)
        .assert()
        .success();
    let a = s
        .drplan()
        .args(["apply", "--yes", "--param", "count=6"])
        .arg(&saved)
        .assert()
        .code(2);
    assert!(
        out(&a).contains("carries its own parameters"),
        "{}",
        out(&a)
    );
    s.drplan()
        .args(["apply", "--yes"])
        .arg(&saved)
        .assert()
        .success();
    assert_eq!(s.read("log"), "careful 5\ncareful 5\n");
}
