//! `pg.basebackup`, `pg.rewind`, `pg.make_standby`: (re)building a cluster from another one
//! and making it follow a primary. Run as the cluster's OS user (`become: postgres`).
//!
//! No data is ever deleted here: an existing, non-empty data directory's contents are moved
//! aside (`aside.rs`) before pg_basebackup writes a new one (the one thing removed is a
//! standby's stale copy of its own replication slot, below). Passwords travel through the
//! environment, never in argv (`auth.rs`). Connection strings are quoted per libpq (see
//! `libpq.rs`). A rebuilt standby's `standby.signal` + `primary_conninfo` are written here,
//! not by the tools' `--write-recovery-conf`: pg_rewind's names the rewinding user (a
//! superuser, which pg_hba rarely lets replicate).
//!
//! Replication slots: a standby given a `slot` streams through it (`primary_slot_name`); the
//! slot is created on its upstream over a replication connection (`CREATE_REPLICATION_SLOT`,
//! which the replication user may run: no superuser needed), and a copy of that slot in the
//! standby's own `pg_replslot` — left there when it was the primary the other side streamed
//! from — is removed while the cluster is stopped: on a standby nobody uses it, and it would
//! keep WAL for ever. A standby given no slot has its `primary_slot_name` removed: a copy of
//! a former standby (pg_basebackup and pg_rewind copy `postgresql.auto.conf`) would name a
//! slot its new upstream does not have, and never stream.

use serde_json::{Value, json};

use super::auth::Login;
use super::run::{Running, pg_ctl_status};
use super::{PgBasebackupParams, PgMakeStandbyParams, PgRewindParams, WalMethod};
use super::{aside, libpq};
use crate::actions::file::read::{read, write_atomic};
use crate::actions::host::{Ctx, Host, absolute, program};
use crate::step::StepFailure;

/// Refuse to touch a data directory that a live server uses.
async fn refuse_running(host: &Host<'_>, bin: Option<&str>, data: &str) -> Result<(), StepFailure> {
    if host.exists(&format!("{data}/postmaster.pid")).await?
        && pg_ctl_status(host, bin, data).await? == Running::Yes
    {
        return Err(host.fail(format!(
            "a server is running in {data}: stop it first (pg.stop)"
        )));
    }
    Ok(())
}

/// Where a standby streams from, as whom, and through which slot.
struct Upstream<'a> {
    host: &'a str,
    port: Option<u16>,
    user: &'a str,
    login: Login,
    application_name: Option<&'a str>,
    slot: Option<&'a str>,
}

impl<'a> Upstream<'a> {
    fn conninfo(&self) -> Result<String, String> {
        let port = self.port.map(|p| p.to_string());
        libpq::conninfo(&[
            ("host", Some(self.host)),
            ("port", port.as_deref()),
            ("user", Some(self.user)),
            ("password", self.login.password()),
            ("sslmode", self.login.sslmode()),
            ("application_name", self.application_name),
        ])
    }

    /// `slot` as given in an action's parameters: empty means none; anything but a valid
    /// slot name (what PostgreSQL accepts: `[a-z0-9_]`, at most 63) is refused.
    fn with_slot(mut self, ctx: &Ctx<'_>, slot: Option<&'a str>) -> Result<Self, StepFailure> {
        self.slot = libpq::slot_name(slot).map_err(|e| ctx.invalid(e))?;
        Ok(self)
    }

    /// Make sure the upstream has the slot (a physical one, keeping WAL from now on).
    async fn ensure_slot(&self, host: &Host<'_>, bin: Option<&str>) -> Result<(), StepFailure> {
        let Some(slot) = self.slot else {
            return Ok(());
        };
        let port = self.port.map(|p| p.to_string());
        let conninfo = libpq::conninfo(&[
            ("host", Some(self.host)),
            ("port", port.as_deref()),
            ("user", Some(self.user)),
            ("dbname", Some("replication")),
            ("replication", Some("true")),
        ])
        .map_err(|e| host.fail(e))?;
        // The name is checked (`libpq::slot_name`): it needs no quoting.
        let sql = format!("CREATE_REPLICATION_SLOT {slot} PHYSICAL RESERVE_WAL");
        match super::check::ask(host, bin, None, &conninfo, &self.login, &sql).await? {
            Err(why) if !why.contains("already exists") => Err(host.fail(format!(
                "creating replication slot {slot} on {}:{} as {}: {why}",
                self.host,
                self.port.unwrap_or(5432),
                self.user
            ))),
            _ => Ok(()),
        }
    }
}

