//! `pg.status`: what a PostgreSQL server says about itself, in one psql call running one
//! query that returns one JSON row, run on the step's host (so "reachable" means reachable
//! from there).
//!
//! A server that cannot be reached is not an error: the result says `reachable: false`, and
//! fencing checks (`not result.reachable or result.in_recovery`) rely on that. So
//! "unreachable" must mean *nothing answered*: every connection attempt libpq reports ended
//! in "connection refused", "no route to host", "network is unreachable", a timeout, or a
//! unix socket that does not exist. Anything else — a server that asks for a password we do
//! not have (`fe_sendauth: no password supplied`, which carries no `FATAL:`), refuses us, is
//! starting up or shutting down, a name that does not resolve, a TLS problem — may well be a
//! live primary, and saying "unreachable" would let a plan believe it was fenced: that is an
//! error, and a check that sees it fails closed.
//!
//! `replay_lag_s` is how far behind the standby's replay is in time: 0 when it has replayed
//! all it received, else the age of the last transaction it replayed (the usual measure; on
//! an idle primary it grows although nothing is missing, so the byte lag is the one to
//! judge by).
//!
//! `slots` are the server's replication slots: `retained_bytes` is the WAL each holds back
//! from removal (the current position, or a standby's replay position, less its
//! `restart_lsn`; null when it reserves none), `wal_status` PostgreSQL's own word (13+:
//! `reserved`, `extended`, `unreserved` — its WAL goes at the next checkpoint — or `lost`).
//! Two summaries serve readiness checks: `inactive_slot_retained_bytes`, the most WAL held
//! by a slot nothing streams through (such a slot keeps WAL until the disk is full), and
//! `slots_losing_wal`, the slots that can no longer feed their standby.
//!
//! `*_bytes` are LSNs as integers (`pg_wal_lsn_diff(lsn, '0/0')`), comparable across hosts.
//! The timeline of a primary comes from its current WAL file name, which is right at once
//! after a promotion (`pg_control_checkpoint()` lags until the next checkpoint). Seeing the
//! WAL receiver and replication rows needs superuser or `pg_read_all_stats`.

use std::time::Duration;

use serde_json::{Value, json};

use super::PgStatusParams;
use super::auth::Login;
use crate::actions::failure::command_failure;
use crate::actions::host::{Ctx, program};
use crate::step::StepFailure;

