//! `pg.start`, `pg.stop`, `pg.promote`: one cluster's life with `pg_ctl`, run as the cluster's
//! OS user (`become: postgres`: pg_ctl refuses to run as root).
//!
//! Each looks first (`pg_ctl status`: 0 running, 3 stopped, 4 no cluster there) and does
//! nothing when the work is done. `pg_ctl start` always gets `-l LOGFILE`: a server started
//! over SSH without one keeps the session's output open and hangs it. Promotion does not
//! sleep blindly: `pg_ctl promote` returns at once (-W) and we poll `pg_is_in_recovery()`
//! every 100 ms over the server's own unix socket (found in `postmaster.pid`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{PgPromoteParams, PgStartParams, PgStopMode, PgStopParams};
use crate::actions::failure::command_failure;
use crate::actions::host::{Ctx, Host, program};
use crate::step::{FailureKind, StepFailure};

const DEFAULT_WAIT: Duration = Duration::from_secs(60);
const PROMOTE_POLL: Duration = Duration::from_millis(100);
/// Longest a single psql poll may take; a server busy finishing recovery answers slowly.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// What `pg_ctl status` says about a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Running {
    Yes,
    No,
}

pub(super) async fn pg_ctl_status(
    host: &Host<'_>,
    bin_dir: Option<&str>,
    data_dir: &str,
) -> Result<Running, StepFailure> {
    let argv = vec![
        program(bin_dir, "pg_ctl"),
        "status".into(),
        "-D".into(),
        data_dir.into(),
    ];
    let out = host.run(host.cmd(argv.clone())).await?;
    match out.status {
        Some(0) => Ok(Running::Yes),
        Some(3) => Ok(Running::No),
        Some(4) => Err(command_failure(
            &host.label,
            &argv,
            &out,
            &format!(
                "{data_dir} is not a PostgreSQL data directory (or cannot be read as this user)"
            ),
        )),
        _ => Err(command_failure(
            &host.label,
            &argv,
            &out,
            "pg_ctl status failed",
        )),
    }
}

pub(super) fn secs(d: Duration) -> String {
    d.as_secs().max(1).to_string()
}

/// pg_ctl hands `-o` to `/bin/sh` (it runs `exec postgres … OPTIONS`), so each option is
/// quoted for sh here, exactly once.
fn server_options(options: &[String]) -> String {
    options
        .iter()
        .map(|o| format!("'{}'", o.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) async fn start(ctx: &Ctx<'_>, p: PgStartParams) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let bin = p.bin_dir.as_deref();
    if pg_ctl_status(&host, bin, &p.data_dir).await? == Running::Yes {
        return Ok(json!({ "changed": false, "running": true }));
    }
    let wait = p.wait.map_or(DEFAULT_WAIT, |w| w.std());
    let mut argv = vec![
        program(bin, "pg_ctl"),
        "start".into(),
        "-D".into(),
        p.data_dir.clone(),
        "-l".into(),
        p.log_file.clone(),
        "-w".into(),
        "-t".into(),
        secs(wait),
    ];
    if !p.options.is_empty() {
        argv.extend(["-o".into(), server_options(&p.options)]);
    }
    let mut cmd = host.cmd(argv);
    // pg_ctl's own wait plus room to report: its exit says whether the server came up.
    cmd.timeout = Some(wait + Duration::from_secs(10));
    host.ok(
        cmd,
        &format!(
            "starting PostgreSQL in {} (server log: {})",
            p.data_dir, p.log_file
        ),
    )
    .await?;
    Ok(json!({ "changed": true, "running": true }))
}

pub(super) async fn stop(ctx: &Ctx<'_>, p: PgStopParams) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let bin = p.bin_dir.as_deref();
    if pg_ctl_status(&host, bin, &p.data_dir).await? == Running::No {
        let last = last_lsn(&host, bin, &p.data_dir).await;
        return Ok(
            json!({ "changed": false, "running": false, "last_lsn": last.0, "last_lsn_bytes": last.1 }),
        );
    }
    let mode = match p.mode.unwrap_or_default() {
        PgStopMode::Smart => "smart",
        PgStopMode::Fast => "fast",
        PgStopMode::Immediate => "immediate",
    };
    // pg_ctl waits at most -t seconds; leave a little of the step's time to report.
    let wait = ctx
        .remaining("stopping PostgreSQL")?
        .saturating_sub(Duration::from_secs(2));
    let argv = vec![
        program(bin, "pg_ctl"),
        "stop".into(),
        "-D".into(),
        p.data_dir.clone(),
        "-m".into(),
        mode.into(),
        "-w".into(),
        "-t".into(),
        secs(wait.min(Duration::from_secs(3600))),
    ];
    host.ok(
        host.cmd(argv),
        &format!("stopping PostgreSQL in {}", p.data_dir),
    )
    .await?;
    let last = last_lsn(&host, bin, &p.data_dir).await;
    Ok(
        json!({ "changed": true, "running": false, "mode": mode, "last_lsn": last.0, "last_lsn_bytes": last.1 }),
    )
}

/// What the control file (`pg_controldata`) says: the cluster state and the latest
/// checkpoint's location.
async fn control_file(
    host: &Host<'_>,
    bin: Option<&str>,
    data_dir: &str,
) -> Result<(String, Option<String>), StepFailure> {
    let argv = vec![program(bin, "pg_controldata"), "-D".into(), data_dir.into()];
    let out = host
        .ok(
            host.cmd(argv),
            &format!("reading the control file of {data_dir}"),
        )
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|s| s.trim().to_owned())
    };
    let state = field("Database cluster state:").ok_or_else(|| {
        host.fail(format!(
            "pg_controldata printed no cluster state for {data_dir}"
        ))
    })?;
    Ok((state, field("Latest checkpoint location:")))
}

