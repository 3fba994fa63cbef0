//! The GoCD side of the shipped plans on the DR lab, for sites as they are
//! today: GoCD without the business-continuity add-on (it exists only in 20.6–22.3), and
//! package installs that read `-Dgo.server.mode` from the wrapper's properties file. The
//! stand-ins are turned into such installs through `DIR/<host>/standin.args` (read by
//! `go-server-ctl start`), and every assertion is made on the hosts: files in each host's
//! /etc/go, `/lab/status` of the servers, PostgreSQL, the VIP.
//!
//! Six labs, one after the other, each always taken down again (1 and 2 twice: on the
//! hardened flavour too, which is built without the add-on):
//!
//! 1. add-on off (go2 a cold standby): `drplan check` is green; drift on go1's
//!    cruise-config.xml is a warning naming the file; `plans/gocd/sync.yaml` copies it (and
//!    never db.properties), a second sync changes nothing, `check` is green again; a
//!    switchover asked for maintenance mode without a token refuses before step one;
//! 2. add-on off: a switchover succeeds, says what it leaves, and `check` afterwards shows a
//!    site with no standby;
//! 3. go2 reads its mode from wrapper properties: a failover told so
//!    (`go_mode_layout: wrapper_properties`) leaves GO2 an active primary behind the VIP;
//! 4. the same go2, with the default layout: the failover edits a file go2 does not read, and
//!    `gocd.wait_ready` fails, saying go2 is passive and asking where -Dgo.server.mode is set;
//! 5. a switchover in GoCD's maintenance mode (the API token of GO1's administrator) that
//!    rebuilds the old primary pair as the new standby (PG1 by pg_rewind through the site's
//!    replication slot, GO1 in standby mode), then a failback to the original layout, `check`
//!    green;
//! 6. the add-on's API and dashboard behind the business-continuity token (401 without): drplan
//!    reads the dashboard with the token from the site's secret `go_bc_token` (a site without
//!    it gets the 401, named), and a standby whose sync stalls shows as a sync gap, then as a
//!    plugin it has not copied.
//!
//! Needs root and the lab's packages (tests/lab/README.md): FAILS without, never skips.

mod common;

#[path = "lab_e2e/harness.rs"]
mod harness;

#[allow(dead_code)]
#[path = "lab_e2e/expect.rs"]
mod expect;

use expect::{heartbeats_flow, served_by_pair_one, served_by_pair_two};
use harness::{Lab, Out, Run, repo, secs, serial, wait_for, with_params};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const FILES: &str =
    "the standby GoCD server's config files and external plugins are the same as the primary's";
const DASHBOARD: &str =
    "where the business-continuity add-on runs, its dashboard shows the standby in sync";
const NO_STANDBY_VIP: &str = "the standby GoCD server does not hold the agents' virtual IP (if it does, the site runs failed over, with no standby, until failback.yaml runs)";
const TOKEN_CHECK: &str = "with maintenance_mode, the site has the secret go_api_token (a GoCD administrator's API token)";

// ---------------------------------------------------------------- helpers

/// `DIR/<host>/standin.args`: more `gocd-standin serve` options for that host's next start.
fn standin_args(lab: &Lab, host: &str, args: &str) {
    let path = lab.dir.join(host).join("standin.args");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("{args}\n")).unwrap();
}

/// `go-server-ctl VERB` on a GoCD host, over the lab's ssh.
fn go_ctl(lab: &Lab, host: &str, verb: &str) -> Out {
    lab.ssh(host, &format!("{} {verb}", lab.var("LAB_GO_CTL")))
}

