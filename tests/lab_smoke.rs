//! The DR lab works: `tests/lab/up` builds it in a fresh directory, `tests/lab/smoke` proves it
//! (SSH with verified host keys, streaming replication, heartbeats, GoCD health through the VIP,
//! config sync, no default routes, the reaper), and `tests/lab/down` removes it — always, even
//! when a step fails. Afterwards nothing of the lab may be left: no namespace, no /etc/netns
//! directory, no mount, no process (checked by the PIDs the lab recorded and by its directory).
//! Both flavours: the default one, and `--flavour hardened` (non-root login with sudo, sshd and
//! PostgreSQL on other ports, scram, root-owned data parents, GoCD without the BC add-on), whose
//! login user must be gone afterwards too.
//!
//! This test needs root and the lab's Debian packages (see tests/lab/README.md). Without them it
//! FAILS rather than skips: a lab test that did not run has not passed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One lab at a time from this file: a lab is heavy for a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const PR_SET_CHILD_SUBREAPER: i32 = 36;
const WNOHANG: i32 = 1;

unsafe extern "C" {
    fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab_script(name: &str) -> PathBuf {
    repo().join("tests/lab").join(name)
}

/// Runs a lab script with `--dir DIR` and `args`; prints its output (shown by the harness on failure).
fn run(name: &str, dir: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let out = Command::new(lab_script(name))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("CARGO", cargo)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/lab/{name}: {e}"));
    println!(
        "---- tests/lab/{name} --dir {} {} ({:.1} s, {}) ----\n{}{}",
        dir.display(),
        args.join(" "),
        started.elapsed().as_secs_f64(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Programs the lab needs, with the Debian package that ships each.
const NEEDS: &[(&str, &str)] = &[
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/bin/ssh", "openssh-client"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/bin/arping", "iputils-arping"),
    ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
    ("/usr/lib/postgresql/15/bin/pg_ctl", "postgresql-15"),
    (
        "/usr/lib/postgresql/15/bin/pg_basebackup",
        "postgresql-client-15",
    ),
    ("/usr/lib/postgresql/15/bin/psql", "postgresql-client-15"),
    ("/usr/bin/pg_ctlcluster", "postgresql-common"),
    ("/usr/bin/pg_lsclusters", "postgresql-common"),
];

fn find_in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).is_file())
}