/// `standby.signal` + `primary_conninfo` (and `primary_slot_name`, set or removed) in a
/// stopped cluster, and no stale copy of its slot; Ok(changed).
async fn write_standby(
    host: &Host<'_>,
    data: &str,
    upstream: &Upstream<'_>,
    conninfo: &str,
) -> Result<bool, StepFailure> {
    let auto_conf = format!("{data}/postgresql.auto.conf");
    let old = if host.exists(&auto_conf).await? {
        String::from_utf8_lossy(&read(host, &auto_conf).await?).into_owned()
    } else {
        String::new()
    };
    let mut new = libpq::set_line(&old, "primary_conninfo", &libpq::conf_string(conninfo));
    new = match upstream.slot {
        Some(slot) => libpq::set_line(&new, "primary_slot_name", &libpq::conf_string(slot)),
        None => libpq::remove_line(&new, "primary_slot_name"),
    };
    let mut changed = false;
    if let Some(slot) = upstream.slot {
        let stale = format!("{data}/pg_replslot/{slot}");
        if host.exists(&stale).await? {
            host.ok(
                host.cmd(["rm", "-rf", "--", stale.as_str()]),
                &format!("removing this standby's own copy of slot {slot}"),
            )
            .await?;
            changed = true;
        }
    }
    let signal = format!("{data}/standby.signal");
    let has_signal = host.exists(&signal).await?;
    if new != old {
        write_atomic(host, &auto_conf, new.into_bytes(), Some("0600"), None).await?;
        changed = true;
    }
    if !has_signal {
        write_atomic(host, &signal, Vec::new(), Some("0600"), None).await?;
        changed = true;
    }
    Ok(changed)
}

pub(super) async fn basebackup(ctx: &Ctx<'_>, p: PgBasebackupParams) -> Result<Value, StepFailure> {
    absolute(ctx, "data_dir", &p.dir.data_dir)?;
    let data = p.dir.data_dir.trim_end_matches('/');
    let login = Login::of(ctx, Some(&p.user), p.password.as_deref())?;
    let standby = p.standby.unwrap_or(false);
    let upstream = Upstream {
        host: &p.source.source_host,
        port: p.source.source_port,
        user: &p.user,
        login: login.clone(),
        application_name: p.application_name.as_deref(),
        slot: None,
    }
    .with_slot(ctx, p.slot.as_deref().filter(|_| standby))?;
    let conninfo = upstream.conninfo().map_err(|e| ctx.invalid(e))?;
    let host = ctx.host().await?;
    let bin = p.dir.bin_dir.as_deref();
    refuse_running(&host, bin, data).await?;
    // Before the copy: from now on the source keeps the WAL the standby will need.
    upstream.ensure_slot(&host, bin).await?;
    let moved = aside::move_aside(&host, data).await?;
    let wal = match p.wal_method.unwrap_or_default() {
        WalMethod::Fetch => "fetch",
        WalMethod::Stream => "stream",
    };
    let mut argv = vec![
        program(bin, "pg_basebackup"),
        "-h".into(),
        p.source.source_host.clone(),
        "-U".into(),
        p.user.clone(),
        "-D".into(),
        data.into(),
        "-X".into(),
        wal.into(),
        "--checkpoint=fast".into(),
        // Never prompt for a password: there is nobody to answer.
        "--no-password".into(),
    ];
    if let Some(port) = p.source.source_port {
        argv.extend(["-p".into(), port.to_string()]);
    }
    let cmd = login.apply(host.cmd(argv));
    let from = format!(
        "copying {}:{} into {data}",
        p.source.source_host,
        p.source.source_port.unwrap_or(5432)
    );
    let kept = |e: StepFailure| match &moved {
        None => e,
        Some(old) => e.context(&format!("the old data directory is kept at {old}")),
    };
    host.ok(cmd, &from).await.map_err(kept)?;
    host.ok(
        host.cmd(["chmod", "0700", "--", data]),
        &format!("making {data} private"),
    )
    .await?;
    if standby {
        write_standby(&host, data, &upstream, &conninfo).await?;
    }
    Ok(json!({ "changed": true, "moved_aside": moved, "standby": standby, "slot": upstream.slot }))
}

