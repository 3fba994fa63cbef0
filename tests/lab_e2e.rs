//! The shipped GoCD plans, run by the real binary against the DR lab (`tests/lab/up`): four
//! hosts in network namespaces with real SSH, PostgreSQL 15 streaming replication, the GoCD
//! stand-in and a virtual IP. Every assertion is made on the hosts themselves — PostgreSQL's
//! own views, `ip addr` inside the hosts, HTTP through the VIP from the controller, the files
//! in each host's /etc/go — never on what drplan says it did.
//!
//! Four labs, one after the other (a lab is heavy for a small machine), each always taken
//! down again, even when a test fails:
//!
//! 1. failover → failback by `pg_basebackup`, then failover of a standby that fell behind →
//!    failback by `pg_rewind` (which must really rewind PG1), with the data continuity of
//!    every hop and a timing summary of each run; the site names a replication slot, which
//!    PG2 streams through after each failback (and the copy PG1 was rebuilt from names none);
//!    external plugins GO2 gained or lost while it served are GO1's after the failback;
//! 2. SIGKILL of `drplan apply failover` around the point of no return, `drplan resume`, and
//!    the same end state as an uninterrupted failover (a failback resets the lab in between);
//! 3. refusals that must change nothing, each followed by `drplan rollback` (a lagging
//!    standby; an old primary drplan cannot log into, without fencing or approval; the same,
//!    approved, while PG1 asks for a password — alive, so not fenced; GO1 unreachable but
//!    still holding the VIP), an automatic rollback before the point of no return, and
//!    finally a planned switchover that must lose no committed row;
//! 4. a failover that fences PG1 with the site's `fence:` command (PG1 ran without
//!    wal_log_hints), failbacks refused by their preflight before anything is stopped (a
//!    rewind of that PG1; PG2's pg_hba.conf refusing PG1 replication), a failback refused at
//!    every step before its point of no return (each rolled back to the failed-over site), a
//!    failback whose catch-up wait would otherwise pass on a null LSN, and one whose PG1 has not
//!    replayed PG2's shutdown checkpoint (refused before the promotion, rolled back).
//!
//! 3 and 4 run on both lab flavours (`tests/lab/up --flavour hardened`: a sudo login on
//! another port, scram passwords, Debian's layout, GoCD without the add-on and a cold GO2), from
//! one body each (4 without its crashed failbacks on the hardened one: the null LSN and the
//! shutdown checkpoint are PostgreSQL's logic, not the hosts'); 1 and 2 on the default flavour
//! only (their hardened counterparts, failover and
//! failback by basebackup and by rewind, are in lab_hardened.rs; crash and resume do not depend
//! on how the hosts are set up, and cost minutes per crash point).
//!
//! The switchover that rebuilds the old primary pair as the new standby is in lab_gocd.rs.
//!
//! The tests need root and the lab's packages (tests/lab/README.md). Without them they FAIL:
//! a lab test that did not run has not passed.

mod common;

#[path = "lab_e2e/harness.rs"]
mod harness;

#[path = "lab_e2e/expect.rs"]
mod expect;

use expect::{served_by_pair_one, served_by_pair_two};
use harness::{Lab, Out, Rows, secs, serial, wait_for};
use serde_json::Value;

// ---------------------------------------------------------------- 1 + 2 + timing