const STATUS_SQL: &str = "\
select json_build_object(
  'in_recovery', r,
  'streaming', coalesce((select status = 'streaming' from pg_stat_wal_receiver limit 1), false),
  'timeline', case when r
      then coalesce((select received_tli from pg_stat_wal_receiver limit 1),
                    (select timeline_id from pg_control_checkpoint()))
      else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end,
  'current_lsn', case when not r then pg_current_wal_lsn() end,
  'current_lsn_bytes', case when not r then pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint end,
  'receive_lsn', case when r then pg_last_wal_receive_lsn() end,
  'receive_lsn_bytes', case when r then pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint end,
  'replay_lsn', case when r then pg_last_wal_replay_lsn() end,
  'replay_lsn_bytes', case when r then pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint end,
  'replay_lag_bytes', case when r
      then coalesce(greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::bigint
      else 0 end,
  'last_replay_at', case when r then pg_last_xact_replay_timestamp() end,
  'replay_lag_s', case when r then
      case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
      else round(extract(epoch from now() - pg_last_xact_replay_timestamp())::numeric, 3) end end,
  'replicas', case when r then '[]'::json else coalesce((
      select json_agg(json_build_object(
          'application_name', application_name,
          'client_addr', host(client_addr),
          'state', state,
          'replay_lsn', replay_lsn,
          'replay_lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint)
        order by application_name)
      from pg_stat_replication), '[]'::json) end,
  'slots', coalesce((
      select json_agg(json_build_object(
          'name', slot_name,
          'type', slot_type,
          'active', active,
          'wal_status', to_jsonb(s) ->> 'wal_status',
          'retained_bytes', pg_wal_lsn_diff(
              case when r then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end,
              restart_lsn)::bigint)
        order by slot_name)
      from pg_replication_slots s), '[]'::json),
  'server_version', current_setting('server_version_num')::int
) from pg_is_in_recovery() as r";

/// The reasons libpq gives for a connection attempt that nobody answered (`LC_ALL=C`).
const NOTHING_ANSWERED: &[&str] = &[
    "Connection refused",
    "No route to host",
    "Network is unreachable",
    "Host is unreachable",
    "Connection timed out",
    "timeout expired",
];

/// Did nothing answer? libpq writes one `connection to server … failed: REASON` line per
/// address it tried (and hint lines below them); every attempt must have found nobody. A
/// unix socket that is not there (`on socket "…" failed: No such file or directory`) is a
/// server that does not listen. Any other message, and any `FATAL:` (the server's own
/// words), means something answered or we cannot tell: not "unreachable".
pub(super) fn nothing_answered(stderr: &str) -> bool {
    if stderr.contains("FATAL:") {
        return false;
    }
    let mut attempts = 0;
    for line in stderr.lines() {
        let Some((head, reason)) = line.split_once(" failed: ") else {
            continue;
        };
        if !head.contains("connection to server") {
            return false;
        }
        attempts += 1;
        let reason = reason.trim();
        let nobody = NOTHING_ANSWERED.iter().any(|m| reason.starts_with(m))
            || (head.contains(" on socket ") && reason.starts_with("No such file or directory"));
        if !nobody {
            return false;
        }
    }
    attempts > 0
}

/// The result of a server that could not be reached: every field present, so expressions
/// can look at them (short-circuited behind `result.reachable`).
fn unreachable(error: String) -> Value {
    json!({
        "reachable": false,
        "error": error,
        "in_recovery": null,
        "streaming": false,
        "timeline": null,
        "current_lsn": null,
        "current_lsn_bytes": null,
        "receive_lsn": null,
        "receive_lsn_bytes": null,
        "replay_lsn": null,
        "replay_lsn_bytes": null,
        "replay_lag_bytes": null,
        "last_replay_at": null,
        "replay_lag_s": null,
        "replicas": [],
        "replica": null,
        "replica_lag_bytes": null,
        "slots": [],
        "inactive_slot_retained_bytes": null,
        "slots_losing_wal": [],
        "server_version": null,
    })
}

/// `inactive_slot_retained_bytes` and `slots_losing_wal`, from `slots`.
fn summarise_slots(row: &mut Value) {
    let slots = row["slots"].as_array().map_or(&[][..], Vec::as_slice);
    let inactive = slots
        .iter()
        .filter(|s| s["active"] == false)
        .filter_map(|s| s["retained_bytes"].as_i64())
        .max()
        .unwrap_or(0);
    let losing: Vec<Value> = slots
        .iter()
        .filter(|s| s["wal_status"] == "unreserved" || s["wal_status"] == "lost")
        .map(|s| s["name"].clone())
        .collect();
    row["inactive_slot_retained_bytes"] = json!(inactive);
    row["slots_losing_wal"] = Value::Array(losing);
}

/// On a primary, the row of `pg_stat_replication` for the standby named `replica` (its
/// address as the primary sees it, or its `application_name`): what a failover to it would
/// lose now is `replica_lag_bytes`, the primary's current LSN minus the standby's replay LSN.
fn pick_replica(row: &mut Value, replica: Option<&str>) {
    let found = replica.and_then(|name| {
        row["replicas"].as_array().and_then(|rows| {
            rows.iter()
                .find(|r| r["client_addr"] == name)
                .or_else(|| rows.iter().find(|r| r["application_name"] == name))
                .cloned()
        })
    });
    row["replica_lag_bytes"] = found
        .as_ref()
        .map_or(Value::Null, |r| r["replay_lag_bytes"].clone());
    row["replica"] = found.unwrap_or(Value::Null);
}

pub(super) async fn status(ctx: &Ctx<'_>, p: PgStatusParams) -> Result<Value, StepFailure> {
    let target = match &p.host {
        Some(h) => h.clone(),
        None => match ctx.env.hosts.site(&ctx.call.role) {
            Some(host) => host.address.clone(),
            None => return Err(ctx.invalid(format!("no host plays role `{}`", ctx.call.role))),
        },
    };
    let mut argv = vec![
        program(p.bin_dir.as_deref(), "psql"),
        "-X".into(),
        // Never prompt for a password (a run on a terminal would wait for one): a server
        // that wants one we were not given is an error, below.
        "-w".into(),
        "-At".into(),
        "-v".into(),
        "ON_ERROR_STOP=1".into(),
        "-h".into(),
        target.clone(),
    ];
    if let Some(port) = p.port {
        argv.extend(["-p".into(), port.to_string()]);
    }
    if let Some(user) = &p.user {
        argv.extend(["-U".into(), user.clone()]);
    }
    let database = p.database.as_deref().unwrap_or("postgres");
    argv.extend(["-d".into(), database.into(), "-c".into(), STATUS_SQL.into()]);
    let host = ctx.host().await?;
    let login = Login::of(ctx, p.user.as_deref(), p.password.as_deref())?;
    let mut cmd = host.cmd(argv.clone());
    cmd.env.push(("PGCONNECT_TIMEOUT".into(), "5".into()));
    cmd.env.push(("PGAPPNAME".into(), "drplan".into()));
    let mut cmd = login.apply(cmd);
    cmd.timeout = Some(Duration::from_secs(30));
    let out = host.run(cmd).await?;
    let what = format!("asking PostgreSQL at {target} about itself");
    match out.status {
        Some(0) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let mut row: Value = serde_json::from_str(text.trim())
                .map_err(|e| host.fail(format!("{what}: psql printed no JSON row ({e})")))?;
            row["reachable"] = json!(true);
            pick_replica(&mut row, p.replica.as_deref());
            summarise_slots(&mut row);
            Ok(row)
        }
        // psql: 2 = the connection failed (or broke).
        Some(2) if nothing_answered(&out.stderr_tail(20)) => Ok(unreachable(out.stderr_tail(5))),
        Some(2) => Err(command_failure(
            &host.label,
            &argv,
            &out,
            &format!(
                "{what}: something answered at {target} but did not let us in (a server that refuses us or asks for a password may be a live primary: this is not \"unreachable\")"
            ),
        )),
        _ => Err(command_failure(&host.label, &argv, &out, &what)),
    }
}