/// Both GoCD servers without the business-continuity add-on, as current GoCD is: go1
/// restarted as the primary; go2 stopped, and it cannot be started as a standby (without the
/// add-on `go.server.mode` is ignored: it starts as a primary and refuses PG2, in recovery).
/// A cold standby, as such sites run it — and as the hardened lab is built.
fn without_the_add_on(lab: &Lab) {
    if lab.hardened() {
        return;
    }
    standin_args(lab, "go1", "--bc-addon off");
    standin_args(lab, "go2", "--bc-addon off");
    let restarted = go_ctl(lab, "go1", "restart");
    assert!(restarted.ok(), "restart go1:\n{}", restarted.report());
    let st = lab.lab_status(lab.addr("go1")).unwrap();
    assert!(
        st["bc_addon"] == false && st["mode"] == "primary" && st["ready"] == true,
        "go1 should run without the add-on, as a ready primary: {st}"
    );
    let stopped = go_ctl(lab, "go2", "stop");
    assert!(stopped.ok(), "stop go2:\n{}", stopped.report());
    let started = go_ctl(lab, "go2", "start");
    assert!(
        !started.ok() && started.text().contains("in recovery"),
        "go2 without the add-on must refuse to start on PG2 (in recovery):\n{}",
        started.report()
    );
    let (code, body) = lab.probe(&lab.go_url(lab.addr("go2"), "/lab/status"));
    assert_eq!(code, 2, "go2 should be stopped: {body}");
}

/// `drplan check --format json` with the shipped readiness checks: the run and the report.
fn check(lab: &Lab) -> (Out, Value) {
    check_site(lab, &lab.site())
}

/// `check` with another site file.
fn check_site(lab: &Lab, site: &std::path::Path) -> (Out, Value) {
    let checks = repo().join("plans/gocd/readiness.yaml");
    let out = lab.drplan(
        &[
            "check",
            "--site",
            site.to_str().unwrap(),
            "--checks",
            checks.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    let report = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("check did not print a JSON report ({e}):\n{}", out.report()));
    (out, report)
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no check {name:?} in {report:#}"))
}

/// (name, status) of every check that is not ok.
fn not_ok(report: &Value) -> Vec<(String, String)> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] != "ok")
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn all_green(lab: &Lab, ctx: &str) -> Value {
    let (out, report) = check(lab);
    assert_eq!(
        out.code,
        Some(0),
        "{ctx}: check should be green:\n{report:#}"
    );
    assert_eq!(
        (&report["ok"], &report["warnings"], &report["critical"]),
        (&json!(14), &json!(0), &json!(0)),
        "{ctx}: {report:#}"
    );
    report
}

fn applied(run: &Run, ctx: &str) {
    assert_eq!(run.out.code, Some(0), "{ctx}:\n{}", run.out.report());
}

// ---------------------------------------------------------------- 1

#[test]
fn without_the_add_on_check_is_green_and_the_sync_copies_what_drifted_never_db_properties() {
    check_is_green_and_the_sync_copies_what_drifted("default");
}

#[test]
fn on_the_hardened_lab_check_is_green_and_the_sync_copies_what_drifted_never_db_properties() {
    check_is_green_and_the_sync_copies_what_drifted("hardened");
}

