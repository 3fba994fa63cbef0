//! `drplan check` on the DR lab: the shipped `plans/gocd/readiness.yaml` against the lab's own
//! site file, run by the real binary inside the controller's namespace. A fresh lab is all
//! green (exit 0); then the test breaks one thing at a time and reads the report: the standby
//! GoCD server stopped (no dashboard to read: still green, its files are compared over ssh),
//! a stale config file on the stopped standby (a warning naming it, exit 1), the standby GoCD
//! server's db.properties naming the primary's PostgreSQL (a warning: it exists, but points at the
//! wrong database), the standby's replay
//! paused behind a burst of writes (lag: a warning, exit 1), the standby no longer receiving
//! while the primary writes (nothing un-replayed on the standby, but a failover would lose the
//! burst: measured on the primary, a warning), the standby PostgreSQL stopped
//! (no replica to promote: critical, exit 2), and on the primary a replication slot that nothing
//! streams through holding back WAL, then losing it (warnings). The same on both lab flavours (the hardened one
//! has no add-on: no dashboard, and GO2 stays stopped). The lab is built by `tests/lab/up` and
//! always removed by `tests/lab/down`. Needs root and the lab's packages: fails (never skips)
//! without.

mod common;

use common::lab::{Lab, LabEnv, as_root, lab_args, pg_ctl_script, repo};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl LabEnv {
    /// Run `command` as root on the lab host at `addr`, over ssh from the controller (so a
    /// daemon it starts belongs to the host's reaper): root's login, or the hardened
    /// flavour's user through sudo.
    fn ssh(&self, addr: &str, command: &str) -> Output {
        let user = self.var("LAB_SSH_USER");
        let mut argv = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.var("LAB_NS_CTL"),
        ];
        argv.push("ssh".into());
        argv.push("-n".into());
        argv.extend(
            self.var("LAB_SSH_OPTS")
                .split_whitespace()
                .map(String::from),
        );
        argv.push(format!("{user}@{addr}"));
        argv.push(as_root(&user, command));
        let out = Command::new("ip").args(&argv).output().expect("ssh");
        println!(
            "ssh {addr} {command}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "ssh {addr} {command} failed");
        out
    }

    /// `drplan check --site DIR/site.yaml --format json` inside the controller's namespace,
    /// from the repository (so the default checks file is found): exit code and report.
    fn check(&self) -> (i32, Value) {
        self.check_site("site.yaml")
    }

    /// The same with another site file of the lab's directory.
    fn check_site(&self, site: &str) -> (i32, Value) {
        let out = common::drplan_in(&self.var("LAB_NS_CTL"))
            .args(["check", "--format", "json", "--site"])
            .arg(self.dir.join(site))
            .current_dir(repo())
            .output()
            .expect("drplan check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "not a JSON report ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), report)
    }

    /// Check until the exit code is `want` (the lab takes a moment to show a change), or
    /// fail with the last report.
    fn check_until(&self, want: i32, within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (code, report) = self.check();
            if code == want {
                return report;
            }
            assert!(
                started.elapsed() < within,
                "still exit {code}, not {want}, after {within:?}: {report:#}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// name → status of every check in a report.
fn statuses(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The checks that are not ok, with their status.
fn not_ok(report: &Value) -> Vec<(String, String)> {
    statuses(report)
        .into_iter()
        .filter(|(_, s)| s != "ok")
        .collect()
}

const FILES: &str =
    "the standby GoCD server's config files and external plugins are the same as the primary's";
const DASHBOARD: &str =
    "where the business-continuity add-on runs, its dashboard shows the standby in sync";
const STREAMING: &str = "the standby PostgreSQL is a replica, streaming from the primary";
const LAG: &str = "the standby PostgreSQL has replayed what it received (lag within max_lag_bytes)";
const LOSS: &str = "a failover now would lose at most max_lag_bytes (the primary's current WAL against the standby's replay)";
const SLOT_HELD: &str = "no replication slot on the primary holds more than max_slot_retained_bytes of WAL with nothing streaming through it";
const SLOT_LOSING: &str =
    "no replication slot on the primary has lost, or is losing, WAL its standby needs";
const DB_PROPERTIES: &str =
    "the standby GoCD server's db.properties points at the standby PostgreSQL";

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {report:#}"))
}

#[test]
fn check_reports_the_labs_readiness_and_what_breaks_it() {
    readiness_and_what_breaks_it("default");
}

#[test]
fn check_reports_the_hardened_labs_readiness_and_what_breaks_it() {
    readiness_and_what_breaks_it("hardened");
}

/// One lab at a time: a lab is heavy for a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn readiness_and_what_breaks_it(flavour: &str) {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert_eq!(
        uid(),
        Some(0),
        "this test builds the DR lab and needs root; a lab test that did not run has not passed"
    );
    let dir = std::env::temp_dir().join(format!("drplan-clab-{}-{flavour}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _lab = Lab(dir.clone());
    assert!(
        lab_args("up", &dir, &["--flavour", flavour]),
        "tests/lab/up failed (output above)"
    );
    let env = LabEnv::read(&dir);
    let hardened = flavour == "hardened";
    let (pg1, go2) = (env.var("LAB_ADDR_PG1"), env.var("LAB_ADDR_GO2"));

    // A fresh lab is ready: every check ok.
    let green = env.check_until(0, Duration::from_secs(60));
    assert_eq!(green["ok"], 14, "{green:#}");
    assert_eq!(
        (&green["warnings"], &green["critical"]),
        (&0.into(), &0.into())
    );
    assert_eq!(green["site"], format!("lab-{}", env.var("LAB_PREFIX")));
    assert_eq!(row(&green, LAG)["result"]["in_recovery"], true);
    // The default lab's go2 runs the add-on: its dashboard is read (with the site's token),
    // and in sync. The hardened lab's GoCD has no add-on, which is no warning.
    assert_eq!(
        row(&green, DASHBOARD)["result"]["present"],
        !hardened,
        "{green:#}"
    );
    assert_eq!(
        row(&green, DASHBOARD)["result"]["in_sync"],
        if hardened { Value::Null } else { true.into() },
        "{green:#}"
    );
    assert_eq!(row(&green, FILES)["result"]["in_sync"], true, "{green:#}");

    // The text report says the same.
    let text = common::drplan_in(&env.var("LAB_NS_CTL"))
        .args(["check", "--site"])
        .arg(dir.join("site.yaml"))
        .current_dir(repo())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&text.stdout);
    assert_eq!(text.status.code(), Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "✓ the primary GoCD server holds the agents' virtual IP — on go_primary ({}@",
            env.var("LAB_SSH_USER")
        )),
        "{out}"
    );
    assert!(out.ends_with("14 ok, 0 warnings, 0 critical\n"), "{out}");

    // The standby GoCD server stopped (a cold standby): no dashboard to read, which says
    // nothing bad — the files themselves are compared over ssh. Still all green.
    let ctl = env.var("LAB_GO_CTL");
    env.ssh(&go2, &format!("{ctl} stop"));
    let (code, report) = env.check();
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], 14, "{report:#}");
    assert_eq!(row(&report, DASHBOARD)["status"], "ok", "{report:#}");
    assert_eq!(
        row(&report, DASHBOARD)["result"]["present"],
        false,
        "{report:#}"
    );
    let reason = row(&report, DASHBOARD)["result"]["reason"]
        .as_str()
        .unwrap_or("");
    assert!(reason.contains("no GoCD server answers"), "{reason}");

    // While it is stopped, its copy of cruise-config.xml goes stale: a warning that names the
    // file (exit 1). Started again, the stand-in syncs it back from go1 (by md5), as the
    // add-on does, and the site is green again. Without the add-on (hardened) GO2 stays
    // stopped: the stale copy is put back by hand.
    env.ssh(
        &go2,
        "cp -p /etc/go/cruise-config.xml /etc/go/cruise-config.xml.orig && echo '<!-- stale -->' >> /etc/go/cruise-config.xml",
    );
    let report = env.check_until(1, Duration::from_secs(30));
    assert_eq!(
        not_ok(&report),
        vec![(FILES.to_owned(), "warning".to_owned())]
    );
    assert_eq!(
        row(&report, FILES)["result"]["differ"],
        serde_json::json!(["/etc/go/cruise-config.xml"]),
        "{report:#}"
    );
    if hardened {
        env.ssh(
            &go2,
            "mv /etc/go/cruise-config.xml.orig /etc/go/cruise-config.xml",
        );
    } else {
        env.ssh(
            &go2,
            &format!("{ctl} start && rm /etc/go/cruise-config.xml.orig"),
        );
    }
    env.check_until(0, Duration::from_secs(60));

    // go2's db.properties names pg1 (a copy of go1's, say): it exists, but after a failover
    // GO2 would write to the old primary's database, or not start. A warning.
    let pg2 = env.var("LAB_ADDR_PG2");
    env.ssh(
        &go2,
        &format!(
            "cp -p /etc/go/db.properties /etc/go/db.properties.orig && sed -i 's#//{pg2}:#//{pg1}:#' /etc/go/db.properties"
        ),
    );
    let report = env.check_until(1, Duration::from_secs(30));
    assert_eq!(
        not_ok(&report),
        vec![(DB_PROPERTIES.to_owned(), "warning".to_owned())],
        "{report:#}"
    );
    let seen = &row(&report, DB_PROPERTIES)["result"];
    assert_eq!(
        (&seen["exists"], &seen["host"]),
        (&true.into(), &pg1.as_str().into()),
        "{report:#}"
    );
    env.ssh(&go2, "mv /etc/go/db.properties.orig /etc/go/db.properties");
    env.check_until(0, Duration::from_secs(30));

    // Replay paused on the standby while the primary writes ~30 MB: the standby receives but
    // does not apply, so its replay lag passes max_lag_bytes (16 MiB): a warning.
    env.psql(&env.var("LAB_ADDR_PG2"), "select pg_wal_replay_pause()");
    env.psql(
        &pg1,
        "create table drplan_check_lag as select g, repeat('x', 1000) as pad from generate_series(1, 30000) g",
    );
    let report = env.check_until(1, Duration::from_secs(60));
    assert_eq!(
        not_ok(&report),
        vec![
            (LOSS.to_owned(), "warning".to_owned()),
            (LAG.to_owned(), "warning".to_owned())
        ]
    );
    let lag = row(&report, LAG)["result"]["replay_lag_bytes"]
        .as_i64()
        .unwrap_or(0);
    assert!(lag > 16_777_216, "{report:#}");
    // Measured on the primary: its current WAL position against the standby's replay.
    let loss = row(&report, LOSS)["result"]["replica_lag_bytes"]
        .as_i64()
        .unwrap_or(0);
    assert!(loss > 16_777_216, "{report:#}");
    env.psql(&env.var("LAB_ADDR_PG2"), "select pg_wal_replay_resume()");
    env.psql(&pg1, "drop table drplan_check_lag");
    env.check_until(0, Duration::from_secs(60));

    // A replication slot on the primary that nothing streams through (left by an old
    // standby, say) holds back the WAL written since: past max_slot_retained_bytes (8 MiB in a
    // copy of the site) a warning that the primary's disk is filling. Then PostgreSQL is told
    // to keep at most 1 MB for slots (max_slot_wal_keep_size): at the next checkpoint the slot
    // loses its WAL, and a standby streaming through it could no longer catch up: a warning.
    let site = std::fs::read_to_string(dir.join("site.yaml")).unwrap();
    assert!(site.contains("\nparams:\n"), "{site}");
    std::fs::write(
        dir.join("site-slots.yaml"),
        site.replace(
            "\nparams:\n",
            "\nparams:\n  max_slot_retained_bytes: 8388608\n",
        ),
    )
    .unwrap();
    env.psql(
        &pg1,
        "select pg_create_physical_replication_slot('drplan_check_stale', true)",
    );
    env.psql(
        &pg1,
        "create table drplan_check_slot as select g, repeat('x', 1000) as pad from generate_series(1, 30000) g",
    );
    let (code, report) = env.check_site("site-slots.yaml");
    assert_eq!(
        (code, not_ok(&report)),
        (1, vec![(SLOT_HELD.to_owned(), "warning".to_owned())]),
        "{report:#}"
    );
    let held = &row(&report, SLOT_HELD)["result"];
    assert!(
        held["inactive_slot_retained_bytes"].as_i64().unwrap_or(0) > 8_388_608,
        "{report:#}"
    );
    assert!(
        held["slots"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "drplan_check_stale" && s["active"] == false),
        "{report:#}"
    );
    // With the site's own limit (1 GiB) the same slot is no warning.
    assert_eq!(env.check().0, 0);
    // (The lab keeps 256 MB of WAL for its standby, which has no slot: that too would keep
    // the slot's WAL.)
    env.psql(&pg1, "alter system set max_slot_wal_keep_size = '1MB'");
    env.psql(&pg1, "alter system set wal_keep_size = 0");
    env.psql(&pg1, "select pg_reload_conf()");
    env.psql(&pg1, "select pg_switch_wal()");
    env.psql(&pg1, "checkpoint");
    let (code, report) = env.check();
    assert_eq!(
        (code, not_ok(&report)),
        (1, vec![(SLOT_LOSING.to_owned(), "warning".to_owned())]),
        "{report:#}"
    );
    assert_eq!(
        row(&report, SLOT_LOSING)["result"]["slots_losing_wal"],
        serde_json::json!(["drplan_check_stale"]),
        "{report:#}"
    );
    env.psql(&pg1, "alter system reset max_slot_wal_keep_size");
    env.psql(&pg1, "alter system reset wal_keep_size");
    env.psql(&pg1, "select pg_reload_conf()");
    env.psql(
        &pg1,
        "select pg_drop_replication_slot('drplan_check_stale')",
    );
    env.psql(&pg1, "drop table drplan_check_slot");
    env.check_until(0, Duration::from_secs(30));

    // The standby stops receiving (its primary_conninfo emptied) while the primary writes
    // ~30 MB: it has nothing un-replayed, so its own receive→replay gap says all is well, but
    // a failover now would lose the burst. The primary measures that: a warning (and the
    // standby no longer streams: critical).
    let conninfo = env.psql(&pg2, "show primary_conninfo").trim().to_owned();
    env.psql(&pg2, "alter system set primary_conninfo = ''");
    env.psql(&pg2, "select pg_reload_conf()");
    env.psql(
        &pg1,
        "create table drplan_check_lag as select g, repeat('x', 1000) as pad from generate_series(1, 30000) g",
    );
    let report = env.check_until(2, Duration::from_secs(60));
    assert_eq!(
        not_ok(&report),
        vec![
            (STREAMING.to_owned(), "critical".to_owned()),
            (LOSS.to_owned(), "warning".to_owned())
        ],
        "{report:#}"
    );
    assert_eq!(
        row(&report, LAG)["result"]["replay_lag_bytes"],
        0,
        "{report:#}"
    );
    env.psql(
        &pg2,
        &format!(
            "alter system set primary_conninfo = '{}'",
            conninfo.replace('\'', "''")
        ),
    );
    env.psql(&pg2, "select pg_reload_conf()");
    env.psql(&pg1, "drop table drplan_check_lag");
    env.check_until(0, Duration::from_secs(60));

    // The standby PostgreSQL stopped: nothing to promote. Critical, exit 2; the lag cannot be
    // known either (a warning).
    let stop = pg_ctl_script(|k| env.var(k), "pg2", "-m fast -w stop");
    env.ssh(&env.var("LAB_ADDR_PG2"), &stop);
    let report = env.check_until(2, Duration::from_secs(30));
    assert_eq!(
        not_ok(&report),
        vec![
            (STREAMING.to_owned(), "critical".to_owned()),
            (LOSS.to_owned(), "warning".to_owned()),
            (LAG.to_owned(), "warning".to_owned())
        ]
    );
    assert_eq!(row(&report, STREAMING)["result"]["reachable"], false);
    assert_eq!(row(&report, LOSS)["result"]["replica"], Value::Null);
    assert_eq!(
        (&report["ok"], &report["warnings"], &report["critical"]),
        (&11.into(), &2.into(), &1.into())
    );
}
