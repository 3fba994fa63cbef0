//! A killed drplan leaves nothing running unseen: each command's identity is journaled
//! (`command_started`) before its step can end, and `resume`/`rollback` never start a step
//! beside a command of the crashed run that still runs. They wait for it, naming host and
//! pid, or stop it on `--kill-stale`. Through the real binary, with real processes: a
//! local command run through `sudo` (which clears the parent-death signal, so it outlives
//! drplan) and a command over SSH to a private sshd (which runs on after drplan dies).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::sshd::TestSshd;

/// A run directory, world-readable so that `nobody` can append to `shared/log`.
struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    /// A site whose one host `h` is given by `host` (YAML after `h: `), plus `extra` lines.
    fn new(host: &str, extra: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let site = format!(
            "version: 1\nsite: stale-{}\nhosts:\n  h: {host}\n{extra}",
            std::process::id()
        );
        fs::write(dir.path().join("site.yaml"), site).unwrap();
        Run { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// One step `slow` that appends `start` to the log, sleeps `secs` the first time it
    /// runs (a marker file tells), then appends `end`; with `extra` step lines.
    fn plan(&self, secs: u32, extra: &str) {
        let (log, once) = (self.path("shared/log"), self.path("shared/once"));
        let plan = format!(
            "version: 1\nname: stale\nroles: [h]\nsteps:\n  - id: slow\n    on: h\n    action: exec\n    with: {{ argv: [sh, -c, 'echo start >> \"$1\"; [ -e \"$2\" ] || {{ touch \"$2\"; sleep {}; }}; echo end >> \"$1\"', _, \"{}\", \"{}\"] }}\n{extra}",
            sleep_arg(secs),
            log.display(),
            once.display()
        );
        fs::write(self.path("plan.yaml"), plan).unwrap();
    }

    fn drplan(&self) -> std::process::Command {
        let mut c = common::drplan();
        c.arg("--state-dir")
            .arg(self.path("state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// `apply`, SIGKILLed while the step's command sleeps `secs`; returns the run id.
    fn apply_and_kill(&self, secs: u32) -> String {
        let mut child = self
            .drplan()
            .arg("apply")
            .arg(self.path("plan.yaml"))
            .arg("--site")
            .arg(self.path("site.yaml"))
            .arg("--yes")
            .spawn()
            .unwrap();
        let sleeping = wait_for(Duration::from_secs(15), || !self.sleeping(secs).is_empty());
        // Its identity is journaled right after it started; give a slow machine a moment.
        wait_for(Duration::from_secs(2), || {
            self.journal().contains("\"command_started\"")
        });
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(sleeping, "the step's command never ran: {}", self.journal());
        self.run_id()
    }

    fn resume(&self, run: &str, extra: &[&str]) -> Child {
        self.drplan()
            .args(["resume", run])
            .args(extra)
            .spawn()
            .unwrap()
    }

    fn run_id(&self) -> String {
        let mut runs = fs::read_dir(self.path("state/runs")).unwrap();
        let run = runs.next().unwrap().unwrap();
        run.file_name().to_string_lossy().into_owned()
    }

    fn journal(&self) -> String {
        let Ok(mut runs) = fs::read_dir(self.path("state/runs")) else {
            return String::new();
        };
        let Some(Ok(run)) = runs.next() else {
            return String::new();
        };
        fs::read_to_string(run.path().join("journal.jsonl")).unwrap_or_default()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("shared/log")).unwrap_or_default()
    }

    /// The first run's `sleep SECS`, if it still runs.
    fn sleeping(&self, secs: u32) -> Vec<u32> {
        common::processes_running(&["sleep", &sleep_arg(secs)])
    }
}

/// `sleep`'s argument for `secs`, unique to this test process (`SECS.PID`): the tests find
/// and kill their own sleeps by it, never another process's `sleep SECS`.
fn sleep_arg(secs: u32) -> String {
    format!("{secs}.{:07}", std::process::id())
}

/// Kills what a failed test left running (its sleeps), by pid.
struct Cleanup(u32);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in common::processes_running(&["sleep", &sleep_arg(self.0)]) {
            // SAFETY: kill(2) on a sleep this test's plan started.
            unsafe { libc::kill(i32::try_from(pid).unwrap(), libc::SIGKILL) };
        }
    }
}

fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The journal's record kinds in order.
fn kinds(journal: &str) -> Vec<String> {
    journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["record"]["kind"].as_str().map(str::to_owned))
        .collect()
}

const LOCAL_SUDO: &str =
    "{ address: 127.0.0.1, transport: local, become: nobody, become_method: sudo }";

fn ssh_site(sshd: &TestSshd) -> (String, String) {
    (
        format!("{{ address: 127.0.0.1, port: {}, user: root }}", sshd.port),
        format!(
            "ssh: {{ identity: {}, known_hosts: {}, connect_timeout: 5s }}\n",
            sshd.client_key.display(),
            sshd.known_hosts.display()
        ),
    )
}

/// `resume --retry` while the crashed run's command still runs: it waits (saying for what),
/// and runs the step only once that command has ended, never beside it.
fn resume_waits_for_the_old_command(run: &Run, host_shown: &str) {
    const SECS: u32 = 6;
    let _cleanup = Cleanup(SECS);
    run.plan(SECS, "");
    let id = run.apply_and_kill(SECS);
    assert!(
        !run.sleeping(SECS).is_empty(),
        "the command outlived drplan (the case at hand)"
    );
    let resume = run.resume(&id, &["--retry", "slow"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        run.log(),
        "start\n",
        "the step must not start beside its old command"
    );
    let out = resume.wait_with_output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("step slow: its command (pid ")
            && said.contains(&format!("on {host_shown}) from the crashed run is still running; waiting for it to end (or --kill-stale)")),
        "{said}"
    );
    assert_eq!(run.log(), "start\nend\nstart\nend\n", "one after the other");
}

