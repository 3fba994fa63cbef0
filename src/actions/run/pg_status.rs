//! `pg.status`: what a PostgreSQL server says about itself, in one psql call running one
//! query that returns one JSON row, run on the step's host (so "reachable" means reachable
//! from there).
//!
//! A server that cannot be reached is not an error: the result says `reachable: false`, and
//! fencing checks (`not result.reachable or result.in_recovery`) rely on that. But a server
//! that answers and refuses us (wrong password, no such database, too many connections) is
//! reachable, and saying otherwise would let a plan believe a live primary was fenced: that
//! is an error. The difference is read from libpq's message (`FATAL:` comes from a server).
//!
//! `*_bytes` are LSNs as integers (`pg_wal_lsn_diff(lsn, '0/0')`), comparable across hosts.
//! The timeline of a primary comes from its current WAL file name, which is right at once
//! after a promotion (`pg_control_checkpoint()` lags until the next checkpoint). Seeing the
//! WAL receiver and replication rows needs superuser or `pg_read_all_stats`.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Ctx, program};
use crate::actions::PgStatusParams;
use crate::actions::error::ActionError;

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
  'replicas', case when r then '[]'::json else coalesce((
      select json_agg(json_build_object(
          'application_name', application_name,
          'client_addr', host(client_addr),
          'state', state,
          'replay_lsn', replay_lsn,
          'replay_lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint)
        order by application_name)
      from pg_stat_replication), '[]'::json) end,
  'server_version', current_setting('server_version_num')::int
) from pg_is_in_recovery() as r";

/// Server messages that mean "there is a server, but it serves nobody now".
const NOT_SERVING: &[&str] = &[
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "the database system is in recovery mode",
];

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
        "replicas": [],
        "server_version": null,
    })
}

pub(super) async fn status(ctx: &Ctx<'_>, p: PgStatusParams) -> Result<Value, ActionError> {
    let target = match &p.host {
        Some(h) => h.clone(),
        None => match ctx.env.bound.hosts.get(ctx.inv.role) {
            Some(binding) => binding.spec.address.clone(),
            None => return Err(ctx.invalid(format!("no host plays role `{}`", ctx.inv.role))),
        },
    };
    let mut argv = vec![
        program(p.bin_dir.as_deref(), "psql"),
        "-X".into(),
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
    let mut cmd = host.cmd(argv.clone());
    cmd.env.push(("PGCONNECT_TIMEOUT".into(), "5".into()));
    cmd.env.push(("PGAPPNAME".into(), "drplan".into()));
    if let Some(password) = &p.password {
        cmd.env.push(("PGPASSWORD".into(), password.clone()));
    }
    cmd.timeout = Some(Duration::from_secs(30));
    let out = host.run(cmd).await?;
    let what = format!("asking PostgreSQL at {target} about itself");
    match out.status {
        Some(0) => {
            let text = String::from_utf8_lossy(&out.stdout);
            let mut row: Value = serde_json::from_str(text.trim())
                .map_err(|e| host.fail(format!("{what}: psql printed no JSON row ({e})")))?;
            row["reachable"] = json!(true);
            Ok(row)
        }
        // psql: 2 = the connection failed (or broke).
        Some(2) => {
            let stderr = out.stderr_tail(5);
            let refused_by_server =
                stderr.contains("FATAL:") && !NOT_SERVING.iter().any(|m| stderr.contains(m));
            if refused_by_server {
                Err(ActionError::command(
                    &host.label,
                    &argv,
                    &out,
                    &format!("{what}: the server refused the connection"),
                ))
            } else {
                Ok(unreachable(stderr))
            }
        }
        _ => Err(ActionError::command(&host.label, &argv, &out, &what)),
    }
}