/// The lab's state journal as (kind, rest) pairs.
fn records(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("lab.state"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Tears the lab down when dropped (also when the test panics), then removes its directory.
struct Lab {
    dir: PathBuf,
    down_ok: bool,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down_ok {
            let out = run("down", &self.dir, &[]);
            if !out.status.success() {
                eprintln!(
                    "lab: down failed during cleanup; inspect {}",
                    self.dir.display()
                );
                return; // keep the directory for a post-mortem
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn lab_comes_up_passes_smoke_and_goes_away_without_a_trace() {
    up_smoke_down("default");
}

#[test]
fn hardened_lab_comes_up_passes_smoke_and_goes_away_without_a_trace() {
    up_smoke_down("hardened");
}

fn up_smoke_down(flavour: &str) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert_eq!(
        uid(),
        Some(0),
        "the DR lab test needs root (network namespaces, bind mounts); it does not skip — run it as root, as CI does"
    );
    let needs_sudo: &[(&str, &str)] = if flavour == "hardened" {
        &[("/usr/bin/sudo", "sudo"), ("/usr/sbin/visudo", "sudo")]
    } else {
        &[]
    };
    let missing: Vec<String> = NEEDS
        .iter()
        .chain(needs_sudo)
        .filter(|(path, _)| !Path::new(path).is_file())
        .map(|(path, pkg)| format!("{path} (package {pkg})"))
        .chain(
            ["ip", "runuser", "setsid"]
                .iter()
                .filter(|p| !find_in_path(p))
                .map(|p| format!("{p} (iproute2 / util-linux)")),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "the DR lab needs, and this machine lacks: {}",
        missing.join(", ")
    );

    // Become the subreaper of everything the lab leaves running, so that once `down` has ended
    // the hosts' reapers, this test (not PID 1) reaps them and can check they are really gone.
    // SAFETY: prctl with constant arguments.
    let subreaper = unsafe { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "drplan-lab-{}-{}-{nanos:x}",
        &flavour[..1],
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create the lab directory");
    let mut lab = Lab {
        dir: dir.clone(),
        down_ok: false,
    };

    let up = run("up", &dir, &["--flavour", flavour]);
    assert!(up.status.success(), "tests/lab/up failed (output above)");
    for file in [
        "site.yaml",
        "lab.env",
        "keys/id_ed25519",
        "keys/known_hosts",
    ] {
        assert!(dir.join(file).is_file(), "up did not write {file}");
    }
    let env = std::fs::read_to_string(dir.join("lab.env")).expect("read lab.env");
    for var in [
        "LAB_NS_CTL",
        "LAB_NS_PG1",
        "LAB_NS_PG2",
        "LAB_NS_GO1",
        "LAB_NS_GO2",
        "LAB_ADDR_PG1",
        "LAB_ADDR_PG2",
        "LAB_ADDR_GO1",
        "LAB_ADDR_GO2",
        "LAB_VIP",
        "LAB_PG_PORT",
        "LAB_PGDATA_PG1",
        "LAB_PGDATA_PG2",
        "LAB_PG_BIN",
        "LAB_GO_PORT",
        "LAB_FLAVOUR",
        "LAB_SSH_PORT",
        "LAB_SSH_USER",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(&format!("{var}="))),
            "lab.env lacks {var}"
        );
    }

    assert!(
        env.lines().any(|l| l == format!("LAB_FLAVOUR={flavour}")),
        "lab.env does not say LAB_FLAVOUR={flavour}"
    );
    let ssh_user = env
        .lines()
        .find_map(|l| l.strip_prefix("LAB_SSH_USER="))
        .unwrap_or_default()
        .to_string();

    let smoke = run("smoke", &dir, &[]);
    let smoke_ok = smoke.status.success();

    let recs = records(&dir);
    let prefix = recs
        .iter()
        .find(|(k, _)| k == "prefix")
        .map(|(_, v)| v.clone())
        .expect("lab.state names a prefix");
    let reapers: Vec<(i32, String)> = recs
        .iter()
        .filter(|(k, _)| k == "reaper")
        .filter_map(|(_, v)| {
            let f: Vec<&str> = v.split_whitespace().collect();
            Some((f.get(1)?.parse().ok()?, f.get(2).unwrap_or(&"").to_string()))
        })
        .collect();
    assert_eq!(
        reapers.len(),
        4,
        "lab.state should record 4 host reapers: {recs:?}"
    );

    let down = run("down", &dir, &[]);
    lab.down_ok = down.status.success();
    assert!(smoke_ok, "tests/lab/smoke failed (output above)");
    assert!(lab.down_ok, "tests/lab/down failed (output above)");

    // Nothing of the prefix may be left.
    let leftovers = |root: &str| -> Vec<String> {
        std::fs::read_dir(root)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(&format!("{prefix}-")))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        leftovers("/run/netns").is_empty(),
        "namespaces left: {:?}",
        leftovers("/run/netns")
    );
    assert!(
        leftovers("/etc/netns").is_empty(),
        "/etc/netns dirs left: {:?}",
        leftovers("/etc/netns")
    );
    let ip = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(
        !String::from_utf8_lossy(&ip.stdout).contains(&prefix),
        "ip netns list still shows {prefix}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&prefix), "mounts of {prefix} left");
    if flavour == "hardened" {
        // The login user lived only in the lab hosts' own /etc/passwd: the machine never had it.
        assert!(
            ssh_user.starts_with(&prefix),
            "the hardened login user {ssh_user:?} does not carry the prefix {prefix}"
        );
        for file in ["/etc/passwd", "/etc/group", "/etc/sudoers"] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            assert!(!text.contains(&prefix), "{file} mentions {prefix}");
        }
    }

    // The reapers, by recorded PID (and start time, against PID reuse): reap them, then none may exist.
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    for (pid, start) in &reapers {
        let same = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(") ")
                        .map(|(_, rest)| rest.split_whitespace().nth(19) == Some(start.as_str()))
                })
                .unwrap_or(false)
        };
        while same() && Instant::now() < deadline {
            if subreaper {
                let mut status = 0;
                // SAFETY: waitpid on a specific PID with a valid out-pointer.
                unsafe { waitpid(*pid, &mut status, WNOHANG) };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            !same(),
            "reaper pid {pid} of {prefix} still exists after down"
        );
    }
    // No process whatsoever that mentions the lab directory (sshd -f, postgres -D, the stand-in).
    let dir_text = dir.to_string_lossy().to_string();
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&dir_text) {
            procs.push(format!("{pid}: {text}"));
        }
    }
    assert!(
        procs.is_empty(),
        "processes of the lab left after down: {procs:#?}"
    );
}