pub(super) async fn rewind(ctx: &Ctx<'_>, p: PgRewindParams) -> Result<Value, StepFailure> {
    absolute(ctx, "data_dir", &p.dir.data_dir)?;
    let data = p.dir.data_dir.trim_end_matches('/');
    let port = p.source.source_port.map(|p| p.to_string());
    let conninfo = libpq::conninfo(&[
        ("host", Some(&p.source.source_host)),
        ("port", port.as_deref()),
        ("user", Some(&p.user)),
        ("dbname", Some(p.database.as_deref().unwrap_or("postgres"))),
    ])
    .map_err(|e| ctx.invalid(e))?;
    let login = Login::of(ctx, Some(&p.user), p.password.as_deref())?;
    let replication_user = p.replication_user.as_deref().unwrap_or(&p.user);
    let upstream = Upstream {
        host: &p.source.source_host,
        port: p.source.source_port,
        user: replication_user,
        login: Login::of(
            ctx,
            Some(replication_user),
            p.replication_password
                .as_deref()
                .or(if replication_user == p.user {
                    p.password.as_deref()
                } else {
                    None
                }),
        )?,
        application_name: p.application_name.as_deref(),
        slot: None,
    }
    .with_slot(ctx, p.slot.as_deref().filter(|_| p.standby == Some(true)))?;
    let primary_conninfo = upstream.conninfo().map_err(|e| ctx.invalid(e))?;
    let host = ctx.host().await?;
    let bin = p.dir.bin_dir.as_deref();
    // pg_rewind reads the source's timeline from its control file, which a promoted server
    // updates only at its next checkpoint: ask for one now. Without the right to, pg_rewind
    // may still work (the promotion's own checkpoint may be done), so this is a warning.
    let mut checkpoint = host.cmd([
        program(bin, "psql"),
        "-X".into(),
        "-w".into(),
        "-At".into(),
        "-d".into(),
        conninfo.clone(),
        "-c".into(),
        "checkpoint".into(),
    ]);
    checkpoint
        .env
        .push(("PGCONNECT_TIMEOUT".into(), "10".into()));
    let warning = match host.run(login.apply(checkpoint)).await {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "CHECKPOINT on the source failed: {}",
            out.stderr_tail(2)
        )),
        Err(e) => Some(format!("CHECKPOINT on the source failed: {}", e.message)),
    };
    let mut argv = vec![
        program(bin, "pg_rewind"),
        format!("--target-pgdata={data}"),
        format!("--source-server={conninfo}"),
    ];
    if let Some(conf) = p.config_file.as_deref().filter(|c| !c.is_empty()) {
        argv.push(format!("--config-file={conf}"));
    }
    let out = host
        .ok(
            login.apply(host.cmd(argv)),
            &format!("rewinding {data} from {}", p.source.source_host),
        )
        .await?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let needed = !said.contains("no rewind required");
    // A target that was not shut down cleanly is first recovered in single-user mode (which
    // needs its configuration: `config_file` where it is not in the data directory).
    let crash_recovered = said.contains("to complete crash recovery");
    let standby = p.standby.unwrap_or(false);
    if standby {
        upstream.ensure_slot(&host, bin).await?;
        write_standby(&host, data, &upstream, &primary_conninfo).await?;
    }
    Ok(
        json!({ "changed": needed || standby, "rewound": needed, "crash_recovered": crash_recovered, "standby": standby, "slot": upstream.slot, "warning": warning }),
    )
}

pub(super) async fn make_standby(
    ctx: &Ctx<'_>,
    p: PgMakeStandbyParams,
) -> Result<Value, StepFailure> {
    absolute(ctx, "data_dir", &p.data_dir)?;
    let data = p.data_dir.trim_end_matches('/');
    let upstream = Upstream {
        host: &p.primary_host,
        port: p.primary_port,
        user: &p.user,
        login: Login::of(ctx, Some(&p.user), p.password.as_deref())?,
        application_name: p.application_name.as_deref(),
        slot: None,
    }
    .with_slot(ctx, p.slot.as_deref())?;
    let conninfo = upstream.conninfo().map_err(|e| ctx.invalid(e))?;
    let host = ctx.host().await?;
    if !host.exists(&format!("{data}/PG_VERSION")).await? {
        return Err(host.fail(format!(
            "{data} is not a PostgreSQL data directory (no PG_VERSION)"
        )));
    }
    // pg_ctl would say the same by looking at postmaster.pid; a leftover one means the server
    // crashed, and a standby must start from a clean shutdown anyway.
    if host.exists(&format!("{data}/postmaster.pid")).await? {
        return Err(host.fail(format!(
            "{data} has a postmaster.pid: its server is running (or was not shut down cleanly); stop it first"
        )));
    }
    upstream.ensure_slot(&host, p.bin_dir.as_deref()).await?;
    let changed = write_standby(&host, data, &upstream, &conninfo).await?;
    Ok(json!({ "changed": changed, "slot": upstream.slot }))
}
