//! Signals reach drplan alone. A terminal's Ctrl-C goes to the whole foreground process
//! group; every child drplan starts (local commands, ssh masters) sits in a group of its own,
//! so the running steps finish and the run stops with 130. A drplan killed with SIGKILL
//! takes its local command with it.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::processes_running;
use common::sshd::{SlowDoor, TestSshd, known_hosts_line};

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    /// A site with `hosts` (YAML lines under `hosts:`, plus an optional `ssh:` block).
    fn new(hosts: &str, ssh: &str) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let site = format!(
            "version: 1\nsite: signals-{}\nhosts:\n{hosts}{ssh}",
            std::process::id()
        );
        fs::write(dir.path().join("site.yaml"), site).unwrap();
        Run { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// `drplan apply` of `steps` on role `role`, started in a process group of its own (as a
    /// shell starts a foreground job), so a test can signal the group as a terminal would.
    fn start(&self, role: &str, steps: &str) -> Child {
        let plan = format!("version: 1\nname: signals\nroles: [{role}]\nsteps:\n{steps}");
        fs::write(self.path("plan.yaml"), plan).unwrap();
        common::drplan()
            .arg("--state-dir")
            .arg(self.state())
            .arg("apply")
            .arg(self.path("plan.yaml"))
            .arg("--site")
            .arg(self.path("site.yaml"))
            .args(["--yes", "--parallel", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    }
}

/// Wait up to `limit` for `ready`; false if it never was.
fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Processes whose argv has an argument containing `needle` and starts with a program
/// named `program`.
fn processes_with(program: &str, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args
            .first()
            .is_some_and(|a| a.rsplit('/').next() == Some(program))
            && args.iter().any(|a| a.contains(needle))
        {
            found.push(pid);
        }
    }
    found
}

/// Whether the run under `state` has journaled the start of step `id`.
fn started(state: &Path, id: &str) -> bool {
    let Ok(runs) = fs::read_dir(state.join("runs")) else {
        return false;
    };
    runs.flatten().any(|run| {
        fs::read_to_string(run.path().join("journal.jsonl")).is_ok_and(|j| {
            j.lines().any(|l| {
                l.contains("\"kind\":\"step_started\"") && l.contains(&format!("\"step\":\"{id}\""))
            })
        })
    })
}

/// SIGINT to the whole process group of `child`: what a terminal's Ctrl-C does.
fn ctrl_c(child: &Child) {
    let pgid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the process group the test created for this drplan.
    assert_eq!(unsafe { libc::kill(-pgid, libc::SIGINT) }, 0);
}

fn touch_step(id: &str, role: &str, sleep: &str, marker: &Path, needs: &str) -> String {
    format!(
        "  - id: {id}\n    on: {role}\n    action: exec\n    with: {{ argv: [sh, -c, \"sleep {sleep}; touch {}\"] }}\n{needs}",
        marker.display()
    )
}

/// Ctrl-C while the ssh master is still connecting (before it puts itself in the
/// background): it used to die with drplan's group, failing the step with an empty
/// "ssh … failed" and pausing the run with exit 1.
#[test]
fn ctrl_c_while_the_ssh_master_connects_lets_the_step_finish_and_exits_130() {
    let (out, done, never) = ctrl_c_at_the_slow_door(true);
    assert!(done, "the running step finished on the host: {out}");
    assert!(!never, "no new step started after Ctrl-C: {out}");
}

/// Ctrl-C the moment drplan starts opening its hosts' connections, ahead of the first
/// step: the run stops with 130 (it once died of the signal, the handlers not yet
/// installed), whether or not the first step had started.
#[test]
fn ctrl_c_as_the_connections_open_stops_the_run_with_130() {
    let (out, _, never) = ctrl_c_at_the_slow_door(false);
    assert!(!never, "no new step started after Ctrl-C: {out}");
}

/// A run of two steps on a host behind a door that holds each connection for 1.5 s,
/// interrupted once its ssh master is connecting (and, with `step_started`, once step
/// `one` is under way, waiting for that connection). Asserts the interrupted run's exit
/// and message; returns its output and whether steps one and two touched their markers.
fn ctrl_c_at_the_slow_door(step_started: bool) -> (String, bool, bool) {
    let sshd = TestSshd::start();
    let door = SlowDoor::open(sshd.port, Duration::from_millis(1500));
    let run = Run::new(
        &format!(
            "  remote: {{ address: 127.0.0.1, port: {}, user: root }}\n",
            door.port
        ),
        &format!(
            "ssh: {{ identity: {}, known_hosts: {}, connect_timeout: 10s }}\n",
            sshd.client_key.display(),
            run_known_hosts(&sshd, door.port).display()
        ),
    );
    let (done, never) = (run.path("one-done"), run.path("two-done"));
    let steps = touch_step("one", "remote", "0.2", &done, "")
        + &touch_step("two", "remote", "0", &never, "    needs: [one]\n");
    let child = run.start("remote", &steps);
    let state = run.state().display().to_string();
    assert!(
        wait_for(Duration::from_secs(10), || !processes_with("ssh", &state)
            .is_empty()),
        "no ssh master started"
    );
    if step_started {
        assert!(
            wait_for(Duration::from_secs(10), || started(&run.state(), "one")),
            "step one never started"
        );
        assert!(
            !processes_with("ssh", &state).is_empty(),
            "the ssh master went away"
        );
    }
    ctrl_c(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    // How to go on, on a line of its own (to copy).
    assert!(
        stderr.contains("interrupted; the checkpoint is safe")
            && stderr.contains("\n          drplan resume 20"),
        "{stdout}{stderr}"
    );
    assert!(!stdout.contains("failed on"), "{stdout}{stderr}");
    (format!("{stdout}{stderr}"), done.exists(), never.exists())
}

/// A known_hosts file naming the test sshd's key at `port` (the door in front of it).
fn run_known_hosts(sshd: &TestSshd, port: u16) -> PathBuf {
    let path = sshd.dir.path().join(format!("known_hosts_{port}"));
    fs::write(&path, known_hosts_line(port, &sshd.host_public_key())).unwrap();
    path
}

/// A local command sits in its own process group, so Ctrl-C does not reach it: it
/// finishes, and the run stops with 130.
#[test]
fn ctrl_c_during_a_local_step_lets_it_finish_and_exits_130() {
    let run = Run::new("  ctl: { address: 127.0.0.1, transport: local }\n", "");
    let (done, never) = (run.path("one-done"), run.path("two-done"));
    let steps = touch_step("one", "ctl", "0.7", &done, "")
        + &touch_step("two", "ctl", "0", &never, "    needs: [one]\n");
    let child = run.start("ctl", &steps);
    let marker = done.display().to_string();
    assert!(
        wait_for(Duration::from_secs(10), || !processes_with("sh", &marker)
            .is_empty()),
        "the step's command never started"
    );
    ctrl_c(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(done.exists(), "the running step finished");
    assert!(!never.exists(), "no new step started after Ctrl-C");
}

/// A drplan killed with SIGKILL cannot stop its local command itself: the kernel does it
/// (parent-death signal), so the command does not run on under PID 1.
#[test]
fn a_local_command_dies_with_a_killed_drplan() {
    let run = Run::new("  ctl: { address: 127.0.0.1, transport: local }\n", "");
    let sleep = ["sleep", "307.3"];
    let mut child = run.start(
        "ctl",
        "  - { id: long, on: ctl, action: exec, with: { argv: [sleep, \"307.3\"] } }\n",
    );
    assert!(
        wait_for(Duration::from_secs(10), || !processes_running(&sleep)
            .is_empty()),
        "the step's command never started"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = wait_for(Duration::from_secs(3), || {
        processes_running(&sleep).is_empty()
    });
    let left = processes_running(&sleep);
    for pid in &left {
        // SAFETY: kill(2) on the sleep this test started, so a failing run leaves nothing.
        unsafe { libc::kill(i32::try_from(*pid).unwrap(), libc::SIGKILL) };
    }
    assert!(gone, "the step's command outlived drplan: {left:?}");
}
