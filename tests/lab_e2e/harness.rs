//! The lab end-to-end harness: one `Lab` per test (brought up with `tests/lab/up`, always taken
//! down again by `Drop`), commands run inside the lab's network namespaces with a time limit,
//! and what the tests read on the hosts (PostgreSQL, the VIP, the GoCD stand-in, files).
//!
//! Nothing here is sent from the root namespace: every probe, `psql` and `drplan` runs under
//! `ip netns exec <lab namespace>`.

#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn plan(name: &str) -> PathBuf {
    repo().join("plans/gocd").join(format!("{name}.yaml"))
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------- running commands

/// What a finished command left behind.
pub(crate) struct Out {
    pub shown: String,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Out {
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }
    pub(crate) fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// For assertion messages: the command, how it ended, and all it printed.
    pub(crate) fn report(&self) -> String {
        format!(
            "$ {}\n(exit {:?}, signal {:?}, {:.1} s)\n--- stdout ---\n{}--- stderr ---\n{}",
            self.shown,
            self.code,
            self.signal,
            self.took.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }
}

/// Reads a pipe to its end on a thread; the result comes through the channel.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs a command with a time limit (killed and reported when over it) and prints what it did
/// (the harness shows it when the test fails).
pub(crate) fn run(cmd: &mut Command, limit: Duration) -> Out {
    let out = run_quiet(cmd, limit);
    println!("{}", out.report());
    out
}

/// `run` without printing: for the many small probes (psql, ip addr, probe) whose callers put
/// the output into their own messages. Output is collected until the process exits plus a
/// short grace: a daemon it leaves behind (an ssh ControlMaster of a killed drplan) may keep
/// the pipes open forever, and must not hang the test.
pub(crate) fn run_quiet(cmd: &mut Command, limit: Duration) -> Out {
    use std::os::unix::process::ExitStatusExt;
    let shown = format!("{cmd:?}");
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let out_rx = drain(child.stdout.take().unwrap());
    let err_rx = drain(child.stderr.take().unwrap());
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for a child") {
            break s;
        }
        if started.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait for a killed child");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let grab = |rx: mpsc::Receiver<Vec<u8>>| {
        String::from_utf8_lossy(&rx.recv_timeout(secs(5)).unwrap_or_default()).into_owned()
    };
    let out = Out {
        shown,
        code: status.code(),
        signal: status.signal(),
        stdout: grab(out_rx),
        stderr: grab(err_rx),
        took,
    };
    assert!(
        !timed_out,
        "command ran over its {limit:?} limit and was killed:\n{}",
        out.report()
    );
    out
}

