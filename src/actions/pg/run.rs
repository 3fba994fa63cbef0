//! `pg.start`, `pg.stop`, `pg.promote`: one cluster's life with `pg_ctl`, run as the cluster's
//! OS user (`become: postgres`: pg_ctl refuses to run as root).
//!
//! Each looks first (`pg_ctl status`: 0 running, 3 stopped, 4 no cluster there) and does
//! nothing when the work is done. `pg_ctl start` always gets `-l LOGFILE`: a server started
//! over SSH without one keeps the session's output open and hangs it. Promotion does not
//! sleep blindly: `pg_ctl promote` returns at once (-W) and we poll `pg_is_in_recovery()`
//! every 100 ms over the server's own unix socket (found in `postmaster.pid`).
//!
//! Start and stop go through `pg_ctl` (the default; `config_file` names a `postgresql.conf`
//! outside the data directory, as Debian keeps it) or, with `control: pg_ctlcluster`, through
//! Debian's `pg_ctlcluster VERSION NAME` run as root: it reads the cluster's own configuration,
//! log and `pg_ctl.conf`, and where systemd runs it hands the start or stop to the cluster's
//! unit, so systemd keeps supervising it. Either way `pg_ctl status -D DATA` (as the
//! cluster's user) says whether the server runs, before and after.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{PgControl, PgPromoteParams, PgStartParams, PgStopMode, PgStopParams};
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

/// How a cluster is started and stopped, from `control` and `cluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Control<'a> {
    PgCtl,
    /// `pg_ctlcluster VERSION NAME`.
    Cluster {
        version: &'a str,
        name: &'a str,
    },
}

/// The control `control` and `cluster` say, or what is wrong with them.
pub(super) fn control_of<'a>(
    control: Option<PgControl>,
    cluster: Option<&'a str>,
) -> Result<Control<'a>, String> {
    let cluster = cluster.filter(|c| !c.is_empty());
    match (control.unwrap_or_default(), cluster) {
        (PgControl::PgCtl, None) => Ok(Control::PgCtl),
        (PgControl::PgCtl, Some(c)) => Err(format!(
            "`cluster: {c}` is for `control: pg_ctlcluster`; with pg_ctl (the default) leave it out or empty"
        )),
        (PgControl::PgCtlcluster, None) => Err(
            "`control: pg_ctlcluster` needs `cluster: VERSION/NAME` (Debian's `15/main`, as `pg_lsclusters` lists it)".into(),
        ),
        (PgControl::PgCtlcluster, Some(c)) => {
            let parts = c.split_once('/').filter(|(v, n)| {
                let word = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
                };
                word(v) && v.starts_with(|ch: char| ch.is_ascii_digit()) && word(n)
            });
            match parts {
                Some((version, name)) => Ok(Control::Cluster { version, name }),
                None => Err(format!(
                    "`cluster: {c}` is not VERSION/NAME (like `15/main`)"
                )),
            }
        }
    }
}

/// `pg.start`'s parameters that do not go together.
pub(super) fn check_start(p: &PgStartParams) -> Result<(), String> {
    let given = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    match control_of(p.control, p.cluster.as_deref())? {
        Control::PgCtl if !given(&p.log_file) => Err(
            "with pg_ctl, `log_file` is needed (a server started over SSH without one hangs the session)".into(),
        ),
        Control::Cluster { .. } if !p.options.is_empty() => Err(
            "`options` are for pg_ctl; with pg_ctlcluster, put server settings in the cluster's postgresql.conf".into(),
        ),
        _ => Ok(()),
    }
}

pub(super) async fn start(ctx: &Ctx<'_>, p: PgStartParams) -> Result<Value, StepFailure> {
    let control = control_of(p.control, p.cluster.as_deref()).map_err(|e| ctx.invalid(e))?;
    let host = ctx.host().await?;
    let bin = p.dir.bin_dir.as_deref();
    if pg_ctl_status(&host, bin, &p.dir.data_dir).await? == Running::Yes {
        return Ok(json!({ "changed": false, "running": true }));
    }
    let wait = p
        .wait
        .map_or(DEFAULT_WAIT, crate::plan::duration::Duration::std);
    let log = p.log_file.as_deref().filter(|l| !l.is_empty());
    let shown_log = log
        .map(|l| format!(" (server log: {l})"))
        .unwrap_or_default();
    let Control::Cluster { version, name } = control else {
        let mut argv = vec![
            program(bin, "pg_ctl"),
            "start".into(),
            "-D".into(),
            p.dir.data_dir.clone(),
            "-l".into(),
            log.unwrap_or_default().to_owned(),
            "-w".into(),
            "-t".into(),
            secs(wait),
        ];
        let mut options = p.options.clone();
        if let Some(conf) = p.config_file.as_deref().filter(|c| !c.is_empty()) {
            options.extend(["-c".to_owned(), format!("config_file={conf}")]);
        }
        if !options.is_empty() {
            argv.extend(["-o".into(), server_options(&options)]);
        }
        let mut cmd = host.cmd(argv);
        // pg_ctl's own wait plus room to report: its exit says whether the server came up.
        cmd.timeout = Some(wait + Duration::from_secs(10));
        let what = format!("starting PostgreSQL in {}{shown_log}", p.dir.data_dir);
        host.ok(cmd, &what).await?;
        return Ok(json!({ "changed": true, "running": true }));
    };
    let mut cmd = host.root_cmd(["pg_ctlcluster", version, name, "start"]);
    cmd.timeout = Some(wait + Duration::from_secs(10));
    let what =
        format!("starting PostgreSQL cluster {version}/{name} with pg_ctlcluster{shown_log}");
    cluster_command(&host, cmd, &what).await?;
    if pg_ctl_status(&host, bin, &p.dir.data_dir).await? != Running::Yes {
        return Err(host.fail(format!(
            "{what}: pg_ctlcluster succeeded, but no server runs in {} (is that the cluster's data_directory?)",
            p.dir.data_dir
        )));
    }
    Ok(json!({ "changed": true, "running": true }))
}

