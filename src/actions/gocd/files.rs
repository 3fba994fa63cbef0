//! `gocd.compare_files` and `gocd.sync_config`: what GoCD's business-continuity add-on did for
//! a standby, done by drplan because current GoCD has no add-on — compare, and copy, the
//! files that must match between the two GoCD servers.
//!
//! Those are the config files the add-on synced (`cruise-config.xml`, the cipher files,
//! `jetty.xml`, `go.feature.toggles`) and every file of the external plugins directory.
//! `db.properties` never: each server points at its own PostgreSQL, so it is refused even
//! when a plan lists it. Both actions run on the receiving server (the standby) and read the
//! other one (`from`) over its own connection; they list both sides with md5s and
//! modification times (`file.sync`'s manifests), so the copy moves only what differs, each
//! file renamed into place (a reader sees the old or the new file, never half of one).

use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};

use super::GocdFilesParams;
use crate::actions::file::sync::{carry_out, manifest};
use crate::actions::file::sync_plan::{self, Manifest, Op};
use crate::actions::host::{Ctx, Host, absolute};
use crate::journal::clock::UtcTime;
use crate::step::StepFailure;

const DEFAULT_CONFIG_DIR: &str = "/etc/go";
/// The files GoCD's business-continuity add-on kept in sync (`cipher` is the pre-AES key of
/// older installs: compared where either server has one).
const DEFAULT_FILES: [&str; 5] = [
    "cruise-config.xml",
    "cipher.aes",
    "cipher",
    "jetty.xml",
    "go.feature.toggles",
];
const DEFAULT_PLUGINS_DIR: &str = "/var/lib/go-server/plugins/external";
/// Each GoCD server's own database connection: never compared, never copied.
const NEVER: &str = "db.properties";

/// What to compare or copy, checked.
struct Scope {
    config_dir: String,
    files: Vec<String>,
    plugins_dir: Option<String>,
}

fn scope(ctx: &Ctx<'_>, p: &GocdFilesParams) -> Result<Scope, StepFailure> {
    let config_dir = p
        .config_dir
        .clone()
        .unwrap_or_else(|| DEFAULT_CONFIG_DIR.to_owned());
    absolute(ctx, "config_dir", &config_dir)?;
    let files: Vec<String> = match &p.files {
        Some(f) => f.clone(),
        None => DEFAULT_FILES.iter().map(|s| (*s).to_owned()).collect(),
    };
    for f in &files {
        if f.is_empty() || f.contains('/') || f == "." || f == ".." {
            return Err(ctx.invalid(format!("{f:?} is not a file name in the config directory")));
        }
        if f == NEVER {
            return Err(ctx.invalid(
                "db.properties is never compared or copied: each GoCD server points at its own PostgreSQL",
            ));
        }
    }
    let plugins_dir = match p.plugins_dir.as_deref() {
        None => Some(DEFAULT_PLUGINS_DIR.to_owned()),
        Some("") => None,
        Some(d) => {
            absolute(ctx, "plugins_dir", d)?;
            Some(d.trim_end_matches('/').to_owned())
        }
    };
    Ok(Scope {
        config_dir: config_dir.trim_end_matches('/').to_owned(),
        files,
        plugins_dir,
    })
}

/// The listed files of a config directory's manifest (and the directory itself).
fn only(m: Option<Manifest>, files: &[String]) -> Option<Manifest> {
    m.map(|m| {
        m.into_iter()
            .filter(|(path, _)| path.is_empty() || files.contains(path))
            .collect()
    })
}

/// Both sides of one directory: (primary's, standby's).
async fn both(
    primary: &Host<'_>,
    standby: &Host<'_>,
    dir: &str,
) -> Result<(Option<Manifest>, Option<Manifest>), StepFailure> {
    let p = manifest(primary, dir).await?;
    let s = manifest(standby, dir).await?;
    for (host, m) in [(primary, &p), (standby, &s)] {
        if m.as_ref()
            .is_some_and(|m| m.get("").is_none_or(|root| root.kind != 'd'))
        {
            return Err(host.fail(format!("{dir} is not a directory")));
        }
    }
    Ok((p, s))
}

fn changed_at(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    UtcTime::from_system(t).rfc3339()
}

/// One file on one side, as a result shows it.
fn side(m: Option<&Manifest>, rel: &str) -> Value {
    match m.and_then(|m| m.get(rel)) {
        Some(e) if e.kind == 'f' => json!({ "md5": e.md5, "changed_at": changed_at(e.mtime) }),
        Some(e) => json!({ "kind": e.kind.to_string(), "changed_at": changed_at(e.mtime) }),
        None => Value::Null,
    }
}

