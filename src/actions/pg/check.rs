//! `pg.controldata` and `pg.rebuild_check`: read-only looks at a cluster and at what a rebuild
//! of it will need, so that a plan can refuse before it stops anything. Must change nothing.
//!
//! Checks have no `become:`, so both take `os_user`, the cluster's OS user, for the commands
//! that read its data directory or that the rebuild will run as (through the host's become
//! method). `pg.rebuild_check` reports every problem it finds, each in words naming what is
//! missing, in `problems`; it fails only when it cannot look at all.

use serde_json::{Value, json};

use super::auth::Login;
use super::libpq;
use super::{PgControldataParams, PgRebuildCheckParams, RebuildMethod};
use crate::actions::host::{Ctx, Host, absolute, program};
use crate::step::StepFailure;
use crate::transport::Command;

/// What `pg_controldata` prints, as a result object.
fn parse_controldata(text: &str) -> Value {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    let lsn = |key: &str| field(key).as_deref().and_then(lsn_bytes);
    json!({
        "state": field("Database cluster state"),
        "system_identifier": field("Database system identifier"),
        "checkpoint_lsn": field("Latest checkpoint location"),
        "checkpoint_lsn_bytes": lsn("Latest checkpoint location"),
        "redo_lsn": field("Latest checkpoint's REDO location"),
        "timeline": field("Latest checkpoint's TimeLineID").and_then(|t| t.parse::<u64>().ok()),
        "min_recovery_end_lsn_bytes": lsn("Minimum recovery ending location"),
        "wal_log_hints": field("wal_log_hints setting").map(|v| v == "on"),
        "data_checksums": field("Data page checksum version").map(|v| v != "0"),
    })
}

/// The oldest PostgreSQL the `pg.*` actions support: 13, whose `pg_rewind` recovers a target
/// that was not shut down cleanly (an old primary lost in a disaster) before rewinding it.
const OLDEST_MAJOR: u64 = 13;

/// Why a source of major version `major` cannot be rebuilt from, if it cannot.
fn too_old(source: &str, major: u64) -> Option<String> {
    (major < OLDEST_MAJOR).then(|| {
        format!(
            "{source} runs PostgreSQL {major}: drplan's pg.* actions need {OLDEST_MAJOR} or newer"
        )
    })
}

/// `0/3000060` → 50331744.
pub(super) fn lsn_bytes(lsn: &str) -> Option<u64> {
    let (hi, lo) = lsn.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

fn as_user(mut cmd: Command, os_user: Option<&str>) -> Command {
    if let Some(user) = os_user {
        cmd.become_user = Some(user.to_owned());
    }
    cmd
}

/// The control file of `data`, or why it cannot be read.
async fn controldata_of(
    host: &Host<'_>,
    bin: Option<&str>,
    data: &str,
    os_user: Option<&str>,
) -> Result<Result<Value, String>, StepFailure> {
    let argv = vec![program(bin, "pg_controldata"), "-D".into(), data.into()];
    let out = host.run(as_user(host.cmd(argv), os_user)).await?;
    if out.success() {
        Ok(Ok(parse_controldata(&String::from_utf8_lossy(&out.stdout))))
    } else {
        Ok(Err(out.stderr_tail(2)))
    }
}

pub(super) async fn controldata(
    ctx: &Ctx<'_>,
    p: PgControldataParams,
) -> Result<Value, StepFailure> {
    absolute(ctx, "data_dir", &p.dir.data_dir)?;
    let host = ctx.host().await?;
    let data = p.dir.data_dir.trim_end_matches('/');
    controldata_of(&host, p.dir.bin_dir.as_deref(), data, p.os_user.as_deref())
        .await?
        .map_err(|why| host.fail(format!("reading the control file of {data}: {why}")))
}

/// What the source server says to the administrative user.
const SOURCE_SQL: &str = "select json_build_object(
  'version', current_setting('server_version_num')::int,
  'in_recovery', pg_is_in_recovery(),
  'size_bytes', (select coalesce(sum(pg_database_size(oid)), 0) from pg_database
                 where has_database_privilege(oid, 'CONNECT'))::bigint,
  'superuser', (select rolsuper from pg_roles where rolname = current_user),
  'max_replication_slots', current_setting('max_replication_slots')::int,
  'rewind_functions',
      has_function_privilege('pg_catalog.pg_ls_dir(text, boolean, boolean)', 'execute')
      and has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'execute')
      and has_function_privilege('pg_catalog.pg_read_binary_file(text)', 'execute')
      and has_function_privilege('pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)', 'execute'))";