#[test]
fn failover_and_failback_by_basebackup_then_by_pg_rewind() {
    let _serial = serial();
    let lab = Lab::up();
    served_by_pair_one(&lab, "the new lab");
    wait_for("3 heartbeat rows from go1 on PG1", secs(60), || {
        let n = lab.rows("pg1", "server = 'go1'").count;
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} rows"))
        }
    });

    // The site streams its standby through a replication slot: after each failback PG2 uses it
    // on PG1. The second failback rebuilds PG1 from a PG2 whose postgresql.auto.conf names the
    // slot (PG2 was a slot's standby before it was promoted); the copy must not name it while
    // PG1 catches up from PG2, which has no such slot.
    let slot = "drplan_standby";
    let slot_site = lab.site_with_params("site-slot.yaml", &[("replication_slot", slot)]);
    let rewind_site = lab.site_with_params(
        "site-rewind.yaml",
        &[("rebuild", "rewind"), ("replication_slot", slot)],
    );
    let mut old_plugin = "lab-notifier-1.0.jar".to_string();
    for (rebuild, failback_site) in [("basebackup", slot_site), ("rewind", rewind_site)] {
        let ctx = format!("failback by {rebuild}");

        // ---- unplanned failover
        // An unplanned failover may lose the last second of rows, but never one that was
        // committed (and so replicated and replayed) before the run started.
        let before = lab.rows("pg1", "true");

        // Before the rewind round, PG2 stops receiving WAL (its primary_conninfo emptied) while
        // GO1 writes on: PG1 then holds rows PG2 never saw — a standby that fell behind when
        // disaster struck. The failover promotes PG2 without them (they are the disaster's
        // loss), so PG1's history diverges from the new primary's and pg_rewind has real
        // work to do: after the failback those rows must be gone from PG1.
        let diverged: Option<String> = (rebuild == "rewind").then(|| {
            // What was committed before the run must be on PG2 before it falls behind.
            wait_for(&format!("{ctx}: PG2 to have replayed PG1's rows"), secs(60), || {
                let two = lab.rows("pg2", &format!("id <= {}", before.max));
                if two == before { Ok(()) } else { Err(format!("PG1 {before:?}, PG2 {two:?}")) }
            });
            lab.q("pg2", "alter system set primary_conninfo = ''");
            lab.q("pg2", "select pg_reload_conf()");
            wait_for(&format!("{ctx}: PG2's WAL receiver to stop"), secs(60), || {
                match lab.q("pg2", "select count(*) from pg_stat_wal_receiver").as_str() {
                    "0" => Ok(()),
                    n => Err(format!("{n} receiver(s)")),
                }
            });
            let received = lab.rows("pg2", "true").max;
            wait_for(&format!("{ctx}: 2 go1 rows on PG1 that PG2 lacks"), secs(60), || {
                let n = lab.rows("pg1", &format!("id > {received}")).count;
                if n >= 2 { Ok(()) } else { Err(format!("{n} rows")) }
            });
            lab.q(
                "pg1",
                &format!(
                    "select string_agg(id::text || '|' || extract(epoch from at)::text, ',') from heartbeat where id > {received}"
                ),
            )
        });

        let failover = lab.apply("failover", &lab.site(), &["--format", "json"], &[]);
        assert_eq!(
            failover.out.code,
            Some(0),
            "{ctx}: failover:\n{}",
            failover.out.report()
        );
        if diverged.is_some() {
            // Undo the test's own change on PG2 (the primary now; failback makes it a standby).
            lab.q("pg2", "alter system reset primary_conninfo");
            lab.q("pg2", "select pg_reload_conf()");
        }
        served_by_pair_two(&lab, &format!("{ctx}: after the failover"));
        assert_eq!(
            lab.rows("pg2", &format!("id <= {}", before.max)),
            before,
            "{ctx}: every heartbeat row committed on PG1 before the failover (ids <= {}) is on PG2, unchanged",
            before.max
        );

        // ---- GO2 gains an external plugin while it serves, and loses one: the failback copies
        // GO2's plugins to GO1, as the business-continuity add-on did.
        let new_plugin = format!("lab-{rebuild}-2.0.jar");
        std::fs::write(
            lab.plugins_dir("go2").join(&new_plugin),
            format!("{new_plugin} for {ctx}\n"),
        )
        .unwrap();
        std::fs::remove_file(lab.plugins_dir("go2").join(&old_plugin)).unwrap();
        let go2_plugins = lab.plugins("go2");

        // ---- GO2 serves for a while: its rows must survive the failback
        let go2_rows: Rows = wait_for(&format!("{ctx}: 3 rows from go2 on PG2"), secs(60), || {
            let r = lab.rows("pg2", "server = 'go2'");
            if r.count >= 3 {
                Ok(r)
            } else {
                Err(format!("{} rows", r.count))
            }
        });

        // ---- failback
        let failback = lab.apply("failback", &failback_site, &["--format", "json"], &[]);
        assert_eq!(
            failback.out.code,
            Some(0),
            "{ctx}: failback:\n{}",
            failback.out.report()
        );
        served_by_pair_one(&lab, &format!("{ctx}: after the failback"));
        assert_eq!(
            lab.plugins("go1"),
            go2_plugins,
            "{ctx}: GO1 has GO2's external plugins ({new_plugin} added, {old_plugin} removed)"
        );
        old_plugin = new_plugin;
        // PG2 streams from PG1 through the site's slot, which is on PG1 and in use; PG2 keeps
        // no slot of its own (none was left there while PG1 caught up from it).
        assert_eq!(
            lab.q("pg2", "show primary_slot_name"),
            slot,
            "{ctx}: PG2's slot"
        );
        wait_for(
            &format!("{ctx}: PG2 using slot {slot} on PG1"),
            secs(60),
            || {
                match lab
                .q(
                    "pg1",
                    &format!("select coalesce((select active::text from pg_replication_slots where slot_name = '{slot}'), 'no slot')"),
                )
                .as_str()
            {
                "true" => Ok(()),
                other => Err(other.to_string()),
            }
            },
        );
        assert_eq!(
            lab.q("pg2", "select count(*) from pg_replication_slots"),
            "0",
            "{ctx}: PG2 keeps no slot"
        );
        assert_eq!(
            lab.rows("pg1", &format!("server = 'go2' and id <= {}", go2_rows.max)),
            go2_rows,
            "{ctx}: the rows GO2 wrote while it was primary are on PG1"
        );
        // And the rows GO2 wrote after that snapshot, until the plan stopped it: PG2 still has
        // all of them (it was stopped cleanly) and now streams from PG1's new timeline, which
        // PostgreSQL refuses if PG2 holds WAL that PG1 never replayed (served_by_pair_one
        // checked the streaming). Both hold the same rows, up to what PG2 has replayed.
        wait_for(
            &format!("{ctx}: PG1 and PG2 hold the same rows"),
            secs(60),
            || {
                let max = lab.rows("pg2", "true").max;
                let filter = format!("id <= {max}");
                let (one, two) = (lab.rows("pg1", &filter), lab.rows("pg2", &filter));
                if one == two {
                    Ok(())
                } else {
                    Err(format!("PG1 {one:?}, PG2 {two:?}"))
                }
            },
        );
        if let Some(lost) = &diverged {
            let still = lab.q(
                "pg1",
                &format!(
                    "select count(*) from heartbeat where id::text || '|' || extract(epoch from at)::text = any(string_to_array('{lost}', ','))"
                ),
            );
            assert_eq!(
                still, "0",
                "{ctx}: the rows only PG1 had ({lost}) must be gone: PG1 follows PG2's history now"
            );
        }

        // ---- the rebuild path the site asked for
        let ran = lab.step_state(&failback.id, &format!("{rebuild}-pg-primary"));
        let other = if rebuild == "rewind" {
            "basebackup"
        } else {
            "rewind"
        };
        let skipped = lab.step_state(&failback.id, &format!("{other}-pg-primary"));
        assert_eq!(ran, "done", "{ctx}: {rebuild}-pg-primary should have run");
        assert!(
            skipped.starts_with("skipped"),
            "{ctx}: {other}-pg-primary should be skipped by its `when`, is {skipped:?}"
        );
        if rebuild == "rewind" {
            let result = lab
                .journal(&failback.id)
                .into_iter()
                .find(|r| {
                    r["record"]["kind"] == "step_finished"
                        && r["record"]["step"] == "rewind-pg-primary"
                })
                .map(|r| r["record"]["result"].clone())
                .expect("the journal records rewind-pg-primary's end");
            assert_eq!(
                result["rewound"], true,
                "{ctx}: PG1 had diverged, so pg_rewind must have rewound it: {result}"
            );
        }

        timing(
            &format!("failover (round before the failback by {rebuild})"),
            &failover.out,
        );
        timing(&format!("failback by {rebuild}"), &failback.out);
    }
    lab.finish();
}

