//! The copies of a data directory that `pg.basebackup` keeps: moving the old contents aside
//! before a rebuild, and removing them again later (`pg.remove_old_copies`). Must never
//! delete anything but a directory named like one of its own copies.
//!
//! A copy is `DATA.drplan-old-<UTC time>`, next to the data directory, owned by the cluster's
//! user, mode 0700. Only the *contents* of the data directory move into it: the directory
//! itself stays (same owner and mode), so pg_basebackup can write into it even where the
//! cluster's user cannot create anything beside it (a root-owned parent like `/srv/pgsql`).
//! There the copy's directory is created by root, through the host's become method
//! (`sudo -n`), and removed by root once the cluster's user has emptied it; root runs
//! nothing else. Retention: a failback keeps the copy it made; the next failback that
//! succeeds removes it.

use serde_json::{Value, json};

use super::PgRemoveOldCopiesParams;
use crate::actions::host::{Ctx, Host, absolute};
use crate::journal::clock::UtcTime;
use crate::step::StepFailure;

/// What separates a data directory's path from its copies' time stamps.
pub(super) const MARK: &str = ".drplan-old-";

/// Says `empty` (absent or empty: nothing to keep), `writable` (its parent is writable by
/// us) or the data directory's `uid:gid` (root must create the copy's directory).
const INSPECT_SCRIPT: &str = r#"set -eu
d=$1
if [ ! -d "$d" ] || [ -z "$(ls -A -- "$d")" ]; then echo empty; exit 0; fi
if [ -w "$(dirname -- "$d")" ]; then echo writable; else stat -c %u:%g -- "$d"; fi"#;

/// Moves every entry of $1 into $2 (same filesystem: renames).
const MOVE_SCRIPT: &str = r#"set -eu
find "$1" -mindepth 1 -maxdepth 1 -exec mv -t "$2" -- {} +"#;

/// Empties $1 and removes it; says `needs-root` when only the directory is left (its
/// parent is not ours).
const REMOVE_SCRIPT: &str = r#"set -eu
find "$1" -mindepth 1 -delete
rmdir -- "$1" 2>/dev/null || echo needs-root"#;

/// Lists the copies of $1, one a line.
const LIST_SCRIPT: &str = r#"for f in "$1".drplan-old-*; do [ -d "$f" ] && [ ! -L "$f" ] && printf '%s\n' "$f"; done; true"#;

fn stamp() -> String {
    let t = UtcTime::from_system(std::time::SystemTime::now());
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// Is `path` one of `data`'s copies (`DATA.drplan-old-YYYYMMDDTHHMMSSZ`)?
pub(super) fn is_copy_of(data: &str, path: &str) -> bool {
    let Some(stamp) = path
        .strip_prefix(data)
        .and_then(|rest| rest.strip_prefix(MARK))
    else {
        return false;
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// Empty `data` into a new copy beside it; returns the copy, or None when there was nothing
/// to keep.
pub(super) async fn move_aside(host: &Host<'_>, data: &str) -> Result<Option<String>, StepFailure> {
    let out = host
        .ok(
            host.cmd(["sh", "-c", INSPECT_SCRIPT, "sh", data]),
            &format!("looking at {data} before moving its contents aside"),
        )
        .await?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if said == "empty" {
        return Ok(None);
    }
    let old = format!("{data}{MARK}{}", stamp());
    if said == "writable" {
        host.ok(
            host.cmd(["mkdir", "-m", "0700", "--", old.as_str()]),
            &format!("creating {old}"),
        )
        .await?;
    } else {
        let (uid, gid) = said
            .split_once(':')
            .ok_or_else(|| host.fail(format!("cannot tell who owns {data} (got {said:?})")))?;
        host.ok(
            host.root_cmd(["install", "-d", "-o", uid, "-g", gid, "-m", "0700", "--", &old]),
            &format!(
                "creating {old} as root (the parent of {data} is not writable by the cluster's user)"
            ),
        )
        .await?;
    }
    host.ok(
        host.cmd(["sh", "-c", MOVE_SCRIPT, "sh", data, &old]),
        &format!("moving the contents of {data} into {old}"),
    )
    .await
    .map_err(|e| {
        e.context(&format!(
            "what was moved is in {old}; the rest is still in {data}"
        ))
    })?;
    Ok(Some(old))
}

pub(super) async fn remove_old_copies(
    ctx: &Ctx<'_>,
    p: PgRemoveOldCopiesParams,
) -> Result<Value, StepFailure> {
    absolute(ctx, "data_dir", &p.data_dir)?;
    let data = p.data_dir.trim_end_matches('/');
    let keep = p
        .keep
        .as_deref()
        .map(|k| k.trim_end_matches('/'))
        .filter(|k| !k.is_empty());
    if let Some(k) = keep
        && !is_copy_of(data, k)
    {
        return Err(ctx.invalid(format!(
            "`keep` must be a copy of {data} ({data}{MARK}<UTC time>), not {k}"
        )));
    }
    let host = ctx.host().await?;
    let out = host
        .ok(
            host.cmd(["sh", "-c", LIST_SCRIPT, "sh", data]),
            &format!("listing the copies of {data}"),
        )
        .await?;
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for copy in listed.lines().filter(|c| is_copy_of(data, c)) {
        if Some(copy) == keep {
            kept.push(copy.to_owned());
            continue;
        }
        let out = host
            .ok(
                host.cmd(["sh", "-c", REMOVE_SCRIPT, "sh", copy]),
                &format!("removing the old copy {copy}"),
            )
            .await?;
        if String::from_utf8_lossy(&out.stdout).contains("needs-root") {
            host.ok(
                host.root_cmd(["rmdir", "--", copy]),
                &format!("removing the emptied {copy} as root"),
            )
            .await?;
        }
        removed.push(copy.to_owned());
    }
    Ok(json!({ "changed": !removed.is_empty(), "removed": removed, "kept": kept }))
}

#[cfg(test)]
mod tests {
    use super::is_copy_of;

    #[test]
    fn only_our_own_copies_are_copies() {
        let d = "/srv/pg/main";
        assert!(is_copy_of(d, "/srv/pg/main.drplan-old-20261125T101112Z"));
        for not in [
            "/srv/pg/main",
            "/srv/pg/main.drplan-old-",
            "/srv/pg/main.drplan-old-20261125T101112Z/..",
            "/srv/pg/main.drplan-old-2026112xT101112Z",
            "/srv/pg/mainx.drplan-old-20261125T101112Z",
            "/srv/pg/other.drplan-old-20261125T101112Z",
        ] {
            assert!(!is_copy_of(d, not), "{not}");
        }
    }
}