fn check_is_green_and_the_sync_copies_what_drifted(flavour: &str) {
    let _serial = serial();
    let lab = Lab::up_flavour(flavour);
    without_the_add_on(&lab);

    // No dashboard anywhere: nothing to warn about. The files are compared over ssh.
    let green = all_green(&lab, "add-on off, nothing changed");
    assert_eq!(
        row(&green, DASHBOARD)["result"]["present"],
        false,
        "{green:#}"
    );
    assert_eq!(row(&green, FILES)["result"]["in_sync"], true, "{green:#}");
    let compared: Vec<&str> = row(&green, FILES)["result"]["files"]
        .as_array()
        .expect("compare_files lists its files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        compared.contains(&"/etc/go/cruise-config.xml")
            && !compared.iter().any(|p| p.ends_with("db.properties")),
        "cruise-config.xml compared, db.properties never: {compared:?}"
    );

    // An operator changes go1's config; nothing syncs it (no add-on): a warning naming it.
    let go2_db = lab.cat("go2", "/etc/go/db.properties");
    assert_ne!(
        go2_db,
        lab.cat("go1", "/etc/go/db.properties"),
        "each server has its own db.properties"
    );
    let edited = lab.ssh(
        "go1",
        "echo '<!-- a pipeline added on go1 -->' >> /etc/go/cruise-config.xml",
    );
    assert!(edited.ok(), "{}", edited.report());
    let (out, report) = check(&lab);
    assert_eq!(out.code, Some(1), "drift is a warning:\n{report:#}");
    assert_eq!(
        not_ok(&report),
        vec![(FILES.to_owned(), "warning".to_owned())],
        "{report:#}"
    );
    assert_eq!(
        row(&report, FILES)["result"]["differ"],
        json!(["/etc/go/cruise-config.xml"]),
        "{report:#}"
    );
    let text = lab.drplan(
        &[
            "--no-color",
            "check",
            "--site",
            lab.site().to_str().unwrap(),
            "--checks",
            repo().join("plans/gocd/readiness.yaml").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(text.code, Some(1), "{}", text.report());
    assert!(
        text.stdout.contains("/etc/go/cruise-config.xml"),
        "the text report names the file:\n{}",
        text.report()
    );

    // The sync copies it, and only it; db.properties stays go2's own.
    let sync = lab.apply("sync", &lab.site(), &[], &[]);
    applied(&sync, "first sync");
    // What it did, by kind: the drifted file copied; on the default flavour, go2's
    // cipher.aes, which the stand-in's add-on sync wrote with its default mode (go1's is
    // 0600), only had its mode set — same content, so it is not called a copy. (The hardened
    // lab's go2 has `cp -p` copies: nothing to set there.)
    let did = step_result(&lab, &sync.id, "sync-go-standby");
    assert_eq!(did["copied"], json!(["/etc/go/cruise-config.xml"]), "{did}");
    let mode_set: &[&str] = if lab.hardened() {
        &[]
    } else {
        &["/etc/go/cipher.aes"]
    };
    assert_eq!(did["permissions"], json!(mode_set), "{did}");
    assert_eq!(did["deleted"], json!([]), "{did}");
    assert!(
        sync.out.stdout.contains("copied /etc/go/cruise-config.xml")
            && mode_set.iter().all(|f| sync
                .out
                .stdout
                .contains(&format!("set the mode and owner of {f} like"))),
        "the first sync says what it copied and what only had its permissions set:\n{}",
        sync.out.report()
    );
    let mode = lab.ssh("go2", "stat -c %a /etc/go/cipher.aes");
    assert_eq!(mode.stdout.trim(), "600", "{}", mode.report());
    assert!(
        !sync.out.text().contains("db.properties"),
        "db.properties is never copied:\n{}",
        sync.out.report()
    );
    assert_eq!(
        lab.cat("go2", "/etc/go/cruise-config.xml"),
        lab.cat("go1", "/etc/go/cruise-config.xml"),
        "go2 has go1's cruise-config.xml"
    );
    assert_eq!(
        lab.cat("go2", "/etc/go/db.properties"),
        go2_db,
        "go2's db.properties is untouched"
    );

    let again = lab.apply("sync", &lab.site(), &[], &[]);
    applied(&again, "second sync");
    assert!(
        again.out.stdout.contains("nothing changed"),
        "the second sync has nothing to do:\n{}",
        again.out.report()
    );
    assert!(
        !again.out.stdout.contains("copied"),
        "{}",
        again.out.report()
    );
    all_green(&lab, "after the sync");

    // Maintenance mode asked for without a token: refused before step one, nothing changed.
    let site = lab.site_with_params("site-maintenance.yaml", &[("maintenance_mode", "true")]);
    let refused = lab.apply("switchover", &site, &[], &[]);
    assert_eq!(refused.out.code, Some(3), "{}", refused.out.report());
    assert!(
        refused.out.text().contains(TOKEN_CHECK),
        "the refusal names the check:\n{}",
        refused.out.report()
    );
    assert_eq!(lab.status(&refused.id)["status"], "refused");
    for (step, state) in lab.step_states(&refused.id) {
        assert_eq!(state, "pending", "step {step} must not have run");
    }
    assert!(lab.in_recovery("pg2"), "PG2 is still a standby");
    assert_eq!(lab.vip_holders(), vec!["go1"], "the VIP stays on go1");
    lab.finish();
}

// ---------------------------------------------------------------- 2

#[test]
fn without_the_add_on_a_switchover_succeeds_and_says_it_leaves_no_standby() {
    a_switchover_without_the_add_on_leaves_no_standby("default");
}

#[test]
fn on_the_hardened_lab_a_switchover_succeeds_and_says_it_leaves_no_standby() {
    a_switchover_without_the_add_on_leaves_no_standby("hardened");
}

fn a_switchover_without_the_add_on_leaves_no_standby(flavour: &str) {
    let _serial = serial();
    let lab = Lab::up_flavour(flavour);
    without_the_add_on(&lab);
    let before = lab.rows("pg1", "true");

    let switchover = lab.apply("switchover", &lab.site(), &[], &[]);
    applied(&switchover, "switchover without the add-on");
    let said = &switchover.out.stdout;
    assert_eq!(
        lab.step_state(&switchover.id, "enable-maintenance-mode"),
        "skipped (when)",
        "no maintenance mode unless asked for"
    );
    assert!(
        said.contains("GoCD now runs on GO2")
            && said.contains("GO1 and PG1 are stopped and nothing replicates: there is no standby"),
        "the switchover says what it leaves:\n{}",
        switchover.out.report()
    );
    served_by_pair_two(&lab, "after the switchover");
    assert_eq!(
        lab.rows("pg2", &format!("id <= {}", before.max)),
        before,
        "every row committed on PG1 before the switchover is on PG2"
    );
    let st = lab.lab_status(lab.vip()).unwrap();
    assert_eq!(
        st["bc_addon"], false,
        "go2 still runs without the add-on: {st}"
    );

    // `check` now: the site runs on the standby pair, with no standby — critical.
    let (out, report) = check(&lab);
    assert_eq!(out.code, Some(2), "{report:#}");
    let failed = not_ok(&report);
    assert!(
        failed.contains(&(NO_STANDBY_VIP.to_owned(), "critical".to_owned()))
            && failed.contains(&(
                "the primary PostgreSQL is reachable and accepts writes".to_owned(),
                "critical".to_owned()
            ))
            && failed.contains(&(
                "the standby PostgreSQL is a replica, streaming from the primary".to_owned(),
                "critical".to_owned()
            )),
        "check after the switchover: {failed:#?}"
    );
    lab.finish();
}

// ---------------------------------------------------------------- 3 + 4

/// go2 as a package install: its JVM options in a wrapper-properties.conf (standby mode, GO1
/// its primary), which it reads instead of /etc/default/go-server. Returns the file.
fn go2_reads_wrapper_properties(lab: &Lab) -> PathBuf {
    let file = lab.dir.join("go2").join("wrapper-properties.conf");
    std::fs::write(
        &file,
        format!(
            "# GoCD's Java Service Wrapper properties (a package install, GoCD >= 19.6)\n\
             wrapper.java.additional.100=-Dgo.server.mode=standby\n\
             wrapper.java.additional.101=-Dbc.primary.url=http://{}:{}\n\
             wrapper.java.additional.102=-Dbc.primary.status.check.interval=2000\n",
            lab.addr("go1"),
            lab.var("LAB_GO_PORT")
        ),
    )
    .unwrap();
    standin_args(
        lab,
        "go2",
        &format!("--wrapper-properties {}", file.display()),
    );
    let restarted = go_ctl(lab, "go2", "restart");
    assert!(restarted.ok(), "restart go2:\n{}", restarted.report());
    let st = lab.lab_status(lab.addr("go2")).unwrap();
    assert!(
        st["mode"] == "standby" && st["ready"] == true,
        "go2 should run as a standby from its wrapper properties: {st}"
    );
    let log = std::fs::read_to_string(lab.dir.join("go2/go-server.log")).unwrap();
    assert!(
        log.lines()
            .rev()
            .find(|l| l.contains("listening on"))
            .is_some_and(|l| l.contains("wrapper properties")),
        "go2's last start read its wrapper properties:\n{log}"
    );
    file
}

/// The result of a step that succeeded, from the run's journal.
fn step_result(lab: &Lab, run: &str, step: &str) -> Value {
    lab.journal(run)
        .iter()
        .map(|r| &r["record"])
        .find(|r| r["kind"] == "step_finished" && r["step"] == step)
        .map(|r| r["result"].clone())
        .unwrap_or_else(|| panic!("no step_finished of {step} in run {run}"))
}

fn mode_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("go.server.mode"))
        .collect()
}