/// Test 7: wall time of a run and where it went, from the `--format json` event stream.
/// Printed for the benchmark notes; nothing here is asserted.
fn timing(label: &str, out: &Out) {
    let mut steps: Vec<(String, u64)> = Vec::new();
    let mut stray: Vec<&str> = Vec::new();
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v["event"] == "step_finished" => steps.push((
                v["step"].as_str().unwrap_or("?").to_string(),
                v["duration_ms"].as_u64().unwrap_or(0),
            )),
            Ok(_) => {}
            Err(_) => stray.push(line),
        }
    }
    let sum: u64 = steps.iter().map(|(_, ms)| ms).sum();
    steps.sort_by_key(|s| std::cmp::Reverse(s.1));
    let slowest: Vec<String> = steps
        .iter()
        .take(3)
        .map(|(s, ms)| format!("{s} {:.2} s", *ms as f64 / 1000.0))
        .collect();
    eprintln!(
        "[lab_e2e timing] {label}: wall {:.2} s; {} steps, sum of step durations {:.2} s; slowest: {}",
        out.took.as_secs_f64(),
        steps.len(),
        sum as f64 / 1000.0,
        slowest.join(", ")
    );
    if !stray.is_empty() {
        eprintln!(
            "[lab_e2e timing] {label}: non-JSON lines in the --format json stream: {stray:?}"
        );
    }
}

// ---------------------------------------------------------------- 4: crash and resume

/// Resumes a crashed run until it has succeeded, deciding about in-doubt steps as an operator
/// would: look at the host to see whether the step took effect, then `--skip` or `--retry` it.
fn resume_until_done(lab: &Lab, run: &str) {
    for _round in 0..5 {
        let status = lab.status(run);
        if status["status"] == "succeeded" {
            return;
        }
        let mut decisions: Vec<(String, String)> = Vec::new();
        for step in status["steps"].as_array().unwrap() {
            if step["state"] != "in doubt" {
                continue;
            }
            let id = step["step"].as_str().unwrap();
            let took_effect = match id {
                "stop-go-primary" => lab.probe(&lab.go_url(lab.addr("go1"), "/lab/status")).0 == 2,
                "stop-pg-primary" => lab.psql("pg1", "select 1").is_err(),
                "release-vip" => !lab.vip_holders().contains(&"go1"),
                "promote-pg-standby" => !lab.in_recovery("pg2"),
                "assign-vip" => lab.vip_holders().contains(&"go2"),
                // The other failover actions are idempotent: running them again is safe.
                _ => false,
            };
            let flag = if took_effect { "--skip" } else { "--retry" };
            println!("in doubt: {id}: took effect on the host: {took_effect} → {flag}");
            decisions.push((flag.to_string(), id.to_string()));
        }
        let mut args = vec!["resume", run, "--parallel", "1"];
        for (flag, id) in &decisions {
            args.push(flag);
            args.push(id);
        }
        let out = lab.drplan(&args, &[]);
        assert!(
            matches!(out.code, Some(0 | 1)),
            "resume ended unexpectedly:\n{}",
            out.report()
        );
    }
    panic!(
        "run {run} did not succeed after 5 resumes: {}",
        lab.status(run)
    );
}

#[test]
fn failover_killed_around_the_point_of_no_return_resumes_to_the_same_end_state() {
    let _serial = serial();
    let lab = Lab::up();
    served_by_pair_one(&lab, "the new lab");

    // The journal of an uninterrupted `--parallel 1` failover, read from a real one (steps
    // skipped by `when`, like the fencing steps on a healthy site, write only their end),
    // then a failback to start every crash from the same site.
    let reference = lab.apply("failover", &lab.site(), &["--parallel", "1"], &[]);
    assert_eq!(reference.out.code, Some(0), "{}", reference.out.report());
    let records: Vec<(String, String)> = lab
        .journal(&reference.id)
        .iter()
        .map(|r| {
            let rec = &r["record"];
            let text = |k: &str| rec[k].as_str().unwrap_or_default().to_string();
            (text("kind"), text("step"))
        })
        .collect();
    let back = lab.apply("failback", &lab.site(), &[], &[]);
    assert_eq!(back.out.code, Some(0), "{}", back.out.report());
    served_by_pair_one(&lab, "after the reference run and its failback");
    // Crash points are named records (`KIND:STEP`): how many commands a step runs, and so
    // how many `command_started` records come before, varies from run to run (polls).
    let promote = "promote-pg-standby";
    let promote_started = records
        .iter()
        .position(|(k, st)| k == "step_started" && st == promote)
        .expect("the reference run started the promote");
    let before_promote = records[..promote_started]
        .iter()
        .rev()
        .find(|(k, _)| k == "step_finished")
        .expect("a step finished before the promote")
        .clone();
    let points: Vec<(&str, (String, String))> = vec![
        (
            "after the VIP release finished",
            ("step_finished".into(), "release-vip".into()),
        ),
        ("just before promote", before_promote),
        (
            "with promote started (in doubt)",
            ("step_started".into(), promote.into()),
        ),
        (
            "right after promote finished",
            ("step_finished".into(), promote.into()),
        ),
    ];
    println!("crash points: {points:?}");

    for (point, (kind, step)) in points {
        let ctx = format!("crash {point} (after {kind} of {step})");
        let before = lab.rows("pg1", "true");
        let crashed = lab.apply(
            "failover",
            &lab.site(),
            &["--parallel", "1"],
            &[("DRPLAN_CRASH_AFTER_RECORD", &format!("{kind}:{step}"))],
        );
        assert_eq!(
            crashed.out.signal,
            Some(9),
            "{ctx}: drplan should have killed itself:\n{}",
            crashed.out.report()
        );
        // What the crashed run journaled, as (kind, step) pairs.
        let at_crash: Vec<(String, String)> = lab
            .journal(&crashed.id)
            .iter()
            .map(|r| {
                let rec = &r["record"];
                let text = |k: &str| rec[k].as_str().unwrap_or_default().to_string();
                (text("kind"), text("step"))
            })
            .collect();
        assert_eq!(
            at_crash.last(),
            Some(&(kind.clone(), step.clone())),
            "{ctx}: the journal should end with that record"
        );
        let journaled = |k: &str, st: &str| at_crash.contains(&(k.to_string(), st.to_string()));

        // What the hosts look like at the crash.
        let promoted = journaled("step_finished", promote);
        assert_eq!(
            !lab.in_recovery("pg2"),
            promoted,
            "{ctx}: PG2 should {}be promoted yet",
            if promoted { "" } else { "not " }
        );
        if journaled("step_finished", "stop-pg-primary") {
            assert!(
                lab.psql("pg1", "select 1").is_err(),
                "{ctx}: PG1 should be stopped"
            );
        }
        if journaled("step_finished", "release-vip") && !journaled("step_finished", "assign-vip") {
            assert!(
                lab.vip_holders().is_empty(),
                "{ctx}: the VIP should be on no host"
            );
        }
        println!(
            "{ctx}: status after the crash: {}",
            lab.step_states(&crashed.id)
                .iter()
                .map(|(s, st)| format!("{s}={st}"))
                .collect::<Vec<_>>()
                .join(" ")
        );

        resume_until_done(&lab, &crashed.id);
        for (step, state) in lab.step_states(&crashed.id) {
            let expected = if records.contains(&("step_started".into(), step.clone())) {
                "done"
            } else {
                "skipped (when)"
            };
            assert_eq!(state, expected, "{ctx}: step {step} after resuming");
        }
        // A step that had finished before the crash is never started again by the resume: one
        // that ran has one start; one skipped by its `when` (the fencing steps on a healthy
        // site write only their end) has none.
        let journal = lab.journal(&crashed.id);
        for (_, step) in at_crash.iter().filter(|(k, _)| k == "step_finished") {
            let ran = usize::from(journaled("step_started", step));
            let starts = journal
                .iter()
                .filter(|r| {
                    r["record"]["kind"] == "step_started" && r["record"]["step"] == step.as_str()
                })
                .count();
            assert_eq!(
                starts, ran,
                "{ctx}: {step} finished before the crash, so the resume did not start it again"
            );
        }
        served_by_pair_two(&lab, &format!("{ctx}: after resuming"));
        assert_eq!(
            lab.rows("pg2", &format!("id <= {}", before.max)),
            before,
            "{ctx}: every row committed on PG1 before the run is on PG2"
        );

        // Reset the lab for the next crash point: the failback is itself tested in full above.
        let back = lab.apply("failback", &lab.site(), &[], &[]);
        assert_eq!(
            back.out.code,
            Some(0),
            "{ctx}: failback:\n{}",
            back.out.report()
        );
        served_by_pair_one(
            &lab,
            &format!("{ctx}: after the failback that resets the lab"),
        );
    }
    lab.finish();
}

