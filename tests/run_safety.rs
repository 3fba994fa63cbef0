//! The executor's edges, through the real binary on local-transport hosts: preconditions
//! are part of the record, a refused start leaves nothing to resume, expressions are
//! strict, rollback settles steps left in doubt, signals stop retries, what runs is what
//! was hashed, and secrets are redacted on every way out.

mod common;

use common::local::{Site, TOKEN, logging_step, out};
use std::fs;
use std::os::unix::process::ExitStatusExt;

/// A precondition that holds only once `flag` exists next to the site.
const FLAG: &str = "  - name: the flag file exists\n    on: a\n    check: file.stat\n    with: { path: \"{{ vars.dir }}/flag\" }\n    expect: result.exists\n";

#[test]
fn a_run_killed_during_its_preconditions_checks_them_again_when_resumed() {
    let s = Site::new();
    fs::write(s.path("flag"), "").unwrap();
    let plan = s.guarded_plan(FLAG, &logging_step("change", &[], ""));
    // Killed right after `run_started`: the preconditions were being checked.
    let crashed = s
        .apply_process(&plan, &[])
        .env("DRPLAN_CRASH_AFTER_RECORD", "1")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9));
    let run = s.run_id();
    assert!(!s.journal(&run).contains("preconditions_passed"));
    // The site changed meanwhile: the precondition no longer holds.
    fs::remove_file(s.path("flag")).unwrap();
    let a = s.drplan().args(["resume", &run]).assert().code(3);
    assert!(out(&a).contains("the flag file exists"), "{}", out(&a));
    assert_eq!(
        s.read("log"),
        "",
        "resume must not run a step its preconditions refuse"
    );
}

#[test]
fn passed_preconditions_are_journaled_with_what_they_saw_and_not_checked_again() {
    let s = Site::new();
    fs::write(s.path("flag"), "").unwrap();
    let steps = logging_step("one", &[], "") + &logging_step("two", &["one"], "");
    let plan = s.guarded_plan(FLAG, &steps);
    // Killed after `one` finished (run_started, preconditions_passed, started,
    // command_started, finished).
    let crashed = s
        .apply_process(&plan, &["--parallel", "1"])
        .env("DRPLAN_CRASH_AFTER_RECORD", "5")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9));
    let run = s.run_id();
    let journal = s.journal(&run);
    let passed = journal
        .lines()
        .find(|l| l.contains("preconditions_passed"))
        .expect("preconditions_passed is journaled");
    assert!(
        passed.contains("the flag file exists") && passed.contains("\"exists\":true"),
        "{passed}"
    );
    // A promote makes a failover's preconditions false; once passed they are history.
    fs::remove_file(s.path("flag")).unwrap();
    s.drplan().args(["resume", &run]).assert().success();
    assert_eq!(s.read("log"), "one\ntwo\n");
}

#[test]
fn a_start_refused_for_a_missing_secret_leaves_nothing_to_resume() {
    let s = Site::new();
    let step = "  - id: uses-secret\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'echo ran >> \"$1\"', _, \"{{ vars.dir }}/log\"], env: { T: \"{{ secrets.token }}\" } }\n";
    let plan = s.plan(step);
    let a = s
        .apply_process(&plan, &[])
        .env_remove("DRPLAN_TEST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(a.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&a.stderr).contains("DRPLAN_TEST_TOKEN"));
    let runs = fs::read_dir(s.path("state/runs"))
        .map(std::iter::Iterator::count)
        .unwrap_or(0);
    assert_eq!(runs, 0, "a refused start creates no run");
    assert_eq!(s.read("log"), "");
}

#[test]
fn a_template_that_cannot_render_refuses_the_start() {
    let s = Site::new();
    // Only the real secret shows that this cannot render: validation sees `(sensitive)`.
    let steps = logging_step("first", &[], "")
        + "  - id: later\n    on: a\n    action: exec\n    needs: [first]\n    with: { argv: [echo, \"{{ secrets.token | int + 1 }}\"] }\n";
    let plan = s.plan(&steps);
    let a = s.apply(&plan, &[]).code(2);
    assert!(out(&a).contains("step `later`"), "{}", out(&a));
    assert_eq!(s.read("log"), "", "the first step must not run");
    assert!(
        fs::read_dir(s.path("state/runs"))
            .map(std::iter::Iterator::count)
            .unwrap_or(0)
            == 0
    );
}

#[test]
fn a_run_directory_without_run_started_is_refused_and_never_resumable() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    s.apply(&plan, &[]).success();
    let run = s.run_id();
    // What a crash between creating the run and its first record leaves behind.
    let orphan = format!("{}0", &run[..run.len() - 1]);
    let orphan = if orphan == run {
        format!("{}1", &run[..run.len() - 1])
    } else {
        orphan
    };
    let dir = s.path(&format!("state/runs/{orphan}"));
    fs::create_dir(&dir).unwrap();
    fs::copy(
        s.path(&format!("state/runs/{run}/plan.json")),
        dir.join("plan.json"),
    )
    .unwrap();
    fs::write(dir.join("journal.jsonl"), "").unwrap();
    let listed = s.drplan().arg("status").assert().success();
    let line = out(&listed)
        .lines()
        .find(|l| l.starts_with(&orphan))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("refused") && line.contains("never started"),
        "{line}"
    );
    let a = s.drplan().args(["resume", &orphan]).assert().code(2);
    assert!(out(&a).contains("cannot be resumed"), "{}", out(&a));
    assert_eq!(s.read("log"), "one\n", "nothing ran again");
}

