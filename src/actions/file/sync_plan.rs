//! What `file.sync` must do, worked out from the two directories' manifests: pure functions,
//! no I/O, so every rule (excludes kept on both sides, deletions, type changes, attributes)
//! is unit-tested here.
//!
//! A manifest lists every entry under a directory (relative path, type, mode, owner, link
//! target, modification time, md5 of regular files), as `find -printf` and `md5sum -z` print them on the host.
//! Exclude patterns follow rsync's unanchored rule: a pattern matches a path's last names at
//! any depth (`db.properties` matches `db.properties` and `sub/db.properties`), a leading `/`
//! anchors it at the top, `*` and `?` stay within one name, and an excluded directory
//! excludes everything under it.

use std::collections::BTreeMap;

/// One entry of a directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `f` file, `d` directory, `l` symlink, or find's letter for anything else
    pub kind: char,
    pub mode: String,
    /// `user:group`
    pub owner: String,
    pub link: String,
    pub md5: Option<String>,
    /// last modification, seconds since the epoch (never compared by a sync: a copy gets a
    /// new one; shown by `gocd.compare_files`)
    pub mtime: i64,
}

/// Relative path (`""` for the top directory) → entry.
pub(crate) type Manifest = BTreeMap<String, Entry>;

/// Parse the output of the manifest script: `ABSENT\0`, or 6-field records
/// (`%y %m %u %g %Ts %l %P`, each NUL-terminated), `MD5\0`, then `md5sum -z` lines.
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<Option<Manifest>, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut fields = text.split('\0');
    let mut manifest = Manifest::new();
    loop {
        let Some(kind) = fields.next() else {
            return Err("the manifest ended early".into());
        };
        match kind {
            "ABSENT" if manifest.is_empty() => return Ok(None),
            "MD5" => break,
            _ => {}
        }
        let mut kind_chars = kind.chars();
        let (Some(k), None) = (kind_chars.next(), kind_chars.next()) else {
            return Err(format!("unexpected manifest field {kind:?}"));
        };
        let mut next = || fields.next().ok_or("the manifest ended inside a record");
        let (mode, user, group, mtime, link, path) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        let entry = Entry {
            kind: k,
            mode: mode.to_owned(),
            owner: format!("{user}:{group}"),
            link: link.to_owned(),
            md5: None,
            mtime: mtime
                .split('.')
                .next()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
        };
        manifest.insert(path.to_owned(), entry);
    }
    for line in fields.filter(|l| !l.is_empty()) {
        // `HASH  ./path` (two blanks, or ` *` in binary mode)
        let (Some(hash), Some(path)) = (line.get(..32), line.get(34..)) else {
            return Err(format!("unexpected md5sum line {line:?}"));
        };
        let path = path.strip_prefix("./").unwrap_or(path);
        if let Some(entry) = manifest.get_mut(path) {
            entry.md5 = Some(hash.to_owned());
        }
    }
    Ok(Some(manifest))
}

/// Does `name` match the glob `pattern` (`*`, `?`, literal characters; no `/` crossing)?
fn glob(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len())
            .take_while(|&i| i == 0 || name[i - 1] != '/')
            .any(|i| glob(rest, &name[i..])),
        Some(('?', rest)) => name
            .split_first()
            .is_some_and(|(c, tail)| *c != '/' && glob(rest, tail)),
        Some((c, rest)) => name
            .split_first()
            .is_some_and(|(n, tail)| n == c && glob(rest, tail)),
    }
}

/// Is `path` (relative, `/`-separated) excluded by one of `patterns`?
pub(crate) fn excluded(path: &str, patterns: &[String]) -> bool {
    if path.is_empty() {
        return false;
    }
    let names: Vec<&str> = path.split('/').collect();
    patterns.iter().any(|pattern| {
        let (anchored, pattern) = match pattern.strip_prefix('/') {
            Some(p) => (true, p.trim_end_matches('/')),
            None => (false, pattern.trim_end_matches('/')),
        };
        let pat: Vec<char> = pattern.chars().collect();
        let depth = pattern.split('/').count();
        // Every ancestor-or-self prefix of the path, and (unanchored) each of its tails
        // of as many names as the pattern has.
        (1..=names.len()).any(|end| {
            let starts = if anchored {
                0..1
            } else {
                end.saturating_sub(depth)..end.saturating_sub(depth) + 1
            };
            starts.into_iter().any(|start| {
                end - start == depth && {
                    let s: Vec<char> = names[start..end].join("/").chars().collect();
                    glob(&pat, &s)
                }
            })
        })
    })
}