// ---------------------------------------------------------------- 5, 6, 3

/// GO2's business-continuity dashboard shows every config file in sync with GO1's and no
/// sync error (what the switchover's precondition requires; GO2 re-syncs after a restart).
fn standby_in_sync(lab: &Lab) {
    wait_for("GO2's config files in sync with GO1's", secs(90), || {
        let url = lab.go_url(
            lab.addr("go2"),
            "/go/add-on/business-continuity/admin/dashboard.json",
        );
        let (code, body) = lab.probe(&url);
        let d: Value =
            serde_json::from_str(&body).map_err(|e| format!("exit {code}, {e}: {body}"))?;
        let synced = [
            "CRUISE_CONFIG_XML",
            "AES_CIPHER",
            "JETTY_XML",
            "USER_FEATURE_TOGGLE",
        ]
        .iter()
        .all(|k| {
            d["primaryServerDetails"][k]["md5"].is_string()
                && d["primaryServerDetails"][k]["md5"] == d["standbyServerDetails"][k]
        });
        let clean = d["setupStatus"] == "success"
            && d["syncErrors"]
                .as_array()
                .is_some_and(std::vec::Vec::is_empty);
        if synced && clean { Ok(()) } else { Err(body) }
    });
}

/// A failover refused (exit 3) before the point of no return: PG2 not promoted, PG1 still
/// the primary, GO2 not serving through the VIP.
fn refused_before_promote(lab: &Lab, refused: &harness::Run, ctx: &str) {
    assert_eq!(
        refused.out.code,
        Some(3),
        "{ctx}: refused:\n{}",
        refused.out.report()
    );
    assert_eq!(lab.status(&refused.id)["status"], "paused", "{ctx}");
    for step in ["promote-pg-standby", "start-go-standby", "assign-vip"] {
        let state = lab.step_state(&refused.id, step);
        assert!(
            !state.starts_with("done"),
            "{ctx}: {step} must not have run: {state}"
        );
    }
    assert!(lab.in_recovery("pg2"), "{ctx}: PG2 must not be promoted");
    assert!(
        !lab.vip_holders().contains(&"go2"),
        "{ctx}: GO2 must not hold the VIP"
    );
}

/// `DATA/pg_hba.conf` of pg1 or pg2 on its host, with `lines` put in front (the first match
/// wins) and the server reloaded; returns the original text for `hba_restore`.
fn hba_prepend(lab: &Lab, host: &str, lines: &[String]) -> String {
    let hba = format!("{}/pg_hba.conf", lab.pg_conf_dir(host));
    let original = lab.cat(host, &hba);
    hba_write(lab, host, &format!("{}\n{original}", lines.join("\n")));
    original
}

fn hba_restore(lab: &Lab, host: &str, original: &str) {
    hba_write(lab, host, original);
}

fn hba_write(lab: &Lab, host: &str, text: &str) {
    let staged = lab.dir.join(format!("pg_hba.conf.{host}"));
    std::fs::write(&staged, text).unwrap();
    let out = lab.ssh(
        host,
        &format!(
            "cat {staged} > {conf}/pg_hba.conf && {reload}",
            staged = staged.display(),
            conf = lab.pg_conf_dir(host),
            reload = lab.pg_ctl_script(host, "reload"),
        ),
    );
    assert!(out.ok(), "write {host}'s pg_hba.conf:\n{}", out.report());
}

/// `drplan rollback RUN` succeeds and the site is served by the original pair again.
fn roll_back_to_pair_one(lab: &Lab, run: &str, ctx: &str) {
    let rollback = lab.drplan(&["rollback", run], &[]);
    assert_eq!(
        rollback.code,
        Some(0),
        "{ctx}: rollback:\n{}",
        rollback.report()
    );
    assert_eq!(lab.status(run)["status"], "rolled_back", "{ctx}");
    served_by_pair_one(lab, &format!("{ctx}: after the rollback"));
    assert!(!lab.in_recovery("pg1"), "{ctx}: PG1 is the primary");
}

