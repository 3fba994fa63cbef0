//! `apply` and `resume` over SSH (a private sshd on 127.0.0.1): a run killed with SIGKILL
//! leaves its SSH master behind, and the next run on the same state directory stops it.

mod common;

use assert_cmd::Command;
use common::sshd::TestSshd;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// Running `ssh -M` masters whose control path lies under `dir`.
fn masters_under(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("ssh"))
            && args.iter().any(|a| a == "-M")
            && args.iter().any(|a| a.contains(&needle))
        {
            found.push(pid);
        }
    }
    found
}

fn sockets(dir: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type() {
            Ok(t) if t.is_socket() => out.push(e.path()),
            Ok(t) if t.is_dir() => out.extend(sockets(&e.path())),
            _ => {}
        }
    }
    out
}

#[test]
fn a_killed_run_leaves_no_ssh_master_once_the_next_run_starts() {
    let sshd = TestSshd::start();
    let dir = tempfile::tempdir().unwrap();
    let site = format!(
        "version: 1\nsite: ssh-{}\nhosts:\n  remote: {{ address: 127.0.0.1, port: {}, user: root }}\nssh: {{ identity: {}, known_hosts: {}, connect_timeout: 5s }}\n",
        std::process::id(),
        sshd.port,
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    fs::write(dir.path().join("site.yaml"), site).unwrap();
    let plan = "version: 1\nname: ssh\nroles: [remote]\nsteps:\n  - { id: one, on: remote, action: exec, with: { argv: [\"true\"] } }\n  - { id: two, on: remote, action: exec, with: { argv: [\"true\"] }, needs: [one] }\n";
    fs::write(dir.path().join("plan.yaml"), plan).unwrap();
    let state = dir.path().join("state");
    let drplan = || {
        let mut c = common::drplan();
        c.arg("--state-dir").arg(&state).arg("-q");
        Command::from_std(c)
    };
    // Killed right after step one finished (run_started, preconditions_passed,
    // step_started, command_started, step_finished): its master connection is open.
    let out = drplan()
        .env("DRPLAN_CRASH_AFTER_RECORD", "5")
        .args(["apply", "--yes", "--parallel", "1"])
        .arg(dir.path().join("plan.yaml"))
        .arg("--site")
        .arg(dir.path().join("site.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9));
    assert_eq!(
        masters_under(&state).len(),
        1,
        "the dead run's master is still there"
    );
    let run = fs::read_dir(state.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    drplan().args(["resume", &run]).assert().success();
    assert!(
        masters_under(&state).is_empty(),
        "no master is left: {:?}",
        masters_under(&state)
    );
    assert!(
        sockets(&state.join("ssh")).is_empty(),
        "control sockets are cleaned: {:?}",
        sockets(&state.join("ssh"))
    );
}

/// A run connects to all of its SSH hosts at once when it starts. A host that does not
/// answer is nobody's error then: the step that needs it reports it as it always did (here
/// skipped as unreachable, as the plan allows), and it is asked once, not twice — the step
/// takes the answer of the attempt it waited for instead of a second connect timeout.
#[test]
fn a_silent_host_is_asked_once_and_its_step_reports_it() {
    let sshd = TestSshd::start();
    // Accepts TCP (the kernel completes the handshake) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site = format!(
        "version: 1\nsite: silent-{}\nhosts:\n  remote: {{ address: 127.0.0.1, port: {}, user: root }}\n  gone: {{ address: 127.0.0.1, port: {}, user: root }}\nssh: {{ identity: {}, known_hosts: {}, connect_timeout: 5s }}\n",
        std::process::id(),
        sshd.port,
        silent.local_addr().unwrap().port(),
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    fs::write(dir.path().join("site.yaml"), site).unwrap();
    let plan = "version: 1\nname: silent\nroles: [remote, gone]\nsteps:\n  - { id: here, on: remote, action: exec, with: { argv: [\"true\"] } }\n  - { id: there, on: gone, action: exec, with: { argv: [\"true\"] }, on_unreachable: skip }\n";
    fs::write(dir.path().join("plan.yaml"), plan).unwrap();
    let mut c = common::drplan();
    c.arg("--state-dir").arg(dir.path().join("state"));
    let out = Command::from_std(c)
        .args(["apply", "--yes", "--format", "json"])
        .arg(dir.path().join("plan.yaml"))
        .arg("--site")
        .arg(dir.path().join("site.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let finished = |step: &str| {
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "step_finished" && e["step"] == step)
            .unwrap_or_else(|| panic!("no step_finished for {step}: {stdout}"))
    };
    assert_eq!(finished("here")["outcome"], "succeeded", "{stdout}");
    assert_eq!(finished("there")["outcome"], "skipped", "{stdout}");
    assert_eq!(finished("there")["reason"], "unreachable", "{stdout}");
    assert!(
        stdout.contains("there: host unreachable, skipped as the plan allows"),
        "{stdout}"
    );
    silent.set_nonblocking(true).unwrap();
    let attempts = std::iter::from_fn(|| silent.accept().ok()).count();
    assert_eq!(attempts, 1, "connections to the silent host");
}
