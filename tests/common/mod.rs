//! Test support shared by the integration tests (the benchmark includes only `sshd.rs`).

#![allow(dead_code)] // each test binary uses a different part of this

pub(crate) mod bin;
pub(crate) mod etcd;
pub(crate) mod http;
pub(crate) mod lab;
pub(crate) mod local;
pub(crate) mod rig;
pub(crate) mod sshd;

#[allow(unused_imports)] // each test binary uses one or the other
pub(crate) use bin::{drplan, drplan_in, output_in, said};
use drplan::transport::Command;

/// `DIR/site.yaml`: a site binding each of `roles` to a host nobody answers for (ssh to a
/// closed port on loopback, an empty known_hosts), with the variables the GoCD plans read and
/// GoCD's VIP on loopback too: whatever runs against it reaches nothing.
pub(crate) fn unreachable_site(dir: &std::path::Path, roles: &[&str]) -> std::path::PathBuf {
    std::fs::write(dir.join("known_hosts"), "").unwrap();
    let hosts: String = roles
        .iter()
        .map(|r| format!("  {r}: {{ address: 127.0.0.1, port: 9, user: nobody }}\n"))
        .collect();
    let site = format!(
        "version: 1\nsite: gone\nhosts:\n{hosts}ssh: {{ known_hosts: known_hosts, connect_timeout: 2s }}\nvars:\n  pg: {{ port: 5432, user: postgres, bin_dir: /usr/lib/postgresql/15/bin }}\n  vip: {{ address: 127.0.0.1/8, interface: lo }}\n  go: {{ port: 9, config_dir: /etc/go }}\n"
    );
    let path = dir.join("site.yaml");
    std::fs::write(&path, site).unwrap();
    path
}

/// A shell script that fails (exit 1) when the value of its `PGPASSWORD` appears in the argv
/// of any process on the machine while it runs, its own wrappers included (exit 2 when it
/// has no PGPASSWORD at all). Every user can read every argv (`ps`, `/proc/PID/cmdline`).
pub(crate) const ARGV_SCAN: &str = r#"test -n "$PGPASSWORD" || { echo "PGPASSWORD is not set" >&2; exit 2; }; for f in /proc/[0-9]*/cmdline; do c=$(tr '\000' ' ' < "$f" 2>/dev/null) || continue; case "$c" in *"$PGPASSWORD"*) echo "PGPASSWORD is in the argv of ${f%/cmdline}: $c" >&2; exit 1;; esac; done"#;

pub(crate) fn cmd(argv: &[&str]) -> Command {
    Command::new(argv.iter().copied())
}

/// Processes whose argv is exactly `argv` and that still run (zombies excluded: PID 1 on
/// these machines does not reap, and a zombie has an empty cmdline anyway).
pub(crate) fn processes_running(argv: &[&str]) -> Vec<u32> {
    let mut want: Vec<u8> = Vec::new();
    for a in argv {
        want.extend_from_slice(a.as_bytes());
        want.push(0);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want) {
            found.push(pid);
        }
    }
    found
}

/// Children of `pid` (by /proc, so only processes our own sshd started).
pub(crate) fn children_of(pid: u32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // fields after the parenthesised name: state, ppid, …
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            kids.push(child);
        }
    }
    kids
}