/// The cluster state recorded in the control file.
async fn cluster_state(
    host: &Host<'_>,
    bin: Option<&str>,
    data_dir: &str,
) -> Result<String, StepFailure> {
    Ok(control_file(host, bin, data_dir).await?.0)
}

/// The last WAL position of a cluster that was shut down cleanly: its shutdown checkpoint,
/// the last record it wrote (and, for a primary, the evidence of what a standby promoted
/// after it must have replayed to lose nothing). None after a crash or an immediate stop,
/// whose control file does not know where the WAL ends. Evidence, not a condition: a stop
/// that worked never fails because the control file could not be read afterwards.
async fn last_lsn(
    host: &Host<'_>,
    bin: Option<&str>,
    data_dir: &str,
) -> (Option<String>, Option<u64>) {
    let Ok((state, checkpoint)) = control_file(host, bin, data_dir).await else {
        return (None, None);
    };
    let last = checkpoint.filter(|_| state == "shut down");
    let bytes = last.as_deref().and_then(super::check::lsn_bytes);
    (last, bytes)
}

/// Where to reach the running server from its own host: `postmaster.pid` lines 4–6 hold
/// its port, first socket directory and first listen address.
pub(super) async fn local_endpoint(
    host: &Host<'_>,
    data_dir: &str,
) -> Result<(String, String), StepFailure> {
    let path = format!("{}/postmaster.pid", data_dir.trim_end_matches('/'));
    let out = host
        .ok(
            host.cmd(["cat", "--", path.as_str()]),
            "reading postmaster.pid (is the server running?)",
        )
        .await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let port = lines.get(3).map(|s| s.trim()).unwrap_or_default();
    let socket_dir = lines.get(4).map(|s| s.trim()).unwrap_or_default();
    let listen = lines.get(5).map(|s| s.trim()).unwrap_or_default();
    let target = match (socket_dir, listen) {
        (dir, _) if !dir.is_empty() => dir,
        ("", "*") => "127.0.0.1",
        ("", addr) if !addr.is_empty() => addr,
        _ => {
            return Err(host.fail(format!(
                "{path} names neither a socket directory nor an address"
            )));
        }
    };
    if port.parse::<u16>().is_err() {
        return Err(host.fail(format!("{path} holds no port on its 4th line")));
    }
    Ok((target.to_owned(), port.to_owned()))
}

