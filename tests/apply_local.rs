//! `apply`, `resume`, `rollback` and `status` through the real binary on local-transport
//! hosts: real processes and files on this machine, no SSH. What an operator sees: exit
//! codes, messages, and the files the steps leave behind.

mod common;

use common::local::{Site, logging_step, out};
use std::fs;

#[test]
fn parallel_branches_really_overlap() {
    let s = Site::new();
    let span = |id: &str| {
        format!(
            "  - id: {id}\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'date +%s%N > \"$1\"; sleep 0.6; date +%s%N > \"$2\"', _, \"{{{{ vars.dir }}}}/{id}.start\", \"{{{{ vars.dir }}}}/{id}.end\"] }}\n"
        )
    };
    let plan = s.plan(&(span("left") + &span("right")));
    s.apply(&plan, &[]).success();
    let t = |f: &str| s.read(f).trim().parse::<u128>().unwrap();
    assert!(
        t("left.start") < t("right.end") && t("right.start") < t("left.end"),
        "the two branches ran at the same time"
    );
}

#[test]
fn a_failed_step_pauses_the_run_and_says_how_to_go_on() {
    let s = Site::new();
    let steps = logging_step("first", &[], "")
        + "  - id: check-ready\n    on: b\n    action: exec\n    with: { argv: [sh, -c, 'test -f \"$1\" || { echo \"not ready: $1\" >&2; exit 7; }', _, \"{{ vars.dir }}/ready\"] }\n    needs: [first]\n"
        + &logging_step("after", &["check-ready"], "");
    let plan = s.plan(&steps);
    let a = s.apply(&plan, &[]).code(1);
    let text = out(&a);
    let run = s.run_id();
    assert!(text.contains("check-ready failed on b (local)"), "{text}");
    assert!(
        text.contains("exit status: 7") && text.contains("not ready:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("drplan resume {run}"))
            && text.contains(&format!("drplan rollback {run}")),
        "{text}"
    );
    assert_eq!(s.read("log"), "first\n", "the dependant did not run");
    let status = out(&s.drplan().args(["status", &run]).assert().success());
    assert!(
        status.contains("paused") && status.contains("check-ready") && status.contains("failed"),
        "{status}"
    );

    // The operator fixes the cause and resumes: finished steps are not run again.
    fs::write(s.path("ready"), "").unwrap();
    s.drplan().args(["resume", &run]).assert().success();
    assert_eq!(s.read("log"), "first\nafter\n");
}

#[test]
fn rollback_undoes_newest_first_and_stops_at_the_point_of_no_return() {
    let s = Site::new();
    let undo = |id: &str| {
        format!(
            "    rollback: {{ action: exec, with: {{ argv: [sh, -c, 'echo \"undo $1\" >> \"$2\"', _, {id}, \"{{{{ vars.dir }}}}/log\"] }} }}\n"
        )
    };
    let steps = logging_step("one", &[], &undo("one"))
        + &logging_step(
            "ponr",
            &["one"],
            &format!("{}    point_of_no_return: true\n", undo("ponr")),
        )
        + &logging_step("two", &["ponr"], &undo("two"))
        + &logging_step("three", &["two"], &undo("three"))
        + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [three]\n";
    let plan = s.plan(&steps);
    let a = s.apply(&plan, &["--on-failure", "rollback"]).code(1);
    assert!(out(&a).contains("rolled back"), "{}", out(&a));
    assert_eq!(
        s.read("log"),
        "one\nponr\ntwo\nthree\nundo three\nundo two\n"
    );
}

#[test]
fn explicit_rollback_of_a_paused_run() {
    let s = Site::new();
    let undo = |id: &str| {
        format!(
            "    rollback: {{ action: exec, with: {{ argv: [sh, -c, 'echo \"undo $1\" >> \"$2\"', _, {id}, \"{{{{ vars.dir }}}}/log\"] }} }}\n"
        )
    };
    let steps = logging_step("one", &[], &undo("one"))
        + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [one]\n";
    let plan = s.plan(&steps);
    s.apply(&plan, &[]).code(1);
    let run = s.run_id();
    s.drplan().args(["rollback", &run]).assert().success();
    assert_eq!(s.read("log"), "one\nundo one\n");
    let status = out(&s.drplan().args(["status", &run]).assert().success());
    assert!(status.contains("rolled back"), "{status}");
}

#[test]
fn a_plan_precondition_refuses_before_anything_changes() {
    let s = Site::new();
    let text = format!(
        "version: 1\nname: guarded\nroles: [a]\npreconditions:\n  - name: the flag file exists\n    on: a\n    check: file.stat\n    with: {{ path: \"{{{{ vars.dir }}}}/flag\" }}\n    expect: result.exists\nsteps:\n{}",
        logging_step("change", &[], "")
    );
    let plan = s.path("guarded.yaml");
    fs::write(&plan, text).unwrap();
    let a = s.apply(&plan, &[]).code(3);
    assert!(out(&a).contains("the flag file exists"), "{}", out(&a));
    assert_eq!(s.read("log"), "", "nothing ran");
}

#[test]
fn a_step_precondition_stops_the_step_with_the_values_that_failed() {
    let s = Site::new();
    let steps = logging_step(
        "guarded",
        &[],
        "    preconditions:\n      - { name: the flag file exists, on: b, check: file.stat, with: { path: \"{{ vars.dir }}/flag\" }, expect: result.exists }\n",
    );
    let plan = s.plan(&steps);
    let a = s.apply(&plan, &[]).code(3);
    snapshot_stderr!(s, a, "step_refused");
    let text = out(&a);
    assert!(
        text.contains("the flag file exists") && text.contains("\"exists\":false"),
        "{text}"
    );
    assert_eq!(s.read("log"), "");
}

#[test]
fn a_second_apply_on_the_same_site_exits_4_naming_the_holder() {
    let s = Site::new();
    let plan = s.plan("  - id: slow\n    on: a\n    action: sleep\n    with: { duration: 3s }\n");
    let mut first = s.apply_process(&plan, &["-q"]).spawn().unwrap();
    // Wait until the first run holds the lock (its run directory exists).
    let t0 = std::time::Instant::now();
    while !s.path("state/runs").exists() && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let a = s.apply(&plan, &[]).code(4);
    let text = out(&a);
    assert!(
        text.contains("is locked by run") && text.contains(&format!("pid {}", first.id())),
        "{text}"
    );
    assert!(first.wait().unwrap().success());
}

#[test]
fn resume_refuses_a_changed_plan() {
    let s = Site::new();
    let plan = s.plan(&(logging_step("one", &[], "") + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [one]\n"));
    s.apply(&plan, &[]).code(1);
    let run = s.run_id();
    let edited = fs::read_to_string(&plan)
        .unwrap()
        .replace("[\"false\"]", "[\"true\"]");
    fs::write(&plan, edited).unwrap();
    let a = s.drplan().args(["resume", &run]).assert().code(2);
    assert!(
        out(&a).contains("changed since the run started"),
        "{}",
        out(&a)
    );
}

#[test]
fn a_stale_saved_plan_is_refused() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let saved = s.path("saved.json");
    s.drplan()
        .args([
            "plan",
            plan.to_str().unwrap(),
            "--site",
            s.path("site.yaml").to_str().unwrap(),
            "--out",
            saved.to_str().unwrap(),
            "-q",
        ])
        .assert()
        .success();
    // Unchanged: it applies.
    s.drplan()
        .args(["apply", saved.to_str().unwrap(), "--yes"])
        .assert()
        .success();
    fs::write(&plan, fs::read_to_string(&plan).unwrap() + "\n# edited\n").unwrap();
    let a = s
        .drplan()
        .args(["apply", saved.to_str().unwrap(), "--yes"])
        .assert()
        .code(2);
    assert!(out(&a).contains("stale"), "{}", out(&a));
}

#[test]
fn apply_without_a_terminal_needs_yes() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let a = s
        .drplan()
        .arg("apply")
        .arg(&plan)
        .arg("--site")
        .arg(s.path("site.yaml"))
        .assert()
        .code(2);
    assert!(out(&a).contains("--yes"), "{}", out(&a));
    assert_eq!(s.read("log"), "");
}

#[test]
fn secrets_never_reach_the_output_or_the_journal() {
    let s = Site::new();
    let plan = s.plan(
        "  - id: use-secret\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'echo \"token is $1\"; echo \"$1\" > \"$2\"', _, \"{{ secrets.token }}\", \"{{ vars.dir }}/used\"] }\n",
    );
    let a = s.apply(&plan, &["--format", "json"]).success();
    assert_eq!(
        s.read("used"),
        "s3cr3t-t0ken\n",
        "the step got the real value"
    );
    assert!(!out(&a).contains("s3cr3t-t0ken"), "{}", out(&a));
    let run = s.run_id();
    for f in ["journal.jsonl", "plan.json"] {
        let text = fs::read_to_string(s.path(&format!("state/runs/{run}/{f}"))).unwrap();
        assert!(!text.contains("s3cr3t-t0ken"), "{f} holds the secret");
    }
    let journal = fs::read_to_string(s.path(&format!("state/runs/{run}/journal.jsonl"))).unwrap();
    assert!(journal.contains("token is (sensitive)"), "{journal}");
}

#[test]
fn run_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    s.apply(&plan, &[]).success();
    let run = s.run_id();
    let mode = |p: &str| fs::metadata(s.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&format!("state/runs/{run}")), 0o700);
    assert_eq!(mode(&format!("state/runs/{run}/journal.jsonl")), 0o600);
    assert_eq!(mode(&format!("state/runs/{run}/plan.json")), 0o600);
}