/// Retries `f` until it returns Ok or `limit` passes; then fails with the last reason.
pub(crate) fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if started.elapsed() > limit => {
                panic!("waited {limit:?} for {what}; still: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

// ---------------------------------------------------------------- root, one lab at a time

fn uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Every lab test starts here: it FAILS (never skips) without root, and the tests of this file
/// run one after the other — a lab is heavy for a 2-core machine, and so are its timeouts.
pub(crate) fn serial() -> MutexGuard<'static, ()> {
    assert_eq!(
        uid(),
        Some(0),
        "the lab end-to-end tests need root (network namespaces, sshd, PostgreSQL); they do not skip — run them as root, as CI does"
    );
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------- the lab

static LABS: AtomicUsize = AtomicUsize::new(0);

/// The outcome of one `drplan apply` (or resume, rollback): the output and the run it made.
pub(crate) struct Run {
    pub out: Out,
    pub id: String,
}

pub(crate) struct Lab {
    pub dir: PathBuf,
    env: HashMap<String, String>,
    finished: bool,
}

/// A snapshot of heartbeat rows: how many, the largest id, and a digest of every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rows {
    pub count: i64,
    pub max: i64,
    pub digest: String,
}

impl Lab {
    /// `tests/lab/up --dir /tmp/dle-<pid>-<n>`; panics (after `up` has cleaned up) if it fails.
    pub(crate) fn up() -> Lab {
        Lab::up_flavour("default")
    }

    /// `up` with `--flavour FLAVOUR` (`default` or `hardened`, tests/lab/README.md).
    pub(crate) fn up_flavour(flavour: &str) -> Lab {
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/dle-{}-{n}", std::process::id()));
        assert!(dir.as_os_str().len() <= 40);
        std::fs::create_dir_all(&dir).expect("create the lab directory");
        let mut lab = Lab {
            dir: dir.clone(),
            env: HashMap::new(),
            finished: false,
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let up = run(
            Command::new(repo().join("tests/lab/up"))
                .arg("--dir")
                .arg(&dir)
                .args(["--flavour", flavour])
                .env("CARGO", cargo)
                .current_dir(repo()),
            secs(600),
        );
        assert!(up.ok(), "tests/lab/up failed:\n{}", up.report());
        lab.env = parse_env(&dir.join("lab.env"));
        for key in [
            "LAB_PREFIX",
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
            "LAB_PGLOG_PG1",
            "LAB_PG_BIN",
            "LAB_GO_PORT",
            "LAB_STANDIN",
            "LAB_SSH_OPTS",
            "LAB_GO_PLUGINS_DIR",
        ] {
            assert!(lab.env.contains_key(key), "lab.env lacks {key}");
        }
        assert_eq!(lab.var("LAB_FLAVOUR"), flavour);
        lab
    }

    /// The hardened flavour: a sudo login on port 2222, scram passwords, Debian's layout,
    /// GoCD without the add-on and GO2 a cold (stopped) standby.
    pub(crate) fn hardened(&self) -> bool {
        self.var("LAB_FLAVOUR") == "hardened"
    }

    /// The site's lab variables as owned strings (for the helpers of `common::lab`).
    fn vars(&self) -> impl Fn(&str) -> String + '_ {
        |k| self.var(k).to_owned()
    }

    pub(crate) fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("lab.env has no {key}"))
    }

    /// Host names: ctl, pg1, pg2, go1, go2.
    pub(crate) fn ns(&self, host: &str) -> &str {
        self.var(&format!("LAB_NS_{}", host.to_uppercase()))
    }

    pub(crate) fn addr(&self, host: &str) -> &str {
        self.var(&format!("LAB_ADDR_{}", host.to_uppercase()))
    }

    pub(crate) fn vip(&self) -> &str {
        self.var("LAB_VIP")
    }

    pub(crate) fn site(&self) -> PathBuf {
        self.dir.join("site.yaml")
    }

    /// `ip netns exec <host's namespace> PROG ARGS…`
    pub(crate) fn cmd_in(&self, host: &str, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(host)]).arg(prog);
        c
    }

    /// psql from the controller to pg1 or pg2, database gocd; Err on any failure (unreachable).
    pub(crate) fn psql(&self, host: &str, sql: &str) -> Result<String, String> {
        let out = run_quiet(
            self.cmd_in("ctl", Path::new(self.var("LAB_PG_BIN")).join("psql"))
                .env("PGCONNECT_TIMEOUT", "5")
                .env(
                    "PGPASSFILE",
                    self.env
                        .get("LAB_PG_PASSFILE")
                        .map_or("/dev/null", String::as_str),
                )
                .args([
                    "-X",
                    "-w",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-At",
                    "-h",
                    self.addr(host),
                ])
                .args([
                    "-p",
                    self.var("LAB_PG_PORT"),
                    "-U",
                    "postgres",
                    "-d",
                    "gocd",
                ])
                .args(["-c", sql]),
            secs(60),
        );
        if out.ok() {
            Ok(out.stdout.trim_end().to_string())
        } else {
            Err(format!("psql on {host}: {}", out.stderr.trim()))
        }
    }

    /// psql that must work.
    pub(crate) fn q(&self, host: &str, sql: &str) -> String {
        self.psql(host, sql).unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn in_recovery(&self, host: &str) -> bool {
        match self.q(host, "select pg_is_in_recovery()").as_str() {
            "t" => true,
            "f" => false,
            other => panic!("pg_is_in_recovery() on {host} said {other:?}"),
        }
    }

    /// Heartbeat rows matching `filter` on a host (a single statement: one snapshot).
    pub(crate) fn rows(&self, host: &str, filter: &str) -> Rows {
        let line = self.q(
            host,
            &format!(
                "select count(*), coalesce(max(id), 0), coalesce(md5(string_agg(id::text || '|' || server || '|' || extract(epoch from at)::text, ',' order by id)), '-') from heartbeat where {filter}"
            ),
        );
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 3, "unexpected psql output {line:?}");
        Rows {
            count: f[0].parse().unwrap(),
            max: f[1].parse().unwrap(),
            digest: f[2].to_string(),
        }
    }

    /// Which of the lab's hosts have the VIP on eth0 (by `ip -o addr` inside each).
    pub(crate) fn vip_holders(&self) -> Vec<&'static str> {
        let needle = format!(" {}/", self.vip());
        ["pg1", "pg2", "go1", "go2"]
            .into_iter()
            .filter(|h| {
                let out = run_quiet(
                    self.cmd_in(h, "ip")
                        .args(["-o", "-4", "addr", "show", "dev", "eth0"]),
                    secs(30),
                );
                assert!(out.ok(), "ip addr on {h}:\n{}", out.report());
                out.stdout.contains(&needle)
            })
            .collect()
    }

    /// `gocd-standin probe URL` from the controller: (exit code, body). 0 = HTTP 2xx,
    /// 1 = another status, 2 = nothing answered.
    pub(crate) fn probe(&self, url: &str) -> (i32, String) {
        let out = run_quiet(
            self.cmd_in("ctl", self.var("LAB_STANDIN"))
                .args(["probe", "--timeout", "5", url]),
            secs(30),
        );
        (out.code.unwrap_or(-1), out.stdout)
    }

    pub(crate) fn go_url(&self, addr: &str, path: &str) -> String {
        format!("http://{addr}:{}{path}", self.var("LAB_GO_PORT"))
    }

    /// `/lab/status` of the GoCD stand-in answering at `addr` (the VIP or a host's address).
    pub(crate) fn lab_status(&self, addr: &str) -> Result<Value, String> {
        let (code, body) = self.probe(&self.go_url(addr, "/lab/status"));
        if code != 0 {
            return Err(format!(
                "/lab/status at {addr}: probe exit {code}, body {body:?}"
            ));
        }
        serde_json::from_str(&body).map_err(|e| format!("/lab/status at {addr}: {e}: {body:?}"))
    }

    /// A GoCD host's external plugins directory, as the machine sees it (the host sees it as
    /// `LAB_GO_PLUGINS_DIR`, bound by `ip netns exec` like /etc/go).
    pub(crate) fn plugins_dir(&self, host: &str) -> PathBuf {
        PathBuf::from(format!(
            "/etc/netns/{}-{host}{}",
            self.var("LAB_PREFIX"),
            self.var("LAB_GO_PLUGINS_DIR").trim_start_matches("/etc")
        ))
    }

    /// A GoCD host's external plugins: (file name, content), sorted.
    pub(crate) fn plugins(&self, host: &str) -> Vec<(String, String)> {
        let mut found: Vec<(String, String)> = std::fs::read_dir(self.plugins_dir(host))
            .unwrap_or_else(|e| panic!("the plugins of {host}: {e}"))
            .filter_map(std::result::Result::ok)
            .map(|e| {
                let content = std::fs::read_to_string(e.path()).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), content)
            })
            .collect();
        found.sort();
        found
    }

    /// A file as the host sees it (its own /etc/go, bound by `ip netns exec`).
    pub(crate) fn cat(&self, host: &str, path: &str) -> String {
        let out = run_quiet(self.cmd_in(host, "cat").arg(path), secs(30));
        assert!(out.ok(), "cat {path} on {host}:\n{}", out.report());
        out.stdout
    }

    /// A shell command as root on a host over the lab's ssh (so daemons it starts belong to
    /// the host's reaper, as with drplan).
    pub(crate) fn ssh(&self, host: &str, script: &str) -> Out {
        let argv = self.ssh_argv(host, script);
        run(self.cmd_in("ctl", &argv[0]).args(&argv[1..]), secs(120))
    }

    /// The controller's argv that runs `script` as root on `host` over the lab's ssh: as root
    /// (default flavour) or as the login user through sudo (hardened).
    pub(crate) fn ssh_argv(&self, host: &str, script: &str) -> Vec<String> {
        let user = self.var("LAB_SSH_USER");
        let mut argv = vec!["ssh".to_owned()];
        argv.extend(
            self.var("LAB_SSH_OPTS")
                .split_whitespace()
                .map(String::from),
        );
        argv.push(format!("{user}@{}", self.addr(host)));
        argv.push(crate::common::lab::as_root(user, script));
        argv
    }

    /// `pg_ctl ARGS` as postgres on pg1 or pg2 (with the flavour's layout), which must work.
    pub(crate) fn pg_ctl(&self, host: &str, args: &str) {
        let out = self.ssh(host, &self.pg_ctl_script(host, args));
        assert!(out.ok(), "pg_ctl {args} on {host}:\n{}", out.report());
    }

    /// The shell command `pg_ctl` runs on the host.
    pub(crate) fn pg_ctl_script(&self, host: &str, args: &str) -> String {
        crate::common::lab::pg_ctl_script(self.vars(), host, args)
    }

    /// Where pg1's or pg2's `pg_hba.conf` is (its data directory, or Debian's /etc).
    pub(crate) fn pg_conf_dir(&self, host: &str) -> String {
        crate::common::lab::pg_conf_dir(self.vars(), host)
    }

    /// A site copy where `role`'s host cannot be logged into: its ssh port is one where
    /// nothing listens; `extra` (`key: value, `) is added to the host's mapping.
    pub(crate) fn locked_out_site(&self, name: &str, role: &str, extra: &str) -> PathBuf {
        let host = format!("{role}: {{ address: {}, ", self.addr_of_role(role));
        let port = format!("port: {}, ", self.var("LAB_SSH_PORT"));
        self.site_copy(name, |t| {
            let (head, rest) = t.split_once(&host).expect("the role's host line");
            let rest = rest.strip_prefix(&port).unwrap_or(rest);
            format!("{head}{host}port: 2223, {extra}{rest}")
        })
    }

    fn addr_of_role(&self, role: &str) -> &str {
        match role {
            "pg_primary" => self.addr("pg1"),
            "pg_standby" => self.addr("pg2"),
            "go_primary" => self.addr("go1"),
            "go_standby" => self.addr("go2"),
            other => panic!("no lab host plays {other}"),
        }
    }

    // ------------------------------------------------------------ drplan

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `ip netns exec <ctl> drplan --state-dir DIR/state ARGS…` with extra environment.
    pub(crate) fn drplan_cmd(&self, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut c = crate::common::drplan_in(self.ns("ctl"));
        c.arg("--state-dir").arg(self.state_dir()).args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        c
    }

    /// Runs drplan in the controller (printed for the failure report).
    pub(crate) fn drplan(&self, args: &[&str], envs: &[(&str, &str)]) -> Out {
        run(&mut self.drplan_cmd(args, envs), secs(900))
    }

    pub(crate) fn runs(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.state_dir().join("runs"))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// `drplan apply PLAN --site SITE --yes EXTRA…`; the run is the one directory it added.
    pub(crate) fn apply(
        &self,
        plan_name: &str,
        site: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Run {
        self.apply_file(&plan(plan_name), site, extra, envs)
    }

    /// `apply` of a plan file anywhere (a test's changed copy of a shipped plan).
    pub(crate) fn apply_file(
        &self,
        plan: &Path,
        site: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Run {
        let before = self.runs();
        let mut args = vec![
            "apply",
            plan.to_str().unwrap(),
            "--site",
            site.to_str().unwrap(),
            "--yes",
        ];
        args.extend_from_slice(extra);
        let out = self.drplan(&args, envs);
        let new: Vec<String> = self
            .runs()
            .into_iter()
            .filter(|r| !before.contains(r))
            .collect();
        assert_eq!(
            new.len(),
            1,
            "apply should have made exactly one run: {new:?}\n{}",
            out.report()
        );
        Run {
            out,
            id: new[0].clone(),
        }
    }

    /// `drplan status RUN --format json`.
    pub(crate) fn status(&self, run: &str) -> Value {
        let out = run_quiet(
            &mut self.drplan_cmd(&["status", run, "--format", "json"], &[]),
            secs(60),
        );
        assert!(out.ok(), "drplan status:\n{}", out.report());
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --format json is not JSON ({e}):\n{}", out.report()))
    }

    /// Step id → state ("done", "skipped (when)", "in doubt", …) from `drplan status`.
    pub(crate) fn step_states(&self, run: &str) -> Vec<(String, String)> {
        self.status(run)["steps"]
            .as_array()
            .expect("status has steps")
            .iter()
            .map(|s| {
                (
                    s["step"].as_str().unwrap().to_string(),
                    s["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub(crate) fn step_state(&self, run: &str, step: &str) -> String {
        self.step_states(run)
            .into_iter()
            .find(|(s, _)| s == step)
            .unwrap_or_else(|| panic!("run {run} has no step {step}"))
            .1
    }

    /// The run's journal, one JSON object per line.
    pub(crate) fn journal(&self, run: &str) -> Vec<Value> {
        let path = self
            .state_dir()
            .join("runs")
            .join(run)
            .join("journal.jsonl");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {l:?}: {e}")))
            .collect()
    }

    /// A copy of site.yaml, next to it (the ssh key paths are relative to the site file),
    /// changed by `edit`, which must change it.
    pub(crate) fn site_copy(&self, name: &str, edit: impl FnOnce(&str) -> String) -> PathBuf {
        let text = std::fs::read_to_string(self.site()).expect("read site.yaml");
        let changed = edit(&text);
        assert_ne!(
            changed, text,
            "{name}: the edit changed nothing in site.yaml:\n{text}"
        );
        let path = self.dir.join(name);
        std::fs::write(&path, &changed).expect("write a site copy");
        println!("---- {name} ----\n{changed}");
        path
    }

    /// A site copy with these values in its top-level `params:` section (which the lab's site
    /// ends with), replacing the site's own values of the same names.
    pub(crate) fn site_with_params(&self, name: &str, params: &[(&str, &str)]) -> PathBuf {
        self.site_copy(name, |text| with_params(text, params))
    }

    // ------------------------------------------------------------ going away

    fn down(&self) -> Out {
        run(
            Command::new(repo().join("tests/lab/down"))
                .arg("--dir")
                .arg(&self.dir)
                .current_dir(repo()),
            secs(300),
        )
    }

    fn namespaces_left(&self) -> Vec<String> {
        let Some(prefix) = self.env.get("LAB_PREFIX") else {
            return Vec::new();
        };
        let out = run_quiet(Command::new("ip").args(["netns", "list"]), secs(30));
        out.stdout
            .lines()
            .filter(|l| l.starts_with(&format!("{prefix}-")))
            .map(str::to_string)
            .collect()
    }

    /// Takes the lab down and checks that none of its namespaces is left; removes DIR.
    pub(crate) fn finish(mut self) {
        self.finished = true;
        let down = self.down();
        assert!(down.ok(), "tests/lab/down failed:\n{}", down.report());
        let left = self.namespaces_left();
        assert!(left.is_empty(), "namespaces left after down: {left:?}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // A test failed (or forgot finish): the lab goes anyway; DIR stays for a post-mortem.
        let down = self.down();
        if !down.ok() {
            eprintln!("lab: down failed during cleanup:\n{}", down.report());
        }
        let left = self.namespaces_left();
        if !left.is_empty() {
            eprintln!("lab: namespaces left after down: {left:?}");
        }
        if std::thread::panicking() {
            eprintln!("lab: logs and state kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A site's text with `params` set in its `params:` section, the last one of the file (added
/// when there is none).
pub(crate) fn with_params(text: &str, params: &[(&str, &str)]) -> String {
    let (head, section) = match text.find("\nparams:\n") {
        Some(at) => (&text[..at + 1], &text[at + "\nparams:\n".len()..]),
        None => (text, ""),
    };
    assert!(
        section.lines().all(|l| l.starts_with("  ")),
        "the site's params: section must be its last:\n{text}"
    );
    let mut t = head.to_string();
    if !t.ends_with('\n') {
        t.push('\n');
    }
    t.push_str("params:\n");
    for line in section.lines() {
        let key = line.trim_start().split(':').next().unwrap_or("");
        if !params.iter().any(|(k, _)| *k == key) {
            t.push_str(&format!("{line}\n"));
        }
    }
    for (k, v) in params {
        t.push_str(&format!("  {k}: {v}\n"));
    }
    t
}

/// `lab.env`: KEY=VALUE lines, values bare or double-quoted (never escaped).
fn parse_env(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.to_string(), v.to_string())
        })
        .collect()
}
