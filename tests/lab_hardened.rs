//! drplan on the lab's hardened flavour (`tests/lab/up --flavour hardened`): the same four hosts,
//! built the way stricter sites are — login as an unprivileged user that escalates with
//! `sudo -n` (root login refused), sshd on 2222, PostgreSQL on 6543 with scram passwords over
//! TCP and for replication, data directories under a root-owned parent, and GoCD without the
//! business-continuity add-on, controlled by its own script (which says 1, not 3, for
//! "stopped"; the lab's site adapts that with `sh`).
//!
//! 1. every shipped GoCD plan validates against the lab's generated site, and the previews of
//!    failover, failback and switchover show the site's login user, port and escalations;
//! 2. the operations those plans need from such a site — GoCD's script through sudo, the VIP
//!    moved away and back as root, PostgreSQL stopped and started as postgres, /etc/go synced
//!    between root-only directories — applied by the real binary, and checked on the hosts;
//! 3. the shipped plans themselves, with the site's PostgreSQL passwords (`postgres.passwords`
//!    in the generated site): `drplan check`, failover, a failback refused by its preflight
//!    (nothing stopped), failback by basebackup (under the root-owned parent, the old data kept
//!    beside it; an external plugin GO2 gained while it served copied to GO1), failover again,
//!    failback by pg_rewind through a replication slot (the kept copy removed), PG2 streaming
//!    as the replication user after each failback, and no password in the run directory;
//! 4. a planned switchover that loses no row and rebuilds PG1 as PG2's standby by basebackup
//!    (under the root-owned parent, through a replication slot, as the replication user), then
//!    a failback by pg_rewind to the original layout and `drplan check` green.
//!
//! GoCD without the add-on has no standby mode: GO2 cannot start as a standby of GO1 (it
//! refuses its in-recovery database). The lab's site says so (`go_standby: cold`): the
//! failback leaves GO2 stopped, and the switchover leaves GO1 stopped.
//!
//! Needs root, the lab's packages and `sudo`. Without them it FAILS: a lab test that did not run
//! has not passed.