#[cfg(test)]
mod tests {
    use super::{nothing_answered, summarise_slots};
    use serde_json::json;

    #[test]
    fn slots_are_summarised_for_readiness() {
        let mut row = json!({ "slots": [
            { "name": "a", "active": true, "wal_status": "reserved", "retained_bytes": 900 },
            { "name": "b", "active": false, "wal_status": "extended", "retained_bytes": 300 },
            { "name": "c", "active": false, "wal_status": "unreserved", "retained_bytes": 500 },
            { "name": "d", "active": false, "wal_status": "lost", "retained_bytes": null },
        ] });
        summarise_slots(&mut row);
        assert_eq!(row["inactive_slot_retained_bytes"], 500);
        assert_eq!(row["slots_losing_wal"], json!(["c", "d"]));
        let mut none = json!({ "slots": [] });
        summarise_slots(&mut none);
        assert_eq!(none["inactive_slot_retained_bytes"], 0);
        assert_eq!(none["slots_losing_wal"], json!([]));
    }

    #[test]
    fn only_nobody_answering_is_unreachable() {
        for nobody in [
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: timeout expired",
            "psql: error: connection to server at \"10.0.0.9\", port 5432 failed: No route to host\n\tIs the server running on that host and accepting TCP/IP connections?",
            "psql: error: connection to server at \"10.0.0.9\", port 5432 failed: Network is unreachable",
            "psql: error: connection to server on socket \"/run/pg/.s.PGSQL.5432\" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?",
            // A name with two addresses, neither answering.
            "psql: error: connection to server at \"db\" (10.0.0.1), port 5432 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\nconnection to server at \"db\" (10.0.0.2), port 5432 failed: timeout expired",
        ] {
            assert!(nothing_answered(nobody), "{nobody}");
        }
        for somebody in [
            // No FATAL: libpq's own words when the server asks for a password.
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: fe_sendauth: no password supplied",
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: FATAL:  password authentication failed for user \"postgres\"",
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: FATAL:  the database system is starting up",
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: FATAL:  the database system is shutting down",
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: server closed the connection unexpectedly",
            "psql: error: could not translate host name \"pg1.example\" to address: Name or service not known",
            // One address refused, the other answered: somebody is there.
            "psql: error: connection to server at \"db\" (10.0.0.1), port 5432 failed: Connection refused\nconnection to server at \"db\" (10.0.0.2), port 5432 failed: fe_sendauth: no password supplied",
            "psql: error: connection to server at \"10.231.0.12\", port 5432 failed: could not open certificate file \"/root/.postgresql/postgresql.crt\": No such file or directory",
            "",
        ] {
            assert!(!nothing_answered(somebody), "{somebody}");
        }
    }
}
