//! The two layouts a GoCD business-continuity site can be in, checked on the hosts themselves:
//! served from the original pair (GO1 on PG1, GO2 a synced standby, PG2 streaming from PG1,
//! the VIP on GO1), or served from the standby pair after a failover or switchover (GO2 on PG2,
//! the VIP on GO2, GO1 and PG1 down).

use super::harness::{Lab, secs, wait_for};
use serde_json::Value;

/// New heartbeat rows from `server` keep arriving in the database on `db`.
pub(crate) fn heartbeats_flow(lab: &Lab, db: &str, server: &str) {
    let max = lab.rows(db, "true").max;
    wait_for(
        &format!("a new heartbeat row from {server} on {db}"),
        secs(60),
        || {
            let n = lab
                .rows(db, &format!("server = '{server}' and id > {max}"))
                .count;
            if n >= 1 {
                Ok(())
            } else {
                Err(format!("no row from {server} with id > {max} yet"))
            }
        },
    );
}

/// `/go/api/v1/health` through the VIP, from the controller (where agents are): 200 OK.
fn healthy_through_vip(lab: &Lab, ctx: &str) {
    let (code, body) = lab.probe(&lab.go_url(lab.vip(), "/go/api/v1/health"));
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert!(
        code == 0 && json["health"] == "OK",
        "{ctx}: GET /go/api/v1/health through the VIP: probe exit {code} (0 = HTTP 2xx), body {body:?}"
    );
}

fn lab_status_is(lab: &Lab, addr: &str, name: &str, mode: &str, ctx: &str) {
    let st = lab
        .lab_status(addr)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    assert!(
        st["name"] == name && st["mode"] == mode && st["ready"] == true,
        "{ctx}: /lab/status at {addr} should be {name} in {mode} mode and ready: {st}"
    );
}

fn go_stopped(lab: &Lab, host: &str, ctx: &str) {
    let (code, body) = lab.probe(&lab.go_url(lab.addr(host), "/lab/status"));
    assert_eq!(
        code, 2,
        "{ctx}: {host} should be stopped, but it answers: {body}"
    );
}

fn db_properties_point_at(lab: &Lab, go: &str, pg: &str, ctx: &str) {
    let text = lab.cat(go, "/etc/go/db.properties");
    let want = format!(
        "db.url=jdbc:postgresql://{}:{}/gocd",
        lab.addr(pg),
        lab.var("LAB_PG_PORT")
    );
    assert!(
        text.lines().any(|l| l.trim() == want),
        "{ctx}: {go}'s /etc/go/db.properties should hold {want}:\n{text}"
    );
}

/// The starting layout: GO1 primary on PG1 behind the VIP, PG2 streaming from PG1, GO2 a
/// running standby (stopped, a cold one, on the hardened flavour: GoCD without the add-on),
/// each GoCD server's db.properties on its own database.
pub(crate) fn served_by_pair_one(lab: &Lab, ctx: &str) {
    assert!(
        !lab.in_recovery("pg1"),
        "{ctx}: PG1 should accept writes (not in recovery)"
    );
    assert!(
        lab.in_recovery("pg2"),
        "{ctx}: PG2 should be a standby (in recovery)"
    );
    // Streaming is asynchronous after a restart of either side (the WAL receiver retries every
    // 5 s): wait for it, from both ends.
    let pg1 = lab.addr("pg1").to_string();
    let pg2 = lab.addr("pg2").to_string();
    wait_for(&format!("{ctx}: PG2 streaming from PG1"), secs(90), || {
        let rx = lab.psql(
            "pg2",
            "select coalesce((select status || '|' || sender_host from pg_stat_wal_receiver), 'none')",
        )?;
        let tx = lab.psql(
            "pg1",
            &format!(
                "select count(*) from pg_stat_replication where client_addr = '{pg2}' and state = 'streaming'"
            ),
        )?;
        if rx == format!("streaming|{pg1}") && tx == "1" {
            Ok(())
        } else {
            Err(format!(
                "PG2's pg_stat_wal_receiver says {rx:?}; PG1's pg_stat_replication lists {tx} streaming replica(s) at {pg2}"
            ))
        }
    });
    assert_eq!(
        lab.vip_holders(),
        vec!["go1"],
        "{ctx}: the VIP should be on go1 only"
    );
    healthy_through_vip(lab, ctx);
    lab_status_is(
        lab,
        lab.vip(),
        "go1",
        "primary",
        &format!("{ctx} (via the VIP)"),
    );
    if lab.hardened() {
        go_stopped(lab, "go2", ctx);
    } else {
        lab_status_is(lab, lab.addr("go2"), "go2", "standby", ctx);
    }
    db_properties_point_at(lab, "go1", "pg1", ctx);
    db_properties_point_at(lab, "go2", "pg2", ctx);
    heartbeats_flow(lab, "pg1", "go1");
}

/// After a failover or switchover: PG2 is the primary and GO2 serves on it behind the VIP;
/// PG1 (fenced) and GO1 are down, so two primaries cannot exist.
pub(crate) fn served_by_pair_two(lab: &Lab, ctx: &str) {
    assert!(
        !lab.in_recovery("pg2"),
        "{ctx}: PG2 should be promoted (not in recovery)"
    );
    if let Ok(answer) = lab.psql("pg1", "select pg_is_in_recovery()") {
        panic!(
            "{ctx}: PG1 should be stopped (fenced), but it answers: pg_is_in_recovery() = {answer}"
        );
    }
    assert_eq!(
        lab.vip_holders(),
        vec!["go2"],
        "{ctx}: the VIP should be on go2 only"
    );
    healthy_through_vip(lab, ctx);
    lab_status_is(
        lab,
        lab.vip(),
        "go2",
        "primary",
        &format!("{ctx} (via the VIP)"),
    );
    go_stopped(lab, "go1", ctx);
    db_properties_point_at(lab, "go2", "pg2", ctx);
    heartbeats_flow(lab, "pg2", "go2");
}