/// Run a `pg_ctlcluster` command: 0, or 2 (already running for a start, not running for a
/// stop), is what was asked for.
async fn cluster_command(
    host: &Host<'_>,
    cmd: crate::transport::Command,
    what: &str,
) -> Result<(), StepFailure> {
    let argv = cmd.argv.clone();
    let out = host.run(cmd).await?;
    match out.status {
        Some(0 | 2) => Ok(()),
        _ => Err(command_failure(&host.label, &argv, &out, what)),
    }
}

pub(super) async fn stop(ctx: &Ctx<'_>, p: PgStopParams) -> Result<Value, StepFailure> {
    let control = control_of(p.control, p.cluster.as_deref()).map_err(|e| ctx.invalid(e))?;
    let host = ctx.host().await?;
    let bin = p.dir.bin_dir.as_deref();
    if pg_ctl_status(&host, bin, &p.dir.data_dir).await? == Running::No {
        let last = last_lsn(&host, bin, &p.dir.data_dir).await;
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
    let wait = secs(wait.min(Duration::from_secs(3600)));
    match control {
        Control::PgCtl => {
            let argv = vec![
                program(bin, "pg_ctl"),
                "stop".into(),
                "-D".into(),
                p.dir.data_dir.clone(),
                "-m".into(),
                mode.into(),
                "-w".into(),
                "-t".into(),
                wait,
            ];
            host.ok(
                host.cmd(argv),
                &format!("stopping PostgreSQL in {}", p.dir.data_dir),
            )
            .await?;
        }
        Control::Cluster { version, name } => {
            let mut cmd = host.root_cmd(["pg_ctlcluster", "--mode", mode, version, name, "stop"]);
            // pg_ctlcluster's pg_ctl waits this long (its -t).
            cmd.env.push(("PGCTLTIMEOUT".into(), wait));
            let what = format!("stopping PostgreSQL cluster {version}/{name} with pg_ctlcluster");
            cluster_command(&host, cmd, &what).await?;
            if pg_ctl_status(&host, bin, &p.dir.data_dir).await? != Running::No {
                return Err(host.fail(format!(
                    "{what}: pg_ctlcluster succeeded, but a server still runs in {}",
                    p.dir.data_dir
                )));
            }
        }
    }
    let last = last_lsn(&host, bin, &p.dir.data_dir).await;
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
    let bin = p.dir.bin_dir.as_deref();
    let data = p.dir.data_dir.as_str();
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
    let wait = p
        .wait
        .map_or(DEFAULT_WAIT, crate::plan::duration::Duration::std);
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
    use super::super::PgDataDir;
    use super::*;

    fn start(control: Option<PgControl>, cluster: &str) -> PgStartParams {
        PgStartParams {
            dir: PgDataDir {
                data_dir: "/d".into(),
                bin_dir: None,
            },
            log_file: Some("/l".into()),
            wait: None,
            options: Vec::new(),
            control,
            cluster: Some(cluster.into()),
            config_file: None,
        }
    }

    #[test]
    fn the_control_method_and_the_cluster_go_together() {
        let cluster = Some(PgControl::PgCtlcluster);
        assert_eq!(control_of(None, None), Ok(Control::PgCtl));
        assert_eq!(
            control_of(Some(PgControl::PgCtl), Some("")),
            Ok(Control::PgCtl)
        );
        assert_eq!(
            control_of(cluster, Some("15/main")),
            Ok(Control::Cluster {
                version: "15",
                name: "main"
            })
        );
        for (control, given, says) in [
            (None, Some("15/main"), "is for `control: pg_ctlcluster`"),
            (cluster, None, "needs `cluster: VERSION/NAME`"),
            (cluster, Some(""), "needs `cluster: VERSION/NAME`"),
            (cluster, Some("main"), "is not VERSION/NAME"),
            (cluster, Some("15/main/x"), "is not VERSION/NAME"),
            (cluster, Some("main/15"), "is not VERSION/NAME"),
            (cluster, Some("15/ma in"), "is not VERSION/NAME"),
        ] {
            let err = control_of(control, given).unwrap_err();
            assert!(err.contains(says), "{given:?}: {err}");
        }
    }

    #[test]
    fn start_refuses_what_its_control_cannot_use() {
        assert_eq!(check_start(&start(None, "")), Ok(()));
        let mut no_log = start(None, "");
        no_log.log_file = Some(String::new());
        assert!(
            check_start(&no_log)
                .unwrap_err()
                .contains("`log_file` is needed")
        );
        let mut debian = start(Some(PgControl::PgCtlcluster), "15/main");
        debian.log_file = None;
        assert_eq!(check_start(&debian), Ok(()));
        // pg_ctlcluster reads the cluster's own configuration: config_file is not passed.
        debian.config_file = Some("/etc/postgresql/15/main/postgresql.conf".into());
        assert_eq!(check_start(&debian), Ok(()));
        debian.options = vec!["-c".into(), "port=1".into()];
        assert!(
            check_start(&debian)
                .unwrap_err()
                .contains("`options` are for pg_ctl")
        );
    }

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