/// One step of applying a sync on the destination host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// remove the path (recursively)
    Del(String),
    /// create the directory if missing, then set mode and owner
    Dir(String, String, String),
    /// set mode and owner of an existing path
    Attr(String, String, String),
    /// move the staged copy of the path into place
    Put(String),
}

/// The plan for one sync.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncPlan {
    pub ops: Vec<Op>,
    /// files and symlinks to carry over from the source
    pub transfer: Vec<String>,
    /// every path that will change, in order
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
    /// source entries that are neither files, directories nor symlinks (sockets, fifos, …)
    pub skipped: Vec<String>,
}

/// Work out how to make `dest` (None: absent) match `src`, leaving excluded paths alone.
pub(crate) fn plan(
    src: &Manifest,
    dest: Option<&Manifest>,
    exclude: &[String],
    delete: bool,
) -> Result<SyncPlan, String> {
    let empty = Manifest::new();
    let dest = dest.unwrap_or(&empty);
    let mut out = SyncPlan::default();
    let holds_excluded = |dir: &str| {
        let prefix = format!("{dir}/");
        dest.keys().any(|p| {
            (dir.is_empty() || p.starts_with(&prefix)) && !p.is_empty() && excluded(p, exclude)
        })
    };
    // Deletions first, deepest first; what the source replaces with another type goes too.
    let mut removals: Vec<&String> = Vec::new();
    for (path, d) in dest {
        if path.is_empty()
            || excluded(path, exclude)
            || removals.iter().any(|r| path.starts_with(&format!("{r}/")))
        {
            continue;
        }
        let replaced = src
            .get(path)
            .is_some_and(|s| s.kind != d.kind && is_syncable(s.kind));
        let gone = delete && !src.contains_key(path);
        if !(replaced || gone) {
            continue;
        }
        if d.kind == 'd' && holds_excluded(path) {
            if replaced {
                return Err(format!(
                    "{path} is a directory holding excluded entries here, but not a directory in the source: refusing to remove it"
                ));
            }
            // Keep the directory for the excluded entries; its other contents go one by one.
            continue;
        }
        removals.push(path);
    }
    for path in removals.iter().rev() {
        out.ops.push(Op::Del((*path).clone()));
        out.deleted.push((*path).clone());
    }
    for (path, s) in src {
        if excluded(path, exclude) {
            continue;
        }
        if !is_syncable(s.kind) {
            out.skipped.push(path.clone());
            continue;
        }
        let d = dest.get(path).filter(|d| d.kind == s.kind);
        match (s.kind, d) {
            ('d', None) => out
                .ops
                .push(Op::Dir(path.clone(), s.mode.clone(), s.owner.clone())),
            ('d', Some(d)) if d.mode != s.mode || d.owner != s.owner => {
                out.ops
                    .push(Op::Attr(path.clone(), s.mode.clone(), s.owner.clone()));
            }
            ('d', Some(_)) => continue,
            ('l', Some(d)) if d.link == s.link => continue,
            ('f', Some(d)) if d.md5 == s.md5 && d.md5.is_some() => {
                if d.mode == s.mode && d.owner == s.owner {
                    continue;
                }
                out.ops
                    .push(Op::Attr(path.clone(), s.mode.clone(), s.owner.clone()));
            }
            _ => {
                out.ops.push(Op::Put(path.clone()));
                out.transfer.push(path.clone());
            }
        }
        out.changed.push(path.clone());
    }
    out.changed.extend(out.deleted.iter().cloned());
    Ok(out)
}

fn is_syncable(kind: char) -> bool {
    matches!(kind, 'f' | 'd' | 'l')
}

#[cfg(test)]
#[path = "sync_plan_tests.rs"]
mod tests;