/// Compare every regular file of `dir` (relative paths in `names`) on both sides.
fn rows(
    dir: &str,
    names: &[String],
    p: Option<&Manifest>,
    s: Option<&Manifest>,
    out: &mut Vec<Value>,
    differ: &mut Vec<String>,
) {
    for rel in names {
        let (a, b) = (side(p, rel), side(s, rel));
        if a.is_null() && b.is_null() {
            continue;
        }
        let same = !a.is_null() && a["md5"].is_string() && a["md5"] == b["md5"];
        let path = format!("{dir}/{rel}");
        if !same {
            differ.push(path.clone());
        }
        out.push(json!({ "path": path, "same": same, "primary": a, "standby": b }));
    }
}

/// Every regular file (relative path) under a plugins directory, on either side.
fn plugin_files(p: Option<&Manifest>, s: Option<&Manifest>) -> Vec<String> {
    let mut names: Vec<String> = p
        .into_iter()
        .chain(s)
        .flat_map(|m| m.iter())
        .filter(|(path, e)| !path.is_empty() && e.kind != 'd')
        .map(|(path, _)| path.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

pub(super) async fn compare(ctx: &Ctx<'_>, p: GocdFilesParams) -> Result<Value, StepFailure> {
    let scope = scope(ctx, &p)?;
    let primary = ctx.host_of(&p.from).await?;
    let standby = ctx.host().await?;
    let (cp, cs) = both(&primary, &standby, &scope.config_dir).await?;
    let (mut files, mut differ) = (Vec::new(), Vec::new());
    rows(
        &scope.config_dir,
        &scope.files,
        cp.as_ref(),
        cs.as_ref(),
        &mut files,
        &mut differ,
    );
    if let Some(dir) = &scope.plugins_dir {
        let (pp, ps) = both(&primary, &standby, dir).await?;
        let names = plugin_files(pp.as_ref(), ps.as_ref());
        rows(
            dir,
            &names,
            pp.as_ref(),
            ps.as_ref(),
            &mut files,
            &mut differ,
        );
    }
    let note = if differ.is_empty() {
        format!(
            "{} files compared, all the same on {} and {}",
            files.len(),
            primary.label,
            standby.label
        )
    } else {
        format!(
            "not the same on {} and {}: {}",
            primary.label,
            standby.label,
            differ.join(", ")
        )
    };
    Ok(json!({
        "from": p.from,
        "in_sync": differ.is_empty(),
        "differ": differ,
        "compared": files.len(),
        "files": files,
        "note": note,
    }))
}

/// What one directory's sync did, by kind, as paths under `dir`.
#[derive(Default)]
struct Done {
    /// files and symlinks whose content was copied (new or different)
    copied: Vec<String>,
    /// paths whose content was the same but whose mode or owner was set like the source's
    permissions: Vec<String>,
    deleted: Vec<String>,
}

impl Done {
    fn add(&mut self, dir: &str, plan: &sync_plan::SyncPlan) {
        let full = |rel: &str| format!("{dir}/{rel}");
        self.copied.extend(plan.transfer.iter().map(|r| full(r)));
        // The top directory's own mode and owner are not the files' business.
        self.permissions
            .extend(plan.ops.iter().filter_map(|op| match op {
                Op::Attr(rel, _, _) if !rel.is_empty() => Some(full(rel)),
                _ => None,
            }));
        self.deleted.extend(plan.deleted.iter().map(|r| full(r)));
    }

    fn is_empty(&self) -> bool {
        self.copied.is_empty() && self.permissions.is_empty() && self.deleted.is_empty()
    }
}

/// The operator's summary: what was copied, what only had its permissions set, what went.
fn sync_note(done: &Done, from: &str, to: &str) -> String {
    if done.is_empty() {
        return format!(
            "nothing changed: {to}'s config files and external plugins already match {from}'s"
        );
    }
    let mut parts = Vec::new();
    if !done.copied.is_empty() {
        parts.push(format!("copied {}", done.copied.join(", ")));
    }
    if !done.permissions.is_empty() {
        parts.push(format!(
            "set the mode and owner of {} like {from}'s (same content)",
            done.permissions.join(", ")
        ));
    }
    if !done.deleted.is_empty() {
        parts.push(format!("removed {}", done.deleted.join(", ")));
    }
    format!("{} on {to}", parts.join("; "))
}

pub(super) async fn sync(ctx: &Ctx<'_>, p: GocdFilesParams) -> Result<Value, StepFailure> {
    let scope = scope(ctx, &p)?;
    let primary = ctx.host_of(&p.from).await?;
    let standby = ctx.host().await?;
    let mut done = Done::default();

    // Config files: only the listed ones; one missing on the primary is left alone here
    // (GoCD would not start without cruise-config.xml: that is for the operator to see).
    let (cp, cs) = both(&primary, &standby, &scope.config_dir).await?;
    let Some(cp) = only(cp, &scope.files) else {
        return Err(primary.fail(format!("{} does not exist", scope.config_dir)));
    };
    let cs = only(cs, &scope.files);
    // The directory's own mode and owner are the standby's business.
    let mut src = cp;
    if let (Some(root), Some(dest_root)) = (src.get_mut(""), cs.as_ref().and_then(|d| d.get(""))) {
        root.mode.clone_from(&dest_root.mode);
        root.owner.clone_from(&dest_root.owner);
    }
    let plan = sync_plan::plan(&src, cs.as_ref(), &[NEVER.to_owned()], false)
        .map_err(|e| standby.fail(e))?;
    carry_out(
        &primary,
        &scope.config_dir,
        &standby,
        &scope.config_dir,
        &plan,
    )
    .await?;
    done.add(&scope.config_dir, &plan);

    // External plugins: the whole directory, removed ones removed (they would load otherwise).
    if let Some(dir) = &scope.plugins_dir {
        let (pp, ps) = both(&primary, &standby, dir).await?;
        // No plugins directory on the primary: nothing to copy, nothing to judge.
        if let Some(pp) = pp {
            let plan = sync_plan::plan(&pp, ps.as_ref(), &[], true).map_err(|e| standby.fail(e))?;
            carry_out(&primary, dir, &standby, dir, &plan).await?;
            done.add(dir, &plan);
        }
    }
    let note = sync_note(&done, &primary.label, &standby.label);
    Ok(json!({
        "changed": !done.is_empty(),
        "copied": done.copied,
        "permissions": done.permissions,
        "deleted": done.deleted,
        "note": note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::file::sync_plan::Entry;

    fn file(md5: &str, mtime: i64) -> Entry {
        Entry {
            kind: 'f',
            mode: "644".into(),
            owner: "go:go".into(),
            link: String::new(),
            md5: Some(md5.into()),
            mtime,
        }
    }

    #[test]
    fn rows_name_every_file_that_differs_with_its_change_time() {
        let p: Manifest = [
            ("cruise-config.xml".to_owned(), file("a", 1_700_000_000)),
            ("cipher.aes".to_owned(), file("b", 0)),
        ]
        .into_iter()
        .collect();
        let s: Manifest = [("cruise-config.xml".to_owned(), file("x", 0))]
            .into_iter()
            .collect();
        let names: Vec<String> = ["cruise-config.xml", "cipher.aes", "jetty.xml"]
            .map(String::from)
            .to_vec();
        let (mut out, mut differ) = (Vec::new(), Vec::new());
        rows("/etc/go", &names, Some(&p), Some(&s), &mut out, &mut differ);
        assert_eq!(differ, ["/etc/go/cruise-config.xml", "/etc/go/cipher.aes"]);
        assert_eq!(out.len(), 2, "jetty.xml is on neither side: not compared");
        assert_eq!(
            out[0]["primary"]["changed_at"], "2023-11-14T22:13:20Z",
            "{out:?}"
        );
        assert_eq!(out[1]["standby"], Value::Null);
    }

    #[test]
    fn only_the_listed_files_count() {
        let m: Manifest = [
            (String::new(), file("", 0)),
            ("db.properties".to_owned(), file("d", 0)),
            ("cipher.aes".to_owned(), file("b", 0)),
        ]
        .into_iter()
        .collect();
        let kept = only(Some(m), &["cipher.aes".to_owned()]).unwrap_or_default();
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["", "cipher.aes"]);
    }

    #[test]
    fn a_sync_says_what_it_copied_and_what_only_had_its_permissions_set() {
        let src: Manifest = [
            (String::new(), file("", 0)),
            ("cruise-config.xml".to_owned(), file("new", 0)),
            ("cipher.aes".to_owned(), file("same", 0)),
        ]
        .into_iter()
        .collect();
        let mut private = file("same", 0);
        private.mode = "600".into();
        let dest: Manifest = [
            (String::new(), file("", 0)),
            ("cruise-config.xml".to_owned(), file("old", 0)),
            ("cipher.aes".to_owned(), private),
        ]
        .into_iter()
        .collect();
        let plan = sync_plan::plan(&src, Some(&dest), &[], false).unwrap();
        let mut done = Done::default();
        done.add("/etc/go", &plan);
        assert_eq!(done.copied, ["/etc/go/cruise-config.xml"]);
        assert_eq!(done.permissions, ["/etc/go/cipher.aes"]);
        assert_eq!(
            sync_note(&done, "go1", "go2"),
            "copied /etc/go/cruise-config.xml; set the mode and owner of /etc/go/cipher.aes like go1's (same content) on go2"
        );
        let same = sync_plan::plan(&src, Some(&src), &[], false).unwrap();
        let mut none = Done::default();
        none.add("/etc/go", &same);
        assert!(none.is_empty());
        assert!(sync_note(&none, "go1", "go2").starts_with("nothing changed"));
    }
}
