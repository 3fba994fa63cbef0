//! `file.sync`: make a directory on this host match one on another role's host, leaving
//! excluded paths alone on both sides (GoCD failback: `/etc/go` without `db.properties`).
//!
//! Both sides are listed first (manifests with md5s); only what differs travels. The source
//! host packs those files into a tar file in its temp dir (read back in chunks, so size is no
//! limit), this host unpacks it into a staging directory inside the destination (same
//! mount), and each file is then renamed into place: a reader sees a file's old or new
//! content, never a mix. Modes and owners are preserved (tar -p as root keeps owners by
//! name). Excluded paths are neither read nor written nor deleted.

use serde_json::{Value, json};

use super::FileSyncParams;
use super::read as file_read;
use super::sync_plan::{self, Manifest, Op};
use crate::actions::host::{Ctx, Host, absolute};
use crate::step::StepFailure;

const MANIFEST_SCRIPT: &str = r#"if [ ! -e "$1" ]; then printf 'ABSENT\0'; exit 0; fi
cd -- "$1" || exit 1
find . -printf '%y\0%m\0%u\0%g\0%Ts\0%l\0%P\0' || exit 1
printf 'MD5\0'
find . -type f -exec md5sum -z -- {} + || exit 1"#;

/// Packs the paths listed on stdin (NUL-separated, `./`-prefixed) into a new temp file and
/// prints its name.
const PACK_SCRIPT: &str = r#"set -eu
t=$(mktemp)
if ! tar -C "$1" -cf "$t" --no-recursion --null --verbatim-files-from -T -; then
    rm -f -- "$t"; exit 1
fi
printf '%s' "$t""#;

/// Makes a staging directory inside the destination (or next to it while it does not exist),
/// unpacks stdin (a tar) into it and prints its name. Inside, because the destination may be
/// a mount point of its own (a bind-mounted /etc/go): rename(2) does not cross mounts, and mv
/// would fall back to a non-atomic copy.
const UNPACK_SCRIPT: &str = r#"set -eu
if [ -d "$1" ]; then
    stage=$(mktemp -d -- "$1/.drplan-sync-XXXXXX")
else
    stage=$(mktemp -d -- "$(dirname -- "$1")/.$(basename -- "$1").drplan-sync-XXXXXX")
fi
if ! tar -C "$stage" -xpf - --same-owner; then rm -rf -- "$stage"; exit 1; fi
printf '%s' "$stage""#;

/// Applies the operations read from stdin: NUL-separated records `op path mode owner`.
const APPLY_SCRIPT: &str = r#"set -eu
dest=$1 stage=$2
while IFS= read -r -d '' op && IFS= read -r -d '' p && IFS= read -r -d '' mode && IFS= read -r -d '' owner; do
    t=$dest${p:+/$p}
    case $op in
        del) rm -rf -- "$t" ;;
        dir) [ -d "$t" ] || mkdir -- "$t"; chmod -- "$mode" "$t"; chown -- "$owner" "$t" ;;
        attr) chmod -- "$mode" "$t"; chown -- "$owner" "$t" ;;
        put) mv -f -T -- "$stage/$p" "$t" ;;
        *) echo "unknown operation $op" >&2; exit 2 ;;
    esac
done"#;

pub(crate) async fn manifest(host: &Host<'_>, dir: &str) -> Result<Option<Manifest>, StepFailure> {
    let out = host
        .ok(
            host.cmd(["sh", "-c", MANIFEST_SCRIPT, "sh", dir]),
            &format!("listing {dir}"),
        )
        .await?;
    if out.stdout_truncated {
        return Err(host.fail(format!("{dir} has too many entries to list in one go")));
    }
    sync_plan::parse_manifest(&out.stdout)
        .map_err(|e| host.fail(format!("cannot read the listing of {dir}: {e}")))
}

