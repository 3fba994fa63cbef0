//! `file.write`, `file.touch`, `file.remove`, `file.rename`, `file.stat`, `file.copy`.
//!
//! Paths must be absolute: commands run in `/`, and a relative path would silently mean
//! something else on every host. Each action looks first and reports `changed: false` when
//! the host already is as asked.

use serde_json::{Value, json};

use super::read::{self as file_read, attrs_differ, md5_hex, set_attrs, write_atomic};
use super::{
    FileCopyParams, FileRemoveParams, FileRenameParams, FileStatParams, FileTouchParams,
    FileWriteParams,
};
use crate::actions::host::{Ctx, absolute};
use crate::redact::SENSITIVE;
use crate::step::StepFailure;

pub(super) async fn write(ctx: &Ctx<'_>, p: FileWriteParams) -> Result<Value, StepFailure> {
    absolute(ctx, "path", &p.path)?;
    let host = ctx.host().await?;
    // An unsalted md5 of a short secret is the secret to anyone with a dictionary: the
    // result (journaled) shows it only for content that holds none.
    let md5 = md5_hex(p.content.as_bytes());
    let shown = if ctx.env.redact.is_sensitive(&p.content) {
        SENSITIVE.to_owned()
    } else {
        md5.clone()
    };
    let content = p.content.into_bytes();
    let (mode, owner) = (p.mode.as_deref(), p.owner.as_deref());
    if let Some(st) = file_read::stat(&host, &p.path).await?
        && st.md5.as_deref() == Some(md5.as_str())
    {
        if !attrs_differ(&st, mode, owner) {
            return Ok(json!({ "changed": false, "md5": shown }));
        }
        set_attrs(&host, &p.path, mode, owner).await?;
        return Ok(json!({ "changed": true, "md5": shown, "attributes_only": true }));
    }
    write_atomic(&host, &p.path, content, mode, owner).await?;
    Ok(json!({ "changed": true, "md5": shown }))
}

pub(super) async fn touch(ctx: &Ctx<'_>, p: FileTouchParams) -> Result<Value, StepFailure> {
    absolute(ctx, "path", &p.path)?;
    let host = ctx.host().await?;
    let (mode, owner) = (p.mode.as_deref(), p.owner.as_deref());
    match file_read::stat(&host, &p.path).await? {
        Some(st) if !attrs_differ(&st, mode, owner) => Ok(json!({ "changed": false })),
        Some(_) => {
            set_attrs(&host, &p.path, mode, owner).await?;
            Ok(json!({ "changed": true }))
        }
        None => {
            // Created through the atomic writer so mode and owner are right from the start.
            write_atomic(
                &host,
                &p.path,
                Vec::new(),
                Some(mode.unwrap_or("0644")),
                owner,
            )
            .await?;
            Ok(json!({ "changed": true, "created": true }))
        }
    }
}

pub(super) async fn remove(ctx: &Ctx<'_>, p: FileRemoveParams) -> Result<Value, StepFailure> {
    absolute(ctx, "path", &p.path)?;
    if p.path.trim_end_matches('/').is_empty() {
        return Err(ctx.invalid("refusing to remove /"));
    }
    let host = ctx.host().await?;
    if !host.exists(&p.path).await? {
        return Ok(json!({ "changed": false }));
    }
    let recursive = p.recursive.unwrap_or(false);
    let flags = if recursive { "-rf" } else { "-f" };
    let what = if recursive {
        format!("removing {}", p.path)
    } else {
        format!("removing {} (a directory needs `recursive: true`)", p.path)
    };
    host.ok(host.cmd(["rm", flags, "--", p.path.as_str()]), &what)
        .await?;
    Ok(json!({ "changed": true }))
}

pub(super) async fn rename(ctx: &Ctx<'_>, p: FileRenameParams) -> Result<Value, StepFailure> {
    absolute(ctx, "path", &p.path)?;
    absolute(ctx, "to", &p.to)?;
    let host = ctx.host().await?;
    let from = host.exists(&p.path).await?;
    let to = host.exists(&p.to).await?;
    match (from, to) {
        (false, true) => Ok(json!({ "changed": false })),
        (true, false) => {
            let argv = ["mv", "-T", "--", p.path.as_str(), p.to.as_str()];
            host.ok(host.cmd(argv), &format!("renaming {} to {}", p.path, p.to))
                .await?;
            Ok(json!({ "changed": true }))
        }
        (true, true) => Err(host.fail(format!(
            "both {} and {} exist: refusing to replace {}",
            p.path, p.to, p.to
        ))),
        (false, false) => Err(host.fail(format!("neither {} nor {} exists", p.path, p.to))),
    }
}

pub(super) async fn stat(ctx: &Ctx<'_>, p: FileStatParams) -> Result<Value, StepFailure> {
    absolute(ctx, "path", &p.path)?;
    let host = ctx.host().await?;
    Ok(match file_read::stat(&host, &p.path).await? {
        None => json!({ "exists": false, "size": null, "mode": null, "md5": null, "type": null }),
        Some(st) => json!({
            "exists": true,
            "size": st.size,
            "mode": st.mode_octal(),
            "md5": st.md5,
            "type": st.kind,
            "owner": format!("{}:{}", st.user, st.group),
        }),
    })
}

pub(super) async fn copy(ctx: &Ctx<'_>, p: FileCopyParams) -> Result<Value, StepFailure> {
    absolute(ctx, "src", &p.src)?;
    absolute(ctx, "dest", &p.dest)?;
    let source = ctx.host_of(&p.from).await?;
    let Some(src) = file_read::stat(&source, &p.src).await? else {
        return Err(source.fail(format!("{} does not exist", p.src)));
    };
    let host = ctx.host().await?;
    let mode = p.mode.clone().unwrap_or_else(|| src.mode_octal());
    let owner = p.owner.as_deref();
    if let Some(dest) = file_read::stat(&host, &p.dest).await?
        && dest.md5.is_some()
        && dest.md5 == src.md5
    {
        if !attrs_differ(&dest, Some(&mode), owner) {
            return Ok(json!({ "changed": false, "md5": src.md5 }));
        }
        set_attrs(&host, &p.dest, Some(&mode), owner).await?;
        return Ok(json!({ "changed": true, "md5": src.md5, "attributes_only": true }));
    }
    let bytes = file_read::read(&source, &p.src).await?;
    let md5 = md5_hex(&bytes);
    write_atomic(&host, &p.dest, bytes, Some(&mode), owner).await?;
    Ok(json!({ "changed": true, "md5": md5, "size": src.size }))
}