/// `select …` through the server's socket as the step's user (connecting as the role named
/// like that OS user); Ok(Err(why)) when it does not answer.
async fn local_query(
    host: &Host<'_>,
    bin: Option<&str>,
    endpoint: &(String, String),
    sql: &str,
) -> Result<Result<String, String>, StepFailure> {
    let argv = vec![
        program(bin, "psql"),
        "-X".into(),
        "-At".into(),
        "-h".into(),
        endpoint.0.clone(),
        "-p".into(),
        endpoint.1.clone(),
        "-d".into(),
        "postgres".into(),
        "-c".into(),
        sql.into(),
    ];
    let mut cmd = host.cmd(argv.clone());
    cmd.env.push(("PGCONNECT_TIMEOUT".into(), "5".into()));
    cmd.timeout = Some(POLL_TIMEOUT);
    let out = match host.run(cmd).await {
        Ok(out) => out,
        Err(e) if e.kind == FailureKind::Timeout => return Ok(Err(e.message)),
        Err(e) => return Err(e),
    };
    match out.status {
        Some(0) => Ok(Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
        // 2: no connection (still starting, or not accepting connections in recovery).
        Some(2) => Ok(Err(out.stderr_tail(2))),
        _ => Err(command_failure(
            &host.label,
            &argv,
            &out,
            "asking PostgreSQL about itself",
        )),
    }
}

const TIMELINE_SQL: &str = "select case when pg_is_in_recovery() then 'recovery' \
     else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text end";

/// After the promotion: the new timeline, and where replay ended (the last WAL record the
/// standby applied before it became a primary: PostgreSQL keeps `pg_last_wal_replay_lsn()`
/// at that position once recovery is over).
const PROMOTED_SQL: &str = "select case when pg_is_in_recovery() then 'recovery' \
     else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text \
       || ' ' || coalesce(pg_last_wal_replay_lsn()::text, '') end";

pub(super) async fn promote(ctx: &Ctx<'_>, p: PgPromoteParams) -> Result<Value, StepFailure> {
    let host = ctx.host().await?;
    let bin = p.bin_dir.as_deref();
    let data = p.data_dir.as_str();
    let state = cluster_state(&host, bin, data).await?;
    match state.as_str() {
        "in production" => {
            // The timeline is a courtesy here: a primary that crashed has no postmaster.pid.
            let timeline = match local_endpoint(&host, data).await {
                Ok(endpoint) => local_query(&host, bin, &endpoint, TIMELINE_SQL)
                    .await?
                    .ok()
                    .and_then(|t| t.parse::<u32>().ok()),
                Err(_) => None,
            };
            return Ok(json!({ "promoted": false, "changed": false, "timeline": timeline }));
        }
        "in archive recovery" => {}
        "shut down" if !host.exists(&format!("{data}/standby.signal")).await? => {
            // A stopped primary: there is nothing to promote.
            return Ok(
                json!({ "promoted": false, "changed": false, "timeline": null, "running": false }),
            );
        }
        other => {
            return Err(host.fail(format!(
                "cannot promote {data}: its cluster state is \"{other}\" (a standby must be running to be promoted; start it first)"
            )));
        }
    }
    let wait = p.wait.map_or(DEFAULT_WAIT, |w| w.std());
    let started = Instant::now();
    let argv = vec![
        program(bin, "pg_ctl"),
        "promote".into(),
        "-D".into(),
        data.into(),
        "-W".into(),
    ];
    host.ok(host.cmd(argv), &format!("promoting {data}"))
        .await?;
    let endpoint = local_endpoint(&host, data).await?;
    loop {
        let polled = Instant::now();
        let last = match local_query(&host, bin, &endpoint, PROMOTED_SQL).await? {
            Ok(answer) if answer != "recovery" => {
                let (timeline, replayed) = answer.split_once(' ').unwrap_or((&answer, ""));
                let timeline = timeline.parse::<u32>().ok();
                let replayed = Some(replayed).filter(|r| !r.is_empty());
                let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                return Ok(json!({
                    "promoted": true,
                    "changed": true,
                    "timeline": timeline,
                    "took_ms": took,
                    "replayed_lsn": replayed,
                    "replayed_lsn_bytes": replayed.and_then(super::check::lsn_bytes),
                }));
            }
            Ok(_) => "still in recovery".to_owned(),
            Err(why) => why,
        };
        if started.elapsed() >= wait {
            return Err(StepFailure::new(
                FailureKind::Timeout,
                &host.label,
                format!(
                    "{data} was told to promote but did not leave recovery within {}s (last: {last}; see its server log)",
                    wait.as_secs()
                ),
            ));
        }
        ctx.remaining("the promotion finished")?;
        tokio::time::sleep(PROMOTE_POLL.saturating_sub(polled.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_options_are_quoted_for_pg_ctls_shell() {
        let opts = [
            "-c".to_owned(),
            "port=5433".to_owned(),
            "-c".to_owned(),
            "cluster_name=it's $(x)".to_owned(),
        ];
        assert_eq!(
            server_options(&opts),
            r"'-c' 'port=5433' '-c' 'cluster_name=it'\''s $(x)'"
        );
    }
}