#[test]
fn json_output_is_only_json_and_ends_with_run_finished() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let a = s.apply(&plan, &["--format", "json"]).success();
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "succeeded");
}

#[test]
fn resume_keeps_the_runs_failure_handling() {
    let s = Site::new();
    let undo = "    rollback: { action: exec, with: { argv: [sh, -c, 'echo undo >> \"$1\"', _, \"{{ vars.dir }}/log\"] } }\n";
    let plan = s.plan(&(logging_step("one", &[], undo) + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [one]\n"));
    // Killed right after `one` finished (records: run_started, preconditions_passed,
    // step_started, command_started, step_finished); the run was started with
    // --on-failure rollback.
    let crashed = s
        .apply_process(&plan, &["--parallel", "1", "--on-failure", "rollback"])
        .env("DRPLAN_CRASH_AFTER_RECORD", "5")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(crashed.status.signal(), Some(9));
    let run = s.run_id();
    let a = s.drplan().args(["resume", &run]).assert().code(1);
    assert!(out(&a).contains("rolled back"), "{}", out(&a));
    assert_eq!(s.read("log"), "one\nundo\n");
}

#[test]
fn a_run_goes_on_when_its_reader_goes_away() {
    use std::io::BufRead;
    let s = Site::new();
    let plan = s.plan(
        &("  - id: pause\n    on: a\n    action: sleep\n    with: { duration: 300ms }\n"
            .to_string()
            + &logging_step("after", &["pause"], "")),
    );
    let mut child = s
        .apply_process(&plan, &["-v"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then hang up, like `drplan apply … | head -1`.
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("run "), "{first}");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(s.read("log"), "after\n", "the run finished its steps");
}

#[test]
fn a_run_id_that_is_not_one_points_to_status() {
    let s = Site::new();
    let a = s.drplan().args(["resume", "nope"]).assert().code(2);
    let text = out(&a);
    assert!(text.contains("\"nope\" is not a run id"), "{text}");
    assert!(text.contains("`drplan status` lists them"), "{text}");
    assert!(!text.contains("is not a run id: "), "said twice: {text}");
    let a = s
        .drplan()
        .args(["rollback", "20261130T195958.669Z-d372"])
        .assert()
        .code(2);
    assert!(
        out(&a).contains("there is no run 20261130T195958.669Z-d372"),
        "{}",
        out(&a)
    );
}

/// Exactly what an operator reads (times, run ids and the site's directory normalised): the
/// progress of a run that retries a step and pauses, the message that says how to go on,
/// `status` of the run and the list of runs, and the progress of the resumed run.
#[test]
fn progress_and_status_read_as_documented() {
    let s = Site::new();
    let steps = logging_step("first", &[], "")
        + "  - id: check-ready\n    on: b\n    action: exec\n    retries: 1\n    retry_delay: 10ms\n    with: { argv: [sh, -c, 'test -f \"$1\" || { echo \"not ready: $1\" >&2; exit 7; }', _, \"{{ vars.dir }}/ready\"] }\n    needs: [first]\n"
        + &logging_step("after", &["check-ready"], "");
    let plan = s.plan(&steps);
    let paused = s.apply(&plan, &["--parallel", "1"]).code(1);
    let run = s.run_id();
    let stdout = |a: &assert_cmd::assert::Assert| {
        String::from_utf8_lossy(&a.get_output().stdout).into_owned()
    };
    let stderr = String::from_utf8_lossy(&paused.get_output().stderr).into_owned();
    let status = s.drplan().args(["status", &run]).assert().success();
    let list = s.drplan().arg("status").assert().success();
    fs::write(s.path("ready"), "").unwrap();
    let resumed = s.drplan().args(["resume", &run]).assert().success();

    let settings = s.snapshot_settings();
    settings.bind(|| {
        insta::assert_snapshot!("paused_progress", stdout(&paused));
        insta::assert_snapshot!("paused_message", stderr);
        insta::assert_snapshot!("paused_status", stdout(&status));
        insta::assert_snapshot!("status_list", stdout(&list));
        insta::assert_snapshot!("resumed_progress", stdout(&resumed));
    });
}

#[test]
fn counts_read_as_english() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], "    retries: 1\n"));
    let preview = s
        .drplan()
        .arg("plan")
        .arg(&plan)
        .arg("--site")
        .arg(s.path("site.yaml"))
        .assert()
        .success();
    assert!(
        out(&preview).contains("(not idempotent, 1 retry every 1s)"),
        "{}",
        out(&preview)
    );
    let a = s.apply(&plan, &[]).success();
    assert!(out(&a).contains("on site local-"), "{}", out(&a));
    assert!(out(&a).contains(" (1 step)\n"), "{}", out(&a));
}