pub(super) async fn sync(ctx: &Ctx<'_>, p: FileSyncParams) -> Result<Value, StepFailure> {
    absolute(ctx, "src", &p.src)?;
    absolute(ctx, "dest", &p.dest)?;
    let dest_dir = p.dest.trim_end_matches('/');
    if dest_dir.is_empty() {
        return Err(ctx.invalid("refusing to sync into /"));
    }
    let source = ctx.host_of(&p.from).await?;
    let Some(src) = manifest(&source, &p.src).await? else {
        return Err(source.fail(format!("{} does not exist", p.src)));
    };
    if src.get("").is_none_or(|root| root.kind != 'd') {
        return Err(source.fail(format!("{} is not a directory", p.src)));
    }
    let host = ctx.host().await?;
    let dest = manifest(&host, dest_dir).await?;
    if dest
        .as_ref()
        .is_some_and(|d| d.get("").is_none_or(|root| root.kind != 'd'))
    {
        return Err(host.fail(format!("{dest_dir} exists and is not a directory")));
    }
    let plan = sync_plan::plan(&src, dest.as_ref(), &p.exclude, p.delete.unwrap_or(false))
        .map_err(|e| host.fail(e))?;
    let result = |plan: &sync_plan::SyncPlan| json!({ "changed": plan.changed, "deleted": plan.deleted, "skipped": plan.skipped });
    if plan.ops.is_empty() {
        return Ok(result(&plan));
    }
    carry_out(&source, &p.src, &host, dest_dir, &plan).await?;
    Ok(result(&plan))
}

/// Apply a worked-out sync: the changed files travel from `source`'s `src` in one tar, are
/// unpacked into a staging directory inside `dest_dir` and renamed into place one by one.
pub(crate) async fn carry_out(
    source: &Host<'_>,
    src: &str,
    host: &Host<'_>,
    dest_dir: &str,
    plan: &sync_plan::SyncPlan,
) -> Result<(), StepFailure> {
    if plan.ops.is_empty() {
        return Ok(());
    }
    let stage = if plan.transfer.is_empty() {
        String::new()
    } else {
        let archive = pack(source, src, &plan.transfer).await?;
        let mut cmd = host.cmd(["sh", "-c", UNPACK_SCRIPT, "sh", dest_dir]);
        cmd.stdin = Some(archive);
        let out = host
            .ok(
                cmd,
                &format!("unpacking into a staging directory in {dest_dir}"),
            )
            .await?;
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let applied = apply(host, dest_dir, &stage, &plan.ops).await;
    if !stage.is_empty() {
        // Whatever happened, the staging directory goes; a failure to remove it is not the
        // error to report if applying failed too.
        let cleaned = host
            .ok(
                host.cmd(["rm", "-rf", "--", stage.as_str()]),
                "removing the staging directory",
            )
            .await;
        applied?;
        cleaned?;
    } else {
        applied?;
    }
    Ok(())
}

/// Pack `paths` (relative to `dir`) on the source host and bring the tar here.
async fn pack(source: &Host<'_>, dir: &str, paths: &[String]) -> Result<Vec<u8>, StepFailure> {
    let mut list = Vec::new();
    for path in paths {
        list.extend_from_slice(b"./");
        list.extend_from_slice(path.as_bytes());
        list.push(0);
    }
    let mut cmd = source.cmd(["sh", "-c", PACK_SCRIPT, "sh", dir]);
    cmd.stdin = Some(list);
    let out = source
        .ok(cmd, &format!("packing the changed files of {dir}"))
        .await?;
    let archive = String::from_utf8_lossy(&out.stdout).into_owned();
    let bytes = file_read::read(source, &archive).await;
    let removed = source
        .ok(
            source.cmd(["rm", "-f", "--", archive.as_str()]),
            "removing the temporary tar file",
        )
        .await;
    let bytes = bytes?;
    removed?;
    Ok(bytes)
}

async fn apply(host: &Host<'_>, dest: &str, stage: &str, ops: &[Op]) -> Result<(), StepFailure> {
    let mut records = Vec::new();
    let mut push = |fields: [&str; 4]| {
        for f in fields {
            records.extend_from_slice(f.as_bytes());
            records.push(0);
        }
    };
    for op in ops {
        match op {
            Op::Del(p) => push(["del", p, "", ""]),
            Op::Dir(p, mode, owner) => push(["dir", p, mode, owner]),
            Op::Attr(p, mode, owner) => push(["attr", p, mode, owner]),
            Op::Put(p) => push(["put", p, "", ""]),
        }
    }
    let mut cmd = host.cmd(["bash", "-c", APPLY_SCRIPT, "bash", dest, stage]);
    cmd.stdin = Some(records);
    host.ok(cmd, &format!("updating {dest}")).await?;
    Ok(())
}
