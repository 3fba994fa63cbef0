//! Reading, inspecting and atomically replacing one file on a host: the helpers behind
//! `file.*`, `gocd.set_mode` and `pg.make_standby`.
//!
//! A replacement is written to a temporary file in the same directory (so the final `mv` is
//! a rename on one filesystem: readers see the old file or the new one, never half of it),
//! flushed, given its mode and owner, then renamed over the target. The content travels on
//! stdin, never in argv. Reads larger than what a transport keeps of stdout are done in
//! chunks and checked against the file's md5 afterwards, so a file that changed while it was
//! read is noticed.

use md5::{Digest, Md5};

use crate::actions::host::Host;
use crate::step::StepFailure;

/// Bytes read per command: well under the transports' stdout cap (1 MiB).
const CHUNK: u64 = 512 * 1024;

/// What `stat` and `md5sum` say about an existing path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    /// permission bits as `stat %a` prints them (`644`, `4755`)
    pub mode: String,
    pub user: String,
    pub group: String,
    pub size: u64,
    /// `file`, `directory`, or what stat calls anything else
    pub kind: String,
    /// for regular files
    pub md5: Option<String>,
}

impl Stat {
    /// The mode as a 4-digit octal string (`0644`).
    pub(crate) fn mode_octal(&self) -> String {
        format!("{:0>4}", self.mode)
    }
}

const STAT_SCRIPT: &str = r#"p=$1
if ! out=$(stat -L -c '%a|%U|%G|%s|%F' -- "$p" 2>&1); then
    case $out in *"No such file or directory"*) echo absent; exit 0 ;; esac
    printf '%s\n' "$out" >&2; exit 1
fi
printf '%s\n' "$out"
if [ -f "$p" ]; then md5sum < "$p" || exit 1; fi"#;

/// The path's facts, or None when nothing is there (symlinks are followed).
pub(crate) async fn stat(host: &Host<'_>, path: &str) -> Result<Option<Stat>, StepFailure> {
    let cmd = host.cmd(["sh", "-c", STAT_SCRIPT, "sh", path]);
    let out = host.ok(cmd, &format!("looking at {path}")).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    if first == "absent" {
        return Ok(None);
    }
    let fields: Vec<&str> = first.splitn(5, '|').collect();
    let [mode, user, group, size, kind] = fields[..] else {
        return Err(host.fail(format!("cannot read stat's answer about {path}: {first:?}")));
    };
    let kind = if kind.contains("regular") {
        "file"
    } else {
        kind
    };
    let md5 = lines
        .next()
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned);
    Ok(Some(Stat {
        mode: mode.to_owned(),
        user: user.to_owned(),
        group: group.to_owned(),
        size: size.parse().unwrap_or(0),
        kind: kind.to_owned(),
        md5,
    }))
}

pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The whole content of a regular file.
pub(crate) async fn read(host: &Host<'_>, path: &str) -> Result<Vec<u8>, StepFailure> {
    // A file rewritten while we read it in chunks is read again, once.
    for _ in 0..2 {
        let Some(before) = stat(host, path).await? else {
            return Err(host.fail(format!("{path} does not exist")));
        };
        if before.kind != "file" {
            return Err(host.fail(format!("{path} is a {}, not a regular file", before.kind)));
        }
        let bytes = if before.size <= CHUNK {
            let out = host
                .ok(host.cmd(["cat", "--", path]), &format!("reading {path}"))
                .await?;
            if out.stdout_truncated {
                return Err(host.fail(format!("{path} grew past what one read can carry")));
            }
            out.stdout
        } else {
            read_chunks(host, path, before.size).await?
        };
        if before.md5.as_deref() == Some(md5_hex(&bytes).as_str()) {
            return Ok(bytes);
        }
    }
    Err(host.fail(format!("{path} kept changing while it was read")))
}