#[test]
fn a_failover_sets_the_mode_in_wrapper_properties_and_go2_serves_as_an_active_primary() {
    let _serial = serial();
    let lab = Lab::up();
    let file = go2_reads_wrapper_properties(&lab);
    let defaults_before = lab.cat("go2", "/etc/default/go-server");
    let site = lab.site_with_params(
        "site-wrapper.yaml",
        &[
            ("go_mode_layout", "wrapper_properties"),
            ("go_mode_file", file.to_str().unwrap()),
        ],
    );
    let failover = lab.apply("failover", &site, &[], &[]);
    applied(&failover, "failover with wrapper properties");
    served_by_pair_two(&lab, "after the failover (wrapper properties)");
    assert!(
        failover.out.stdout.contains(
            "Jobs that were running on GO1 when it was lost have lost their console logs"
        ),
        "the failover ends with its note:\n{}",
        failover.out.report()
    );
    // Active: the wait saw it serve what agents send (a standby redirects it).
    let waited = step_result(&lab, &failover.id, "wait-go-standby-healthy");
    assert!(
        waited["active"] == true && waited["agent_request_status"] == 403,
        "gocd.wait_ready's result: {waited}"
    );
    let wrapper = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        mode_lines(&wrapper),
        vec!["wrapper.java.additional.100=-Dgo.server.mode=primary"],
        "the mode was set in place in the wrapper properties:\n{wrapper}"
    );
    assert!(
        wrapper.contains("wrapper.java.additional.102=-Dbc.primary.status.check.interval=2000"),
        "the other lines stay:\n{wrapper}"
    );
    assert_eq!(
        lab.cat("go2", "/etc/default/go-server"),
        defaults_before,
        "the file go2 does not read is left alone"
    );
    lab.finish();
}