/// Facts about the data directory and its parent, one a line: exists, ours, parent writable,
/// empty, same filesystem as the parent, bytes free there, bytes free in the parent, bytes
/// used by it, its PG_VERSION.
const SPACE_SCRIPT: &str = r#"set -u
d=$1 p=$(dirname -- "$1")
if [ -d "$d" ]; then t=$d exists=yes; else t=$p exists=no; fi
owner=no; [ -O "$d" ] && owner=yes
pw=no; [ -w "$p" ] && pw=yes
empty=yes; [ "$exists" = yes ] && [ -n "$(ls -A -- "$d" 2>/dev/null)" ] && empty=no
same=no; [ "$(stat -c %d -- "$t")" = "$(stat -c %d -- "$p")" ] && same=yes
avail=$(df -P -B1 -- "$t" | awk 'NR==2 {print $4}')
pavail=$(df -P -B1 -- "$p" | awk 'NR==2 {print $4}')
used=0; [ "$exists" = yes ] && used=$(du -s -x -B1 -- "$d" 2>/dev/null | awk '{print $1}')
ver=; [ -r "$d/PG_VERSION" ] && ver=$(head -n1 -- "$d/PG_VERSION")
printf '%s\n' "$exists" "$owner" "$pw" "$empty" "$same" "${avail:-0}" "${pavail:-0}" "${used:-0}" "$ver""#;

/// Run `psql -c SQL` against a conninfo with `login`; Ok(stdout) or Err(what it said).
pub(super) async fn ask(
    host: &Host<'_>,
    bin: Option<&str>,
    os_user: Option<&str>,
    conninfo: &str,
    login: &Login,
    sql: &str,
) -> Result<Result<String, String>, StepFailure> {
    let mut cmd = host.cmd([
        program(bin, "psql"),
        "-X".into(),
        "-w".into(),
        "-At".into(),
        "-v".into(),
        "ON_ERROR_STOP=1".into(),
        "-d".into(),
        conninfo.into(),
        "-c".into(),
        sql.into(),
    ]);
    cmd.env.push(("PGCONNECT_TIMEOUT".into(), "5".into()));
    cmd.env.push(("PGAPPNAME".into(), "drplan".into()));
    let out = host.run(login.apply(as_user(cmd, os_user))).await?;
    Ok(if out.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(out.stderr_tail(3))
    })
}