async fn read_chunks(host: &Host<'_>, path: &str, size: u64) -> Result<Vec<u8>, StepFailure> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut offset = 0u64;
    while offset < size {
        let len = CHUNK.min(size - offset);
        let argv = [
            "dd".to_owned(),
            format!("if={path}"),
            "iflag=skip_bytes,count_bytes".to_owned(),
            "bs=65536".to_owned(),
            format!("skip={offset}"),
            format!("count={len}"),
            "status=none".to_owned(),
        ];
        let out = host.ok(host.cmd(argv), &format!("reading {path}")).await?;
        if out.stdout.is_empty() {
            break;
        }
        offset += out.stdout.len() as u64;
        bytes.extend_from_slice(&out.stdout);
    }
    Ok(bytes)
}

/// Write `content` to `path` atomically. Mode: `mode`, else the old file's, else 0644.
/// Owner: `owner`, else the old file's (when it differs from the writer's).
const WRITE_SCRIPT: &str = r#"set -eu
path=$1 mode=$2 owner=$3
dir=$(dirname -- "$path")
base=$(basename -- "$path")
tmp=$(mktemp -- "$dir/.$base.drplan-XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
sync -- "$tmp" 2>/dev/null || sync
if [ -n "$mode" ]; then chmod -- "$mode" "$tmp"
elif [ -e "$path" ]; then chmod --reference="$path" -- "$tmp"
else chmod 644 -- "$tmp"; fi
if [ -n "$owner" ]; then chown -- "$owner" "$tmp"
elif [ -e "$path" ] && [ "$(stat -L -c %u:%g -- "$path")" != "$(stat -c %u:%g -- "$tmp")" ]; then
    chown --reference="$path" -- "$tmp"
fi
mv -f -T -- "$tmp" "$path"
trap - EXIT"#;

pub(crate) async fn write_atomic(
    host: &Host<'_>,
    path: &str,
    content: Vec<u8>,
    mode: Option<&str>,
    owner: Option<&str>,
) -> Result<(), StepFailure> {
    let mut cmd = host.cmd([
        "sh",
        "-c",
        WRITE_SCRIPT,
        "sh",
        path,
        mode.unwrap_or_default(),
        owner.unwrap_or_default(),
    ]);
    cmd.stdin = Some(content);
    host.ok(cmd, &format!("writing {path}")).await?;
    Ok(())
}

/// Set mode and/or owner of an existing path.
pub(crate) async fn set_attrs(
    host: &Host<'_>,
    path: &str,
    mode: Option<&str>,
    owner: Option<&str>,
) -> Result<(), StepFailure> {
    if let Some(mode) = mode {
        host.ok(
            host.cmd(["chmod", "--", mode, path]),
            &format!("setting the mode of {path}"),
        )
        .await?;
    }
    if let Some(owner) = owner {
        host.ok(
            host.cmd(["chown", "--", owner, path]),
            &format!("setting the owner of {path}"),
        )
        .await?;
    }
    Ok(())
}

/// Does the existing file need `mode`/`owner` applied?
pub(crate) fn attrs_differ(st: &Stat, mode: Option<&str>, owner: Option<&str>) -> bool {
    let mode_differs = mode.is_some_and(|m| parse_mode(m) != parse_mode(&st.mode));
    let owner_differs = owner.is_some_and(|o| match o.split_once(':') {
        Some((u, g)) => u != st.user || g != st.group,
        None => o != st.user,
    });
    mode_differs || owner_differs
}

/// An octal mode string as a number (`0644`, `644` → 420).
pub(crate) fn parse_mode(mode: &str) -> Option<u32> {
    u32::from_str_radix(mode, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_compare_by_value() {
        let st = Stat {
            mode: "644".into(),
            user: "go".into(),
            group: "go".into(),
            size: 0,
            kind: "file".into(),
            md5: None,
        };
        assert_eq!(st.mode_octal(), "0644");
        assert!(!attrs_differ(&st, Some("0644"), Some("go:go")));
        assert!(!attrs_differ(&st, None, Some("go")));
        assert!(attrs_differ(&st, Some("0600"), None));
        assert!(attrs_differ(&st, None, Some("root:go")));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