#[test]
fn refusals_and_rollbacks_change_nothing_and_a_switchover_loses_no_row() {
    refusals_and_rollbacks_then_a_switchover("default");
}

#[test]
fn refusals_and_rollbacks_change_nothing_and_a_switchover_loses_no_row_on_the_hardened_lab() {
    refusals_and_rollbacks_then_a_switchover("hardened");
}

fn refusals_and_rollbacks_then_a_switchover(flavour: &str) {
    let _serial = serial();
    let lab = Lab::up_flavour(flavour);
    served_by_pair_one(&lab, "the new lab");

    // ---- 5a: a standby that lags behind refuses the switchover before step one.
    lab.q("pg2", "select pg_wal_replay_pause()");
    let paused_at = lab.rows("pg1", "true").max;
    wait_for(
        "GO1 writing on while PG2's replay is paused",
        secs(60),
        || {
            let newer = lab
                .rows("pg1", &format!("server = 'go1' and id > {paused_at}"))
                .count;
            let lag: f64 = lab
                .q(
                    "pg2",
                    "select pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())",
                )
                .parse()
                .unwrap_or(0.0);
            if newer >= 3 && lag > 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "{newer} new go1 rows; PG2 received but did not replay {lag} bytes"
                ))
            }
        },
    );
    let lag_site = lab.site_with_params("site-lag.yaml", &[("max_lag_bytes", "1")]);
    let refused = lab.apply("switchover", &lag_site, &[], &[]);
    assert_eq!(
        refused.out.code,
        Some(3),
        "lagging standby:\n{}",
        refused.out.report()
    );
    assert!(
        refused
            .out
            .text()
            .contains("the standby PostgreSQL is streaming and nearly caught up"),
        "the refusal names the failed check:\n{}",
        refused.out.report()
    );
    assert_eq!(lab.status(&refused.id)["status"], "refused");
    for (step, state) in lab.step_states(&refused.id) {
        assert_eq!(
            state, "pending",
            "lagging standby: step {step} must not have run"
        );
    }
    served_by_pair_one(&lab, "after the refused switchover (replay still paused)");
    lab.q("pg2", "select pg_wal_replay_resume()");
    wait_for("PG2 replaying again", secs(60), || {
        match lab
            .q("pg2", "select pg_get_wal_replay_pause_state()")
            .as_str()
        {
            "not paused" => Ok(()),
            s => Err(s.to_string()),
        }
    });

    // ---- 5b: an old primary drplan cannot log into is not proof of a dead one.
    // The site says pg_primary's sshd is on port 2223, where nothing listens: the plan skips
    // stopping PG1 (`on_unreachable: skip`), while PG1 keeps serving.
    let unfenced = lab.locked_out_site("site-unfenced.yaml", "pg_primary", "");
    // Without a fencing command in the site, the operator must confirm PG1 is dead; nobody
    // can at a run without a terminal, so the run is refused before the promotion.
    let refused = lab.apply("failover", &unfenced, &[], &[]);
    refused_before_promote(&lab, &refused, "no fencing, no approval");
    assert!(
        refused
            .out
            .text()
            .contains("--approve approve-unfenced-pg-primary"),
        "the refusal says how to approve:\n{}",
        refused.out.report()
    );
    assert!(
        lab.step_state(&refused.id, "stop-pg-primary")
            .starts_with("skipped"),
        "stop-pg-primary is skipped as unreachable"
    );
    roll_back_to_pair_one(&lab, &refused.id, "no fencing, no approval");

    // Approved, but PG1 answers: on the default flavour it asks PG2 and the controller for a
    // password (libpq says `fe_sendauth: no password supplied`, without `FATAL:`); on the
    // hardened one drplan has the password and PG1 lets it in. Either is a live server, not
    // an unreachable one: the fencing check fails closed and PG2 is not promoted.
    let original_hba = (!lab.hardened()).then(|| {
        let original = hba_prepend(
            &lab,
            "pg1",
            &[
                format!("host all all {}/32 scram-sha-256", lab.addr("pg2")),
                format!("host all all {}/32 scram-sha-256", lab.var("LAB_ADDR_CTL")),
            ],
        );
        wait_for(
            "PG1 to ask the controller for a password",
            secs(30),
            || match lab.psql("pg1", "select 1") {
                Err(e) if e.contains("no password supplied") => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        original
    });
    let refused = lab.apply(
        "failover",
        &unfenced,
        &["--approve", "approve-unfenced-pg-primary"],
        &[],
    );
    refused_before_promote(&lab, &refused, "PG1 asks for a password");
    let text = refused.out.text();
    assert!(
        text.contains("the old primary is fenced")
            && (lab.hardened() || text.contains("no password supplied")),
        "the refusal names the fencing check and what PG1 said:\n{}",
        refused.out.report()
    );
    assert_eq!(
        lab.step_state(&refused.id, "approve-unfenced-pg-primary"),
        "done"
    );
    if let Some(original) = original_hba {
        hba_restore(&lab, "pg1", &original);
        wait_for("PG1 to let the controller in again", secs(30), || {
            lab.psql("pg1", "select 1")
        });
    }
    roll_back_to_pair_one(&lab, &refused.id, "PG1 asks for a password");

    // ---- 5c: GO1 cannot be logged into and still holds the VIP: refused before the promote.
    let go1_locked = lab.locked_out_site("site-go1-locked.yaml", "go_primary", "");
    let refused = lab.apply("failover", &go1_locked, &[], &[]);
    refused_before_promote(&lab, &refused, "GO1 holds the VIP");
    assert!(
        refused
            .out
            .text()
            .contains("no other host answers for the virtual IP"),
        "the refusal names the VIP check:\n{}",
        refused.out.report()
    );
    for step in ["stop-go-primary", "release-vip"] {
        let state = lab.step_state(&refused.id, step);
        assert!(state.starts_with("skipped"), "{step}: {state}");
    }
    assert_eq!(lab.vip_holders(), vec!["go1"], "the VIP stays on GO1");
    roll_back_to_pair_one(&lab, &refused.id, "GO1 holds the VIP");

    // ---- 6: a failure before the point of no return rolls everything back.
    // pg_standby's data directory does not exist in this site copy, so promote fails — after
    // the plan has stopped both GoCD servers and PG1 and released the VIP.
    let pgdata2 = lab.var("LAB_PGDATA_PG2").to_string();
    let broken = lab.site_copy("site-no-standby-data.yaml", |t| {
        t.replacen(
            &format!("data_dir: {pgdata2},"),
            &format!("data_dir: {pgdata2}-no-such-dir,"),
            1,
        )
    });
    let failed = lab.apply("failover", &broken, &["--on-failure", "rollback"], &[]);
    assert_eq!(
        failed.out.code,
        Some(1),
        "promote fails:\n{}",
        failed.out.report()
    );
    assert_eq!(lab.status(&failed.id)["status"], "rolled_back");
    // A warm GO2 is started again; a cold one (hardened) was only made sure of, and stays
    // stopped (served_by_pair_one below checks it).
    let go2_stop = if lab.hardened() {
        "stop-go-standby-cold"
    } else {
        "stop-go-standby"
    };
    for step in [
        "stop-go-primary",
        "stop-pg-primary",
        "release-vip",
        go2_stop,
        "set-go-standby-primary",
    ] {
        let undone = if step == "stop-go-standby-cold" {
            "done"
        } else {
            "rolled back"
        };
        assert_eq!(
            lab.step_state(&failed.id, step),
            undone,
            "{step} ran and was undone (a step without a rollback hook stays done)"
        );
    }
    assert!(
        lab.step_state(&failed.id, "promote-pg-standby")
            .starts_with("failed")
    );
    // GoCD stops before its database, and the rollback starts the database before GoCD (a
    // GoCD server started without its database fails its migrations).
    let journal = lab.journal(&failed.id);
    let at = |kind: &str, step: &str| {
        journal
            .iter()
            .position(|r| r["record"]["kind"] == kind && r["record"]["step"] == step)
            .unwrap_or_else(|| panic!("no {kind} of {step} in run {}", failed.id))
    };
    assert!(
        at("step_finished", "stop-go-primary") < at("step_started", "stop-pg-primary"),
        "GO1 must be stopped before PG1"
    );
    assert!(
        at("compensation_finished", "stop-pg-primary")
            < at("compensation_started", "stop-go-primary"),
        "the rollback must start PG1 before GO1"
    );
    served_by_pair_one(&lab, "after the automatic rollback");

    // ---- 3: a planned switchover loses no committed row.
    if !lab.hardened() {
        standby_in_sync(&lab); // a warm GO2 (the add-on): its dashboard
    }
    let before = lab.rows("pg1", "server = 'go1'");
    let switchover = lab.apply("switchover", &lab.site(), &[], &[]);
    assert_eq!(
        switchover.out.code,
        Some(0),
        "switchover:\n{}",
        switchover.out.report()
    );
    served_by_pair_two(&lab, "after the switchover");

    // What PG1 committed is in its data directory, which the switchover shut down cleanly.
    // Start it again *as a standby with no upstream* (standby.signal, primary_conninfo and
    // restore_command emptied): it replays only its own WAL, reaches the shutdown checkpoint
    // and answers read-only queries — it cannot accept a write, so no second primary exists
    // even for a moment, and nothing from PG2 can reach it. Every row it holds must be on PG2
    // with the same content; PG2's own new rows come from its sequence, past PG1's ids.
    let data1 = lab.var("LAB_PGDATA_PG1").to_string();
    let start = lab.ssh(
        "pg1",
        &format!(
            "runuser -u postgres -- touch {data1}/standby.signal && {}",
            lab.pg_ctl_script(
                "pg1",
                "-o '-c primary_conninfo= -c restore_command=' -w -t 120 start"
            )
        ),
    );
    assert!(start.ok(), "start PG1 read-only:\n{}", start.report());
    assert!(lab.in_recovery("pg1"), "PG1 must come up read-only");
    assert_eq!(
        lab.q("pg1", "select count(*) from pg_stat_wal_receiver"),
        "0",
        "read-only PG1 must not stream from anywhere"
    );
    let on_pg1 = lab.rows("pg1", "true");
    let on_pg2 = lab.rows("pg2", &format!("id <= {}", on_pg1.max));
    let go1_on_pg1 = lab.rows("pg1", "server = 'go1'");
    eprintln!(
        "[lab_e2e] switchover: PG1 holds {} rows ({} from go1, {} of them written after the last look before the run); PG2 {:?}",
        on_pg1.count,
        go1_on_pg1.count,
        go1_on_pg1.count - before.count,
        on_pg2
    );
    assert!(
        go1_on_pg1.count >= before.count && before.count >= 3,
        "go1 wrote rows: {before:?} then {go1_on_pg1:?}"
    );
    assert_eq!(
        on_pg2, on_pg1,
        "every row committed on PG1 is on PG2, unchanged"
    );
    let stop = lab.ssh(
        "pg1",
        &format!(
            "{} && rm -f {data1}/standby.signal",
            lab.pg_ctl_script("pg1", "-m fast -w stop")
        ),
    );
    assert!(stop.ok(), "stop the read-only PG1:\n{}", stop.report());
    lab.finish();
}

// ---------------------------------------------------------------- 8, 9, 10: fencing by the
// site, failbacks that fail before the point of no return, catch-up waits on nothing

/// The failback plan with a check that always fails added to step `step`'s preconditions:
/// the run is refused exactly there, before that step changes anything.
fn failback_failing_at(lab: &Lab, step: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(harness::plan("failback")).unwrap();
    let check = format!(
        "{{ name: forced failure at {step}, on: local, check: file.stat, with: {{ path: /nonexistent/drplan-forced-failure }}, expect: result.exists }}"
    );
    let mut out = String::new();
    let mut in_step = false;
    let mut done = false;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("  - id: ") {
            in_step = line.trim_end() == format!("  - id: {step}");
            // A step without preconditions gets a list of one, right after its id.
            let has_list = in_step
                && lines[i + 1..]
                    .iter()
                    .take_while(|l| !l.starts_with("  - id: ") && !l.starts_with("  #"))
                    .any(|l| l.starts_with("    preconditions:"));
            if in_step && !has_list {
                out.push_str(&format!("    preconditions: [{check}]\n"));
                done = true;
            }
        } else if in_step && !done && line.starts_with("    preconditions:") {
            out.push_str(&format!("      - {check}\n"));
            done = true;
        }
    }
    assert!(done, "no step {step} in failback.yaml");
    let path = lab.dir.join(format!("failback-failing-at-{step}.yaml"));
    std::fs::write(&path, out).unwrap();
    path
}

