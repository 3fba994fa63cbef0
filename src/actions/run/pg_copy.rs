//! `pg.basebackup`, `pg.rewind`, `pg.make_standby`: (re)building a cluster from another one
//! and making it follow a primary. Run as the cluster's OS user (`become: postgres`).
//!
//! Nothing is ever deleted: an existing, non-empty data directory is moved aside to
//! `DATA.drplan-old-<UTC time>` before pg_basebackup writes a new one (the operator removes
//! it once the new one is proven). Passwords travel in `PGPASSWORD`, never in argv (where
//! `ps` shows them). Connection strings are quoted per libpq (see `libpq.rs`).

use serde_json::{Value, json};

use super::file_read::{read, write_atomic};
use super::pg::{Running, pg_ctl_status};
use super::{Ctx, Host, libpq, program};
use crate::actions::error::ActionError;
use crate::actions::{PgBasebackupParams, PgMakeStandbyParams, PgRewindParams, WalMethod};
use crate::journal::clock::UtcTime;

/// Moves a non-empty data directory aside; prints where to.
const MOVE_ASIDE_SCRIPT: &str = r#"set -eu
d=$1 old="$1.drplan-old-$2"
if [ -d "$d" ] && [ -n "$(ls -A -- "$d")" ]; then
    mv -T -- "$d" "$old"
    printf '%s' "$old"
fi"#;

/// Refuse to touch a data directory that a live server uses.
async fn refuse_running(host: &Host<'_>, bin: Option<&str>, data: &str) -> Result<(), ActionError> {
    if host.exists(&format!("{data}/postmaster.pid")).await?
        && pg_ctl_status(host, bin, data).await? == Running::Yes
    {
        return Err(host.fail(format!(
            "a server is running in {data}: stop it first (pg.stop)"
        )));
    }
    Ok(())
}

fn stamp() -> String {
    let t = UtcTime::from_system(std::time::SystemTime::now());
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

pub(super) async fn basebackup(ctx: &Ctx<'_>, p: PgBasebackupParams) -> Result<Value, ActionError> {
    super::file::absolute(ctx, "data_dir", &p.data_dir)?;
    let data = p.data_dir.trim_end_matches('/');
    let host = ctx.host().await?;
    let bin = p.bin_dir.as_deref();
    refuse_running(&host, bin, data).await?;
    let moved = host
        .ok(
            host.cmd(["sh", "-c", MOVE_ASIDE_SCRIPT, "sh", data, &stamp()]),
            &format!("moving the old {data} aside"),
        )
        .await?;
    let moved = String::from_utf8_lossy(&moved.stdout).into_owned();
    let wal = match p.wal_method.unwrap_or_default() {
        WalMethod::Fetch => "fetch",
        WalMethod::Stream => "stream",
    };
    let mut argv = vec![
        program(bin, "pg_basebackup"),
        "-h".into(),
        p.source_host.clone(),
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
    if let Some(port) = p.source_port {
        argv.extend(["-p".into(), port.to_string()]);
    }
    if p.standby.unwrap_or(false) {
        argv.push("--write-recovery-conf".into());
    }
    let mut cmd = host.cmd(argv);
    if let Some(password) = &p.password {
        cmd.env.push(("PGPASSWORD".into(), password.clone()));
    }
    let from = format!(
        "copying {}:{} into {data}",
        p.source_host,
        p.source_port.unwrap_or(5432)
    );
    host.ok(cmd, &from)
        .await
        .map_err(|e| match moved.as_str() {
            "" => e,
            old => e.context(&format!("the old data directory is kept at {old}")),
        })?;
    host.ok(
        host.cmd(["chmod", "0700", "--", data]),
        &format!("making {data} private"),
    )
    .await?;
    let moved = (!moved.is_empty()).then_some(moved);
    Ok(json!({ "changed": true, "moved_aside": moved, "standby": p.standby.unwrap_or(false) }))
}

pub(super) async fn rewind(ctx: &Ctx<'_>, p: PgRewindParams) -> Result<Value, ActionError> {
    super::file::absolute(ctx, "data_dir", &p.data_dir)?;
    let port = p.source_port.map(|p| p.to_string());
    let conninfo = libpq::conninfo(&[
        ("host", Some(&p.source_host)),
        ("port", port.as_deref()),
        ("user", Some(&p.user)),
        ("dbname", Some(p.database.as_deref().unwrap_or("postgres"))),
    ])
    .map_err(|e| ctx.invalid(e))?;
    let host = ctx.host().await?;
    let bin = p.bin_dir.as_deref();
    let password = p
        .password
        .as_ref()
        .map(|pw| ("PGPASSWORD".to_owned(), pw.clone()));
    // pg_rewind reads the source's timeline from its control file, which a promoted server
    // updates only at its next checkpoint: ask for one now. Without the right to, pg_rewind
    // may still work (the promotion's own checkpoint may be done), so this is a warning.
    let mut checkpoint = host.cmd([
        program(bin, "psql"),
        "-X".into(),
        "-At".into(),
        "-d".into(),
        conninfo.clone(),
        "-c".into(),
        "checkpoint".into(),
    ]);
    checkpoint.env.extend(password.clone());
    checkpoint
        .env
        .push(("PGCONNECT_TIMEOUT".into(), "10".into()));
    let warning = match host.run(checkpoint).await {
        Ok(out) if out.success() => None,
        Ok(out) => Some(format!(
            "CHECKPOINT on the source failed: {}",
            out.stderr_tail(2)
        )),
        Err(e) => Some(format!("CHECKPOINT on the source failed: {}", e.message)),
    };
    let mut argv = vec![
        program(bin, "pg_rewind"),
        format!("--target-pgdata={}", p.data_dir),
        format!("--source-server={conninfo}"),
    ];
    if p.standby.unwrap_or(false) {
        argv.push("--write-recovery-conf".into());
    }
    let mut cmd = host.cmd(argv);
    cmd.env.extend(password);
    let out = host
        .ok(
            cmd,
            &format!("rewinding {} from {}", p.data_dir, p.source_host),
        )
        .await?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let needed = !said.contains("no rewind required");
    Ok(json!({ "changed": needed, "rewound": needed, "warning": warning }))
}

pub(super) async fn make_standby(
    ctx: &Ctx<'_>,
    p: PgMakeStandbyParams,
) -> Result<Value, ActionError> {
    super::file::absolute(ctx, "data_dir", &p.data_dir)?;
    let data = p.data_dir.trim_end_matches('/');
    let port = p.primary_port.map(|p| p.to_string());
    let conninfo = libpq::conninfo(&[
        ("host", Some(&p.primary_host)),
        ("port", port.as_deref()),
        ("user", Some(&p.user)),
        ("password", p.password.as_deref()),
        ("application_name", p.application_name.as_deref()),
    ])
    .map_err(|e| ctx.invalid(e))?;
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
    let auto_conf = format!("{data}/postgresql.auto.conf");
    let old = if host.exists(&auto_conf).await? {
        String::from_utf8_lossy(&read(&host, &auto_conf).await?).into_owned()
    } else {
        String::new()
    };
    let new = libpq::set_line(&old, "primary_conninfo", &libpq::conf_string(&conninfo));
    let signal = format!("{data}/standby.signal");
    let has_signal = host.exists(&signal).await?;
    if new == old && has_signal {
        return Ok(json!({ "changed": false }));
    }
    if new != old {
        write_atomic(&host, &auto_conf, new.into_bytes(), Some("0600"), None).await?;
    }
    if !has_signal {
        write_atomic(&host, &signal, Vec::new(), Some("0600"), None).await?;
    }
    Ok(json!({ "changed": true }))
}
