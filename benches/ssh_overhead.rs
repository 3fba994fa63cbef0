//! Per-command latency of `true` on a loopback sshd: drplan's SshTransport (native mux over
//! one master) against the `ssh` client reusing an established ControlMaster, and against a
//! fresh `ssh` connection per command.
//!
//! The test sshd sets `HOME` for the client key (authorized_keys `environment=`), so root's
//! `~/.bashrc` (pyenv init, ~90 ms) is not sourced: the figures measure SSH, not a shell rc.
//! Medians: `target/criterion/ssh_overhead/*/new/estimates.json` (`median.point_estimate`, ns).

#[path = "../tests/common/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use drplan::transport::{Command, SshTransport};
use sshd::TestSshd;

/// `ssh` configured like SshTransport's master (strict keys, this key only, no user config).
fn ssh(sshd: &TestSshd, extra: &[&str]) -> Process {
    let mut p = Process::new("ssh");
    p.args([
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
    ])
    .arg("-o")
    .arg(format!("UserKnownHostsFile={}", sshd.known_hosts.display()))
    .args([
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
    ])
    .arg(&sshd.client_key)
    .args(["-p", &sshd.port.to_string()])
    .args(extra)
    .args(["root@127.0.0.1", "true"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    p
}

fn run_ok(mut p: Process) {
    let status = p.status().expect("run ssh");
    assert!(status.success(), "ssh failed: {status}");
}

fn mux_options(control_path: &Path) -> Vec<String> {
    vec![
        "-o".into(),
        "ControlMaster=auto".into(),
        "-o".into(),
        format!("ControlPath={}", control_path.display()),
        "-o".into(),
        "ControlPersist=60".into(),
    ]
}

fn bench(c: &mut Criterion) {
    let sshd = TestSshd::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let transport = rt
        .block_on(SshTransport::connect(&sshd.spec()))
        .expect("connect");
    let cmd = Command::new(["true"]);

    let control_path = sshd.dir.path().join("raw-mux.sock");
    let mux = mux_options(&control_path);
    let mux: Vec<&str> = mux.iter().map(String::as_str).collect();
    run_ok(ssh(&sshd, &mux)); // establishes the master, outside the measurement

    let mut group = c.benchmark_group("ssh_overhead");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("drplan_ssh_transport", |b| {
        b.iter(|| {
            let out = rt.block_on(transport.run(&cmd)).expect("run");
            assert_eq!(out.status, Some(0));
        });
    });
    group.bench_function("ssh_controlmaster_established", |b| {
        b.iter(|| run_ok(ssh(&sshd, &mux)));
    });
    group.sample_size(20);
    group.bench_function("ssh_new_connection", |b| {
        b.iter(|| {
            run_ok(ssh(
                &sshd,
                &["-o", "ControlMaster=no", "-o", "ControlPath=none"],
            ));
        });
    });
    group.finish();

    let mut exit = Process::new("ssh");
    exit.arg("-o")
        .arg(format!("ControlPath={}", control_path.display()))
        .args(["-O", "exit", "root@127.0.0.1"])
        .stderr(Stdio::null());
    let _ = exit.status();
    rt.block_on(transport.close());
    println!("one-master check: sshd accepted {} logins", sshd.logins());
}

criterion_group!(benches, bench);
criterion_main!(benches);