mod common;
#[path = "lab_e2e/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One lab at a time from this file: a lab is heavy for a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn show(what: &str, started: Instant, out: &Output) {
    println!(
        "---- {what} ({:.1} s, {}) ----\n{}{}",
        started.elapsed().as_secs_f64(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lab_script(name: &str, dir: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let out = Command::new(repo().join("tests/lab").join(name))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env("CARGO", cargo)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/lab/{name}: {e}"));
    show(
        &format!("tests/lab/{name} {}", args.join(" ")),
        started,
        &out,
    );
    out
}

fn uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A hardened lab, taken down (and its directory removed) when dropped, whatever happened.
struct Lab {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Lab {
    fn up() -> Lab {
        assert_eq!(
            uid(),
            Some(0),
            "the hardened lab test needs root (network namespaces, bind mounts); it does not skip"
        );
        for (path, package) in [
            ("/usr/bin/sudo", "sudo"),
            ("/usr/sbin/sshd", "openssh-server"),
            ("/usr/bin/arping", "iputils-arping"),
            ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
            ("/usr/bin/pg_ctlcluster", "postgresql-common"),
        ] {
            assert!(
                Path::new(path).is_file(),
                "the hardened lab needs {path} (package {package})"
            );
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Short: drplan keeps its ssh control sockets under DIR/s (sun_path holds 107 bytes).
        let dir = std::env::temp_dir().join(format!("hlab-{:x}{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the lab directory");
        let mut lab = Lab {
            dir,
            env: Vec::new(),
        };
        let up = lab_script("up", &lab.dir, &["--flavour", "hardened"]);
        assert!(
            up.status.success(),
            "tests/lab/up --flavour hardened failed"
        );
        let text = std::fs::read_to_string(lab.dir.join("lab.env")).expect("read lab.env");
        lab.env = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        assert_eq!(lab.var("LAB_FLAVOUR"), "hardened");
        lab
    }

    fn var(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("lab.env has no {name}"))
    }

    fn site(&self) -> PathBuf {
        self.dir.join("site.yaml")
    }

    /// `drplan ARGS` inside the controller's namespace, state in the lab directory.
    fn drplan(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = common::drplan_in(&self.var("LAB_NS_CTL"))
            .arg("--state-dir")
            .arg(self.dir.join("s"))
            .args(args)
            .current_dir(repo())
            .output()
            .expect("run drplan");
        show(&format!("drplan {}", args.join(" ")), started, &out);
        out
    }

    /// One value from PostgreSQL on pg1/pg2, over TCP from the controller, as postgres with
    /// its scram password (the lab's password file).
    fn q(&self, host: &str, sql: &str) -> String {
        let addr = self.var(&format!("LAB_ADDR_{}", host.to_uppercase()));
        common::lab::LabEnv::read(&self.dir)
            .psql(&addr, sql)
            .trim()
            .to_string()
    }

    /// What a step of a run finished with, as its journal records it.
    fn step_result(&self, run: &str, step: &str) -> serde_json::Value {
        let journal = self.dir.join("s/runs").join(run).join("journal.jsonl");
        let text = std::fs::read_to_string(&journal).expect("read the run's journal");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["record"]["kind"] == "step_finished" && r["record"]["step"] == step)
            .map(|r| r["record"]["result"].clone())
            .unwrap_or_else(|| panic!("{} records no end of {step}", journal.display()))
    }

    /// Which hosts hold the VIP on eth0.
    fn vip_owners(&self) -> Vec<String> {
        let vip = format!(" {}/24 ", self.var("LAB_VIP"));
        ["pg1", "pg2", "go1", "go2", "ctl"]
            .iter()
            .filter(|h| {
                let out = Command::new("ip")
                    .args(["-n", &self.var(&format!("LAB_NS_{}", h.to_uppercase()))])
                    .args(["-o", "-4", "addr", "show", "dev", "eth0"])
                    .output()
                    .expect("ip addr");
                String::from_utf8_lossy(&out.stdout).contains(&vip)
            })
            .map(std::string::ToString::to_string)
            .collect()
    }

    /// HTTP GET from the controller (the lab's own probe): Some(body) on 2xx.
    fn get(&self, url: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.var("LAB_NS_CTL")])
            .arg(self.var("LAB_STANDIN"))
            .args(["probe", "--timeout", "3", url])
            .output()
            .expect("run the probe");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    fn heartbeats(&self, host: &str) -> u64 {
        self.q(host, "select count(*) from heartbeat where server = 'go1'")
            .parse()
            .expect("a count")
    }

    /// pg1 primary, pg2 its streaming standby (as replicator), go1 healthy through the VIP,
    /// which only go1 holds; go2 stopped.
    fn assert_pair_one_serves(&self, ctx: &str) {
        assert_eq!(
            self.q("pg1", "select pg_is_in_recovery()"),
            "f",
            "{ctx}: pg1 is not a primary"
        );
        assert_eq!(
            self.q("pg2", "select pg_is_in_recovery()"),
            "t",
            "{ctx}: pg2 is not a standby"
        );
        wait_for(
            &format!("{ctx}: pg2 streaming from pg1 as replicator"),
            30,
            || {
                let r = self.q(
                "pg1",
                &format!(
                    "select usename || ' ' || state from pg_stat_replication where client_addr = '{}'",
                    self.var("LAB_ADDR_PG2")
                ),
            );
                (r == "replicator streaming").then_some(()).ok_or(r)
            },
        );
        assert_eq!(self.vip_owners(), ["go1"], "{ctx}: VIP owners");
        let health = format!(
            "http://{}:{}/go/api/v1/health",
            self.var("LAB_VIP"),
            self.var("LAB_GO_PORT")
        );
        wait_for(
            &format!("{ctx}: GoCD healthy through the VIP"),
            30,
            || match self.get(&health) {
                Some(body) if body == r#"{"health":"OK"}"# => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        let go2 = format!(
            "http://{}:{}/go/api/v1/health",
            self.var("LAB_ADDR_GO2"),
            self.var("LAB_GO_PORT")
        );
        assert_eq!(
            self.get(&go2),
            None,
            "{ctx}: something answers on go2 (a cold standby)"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let down = lab_script("down", &self.dir, &[]);
        if down.status.success() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab: down failed; inspect {}", self.dir.display());
        }
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => {
                panic!("timed out after {secs} s waiting for {what}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn shipped_plans_validate_and_preview_against_the_hardened_site() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = Lab::up();
    let site = lab.site();
    let site = site.to_str().expect("a UTF-8 path");
    let user = lab.var("LAB_SSH_USER");
    let port = lab.var("LAB_SSH_PORT");
    assert_eq!(port, "2222");
    assert!(
        user.starts_with(&lab.var("LAB_PREFIX")),
        "login user {user}"
    );

    for plan in ["failover", "failback", "switchover", "readiness"] {
        let path = format!("plans/gocd/{plan}.yaml");
        let out = lab.drplan(&["validate", &path, "--site", site]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "validate {plan}: {}",
            text(&out)
        );
        assert!(
            text(&out).contains("is valid"),
            "validate {plan}: {}",
            text(&out)
        );
    }
    for plan in ["failover", "failback", "switchover"] {
        let path = format!("plans/gocd/{plan}.yaml");
        let out = lab.drplan(&["plan", &path, "--site", site]);
        assert_eq!(out.status.code(), Some(0), "plan {plan}: {}", text(&out));
        let preview = text(&out);
        for host in ["PG1", "PG2", "GO1", "GO2"] {
            let at = format!("{user}@{}:{port}", lab.var(&format!("LAB_ADDR_{host}")));
            assert!(
                preview.contains(&at),
                "plan {plan}: the preview does not name {at}"
            );
        }
        assert!(
            preview.contains("as postgres"),
            "plan {plan}: no step runs as postgres"
        );
        assert!(
            preview.contains("as root"),
            "plan {plan}: no step runs as root"
        );
        assert!(
            preview.contains("port: 6543"),
            "plan {plan}: PostgreSQL's port is not 6543"
        );
    }

    // Previews change nothing.
    lab.assert_pair_one_serves("after validate and plan");
}

/// What the shipped plans do to a site, minus PostgreSQL logins, with the shipped plans' own
/// step shapes: GoCD's script through sudo (under the site's name for the service), the VIP
/// away and back, the standby PostgreSQL (Debian's layout) stopped with pg_ctlcluster, started
/// with pg_ctl and its configuration file, stopped with pg_ctl and started with pg_ctlcluster
/// again, /etc/go synced between the two GoCD hosts.
const OPERATIONS: &str = r#"version: 1
name: hardened-operations
description: The shipped GoCD plans' host operations on a hardened site (no PostgreSQL login).
roles: [go_primary, go_standby, pg_primary, pg_standby]
steps:
  - id: stop-go-primary
    on: go_primary
    action: service.stop
    with: { unit: "{{ vars.go.service }}" }
  - id: stop-go-standby
    on: go_standby
    action: service.stop
    with: { unit: "{{ vars.go.service }}" }
  - id: release-vip
    on: go_primary
    action: vip.release
    with: { address: "{{ vars.vip.address }}", interface: "{{ vars.vip.interface }}" }
    needs: [stop-go-primary]
  - id: stop-pg-standby
    on: pg_standby
    become: postgres
    action: pg.stop
    with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", mode: fast, control: "{{ vars.pg.control }}", cluster: "{{ vars.pg.cluster }}" }
  - id: start-pg-standby-with-pg-ctl
    on: pg_standby
    become: postgres
    action: pg.start
    with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", log_file: "{{ hosts.pg_standby.vars.pg.log_file }}", config_file: "{{ vars.pg.config_file }}" }
    needs: [stop-pg-standby]
  - id: stop-pg-standby-with-pg-ctl
    on: pg_standby
    become: postgres
    action: pg.stop
    with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", mode: fast }
    needs: [start-pg-standby-with-pg-ctl]
  - id: start-pg-standby
    on: pg_standby
    become: postgres
    action: pg.start
    with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", control: "{{ vars.pg.control }}", cluster: "{{ vars.pg.cluster }}" }
    needs: [stop-pg-standby-with-pg-ctl]
  - id: sync-go-config
    on: go_standby
    action: file.sync
    with: { from: go_primary, src: "{{ vars.go.config_dir }}", dest: "{{ vars.go.config_dir }}", exclude: [db.properties] }
    needs: [stop-go-primary, stop-go-standby]
  - id: set-go-primary-primary
    on: go_primary
    action: gocd.set_mode
    with: { mode: primary, defaults_file: "{{ vars.go.defaults_file }}" }
    needs: [stop-go-primary]
  - id: assign-vip
    on: go_primary
    action: vip.assign
    with: { address: "{{ vars.vip.address }}", interface: "{{ vars.vip.interface }}" }
    needs: [release-vip]
  - id: start-go-primary
    on: go_primary
    action: service.start
    with: { unit: "{{ vars.go.service }}" }
    needs: [assign-vip, set-go-primary-primary, sync-go-config, start-pg-standby]
  - id: verify-agents-path
    on: local
    action: http.wait
    with:
      url: "http://{{ vars.vip.address | split('/') | first }}:{{ vars.go.port }}/go/api/v1/health"
      timeout: 30s
    needs: [start-go-primary]
"#;

/// PG2 stopped with pg_ctlcluster, then started with pg_ctl but without its configuration file,
/// which Debian's layout keeps out of the data directory: the start fails, and the rollback
/// starts PG2 again with pg_ctlcluster.
const WITHOUT_CONFIG_FILE: &str = r#"version: 1
name: hardened-without-config-file
roles: [pg_standby]
steps:
  - id: stop-pg-standby
    on: pg_standby
    become: postgres
    action: pg.stop
    with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", control: "{{ vars.pg.control }}", cluster: "{{ vars.pg.cluster }}" }
    rollback:
      action: pg.start
      with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", control: "{{ vars.pg.control }}", cluster: "{{ vars.pg.cluster }}" }
  - id: start-pg-standby-without-config-file
    on: pg_standby
    become: postgres
    action: pg.start
    with: { data_dir: "{{ hosts.pg_standby.vars.pg.data_dir }}", bin_dir: "{{ vars.pg.bin_dir }}", log_file: "{{ hosts.pg_standby.vars.pg.log_file }}" }
    needs: [stop-pg-standby]
"#;

#[test]
fn the_shipped_plans_host_operations_run_over_sudo_on_the_hardened_lab() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = Lab::up();
    lab.assert_pair_one_serves("the new lab");
    let plan = lab.dir.join("operations.yaml");
    std::fs::write(&plan, OPERATIONS).expect("write the plan");
    let site = lab.site();

    let beats = lab.heartbeats("pg1");
    let out = lab.drplan(&[
        "apply",
        plan.to_str().expect("UTF-8"),
        "--site",
        site.to_str().expect("UTF-8"),
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(0), "apply: {}", text(&out));
    assert!(
        text(&out).contains("12 done, 0 skipped, 0 failed"),
        "apply: {}",
        text(&out)
    );

    // The steps really happened on the hosts (go1 was stopped and is back, pg2 restarted), and
    // the site is as it was: pg1 primary, pg2 streaming from it as replicator, VIP on go1 only.
    let go1_log = std::fs::read_to_string(lab.dir.join("go1/go-server.log")).expect("go1's log");
    assert_eq!(
        go1_log.matches("go-server-ctl stop").count(),
        1,
        "go1 was not stopped once:\n{go1_log}"
    );
    assert_eq!(
        go1_log.matches("go-server-ctl start").count(),
        2,
        "go1 was not started again:\n{go1_log}"
    );
    let pg2_log = std::fs::read_to_string(lab.var("LAB_PGLOG_PG2")).expect("pg2's log");
    assert_eq!(
        pg2_log.matches("database system is shut down").count(),
        2,
        "pg2 was not stopped twice:\n{pg2_log}"
    );
    lab.assert_pair_one_serves("after the operations");
    assert_eq!(
        lab.q("pg2", "show config_file"),
        "/etc/postgresql/15/main/postgresql.conf"
    );
    wait_for("go1 writing heartbeats again, replayed on pg2", 30, || {
        let (one, two) = (lab.heartbeats("pg1"), lab.heartbeats("pg2"));
        (one >= beats + 2 && two >= beats + 2)
            .then_some(())
            .ok_or(format!("pg1 {one}, pg2 {two}, before {beats}"))
    });

    // Without its configuration file pg_ctl cannot start a Debian-layout cluster; the
    // rollback starts it again with pg_ctlcluster.
    let plan = lab.dir.join("without-config-file.yaml");
    std::fs::write(&plan, WITHOUT_CONFIG_FILE).expect("write the plan");
    let (plan, site) = (plan.to_str().expect("UTF-8"), site.to_str().expect("UTF-8"));
    let out = lab.drplan(&["apply", plan, "--site", site, "--yes"]);
    assert_eq!(out.status.code(), Some(1), "apply: {}", text(&out));
    assert!(
        text(&out).contains("✗ start-pg-standby-without-config-file failed"),
        "apply: {}",
        text(&out)
    );
    let pg2_log = std::fs::read_to_string(lab.var("LAB_PGLOG_PG2")).expect("pg2's log");
    assert!(
        pg2_log.contains("could not access the server configuration file"),
        "{pg2_log}"
    );
    let out = lab.drplan(&["rollback", &run_id(&out)]);
    assert_eq!(out.status.code(), Some(0), "rollback: {}", text(&out));
    lab.assert_pair_one_serves("after the rollback");
}

/// The run id an `apply` printed first (`run RUN: plan …`).
fn run_id(out: &Output) -> String {
    let t = text(out);
    t.split_once("] run ")
        .and_then(|(_, rest)| rest.split_once(':'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("no run id in:\n{t}"))
}

/// `drplan apply plans/gocd/PLAN.yaml --site SITE --yes`.
fn apply(lab: &Lab, plan: &str, site: &Path) -> Output {
    lab.drplan(&[
        "apply",
        &format!("plans/gocd/{plan}.yaml"),
        "--site",
        site.to_str().expect("UTF-8"),
        "--yes",
    ])
}

/// A failback that succeeds, leaving GO2 a cold standby (the site's `go_standby: cold`); its
/// run id.
fn failback(lab: &Lab, site: &Path, rebuild: &str) -> String {
    let out = apply(lab, "failback", site);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "failback by {rebuild}: {said}");
    assert!(
        said.contains(&format!("✓ {rebuild}-pg-primary done"))
            && said.contains("✓ remove-old-copies done")
            && said.contains("GO2 stays stopped (a cold standby)"),
        "failback by {rebuild}: {said}"
    );
    let status = lab.drplan(&["status", &run_id(&out)]);
    assert!(
        text(&status)
            .lines()
            .any(|l| l.contains("start-go-standby") && l.contains("skipped (when)")),
        "GO2 is not started: {}",
        text(&status)
    );
    run_id(&out)
}

/// The site with these values in its `params:` section.
fn site_with(lab: &Lab, name: &str, params: &[(&str, &str)]) -> PathBuf {
    let text = std::fs::read_to_string(lab.site()).expect("read site.yaml");
    let path = lab.dir.join(name);
    std::fs::write(&path, harness::with_params(&text, params)).expect("write a site");
    path
}

/// The external plugins directory of go1 or go2, as the machine sees it.
fn plugins_dir(lab: &Lab, host: &str) -> PathBuf {
    PathBuf::from(format!(
        "/etc/netns/{}-{host}{}",
        lab.var("LAB_PREFIX"),
        lab.var("LAB_GO_PLUGINS_DIR").trim_start_matches("/etc")
    ))
}

fn old_copies(lab: &Lab) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(lab.dir.join("pg1"))
        .expect("read DIR/pg1")
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("/data.drplan-old-"))
        .collect();
    found.sort();
    found
}

/// pg2 primary behind go2, which holds the VIP and serves.
fn assert_pair_two_serves(lab: &Lab, ctx: &str) {
    assert_eq!(lab.q("pg2", "select pg_is_in_recovery()"), "f", "{ctx}");
    assert_eq!(lab.vip_owners(), ["go2"], "{ctx}: VIP owners");
    let health = format!(
        "http://{}:{}/go/api/v1/health",
        lab.var("LAB_VIP"),
        lab.var("LAB_GO_PORT")
    );
    wait_for(
        &format!("{ctx}: go2 healthy through the VIP"),
        30,
        || match lab.get(&health) {
            Some(body) if body == r#"{"health":"OK"}"# => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

fn failover(lab: &Lab, site: &str) {
    let out = lab.drplan(&["apply", "plans/gocd/failover.yaml", "--site", site, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "failover: {}", text(&out));
    assert!(
        text(&out).contains(
            "Jobs that were running on GO1 when it was lost have lost their console logs"
        ),
        "the failover says what it lost: {}",
        text(&out)
    );
    assert_pair_two_serves(lab, "after the failover");
}

#[test]
fn the_shipped_plans_fail_over_and_back_by_basebackup_and_by_rewind_on_the_hardened_lab() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = Lab::up();
    lab.assert_pair_one_serves("the new lab");
    let site_path = lab.site();
    let site = site_path.to_str().expect("UTF-8");
    let site_text = std::fs::read_to_string(&site_path).expect("read site.yaml");
    assert!(
        site_text.contains(
            "postgres:\n  passwords: { postgres: pg_password, replicator: replication_password }"
        ),
        "{site_text}"
    );

    // Readiness: every PostgreSQL check logs in (scram) and passes, and a site without the
    // business-continuity add-on is green: drplan compares the GoCD files itself.
    let out = lab.drplan(&["check", "--site", site]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "check: {said}");
    assert!(
        said.contains("14 ok, 0 warnings, 0 critical"),
        "check: {said}"
    );
    assert!(
        said.contains("✓ a failover now would lose at most max_lag_bytes"),
        "check: {said}"
    );

    let started = Instant::now();
    failover(&lab, site);
    println!("failover: {:.1} s", started.elapsed().as_secs_f64());
    let beats_on_pg2 = || -> u64 {
        lab.q("pg2", "select count(*) from heartbeat where server = 'go2'")
            .parse()
            .expect("a count")
    };
    wait_for("go2 writing heartbeats on pg2", 30, || {
        (beats_on_pg2() >= 2).then_some(()).ok_or("none yet".into())
    });

    // The preflight refuses a failback that could not finish, before anything is stopped:
    // here the site gives no password for the replication user.
    let no_replication = lab.dir.join("site-no-replication-password.yaml");
    std::fs::write(
        &no_replication,
        site_text.replace(", replicator: replication_password }", " }"),
    )
    .expect("write a site");
    let out = apply(&lab, "failback", &no_replication);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "refused failback: {said}");
    assert!(
        said.contains("user replicator cannot open a replication connection to"),
        "the preflight must name what is missing: {said}"
    );
    assert_pair_two_serves(&lab, "after the refused failback");

    // Failback by basebackup: PG1's data directory sits under a root-owned parent; its old
    // contents are kept beside it, and PG2 streams from PG1 as replicator afterwards. GO2
    // got an external plugin while it served: GO1 has it afterwards.
    std::fs::write(plugins_dir(&lab, "go2").join("lab-go2-1.0.jar"), "go2\n").expect("a plugin");
    let beats = beats_on_pg2();
    let started = Instant::now();
    failback(&lab, &site_path, "basebackup");
    println!(
        "failback by basebackup: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    lab.assert_pair_one_serves("after the failback by basebackup");
    assert_eq!(
        std::fs::read_to_string(plugins_dir(&lab, "go1").join("lab-go2-1.0.jar")).ok(),
        Some("go2\n".to_string()),
        "GO1 has the plugin GO2 got"
    );
    let kept = old_copies(&lab);
    assert_eq!(kept.len(), 1, "one kept copy of PG1's old data: {kept:?}");
    assert!(kept[0].join("PG_VERSION").is_file(), "{kept:?}");
    let go2_rows: u64 = lab
        .q("pg1", "select count(*) from heartbeat where server = 'go2'")
        .parse()
        .expect("a count");
    assert!(
        go2_rows >= beats,
        "rows written through GO2 lost: {go2_rows} < {beats}"
    );

    // A disaster this time: PG1's postmaster is killed (no clean shutdown), then failover, and
    // failback by pg_rewind, which must first recover PG1 in single-user mode with its
    // configuration file (Debian's layout keeps none in the data directory). The copy the
    // last failback kept is removed once this one has succeeded, and PG2 streams from the
    // rewound PG1 as replicator, through the site's replication slot (created on PG1 by
    // replicator, over a replication connection).
    let pid = std::fs::read_to_string(Path::new(&lab.var("LAB_PGDATA_PG1")).join("postmaster.pid"))
        .expect("pg1's postmaster.pid");
    let pid = pid.lines().next().expect("a pid").to_string();
    let killed = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -KILL {pid}");
    failover(&lab, site);
    let rewind_site = site_with(
        &lab,
        "site-rewind.yaml",
        &[
            ("rebuild", "rewind"),
            ("replication_slot", "drplan_standby"),
        ],
    );
    let started = Instant::now();
    let run = failback(&lab, &rewind_site, "rewind");
    println!(
        "failback by rewind: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rewound = lab.step_result(&run, "rewind-pg-primary");
    assert_eq!(
        (&rewound["rewound"], &rewound["crash_recovered"]),
        (&serde_json::json!(true), &serde_json::json!(true)),
        "PG1 was killed, so pg_rewind recovered it first (with its config file), then rewound it: {rewound}"
    );
    lab.assert_pair_one_serves("after the failback by rewind");
    assert_eq!(
        old_copies(&lab),
        Vec::<PathBuf>::new(),
        "the kept copy was not removed"
    );
    assert_eq!(lab.q("pg2", "show primary_slot_name"), "drplan_standby");
    wait_for("PG2 using its slot on PG1", 30, || {
        let r = lab.q(
            "pg1",
            "select coalesce((select active::text from pg_replication_slots where slot_name = 'drplan_standby'), 'no slot')",
        );
        (r == "true").then_some(()).ok_or(r)
    });

    // No password in anything drplan wrote.
    for name in ["pg-postgres.password", "pg-replicator.password"] {
        let secret = std::fs::read_to_string(lab.dir.join("secrets").join(name)).expect("a secret");
        let secret = secret.trim();
        assert!(secret.len() >= 8);
        let mut stack = vec![lab.dir.join("s")];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(
                    std::fs::read_dir(&p)
                        .unwrap()
                        .filter_map(std::result::Result::ok)
                        .map(|e| e.path()),
                );
            } else if let Ok(bytes) = std::fs::read(&p) {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "{} holds the password of {name}",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn a_switchover_rebuilds_pg1_as_the_new_standby_by_basebackup_on_the_hardened_lab() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = Lab::up();
    lab.assert_pair_one_serves("the new lab");
    let slot = "drplan_standby";
    let site = site_with(
        &lab,
        "site-switch.yaml",
        &[
            ("rebuild_old_primary", "basebackup"),
            ("replication_slot", slot),
        ],
    );
    let before = lab.q("pg1", "select count(*) || '|' || max(id) from heartbeat");
    let max_before = before.split('|').nth(1).expect("a max id").to_string();

    let out = apply(&lab, "switchover", &site);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "switchover: {said}");
    assert!(
        said.contains(&format!(
            "PG1 was rebuilt by basebackup and streams from PG2 through replication slot {slot} as its standby; GO1 stays stopped (a cold standby"
        )),
        "the switchover says what it leaves: {said}"
    );
    assert_pair_two_serves(&lab, "after the switchover");
    assert_eq!(
        lab.q(
            "pg2",
            &format!("select count(*) || '|' || max(id) from heartbeat where id <= {max_before}")
        ),
        before,
        "every row PG1 had is on PG2"
    );
    // PG1 rebuilt under its root-owned parent (the old contents kept beside it), streaming
    // from PG2 as replicator through the slot.
    assert_eq!(old_copies(&lab).len(), 1, "{:?}", old_copies(&lab));
    assert_eq!(lab.q("pg1", "select pg_is_in_recovery()"), "t");
    wait_for(
        "PG1 streaming from PG2 as replicator through the slot",
        30,
        || {
            let r = lab.q(
            "pg2",
            &format!(
                "select coalesce((select r.usename || ' ' || r.state || ' ' || s.slot_name from pg_stat_replication r join pg_replication_slots s on s.active_pid = r.pid where r.client_addr = '{}'), 'none')",
                lab.var("LAB_ADDR_PG1")
            ),
        );
            (r == format!("replicator streaming {slot}"))
                .then_some(())
                .ok_or(r)
        },
    );
    let go1 = format!(
        "http://{}:{}/go/api/v1/health",
        lab.var("LAB_ADDR_GO1"),
        lab.var("LAB_GO_PORT")
    );
    assert_eq!(lab.get(&go1), None, "GO1 stays stopped (a cold standby)");

    // Back to the original layout by rewind (PG1 followed PG2: nothing to rewind); the copy the
    // switchover kept is removed once the failback has succeeded.
    let failback_site = site_with(
        &lab,
        "site-rewind.yaml",
        &[("rebuild", "rewind"), ("replication_slot", slot)],
    );
    failback(&lab, &failback_site, "rewind");
    lab.assert_pair_one_serves("after the failback");
    assert_eq!(old_copies(&lab), Vec::<PathBuf>::new());
    assert_eq!(
        lab.q("pg2", "select count(*) from pg_replication_slots"),
        "0",
        "PG2 keeps no copy of the slot PG1 streamed from it through"
    );
    let out = lab.drplan(&["check", "--site", lab.site().to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(0), "check: {}", text(&out));
}