#[test]
fn ordering_against_a_null_value_fails_the_check_instead_of_passing() {
    let s = Site::new();
    // `size` is null for a missing file; none used to sort below every number.
    let check = "  - name: the file is not larger than zero\n    on: a\n    check: file.stat\n    with: { path: \"{{ vars.dir }}/missing\" }\n    expect: 0 >= result.size\n";
    let plan = s.guarded_plan(check, &logging_step("change", &[], ""));
    let a = s.apply(&plan, &[]).code(3);
    let text = out(&a);
    assert!(text.contains("`result.size` (none)"), "{text}");
    assert_eq!(s.read("log"), "");
}

/// A rollback hook that appends `undo` to `log` (exec: not idempotent).
const UNDO_TO_LOG: &str =
    "{ action: exec, with: { argv: [sh, -c, 'echo undo >> \"$1\"', _, \"{{ vars.dir }}/log\"] } }";

/// One step that writes `ran` and is undone by appending `undo` (exec: not idempotent),
/// killed right after its start is journaled: it is in doubt.
fn in_doubt_run(s: &Site, hook: &str) -> String {
    let step = format!(
        "  - id: one\n    on: a\n    action: exec\n    with: {{ argv: [sh, -c, 'echo ran >> \"$1\"', _, \"{{{{ vars.dir }}}}/log\"] }}\n    rollback: {hook}\n"
    );
    let plan = s.plan(&step);
    let crashed = s
        .apply_process(&plan, &[])
        .env("DRPLAN_CRASH_AFTER_RECORD", "3")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9));
    s.run_id()
}

#[test]
fn rollback_will_not_guess_about_a_step_in_doubt_with_a_hook_that_is_not_idempotent() {
    let s = Site::new();
    let hook = UNDO_TO_LOG;
    let run = in_doubt_run(&s, hook);
    let a = s.drplan().args(["rollback", &run]).assert().code(1);
    let text = out(&a);
    assert!(
        text.contains("one") && text.contains("--assume-done"),
        "{text}"
    );
    assert_eq!(s.read("log"), "", "nothing was undone blindly");
    assert!(!s.journal(&run).contains("rollback_started"));
    // The operator looked: it did run. Its hook runs, and the decision is journaled.
    s.drplan()
        .args(["rollback", &run, "--assume-done", "one"])
        .assert()
        .success();
    assert_eq!(s.read("log"), "undo\n");
    assert!(s.journal(&run).contains("assume_done"));
}

#[test]
fn rollback_runs_the_idempotent_hook_of_a_step_in_doubt_first() {
    let s = Site::new();
    let hook =
        "{ action: file.write, with: { path: \"{{ vars.dir }}/undone\", content: \"yes\\n\" } }";
    let run = in_doubt_run(&s, hook);
    s.drplan().args(["rollback", &run]).assert().success();
    assert_eq!(s.read("undone"), "yes\n");
    let status = s.drplan().args(["status", &run]).assert().success();
    assert!(out(&status).contains("rolled back"), "{}", out(&status));
}

#[test]
fn assume_not_run_settles_a_step_in_doubt_without_undoing_it() {
    let s = Site::new();
    let hook = UNDO_TO_LOG;
    let run = in_doubt_run(&s, hook);
    let wrong = s
        .drplan()
        .args(["rollback", &run, "--assume-done", "nope"])
        .assert()
        .code(2);
    assert!(out(&wrong).contains("no step `nope`"), "{}", out(&wrong));
    s.drplan()
        .args(["rollback", &run, "--assume-not-run", "one"])
        .assert()
        .success();
    assert_eq!(s.read("log"), "");
    assert!(s.journal(&run).contains("assume_not_run"));
}

