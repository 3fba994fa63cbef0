//! `drplan check` through the real binary on local-transport sites: checks on real files of
//! this machine, graded by severity. What an operator (or a monitoring job) sees: exit codes
//! 0/1/2, one line per check, the JSON report, refusals of files that are not checks files,
//! unreachable hosts, redacted secrets, and `--watch`.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// A site with two local hosts, `a` and `b`, and `present` and `present2` files in its dir.
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let site = format!(
            "version: 1\nsite: checked\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\n  b: {{ address: 127.0.0.1, transport: local }}\nvars:\n  dir: {}\nsecrets:\n  token: {{ env: DRPLAN_TEST_TOKEN }}\n",
            dir.path().display()
        );
        fs::write(dir.path().join("site.yaml"), site).unwrap();
        fs::write(dir.path().join("present"), "here\n").unwrap();
        fs::write(dir.path().join("present2"), "here too\n").unwrap();
        Site { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// A checks file with these preconditions and steps.
    fn checks(&self, checks: &str, steps: &str) -> PathBuf {
        let text = format!(
            "version: 1\nname: ready\nroles: [a, b]\npreconditions:\n{checks}steps:{steps}\n"
        );
        let p = self.path("checks.yaml");
        fs::write(&p, text).unwrap();
        p
    }
    fn drplan(&self) -> Command {
        let mut c = common::drplan();
        c.env("DRPLAN_TEST_TOKEN", "s3cr3t-t0ken")
            .current_dir(self.dir.path());
        Command::from_std(c)
    }
    fn check(&self, checks: &str, steps: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        let file = self.checks(checks, steps);
        self.drplan()
            .arg("check")
            .arg("--site")
            .arg(self.path("site.yaml"))
            .arg("--checks")
            .arg(file)
            .args(extra)
            .assert()
    }
}