#[test]
fn a_failover_that_sets_the_mode_where_go2_does_not_read_it_fails_at_the_readiness_wait() {
    let _serial = serial();
    let lab = Lab::up();
    let file = go2_reads_wrapper_properties(&lab);
    let wrapper_before = std::fs::read_to_string(&file).unwrap();
    // The default layout (GOCD_SERVER_JVM_OPTIONS in /etc/default/go-server), which this go2
    // does not read; a short wait, since it can never pass.
    let site = lab.site_with_params("site-short.yaml", &[("health_timeout", "6s")]);
    let failover = lab.apply("failover", &site, &[], &[]);
    assert_eq!(
        failover.out.code,
        Some(1),
        "the failover fails:\n{}",
        failover.out.report()
    );
    let text = failover.out.text();
    assert!(
        text.contains("did not become a healthy, active primary")
            && text.contains("healthy but passive: it redirects agents")
            && text.contains("is -Dgo.server.mode set where this server reads it?"),
        "the failure says go2 stayed passive and why:\n{}",
        failover.out.report()
    );
    assert!(
        lab.step_state(&failover.id, "wait-go-standby-healthy")
            .starts_with("failed"),
        "{:?}",
        lab.step_states(&failover.id)
    );
    assert_ne!(lab.step_state(&failover.id, "assign-vip"), "done");
    // On the hosts: the edit went to the file go2 does not read; go2 is a standby still, and
    // the VIP was not given to it.
    let defaults = lab.cat("go2", "/etc/default/go-server");
    assert!(
        mode_lines(&defaults)
            .iter()
            .any(|l| l.contains("-Dgo.server.mode=primary")),
        "set_mode edited /etc/default/go-server:\n{defaults}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), wrapper_before);
    let st = wait_for("go2's /lab/status", secs(30), || {
        lab.lab_status(lab.addr("go2"))
    });
    assert_eq!(st["mode"], "standby", "{st}");
    assert!(
        !lab.vip_holders().contains(&"go2"),
        "go2 must not hold the VIP"
    );
    lab.finish();
}

// ---------------------------------------------------------------- 5

/// The lab as it was built, green: go2 in sync again after a restart of either server.
fn green_within(lab: &Lab, ctx: &str) {
    wait_for(&format!("{ctx}: check green"), secs(60), || {
        let (out, report) = check(lab);
        if out.code == Some(0) {
            Ok(())
        } else {
            Err(format!("{:?}", not_ok(&report)))
        }
    });
}

/// A one-line query on pg1 or pg2 until it answers `want`.
fn until_answers(lab: &Lab, host: &str, sql: &str, want: &str, ctx: &str) {
    wait_for(&format!("{ctx}: {sql} on {host}"), secs(60), || {
        let got = lab.q(host, sql);
        if got == want { Ok(()) } else { Err(got) }
    });
}

#[test]
fn a_switchover_rebuilds_the_old_primary_pair_as_the_new_standby_and_a_failback_restores_the_site()
{
    let _serial = serial();
    let lab = Lab::up();
    // GO1's API accepts an administrator's token (maintenance mode); the operator gives it
    // to drplan as the site's secret `go_api_token`.
    let token = "drplan-lab-admin-token";
    let tokens = lab.dir.join("go1").join("api-tokens");
    std::fs::write(&tokens, format!("{token}\n")).unwrap();
    standin_args(
        &lab,
        "go1",
        &format!("--api-token-file {}", tokens.display()),
    );
    let restarted = go_ctl(&lab, "go1", "restart");
    assert!(restarted.ok(), "restart go1:\n{}", restarted.report());
    let token_file = lab.dir.join("operator-api-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    green_within(&lab, "before the switchover");
    let before = lab.rows("pg1", "true");

    let slot = "drplan_standby";
    let site = lab.site_copy("site-switch-back.yaml", |text| {
        with_params(
            &text.replace(
                "\nsecrets:\n",
                "\nsecrets:\n  go_api_token: { file: operator-api-token }\n",
            ),
            &[
                ("rebuild_old_primary", "rewind"),
                ("replication_slot", slot),
                ("maintenance_mode", "true"),
            ],
        )
    });
    let switchover = lab.apply("switchover", &site, &[], &[]);
    applied(&switchover, "switchover rebuilding the old primary pair");
    assert_eq!(
        lab.step_state(&switchover.id, "enable-maintenance-mode"),
        "done"
    );
    let go1_log = std::fs::read_to_string(lab.dir.join("go1/go-server.log")).unwrap();
    let enabled = go1_log
        .find("maintenance mode enabled")
        .unwrap_or_else(|| panic!("GO1 was not put into maintenance mode:\n{go1_log}"));
    assert!(
        go1_log[enabled..].contains("stopping on signal"),
        "GO1 went into maintenance mode before it was stopped:\n{go1_log}"
    );
    // The token is a secret: never in the run's output or its journal.
    let journal = serde_json::to_string(&lab.journal(&switchover.id)).unwrap();
    assert!(
        !switchover.out.report().contains(token) && !journal.contains(token),
        "the API token leaked:\n{}\n{journal}",
        switchover.out.report()
    );
    assert!(
        switchover.out.stdout.contains(&format!(
            "PG1 was rebuilt by rewind and streams from PG2 through replication slot {slot} as its standby; GO1 runs as GO2's standby."
        )),
        "the switchover says what it leaves:\n{}",
        switchover.out.report()
    );

    // On the hosts: GO2 serves on PG2 behind the VIP, every row PG1 had is on PG2; PG1 streams
    // from PG2 through the slot (and keeps no stale copy of the slot it served PG2 through);
    // GO1 is a passive standby.
    assert!(!lab.in_recovery("pg2"), "PG2 is the primary");
    assert!(lab.in_recovery("pg1"), "PG1 is a standby");
    assert_eq!(lab.vip_holders(), vec!["go2"]);
    assert_eq!(
        lab.rows("pg2", &format!("id <= {}", before.max)),
        before,
        "every row committed on PG1 before the switchover is on PG2"
    );
    heartbeats_flow(&lab, "pg2", "go2");
    until_answers(
        &lab,
        "pg1",
        "select status || '|' || sender_host || '|' || slot_name from pg_stat_wal_receiver",
        &format!("streaming|{}|{slot}", lab.addr("pg2")),
        "PG1 streaming from PG2",
    );
    until_answers(
        &lab,
        "pg2",
        &format!("select active from pg_replication_slots where slot_name = '{slot}'"),
        "t",
        "PG1's slot on PG2",
    );
    assert_eq!(
        lab.q("pg1", "select count(*) from pg_replication_slots"),
        "0"
    );
    let st = lab.lab_status(lab.addr("go1")).unwrap();
    assert!(
        st["mode"] == "standby" && st["ready"] == true,
        "GO1 is a ready standby: {st}"
    );

    // The failback from there: the original layout, PG2 streaming from PG1 through the slot,
    // and no slot left on PG2, which served PG1 through it.
    let failback_site = lab.site_with_params("site-slot.yaml", &[("replication_slot", slot)]);
    let failback = lab.apply("failback", &failback_site, &[], &[]);
    applied(&failback, "failback after the switchover");
    served_by_pair_one(&lab, "after the failback");
    assert_eq!(lab.q("pg2", "show primary_slot_name"), slot);
    until_answers(
        &lab,
        "pg1",
        &format!("select active from pg_replication_slots where slot_name = '{slot}'"),
        "t",
        "PG2's slot on PG1",
    );
    assert_eq!(
        lab.q("pg2", "select count(*) from pg_replication_slots"),
        "0"
    );
    green_within(&lab, "after the failback");
    lab.finish();
}

// ---------------------------------------------------------------- 6

const DASHBOARD_JSON: &str = "/go/add-on/business-continuity/admin/dashboard.json";

#[test]
fn the_dashboard_is_read_with_the_token_and_a_stalled_sync_shows_as_a_gap_then_a_plugin() {
    let _serial = serial();
    let lab = Lab::up();
    // As GoCD >= 20.6: the add-on's API and dashboard want the token of
    // /etc/go/business-continuity-token, which both servers have; drplan has it as the
    // site's secret `go_bc_token` (the lab's site names DIR/secrets/go-bc-token).
    standin_args(&lab, "go1", "--bc-auth on");
    standin_args(&lab, "go2", "--bc-auth on");
    for host in ["go1", "go2"] {
        let restarted = go_ctl(&lab, host, "restart");
        assert!(restarted.ok(), "restart {host}:\n{}", restarted.report());
    }
    let (code, body) = lab.probe(&lab.go_url(lab.addr("go2"), DASHBOARD_JSON));
    assert_eq!(
        code, 1,
        "the dashboard refuses a request without the token: {body}"
    );
    assert!(body.contains("Unauthorized"), "{body}");

    // A site that does not declare the secret reads nothing: the refusal says why.
    let no_token = lab.site_copy("site-no-token.yaml", |t| {
        let (head, rest) = t
            .split_once("secrets:\n")
            .expect("the lab's site has secrets:");
        let (_, tail) = rest.split_once('\n').expect("go_bc_token's line");
        format!("{head}{tail}")
    });
    let (out, report) = check_site(&lab, &no_token);
    assert_eq!(out.code, Some(1), "{report:#}");
    assert_eq!(
        not_ok(&report),
        vec![(DASHBOARD.to_owned(), "warning".to_owned())],
        "{report:#}"
    );
    assert!(
        row(&report, DASHBOARD)["message"]
            .as_str()
            .is_some_and(|m| m.contains("answered 401")),
        "{report:#}"
    );

    // With the site's secret: in sync, the plugins too; the token is not in what drplan says.
    green_within(&lab, "with the token");
    let (out, report) = check(&lab);
    let token = std::fs::read_to_string(lab.dir.join("secrets/go-bc-token")).unwrap();
    let (_, password) = token.trim().split_once(':').expect("user:password");
    assert!(
        !out.text().contains(password),
        "the token's password is in check's output:\n{}",
        out.report()
    );
    let dashboard = &row(&report, DASHBOARD)["result"];
    assert!(
        dashboard["present"] == true
            && dashboard["in_sync"] == true
            && dashboard["plugins_in_sync"] == true,
        "{report:#}"
    );
    assert!(
        dashboard["plugins"]["primary"]
            .as_str()
            .is_some_and(|p| p.starts_with("lab-notifier-1.0.jar=")),
        "{report:#}"
    );

    // GO2's sync stalls (it polls GO1 every ten minutes now): the gap between GO1's last
    // update and GO2's last sync grows past max_sync_gap, though every file is still the same.
    let slow = lab.ssh(
        "go2",
        "sed -i 's/status.check.interval=[0-9]*/status.check.interval=600000/' /etc/default/go-server",
    );
    assert!(slow.ok(), "{}", slow.report());
    let restarted = go_ctl(&lab, "go2", "restart");
    assert!(restarted.ok(), "restart go2:\n{}", restarted.report());
    let gap_site = lab.site_with_params("site-gap.yaml", &[("max_sync_gap", "5s")]);
    let report = wait_for("the dashboard to show a sync gap", secs(60), || {
        let (out, report) = check_site(&lab, &gap_site);
        if out.code == Some(1) {
            Ok(report)
        } else {
            Err(format!("{:?}", not_ok(&report)))
        }
    });
    assert_eq!(
        not_ok(&report),
        vec![(DASHBOARD.to_owned(), "warning".to_owned())],
        "{report:#}"
    );
    let dashboard = &row(&report, DASHBOARD)["result"];
    assert!(
        dashboard["sync_gap_s"].as_i64().is_some_and(|g| g > 5)
            && dashboard["plugins_in_sync"] == true,
        "{report:#}"
    );

    // A plugin installed on GO1 that the stalled GO2 has not copied: the dashboard's plugin
    // status differs (and drplan's own comparison names the file).
    std::fs::write(lab.plugins_dir("go1").join("lab-late-1.0.jar"), "late\n").unwrap();
    let report = wait_for("the dashboard to show the plugin", secs(60), || {
        let (out, report) = check(&lab);
        let dashboard = &row(&report, DASHBOARD)["result"];
        if out.code == Some(1) && dashboard["plugins_in_sync"] == false {
            Ok(report)
        } else {
            Err(format!("{:?}", not_ok(&report)))
        }
    });
    assert_eq!(
        not_ok(&report),
        vec![
            (FILES.to_owned(), "warning".to_owned()),
            (DASHBOARD.to_owned(), "warning".to_owned())
        ],
        "{report:#}"
    );
    let late = format!("{}/lab-late-1.0.jar", lab.var("LAB_GO_PLUGINS_DIR"));
    assert!(
        row(&report, FILES)["result"]["differ"]
            .as_array()
            .is_some_and(|d| d.iter().any(|f| f == late.as_str())),
        "{report:#}"
    );
    lab.finish();
}