pub(super) async fn rebuild_check(
    ctx: &Ctx<'_>,
    p: PgRebuildCheckParams,
) -> Result<Value, StepFailure> {
    absolute(ctx, "data_dir", &p.dir.data_dir)?;
    let data = p.dir.data_dir.trim_end_matches('/');
    let bin = p.dir.bin_dir.as_deref();
    let os = p.os_user.as_deref();
    let who = os.unwrap_or("the step's user");
    let source = format!(
        "{}:{}",
        p.source.source_host,
        p.source.source_port.unwrap_or(5432)
    );
    let port = p.source.source_port.map(|p| p.to_string());
    let admin = libpq::conninfo(&[
        ("host", Some(&p.source.source_host)),
        ("port", port.as_deref()),
        ("user", Some(&p.user)),
        ("dbname", Some(p.database.as_deref().unwrap_or("postgres"))),
    ])
    .map_err(|e| ctx.invalid(e))?;
    let replication = libpq::conninfo(&[
        ("host", Some(&p.source.source_host)),
        ("port", port.as_deref()),
        ("user", Some(&p.replication_user)),
        ("dbname", Some("replication")),
        ("replication", Some("true")),
    ])
    .map_err(|e| ctx.invalid(e))?;
    let admin_login = Login::of(ctx, Some(&p.user), None)?;
    let replication_login = Login::of(ctx, Some(&p.replication_user), None)?;
    let host = ctx.host().await?;
    let mut problems: Vec<String> = Vec::new();

    // The source, as the administrative (for rewind: the rewinding) user.
    let src = match ask(&host, bin, os, &admin, &admin_login, SOURCE_SQL).await? {
        Ok(text) => serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        Err(why) => {
            problems.push(format!(
                "user {} cannot log into {source} from this host: {why}",
                p.user
            ));
            Value::Null
        }
    };
    let source_major = src["version"].as_u64().map(|v| v / 10000);
    problems.extend(source_major.and_then(|major| too_old(&source, major)));
    match libpq::slot_name(p.slot.as_deref()) {
        Ok(Some(slot)) if src["max_replication_slots"] == 0 => problems.push(format!(
            "the rebuilt standby streams through replication slot {slot}, and {source} allows none (max_replication_slots = 0; the copy inherits it)"
        )),
        Ok(_) => {}
        Err(why) => problems.push(why),
    }

    // Streaming from the source as the replication user: what the rebuilt standby will do
    // (and pg_basebackup too). The source's pg_hba.conf must let this host replicate.
    let system = match ask(
        &host,
        bin,
        os,
        &replication,
        &replication_login,
        "IDENTIFY_SYSTEM",
    )
    .await?
    {
        Ok(text) => text.split('|').next().map(str::to_owned),
        Err(why) => {
            problems.push(format!(
                "user {} cannot open a replication connection to {source} from this host (its pg_hba.conf must allow `host replication {} <this host's address>`, and the site must give the password): {why}",
                p.replication_user, p.replication_user
            ));
            None
        }
    };

    // The data directory, its parent and the room there, as the cluster's user.
    let out = host
        .ok(
            as_user(host.cmd(["sh", "-c", SPACE_SCRIPT, "sh", data]), os),
            &format!("looking at {data} and its filesystem as {who}"),
        )
        .await?;
    let facts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let fact = |i: usize| facts.get(i).map(String::as_str).unwrap_or_default();
    let num = |i: usize| fact(i).parse::<u64>().unwrap_or(0);
    let (exists, ours, parent_writable, empty, same_fs) = (
        fact(0) == "yes",
        fact(1) == "yes",
        fact(2) == "yes",
        fact(3) == "yes",
        fact(4) == "yes",
    );
    let (free, parent_free, used) = (num(5), num(6), num(7));
    let parent = data
        .rsplit_once('/')
        .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
    if exists && !ours {
        problems.push(format!(
            "{data} is not owned by {who}, which runs the rebuild"
        ));
    }
    let target_major = fact(8)
        .split('.')
        .next()
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(t), Some(s)) = (target_major, source_major)
        && t != s
    {
        problems.push(format!(
            "{data} holds a PostgreSQL {t} cluster, {source} runs {s}: a rebuild needs the same major version"
        ));
    }

    let mut root_available = Value::Null;
    let mut needed = Value::Null;
    let mut control = Value::Null;
    match p.method {
        RebuildMethod::Basebackup => {
            if !exists && !parent_writable {
                problems.push(format!(
                    "{data} does not exist, and {who} cannot create it in {parent}"
                ));
            }
            if exists && !empty && !parent_writable {
                // The old contents go to a copy beside the directory, which root creates.
                let mut cmd = host.cmd(["true"]);
                cmd.become_user = Some("root".into());
                let ok = host.run(cmd).await.map(|o| o.success()).unwrap_or(false);
                root_available = json!(ok);
                if !ok {
                    problems.push(format!(
                        "the old contents of {data} are kept in a copy beside it, in {parent}, which {who} cannot write and root cannot either through the host's become method (sudo -n)"
                    ));
                }
            }
            if let Some(size) = src["size_bytes"].as_u64() {
                // The copy plus room for the WAL that comes with it.
                let need = size + (size / 10).max(64 << 20);
                needed = json!(need);
                let room = if empty || same_fs {
                    free
                } else {
                    if parent_free < used {
                        problems.push(format!(
                            "keeping the old contents of {data} ({used} bytes) needs that much room in {parent}, which has {parent_free} bytes free"
                        ));
                    }
                    free + used
                };
                if room < need {
                    problems.push(format!(
                        "copying {source} ({size} bytes of databases) into {data} needs about {need} bytes free there (the old contents stay on disk), and there are {room}"
                    ));
                }
            }
        }
        RebuildMethod::Rewind => {
            if !exists {
                problems.push(format!("{data} does not exist: there is nothing to rewind"));
            }
            match controldata_of(&host, bin, data, os).await? {
                Ok(c) => {
                    if c["wal_log_hints"] != true && c["data_checksums"] != true {
                        problems.push(format!(
                            "pg_rewind needs wal_log_hints = on or data checksums in {data}, and it has neither (rebuild by basebackup instead)"
                        ));
                    }
                    if let (Some(ours), Some(theirs)) = (c["system_identifier"].as_str(), &system)
                        && ours != theirs
                    {
                        problems.push(format!(
                            "{data} is not a copy of {source}'s cluster (system identifier {ours}, the source's {theirs}): it cannot be rewound from it"
                        ));
                    }
                    control = c;
                }
                Err(why) => problems.push(format!(
                    "cannot read the control file of {data} as {who}: {why}"
                )),
            }
            if src["superuser"] == false && src["rewind_functions"] == false {
                problems.push(format!(
                    "user {} may not rewind from {source}: pg_rewind needs a superuser, or EXECUTE on pg_ls_dir, pg_stat_file and pg_read_binary_file",
                    p.user
                ));
            }
        }
    }
    Ok(json!({
        "ready": problems.is_empty(),
        "problems": problems,
        "method": p.method,
        "data_dir": data,
        "exists": exists,
        "parent_writable": parent_writable,
        "root_available": root_available,
        "free_bytes": free,
        "needed_bytes": needed,
        "source": src,
        "system_identifier": system,
        "control": control,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_12_and_older_are_refused() {
        assert!(too_old("pg2:5432", 12).is_some_and(|p| p.contains("need 13 or newer")));
        assert!(too_old("pg2:5432", 9).is_some());
        assert_eq!(too_old("pg2:5432", 13), None);
        assert_eq!(too_old("pg2:5432", 17), None);
    }

    #[test]
    fn lsns_are_numbers() {
        assert_eq!(lsn_bytes("0/3000060"), Some(0x3000060));
        assert_eq!(lsn_bytes("1/0"), Some(1 << 32));
        assert_eq!(lsn_bytes("x"), None);
    }

    #[test]
    fn controldata_fields() {
        let text = "pg_control version number:            1300\n\
            Database system identifier:           7311111111111111111\n\
            Database cluster state:               shut down\n\
            Latest checkpoint location:           0/5000028\n\
            Latest checkpoint's REDO location:    0/5000028\n\
            Latest checkpoint's TimeLineID:       2\n\
            Minimum recovery ending location:     0/0\n\
            wal_log_hints setting:                on\n\
            Data page checksum version:           0\n";
        let c = parse_controldata(text);
        assert_eq!(c["state"], "shut down");
        assert_eq!(c["checkpoint_lsn_bytes"], 0x5000028);
        assert_eq!(c["timeline"], 2);
        assert_eq!(c["wal_log_hints"], true);
        assert_eq!(c["data_checksums"], false);
        assert_eq!(c["system_identifier"], "7311111111111111111");
    }
}