/// A `--parallel 1` failback, killed (SIGKILL, by the crash failpoint) right after `step`
/// finished.
fn failback_killed_after(lab: &Lab, step: &str) -> harness::Run {
    let crashed = lab.apply(
        "failback",
        &lab.site(),
        &["--parallel", "1"],
        &[(
            "DRPLAN_CRASH_AFTER_RECORD",
            &format!("step_finished:{step}"),
        )],
    );
    assert_eq!(crashed.out.signal, Some(9), "{}", crashed.out.report());
    crashed
}

/// A failback refused (exit 3) before step one by its preflight, which says `missing`; the
/// failed-over site is left as it was.
fn failback_refused_by_preflight(lab: &Lab, site: &std::path::Path, missing: &str) {
    let refused = lab.apply("failback", site, &[], &[]);
    assert_eq!(refused.out.code, Some(3), "{}", refused.out.report());
    assert!(
        refused.out.text().contains(missing),
        "the preflight names what is missing ({missing}):\n{}",
        refused.out.report()
    );
    assert_eq!(lab.status(&refused.id)["status"], "refused");
    served_by_pair_two(lab, &format!("after the failback refused for {missing}"));
}

/// Step ids of a plan's preview that run before its point of no return (the point of no
/// return itself included): every step that does not wait for it, directly or not.
fn before_the_point_of_no_return(lab: &Lab, plan_name: &str) -> Vec<(String, bool)> {
    let plan = harness::plan(plan_name);
    let out = lab.drplan(
        &[
            "plan",
            plan.to_str().unwrap(),
            "--site",
            lab.site().to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    assert!(out.ok(), "drplan plan:\n{}", out.report());
    let preview: Value = serde_json::from_str(&out.stdout).unwrap();
    let steps = preview["steps"].as_array().unwrap();
    let pnr = steps
        .iter()
        .find(|s| s["point_of_no_return"] == true)
        .expect("a point of no return")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let needs = |id: &str| -> Vec<String> {
        steps.iter().find(|s| s["id"] == id).unwrap()["needs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    let after = |id: &str| -> bool {
        let mut stack = needs(id);
        let mut seen = Vec::new();
        while let Some(n) = stack.pop() {
            if n == pnr {
                return true;
            }
            if !seen.contains(&n) {
                stack.extend(needs(&n));
                seen.push(n);
            }
        }
        false
    };
    steps
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .filter(|id| !after(id))
        .map(|id| {
            let conditional =
                steps.iter().find(|s| s["id"] == id.as_str()).unwrap()["when"].is_string();
            (id, conditional)
        })
        .collect()
}

#[test]
fn site_fencing_then_failbacks_that_fail_before_the_point_of_no_return_leave_the_failed_over_site()
{
    site_fencing_then_failbacks_that_fail_before_the_point_of_no_return("default");
}

#[test]
fn site_fencing_then_failbacks_that_fail_before_the_point_of_no_return_on_the_hardened_lab() {
    site_fencing_then_failbacks_that_fail_before_the_point_of_no_return("hardened");
}

fn site_fencing_then_failbacks_that_fail_before_the_point_of_no_return(flavour: &str) {
    let _serial = serial();
    let lab = Lab::up_flavour(flavour);
    served_by_pair_one(&lab, "the new lab");

    // PG1 runs without wal_log_hints (and the lab's clusters have no data checksums): its
    // control file says so, and no failback may rewind it (below).
    lab.q("pg1", "alter system set wal_log_hints = off");
    lab.pg_ctl("pg1", "-m fast -w restart");
    assert_eq!(lab.q("pg1", "show wal_log_hints"), "off");
    served_by_pair_one(&lab, "PG1 without wal_log_hints");

    // ---- 8: PG1's host cannot be logged into, PG1 still runs: the site's fencing command
    // (here an out-of-band path that stops PostgreSQL the hard way, as a power switch would)
    // is run from the controller, and only then is PG2 promoted.
    let fence = lab.ssh_argv("pg1", &lab.pg_ctl_script("pg1", "-m immediate -w stop"));
    let fence = serde_json::to_string(&fence).unwrap();
    let fenced_site = lab.locked_out_site(
        "site-fenced.yaml",
        "pg_primary",
        &format!("fence: {fence}, "),
    );
    let preview = lab.drplan(
        &[
            "plan",
            harness::plan("failover").to_str().unwrap(),
            "--site",
            fenced_site.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        preview.stdout.contains("Not asked at this site")
            && preview.stdout.contains("-m immediate -w stop"),
        "the preview says the site's fencing applies, not an approval:\n{}",
        preview.report()
    );
    let failover = lab.apply("failover", &fenced_site, &[], &[]);
    assert_eq!(
        failover.out.code,
        Some(0),
        "failover with site fencing:\n{}",
        failover.out.report()
    );
    assert!(
        lab.step_state(&failover.id, "stop-pg-primary")
            .starts_with("skipped")
    );
    assert_eq!(lab.step_state(&failover.id, "fence-pg-primary"), "done");
    assert!(
        lab.step_state(&failover.id, "approve-unfenced-pg-primary")
            .starts_with("skipped")
    );
    served_by_pair_two(&lab, "after the failover with site fencing");

    // ---- 7: a failback that could not finish is refused before anything is stopped, by its
    // preflight, which names what is missing. pg_rewind needs wal_log_hints or checksums in PG1:
    let rewind_site = lab.site_with_params("site-rewind.yaml", &[("rebuild", "rewind")]);
    failback_refused_by_preflight(
        &lab,
        &rewind_site,
        "pg_rewind needs wal_log_hints = on or data checksums",
    );
    // PG2's pg_hba.conf must let PG1 replicate (pg_basebackup, and PG1 as PG2's standby):
    let original_hba = hba_prepend(
        &lab,
        "pg2",
        &[format!(
            "host replication all {}/32 reject",
            lab.addr("pg1")
        )],
    );
    failback_refused_by_preflight(&lab, &lab.site(), "cannot open a replication connection to");
    hba_restore(&lab, "pg2", &original_hba);

    // ---- 9: a failback refused at each step before its point of no return (and at the
    // promotion itself) rolls back to the failed-over site: GO2 serving through the VIP on
    // PG2, GO1 and PG1 down. On the hardened flavour only at the promotion, where every step
    // before it has run and every rollback hook runs (GoCD's script through sudo, the VIP,
    // pg_ctlcluster): which steps a partial run rolls back is the plan's, not the hosts'.
    let mut steps = before_the_point_of_no_return(&lab, "failback");
    if lab.hardened() {
        steps.retain(|(step, _)| step == "promote-pg-primary");
        assert_eq!(steps.len(), 1, "the failback's point of no return");
    }
    println!("failback steps before the point of no return: {steps:?}");
    for (step, conditional) in &steps {
        if *conditional && step == "rewind-pg-primary" {
            continue; // skipped by its `when` with the default rebuild: nothing to fail there
        }
        let ctx = format!("failback failing at {step}");
        let plan = failback_failing_at(&lab, step);
        let failed = lab.apply_file(&plan, &lab.site(), &["--on-failure", "rollback"], &[]);
        assert_eq!(failed.out.code, Some(3), "{ctx}:\n{}", failed.out.report());
        assert!(
            failed
                .out
                .text()
                .contains(&format!("forced failure at {step}")),
            "{ctx}: refused by the forced check:\n{}",
            failed.out.report()
        );
        assert!(
            lab.step_state(&failed.id, step).starts_with("failed"),
            "{ctx}: {step} is the step that failed"
        );
        let rollback = lab.drplan(&["rollback", &failed.id], &[]);
        assert_eq!(
            rollback.code,
            Some(0),
            "{ctx}: rollback:\n{}",
            rollback.report()
        );
        served_by_pair_two(&lab, &format!("{ctx}, after the rollback"));
    }

    // 10 and the shutdown checkpoint below are PostgreSQL's and the journal's logic, the same
    // however the hosts are set up, and each costs a crash and a resume: only the default
    // flavour runs them (CI time).
    if lab.hardened() {
        lab.finish();
        return;
    }

    // ---- 10: the catch-up wait needs a number read from PG2 as the primary. A full
    // `--parallel 1` failback gives the journal's order; the next one is killed right before
    // it reads PG2's last WAL position, PG2 is stopped, and the resumed run must not conclude
    // from nothing that PG1 caught up: PG1 stays an unpromoted standby.
    let full = lab.apply("failback", &lab.site(), &["--parallel", "1"], &[]);
    assert_eq!(full.out.code, Some(0), "failback:\n{}", full.out.report());
    served_by_pair_one(&lab, "after a full failback");
    let failover = lab.apply("failover", &lab.site(), &[], &[]);
    assert_eq!(
        failover.out.code,
        Some(0),
        "failover:\n{}",
        failover.out.report()
    );
    served_by_pair_two(&lab, "after the failover again");
    // Killed right after the step before pg2_final_lsn finished (named: how many commands,
    // and so records, come before varies with polls).
    let journal = lab.journal(&full.id);
    let read_at = journal
        .iter()
        .position(|r| {
            r["record"]["kind"] == "step_started" && r["record"]["step"] == "pg2_final_lsn"
        })
        .expect("pg2_final_lsn started");
    let before = journal[..read_at]
        .iter()
        .rev()
        .find(|r| r["record"]["kind"] == "step_finished")
        .and_then(|r| r["record"]["step"].as_str())
        .expect("a step finished before pg2_final_lsn")
        .to_string();
    let crashed = failback_killed_after(&lab, &before);
    let pg_ctl = |verb: &str| lab.pg_ctl("pg2", &format!("-m fast -w {verb}"));
    pg_ctl("stop");
    let resumed = lab.drplan(&["resume", &crashed.id], &[]);
    assert_eq!(resumed.code, Some(1), "resume:\n{}", resumed.report());
    assert!(
        lab.step_state(&crashed.id, "pg2_final_lsn")
            .starts_with("failed"),
        "pg2_final_lsn must fail on an unreachable PG2"
    );
    for step in ["wait-pg-primary-caught-up", "promote-pg-primary"] {
        let state = lab.step_state(&crashed.id, step);
        assert!(
            !state.starts_with("done"),
            "{step} must not have run: {state}"
        );
    }
    assert!(lab.in_recovery("pg1"), "PG1 must not be promoted");
    pg_ctl("start");
    let rollback = lab.drplan(&["rollback", &crashed.id], &[]);
    assert_eq!(rollback.code, Some(0), "rollback:\n{}", rollback.report());
    served_by_pair_two(
        &lab,
        "after rolling back the failback that could not read PG2",
    );

    // ---- 7: PG2 can follow PG1's new timeline only if PG1 has replayed the checkpoint PG2
    // wrote as it shut down. Killed right after PG1 caught up, PG1's replay is paused: the
    // resumed run stops PG2, and must refuse to promote PG1 without that checkpoint.
    let crashed = failback_killed_after(&lab, "wait-pg-primary-caught-up");
    lab.q("pg1", "select pg_wal_replay_pause()");
    let resumed = lab.drplan(&["resume", &crashed.id], &[]);
    assert_eq!(resumed.code, Some(1), "resume:\n{}", resumed.report());
    assert!(
        lab.step_state(&crashed.id, "wait-pg-primary-has-shutdown-checkpoint")
            .starts_with("failed"),
        "{:?}",
        lab.step_states(&crashed.id)
    );
    let promote = lab.step_state(&crashed.id, "promote-pg-primary");
    assert!(
        !promote.starts_with("done"),
        "promote-pg-primary: {promote}"
    );
    assert!(lab.in_recovery("pg1"), "PG1 must not be promoted");
    let rollback = lab.drplan(&["rollback", &crashed.id], &[]);
    assert_eq!(rollback.code, Some(0), "rollback:\n{}", rollback.report());
    served_by_pair_two(
        &lab,
        "after rolling back the failback whose PG1 missed PG2's shutdown checkpoint",
    );
    lab.finish();
}