#[test]
fn a_signal_stops_retries() {
    let s = Site::new();
    let step = "  - id: flaky\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'echo try >> \"$1\"; exit 1', _, \"{{ vars.dir }}/log\"] }\n    retries: 50\n    retry_delay: 1s\n";
    let plan = s.plan(step);
    let mut child = s.apply_process(&plan, &[]).spawn().unwrap();
    // Wait for the second attempt: the run is then waiting to retry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.read("log").lines().count() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let tries = s.read("log").lines().count();
    assert!(
        tries <= 3,
        "{tries} attempts: none may start after the signal"
    );
}

#[test]
fn an_edited_run_plan_or_a_borrowed_journal_is_refused() {
    let s = Site::new();
    let plan = s.plan(&(logging_step("one", &[], "") + &logging_step("two", &["one"], "")));
    // Killed after `one` finished (its started, command_started and finished records).
    let crashed = s
        .apply_process(&plan, &["--parallel", "1"])
        .env("DRPLAN_CRASH_AFTER_RECORD", "5")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9));
    let run = s.run_id();
    let plan_json = s.path(&format!("state/runs/{run}/plan.json"));
    let original = fs::read_to_string(&plan_json).unwrap();
    // The text changed, its hash left alone: the edited text must never run.
    fs::write(&plan_json, original.replace("echo", "touch")).unwrap();
    let a = s.drplan().args(["resume", &run]).assert().code(2);
    assert!(
        out(&a).contains("does not match its sha-256"),
        "{}",
        out(&a)
    );
    fs::write(&plan_json, &original).unwrap();
    // Another run's journal pasted in: its records are not this run's.
    let other = Site::new();
    let other_plan = other.plan(&logging_step("one", &[], ""));
    other.apply(&other_plan, &[]).success();
    let borrowed = other.journal(&other.run_id());
    fs::write(s.path(&format!("state/runs/{run}/journal.jsonl")), borrowed).unwrap();
    let a = s.drplan().args(["resume", &run]).assert().code(2);
    assert!(out(&a).contains("belongs to another run"), "{}", out(&a));
    assert_eq!(s.read("log"), "one\n");
}

#[test]
fn an_edited_saved_plan_is_refused() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], ""));
    let saved = s.path("saved.json");
    s.drplan()
        .args(["plan"])
        .arg(&plan)
        .arg("--site")
        .arg(s.path("site.yaml"))
        .arg("--out")
        .arg(&saved)
        .assert()
        .success();
    let text = fs::read_to_string(&saved).unwrap();
    fs::write(&saved, text.replace("echo", "touch")).unwrap();
    let a = s
        .drplan()
        .args(["apply", "--yes"])
        .arg(&saved)
        .assert()
        .code(2);
    assert!(
        out(&a).contains("does not match its sha-256"),
        "{}",
        out(&a)
    );
    assert_eq!(s.read("log"), "");
}

#[test]
fn a_failing_rollback_hook_does_not_carry_a_secret_out() {
    let s = Site::new();
    let hook = "    rollback: { action: exec, with: { argv: [sh, -c, 'echo \"bad $1\" >&2; exit 1', _, \"{{ secrets.token }}\"] } }\n";
    let steps = logging_step("one", &[], hook)
        + "  - id: boom\n    on: a\n    action: exec\n    with: { argv: [\"false\"] }\n    needs: [one]\n";
    let plan = s.plan(&steps);
    let a = s
        .apply(&plan, &["--on-failure", "rollback", "--format", "json"])
        .code(1);
    let text = out(&a);
    assert!(text.contains("compensation_finished"), "{text}");
    assert!(!text.contains(TOKEN), "secret in the output: {text}");
    let journal = s.journal(&s.run_id());
    assert!(
        journal.contains("compensation_finished") && journal.contains("bad (sensitive)"),
        "{journal}"
    );
    assert!(!journal.contains(TOKEN), "secret in the journal: {journal}");
}

#[test]
fn retries_have_a_sane_maximum() {
    let s = Site::new();
    let plan = s.plan(&logging_step("one", &[], "    retries: 4294967295\n"));
    let a = s.drplan().arg("validate").arg(&plan).assert().code(2);
    assert!(
        out(&a).contains("greater than the maximum of 100"),
        "{}",
        out(&a)
    );
}

/// A DOT line without its quoted strings (a `\"` inside one does not end it), and whether
/// every string it opens is closed.
fn outside_quotes(line: &str) -> (String, bool) {
    let (mut out, mut inside, mut escaped) = (String::new(), false, false);
    for c in line.chars() {
        match c {
            '\\' if inside && !escaped => escaped = true,
            '"' if !escaped => inside = !inside,
            _ if !inside => out.push(c),
            _ => escaped = false,
        }
    }
    (out, !inside)
}