/// A `file.stat` check that `name` exists, on role `on`, with an optional severity.
fn stat(name: &str, on: &str, file: &str, severity: Option<&str>) -> String {
    let severity = severity
        .map(|s| format!("    severity: {s}\n"))
        .unwrap_or_default();
    format!(
        "  - name: {name}\n    on: {on}\n    check: file.stat\n    with: {{ path: \"{{{{ vars.dir }}}}/{file}\" }}\n    expect: result.exists\n{severity}"
    )
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn all_green_exits_0_with_one_line_per_check() {
    let s = Site::new();
    let checks = stat("present is there", "a", "present", None)
        + &stat("present2 is there", "b", "present2", Some("warning"));
    let a = s.check(&checks, " []", &[]).code(0);
    let out = stdout(&a);
    assert!(out.contains("site checked: "), "{out}");
    assert!(out.contains("✓ present is there — on a (local)\n"), "{out}");
    assert!(
        out.contains("✓ present2 is there — on b (local)\n"),
        "{out}"
    );
    assert!(out.ends_with("2 ok, 0 warnings, 0 critical\n"), "{out}");
}

#[test]
fn a_failing_warning_exits_1_and_shows_the_expectation_with_the_result() {
    let s = Site::new();
    let checks = stat("present is there", "a", "present", None)
        + &stat("missing is there", "b", "missing", Some("warning"));
    let out = stdout(&s.check(&checks, " []", &[]).code(1));
    assert!(out.contains("✓ present is there — on a (local)\n"), "{out}");
    assert!(
        out.contains(
            "! missing is there — on b (local): `result.exists` is false with result {\"exists\":false"
        ),
        "{out}"
    );
    assert!(out.ends_with("1 ok, 1 warning, 0 critical\n"), "{out}");
}

#[test]
fn a_failing_critical_check_exits_2_whatever_else_failed() {
    let s = Site::new();
    let checks = stat("missing is there", "a", "missing", Some("warning"))
        + &stat("gone is there", "b", "gone", Some("critical"))
        + &stat("gone by default", "b", "gone", None);
    let out = stdout(&s.check(&checks, " []", &[]).code(2));
    assert!(out.contains("! missing is there — on a (local): "), "{out}");
    assert!(out.contains("✗ gone is there — on b (local): "), "{out}");
    assert!(
        out.contains("✗ gone by default — on b (local): "),
        "critical is the default: {out}"
    );
    assert!(out.ends_with("0 ok, 1 warning, 2 critical\n"), "{out}");
}

#[test]
fn the_json_report_has_every_check_with_its_status_and_result() {
    let s = Site::new();
    let checks = stat("present is there", "a", "present", None)
        + &stat("missing is there", "b", "missing", Some("warning"));
    let a = s.check(&checks, " []", &["--format", "json"]).code(1);
    let report: Value = serde_json::from_str(&stdout(&a)).expect("one JSON document");
    assert_eq!(report["site"], "checked");
    assert_eq!(
        (&report["ok"], &report["warnings"], &report["critical"]),
        (&Value::from(1), &Value::from(1), &Value::from(0))
    );
    let rows = report["checks"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let ok = &rows[0];
    assert_eq!(ok["name"], "present is there");
    assert_eq!(ok["on"], "a");
    assert_eq!(ok["host"], "local");
    assert_eq!(ok["severity"], "critical");
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["message"], Value::Null);
    assert_eq!(ok["result"]["exists"], true);
    assert_eq!(ok["result"]["size"], 5);
    let warn = &rows[1];
    assert_eq!(warn["severity"], "warning");
    assert_eq!(warn["status"], "warning");
    assert_eq!(warn["result"]["exists"], false);
    let message = warn["message"].as_str().unwrap();
    assert!(message.contains("`result.exists` is false"), "{message}");
}

#[test]
fn a_changing_action_is_not_a_check_and_nothing_runs() {
    let s = Site::new();
    let checks = "  - name: write a file\n    on: a\n    check: file.write\n    with: { path: \"{{ vars.dir }}/written\", content: x }\n";
    let a = s.check(checks, " []", &[]).code(2);
    let err = stderr(&a);
    assert!(err.contains("drplan::plan::not_a_check"), "{err}");
    assert!(err.contains("`file.write` changes things"), "{err}");
    assert!(!s.path("written").exists(), "nothing was written");
}

#[test]
fn a_checks_file_with_steps_is_refused() {
    let s = Site::new();
    let steps = "\n  - id: touch\n    on: a\n    action: file.touch\n    with: { path: \"{{ vars.dir }}/touched\" }";
    let a = s
        .check(&stat("present is there", "a", "present", None), steps, &[])
        .code(2);
    let err = stderr(&a);
    assert!(err.contains("drplan::checks::has_steps"), "{err}");
    assert!(err.contains("a checks file has no steps"), "{err}");
    assert!(err.contains("checks.yaml:"), "located: {err}");
    assert!(!s.path("touched").exists(), "no step ran");
    assert_eq!(stdout(&a), "", "no report");
}

#[test]
fn a_checks_file_without_checks_is_refused() {
    let s = Site::new();
    let file = s.path("empty.yaml");
    fs::write(&file, "version: 1\nname: none\nroles: [a]\nsteps: []\n").unwrap();
    let a = s
        .drplan()
        .arg("check")
        .arg("--site")
        .arg(s.path("site.yaml"))
        .arg("--checks")
        .arg(&file)
        .assert()
        .code(2);
    assert!(stderr(&a).contains("a checks file needs at least one check"));
}

#[test]
fn an_unreachable_host_makes_its_checks_critical() {
    let s = Site::new();
    fs::write(s.path("known_hosts"), "").unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let site = format!(
        "version: 1\nsite: half-gone\nhosts:\n  a: {{ address: 127.0.0.1, transport: local }}\n  b: {{ address: 127.0.0.1, port: 1, user: nobody }}\nssh: {{ known_hosts: known_hosts, connect_timeout: 2s }}\nvars:\n  dir: {}\n",
        s.dir.path().display()
    );
    fs::write(s.path("site.yaml"), site).unwrap();
    let checks = stat("present is there", "a", "present", None)
        + &stat("present on b", "b", "present", Some("warning"));
    let out = stdout(&s.check(&checks, " []", &[]).code(2));
    assert!(out.contains("✓ present is there — on a (local)\n"), "{out}");
    assert!(
        out.contains("✗ present on b — on b (nobody@127.0.0.1:1): could not run: "),
        "{out}"
    );
    assert!(out.ends_with("1 ok, 0 warnings, 1 critical\n"), "{out}");
}

#[test]
fn secrets_never_show_in_the_report() {
    let s = Site::new();
    // A relative path is refused by file.stat, and the refusal quotes the rendered path.
    let checks = "  - name: token file\n    on: a\n    check: file.stat\n    with: { path: \"relative/{{ secrets.token }}\" }\n    severity: warning\n";
    for format in ["text", "json"] {
        let out = stdout(&s.check(checks, " []", &["--format", format]).code(1));
        assert!(!out.contains("s3cr3t-t0ken"), "{out}");
        assert!(out.contains("(sensitive)"), "{out}");
    }
}

#[test]
fn without_checks_it_runs_the_shipped_readiness_checks_from_any_directory() {
    // A GoCD site whose hosts nothing answers for (ssh to a closed port on loopback, GoCD's
    // VIP on loopback too): every shipped check runs, and every one is critical but "the
    // standby GoCD server does not serve agents", which a stopped one does not.
    let dir = tempfile::tempdir().unwrap();
    common::unreachable_site(
        dir.path(),
        &["pg_primary", "pg_standby", "go_primary", "go_standby"],
    );
    let a = Command::from_std(common::drplan())
        .current_dir(dir.path())
        .args(["check", "--site", "site.yaml"])
        .assert()
        .code(2);
    let out = stdout(&a);
    assert!(out.starts_with("site gone: gocd/readiness at "), "{out}");
    assert!(
        out.contains("✗ the primary PostgreSQL is reachable and accepts writes — on pg_primary"),
        "{out}"
    );
    assert!(out.contains("1 ok, 0 warnings, 13 critical"), "{out}");
}

#[test]
fn watch_reports_again_until_interrupted_and_exits_with_the_last_reports_code() {
    let s = Site::new();
    let file = s.checks(
        &(stat("present is there", "a", "present", None)
            + &stat("missing is there", "b", "missing", Some("warning"))),
        " []",
    );
    let mut child = common::drplan()
        .env("DRPLAN_TEST_TOKEN", "x")
        .args(["check", "--watch", "--interval", "200ms", "--site"])
        .arg(s.path("site.yaml"))
        .arg("--checks")
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut reports = 0;
    let mut seen = String::new();
    while reports < 3 {
        assert!(started.elapsed() < Duration::from_secs(60), "{seen}");
        let line = lines.next().expect("more output").unwrap();
        if line == "1 ok, 1 warning, 0 critical" {
            reports += 1;
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(
        !seen.contains('\x1b'),
        "no screen clearing off a terminal: {seen:?}"
    );
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "the last report had a warning");
}