/// `resume --retry --kill-stale`: the old command is stopped (journaled), then the step
/// runs once: its `start` and `end` beside the killed one's partial `start`.
fn kill_stale_stops_the_old_command(run: &Run) {
    const SECS: u32 = 37;
    let _cleanup = Cleanup(SECS);
    run.plan(SECS, "");
    let id = run.apply_and_kill(SECS);
    assert!(
        !run.sleeping(SECS).is_empty(),
        "the command outlived drplan"
    );
    let started = Instant::now();
    let out = run
        .resume(&id, &["--retry", "slow", "--kill-stale"])
        .wait_with_output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(started.elapsed() < Duration::from_secs(25), "{said}");
    assert!(said.contains("stopping it (--kill-stale)"), "{said}");
    assert!(run.sleeping(SECS).is_empty(), "the old command is gone");
    assert_eq!(run.log(), "start\nstart\nend\n");
    let kinds = kinds(&run.journal());
    let stopped = kinds.iter().position(|k| k == "stale_command_stopped");
    let retried = kinds.iter().position(|k| k == "operator_decision");
    assert!(
        stopped.is_some() && stopped < retried,
        "the stop is journaled before the step runs again: {kinds:?}"
    );
}

#[test]
fn local_resume_waits_for_a_command_that_outlived_drplan() {
    let run = Run::new(LOCAL_SUDO, "");
    resume_waits_for_the_old_command(&run, "h (local)");
}

#[test]
fn local_resume_with_kill_stale_stops_the_old_command_then_runs_the_step_once() {
    let run = Run::new(LOCAL_SUDO, "");
    kill_stale_stops_the_old_command(&run);
}

#[test]
fn ssh_resume_waits_for_the_remote_command_of_the_killed_run() {
    let sshd = TestSshd::start();
    let (host, ssh) = ssh_site(&sshd);
    let run = Run::new(&host, &ssh);
    resume_waits_for_the_old_command(&run, &format!("h (root@127.0.0.1:{})", sshd.port));
}

#[test]
fn ssh_resume_with_kill_stale_stops_the_remote_command() {
    let sshd = TestSshd::start();
    let (host, ssh) = ssh_site(&sshd);
    let run = Run::new(&host, &ssh);
    kill_stale_stops_the_old_command(&run);
}

/// Every command a step runs is journaled with who it is before the step's end.
#[test]
fn the_journal_names_each_command_before_its_step_ends() {
    let sshd = TestSshd::start();
    let (host, ssh) = ssh_site(&sshd);
    for (host, extra) in [(LOCAL_SUDO.to_owned(), String::new()), (host, ssh)] {
        let run = Run::new(&host, &extra);
        run.plan(0, "");
        let out = run
            .drplan()
            .arg("apply")
            .arg(run.path("plan.yaml"))
            .arg("--site")
            .arg(run.path("site.yaml"))
            .arg("--yes")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let journal = run.journal();
        let kinds = kinds(&journal);
        let started = kinds.iter().position(|k| k == "command_started");
        let finished = kinds.iter().position(|k| k == "step_finished");
        assert!(started.is_some() && started < finished, "{host}: {kinds:?}");
        let record: serde_json::Value = journal
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| v["record"].clone())
            .find(|r| r["kind"] == "command_started")
            .unwrap();
        let id = &record["identity"];
        assert!(
            record["step"] == "slow"
                && record["role"] == "h"
                && id["pid"].as_i64().is_some_and(|p| p > 1)
                && id["start_time"].as_u64().is_some_and(|t| t > 0)
                && id["boot_id"].as_str().is_some_and(|b| b.len() == 36),
            "{host}: {record}"
        );
        assert_eq!(run.log(), "start\nend\n", "{host}");
    }
}

/// An idempotent step left in doubt is normally re-run by `resume` without asking; not
/// while its old command still runs.
#[test]
fn an_idempotent_step_is_not_rerun_automatically_beside_its_old_command() {
    const SECS: u32 = 7; // unique among this file's tests: each Cleanup kills its `sleep SECS.PID`
    let _cleanup = Cleanup(SECS);
    let run = Run::new(LOCAL_SUDO, "");
    run.plan(SECS, "    idempotent: true\n");
    let id = run.apply_and_kill(SECS);
    let resume = run.resume(&id, &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(run.log(), "start\n", "not re-run beside its old command");
    let out = resume.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(run.log(), "start\nend\nstart\nend\n");
}

/// `rollback` does not run a hook beside the step's old command either: with
/// `--kill-stale` it stops it first, then undoes the step.
#[test]
fn rollback_stops_the_old_command_before_the_hook_runs() {
    const SECS: u32 = 39;
    let _cleanup = Cleanup(SECS);
    let run = Run::new(LOCAL_SUDO, "");
    let hook = format!(
        "    rollback: {{ action: exec, with: {{ argv: [sh, -c, 'echo undo >> \"$1\"', _, \"{}\"] }} }}\n",
        run.path("shared/log").display()
    );
    run.plan(SECS, &hook);
    let id = run.apply_and_kill(SECS);
    let out = run
        .drplan()
        .args(["rollback", &id, "--assume-done", "slow", "--kill-stale"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(run.sleeping(SECS).is_empty(), "the old command is gone");
    assert_eq!(
        run.log(),
        "start\nundo\n",
        "the step never ended; then undone"
    );
}