#[test]
fn graph_output_cannot_be_hijacked_by_names() {
    let s = Site::new();
    let hostile = "evil\\\" ]; x -> y [label=\\\"pwned <script>#x";
    let text = format!(
        "version: 1\nname: \"{hostile}\"\nroles: [a]\nsteps:\n  - id: one\n    name: \"{hostile}\"\n    on: a\n    action: exec\n    with: {{ argv: [\"true\"] }}\n  - id: two\n    name: \"back\\\\slash\"\n    on: a\n    action: exec\n    with: {{ argv: [\"true\"] }}\n    needs: [one]\n"
    );
    let plan = s.path("hostile.yaml");
    fs::write(&plan, text).unwrap();
    let render = |format: &str| {
        let a = s
            .drplan()
            .arg("plan")
            .arg(&plan)
            .arg("--site")
            .arg(s.path("site.yaml"))
            .args(["--format", format])
            .assert()
            .success();
        String::from_utf8_lossy(&a.get_output().stdout).into_owned()
    };
    let dot = render("dot");
    let mut edges = 0;
    for line in dot.lines() {
        let (bare, closed) = outside_quotes(line);
        assert!(closed, "a quote escapes its string: {line}");
        edges += bare.matches("->").count();
    }
    assert_eq!(edges, 1, "exactly the one real edge: {dot}");
    let mermaid = render("mermaid");
    assert!(
        !mermaid.contains("<script>") && !mermaid.contains("pwned\""),
        "{mermaid}"
    );
    assert_eq!(mermaid.matches("-->").count(), 1, "{mermaid}");
}

#[test]
fn control_characters_from_a_host_are_shown_escaped() {
    let s = Site::new();
    // A failing command that writes a terminal escape (clear screen) to stderr.
    let step = "  - id: loud\n    on: a\n    action: exec\n    with: { argv: [sh, -c, 'printf \"\\033[2J\\033]0;owned\\007boom\" >&2; exit 1'] }\n";
    let plan = s.plan(step);
    let a = s.apply(&plan, &[]).code(1);
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(stdout.contains("boom"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(stdout.contains("\\u{1b}[2J"), "{stdout}");
}

#[test]
fn reads_are_bounded_and_bad_bytes_are_located() {
    let s = Site::new();
    let started = std::time::Instant::now();
    let a = s.drplan().args(["validate", "/dev/zero"]).assert().code(2);
    assert!(out(&a).contains("larger than 16 MiB"), "{}", out(&a));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let bad = s.path("bad.yaml");
    fs::write(&bad, b"version: 1\nname: \xff\n").unwrap();
    let a = s.drplan().arg("validate").arg(&bad).assert().code(2);
    assert!(out(&a).contains("bad.yaml:2:7: not UTF-8"), "{}", out(&a));
}

#[test]
fn a_secret_the_plan_never_reads_is_not_required() {
    let s = Site::new();
    // The site declares `token`; this plan never reads it.
    let plan = s.plan(&logging_step("one", &[], ""));
    let a = s
        .apply_process(&plan, &[])
        .env_remove("DRPLAN_TEST_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(s.read("log"), "one\n");
}

/// A journal written before records carried milliseconds (`"at":"2026-11-25T20:34:56Z"`)
/// still reads and resumes: the run's state, `status` and the rest of the run are as if this
/// drplan had written it.
#[test]
fn a_journal_with_whole_second_times_still_resumes() {
    use sha2::{Digest, Sha256};
    let s = Site::new();
    let plan = s.plan(&(logging_step("one", &[], "") + &logging_step("two", &["one"], "")));
    // Killed after `one` finished: its run_started … step_finished are on disk.
    let crashed = s
        .apply_process(&plan, &["--parallel", "1"])
        .env("DRPLAN_CRASH_AFTER_RECORD", "step_finished:one")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9));
    let run = s.run_id();
    let path = s.path(&format!("state/runs/{run}/journal.jsonl"));
    let mut old = String::new();
    for line in fs::read_to_string(&path).unwrap().lines() {
        let mut line: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = line["record"]["at"].as_str().unwrap().to_owned();
        assert_eq!(at.len(), "2026-11-25T20:34:56.789Z".len(), "{at}");
        line["record"]["at"] = format!("{}Z", &at[..19]).into();
        let record = serde_json::to_string(&line["record"]).unwrap();
        let sum: String = Sha256::digest(record.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        line["sha256"] = sum.into();
        old.push_str(&serde_json::to_string(&line).unwrap());
        old.push('\n');
    }
    assert!(
        old.contains("\"at\":\"20") && !old.contains(".000Z"),
        "{old}"
    );
    fs::write(&path, old).unwrap();
    let status = out(&s.drplan().args(["status", &run]).assert().success());
    assert!(status.contains("(started 20"), "{status}");
    assert!(
        status.contains("one") && status.contains("done"),
        "{status}"
    );
    s.drplan().args(["resume", &run]).assert().success();
    assert_eq!(s.read("log"), "one\ntwo\n");
}
